//! End to end: two phones on one machine, each with its own emulated modem on a pseudo-terminal
//! driven by the real AT engine and modem adapter, joined by an emulated SMS centre with a
//! delivery delay, emulated BW radios with an attach delay, and a real TCP connection at the end.
//!
//! The delays are the paper's measurements scaled down by [`SCALE`]: SMS delivery 2.637 s and
//! Wi-Fi attachment 9.428 s (the paper's whole set-up averaged 21.724 s). Both radios start off,
//! so a set-up must wait for the caller's attach, the SMS and the callee's attach; what it takes
//! beyond that is what our stack adds (AT exchanges, codecs, HMAC, TCP on loopback). Run with
//! `cargo test --release --all-features --test ip2p_e2e -- --nocapture` to see the figures.
#![cfg(all(feature = "tokio", feature = "modem"))]

#[path = "support/modem_emu.rs"]
mod modem_emu;
#[path = "support/radio.rs"]
mod radio;

use std::time::{Duration, Instant};

use ip2p::adapters::modem;
use ip2p::adapters::tokio::ip2p::{
    spawn, Connection, HostConfig, HostEvent, Ip2pHandle, Links, RadioCommand,
};
use ip2p::adapters::tokio::sms_link::{self, SmsLink};
use ip2p::ip2p::wire::{AppName, Key};
use ip2p::ip2p::{Config, Peer};
use ip2p::sms::{self, Address, Deliver, Submit, Timestamp};
use ip2p::Msisdn;
use modem_emu::{EmuHandle, ModemEmu};
use radio::{radio, wait_off};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The paper's delays are divided by this.
const SCALE: u32 = 25;
const PAPER_SMS: Duration = Duration::from_millis(2637);
const PAPER_ATTACH: Duration = Duration::from_millis(9428);
const PAPER_TOTAL: Duration = Duration::from_millis(21724);

fn a_num() -> Msisdn {
    "+886900000001".parse().unwrap()
}
fn b_num() -> Msisdn {
    "+886900000002".parse().unwrap()
}

/// The SMS centre: what `from`'s modem submits is delivered, after `delay`, to `to`'s modem as an
/// SMS-DELIVER from `from` (`copies` times: 2 emulates a network that duplicates).
fn smsc(from_emu: &EmuHandle, from: Msisdn, to_emu: EmuHandle, delay: Duration, copies: usize) {
    from_emu.on_submit(move |s| {
        let submit =
            Submit::decode(&s.tpdu).expect("the modem adapter submitted a valid SMS-SUBMIT");
        let deliver = Deliver::from_submit(&submit, Address::from(from), Timestamp::default());
        let mut pdu = Vec::new();
        let centre = Address::international("886935000000").unwrap();
        sms::encode_smsc(Some(&centre), &mut pdu).unwrap();
        deliver.encode(&mut pdu).unwrap();
        let to = to_emu.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            for _ in 0..copies {
                to.inject_incoming(&pdu);
            }
        });
    });
}

struct Phone {
    handle: Ip2pHandle,
    events: mpsc::Receiver<HostEvent>,
    radio_log: mpsc::UnboundedReceiver<RadioCommand>,
    link_counters: tokio::sync::watch::Receiver<sms_link::LinkCounters>,
    _modem: std::sync::Arc<modem::ModemHandle>,
}

fn phone(emu: &ModemEmu, cfg: Config, ip: &str, attach: Duration) -> Phone {
    let SmsLink {
        sms_out,
        sms_in,
        other: _,
        counters,
        modem,
    } = sms_link::spawn(
        emu.path(),
        115_200,
        modem::Config::default(),
        sms::Config::default(),
    )
    .expect("open the emulated modem");
    let r = radio(ip.parse().unwrap(), attach);
    let radio_log = r.log;
    let (handle, events) = spawn(
        Peer::new(cfg),
        Links {
            sms_out,
            sms_in,
            radio_out: r.commands,
            radio_in: r.events,
        },
        HostConfig::default(),
    );
    Phone {
        handle,
        events,
        radio_log,
        link_counters: counters,
        _modem: modem,
    }
}

/// Two phones, A calling B; B echoes whatever a caller sends.
fn setup(
    sms_delay: Duration,
    attach: Duration,
    copies: usize,
) -> (Phone, Phone, ModemEmu, ModemEmu) {
    let (emu_a, emu_b) = (ModemEmu::start(), ModemEmu::start());
    smsc(&emu_a.handle(), a_num(), emu_b.handle(), sms_delay, copies);
    smsc(&emu_b.handle(), b_num(), emu_a.handle(), sms_delay, copies);
    let key = Key::from_bytes([0x42; 32]);
    let ftp = AppName::new("ftp").unwrap();
    let mut ca = Config::new(a_num()).with_peer(b_num(), key.clone());
    let mut cb = Config::new(b_num()).with_peer(a_num(), key).with_app(ftp);
    for c in [&mut ca, &mut cb] {
        c.idle_off = Duration::from_millis(50);
        c.sms_timeout = Duration::from_secs(5);
    }
    let a = phone(&emu_a, ca, "127.0.0.1", attach);
    let b = phone(&emu_b, cb, "127.0.0.2", attach);
    (a, b, emu_a, emu_b)
}

