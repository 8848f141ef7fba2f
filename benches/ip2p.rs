//! iP2P benchmarks (criterion): the CPU the protocol spends on one connection set-up.
//!
//! `cargo bench --bench ip2p`. Results: `spec/ip2p.md` and `spec/benchmarks.md`.
//!
//! - `setup/b1_to_b5`: a whole public-to-public set-up (B.1–B.5) through both real peers — the
//!   caller's request (encode + HMAC), the callee's verification, replay window, session and answer
//!   (encode + HMAC), the caller's verification and connect — everything but the radio, the SMS
//!   network and TCP, whose delays are the paper's 2.6 s + 9.4 s. The budget is 1 ms.
//! - `wire/encode`, `wire/decode`: one control message with its tag; beside them, `hmac_only`:
//!   HMAC-SHA-256 over the same octets (the floor any authenticated format pays).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use ip2p::ip2p::wire::{AppName, Control, Key, Kind, Nonce};
use ip2p::ip2p::{Config, Input, Output, Peer};
use ip2p::machine::Machine;
use ip2p::{Msisdn, Time};
use sha2::Sha256;

fn setup(alice: &Peer, bob: &Peer, nonce: u64) -> bool {
    let (mut a, mut b) = (alice.clone(), bob.clone());
    let t = Time::ZERO;
    let callee = bob.config().me;
    let ftp = AppName::new("ftp").unwrap();
    a.handle(
        t,
        Input::Resolve {
            to: callee,
            app: ftp,
            nonce: Nonce(nonce),
            port: 40000,
        },
    )
    .unwrap();
    let mut sms = None;
    while let Some(o) = a.poll() {
        if let Output::SendSms { payload, .. } = o {
            sms = Some(payload);
        }
    }
    b.handle(
        t,
        Input::Sms {
            from: alice.config().me,
            payload: sms.unwrap(),
        },
    )
    .unwrap();
    let mut session = None;
    while let Some(o) = b.poll() {
        if let Output::StartServer { session: s, .. } = o {
            session = Some(s);
        }
    }
    b.handle(
        t,
        Input::ServerListening {
            session: session.unwrap(),
            port: 2121,
        },
    )
    .unwrap();
    let mut answer = None;
    while let Some(o) = b.poll() {
        if let Output::SendIp { payload, .. } = o {
            answer = Some(payload);
        }
    }
    a.handle(
        t,
        Input::Ip {
            payload: answer.unwrap(),
        },
    )
    .unwrap();
    let mut connected = false;
    while let Some(o) = a.poll() {
        connected |= matches!(o, Output::Connect { .. });
    }
    connected
}

fn benches(c: &mut Criterion) {
    let a: Msisdn = "+886900000001".parse().unwrap();
    let b: Msisdn = "+886900000002".parse().unwrap();
    let key = Key::from_bytes([7; 32]);
    let ftp = AppName::new("ftp").unwrap();
    let mut alice = Peer::new(Config::new(a).with_peer(b, key.clone()));
    alice
        .handle(
            Time::ZERO,
            Input::BroadbandUp {
                ip: "192.0.2.1".parse().unwrap(),
            },
        )
        .unwrap();
    while alice.poll().is_some() {}
    let mut bob = Peer::new(Config::new(b).with_peer(a, key.clone()).with_app(ftp));
    bob.handle(
        Time::ZERO,
        Input::BroadbandUp {
            ip: "198.51.100.2".parse().unwrap(),
        },
    )
    .unwrap();
    while bob.poll().is_some() {}
    assert!(setup(&alice, &bob, 1));
    let mut n = 0;
    c.bench_function("setup/b1_to_b5", |bench| {
        bench.iter(|| {
            n += 1;
            black_box(setup(&alice, &bob, n))
        })
    });

    let msg = Control {
        kind: Kind::Request,
        nonce: Nonce(42),
        seq: 7,
        app: ftp,
        addr: Some("192.0.2.1:40000".parse().unwrap()),
        mapped: None,
        mode: None,
        offer: None,
        sms_reply: false,
    };
    let bytes = msg.encode(&key, &a, &b);
    c.bench_function("wire/encode", |bench| {
        bench.iter(|| black_box(msg.encode(&key, &a, &b)))
    });
    c.bench_function("wire/decode", |bench| {
        bench.iter(|| black_box(Control::decode(black_box(&bytes), &key, &a, &b).unwrap()))
    });
    c.bench_function("wire/hmac_only", |bench| {
        bench.iter(|| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
            m.update(black_box(&bytes));
            black_box(m.finalize().into_bytes())
        })
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(group);
