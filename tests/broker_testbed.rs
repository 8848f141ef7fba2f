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
