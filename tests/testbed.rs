//! Smoke tests of the network-namespace testbed (spec/testbed.md): the facts STUNT #2 and the UPnP
//! IGD tests rely on, checked on real Linux NAT. Each test skips with a message without root or the
//! Debian packages, and fails instead when `IP2P_REQUIRE_TESTBED=1`.
#![cfg(feature = "tokio")]

#[path = "support/netns.rs"]
mod netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use netns::{Host, Nat, Testbed, CORE_A, CORE_B, HOST_A, NAT_A_WAN, NAT_B_WAN};
use socket2::{Domain, Protocol, Socket, Type};

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// A blocking listener on core, all addresses, `port`.
fn listen_on_core(tb: &Testbed, port: u16) -> TcpListener {
    tb.run_in(Host::Core, move || {
        TcpListener::bind(v4(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind core:{port}: {e}"))
    })
}

/// Connect from hostA, local port `local` (SO_REUSEADDR), to `to`; returns the connected stream.
fn connect_from_a(tb: &Testbed, local: u16, to: SocketAddr) -> TcpStream {
    tb.run_in(Host::A, move || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.set_reuse_address(true).expect("SO_REUSEADDR");
        s.bind(&v4(HOST_A, local).into())
            .unwrap_or_else(|e| panic!("bind {local}: {e}"));
        s.connect_timeout(&to.into(), Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("connect {to}: {e}"));
        s.into()
    })
}

/// The public endpoint core sees for a connection from hostA's `local` port to core's `port`.
fn seen_by_core(
    tb: &Testbed,
    listener: &TcpListener,
    local: u16,
    port: u16,
) -> (SocketAddr, TcpStream) {
    let stream = connect_from_a(tb, local, v4(CORE_A, port));
    let (_conn, peer) = listener.accept().expect("accept on core");
    (peer, stream)
}

#[test]
fn masquerade_preserves_the_source_port() {
    let Some(tb) = Testbed::require(
        "masquerade_preserves_the_source_port",
        Nat::Masquerade,
        Nat::Masquerade,
    ) else {
        return;
    };
    let l1 = listen_on_core(&tb, 7001);
    let l2 = listen_on_core(&tb, 7002);
    // Ordinary connect: natA's public address, hostA's own port.
    let (peer, stream) = tb.run_in(Host::A, move || {
        let s =
            TcpStream::connect_timeout(&v4(CORE_A, 7001), Duration::from_secs(3)).expect("connect");
        let local = s.local_addr().expect("local addr");
        (local, s)
    });
    let (mut conn, seen) = l1.accept().expect("accept");
    assert_eq!(
        seen,
        v4(NAT_A_WAN, peer.port()),
        "core sees hostA {peer} as {seen}"
    );
    // Data flows both ways through the NAT.
    let mut stream = stream;
    stream.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).expect("read on core");
    assert_eq!(&buf, b"ping");
    conn.write_all(b"pong").expect("write on core");
    stream.read_exact(&mut buf).expect("read on hostA");
    assert_eq!(&buf, b"pong");
    // Two connections from one reserved port to two core ports: the same public port both times.
    let local = 40001;
    let (p1, _s1) = seen_by_core(&tb, &l1, local, 7001);
    let (p2, _s2) = seen_by_core(&tb, &l2, local, 7002);
    assert_eq!(p1, v4(NAT_A_WAN, local));
    assert_eq!(p2, v4(NAT_A_WAN, local));

    // Core is reached at CORE_B too (from both sides), and hostB is seen as natB's WAN address.
    for (h, to, wan) in [
        (Host::A, CORE_B, NAT_A_WAN),
        (Host::B, CORE_B, NAT_B_WAN),
        (Host::B, CORE_A, NAT_B_WAN),
    ] {
        let (local, _s) = tb.run_in(h, move || {
            let s =
                TcpStream::connect_timeout(&v4(to, 7001), Duration::from_secs(3)).expect("connect");
            (s.local_addr().expect("local addr"), s)
        });
        let (_conn, seen) = l1.accept().expect("accept");
        assert_eq!(seen, v4(wan, local.port()), "{h} -> {to}");
    }

    // UDP too: a datagram from hostA:43000 arrives from NAT_A_WAN:43000.
    let core_udp = tb.run_in(Host::Core, || {
        UdpSocket::bind(v4(Ipv4Addr::UNSPECIFIED, 7003)).expect("bind udp")
    });
    core_udp
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    tb.run_in(Host::A, || {
        let u = UdpSocket::bind(v4(HOST_A, 43000)).expect("bind udp");
        u.send_to(b"udp", v4(CORE_A, 7003)).expect("send");
    });
    let mut buf = [0u8; 8];
    let (n, from) = core_udp.recv_from(&mut buf).expect("udp datagram on core");
    assert_eq!(&buf[..n], b"udp");
    assert_eq!(from, v4(NAT_A_WAN, 43000));
}

