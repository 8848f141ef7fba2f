//! iP2P behind real Linux NATs: two phones in `hostA` and `hostB` of the namespace testbed
//! (`tests/support/netns.rs`), their SMS carried by an in-memory SMS centre, their radios emulated,
//! everything on IP real: the tokio host of each phone runs the peer's `Map`/`Punch` through a real
//! miniupnpd (steps E.1–E.5) or a real port-prediction server on `core` and a real TTL-limited
//! SYN (steps D.1–D.6), and the test checks the end: a TCP connection carrying data both ways, the
//! mapping visible in the NAT's ruleset while in use and gone after close, and, behind symmetric
//! NATs, a typed failure instead of a hang. Needs root (skips otherwise, fails with
//! `IP2P_REQUIRE_TESTBED=1`).
#![cfg(feature = "tokio")]

#[path = "support/netns.rs"]
mod netns;
#[path = "support/predict_server.rs"]
mod predict_server;
#[path = "support/radio.rs"]
mod radio;

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use ip2p::adapters::tokio::ip2p::{spawn, ConnectError, HostConfig, HostEvent, Links, Traversal};
use ip2p::adapters::tokio::upnp::Options;
use ip2p::ip2p::wire::{AppName, Key, Mode};
use ip2p::ip2p::{Config, Failure, MapFailure, Peer};
use ip2p::stunt::predict::PredictConfig;
use ip2p::Msisdn;
use netns::{Host, Nat, Testbed, CORE_A, HOST_A, HOST_B};
use predict_server::{prediction_server, PREDICT_PORTS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn a() -> Msisdn {
    "+886900000001".parse().unwrap()
}
fn b() -> Msisdn {
    "+886900000002".parse().unwrap()
}
fn ftp() -> AppName {
    AppName::new("ftp").unwrap()
}

/// The SMS network between the two phones: one channel each way, delivered after `delay`.
struct SmsCentre {
    a_out: mpsc::UnboundedSender<(Msisdn, Vec<u8>)>,
    a_in: mpsc::Receiver<(Msisdn, Vec<u8>)>,
    b_out: mpsc::UnboundedSender<(Msisdn, Vec<u8>)>,
    b_in: mpsc::Receiver<(Msisdn, Vec<u8>)>,
}

/// Start the SMS centre on its own thread (the phones run in other namespaces and runtimes).
fn sms_centre(delay: Duration) -> SmsCentre {
    let (a_out, mut a_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
    let (b_out, mut b_rx) = mpsc::unbounded_channel::<(Msisdn, Vec<u8>)>();
    let (a_tx, a_in) = mpsc::channel(16);
    let (b_tx, b_in) = mpsc::channel(16);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            loop {
                tokio::select! {
                    Some((to, p)) = a_rx.recv() => {
                        assert_eq!(to, b());
                        let tx = b_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = tx.send((a(), p)).await;
                        });
                    }
                    Some((to, p)) = b_rx.recv() => {
                        assert_eq!(to, a());
                        let tx = a_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = tx.send((b(), p)).await;
                        });
                    }
                    else => break,
                }
            }
        });
    });
    SmsCentre {
        a_out,
        a_in,
        b_out,
        b_in,
    }
}

fn config(me: Msisdn, other: Msisdn, mode: Mode) -> Config {
    let mut c = Config::new(me)
        .with_peer(other, Key::from_bytes([3; 32]))
        .with_mode(mode);
    c.sms_timeout = Duration::from_secs(5);
    c.map_timeout = Duration::from_secs(5);
    c.punch_wait = Duration::from_millis(50);
    c.idle_off = Duration::from_millis(300);
    c
}

/// What the caller saw.
#[derive(Debug)]
struct CallerReport {
    /// The echo came back.
    echoed: bool,
    /// Where it connected (the callee's public address).
    peer: Option<SocketAddr>,
    /// Time from `connect` to the connection (or the error).
    took: Duration,
    /// The error, if any.
    error: Option<String>,
    /// The failure, if the protocol failed.
    failure: Option<Failure>,
}

