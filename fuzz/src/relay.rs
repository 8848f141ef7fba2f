//! Fuzz target bodies for the relay.
//!
//! - [`relay_wire`]: arbitrary octets as a hello and as a status: whatever decodes re-encodes to
//!   the same octets.
//! - [`relay_roles`]: a [`Relay`] with small limits fed arbitrary accepts, hello pieces (honest
//!   ones with a few tokens and both roles, or junk), closes and time jumps, the way its host
//!   would; after every step the invariants of [`ip2p::relay::invariants`] are checked
//!   (SplicesOnlyMatchingTokens, NoHalfOpenRelay, BoundedPending, EveryConnectionEnds).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbitrary::Unstructured;
use ip2p::machine::Machine;
use ip2p::relay::invariants::Observer;
use ip2p::relay::wire::{Hello, Role, Status, HELLO_LEN};
use ip2p::relay::{ConnId, Input, Output, Relay, RelayConfig, RelayToken};
use ip2p::Time;

/// The body of the `relay_wire` target.
pub fn relay_wire(data: &[u8]) {
    if let Ok(h) = Hello::decode(data) {
        assert_eq!(&h.encode()[..], data);
    }
    if let Some(&c) = data.first() {
        if let Ok(s) = Status::from_code(c) {
            assert_eq!(s.code(), c);
        }
    }
}

/// The body of the `relay_roles` target.
pub fn relay_roles(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let config = RelayConfig {
        pending_timeout: Duration::from_secs(2),
        max_pending: 6,
        max_pending_per_ip: 3,
        max_pairs: 3,
        max_pairs_per_ip: 4,
    };
    let mut relay = Relay::new(config);
    let mut obs = Observer::default();
    let mut now = Time::ZERO;
    let mut next = 0u64;
    // what the host holds: connections it has not closed, and what each has sent
    let mut open: Vec<(ConnId, usize)> = Vec::new();
    for _ in 0..300 {
        let Ok(op) = u.arbitrary::<u8>() else { break };
        let pick = u.arbitrary::<u8>().unwrap_or(0);
        let input = match op % 6 {
            0 | 1 => {
                next += 1;
                let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, pick % 3));
                open.push((ConnId(next), 0));
                Input::Accepted {
                    conn: ConnId(next),
                    from: ip,
                }
            }
            2 | 3 if !open.is_empty() => {
                let i = usize::from(pick) % open.len();
                let (conn, sent) = open[i];
                let bytes = if op % 6 == 2 {
                    // an honest hello, in one or two pieces
                    let role = if pick & 0x40 == 0 {
                        Role::Caller
                    } else {
                        Role::Callee
                    };
                    let token = RelayToken([pick % 3; 16]);
                    let h = Hello { role, token }.encode();
                    let cut = usize::from(pick >> 3) % HELLO_LEN + 1;
                    if sent == 0 {
                        h[..cut].to_vec()
                    } else {
                        h[sent.min(HELLO_LEN)..].to_vec()
                    }
                } else {
                    let n = usize::from(pick) % 30;
                    (0..n).map(|_| u.arbitrary().unwrap_or(0)).collect()
                };
                open[i].1 += bytes.len();
                Input::Data { conn, bytes }
            }
            4 if !open.is_empty() => {
                let i = usize::from(pick) % open.len();
                let (conn, _) = open.remove(i);
                Input::Closed(conn)
            }
            _ => {
                now = now + Duration::from_millis(u64::from(pick) * 20);
                relay.handle_timeout(now);
                drain(&mut relay, &mut obs, &mut open);
                check(&relay, &obs, now);
                continue;
            }
        };
        obs.input(&input);
        // the host only feeds connections it holds: the machine must accept every such input
        let r = relay.handle(now, input);
        assert!(r.is_ok(), "{r:?}");
        drain(&mut relay, &mut obs, &mut open);
        check(&relay, &obs, now);
    }
    // time runs out: nothing that is not joined may remain
    now = now + Duration::from_secs(3);
    relay.handle_timeout(now);
    drain(&mut relay, &mut obs, &mut open);
    check(&relay, &obs, now);
    assert_eq!(relay.pending(None), 0, "EveryConnectionEnds");
}

fn drain(relay: &mut Relay, obs: &mut Observer, open: &mut Vec<(ConnId, usize)>) {
    while let Some(o) = relay.poll() {
        obs.output(&o);
        if let Output::Close(c) = o {
            open.retain(|x| x.0 != c);
        }
    }
    // a joined connection the host still holds is one the relay still knows
    for (c, _) in open.iter() {
        assert!(
            relay.conns().any(|k| k == *c),
            "host holds {c:?}, relay forgot it"
        );
    }
}

fn check(relay: &Relay, obs: &Observer, now: Time) {
    if let Some(v) = obs.violated(relay, now) {
        panic!("{} violated", v.name());
    }
}

/// Hand-written seeds for `relay_wire`.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "hello".into(),
            Hello {
                role: Role::Caller,
                token: RelayToken([9; 16]),
            }
            .encode()
            .to_vec(),
        ),
        ("status-paired".into(), vec![0]),
    ]
}

/// Hand-written seeds for `relay_roles`: (op, pick) pairs.
pub fn roles_seeds() -> Vec<(String, Vec<u8>)> {
    // two accepts, a caller hello on the first, a callee hello with the same token, a close
    let pair = vec![0, 0, 0, 1, 2, 0x40, 2, 0xc1, 4, 1, 5, 200];
    // three from one address, junk, time-outs
    let limits = vec![0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 5, 255, 5, 255];
    vec![("pair".into(), pair), ("limits".into(), limits)]
}