#[test]
fn fully_random_changes_the_public_port() {
    let Some(tb) = Testbed::require(
        "fully_random_changes_the_public_port",
        Nat::FullyRandom,
        Nat::Masquerade,
    ) else {
        return;
    };
    let l1 = listen_on_core(&tb, 7001);
    let l2 = listen_on_core(&tb, 7002);
    let mut pairs = Vec::new();
    for i in 0..5u16 {
        let local = 41000 + i;
        let (p1, _s1) = seen_by_core(&tb, &l1, local, 7001);
        let (p2, _s2) = seen_by_core(&tb, &l2, local, 7002);
        assert_eq!(p1.ip(), NAT_A_WAN);
        assert_eq!(p2.ip(), NAT_A_WAN);
        pairs.push((local, p1.port(), p2.port()));
        if p1.port() != p2.port() {
            eprintln!(
                "fully-random: hostA port {local} seen as {} and {} (try {})",
                p1.port(),
                p2.port(),
                i + 1
            );
            return;
        }
    }
    panic!("fully-random NAT kept one public port for both destinations every time: {pairs:?}");
}

#[test]
fn unsolicited_syn_to_a_nat_is_dropped() {
    let Some(tb) = Testbed::require(
        "unsolicited_syn_to_a_nat_is_dropped",
        Nat::Masquerade,
        Nat::Masquerade,
    ) else {
        return;
    };
    // Something listens behind the NAT on that port, and nothing is mapped to it.
    let behind = tb.run_in(Host::A, || {
        let l = TcpListener::bind(v4(HOST_A, 4444)).expect("bind hostA:4444");
        l.set_nonblocking(true).expect("nonblocking");
        l
    });
    let t0 = Instant::now();
    let err = tb
        .run_in(Host::Core, || {
            TcpStream::connect_timeout(&v4(NAT_A_WAN, 4444), Duration::from_secs(1))
        })
        .expect_err("an unsolicited SYN from core must not be answered");
    assert_eq!(
        err.kind(),
        ErrorKind::TimedOut,
        "dropped silently (no RST), got {err}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(900));
    match behind.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the SYN reached hostA: {other:?}"),
    }
}

