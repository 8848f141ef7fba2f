//! P2PBroker's probe through real Linux NATs (the namespace testbed, `spec/testbed.md`): from
//! hostA, a STUNT #2 prediction against the server on `core` and an UPnP discovery, at once; the
//! profile must name the NAT for what it is. Needs root (skips otherwise, fails with
//! `IP2P_REQUIRE_TESTBED=1`).
#![cfg(feature = "tokio")]

#[path = "support/netns.rs"]
mod netns;
#[path = "support/predict_server.rs"]
mod predict_server;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ip2p::adapters::tokio::broker::{probe, ProbeOptions};
use ip2p::adapters::tokio::upnp::Options;
use ip2p::broker::{NatBehaviour, Profile};
use netns::{Host, Nat, Testbed, CORE_A, HOST_A, NAT_A_WAN};
use predict_server::{prediction_server, PREDICT_PORTS};

fn options() -> ProbeOptions {
    let mut upnp = Options::default();
    upnp.config.discovery_timeout = Duration::from_secs(1);
    ProbeOptions {
        servers: PREDICT_PORTS
            .iter()
            .map(|p| SocketAddr::new(IpAddr::V4(CORE_A), *p))
            .collect(),
        upnp: Some(upnp),
        ..ProbeOptions::default()
    }
}

fn probe_from_a(tb: &Testbed) -> (Profile, Duration) {
    tb.block_on_in(Host::A, || async {
        let t = Instant::now();
        let p = probe(IpAddr::V4(HOST_A), &options()).await;
        (p, t.elapsed())
    })
}

#[test]
fn probes_name_each_nat_for_what_it_is() {
    // port-preserving masquerade, no IGD
    let Some(tb) = Testbed::require("broker probe: masquerade", Nat::Masquerade, Nat::Masquerade)
    else {
        return;
    };
    let _server = prediction_server(&tb);
    let (p, t) = probe_from_a(&tb);
    println!("masquerade: {p:?} in {t:?}");
    assert_eq!(
        p.nat,
        NatBehaviour::EndpointIndependent { preserving: true }
    );
    assert_eq!(p.public, Some(IpAddr::V4(NAT_A_WAN)));
    assert_eq!(p.igd, None);
    let again = probe_from_a(&tb).0;
    assert_eq!(again.network(), p.network(), "one network, one name");

    // the same NAT with miniupnpd: the IGD's external address is found too
    let _igd = tb.start_miniupnpd(Host::NatA).expect("miniupnpd in natA");
    let (q, t) = probe_from_a(&tb);
    println!("masquerade + miniupnpd: {q:?} in {t:?}");
    assert_eq!(q.igd, Some(IpAddr::V4(NAT_A_WAN)));
    assert_eq!(
        q.nat,
        NatBehaviour::EndpointIndependent { preserving: true }
    );
    drop(_igd);
    drop(_server);
    drop(tb);

    // fully random ports: a symmetric NAT
    let Some(tb) = Testbed::require(
        "broker probe: fully random",
        Nat::FullyRandom,
        Nat::Masquerade,
    ) else {
        return;
    };
    let _server = prediction_server(&tb);
    let (r, t) = probe_from_a(&tb);
    println!("fully random: {r:?} in {t:?}");
    assert_eq!(r.nat, NatBehaviour::Random);
    assert_eq!(r.igd, None);
    assert!(!r.nat.predictable());
}

// ----- every pair of networks, iP2P end to end --------------------------------------------------

use ip2p::adapters::tokio::emulated::SmsNetwork;
use ip2p::adapters::tokio::ip2p::{spawn, HostConfig, HostEvent, Traversal};
use ip2p::adapters::tokio::relay::run_relay;
use ip2p::broker::BrokerConfig;
use ip2p::ip2p::wire::{AppName, Key, Mode};
use ip2p::ip2p::{Config, Peer};
use ip2p::{Msisdn, TransportAddr};
use netns::HOST_B;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The four kinds of network of the issue, as the testbed builds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Public,
    Predictable,
    Igd,
    Symmetric,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Public, Kind::Predictable, Kind::Igd, Kind::Symmetric];
    fn nat(self) -> Nat {
        match self {
            Kind::Public => Nat::Public,
            Kind::Predictable | Kind::Igd => Nat::Masquerade,
            Kind::Symmetric => Nat::FullyRandom,
        }
    }
}

