//! The AT engine alone (`ip2p::sms::at`), driven by scripted byte exchanges: what it writes is
//! compared byte for byte, what the "modem" answers is fed in arbitrary chunks, and every hostile
//! case ends in a typed outcome.

use std::time::Duration;

use ip2p::machine::Machine;
use ip2p::sms::at::{
    AtEngine, AtError, CmeError, CmsError, Command, CommandKind, Config, Error, Event, Input,
    LineTrouble, Output, ReportedCode, SendId, Urc, ESC,
};
use ip2p::Time;

struct H {
    at: AtEngine,
    now: Time,
    wire: Vec<u8>,
    events: Vec<Event>,
}

impl H {
    fn new(config: Config) -> H {
        H {
            at: AtEngine::new(config),
            now: Time::ZERO,
            wire: Vec::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.at.poll() {
            match o {
                Output::Write(b) => self.wire.extend(b),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.at
            .handle(self.now, Input::Bytes(bytes.to_vec()))
            .unwrap();
        self.drain();
    }

    /// Feed in chunks of `n` bytes.
    fn feed_chunked(&mut self, bytes: &[u8], n: usize) {
        for c in bytes.chunks(n) {
            self.feed(c);
        }
    }

    fn cmd(&mut self, c: Command) -> Result<(), Error> {
        let r = self.at.handle(self.now, Input::Command(c));
        self.drain();
        r
    }

    /// Queue the 13-octet test SUBMIT as send `id`.
    fn send(&mut self, id: u64) {
        self.cmd(Command::SendPdu {
            id: SendId(id),
            pdu: submit(),
            tpdu_len: 13,
        })
        .unwrap();
    }

    /// Advance the clock by `ms`, firing deadlines on the way (at their exact times).
    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(d) = self.at.poll_timeout() {
            if d > end {
                break;
            }
            self.now = self.now.max(d);
            self.at.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn wire(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.wire)).into_owned()
    }

    fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Run the init sequence against a well-behaved modem (echo off already).
    fn ready(config: Config) -> H {
        let mut h = H::new(config);
        h.cmd(Command::Init).unwrap();
        while h.at.in_flight().is_some() {
            h.feed(b"\r\nOK\r\n");
        }
        assert_eq!(h.events(), [Event::Ready]);
        h.wire();
        h
    }
}

fn fast() -> Config {
    Config {
        command_timeout: Duration::from_millis(100),
        prompt_timeout: Duration::from_millis(50),
        send_timeout: Duration::from_millis(300),
        retries: 2,
        late_window: Duration::from_millis(100),
        ..Config::default()
    }
}

/// SMSC prefix "00" + a 13-octet SMS-SUBMIT.
fn submit() -> Vec<u8> {
    vec![
        0x00, 0x01, 0x00, 0x0b, 0x91, 0x44, 0x77, 0x58, 0x10, 0x06, 0x50, 0x00, 0x00, 0x00,
    ]
}
const SUBMIT_HEX: &str = "0001000B91447758100650000000";

/// An SMS-DELIVER ("hellohello") with an SMSC prefix of 8 octets and a TPDU of 30 octets.
const DELIVER_HEX: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
const DELIVER_TPDU_LEN: usize = 30;

fn deliver() -> Vec<u8> {
    (0..DELIVER_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&DELIVER_HEX[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn deliver_fixture_is_consistent() {
    let d = deliver();
    assert_eq!(d.len(), 1 + d[0] as usize + DELIVER_TPDU_LEN);
}

#[test]
fn init_with_echo_on_in_one_byte_chunks() {
    let mut h = H::new(fast());
    h.cmd(Command::Init).unwrap();
    assert_eq!(h.wire(), "\x1bAT\r");
    // echo on: each command comes back before its answer; fed one byte at a time
    h.feed_chunked(b"AT\r\r\nOK\r\n", 1);
    assert_eq!(h.wire(), "ATE0\r");
    h.feed_chunked(b"ATE0\r\r\nOK\r\n", 1);
    assert_eq!(h.wire(), "AT+CMEE=1\r");
    // several lines in one read (a URC and the answer)
    h.feed(b"\r\nRING\r\n\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CMGF=0\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CNMI=2,1,0,0,0\r");
    assert!(!h.at.is_ready());
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.events(), [Event::Unsolicited(Urc::Ring), Event::Ready]);
    assert!(h.at.is_ready());
    assert_eq!(h.at.stats().echoes, 2);
    assert_eq!(h.at.in_flight(), None);
}

#[test]
fn init_with_storage_and_custom_indications() {
    let mut h = H::new(Config {
        preferred_storage: Some("\"SM\",\"SM\",\"SM\"".into()),
        new_message_indication: "2,2,0,0,0".into(),
        ..fast()
    });
    h.cmd(Command::Init).unwrap();
    for _ in 0..4 {
        h.feed(b"\r\nOK\r\n");
    }
    assert!(h.wire().ends_with("AT+CNMI=2,2,0,0,0\r"));
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CPMS=\"SM\",\"SM\",\"SM\"\r");
    h.feed(b"\r\n+CPMS: 0,30,0,30,0,30\r\n\r\nOK\r\n");
    assert_eq!(h.events(), [Event::Ready]);
}

#[test]
fn init_fails_typed_on_cme_error_and_drops_the_rest() {
    let mut h = H::new(fast());
    h.cmd(Command::Init).unwrap();
    h.feed(b"\r\nOK\r\n\r\nOK\r\n\r\nOK\r\n");
    assert_eq!(h.wire(), "\x1bAT\rATE0\rAT+CMEE=1\rAT+CMGF=0\r");
    h.feed(b"\r\n+CME ERROR: 11\r\n");
    let ev = h.events();
    assert_eq!(
        ev,
        [Event::InitFailed {
            command: CommandKind::PduMode,
            error: AtError::Cme(CmeError(ReportedCode::Code(11)))
        }]
    );
    let Event::InitFailed {
        error: AtError::Cme(e),
        ..
    } = &ev[0]
    else {
        unreachable!()
    };
    assert_eq!(e.meaning(), Some("SIM PIN required"));
    assert_eq!(h.at.in_flight(), None);
    assert_eq!(h.at.queued(), 0);
    assert!(!h.at.is_ready());
}

#[test]
fn silent_modem_times_out_after_retries() {
    let mut h = H::new(fast());
    h.cmd(Command::Init).unwrap();
    h.advance(1_000);
    assert_eq!(h.wire(), "\x1bAT\rAT\rAT\r");
    assert_eq!(
        h.events(),
        [Event::InitFailed {
            command: CommandKind::Probe,
            error: AtError::Timeout {
                command: CommandKind::Probe,
                attempts: 3
            }
        }]
    );
    assert_eq!(h.at.poll_timeout(), None);
    assert_eq!(h.at.stats().retries, 2);
}

#[test]
fn send_pdu_with_prompt_and_message_reference() {
    let mut h = H::ready(fast());
    h.send(1);
    assert_eq!(h.wire(), "AT+CMGS=13\r");
    // the prompt has no line end; split over two reads
    h.feed(b"\r\n>");
    assert_eq!(h.wire(), format!("{SUBMIT_HEX}\x1a"));
    h.feed(b" ");
    h.feed_chunked(b"\r\n+CMGS: 201\r\n\r\nOK\r\n", 3);
    assert_eq!(
        h.events(),
        [Event::Sent {
            id: SendId(1),
            message_ref: Some(201)
        }]
    );
}

#[test]
fn sends_are_queued_one_in_flight() {
    let mut h = H::ready(fast());
    for i in 0..3 {
        h.send(i);
    }
    assert_eq!(h.wire(), "AT+CMGS=13\r");
    assert_eq!(h.at.queued(), 2);
    for i in 0..3u8 {
        h.feed(b"\r\n> ");
        assert!(h.wire().starts_with(SUBMIT_HEX));
        h.feed(format!("\r\n+CMGS: {i}\r\n\r\nOK\r\n").as_bytes());
        let w = h.wire();
        assert_eq!(w, if i < 2 { "AT+CMGS=13\r" } else { "" });
    }
    let refs: Vec<_> = h
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Sent { id, message_ref } => (id.0, message_ref.unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refs, [(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn echo_of_the_pdu_is_skipped() {
    let mut h = H::ready(fast());
    h.send(5);
    h.feed(b"AT+CMGS=13\r\r\n> ");
    let w = h.wire();
    // echo of the PDU and Ctrl-Z, then the result
    h.feed(&w.as_bytes()[..10]);
    h.feed(&w.as_bytes()[10..]);
    h.feed(b"\r\n+CMGS: 7\r\n\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [Event::Sent {
            id: SendId(5),
            message_ref: Some(7)
        }]
    );
    assert_eq!(h.at.stats().troubles, 0);
}

#[test]
fn urc_before_the_prompt_and_mid_command() {
    let mut h = H::ready(fast());
    h.send(9);
    h.wire();
    // a new message is reported between AT+CMGS= and the prompt
    h.feed(b"\r\n+CMTI: \"SM\",3\r\n\r\n> ");
    assert!(h.wire().starts_with(SUBMIT_HEX));
    // and a registration change between the PDU and the result
    h.feed(b"\r\n+CREG: 5\r\n\r\n+CMGS: 12\r\n\r\nOK\r\n");
    assert_eq!(
        h.events(),
        [
            Event::Unsolicited(Urc::NewMessage {
                mem: "SM".into(),
                index: 3
            }),
            Event::Unsolicited(Urc::Registration {
                kind: "CREG".into(),
                stat: Some(5)
            }),
            Event::Sent {
                id: SendId(9),
                message_ref: Some(12)
            },
        ]
    );
    // the engine now reads the stored message
    assert_eq!(h.wire(), "AT+CMGR=3\r");
    let len = DELIVER_TPDU_LEN;
    // a RING between the header and the final result
    h.feed(format!("\r\n+CMGR: 0,,{len}\r\n{DELIVER_HEX}\r\n\r\nRING\r\n\r\nOK\r\n").as_bytes());
    assert_eq!(
        h.events(),
        [
            Event::Unsolicited(Urc::Ring),
            Event::Received {
                pdu: deliver(),
                index: Some(3)
            }
        ]
    );
    // and deletes it
    assert_eq!(h.wire(), "AT+CMGD=3\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.events(), []);
    assert_eq!(h.at.in_flight(), None);
}

#[test]
fn prompt_never_comes_typed_failure_then_escape() {
    let mut h = H::ready(fast());
    h.send(2);
    h.cmd(Command::ListStored { all: true }).unwrap();
    assert_eq!(h.wire(), "AT+CMGS=13\r");
    h.advance(49);
    assert_eq!(h.events(), []);
    h.advance(1);
    assert_eq!(
        h.events(),
        [Event::SendFailed {
            id: SendId(2),
            error: AtError::NoPrompt
        }]
    );
    // input cancelled: ESC, nothing of the PDU
    assert_eq!(h.wire().as_bytes(), [ESC]);
    // the modem answers the ESC with OK: swallowed, and the next command goes
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CMGL=4\r");
    assert_eq!(h.events(), []);
}

#[test]
fn prompt_never_comes_and_modem_silent_after_escape() {
    let mut h = H::ready(fast());
    h.send(2);
    h.cmd(Command::ListStored { all: false }).unwrap();
    h.wire();
    h.advance(50);
    assert_eq!(h.wire().as_bytes(), [ESC]);
    h.advance(100);
    assert_eq!(h.wire(), "AT+CMGL=0\r");
}

#[test]
fn result_never_comes_after_the_pdu_is_unconfirmed_not_retried() {
    let mut h = H::ready(fast());
    h.send(3);
    h.feed(b"\r\n> ");
    h.wire();
    h.advance(10_000);
    assert_eq!(
        h.events(),
        [Event::SendFailed {
            id: SendId(3),
            error: AtError::SendUnconfirmed
        }]
    );
    assert_eq!(h.wire(), "", "a send is never written twice");
    assert_eq!(h.at.poll_timeout(), None);
}

#[test]
fn message_reference_without_ok_counts_as_sent() {
    let mut h = H::ready(fast());
    h.send(4);
    h.feed(b"\r\n> ");
    h.feed(b"\r\n+CMGS: 77\r\n");
    h.advance(300);
    assert_eq!(
        h.events(),
        [Event::Sent {
            id: SendId(4),
            message_ref: Some(77)
        }]
    );
}

#[test]
fn cms_errors_numeric_and_verbose_are_typed() {
    let mut h = H::ready(fast());
    for (i, answer) in [
        "+CMS ERROR: 304",
        "+CMS ERROR: invalid PDU mode parameter",
        "+CMS ERROR: 330",
        "+CMS ERROR: 331",
        "+CMS ERROR: 332",
        "+CMS ERROR: 500",
        "+CMS ERROR: something vendor-specific",
        "ERROR",
        "+CME ERROR: 30",
    ]
    .iter()
    .enumerate()
    {
        h.cmd(Command::SendPdu {
            id: SendId(i as u64),
            pdu: submit(),
            tpdu_len: 13,
        })
        .unwrap();
        if i % 2 == 0 {
            // before the prompt
            h.feed(format!("\r\n{answer}\r\n").as_bytes());
        } else {
            h.feed(b"\r\n> ");
            h.feed(format!("\r\n{answer}\r\n").as_bytes());
        }
    }
    let errors: Vec<AtError> = h
        .events()
        .into_iter()
        .map(|e| match e {
            Event::SendFailed { error, .. } => error,
            other => panic!("{other:?}"),
        })
        .collect();
    let cms = |c| AtError::Cms(CmsError(ReportedCode::Code(c)));
    assert_eq!(
        errors,
        [
            cms(304),
            cms(304),
            cms(330),
            cms(331),
            cms(332),
            cms(500),
            AtError::Cms(CmsError(ReportedCode::Text(
                "something vendor-specific".into()
            ))),
            AtError::Error,
            AtError::Cme(CmeError(ReportedCode::Code(30))),
        ]
    );
    let meanings: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(
        meanings[0].contains("invalid PDU mode parameter"),
        "{meanings:?}"
    );
    assert!(meanings[2].contains("SMSC address unknown"));
    assert!(meanings[3].contains("no network service"));
    assert!(meanings[4].contains("network timeout"));
    assert!(meanings[8].contains("no network service"));
}

#[test]
fn ok_instead_of_prompt_is_a_bad_response() {
    let mut h = H::ready(fast());
    h.send(1);
    h.feed(b"\r\nOK\r\n");
    assert!(matches!(
        h.events()[..],
        [Event::SendFailed {
            error: AtError::BadResponse(_),
            ..
        }]
    ));
}

#[test]
fn garbage_nul_non_utf8_are_typed_and_the_engine_carries_on() {
    let mut h = H::ready(fast());
    h.feed(b"\r\nhello modem\r\n");
    h.feed(b"\r\nO\0K\0\r\n"); // NULs dropped: the line reads OK, with nothing in flight
    h.feed(b"\r\n\xff\xfe\x80\r\n");
    h.feed(b"\r\n^RSSI: 12\r\n");
    let ev = h.events();
    assert_eq!(
        ev,
        [
            Event::Trouble(LineTrouble::Garbage("hello modem".into())),
            Event::Trouble(LineTrouble::UnexpectedFinal("OK".into())),
            Event::Trouble(LineTrouble::ControlBytes { count: 2 }),
            Event::Trouble(LineTrouble::NotText),
            Event::Unsolicited(Urc::Other("^RSSI: 12".into())),
        ]
    );
    // still works
    h.send(1);
    h.feed(b"\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n");
    assert!(matches!(h.events()[..], [Event::Sent { .. }]));
}

#[test]
fn endless_line_is_bounded_and_the_command_still_ends() {
    let mut h = H::ready(Config {
        max_line: 64,
        ..fast()
    });
    h.cmd(Command::ListStored { all: true }).unwrap();
    let junk = vec![b'A'; 10_000];
    for _ in 0..100 {
        h.feed(&junk);
        assert!(h.at.buffered() <= 64);
    }
    assert_eq!(
        h.events(),
        [Event::Trouble(LineTrouble::TooLong { max: 64 })],
        "reported once per line"
    );
    assert!(h.at.stats().discarded_bytes >= 1_000_000 - 64);
    // the modem never finishes the line: the command times out (with retries) and ends
    h.advance(1_000);
    assert_eq!(
        h.events(),
        [Event::Failed {
            command: CommandKind::List,
            error: AtError::Timeout {
                command: CommandKind::List,
                attempts: 3
            }
        }]
    );
    // a line end resynchronises
    h.feed(b"\r\n+CMTI: \"SM\",1\r\n");
    assert!(matches!(
        h.events()[..],
        [Event::Unsolicited(Urc::NewMessage { index: 1, .. })]
    ));
}

#[test]
fn direct_cmt_is_received_and_acknowledged() {
    let mut h = H::ready(Config {
        ack_direct: true,
        ..fast()
    });
    h.feed_chunked(
        format!("\r\n+CMT: ,{DELIVER_TPDU_LEN}\r\n{DELIVER_HEX}\r\n").as_bytes(),
        7,
    );
    assert_eq!(
        h.events(),
        [Event::Received {
            pdu: deliver(),
            index: None
        }]
    );
    assert_eq!(h.wire(), "AT+CNMA\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.at.in_flight(), None);
}

#[test]
fn cmt_with_alpha_containing_commas() {
    let mut h = H::ready(fast());
    h.feed(format!("\r\n+CMT: \"Bob, Jr\",{DELIVER_TPDU_LEN}\r\n{DELIVER_HEX}\r\n").as_bytes());
    assert_eq!(
        h.events(),
        [Event::Received {
            pdu: deliver(),
            index: None
        }]
    );
    assert_eq!(h.wire(), "", "no AT+CNMA unless configured");
}

#[test]
fn list_stored_reports_received_and_deletes_them() {
    let mut h = H::ready(fast());
    h.cmd(Command::ListStored { all: true }).unwrap();
    assert_eq!(h.wire(), "AT+CMGL=4\r");
    let l = DELIVER_TPDU_LEN;
    h.feed(
        format!(
            "\r\n+CMGL: 1,0,,{l}\r\n{DELIVER_HEX}\r\n+CMGL: 2,2,,13\r\n{SUBMIT_HEX}\r\n+CMGL: 4,1,,{l}\r\n{DELIVER_HEX}\r\n\r\nOK\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(
        h.events(),
        [
            Event::Received {
                pdu: deliver(),
                index: Some(1)
            },
            Event::Received {
                pdu: deliver(),
                index: Some(4)
            },
            Event::Listed { count: 2 },
        ]
    );
    assert_eq!(h.wire(), "AT+CMGD=1\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CMGD=4\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.at.in_flight(), None);
}

#[test]
fn read_of_an_empty_slot_and_bad_pdus() {
    let mut h = H::ready(fast());
    // an empty slot: +CMS ERROR 321 → a typed failure of the read, no delete
    h.feed(b"\r\n+CMTI: \"SM\",7\r\n");
    assert_eq!(h.wire(), "AT+CMGR=7\r");
    h.feed(b"\r\n+CMS ERROR: 321\r\n");
    let ev = h.events();
    assert_eq!(
        ev[1],
        Event::Failed {
            command: CommandKind::Read,
            error: AtError::Cms(CmsError(ReportedCode::Code(321)))
        }
    );
    assert_eq!(h.wire(), "");
    // a PDU whose length does not match the header
    h.feed(b"\r\n+CMTI: \"SM\",8\r\n");
    h.wire();
    h.feed(format!("\r\n+CMGR: 0,,5\r\n{DELIVER_HEX}\r\n\r\nOK\r\n").as_bytes());
    let ev = h.events();
    assert!(
        matches!(
            ev[1],
            Event::Trouble(LineTrouble::BadPdu { index: Some(8), .. })
        ),
        "{ev:?}"
    );
    assert_eq!(ev.len(), 2);
    // a header followed directly by OK: the OK still ends the command
    h.feed(b"\r\n+CMTI: \"SM\",9\r\n");
    h.wire();
    h.feed(b"\r\n+CMGR: 0,,30\r\nOK\r\n");
    assert_eq!(h.at.in_flight(), None);
}

#[test]
fn rejected_commands_leave_the_engine_unchanged() {
    let mut h = H::ready(Config {
        max_queue: 2,
        ..fast()
    });
    let send = |id| Command::SendPdu {
        id: SendId(id),
        pdu: submit(),
        tpdu_len: 13,
    };
    assert!(matches!(
        h.cmd(Command::SendPdu {
            id: SendId(0),
            pdu: submit(),
            tpdu_len: 12
        }),
        Err(Error::PduLength { .. })
    ));
    assert!(matches!(
        h.cmd(Command::SendPdu {
            id: SendId(0),
            pdu: vec![0],
            tpdu_len: 0
        }),
        Err(Error::PduRange { .. })
    ));
    h.cmd(send(1)).unwrap(); // in flight
    h.cmd(send(2)).unwrap();
    h.cmd(send(3)).unwrap();
    assert_eq!(h.cmd(send(4)), Err(Error::QueueFull { max: 2 }));
    assert_eq!(h.at.queued(), 2);
    assert_eq!(h.at.stats().rejected, 3);
}

#[test]
fn late_answers_are_not_taken_for_the_next_command() {
    let mut h = H::ready(Config {
        retries: 1,
        ..fast()
    });
    h.cmd(Command::ListStored { all: true }).unwrap();
    h.cmd(Command::ListStored { all: false }).unwrap();
    h.advance(100); // attempt 1 times out, attempt 2 is written
    assert_eq!(h.wire(), "AT+CMGL=4\rAT+CMGL=4\r");
    // both answers come: the first ends the command, the second is late
    h.feed(b"\r\n+CMGL: 1,0,,30\r\n");
    h.feed(format!("{DELIVER_HEX}\r\n\r\nOK\r\n").as_bytes());
    let ev = h.events();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1], Event::Listed { count: 1 });
    // nothing is written during the late-answer window
    assert_eq!(h.wire(), "");
    h.feed(format!("\r\n+CMGL: 1,1,,30\r\n{DELIVER_HEX}\r\n\r\nOK\r\n").as_bytes());
    h.feed(b"\r\nRING\r\n");
    assert_eq!(
        h.events(),
        [Event::Unsolicited(Urc::Ring)],
        "URCs still count"
    );
    assert_eq!(h.at.stats().late_answers, 3);
    assert_eq!(h.wire(), "");
    // then the queue goes on: first the delete of the listed message, then the second list
    assert_eq!(h.at.poll_timeout(), Some(Time::from_millis(200)));
    h.advance(100);
    assert_eq!(h.wire(), "AT+CMGD=1\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.wire(), "AT+CMGL=0\r");
    h.feed(b"\r\nOK\r\n");
    assert_eq!(h.events(), [Event::Listed { count: 0 }]);
}

#[test]
fn an_answer_later_than_the_window_is_reported() {
    let mut h = H::ready(Config {
        retries: 0,
        ..fast()
    });
    h.cmd(Command::ListStored { all: true }).unwrap();
    h.advance(100);
    assert!(matches!(
        h.events()[..],
        [Event::Failed {
            error: AtError::Timeout { attempts: 1, .. },
            ..
        }]
    ));
    h.feed(b"\r\nOK\r\n"); // within the window: late, silent
    assert_eq!(h.events(), []);
    h.advance(100);
    h.feed(b"\r\nOK\r\n"); // after it, with nothing in flight: reported
    assert_eq!(
        h.events(),
        [Event::Trouble(LineTrouble::UnexpectedFinal("OK".into()))]
    );
}

#[test]
fn a_failed_init_drops_only_its_own_run() {
    let mut h = H::new(fast());
    h.cmd(Command::Init).unwrap();
    h.cmd(Command::Init).unwrap();
    h.feed(b"\r\nOK\r\n\r\nERROR\r\n");
    assert_eq!(
        h.events(),
        [Event::InitFailed {
            command: CommandKind::EchoOff,
            error: AtError::Error
        }]
    );
    // the second run starts from the beginning
    assert_eq!(h.wire(), "\x1bAT\rATE0\r\x1bAT\r");
    while h.at.in_flight().is_some() {
        h.feed(b"\r\nOK\r\n");
    }
    assert_eq!(h.events(), [Event::Ready]);
}

#[test]
fn an_init_counts_once_in_the_queue() {
    let mut h = H::new(Config {
        max_queue: 2,
        ..fast()
    });
    h.cmd(Command::Init).unwrap(); // AT in flight, 4 steps queued
    h.cmd(Command::Init).unwrap(); // 5 more steps
    assert_eq!(h.at.queued(), 9);
    assert_eq!(h.cmd(Command::Init), Err(Error::QueueFull { max: 2 }));
    // a malformed PDU is reported as malformed even when the queue is full
    assert!(matches!(
        h.cmd(Command::SendPdu {
            id: SendId(1),
            pdu: vec![0, 1],
            tpdu_len: 9
        }),
        Err(Error::PduLength { .. })
    ));
}

/// Everything the modem says in one session: init with echo on, a URC mid-command, a send with
/// a URC before the prompt, the read of the new message, its delete.
fn transcript() -> Vec<u8> {
    let l = DELIVER_TPDU_LEN;
    format!(
        "AT\r\r\nOK\r\nATE0\r\r\nOK\r\n\r\nOK\r\n\r\n+CREG: 1\r\n\r\nOK\r\n\r\nOK\r\n\
         \r\n+CMTI: \"SM\",2\r\n\r\n> \r\n+CMGS: 9\r\n\r\nOK\r\n\
         \r\n+CMGR: 0,,{l}\r\n{DELIVER_HEX}\r\n\r\nOK\r\n\r\nOK\r\n"
    )
    .into_bytes()
}

/// Run the session with the modem's bytes cut at `cuts`; returns what the engine wrote and
/// reported.
fn session(cuts: &[usize]) -> (String, Vec<Event>) {
    let mut h = H::new(fast());
    h.cmd(Command::Init).unwrap();
    h.send(1);
    let t = transcript();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (t.len() + 1)).collect();
    points.sort_unstable();
    for p in points.into_iter().chain([t.len()]) {
        h.feed(&t[at..p.max(at)]);
        at = p.max(at);
    }
    (h.wire(), h.events())
}

#[test]
fn the_session_in_one_piece() {
    let (wire, events) = session(&[]);
    assert_eq!(
        wire,
        format!(
            "\x1bAT\rATE0\rAT+CMEE=1\rAT+CMGF=0\rAT+CNMI=2,1,0,0,0\rAT+CMGS=13\r{SUBMIT_HEX}\x1aAT+CMGR=2\rAT+CMGD=2\r"
        )
    );
    assert_eq!(
        events,
        [
            Event::Unsolicited(Urc::Registration {
                kind: "CREG".into(),
                stat: Some(1)
            }),
            Event::Ready,
            Event::Unsolicited(Urc::NewMessage {
                mem: "SM".into(),
                index: 2
            }),
            Event::Sent {
                id: SendId(1),
                message_ref: Some(9)
            },
            Event::Received {
                pdu: deliver(),
                index: Some(2)
            },
        ]
    );
}

proptest::proptest! {
    /// However the serial reads cut the modem's output, the engine writes and reports the same.
    #[test]
    fn chunking_does_not_matter(cuts in proptest::collection::vec(0usize..400, 0..40)) {
        proptest::prop_assert_eq!(session(&cuts), session(&[]));
    }
}

#[test]
fn configured_parameters_cannot_inject_commands() {
    let mut h = H::new(Config {
        new_message_indication: "2,1,0,0,0\rAT+CMGD=1,4".into(),
        ..fast()
    });
    h.cmd(Command::Init).unwrap();
    for _ in 0..4 {
        h.feed(b"\r\nOK\r\n");
    }
    assert!(h.wire().ends_with("AT+CNMI=2,1,0,0,0AT+CMGD=1,4\r"));
}