#[test]
fn drop_deletes_the_namespaces_even_on_panic() {
    let t0 = Instant::now();
    let Some(tb) = Testbed::require(
        "drop_deletes_the_namespaces_even_on_panic",
        Nat::Masquerade,
        Nat::FullyRandom,
    ) else {
        return;
    };
    eprintln!("testbed build: {} ms", t0.elapsed().as_millis());
    let names = tb.namespaces().to_vec();
    assert_eq!(names.len(), 5);
    let listed = netns_list();
    for n in &names {
        assert!(listed.contains(n), "{n} not in `ip netns list`:\n{listed}");
    }
    let t0 = Instant::now();
    drop(tb);
    eprintln!("testbed teardown: {} ms", t0.elapsed().as_millis());
    let listed = netns_list();
    for n in &names {
        assert!(!listed.contains(n), "{n} survived Drop:\n{listed}");
    }

    // A test that panics while holding a testbed (and a process inside it) still cleans up.
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let tb = Testbed::new(Nat::Masquerade, Nat::Masquerade).expect("testbed");
        let sleeper = std::process::Command::new("ip")
            .args(["netns", "exec", tb.ns(Host::Core), "sleep", "60"])
            .spawn()
            .expect("spawn sleep in core");
        tx.send((tb.namespaces().to_vec(), sleeper)).expect("send");
        panic!("deliberate panic with a live testbed");
    })
    .join();
    assert!(result.is_err(), "the thread should have panicked");
    let (names, mut sleeper) = rx.recv().expect("names");
    // Drop killed the process it found inside the namespace.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match sleeper.try_wait().expect("try_wait") {
            Some(status) => {
                assert!(!status.success(), "sleep 60 ended by itself? {status}");
                break;
            }
            None if Instant::now() > deadline => {
                let _ = sleeper.kill();
                let _ = sleeper.wait();
                panic!("the process inside the testbed survived its Drop");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let listed = netns_list();
    for n in &names {
        assert!(
            !listed.contains(n),
            "{n} survived a panicking test:\n{listed}"
        );
    }
}

fn netns_list() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// EHOSTUNREACH on Linux: what an ICMP time-exceeded for a SYN leaves in SO_ERROR.
const EHOSTUNREACH: i32 = 113;