/// The cheapest mode the two networks allow (spec/broker.md's table).
fn expected(caller: Kind, callee: Kind) -> Mode {
    match (caller, callee) {
        (_, Kind::Public) => Mode::Direct,
        (_, Kind::Igd) => Mode::Upnp,
        (Kind::Symmetric, Kind::Predictable) => Mode::Relay,
        (_, Kind::Predictable) => Mode::Stunt2,
        (_, Kind::Symmetric) => Mode::Relay,
    }
}

const RELAY_PORT: u16 = 4000;

/// The relay on core, for two minutes.
fn start_relay(tb: &Testbed) {
    let relay = tb.run_in(Host::Core, || {
        let l = std::net::TcpListener::bind(("0.0.0.0", RELAY_PORT)).expect("relay port");
        l.set_nonblocking(true).expect("nonblocking");
        l
    });
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(relay).expect("listener");
            let _ =
                tokio::time::timeout(Duration::from_secs(120), run_relay(l, Default::default()))
                    .await;
        });
    });
}

fn phone_config(me: Msisdn, other: Msisdn) -> Config {
    let broker = BrokerConfig {
        relay: Some(TransportAddr(SocketAddr::new(
            IpAddr::V4(CORE_A),
            RELAY_PORT,
        ))),
        ..BrokerConfig::default()
    };
    let mut c = Config::new(me)
        .with_peer(other, Key::from_bytes([8; 32]))
        .with_app(AppName::new("ftp").unwrap())
        .with_broker(broker);
    c.sms_timeout = Duration::from_secs(5);
    c.map_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(5);
    c.punch_wait = Duration::from_millis(50);
    c.idle_off = Duration::from_millis(300);
    c
}

fn host(profile: Profile) -> HostConfig {
    let o = options();
    HostConfig {
        profile: Some(profile),
        traversal: Traversal::Brokered {
            upnp: o.upnp.clone(),
            lease: Duration::from_secs(600),
            servers: o.servers.clone(),
            predict: o.predict,
            punch_timeout: Duration::from_secs(5),
        },
        ..HostConfig::default()
    }
}

