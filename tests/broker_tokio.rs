//! P2PBroker through the tokio host on loopback: brokered phones on the emulated SMS network,
//! real TCP, profiles given as a probe would find them.
#![cfg(feature = "tokio")]

use std::net::IpAddr;
use std::time::Duration;

use ip2p::adapters::tokio::emulated::SmsNetwork;
use ip2p::adapters::tokio::ip2p::{
    spawn, ConnectError, HostConfig, HostEvent, Ip2pHandle, Traversal,
};
use ip2p::broker::{BrokerConfig, NatBehaviour, Profile};
use ip2p::ip2p::wire::{AppName, Key, Mode, Refusal};
use ip2p::ip2p::{Config, Event, Failure, Peer};
use ip2p::Msisdn;
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

struct Phone {
    handle: Ip2pHandle,
    events: mpsc::Receiver<HostEvent>,
}

fn phone(
    net: &SmsNetwork,
    me: Msisdn,
    other: Msisdn,
    ip: &str,
    profile: Profile,
    host: HostConfig,
    broker: BrokerConfig,
) -> Phone {
    let ip: IpAddr = ip.parse().unwrap();
    let mut c = Config::new(me)
        .with_peer(other, Key::from_bytes([4; 32]))
        .with_app(ftp())
        .with_broker(broker);
    c.idle_off = Duration::from_millis(300);
    c.sms_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(3);
    let links = net.links(me, ip, Duration::from_millis(20));
    let (handle, events) = spawn(
        Peer::new(c),
        links,
        HostConfig {
            profile: Some(profile),
            ..host
        },
    );
    Phone { handle, events }
}