#[test]
fn ttl_2_syn_from_host_b_dies_at_core() {
    let Some(tb) = Testbed::require_with(
        "ttl_2_syn_from_host_b_dies_at_core",
        Nat::Masquerade,
        Nat::Masquerade,
        &["conntrack"],
    ) else {
        return;
    };
    let port = 4555;
    let (local, so_error) = tb.run_in(Host::B, move || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.set_ttl(2).expect("IP_TTL 2");
        s.set_nonblocking(true).expect("nonblocking");
        match s.connect(&v4(NAT_A_WAN, port).into()) {
            Err(e) if e.raw_os_error() == Some(115) => {} // EINPROGRESS
            other => panic!("non-blocking connect: {other:?}"),
        }
        let local = s.local_addr().expect("local").as_socket().expect("inet");
        // The ICMP time-exceeded from core arrives within milliseconds; SO_ERROR reports it once.
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(2);
        let err = loop {
            match s.take_error().expect("SO_ERROR") {
                Some(e) => break Some(e),
                None if Instant::now() > deadline => break None,
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        eprintln!(
            "TTL-2 SYN: SO_ERROR {err:?} after {} us",
            t0.elapsed().as_micros()
        );
        (local, err.and_then(|e| e.raw_os_error()))
    });
    assert_eq!(
        so_error,
        Some(EHOSTUNREACH),
        "the TTL-2 SYN should die at core with an ICMP time-exceeded"
    );
    let dport = port.to_string();
    let sport = local.port().to_string();
    // natB forwarded it (and NATed it): a conntrack entry for hostB's flow to natA's WAN address.
    let in_b = tb.conntrack(
        Host::NatB,
        "tcp",
        &[
            "--orig-src",
            "10.0.2.2",
            "--orig-port-src",
            &sport,
            "--orig-port-dst",
            &dport,
        ],
    );
    assert_eq!(in_b.len(), 1, "natB conntrack: {in_b:?}");
    assert!(
        in_b[0].contains("dst=80.100.1.1"),
        "natB conntrack: {in_b:?}"
    );
    // natA never saw it.
    let in_a = tb.conntrack(Host::NatA, "tcp", &["--orig-port-dst", &dport]);
    assert!(in_a.is_empty(), "the TTL-2 SYN reached natA: {in_a:?}");
    // Control: natA's conntrack table does list a flow that crosses it (hostA to core, same port).
    let listener = listen_on_core(&tb, port);
    let _stream = connect_from_a(&tb, 42000, v4(CORE_A, port));
    let _conn = listener.accept().expect("accept");
    let in_a = tb.conntrack(Host::NatA, "tcp", &["--orig-port-dst", &dport]);
    assert_eq!(in_a.len(), 1, "natA conntrack after hostA->core: {in_a:?}");
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The rules of one chain of natA's `inet filter` table (`nft list chain`), without the braces.
fn chain_rules(tb: &Testbed, chain: &str) -> Vec<String> {
    let out = tb.exec(
        Host::NatA,
        &["nft", "list", "chain", "inet", "filter", chain],
    );
    assert!(
        out.status.success(),
        "nft list chain {chain}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("table") && !l.starts_with("chain") && *l != "}"
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn miniupnpd_maps_and_unmaps_a_port_for_upnpc() {
    let Some(tb) = Testbed::require_with(
        "miniupnpd_maps_and_unmaps_a_port_for_upnpc",
        Nat::Masquerade,
        Nat::Masquerade,
        &["miniupnpd", "upnpc"],
    ) else {
        return;
    };
    let t0 = Instant::now();
    let igd = tb
        .start_miniupnpd(Host::NatA)
        .expect("start miniupnpd in natA");
    eprintln!(
        "miniupnpd start to listening: {} ms",
        t0.elapsed().as_millis()
    );
    let lan_url = format!("http://{}:{}/", netns::NAT_A_LAN, igd.http_port());

    // Discovery (M-SEARCH from hostA) finds it.
    let out = tb.exec(Host::A, &["upnpc", "-s"]);
    let s = text(&out);
    assert!(
        out.status.success(),
        "upnpc -s: {s}\nminiupnpd: {}",
        igd.log()
    );
    assert!(s.contains("Found valid IGD"), "upnpc -s: {s}");
    assert!(s.contains(&lan_url), "upnpc -s names another IGD: {s}");
    assert!(
        s.contains("ExternalIPAddress = 80.100.1.1"),
        "upnpc -s: {s}"
    );

    // Add a mapping; time it as a user sees it (discovery included).
    let t0 = Instant::now();
    let out = tb.exec(Host::A, &["upnpc", "-a", "10.0.1.2", "4000", "4000", "TCP"]);
    let took = t0.elapsed();
    let s = text(&out);
    assert!(
        out.status.success(),
        "upnpc -a: {s}\nminiupnpd: {}",
        igd.log()
    );
    assert!(
        s.contains("is redirected to internal 10.0.1.2:4000"),
        "upnpc -a: {s}"
    );
    eprintln!("upnpc -a time to mapping: {} ms", took.as_millis());
    // miniupnpd writes raw payload matches: `@nh,128,32 0xa000102` is "IPv4 destination 10.0.1.2".
    let host_a_hex = format!("{:#x}", u32::from(HOST_A));
    let ruleset = tb.nft_ruleset(Host::NatA);
    let fwd = chain_rules(&tb, "miniupnpd");
    let dnat = chain_rules(&tb, "prerouting_miniupnpd");
    assert!(
        fwd.iter()
            .any(|r| r.contains(&host_a_hex) && r.contains("dport 4000") && r.contains("accept")),
        "no forward rule for the mapping:\n{ruleset}"
    );
    assert!(
        dnat.iter()
            .any(|r| r.contains("dport 4000") && r.contains("dnat") && r.contains("10.0.1.2:4000")),
        "no dnat rule for the mapping:\n{ruleset}"
    );

    // The mapping works: core reaches a listener on hostA through natA's public address.
    let behind = tb.run_in(Host::A, || {
        TcpListener::bind(v4(HOST_A, 4000)).expect("bind hostA:4000")
    });
    let mut from_core = tb
        .run_in(Host::Core, || {
            TcpStream::connect_timeout(&v4(NAT_A_WAN, 4000), Duration::from_secs(3))
        })
        .expect("connect to the mapped port from core");
    let (mut conn, peer) = behind.accept().expect("accept on hostA");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(CORE_A));
    from_core.write_all(b"hi").expect("write");
    let mut buf = [0u8; 2];
    conn.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hi");

    // Delete it: the rules are gone.
    let out = tb.exec(Host::A, &["upnpc", "-d", "4000", "TCP"]);
    assert!(out.status.success(), "upnpc -d: {}", text(&out));
    let ruleset = tb.nft_ruleset(Host::NatA);
    assert!(
        !chain_rules(&tb, "miniupnpd")
            .iter()
            .any(|r| r.contains("dport 4000")),
        "forward rule left after upnpc -d:\n{ruleset}"
    );
    assert!(
        !chain_rules(&tb, "prerouting_miniupnpd")
            .iter()
            .any(|r| r.contains("dport 4000")),
        "dnat rule left after upnpc -d:\n{ruleset}"
    );

    // A mapping left behind when miniupnpd stops is flushed by the guard's Drop.
    let out = tb.exec(
        Host::A,
        &[
            "upnpc",
            "-u",
            &igd.root_desc_url(),
            "-a",
            "10.0.1.2",
            "4001",
            "4001",
            "UDP",
        ],
    );
    assert!(out.status.success(), "upnpc -a 4001: {}", text(&out));
    assert!(!chain_rules(&tb, "miniupnpd").is_empty());
    drop(igd);
    for chain in ["miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"] {
        let rules = chain_rules(&tb, chain);
        assert!(
            rules.is_empty(),
            "chain {chain} not empty after stop: {rules:?}"
        );
    }
}

#[test]
fn miniupnpd_runs_in_both_nats_at_once() {
    let Some(tb) = Testbed::require_with(
        "miniupnpd_runs_in_both_nats_at_once",
        Nat::Masquerade,
        Nat::FullyRandom,
        &["miniupnpd", "upnpc"],
    ) else {
        return;
    };
    let igd_a = tb.start_miniupnpd(Host::NatA).expect("miniupnpd in natA");
    let igd_b = tb
        .start_miniupnpd_with(Host::NatB, "force_igd_desc_v1=yes\n")
        .expect("miniupnpd in natB");
    // Each host discovers its own NAT's IGD, with the WAN address of that NAT.
    for (host, igd, wan, lan) in [
        (Host::A, &igd_a, NAT_A_WAN, netns::NAT_A_LAN),
        (Host::B, &igd_b, netns::NAT_B_WAN, netns::NAT_B_LAN),
    ] {
        let out = tb.exec(host, &["upnpc", "-s"]);
        let s = text(&out);
        assert!(
            out.status.success(),
            "upnpc -s in {host}: {s}\nminiupnpd: {}",
            igd.log()
        );
        assert!(
            s.contains(&format!("http://{lan}:{}/", igd.http_port())),
            "{host}: {s}"
        );
        assert!(
            s.contains(&format!("ExternalIPAddress = {wan}")),
            "{host}: {s}"
        );
    }
    // The extra config line took effect: natB describes itself as IGD v1, natA (default) as v2.
    let desc_a = tb.run_in(Host::A, || {
        http_get(netns::NAT_A_LAN, 5000, "/rootDesc.xml")
    });
    let desc_b = tb.run_in(Host::B, || {
        http_get(netns::NAT_B_LAN, 5000, "/rootDesc.xml")
    });
    assert!(
        desc_a.contains("urn:schemas-upnp-org:device:InternetGatewayDevice:2"),
        "{desc_a}"
    );
    assert!(
        desc_b.contains("urn:schemas-upnp-org:device:InternetGatewayDevice:1"),
        "{desc_b}"
    );
    assert!(!desc_b.contains("InternetGatewayDevice:2"), "{desc_b}");
}

/// A plain HTTP/1.0 GET, whole response as text.
fn http_get(ip: Ipv4Addr, port: u16, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&v4(ip, port), Duration::from_secs(3)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n").expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body
}
