//! The `modem` adapter over a pseudo-terminal against the modem emulator in
//! `tests/support/modem_emu.rs`: init with echo on, sends, receptions, errors, faults, a silent
//! modem, shutdown. Time-outs are short so that the whole file runs in about a second.
#![cfg(feature = "modem")]

#[path = "support/modem_emu.rs"]
mod modem_emu;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ip2p::adapters::modem::{Config, Modem, ModemEvent, ModemHandle, SendError};
use ip2p::sms::at::{
    self, AtError, CmsError, CommandKind, Event, LineTrouble, ReportedCode, SendId, Urc,
};
use modem_emu::{EmuConfig, ModemEmu};

/// SMSC prefix "00" + a 13-octet SMS-SUBMIT to +447785016005, 7-bit, no user data.
fn submit(n: u8) -> Vec<u8> {
    vec![
        0x00, 0x01, n, 0x0b, 0x91, 0x44, 0x77, 0x58, 0x10, 0x06, 0x50, 0x00, 0x00, 0x00,
    ]
}

/// An SMS-DELIVER ("hellohello") behind an 8-octet SMSC prefix.
const DELIVER_HEX: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

fn fast() -> Config {
    Config {
        engine: at::Config {
            command_timeout: Duration::from_millis(150),
            prompt_timeout: Duration::from_millis(150),
            send_timeout: Duration::from_millis(300),
            retries: 1,
            late_window: Duration::from_millis(100),
            ..at::Config::default()
        },
        read_timeout: Duration::from_millis(5),
        ..Config::default()
    }
}

struct Rig {
    emu: ModemEmu,
    modem: ModemHandle,
    rx: mpsc::Receiver<ModemEvent>,
}

impl Rig {
    fn start(emu: ModemEmu, config: Config) -> Rig {
        let (tx, rx) = mpsc::channel();
        let modem = Modem::open(emu.path(), 115_200, config, move |e| {
            let _ = tx.send(e);
        })
        .expect("open the pty as a serial port");
        Rig { emu, modem, rx }
    }

    /// Started and initialised; returns the time init took.
    fn ready(emu: ModemEmu, config: Config) -> (Rig, Duration) {
        let t = Instant::now();
        let rig = Rig::start(emu, config);
        rig.expect(|e| matches!(e, ModemEvent::At(Event::Ready)), "Ready");
        (rig, t.elapsed())
    }

