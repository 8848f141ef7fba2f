//! The relay over real TCP on loopback: two clients with one token get each other's octets both
//! ways; wrong tokens, duplicates and silence get their status; closing one side closes the other.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use ip2p::adapters::tokio::relay::{relay_dial, run_relay, RelayDialError};
use ip2p::relay::wire::{Role, Status};
use ip2p::relay::{RelayConfig, RelayToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn relay(config: RelayConfig) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(run_relay(l, config));
    addr
}

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_cross_both_ways_and_a_close_reaches_the_far_side() {
    let r = relay(RelayConfig::default()).await;
    let token = RelayToken([1; 16]);
    let callee = tokio::spawn(relay_dial(r, token, Role::Callee, T));
    let mut a = relay_dial(r, token, Role::Caller, T).await.unwrap();
    let mut b = callee.await.unwrap().unwrap();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        a.write_all(&sent).await.unwrap();
        a.shutdown().await.unwrap();
        let mut back = Vec::new();
        a.read_to_end(&mut back).await.unwrap();
        back
    });
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert!(got == data, "octets differ");
    b.write_all(b"thanks").await.unwrap();
    drop(b);
    // the callee's close ends the caller's stream (no half-open relay)
    let back = tokio::time::timeout(T, writer).await.unwrap().unwrap();
    assert_eq!(back, b"thanks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_duplicates_and_limits_get_their_status() {
    let cfg = RelayConfig {
        pending_timeout: Duration::from_millis(300),
        max_pending_per_ip: 2,
        ..RelayConfig::default()
    };
    let r = relay(cfg).await;
    let waiting = tokio::spawn(relay_dial(r, RelayToken([2; 16]), Role::Caller, T));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // the same token and role again: refused, the first keeps its place
    match relay_dial(r, RelayToken([2; 16]), Role::Caller, T).await {
        Err(RelayDialError::Refused(Status::Duplicate)) => {}
        other => panic!("expected Duplicate, got {other:?}"),
    }
    // another token never joins it; both time out
    let other = tokio::spawn(relay_dial(r, RelayToken([3; 16]), Role::Callee, T));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // two waiting from 127.0.0.1: a third is refused
    match relay_dial(r, RelayToken([4; 16]), Role::Caller, T).await {
        Err(RelayDialError::Refused(Status::Busy)) => {}
        other => panic!("expected Busy, got {other:?}"),
    }
    for h in [waiting, other] {
        match h.await.unwrap() {
            Err(RelayDialError::Refused(Status::Timeout)) => {}
            other => panic!("expected Timeout, got {other:?}"),
        }
    }
}