/// Run one call from hostA to hostB with both hosts using `traversal_*`; `hold` runs (on the
/// test thread) while the connection is open, before the caller closes it.
fn call(
    tb: &Testbed,
    mode: Mode,
    traversal_a: Traversal,
    traversal_b: Traversal,
    hold: impl FnOnce(&CallerReport),
) -> CallerReport {
    let sms = sms_centre(Duration::from_millis(20));
    let (done_tx, done_rx) = std_mpsc::channel::<CallerReport>();
    let (close_tx, close_rx) = std_mpsc::channel::<()>();
    let (b_done_tx, b_done_rx) = std_mpsc::channel::<bool>();
    // ends the callee's wait when the caller failed (nothing will come)
    let (b_stop, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let report = std::thread::scope(|scope| {
        let (b_out, b_in) = (sms.b_out, sms.b_in);
        scope.spawn(move || {
            tb.block_on_in(Host::B, move || async move {
                let r = radio::radio(IpAddr::V4(HOST_B), Duration::from_millis(20));
                let links = Links {
                    sms_out: b_out,
                    sms_in: b_in,
                    radio_out: r.commands,
                    radio_in: r.events,
                };
                let host = HostConfig {
                    traversal: traversal_b,
                    ..HostConfig::default()
                };
                let (_h, mut events) = spawn(
                    Peer::new(config(b(), a(), mode).with_app(ftp())),
                    links,
                    host,
                );
                // the callee's application: echo one message, then wait for the caller's close
                let serve = tokio::time::timeout(Duration::from_secs(30), async {
                    loop {
                        match events.recv().await {
                            Some(HostEvent::Incoming(mut s)) => {
                                let mut buf = [0u8; 5];
                                if s.stream.read_exact(&mut buf).await.is_err() {
                                    return false;
                                }
                                let _ = s.stream.write_all(&buf).await;
                                let mut rest = Vec::new();
                                let _ = s.stream.read_to_end(&mut rest).await;
                                return true;
                            }
                            Some(_) => {}
                            None => return false,
                        }
                    }
                });
                let served = tokio::select! {
                    r = serve => r.unwrap_or(false),
                    Ok(()) = b_stopped => false,
                };
                let _ = b_done_tx.send(served);
                // let the host release its mapping before the runtime ends
                drop(events);
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        });
        let (a_out, a_in) = (sms.a_out, sms.a_in);
        scope.spawn(move || {
            tb.block_on_in(Host::A, move || async move {
                let r = radio::radio(IpAddr::V4(HOST_A), Duration::from_millis(20));
                let links = Links {
                    sms_out: a_out,
                    sms_in: a_in,
                    radio_out: r.commands,
                    radio_in: r.events,
                };
                let host = HostConfig {
                    traversal: traversal_a,
                    ..HostConfig::default()
                };
                let (h, _events) = spawn(Peer::new(config(a(), b(), mode)), links, host);
                let t0 = Instant::now();
                let mut report = CallerReport {
                    echoed: false,
                    peer: None,
                    took: Duration::ZERO,
                    error: None,
                    failure: None,
                };
                match tokio::time::timeout(Duration::from_secs(40), h.connect(b(), ftp())).await {
                    Ok(Ok(mut conn)) => {
                        report.took = t0.elapsed();
                        report.peer = conn.stream.peer_addr().ok();
                        let _ = conn.stream.write_all(b"hello").await;
                        let mut buf = [0u8; 5];
                        report.echoed =
                            conn.stream.read_exact(&mut buf).await.is_ok() && &buf == b"hello";
                        let _ = done_tx.send(report);
                        let _ = close_rx.recv();
                        drop(conn);
                    }
                    Ok(Err(e)) => {
                        report.took = t0.elapsed();
                        if let ConnectError::Failed(f) = &e {
                            report.failure = Some(*f);
                        }
                        report.error = Some(e.to_string());
                        let _ = done_tx.send(report);
                    }
                    Err(_) => {
                        report.took = t0.elapsed();
                        report.error = Some("hung: no result in 40 s".into());
                        let _ = done_tx.send(report);
                    }
                }
                // the host releases the caller's mapping on close: give it time
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        });
        let report = done_rx.recv().expect("the caller reports");
        if report.error.is_none() {
            hold(&report);
        } else {
            let _ = b_stop.send(());
        }
        let _ = close_tx.send(());
        report
    });
    if report.error.is_none() {
        assert_eq!(
            b_done_rx.recv().ok(),
            Some(true),
            "the callee served the call"
        );
    }
    report
}

/// The DNAT rules miniupnpd keeps in `nat`'s namespace mentioning `port`.
fn upnp_rules(tb: &Testbed, nat: Host, port: u16) -> Vec<String> {
    let needle = format!("dport {port} ");
    tb.nft_ruleset(nat)
        .lines()
        .filter(|l| l.contains(&needle) && l.contains("dnat"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn upnp_e1_to_e5_through_miniupnpd() {
    let Some(tb) = Testbed::require_with(
        "upnp_e1_to_e5_through_miniupnpd",
        Nat::Masquerade,
        Nat::Masquerade,
        &["miniupnpd"],
    ) else {
        return;
    };
    let _igd_a = tb.start_miniupnpd(Host::NatA).expect("miniupnpd in natA");
    let _igd_b = tb.start_miniupnpd(Host::NatB).expect("miniupnpd in natB");
    let traversal = || Traversal::Upnp {
        options: Options::default(),
        lease: Duration::from_secs(600),
    };
    let mut ports = None;
    let report = call(&tb, Mode::Upnp, traversal(), traversal(), |r| {
        // E.5 went to natB's public address; both mappings are in the rulesets while in use
        let peer = r.peer.expect("connected peer");
        assert_eq!(
            peer.ip(),
            IpAddr::V4(netns::NAT_B_WAN),
            "E.5 connects to IPB:PortB"
        );
        let rules_b = upnp_rules(&tb, Host::NatB, peer.port());
        assert!(
            !rules_b.is_empty(),
            "natB maps PortB while in use:\n{}",
            tb.nft_ruleset(Host::NatB)
        );
        let rules_a: Vec<String> = tb
            .nft_ruleset(Host::NatA)
            .lines()
            .filter(|l| l.contains("dnat ip to 10.0.1.2:"))
            .map(str::to_string)
            .collect();
        assert!(
            !rules_a.is_empty(),
            "natA maps PortA (E.1):\n{}",
            tb.nft_ruleset(Host::NatA)
        );
        eprintln!("in use: natA {rules_a:?}; natB {rules_b:?}");
        ports = Some(peer.port());
    });
    assert!(report.error.is_none(), "E.1-E.5 failed: {report:?}");
    assert!(report.echoed, "data both ways");
    eprintln!("E.1-E.5 through miniupnpd: connected in {:?}", report.took);
    let port_b = ports.expect("held");
    assert!(
        wait_until(|| upnp_rules(&tb, Host::NatB, port_b).is_empty()),
        "natB's mapping is deleted after close:\n{}",
        tb.nft_ruleset(Host::NatB)
    );
    assert!(
        wait_until(|| !tb.nft_ruleset(Host::NatA).contains("dnat ip to 10.0.1.2:")),
        "natA's mapping is deleted after close:\n{}",
        tb.nft_ruleset(Host::NatA)
    );
}

fn stunt() -> Traversal {
    Traversal::Stunt {
        servers: PREDICT_PORTS
            .iter()
            .map(|p| SocketAddr::new(IpAddr::V4(CORE_A), *p))
            .collect(),
        predict: PredictConfig::default(),
        punch_timeout: Duration::from_secs(5),
    }
}

/// Calls through the real port-preserving NATs in a row: D.1-D.6 must succeed every time.
const D_RUNS: usize = 10;

#[test]
fn stunt_d1_to_d6_through_predictable_nats() {
    let Some(tb) = Testbed::require(
        "stunt_d1_to_d6_through_predictable_nats",
        Nat::Masquerade,
        Nat::Masquerade,
    ) else {
        return;
    };
    let _server = prediction_server(&tb);
    let mut times = Vec::new();
    for run in 0..D_RUNS {
        let report = call(&tb, Mode::Stunt2, stunt(), stunt(), |r| {
            // natB has no port mapping and drops unsolicited SYNs: only the punch lets A in
            let peer = r.peer.expect("connected peer");
            assert_eq!(
                peer.ip(),
                IpAddr::V4(netns::NAT_B_WAN),
                "D.6 connects to IPB:PortB"
            );
        });
        assert!(
            report.error.is_none(),
            "run {run}: D.1-D.6 failed: {report:?}"
        );
        assert!(report.echoed, "run {run}: data both ways");
        times.push(report.took);
    }
    times.sort();
    eprintln!(
        "D.1-D.6 through masquerade: {}/{} connected, median {:?} from connect() to the stream (SMS 20 ms each way, attach 20 ms)",
        times.len(),
        D_RUNS,
        times[times.len() / 2]
    );
}

#[test]
fn stunt_behind_symmetric_nats_fails_with_a_reason() {
    let Some(tb) = Testbed::require(
        "stunt_behind_symmetric_nats_fails_with_a_reason",
        Nat::FullyRandom,
        Nat::FullyRandom,
    ) else {
        return;
    };
    let _server = prediction_server(&tb);
    let report = call(&tb, Mode::Stunt2, stunt(), stunt(), |_| {});
    assert_eq!(
        report.failure,
        Some(Failure::MapFailed(MapFailure::Unpredictable)),
        "the caller's own prediction says its NAT is unpredictable: {report:?}"
    );
    assert!(
        report.took < Duration::from_secs(5),
        "fails fast: {report:?}"
    );
    eprintln!(
        "D.1 behind fully-random NATs: {:?} after {:?}",
        report.error, report.took
    );
}