    /// The first event matching `pred` within 3 s (others are skipped); panics otherwise.
    fn expect(&self, pred: impl Fn(&ModemEvent) -> bool, what: &str) -> ModemEvent {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(e) => seen.push(e),
                Err(_) => break,
            }
        }
        panic!("no {what} within 3 s; saw {seen:?}");
    }

    /// How send `id` ended: its message reference, or its error.
    fn outcome(&self, id: SendId) -> Result<Option<u8>, AtError> {
        match self.expect(
            |e| {
                matches!(e, ModemEvent::At(Event::Sent { id: i, .. } | Event::SendFailed { id: i, .. }) if *i == id)
            },
            "the outcome of a send",
        ) {
            ModemEvent::At(Event::Sent { message_ref, .. }) => Ok(message_ref),
            ModemEvent::At(Event::SendFailed { error, .. }) => Err(error),
            _ => unreachable!(),
        }
    }

    fn sent(&self, id: SendId) -> Option<u8> {
        self.outcome(id).expect("sent")
    }

    fn send_failed(&self, id: SendId) -> AtError {
        self.outcome(id).expect_err("a failure")
    }

    fn received(&self) -> (Vec<u8>, Option<u32>) {
        match self.expect(
            |e| matches!(e, ModemEvent::At(Event::Received { .. })),
            "Received",
        ) {
            ModemEvent::At(Event::Received { pdu, index }) => (pdu, index),
            _ => unreachable!(),
        }
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn init_send_three_and_receive_over_a_pty() {
    let (rig, init) = Rig::ready(ModemEmu::start(), fast());
    // echo was on at start, off after ATE0
    assert!(!rig.emu.echo());
    assert_eq!(
        rig.emu.commands(),
        ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0"]
    );
    let t = Instant::now();
    let ids: Vec<SendId> = (0..3)
        .map(|i| rig.modem.send_pdu(submit(i), 13).unwrap())
        .collect();
    let refs: Vec<Option<u8>> = ids.iter().map(|&id| rig.sent(id)).collect();
    let sends = t.elapsed();
    assert_eq!(refs, [Some(0), Some(1), Some(2)]);
    for i in 0..3 {
        let s = rig
            .emu
            .next_submit(Duration::from_secs(1))
            .expect("submitted");
        assert_eq!(s.pdu, submit(i));
        assert_eq!(s.tpdu, submit(i)[1..]);
        assert_eq!(s.mr, i);
    }
    // two incoming messages: +CMTI → AT+CMGR → Received → AT+CMGD
    let t = Instant::now();
    let a = rig.emu.inject_incoming_hex(DELIVER_HEX).unwrap();
    let b = rig.emu.inject_incoming_hex(DELIVER_HEX).unwrap();
    assert_eq!((a, b), (1, 2));
    let want = modem_emu::unhex(DELIVER_HEX.as_bytes()).unwrap();
    assert_eq!(rig.received(), (want.clone(), Some(1)));
    assert_eq!(rig.received(), (want, Some(2)));
    wait_until("both are deleted", || rig.emu.stored().is_empty());
    let receive = t.elapsed();
    // each message is read before it is deleted (the second +CMTI may come before or after the
    // first delete, depending on timing)
    let c = rig.emu.commands();
    let pos = |s: &str| c.iter().position(|x| x == s).unwrap();
    assert!(pos("AT+CMGR=1") < pos("AT+CMGD=1"));
    assert!(pos("AT+CMGR=2") < pos("AT+CMGD=2"));
    eprintln!(
        "measured over a pty: init {init:?}, 3 sends {sends:?}, 2 receptions incl. deletes {receive:?}"
    );
    rig.modem.shutdown();
}

#[test]
fn errors_and_faults_are_typed() {
    let (rig, _) = Rig::ready(ModemEmu::start(), fast());
    // +CMS ERROR before the prompt (numeric, AT+CMEE=1)
    rig.emu.cms_error_on_next_send(330);
    let id = rig.modem.send_pdu(submit(1), 13).unwrap();
    let e = rig.send_failed(id);
    assert_eq!(e, AtError::Cms(CmsError(ReportedCode::Code(330))));
    assert!(e.to_string().contains("SMSC address unknown"), "{e}");
    // a URC before the prompt and another between the PDU and the result
    rig.emu.urc_before_next_prompt("+CMTI: \"SM\",5");
    rig.emu.urc_before_next_result("+CREG: 1");
    let id = rig.modem.send_pdu(submit(2), 13).unwrap();
    assert_eq!(rig.sent(id), Some(0));
    // the +CMTI for an empty slot makes a read that fails with 321, typed
    match rig.expect(
        |e| matches!(e, ModemEvent::At(Event::Failed { .. })),
        "the failed read",
    ) {
        ModemEvent::At(Event::Failed { command, error }) => {
            assert_eq!(command, CommandKind::Read);
            assert_eq!(error, AtError::Cms(CmsError(ReportedCode::Code(321))));
        }
        _ => unreachable!(),
    }
    // no prompt: NoPrompt within the prompt time-out, ESC cancels, the next send works
    rig.emu.no_prompt_on_next_send();
    let t = Instant::now();
    let id = rig.modem.send_pdu(submit(3), 13).unwrap();
    assert_eq!(rig.send_failed(id), AtError::NoPrompt);
    let took = t.elapsed();
    // machine time is whole milliseconds: a deadline may fire up to 1 ms before 150 ms of real time
    assert!(
        took >= Duration::from_millis(149) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    let id = rig.modem.send_pdu(submit(4), 13).unwrap();
    assert_eq!(rig.sent(id), Some(1));
    // the result never comes after the PDU: unconfirmed, and not sent twice
    rig.emu.drop_next_send_result();
    let id = rig.modem.send_pdu(submit(5), 13).unwrap();
    assert_eq!(rig.send_failed(id), AtError::SendUnconfirmed);
    let mut submitted = Vec::new();
    while let Some(s) = rig.emu.next_submit(Duration::from_millis(50)) {
        submitted.push(s.pdu[2]);
    }
    assert_eq!(submitted, [2, 4, 5], "5 was submitted exactly once");
    // a malformed PDU is refused before it reaches the engine
    assert!(matches!(
        rig.modem.send_pdu(vec![0, 1, 2], 5),
        Err(SendError::Invalid(at::Error::PduLength { .. }))
    ));
}

#[test]
fn text_mode_and_verbose_errors_behind_the_engines_back() {
    let (rig, _) = Rig::ready(ModemEmu::start(), fast());
    // someone switched the modem to text mode and verbose errors after our init
    rig.emu.set_text_mode(true);
    rig.emu.set_cmee(2);
    rig.emu.urc_before_next_result("RING");
    let id = rig.modem.send_pdu(submit(1), 13).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(rig.expect(|_| true, "an event"));
    }
    assert_eq!(
        seen,
        [
            ModemEvent::At(Event::Unsolicited(Urc::Ring)),
            ModemEvent::At(Event::SendFailed {
                id,
                // "+CMS ERROR: invalid text mode parameter", mapped back to its number
                error: AtError::Cms(CmsError(ReportedCode::Code(305)))
            }),
        ]
    );
    // a new init puts it right
    rig.modem.init().unwrap();
    rig.expect(|e| matches!(e, ModemEvent::At(Event::Ready)), "Ready");
    let id = rig.modem.send_pdu(submit(2), 13).unwrap();
    assert_eq!(rig.sent(id), Some(0));
}

#[test]
fn garbage_and_endless_output_do_not_stop_it() {
    let (rig, _) = Rig::ready(ModemEmu::start(), fast());
    rig.emu.write_raw(b"\r\n\x00\xff\xfegarbage\r\n");
    rig.emu.write_raw(&vec![b'A'; 200_000]);
    rig.emu.write_raw(b"\r\n");
    rig.expect(
        |e| {
            matches!(
                e,
                ModemEvent::At(Event::Trouble(LineTrouble::TooLong { .. }))
            )
        },
        "TooLong",
    );
    let id = rig.modem.send_pdu(submit(9), 13).unwrap();
    assert_eq!(rig.sent(id), Some(0));
    assert!(rig.modem.counters().bytes_in > 200_000);
}

#[test]
fn direct_delivery_with_cnma_and_stored_listing() {
    let mut config = fast();
    config.engine.new_message_indication = "2,2,0,0,0".into();
    config.engine.ack_direct = true;
    // a message already stored before the driver starts (mt 0: stored silently)
    let emu = ModemEmu::with_config(EmuConfig::default());
    assert_eq!(emu.inject_incoming_hex(DELIVER_HEX), Some(1));
    let (rig, _) = Rig::ready(emu, config);
    let want = modem_emu::unhex(DELIVER_HEX.as_bytes()).unwrap();
    // direct: +CMT, acknowledged with AT+CNMA
    assert_eq!(rig.emu.inject_incoming_hex(DELIVER_HEX), None);
    assert_eq!(rig.received(), (want.clone(), None));
    wait_until("AT+CNMA was sent", || {
        rig.emu.commands().last().map(String::as_str) == Some("AT+CNMA")
    });
    // the stored one
    rig.modem.list_stored(true).unwrap();
    assert_eq!(rig.received(), (want, Some(1)));
    wait_until("it is deleted", || rig.emu.stored().is_empty());
    // nothing failed on the way (CNMA answered OK)
    while let Ok(e) = rig.rx.try_recv() {
        assert!(!matches!(e, ModemEvent::At(Event::Failed { .. })), "{e:?}");
    }
}

#[test]
fn silent_modem_gives_a_typed_error_within_the_timeout() {
    let emu = ModemEmu::start();
    emu.set_silent(true);
    let t = Instant::now();
    let rig = Rig::start(emu, fast());
    match rig.expect(
        |e| matches!(e, ModemEvent::At(Event::InitFailed { .. })),
        "InitFailed",
    ) {
        ModemEvent::At(Event::InitFailed { command, error }) => {
            assert_eq!(command, CommandKind::Probe);
            assert_eq!(
                error,
                AtError::Timeout {
                    command: CommandKind::Probe,
                    attempts: 2
                }
            );
        }
        _ => unreachable!(),
    }
    let took = t.elapsed();
    // 2 attempts of 150 ms
    assert!(
        took >= Duration::from_millis(298) && took < Duration::from_millis(3000),
        "{took:?}"
    );
    eprintln!("silent modem: InitFailed after {took:?} (2 x 150 ms)");
    // a send on a silent modem ends too
    let id = rig.modem.send_pdu(submit(1), 13).unwrap();
    assert_eq!(rig.send_failed(id), AtError::NoPrompt);
}

#[test]
fn slow_modem_within_the_timeout_is_fine() {
    let emu = ModemEmu::start();
    emu.set_delay(Duration::from_millis(40));
    let (rig, init) = Rig::ready(emu, fast());
    assert!(init >= Duration::from_millis(200), "{init:?}"); // 5 commands x 40 ms
    let id = rig.modem.send_pdu(submit(1), 13).unwrap();
    assert_eq!(rig.sent(id), Some(0));
}

#[test]
fn shutdown_joins_the_thread() {
    let emu = ModemEmu::start();
    let token = Arc::new(());
    let held = token.clone();
    let modem = Modem::open(emu.path(), 115_200, fast(), move |_e| {
        let _ = &held;
    })
    .unwrap();
    assert!(modem.is_running());
    assert_eq!(Arc::strong_count(&token), 2);
    let t = Instant::now();
    modem.shutdown();
    let took = t.elapsed();
    // the sink (moved into the thread) is gone: the thread has ended
    assert_eq!(Arc::strong_count(&token), 1);
    // generous: a loaded CI machine may be slow to schedule the thread; a hang would be seconds
    assert!(took < Duration::from_millis(1000), "{took:?}");
    // and dropping a handle does the same
    let held = token.clone();
    let modem = Modem::open(emu.path(), 115_200, fast(), move |_e| {
        let _ = &held;
    })
    .unwrap();
    drop(modem);
    assert_eq!(Arc::strong_count(&token), 1);
    eprintln!("shutdown took {took:?}");
}

/// The shape of the end-to-end test: two emulated modems joined by an emulated SMS centre (an
/// `on_submit` callback on one that injects into the other). The "centre" here forwards the
/// submitted bytes unchanged; the real one turns the SMS-SUBMIT into an SMS-DELIVER.
#[test]
fn two_emulators_joined_by_an_emulated_sms_centre() {
    let (a, _) = Rig::ready(ModemEmu::start(), fast());
    let (b, _) = Rig::ready(ModemEmu::start(), fast());
    let to_b = b.emu.handle();
    a.emu.on_submit(move |s| {
        // an SMSC prefix of its own, then the TPDU
        let mut pdu = vec![0x07, 0x91, 0x13, 0x26, 0x04, 0x00, 0x00, 0xF0];
        pdu.extend_from_slice(&s.tpdu);
        to_b.inject_incoming(&pdu);
    });
    let t = Instant::now();
    let id = a.modem.send_pdu(submit(42), 13).unwrap();
    assert_eq!(a.sent(id), Some(0));
    let (pdu, index) = b.received();
    let took = t.elapsed();
    assert_eq!(pdu[8..], submit(42)[1..]);
    assert_eq!(index, Some(1));
    wait_until("B deleted it", || b.emu.stored().is_empty());
    eprintln!("A → centre → B over two ptys: {took:?}");
}

#[test]
fn a_dropped_answer_is_retried() {
    let emu = ModemEmu::start();
    // the OK to the first AT and to the first AT+CMGR are lost
    emu.drop_next_results(1);
    let t = Instant::now();
    let (rig, _) = Rig::ready(emu, fast());
    let init = t.elapsed();
    assert!(init >= Duration::from_millis(149), "{init:?}");
    assert_eq!(rig.emu.commands()[..3], ["AT", "AT", "ATE0"]);
    rig.emu.drop_next_results(1);
    rig.emu.inject_incoming_hex(DELIVER_HEX).unwrap();
    let (_, index) = rig.received();
    assert_eq!(index, Some(1));
    wait_until("it is deleted", || rig.emu.stored().is_empty());
    let reads = rig
        .emu
        .commands()
        .iter()
        .filter(|c| c.as_str() == "AT+CMGR=1")
        .count();
    assert_eq!(reads, 2);
}

#[test]
fn echo_switched_back_on_is_coped_with() {
    let (rig, _) = Rig::ready(ModemEmu::start(), fast());
    // the modem was reset behind our back (echo on again): commands and the PDU come back
    rig.emu.set_echo(true);
    let id = rig.modem.send_pdu(submit(7), 13).unwrap();
    assert_eq!(rig.sent(id), Some(0));
    rig.emu.inject_incoming_hex(DELIVER_HEX).unwrap();
    assert_eq!(rig.received().1, Some(1));
    wait_until("it is deleted", || rig.emu.stored().is_empty());
    // nothing was mistaken for garbage
    while let Ok(e) = rig.rx.try_recv() {
        assert!(
            !matches!(e, ModemEvent::At(Event::Trouble(_) | Event::Failed { .. })),
            "{e:?}"
        );
    }
}

#[test]
fn a_modem_that_goes_away_is_reported_once_and_commands_still_end() {
    let (rig, _) = Rig::ready(ModemEmu::start(), fast());
    let Rig { emu, modem, rx } = rig;
    drop(emu); // the master side of the pty closes: reads fail from now on
    std::thread::sleep(Duration::from_millis(100));
    let id = modem.send_pdu(submit(1), 13).unwrap();
    let (mut reads, mut writes) = (0, 0);
    let outcome = loop {
        match rx.recv_timeout(Duration::from_secs(3)).expect("an event") {
            ModemEvent::Io { op: "read", .. } => reads += 1,
            // the AT+CMGS and the ESC after the missing prompt
            ModemEvent::Io { op: "write", .. } => writes += 1,
            ModemEvent::At(Event::SendFailed { id: i, error }) if i == id => break error,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(outcome, AtError::NoPrompt);
    assert_eq!(reads, 1, "one report for the whole streak of failing reads");
    assert_eq!(writes, 2);
    // every failing read counted, one per read time-out (5 ms), not a busy loop
    let errors = modem.counters().io_errors;
    assert!((10..200).contains(&errors), "{errors}");
    modem.shutdown();
}
