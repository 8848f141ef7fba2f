//! SAMP over real UDP sockets on loopback: a ring of six SAMP servers built by real Chord joins
//! through the tokio adapter, a real mobile node and a real correspondent on their own sockets.
//!
//! The MN discovers an anchor (unicast discovery addresses stand in for the multicast group:
//! every server here shares 127.0.0.1, so multicast to 224.0.1.75:5060 cannot reach servers on
//! distinct ports), registers with it and, through it, with its home (the owner of H(AOR)); the
//! CN calls through its own anchor, and the call is established at the MN's socket address.
//!
//! `cargo test --features tokio --test samp_tokio -- --nocapture`
#![cfg(feature = "tokio")]

#[path = "support/samp_udp.rs"]
mod samp_udp;

use std::time::Duration;

use ip2p::adapters::tokio::samp::{
    spawn_correspondent, spawn_mobile, spawn_server, MobileOptions, ServerOptions,
};
use ip2p::adapters::tokio::Config as DriverConfig;
use ip2p::samp::correspondent::{self, CallId, Correspondent, CorrespondentConfig, Path};
use ip2p::samp::mobile::{self, MobileConfig, MobileNode, Registration};
use ip2p::samp::server::ProxyMode;
use ip2p::samp::Aor;
use ip2p::sip::SipUri;
use ip2p::TransportAddr;
use samp_udp::{bindings, home_of, ring, ring_in_mode};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const SERVERS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mobile_registers_and_is_called_over_udp() {
    timeout(Duration::from_secs(60), scenario(ProxyMode::Proxy))
        .await
        .expect("the scenario hung");
}

/// The same in RR mode: the home answers 302 naming the anchor, the CN's anchor passes it back,
/// the CN follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_mode_over_udp() {
    timeout(Duration::from_secs(60), scenario(ProxyMode::Redirect))
        .await
        .expect("the scenario hung");
}

