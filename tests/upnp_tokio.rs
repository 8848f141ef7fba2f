//! The tokio UPnP adapter on loopback against the crate's reference IGD served over real UDP and
//! TCP sockets (the real miniupnpd is in `tests/upnp_testbed.rs`).
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ip2p::adapters::tokio::upnp::{Igd, Options, UpnpError};
use ip2p::upnp::igd::{Entry, Igd as RefIgd};
use ip2p::upnp::{Failure, MappingKey, Protocol};
use ip2p::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

struct Fake {
    igd: Arc<Mutex<RefIgd>>,
    ssdp: SocketAddr,
    connections: Arc<Mutex<u32>>,
}

/// Serve the reference IGD: SSDP answers on a UDP socket, HTTP on a TCP listener.
async fn fake() -> Fake {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let igd = Arc::new(Mutex::new(RefIgd::new(
        tcp.local_addr().unwrap(),
        "80.100.1.1".parse().unwrap(),
    )));
    let ssdp = udp.local_addr().unwrap();
    let connections = Arc::new(Mutex::new(0));
    let g = igd.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = udp.recv_from(&mut buf).await {
            let answer = g.lock().unwrap().ssdp_answer();
            let _ = udp.send_to(&answer, from).await;
        }
    });
    let g = igd.clone();
    let n = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            *n.lock().unwrap() += 1;
            let g = g.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let Ok(k) = s.read(&mut buf).await else {
                        return;
                    };
                    if k == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..k]);
                    let answer = g.lock().unwrap().answer(Time::ZERO, &req);
                    if let Some((bytes, _)) = answer {
                        let _ = s.write_all(&bytes).await;
                        return;
                    }
                }
            });
        }
    });
    Fake {
        igd,
        ssdp,
        connections,
    }
}

fn opts(ssdp: SocketAddr) -> Options {
    Options {
        ssdp_target: ssdp,
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    }
}

#[tokio::test]
async fn cold_then_warm_mapping_and_deletion() {
    let f = fake().await;
    let igd = Igd::discover_with(opts(f.ssdp)).await.unwrap();
    assert_eq!(
        *f.connections.lock().unwrap(),
        1,
        "description fetched once"
    );
    assert_eq!(igd.external_ip().await.unwrap().to_string(), "80.100.1.1");
    let m = igd
        .add_port_mapping(
            "127.0.0.1:4000".parse().unwrap(),
            4000,
            Duration::from_secs(600),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(m.external, "80.100.1.1:4000".parse().unwrap());
    let key = MappingKey {
        protocol: Protocol::Tcp,
        external_port: 4000,
    };
    assert!(f.igd.lock().unwrap().table.contains_key(&key));

    // warm: one connection, no discovery
    let warm = Igd::from_cache_with(igd.cache().unwrap(), opts(f.ssdp));
    let before = *f.connections.lock().unwrap();
    let m2 = warm
        .add_port_mapping(
            "127.0.0.1:4001".parse().unwrap(),
            4001,
            Duration::from_secs(600),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(*f.connections.lock().unwrap(), before + 1);
    assert_eq!(m2.external.port(), 4001);

    igd.delete_port_mapping(&m).await.unwrap();
    assert_eq!(warm.delete_all().await.unwrap(), 1);
    assert!(f.igd.lock().unwrap().table.is_empty());
}

#[tokio::test]
async fn conflict_picks_the_next_port() {
    let f = fake().await;
    let key = MappingKey {
        protocol: Protocol::Tcp,
        external_port: 4000,
    };
    f.igd.lock().unwrap().table.insert(
        key,
        Entry {
            internal: "10.9.9.9:1".parse().unwrap(),
            expires: None,
        },
    );
    let igd = Igd::discover_with(opts(f.ssdp)).await.unwrap();
    let m = igd
        .add_port_mapping(
            "127.0.0.1:4000".parse().unwrap(),
            4000,
            Duration::from_secs(60),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(m.external.port(), 4001);
    assert_eq!(igd.delete_all().await.unwrap(), 1);
}

#[tokio::test]
async fn nobody_answers_discovery() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut o = opts(silent.local_addr().unwrap());
    o.config.discovery_timeout = Duration::from_millis(300);
    let t = std::time::Instant::now();
    let r = Igd::discover_with(o).await;
    assert!(matches!(r, Err(UpnpError::Failed(Failure::NoIgd))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
}
