//! Two phones connect through the emulated SMS network on loopback, and every step is printed
//! with the paper's numbering as it happens:
//!
//! ```text
//! cargo run --features tokio --example broker_demo            # both public: direct (B.1–B.5)
//! cargo run --features tokio --example broker_demo -- --nat   # the callee behind a symmetric NAT: relay
//! ```
//!
//! Only the SMS network and the radios are emulated (`adapters::tokio::emulated`); the control
//! messages, the answer over IP and the connection are real TCP on 127.0.0.1/127.0.0.2. On
//! loopback there is no NAT to probe, so each phone is *given* the profile a probe would find
//! (`HostConfig::profile`); the namespace testbed (`tests/broker_testbed.rs`) probes real NATs.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ip2p::adapters::tokio::emulated::{Emulated, SmsNetwork};
use ip2p::adapters::tokio::ip2p::{spawn, HostConfig, HostEvent};
use ip2p::broker::{BrokerConfig, NatBehaviour, Profile};
use ip2p::ip2p::wire::{AppName, Control, Key, Kind};
use ip2p::ip2p::{Config, Event, Output, Peer};
use ip2p::Msisdn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// What one output of a peer is, in the paper's words.
fn step(who: &str, o: &Output) -> Option<String> {
    let kind = |p: &[u8]| Control::parse(p).map(|c| c.kind).ok();
    Some(match o {
        Output::SendSms { payload, .. } if who == "A" => match Control::parse(payload) {
            Ok(c) => format!(
                "B.2  A texts B the control message (offer: {})",
                c.offer
                    .map(|o| o
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_else(|| "-".into())
            ),
            Err(_) => return None,
        },
        Output::SendSms { payload, .. } => match kind(payload) {
            Some(Kind::Refuse(r)) => format!("     B refuses by SMS: {r:?}"),
            _ => "D.4  B answers by SMS".into(),
        },
        Output::SendIp { payload, .. } => format!(
            "B.4  B answers over IP: mode {}",
            Control::parse(payload)
                .ok()
                .and_then(|c| c.mode)
                .map_or("direct".into(), |m| m.to_string())
        ),
        Output::ActivateBroadband if who == "A" => "B.1  A switches its broadband radio on".into(),
        Output::ActivateBroadband => "B.3  B's radio goes on: the SMS woke it".into(),
        Output::DeactivateBroadband => {
            format!("     {who} switches its broadband radio off (idle)")
        }
        Output::Listen { port, .. } => format!("B.2  A listens for the answer on PortA {port}"),
        Output::StartServer { app, .. } => format!("B.3  B starts its {app} server"),
        Output::Connect { to, .. } => format!("B.5  A connects to {to}"),
        Output::Map { mode, port, .. } => {
            format!("E.1/D.1  {who} asks for a {mode} mapping of port {port}")
        }
        Output::Unmap(_) => format!("     {who} releases its mapping"),
        Output::Punch { to, .. } => format!("D.5  B sends the low-TTL SYN toward {to}"),
        Output::RelayConnect { relay, .. } => format!("R    A joins B at the relay {relay}"),
        Output::RelayAccept { relay, .. } => format!("R    B waits for A at the relay {relay}"),
        Output::Event(Event::Resolved { addr, .. }) => format!("B.4  A learns B's address: {addr}"),
        Output::Event(Event::ModeFailed { mode, error, .. }) => {
            format!("     A: mode {mode} failed ({error}); trying the next")
        }
        Output::Event(Event::SessionModeFailed { mode, error, .. }) => {
            format!("     B: mode {mode} failed ({error}); trying the next")
        }
        Output::Event(Event::Connected(_)) => "B.5  A is connected".into(),
        Output::Event(Event::Served(_)) => "B.5  B's server has the caller".into(),
        Output::Event(Event::Failed { error, .. }) => format!("     A failed: {error}"),
        _ => return None,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let nat = std::env::args().any(|a| a == "--nat");
    let t0 = Instant::now();
    let (a, b): (Msisdn, Msisdn) = (
        "+886900000001".parse().expect("number"),
        "+886900000002".parse().expect("number"),
    );
    let ftp = AppName::new("ftp").expect("name");
    let key = Key::from_bytes([7; 32]);
    let (trace_tx, mut trace) = mpsc::unbounded_channel::<(String, String)>();

    // the relay on "the internet" (loopback), for a callee nothing can reach
    let relay = if nat { Some(start_relay().await) } else { None };
    let broker = BrokerConfig {
        relay,
        ..BrokerConfig::default()
    };

    let (net_tx, mut net_rx) = mpsc::unbounded_channel();
    let net = SmsNetwork::new(Duration::from_millis(50)).with_trace(net_tx);
    let ip_a: IpAddr = "127.0.0.1".parse().expect("ip");
    let ip_b: IpAddr = "127.0.0.2".parse().expect("ip");
    let profile_b = if nat {
        Profile {
            local: ip_b,
            public: Some(ip_b),
            igd: None,
            nat: NatBehaviour::Random,
        }
    } else {
        Profile::public(ip_b)
    };
    let mut phones = Vec::new();
    for (me, other, ip, profile, serves) in [
        (a, b, ip_a, Profile::public(ip_a), false),
        (b, a, ip_b, profile_b, true),
    ] {
        let mut c = Config::new(me)
            .with_peer(other, key.clone())
            .with_broker(broker.clone());
        if serves {
            c = c.with_app(ftp);
        }
        c.idle_off = Duration::from_millis(500);
        let links = net.links(me, ip, Duration::from_millis(80));
        let host = HostConfig {
            profile: Some(profile),
            trace: true,
            ..HostConfig::default()
        };
        phones.push(spawn(Peer::new(c), links, host));
    }
    let (bob, mut bob_events) = phones.pop().expect("bob");
    let (alice, mut alice_events) = phones.pop().expect("alice");
    println!(
        "phone A {a} (public) calls phone B {b} ({}) for ftp",
        if nat {
            "behind a symmetric NAT"
        } else {
            "public"
        }
    );

    // print what both peers do, and what the SMS network and radios do
    let tx = trace_tx.clone();
    tokio::spawn(async move {
        while let Some(e) = alice_events.recv().await {
            if let HostEvent::Output(o) = e {
                if let Some(s) = step("A", &o) {
                    let _ = tx.send(("A".into(), s));
                }
            }
        }
    });
    let tx = trace_tx.clone();
    tokio::spawn(async move {
        while let Some(e) = bob_events.recv().await {
            match e {
                HostEvent::Output(o) => {
                    if let Some(s) = step("B", &o) {
                        let _ = tx.send(("B".into(), s));
                    }
                }
                HostEvent::Incoming(mut served) => {
                    let mut buf = [0u8; 5];
                    if served.stream.read_exact(&mut buf).await.is_ok() {
                        let _ = served.stream.write_all(&buf).await;
                    }
                }
                HostEvent::Peer(_) => {}
            }
        }
    });
    tokio::spawn(async move {
        while let Some(e) = net_rx.recv().await {
            let line = match e {
                Emulated::Sms { from, to, len } => {
                    format!("     SMS {from} → {to} delivered ({len} octets)")
                }
                Emulated::Radio { phone, on } => {
                    format!("     radio of {phone} {}", if on { "on" } else { "off" })
                }
                Emulated::Undeliverable { to, .. } => format!("     SMS to {to} undeliverable"),
            };
            let _ = trace_tx.send(("net".into(), line));
        }
    });
    let printer = tokio::spawn(async move {
        while let Some((_, line)) = trace.recv().await {
            println!("{:>6.0} ms  {line}", t0.elapsed().as_secs_f64() * 1e3);
        }
    });

    match tokio::time::timeout(Duration::from_secs(20), alice.connect(b, ftp)).await {
        Ok(Ok(mut conn)) => {
            conn.stream.write_all(b"hello").await.expect("write");
            let mut buf = [0u8; 5];
            conn.stream.read_exact(&mut buf).await.expect("echo");
            tokio::time::sleep(Duration::from_millis(50)).await;
            println!(
                "{:>6.0} ms  connected in mode {} after {} failed mode(s); B echoed {:?}",
                t0.elapsed().as_secs_f64() * 1e3,
                conn.mode,
                conn.failed.len(),
                String::from_utf8_lossy(&buf)
            );
        }
        Ok(Err(e)) => println!("failed: {e}"),
        Err(_) => println!("no connection within 20 s"),
    }
    alice.stop();
    bob.stop();
    printer.abort();
}

/// A relay on loopback: what a public peer runs for peers nothing else can connect.
async fn start_relay() -> ip2p::TransportAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let addr = ip2p::TransportAddr(l.local_addr().expect("relay address"));
    tokio::spawn(ip2p::adapters::tokio::relay::run_relay(
        l,
        Default::default(),
    ));
    addr
}