async fn scenario(mode: ProxyMode) {
    let servers = ring_in_mode(SERVERS, mode).await;
    let aor_uri = SipUri::parse("sip:mn@home.example").unwrap();
    let aor = Aor::of(&aor_uri);
    let home = home_of(&servers, &aor).await;
    // the MN hears two servers (neither the home, when there is a choice), the CN is anchored at
    // a third: the INVITE must cross the ring
    let others: Vec<usize> = (0..SERVERS).filter(|&i| i != home).collect();
    let near = [others[0], others[1]];
    let cn_anchor = others[2];

    // --- the mobile node: discovery → anchor → home ---
    let mn_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let coa = TransportAddr(mn_socket.local_addr().unwrap());
    let mn = MobileNode::new(
        aor_uri.clone(),
        MobileConfig {
            // loopback answers in well under a millisecond; keep the paper's δ
            delta: Duration::from_millis(50),
            gather: Duration::from_millis(200),
            ..MobileConfig::default()
        },
    );
    let discovery = near.iter().map(|&i| servers[i].me.addr).collect();
    let options = MobileOptions {
        discovery,
        ..MobileOptions::default()
    };
    let (mn, mut mn_events) = spawn_mobile(mn_socket, mn, options).unwrap();
    mn.input(mobile::Input::Attached { coa, random: 7 })
        .await
        .unwrap();
    let registered = timeout(Duration::from_secs(5), mn_events.recv())
        .await
        .expect("the MN registered in time")
        .expect("MN events");
    let mobile::Event::Registered {
        coa: got_coa,
        anchor,
        how,
    } = registered
    else {
        panic!("MN: {registered:?}")
    };
    assert_eq!(got_coa, coa);
    assert_eq!(how, Registration::Home);
    let near_addrs: Vec<_> = near.iter().map(|&i| servers[i].me.addr).collect();
    assert!(
        near_addrs.contains(&anchor),
        "anchor {anchor:?} not among {near_addrs:?}"
    );

    // the bindings: home → anchor → CoA, and nowhere else
    for (i, s) in servers.iter().enumerate() {
        let (a, h) = bindings(s, &aor).await;
        let want_anchor = (s.me.addr == anchor).then_some(coa);
        let want_home = (i == home).then_some(anchor);
        assert_eq!(
            (a, h),
            (want_anchor, want_home),
            "server {i} ({:?})",
            s.me.addr
        );
    }

    // --- the correspondent calls ---
    let cn_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cn_addr = TransportAddr(cn_socket.local_addr().unwrap());
    let cn = Correspondent::new(
        SipUri::parse("sip:cn@other.example").unwrap(),
        cn_addr,
        servers[cn_anchor].me.addr,
        CorrespondentConfig::default(),
    );
    let (cn, mut cn_events) = spawn_correspondent(cn_socket, cn, DriverConfig::default()).unwrap();
    cn.input(correspondent::Input::Call {
        call: CallId(1),
        callee: aor_uri.clone(),
    })
    .await
    .unwrap();
    let e = timeout(Duration::from_secs(10), cn_events.recv())
        .await
        .expect("the call ended in time")
        .expect("CN events");
    assert!(
        matches!(
            &e,
            correspondent::Event::Established { call: CallId(1), call_id, at, path: Path::Anchor }
                if *at == coa && !call_id.is_empty()
        ),
        "{e:?}"
    );
    // the MN answered it
    let answered = timeout(Duration::from_secs(2), mn_events.recv())
        .await
        .expect("MN event")
        .expect("MN events");
    assert!(
        matches!(answered, mobile::Event::Answered { ref from, .. } if from.as_str() == "sip:cn@other.example"),
        "{answered:?}"
    );
    // TTC phase II at the CN's anchor: in RP mode the 200 came back through it; in RR mode the
    // CN followed the 302 to the MN's anchor itself, so the 200 never passed the CN's anchor
    let cached = servers[cn_anchor]
        .handle
        .inspect({
            let aor = aor.clone();
            move |m: &samp_udp::SampServer, now| m.cached(now, &aor)
        })
        .await
        .unwrap();
    let want = match mode {
        ProxyMode::Proxy => Some(coa),
        ProxyMode::Redirect => None,
    };
    assert_eq!(cached, want);

    // nothing undecodable crossed any socket
    for s in &servers {
        assert_eq!(s.handle.counters().decode_errors, 0);
    }
    assert_eq!(mn.counters().decode_errors, 0);
    assert_eq!(cn.counters().decode_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_server_socket_is_counted_and_dropped() {
    let servers = ring(2).await;
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = servers[0].me.addr.0;
    for junk in [
        &b""[..],
        &[1u8, 200, 7][..],
        &[0xff; 40][..],
        b"NOT SIP AT ALL\r\n\r\n",
    ] {
        probe.send_to(junk, to).await.unwrap();
    }
    // a valid OPTIONS afterwards is still answered (404: nobody registered)
    let opts = "OPTIONS sip:nobody@home.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKp1\r\nFrom: <sip:p@x>;tag=1\r\nTo: <sip:nobody@home.example>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    probe.send_to(opts.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = timeout(Duration::from_secs(5), probe.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let resp = ip2p::sip::parse(&buf[..n]).unwrap();
    let ip2p::sip::Message::Response(r) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.code, 404);
    let c = servers[0].handle.counters();
    assert!(c.decode_errors >= 3, "{c:?}");
    assert!(servers[0].handle.is_running());
}

/// Discovery by real multicast on loopback: a server bound to `0.0.0.0:P` joins 224.0.1.75 on
/// 127.0.0.1, the MN sends its discovery REGISTER to 224.0.1.75:P out of 127.0.0.1, and the
/// server becomes its anchor (and, alone on its ring, its home).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_by_multicast_on_loopback() {
    use ip2p::chord::{Command, NodeId, RingId};
    use ip2p::samp::server::{Input, Server, ServerConfig};
    use std::net::Ipv4Addr;

    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let socket = UdpSocket::bind(("0.0.0.0", port)).await.unwrap();
    let addr = TransportAddr(format!("127.0.0.1:{port}").parse().unwrap());
    let server: Server<NodeId> = Server::new(
        NodeId::sha1_of(addr.to_string().as_bytes()),
        addr,
        ServerConfig::default(),
    );
    let options = ServerOptions {
        multicast: Some(Ipv4Addr::LOCALHOST),
        ..ServerOptions::default()
    };
    let (server, _events) = spawn_server(socket, server, options).unwrap();
    server.input(Input::Command(Command::Create)).await.unwrap();

    let aor_uri = SipUri::parse("sip:mn@home.example").unwrap();
    let aor = Aor::of(&aor_uri);
    let mn_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let coa = TransportAddr(mn_socket.local_addr().unwrap());
    let group = TransportAddr(format!("224.0.1.75:{port}").parse().unwrap());
    let options = MobileOptions {
        discovery: vec![group],
        multicast_if: Some(Ipv4Addr::LOCALHOST),
        ..MobileOptions::default()
    };
    let mn = MobileNode::new(aor_uri, MobileConfig::default());
    let (mn, mut mn_events) = spawn_mobile(mn_socket, mn, options).unwrap();
    mn.input(mobile::Input::Attached { coa, random: 3 })
        .await
        .unwrap();
    let e = timeout(Duration::from_secs(5), mn_events.recv())
        .await
        .expect("the MN registered in time")
        .expect("MN events");
    assert_eq!(
        e,
        mobile::Event::Registered {
            coa,
            anchor: addr,
            how: Registration::Home
        }
    );
    let got = server
        .inspect(move |m: &Server<NodeId>, now| {
            (m.anchor_binding(now, &aor), m.home_binding(now, &aor))
        })
        .await
        .unwrap();
    assert_eq!(got, (Some(coa), Some(addr)));
}