/// B's application: echo 4 octets per connection, for 3 connections; then keep listening for
/// 300 ms. Returns the phone and how many requests the callee took up (`Event::Incoming`).
fn echo_server(mut b: Phone) -> tokio::task::JoinHandle<(Phone, usize)> {
    tokio::spawn(async move {
        let (mut served, mut incoming) = (0, 0);
        let mut quiet_until = None;
        loop {
            let e = match quiet_until {
                None => b.events.recv().await,
                Some(t) => match tokio::time::timeout_at(t, b.events.recv()).await {
                    Ok(e) => e,
                    Err(_) => break,
                },
            };
            match e {
                Some(HostEvent::Incoming(mut s)) => {
                    let mut buf = [0u8; 4];
                    s.stream.read_exact(&mut buf).await.unwrap();
                    s.stream.write_all(&buf).await.unwrap();
                    served += 1;
                    if served == 3 {
                        quiet_until =
                            Some(tokio::time::Instant::now() + Duration::from_millis(300));
                    }
                }
                Some(HostEvent::Peer(ip2p::ip2p::Event::Incoming { .. })) => incoming += 1,
                Some(_) => {}
                None => break,
            }
        }
        (b, incoming)
    })
}

/// One call from A to B's ftp, within 20 s.
async fn call(a: &Phone) -> Connection {
    tokio::time::timeout(
        Duration::from_secs(20),
        a.handle.connect(b_num(), AppName::new("ftp").unwrap()),
    )
    .await
    .expect("set-up in time")
    .expect("connected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_two_modems_one_sms_centre_and_a_tcp_connection() {
    let sms_delay = PAPER_SMS / SCALE;
    let attach = PAPER_ATTACH / SCALE;
    let (mut a, b, _emu_a, _emu_b) = setup(sms_delay, attach, 1);
    let server = echo_server(b);
    let forced = attach + sms_delay + attach;
    let mut overheads = Vec::new();
    for round in 0..3u8 {
        let t0 = Instant::now();
        let mut conn = call(&a).await;
        let setup = t0.elapsed();
        conn.stream.write_all(&[round; 4]).await.unwrap();
        let mut back = [0u8; 4];
        conn.stream.read_exact(&mut back).await.unwrap();
        assert_eq!(
            back, [round; 4],
            "the echo came back over the real TCP connection"
        );
        assert!(
            setup >= forced,
            "set-up {setup:?} shorter than the emulated radio and SMS delays {forced:?}"
        );
        overheads.push(setup - forced);
        drop(conn);
        // both radios go off again before the next round, so every round starts from cold
        wait_off(&mut a.radio_log).await;
    }
    let (mut b, incoming) = server.await.unwrap();
    assert_eq!(incoming, 3);
    wait_off(&mut b.radio_log).await;
    let mean = overheads.iter().sum::<Duration>() / overheads.len() as u32;
    let paper_overhead = PAPER_TOTAL - (PAPER_ATTACH * 2 + PAPER_SMS);
    println!(
        "ip2p e2e (delays / {SCALE}): forced radio+SMS delay {forced:?}; our stack added {:?} (mean {mean:?}); \
         the paper's set-up added {paper_overhead:?} beyond the same delays (at scale 1)",
        overheads
    );
    let ca = *a.link_counters.borrow();
    let cb = *b.link_counters.borrow();
    assert_eq!(ca.parts_sent, 3, "one SMS per set-up: {ca:?}");
    assert_eq!(cb.delivered, 3, "{cb:?}");
    assert_eq!(
        cb.parts_sent, 0,
        "the callee answers over IP, not SMS: {cb:?}"
    );
    assert_eq!(
        a.handle.counters().rejected + b.handle.counters().rejected,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicating_sms_centre_still_gives_one_session_per_call() {
    let (a, b, _emu_a, _emu_b) = setup(Duration::from_millis(20), Duration::from_millis(20), 2);
    let server = echo_server(b);
    for round in 0..3u8 {
        let mut conn = call(&a).await;
        conn.stream.write_all(&[round; 4]).await.unwrap();
        let mut back = [0u8; 4];
        conn.stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [round; 4]);
    }
    let (b, incoming) = server.await.unwrap();
    let cb = *b.link_counters.borrow();
    assert_eq!(cb.delivered, 6, "every SMS arrived twice: {cb:?}");
    // the second copy of each request was answered again or rejected as a replay, never taken up
    // as a new request
    assert_eq!(incoming, 3);
    assert_eq!(a.handle.counters().bad_frames, 0);
}
