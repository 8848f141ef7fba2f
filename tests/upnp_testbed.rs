//! The tokio UPnP adapter against the real miniupnpd (Debian miniupnpd-nftables) in natA of the
//! network-namespace testbed (spec/testbed.md), from hostA. Skips with a message without root or
//! the Debian packages; fails instead when `IP2P_REQUIRE_TESTBED=1`.
#![cfg(feature = "tokio")]

#[path = "support/netns.rs"]
mod netns;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ip2p::adapters::tokio::upnp::Igd;
use netns::{Host, Nat, Testbed, CORE_A, HOST_A, NAT_A_LAN, NAT_A_WAN};

/// natA's DNAT rules that send external `port` to hostA:`internal`.
fn dnat_to_host_a(tb: &Testbed, port: u16, internal: u16) -> bool {
    let want = format!("{HOST_A}:{internal}");
    tb.nft_ruleset(Host::NatA)
        .lines()
        .any(|l| l.contains(&format!("dport {port} ")) && l.contains("dnat") && l.contains(&want))
}

#[test]
fn maps_through_miniupnpd_and_inbound_arrives_then_unmaps() {
    let Some(tb) = Testbed::require_with(
        "maps_through_miniupnpd_and_inbound_arrives_then_unmaps",
        Nat::Masquerade,
        Nat::Masquerade,
        &["miniupnpd"],
    ) else {
        return;
    };
    let igd = tb
        .start_miniupnpd(Host::NatA)
        .expect("start miniupnpd in natA");
    let log = || igd.log();

    // a listener on hostA that the mapping will expose
    let behind = tb.run_in(Host::A, || {
        TcpListener::bind(SocketAddr::new(IpAddr::V4(HOST_A), 4100)).expect("bind hostA:4100")
    });

    // discover, ask the external address, map
    let (cache, ext_ip, mapping) = tb.block_on_in(Host::A, || async {
        let igd = Igd::discover(Duration::from_secs(3))
            .await
            .expect("discover miniupnpd");
        let ip = igd.external_ip().await.expect("GetExternalIPAddress");
        let m = igd
            .add_port_mapping(
                "0.0.0.0:4100".parse().unwrap(),
                4100,
                Duration::from_secs(300),
                "ip2p test",
            )
            .await
            .expect("AddPortMapping");
        (igd.cache().expect("cache"), ip, m)
    });
    assert_eq!(ext_ip, IpAddr::V4(NAT_A_WAN), "miniupnpd: {}", log());
    assert_eq!(cache.location.addr.ip(), IpAddr::V4(NAT_A_LAN));
    assert_eq!(
        mapping.external,
        SocketAddr::new(IpAddr::V4(NAT_A_WAN), 4100)
    );
    assert_eq!(mapping.internal, SocketAddr::new(IpAddr::V4(HOST_A), 4100));
    assert!(
        dnat_to_host_a(&tb, 4100, 4100),
        "no DNAT rule while the mapping is in use:\n{}",
        tb.nft_ruleset(Host::NatA)
    );

    // a real TCP connection from core to 80.100.1.1:4100 reaches the listener on hostA
    let to = mapping.external;
    let mut from_core = tb
        .run_in(Host::Core, move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(3))
        })
        .expect("connect to the mapped port from core");
    let (mut conn, peer) = behind.accept().expect("accept on hostA");
    assert_eq!(peer.ip(), IpAddr::V4(CORE_A));
    from_core.write_all(b"E.4").expect("write");
    let mut buf = [0u8; 3];
    conn.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"E.4");

    // delete (warm, from the cache: one connection): the rule is gone
    tb.block_on_in(Host::A, move || async move {
        let warm = Igd::from_cache(cache);
        warm.delete_port_mapping(&mapping)
            .await
            .expect("DeletePortMapping");
    });
    assert!(
        !dnat_to_host_a(&tb, 4100, 4100),
        "DNAT rule left after DeletePortMapping:\n{}",
        tb.nft_ruleset(Host::NatA)
    );
}

#[test]
fn conflict_718_with_upnpc_picks_the_next_port_and_delete_all_cleans_up() {
    let Some(tb) = Testbed::require_with(
        "conflict_718_with_upnpc_picks_the_next_port_and_delete_all_cleans_up",
        Nat::Masquerade,
        Nat::Masquerade,
        &["miniupnpd", "upnpc"],
    ) else {
        return;
    };
    let igd = tb
        .start_miniupnpd(Host::NatA)
        .expect("start miniupnpd in natA");
    // Someone else holds external port 4200: upnpc for another LAN host, 10.0.1.3 (miniupnpd
    // answers 718 only when the internal client differs; for the same client it replaces the
    // mapping, and in secure mode a client may only map to itself). hostA gets 10.0.1.3 as a
    // second address, used as the source of upnpc's connections, then 10.0.1.2 again for ours.
    let ip = |args: &[&str]| {
        let out = tb.exec(Host::A, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ip(&["ip", "addr", "add", "10.0.1.3/24", "dev", "eth0"]);
    ip(&[
        "ip",
        "route",
        "replace",
        "10.0.1.0/24",
        "dev",
        "eth0",
        "src",
        "10.0.1.3",
    ]);
    let url = igd.root_desc_url();
    let out = tb.exec(
        Host::A,
        &["upnpc", "-u", &url, "-a", "10.0.1.3", "4201", "4200", "TCP"],
    );
    ip(&[
        "ip",
        "route",
        "replace",
        "10.0.1.0/24",
        "dev",
        "eth0",
        "src",
        "10.0.1.2",
    ]);
    let upnpc_rule = |tb: &Testbed| {
        tb.nft_ruleset(Host::NatA)
            .lines()
            .any(|l| l.contains("dport 4200 ") && l.contains("dnat") && l.contains("10.0.1.3:4201"))
    };
    assert!(
        out.status.success() && upnpc_rule(&tb),
        "upnpc -a: {}\nminiupnpd: {}",
        String::from_utf8_lossy(&out.stdout),
        igd.log()
    );
    let (port, deleted) = tb.block_on_in(Host::A, || async {
        let igd = Igd::discover(Duration::from_secs(3))
            .await
            .expect("discover");
        let m = igd
            .add_port_mapping(
                "0.0.0.0:4300".parse().unwrap(),
                4200,
                Duration::from_secs(300),
                "ip2p test",
            )
            .await
            .expect("AddPortMapping after a conflict");
        let port = m.external.port();
        (port, igd.delete_all().await.expect("delete_all"))
    });
    assert_eq!(port, 4201, "718 on 4200 → the next port");
    assert_eq!(deleted, 1);
    assert!(!dnat_to_host_a(&tb, 4201, 4300), "our mapping left behind");
    assert!(upnpc_rule(&tb), "upnpc's mapping must stay");
}
