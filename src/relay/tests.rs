//! Scenario tests of the relay machine, with the invariants checked after every step.

use super::invariants::Observer;
use super::wire::{Hello, Role, Status};
use super::*;
use alloc::vec;

const T0: Time = Time::ZERO;

struct H {
    relay: Relay,
    obs: Observer,
    now: Time,
    out: Vec<Output>,
}

impl H {
    fn new(config: RelayConfig) -> H {
        H {
            relay: Relay::new(config),
            obs: Observer::default(),
            now: T0,
            out: Vec::new(),
        }
    }
    fn feed(&mut self, i: Input) {
        self.obs.input(&i);
        self.relay.handle(self.now, i).unwrap();
        self.settle();
    }
    fn settle(&mut self) {
        while let Some(o) = self.relay.poll() {
            self.obs.output(&o);
            self.out.push(o);
        }
        assert_eq!(self.obs.violated(&self.relay, self.now), None);
    }
    fn connect(&mut self, c: u64, ip: &str, role: Role, token: u8) {
        self.feed(Input::Accepted {
            conn: ConnId(c),
            from: ip.parse().unwrap(),
        });
        if self.closed(c) {
            // refused at once (a limit): the host closed it, nothing more arrives
            return;
        }
        let hello = Hello {
            role,
            token: RelayToken([token; 16]),
        }
        .encode();
        // in two pieces: a hello may arrive split
        self.feed(Input::Data {
            conn: ConnId(c),
            bytes: hello[..5].to_vec(),
        });
        self.feed(Input::Data {
            conn: ConnId(c),
            bytes: hello[5..].to_vec(),
        });
    }
    fn status(&self, c: u64) -> Option<Status> {
        self.out.iter().find_map(|o| match o {
            Output::Status { conn, status } if *conn == ConnId(c) => Some(*status),
            _ => None,
        })
    }
    fn closed(&self, c: u64) -> bool {
        self.out.contains(&Output::Close(ConnId(c)))
    }
    fn wait(&mut self, secs: u64) {
        self.now = self.now + Duration::from_secs(secs);
        self.relay.handle_timeout(self.now);
        self.settle();
    }
}

#[test]
fn matching_tokens_are_joined_and_others_are_not() {
    let mut h = H::new(RelayConfig::default());
    h.connect(1, "192.0.2.1", Role::Caller, 7);
    h.connect(2, "192.0.2.2", Role::Callee, 8); // another request's token
    assert!(!h.out.iter().any(|o| matches!(o, Output::Splice { .. })));
    h.connect(3, "192.0.2.3", Role::Callee, 7);
    assert!(h.out.contains(&Output::Splice {
        caller: ConnId(1),
        callee: ConnId(3)
    }));
    assert_eq!(
        (h.status(1), h.status(3)),
        (Some(Status::Paired), Some(Status::Paired))
    );
    // the one without a partner times out, and only it
    h.wait(11);
    assert_eq!(h.status(2), Some(Status::Timeout));
    assert!(h.closed(2) && !h.closed(1) && !h.closed(3));
    assert_eq!(h.relay.stats().paired, 1);
}

#[test]
fn a_second_caller_with_the_same_token_never_takes_the_place() {
    let mut h = H::new(RelayConfig::default());
    h.connect(1, "192.0.2.1", Role::Caller, 7);
    h.connect(2, "198.51.100.9", Role::Caller, 7);
    assert_eq!(h.status(2), Some(Status::Duplicate));
    assert!(h.closed(2));
    h.connect(3, "192.0.2.3", Role::Callee, 7);
    assert!(h.out.contains(&Output::Splice {
        caller: ConnId(1),
        callee: ConnId(3)
    }));
}

#[test]
fn closing_one_side_closes_the_other_in_the_same_step() {
    let mut h = H::new(RelayConfig::default());
    h.connect(1, "192.0.2.1", Role::Caller, 7);
    h.connect(2, "192.0.2.2", Role::Callee, 7);
    h.feed(Input::Closed(ConnId(2)));
    assert!(h.closed(1));
    assert_eq!(h.relay.conns().count(), 0);
    // the host's late report of the other side is refused cleanly
    assert_eq!(
        h.relay.handle(h.now, Input::Closed(ConnId(1))),
        Err(RelayError::UnknownConn(ConnId(1)))
    );
}

#[test]
fn limits_refuse_with_busy() {
    let cfg = RelayConfig {
        max_pending_per_ip: 2,
        max_pairs_per_ip: 2,
        ..RelayConfig::default()
    };
    let mut h = H::new(cfg);
    h.connect(1, "192.0.2.1", Role::Caller, 1);
    h.connect(2, "192.0.2.1", Role::Caller, 2);
    h.connect(3, "192.0.2.1", Role::Caller, 3);
    assert_eq!(h.status(3), Some(Status::Busy));
    // one pair from that address fills its share of joined connections
    h.connect(4, "192.0.2.1", Role::Callee, 1);
    assert_eq!(h.status(4), Some(Status::Busy), "pending limit still full");
    h.connect(5, "203.0.113.5", Role::Callee, 1);
    assert_eq!(h.status(5), Some(Status::Paired));
    h.connect(6, "203.0.113.6", Role::Callee, 2);
    assert_eq!(h.status(6), Some(Status::Paired));
    h.connect(7, "192.0.2.1", Role::Caller, 9);
    h.connect(8, "203.0.113.8", Role::Callee, 9);
    // 192.0.2.1 already holds two joined connections: both sides of the new pair are refused
    assert_eq!(
        (h.status(7), h.status(8)),
        (Some(Status::Busy), Some(Status::Busy))
    );
}

#[test]
fn malformed_or_early_octets_are_refused() {
    let mut h = H::new(RelayConfig::default());
    h.feed(Input::Accepted {
        conn: ConnId(1),
        from: "192.0.2.1".parse().unwrap(),
    });
    h.feed(Input::Data {
        conn: ConnId(1),
        bytes: vec![b'G'; HELLO_LEN],
    });
    assert_eq!(h.status(1), Some(Status::BadHello));
    // a hello followed at once by data (before the pairing) is refused too
    h.feed(Input::Accepted {
        conn: ConnId(2),
        from: "192.0.2.1".parse().unwrap(),
    });
    let mut bytes = Hello {
        role: Role::Caller,
        token: RelayToken([3; 16]),
    }
    .encode()
    .to_vec();
    bytes.push(0);
    h.feed(Input::Data {
        conn: ConnId(2),
        bytes,
    });
    assert_eq!(h.status(2), Some(Status::BadHello));
    assert_eq!(
        h.relay.handle(
            h.now,
            Input::Accepted {
                conn: ConnId(3),
                from: "192.0.2.1".parse().unwrap()
            }
        ),
        Ok(())
    );
    assert_eq!(
        h.relay.handle(
            h.now,
            Input::Accepted {
                conn: ConnId(3),
                from: "192.0.2.1".parse().unwrap()
            }
        ),
        Err(RelayError::DuplicateConn(ConnId(3)))
    );
}