/// The callee's application: echo five octets back, then report the session's events.
fn echo(mut b: Phone) -> tokio::task::JoinHandle<Vec<Event>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(e) = b.events.recv().await {
            match e {
                HostEvent::Incoming(mut served) => {
                    let mut buf = [0u8; 5];
                    served.stream.read_exact(&mut buf).await.unwrap();
                    served.stream.write_all(&buf).await.unwrap();
                    return seen;
                }
                HostEvent::Peer(
                    e @ (Event::SessionModeFailed { .. } | Event::SessionFailed { .. }),
                ) => {
                    seen.push(e);
                    if matches!(seen.last(), Some(Event::SessionFailed { .. })) {
                        return seen;
                    }
                }
                _ => {}
            }
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_peers_connect_directly_and_say_so() {
    let net = SmsNetwork::new(Duration::from_millis(10));
    let pa = Profile::public("127.0.0.1".parse().unwrap());
    let pb = Profile::public("127.0.0.2".parse().unwrap());
    let alice = phone(
        &net,
        a(),
        b(),
        "127.0.0.1",
        pa,
        HostConfig::default(),
        BrokerConfig::default(),
    );
    let bob = phone(
        &net,
        b(),
        a(),
        "127.0.0.2",
        pb,
        HostConfig::default(),
        BrokerConfig::default(),
    );
    let server = echo(bob);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), alice.handle.connect(b(), ftp()))
        .await
        .expect("in time")
        .expect("connected");
    assert_eq!(conn.mode, Mode::Direct);
    assert!(conn.failed.is_empty());
    conn.stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    conn.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    assert!(server.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_whose_igd_and_prediction_fail_refuses_with_a_reason() {
    // The callee's profile says it is behind an IGD, but nothing answers the UPnP discovery and
    // no prediction server is configured: UPnP fails, then STUNT #2, and with no relay the
    // caller is told "unreachable" by SMS instead of waiting for its time-outs.
    let net = SmsNetwork::new(Duration::from_millis(10));
    let pa = Profile::public("127.0.0.1".parse().unwrap());
    let pb = Profile {
        local: "127.0.0.2".parse().unwrap(),
        public: Some("127.0.0.2".parse().unwrap()),
        igd: Some("127.0.0.2".parse().unwrap()),
        nat: NatBehaviour::EndpointIndependent { preserving: true },
    };
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut options = ip2p::adapters::tokio::upnp::Options {
        ssdp_target: silent.local_addr().unwrap(),
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    options.config.discovery_timeout = Duration::from_millis(300);
    let host_b = HostConfig {
        traversal: Traversal::Brokered {
            upnp: Some(options),
            lease: Duration::from_secs(60),
            servers: Vec::new(),
            predict: Default::default(),
            punch_timeout: Duration::from_secs(2),
        },
        ..HostConfig::default()
    };
    let alice = phone(
        &net,
        a(),
        b(),
        "127.0.0.1",
        pa,
        HostConfig::default(),
        BrokerConfig::default(),
    );
    let bob = phone(
        &net,
        b(),
        a(),
        "127.0.0.2",
        pb,
        host_b,
        BrokerConfig::default(),
    );
    let server = echo(bob);
    let r = tokio::time::timeout(Duration::from_secs(15), alice.handle.connect(b(), ftp()))
        .await
        .expect("in time");
    match r {
        Err(ConnectError::Failed(Failure::Refused(Refusal::Unreachable))) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let seen = server.await.unwrap();
    let failed: Vec<Mode> = seen
        .iter()
        .filter_map(|e| match e {
            Event::SessionModeFailed { mode, .. } => Some(*mode),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [Mode::Upnp], "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_nothing_can_reach_is_reached_through_the_relay() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = ip2p::TransportAddr(listener.local_addr().unwrap());
    tokio::spawn(ip2p::adapters::tokio::relay::run_relay(
        listener,
        Default::default(),
    ));
    let net = SmsNetwork::new(Duration::from_millis(10));
    let pa = Profile::public("127.0.0.1".parse().unwrap());
    let pb = Profile {
        local: "127.0.0.2".parse().unwrap(),
        public: Some("127.0.0.2".parse().unwrap()),
        igd: None,
        nat: NatBehaviour::Random,
    };
    let broker = BrokerConfig {
        relay: Some(relay_addr),
        ..BrokerConfig::default()
    };
    let alice = phone(
        &net,
        a(),
        b(),
        "127.0.0.1",
        pa,
        HostConfig::default(),
        broker.clone(),
    );
    let bob = phone(
        &net,
        b(),
        a(),
        "127.0.0.2",
        pb,
        HostConfig::default(),
        broker,
    );
    let server = echo(bob);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), alice.handle.connect(b(), ftp()))
        .await
        .expect("in time")
        .expect("connected");
    assert_eq!(conn.mode, Mode::Relay);
    assert_eq!(conn.addr, relay_addr);
    conn.stream.write_all(b"relay").await.unwrap();
    let mut buf = [0u8; 5];
    conn.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"relay");
    assert!(server.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_answers_for_the_whole_lan() {
    use ip2p::adapters::tokio::broker::{ask_lan, serve_lan};
    let shared = Profile {
        local: "127.0.0.1".parse().unwrap(),
        public: Some("203.0.113.9".parse().unwrap()),
        igd: Some("203.0.113.9".parse().unwrap()),
        nat: NatBehaviour::EndpointIndependent { preserving: true },
    };
    let (set, profile) = tokio::sync::watch::channel(shared);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = socket.local_addr().unwrap();
    tokio::spawn(serve_lan(socket, profile));
    let me: IpAddr = "127.0.0.3".parse().unwrap();
    let p = ask_lan(at, me, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        (p.local, p.public, p.igd, p.nat),
        (me, shared.public, shared.igd, shared.nat)
    );
    // the broker probed again: the next host hears the news
    set.send_modify(|p| p.nat = NatBehaviour::Random);
    let p = ask_lan(at, me, Duration::from_secs(2)).await.unwrap();
    assert_eq!(p.nat, NatBehaviour::Random);
    // nobody there: a typed time-out, not a hang
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = ask_lan(silent.local_addr().unwrap(), me, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
}