/// One call from hostA to hostB: (mode, set-up time, modes that failed) or the error. The
/// callee's profile is what it probes, or `stale_b` if given.
fn call_with(
    tb: &Testbed,
    net: &SmsNetwork,
    stale_b: Option<Profile>,
) -> Result<(Mode, Duration, Vec<Mode>), String> {
    let (a, b): (Msisdn, Msisdn) = (
        "+886900000001".parse().unwrap(),
        "+886900000002".parse().unwrap(),
    );
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let net_b = net.clone();
        scope.spawn(move || {
            tb.block_on_in(Host::B, move || async move {
                let profile = match stale_b {
                    Some(p) => p,
                    None => probe(IpAddr::V4(HOST_B), &options()).await,
                };
                let links = net_b.links(b, IpAddr::V4(HOST_B), Duration::from_millis(20));
                let (_h, mut events) = spawn(Peer::new(phone_config(b, a)), links, host(profile));
                let _ = ready_tx.send(());
                let serve = async {
                    while let Some(e) = events.recv().await {
                        if let HostEvent::Incoming(mut s) = e {
                            let mut buf = [0u8; 5];
                            if s.stream.read_exact(&mut buf).await.is_ok() {
                                let _ = s.stream.write_all(&buf).await;
                            }
                            let mut rest = Vec::new();
                            let _ = s.stream.read_to_end(&mut rest).await;
                        }
                    }
                };
                let wait = async {
                    loop {
                        if done_rx.try_recv().is_ok() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                tokio::select! { _ = serve => {}, _ = wait => {} }
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        });
        let _ = ready_rx.recv();
        let net_a = net.clone();
        let r = tb.block_on_in(Host::A, move || async move {
            let profile = probe(IpAddr::V4(HOST_A), &options()).await;
            let links = net_a.links(a, IpAddr::V4(HOST_A), Duration::from_millis(20));
            let (h, _events) = spawn(Peer::new(phone_config(a, b)), links, host(profile));
            let t0 = Instant::now();
            let r = match tokio::time::timeout(
                Duration::from_secs(40),
                h.connect(b, AppName::new("ftp").unwrap()),
            )
            .await
            {
                Ok(Ok(mut conn)) => {
                    let took = t0.elapsed();
                    let _ = conn.stream.write_all(b"hello").await;
                    let mut buf = [0u8; 5];
                    match conn.stream.read_exact(&mut buf).await {
                        Ok(_) if &buf == b"hello" => {
                            Ok((conn.mode, took, conn.failed.iter().map(|f| f.0).collect()))
                        }
                        _ => Err(format!("connected in {} but no echo", conn.mode)),
                    }
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no result in 40 s".into()),
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            r
        });
        let _ = done_tx.send(());
        r
    })
}

fn call(tb: &Testbed, net: &SmsNetwork) -> Result<(Mode, Duration), String> {
    call_with(tb, net, None).map(|(m, t, _)| (m, t))
}

/// Calls per pair of networks.
const RUNS: usize = 2;

#[test]
fn every_pair_of_networks_connects_in_the_cheapest_mode() {
    let mut table = Vec::new();
    for ka in Kind::ALL {
        for kb in Kind::ALL {
            let name = format!("broker: {ka:?} → {kb:?}");
            let Some(tb) = Testbed::require(&name, ka.nat(), kb.nat()) else {
                return;
            };
            let _server = prediction_server(&tb);
            let _igds: Vec<_> = [(ka, Host::NatA), (kb, Host::NatB)]
                .iter()
                .filter(|(k, _)| *k == Kind::Igd)
                .map(|(_, h)| tb.start_miniupnpd(*h).expect("miniupnpd"))
                .collect();
            start_relay(&tb);
            let net = SmsNetwork::new(Duration::from_millis(20));
            for run in 0..RUNS {
                let r = call(&tb, &net);
                println!("{ka:?} → {kb:?} run {run}: {r:?}");
                table.push((ka, kb, r));
            }
        }
    }
    println!("\n| caller | callee | expected | runs ok | mode(s) | set-up (ms) |");
    let mut failures = Vec::new();
    for ka in Kind::ALL {
        for kb in Kind::ALL {
            let rows: Vec<_> = table.iter().filter(|r| r.0 == ka && r.1 == kb).collect();
            let ok: Vec<_> = rows.iter().filter_map(|r| r.2.as_ref().ok()).collect();
            let modes: Vec<String> = ok.iter().map(|(m, _)| m.to_string()).collect();
            let times: Vec<String> = ok
                .iter()
                .map(|(_, t)| format!("{:.0}", t.as_secs_f64() * 1e3))
                .collect();
            println!(
                "| {ka:?} | {kb:?} | {} | {}/{} | {} | {} |",
                expected(ka, kb),
                ok.len(),
                rows.len(),
                modes.join(", "),
                times.join(", ")
            );
            for r in rows {
                match &r.2 {
                    Ok((m, _)) if *m == expected(ka, kb) => {}
                    other => failures.push(format!("{ka:?} → {kb:?}: {other:?}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_stale_profile_falls_back_and_the_time_is_measured() {
    // hostB moved behind a symmetric NAT but still believes it is public: direct fails (its own
    // address is not routed), STUNT #2 cannot predict, the relay carries the call
    let Some(tb) = Testbed::require("broker: stale profile", Nat::Masquerade, Nat::FullyRandom)
    else {
        return;
    };
    let _server = prediction_server(&tb);
    start_relay(&tb);
    let net = SmsNetwork::new(Duration::from_millis(20));
    let stale = Profile::public(IpAddr::V4(HOST_B));
    let r = call_with(&tb, &net, Some(stale));
    println!("stale profile: {r:?}");
    let (mode, took, failed) = r.expect("connected after falling back");
    assert_eq!(mode, Mode::Relay);
    assert_eq!(failed, [Mode::Direct]);
    println!("fell back from direct to the relay in {took:?}");
}
