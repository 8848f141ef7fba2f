//! Relay mode: a public peer joins two TCP connections that present the same [`RelayToken`], so
//! peers that nothing else can connect (symmetric NATs on both sides) still get a stream.
//!
//! The [`Relay`] machine decides; its host moves the octets. A connection sends a
//! [`wire::Hello`] (role and token). The machine waits for the other role with the same token,
//! answers both with [`wire::Status::Paired`] and asks the host to [`Output::Splice`] them. From
//! then on the host copies bytes both ways (`tokio::io::copy_bidirectional` in
//! `adapters::tokio::relay`) and tells the machine when either side closes. The machine then
//! closes the other side in the same step: no half-open relay.
//!
//! Bounds: connections waiting (in total and per source address), pairs (in total and per
//! source address), the wait for the other side (`pending_timeout`), and the hello (exactly 22
//! octets, nothing more before the pairing).
//!
//! ```
//! use core::net::IpAddr;
//! use ip2p::machine::Machine;
//! use ip2p::relay::wire::{Hello, Role, Status};
//! use ip2p::relay::{ConnId, Input, Output, Relay, RelayConfig, RelayToken};
//! use ip2p::Time;
//!
//! let mut relay = Relay::new(RelayConfig::default());
//! let ip: IpAddr = "192.0.2.7".parse().unwrap();
//! let token = RelayToken([5; 16]);
//! for (c, role) in [(ConnId(1), Role::Caller), (ConnId(2), Role::Callee)] {
//!     relay.handle(Time::ZERO, Input::Accepted { conn: c, from: ip }).unwrap();
//!     let hello = Hello { role, token }.encode().to_vec();
//!     relay.handle(Time::ZERO, Input::Data { conn: c, bytes: hello }).unwrap();
//! }
//! let out: Vec<Output> = std::iter::from_fn(|| relay.poll()).collect();
//! assert!(out.contains(&Output::Splice { caller: ConnId(1), callee: ConnId(2) }));
//! assert!(out.contains(&Output::Status { conn: ConnId(2), status: Status::Paired }));
//! ```

pub mod invariants;
mod token;
pub mod wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use crate::machine::Machine;
use crate::time::Time;
pub use token::{RelayToken, TOKEN_LEN};
use wire::{Hello, Role, Status, HELLO_LEN};

/// A connection, as the host numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Limits of a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelayConfig {
    /// How long a connection may wait for its hello and then for the other side (default 10 s).
    pub pending_timeout: Duration,
    /// Most connections not yet joined (default 256).
    pub max_pending: usize,
    /// Most connections not yet joined from one address (default 8).
    pub max_pending_per_ip: usize,
    /// Most joined pairs (default 1024).
    pub max_pairs: usize,
    /// Most joined connections from one address (default 16).
    pub max_pairs_per_ip: usize,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            pending_timeout: Duration::from_secs(10),
            max_pending: 256,
            max_pending_per_ip: 8,
            max_pairs: 1024,
            max_pairs_per_ip: 16,
        }
    }
}

/// What happens at a relay.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// A connection was accepted from `from`.
    Accepted {
        /// Its number.
        conn: ConnId,
        /// The peer's address.
        from: IpAddr,
    },
    /// Octets arrived on a connection not yet joined (its hello).
    Data {
        /// The connection.
        conn: ConnId,
        /// The octets.
        bytes: Vec<u8>,
    },
    /// A connection closed (end of stream or error), joined or not.
    Closed(ConnId),
}

/// What the relay asks of its host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Write the status octet to the connection.
    Status {
        /// The connection.
        conn: ConnId,
        /// The status.
        status: Status,
    },
    /// Copy octets both ways between the two connections until either closes, then report
    /// [`Input::Closed`] for it.
    Splice {
        /// The caller's connection.
        caller: ConnId,
        /// The callee's connection.
        callee: ConnId,
    },
    /// Close the connection (after any status written before).
    Close(ConnId),
}

/// Why an input was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The host numbered two connections alike.
    #[error("connection {0:?} is already known")]
    DuplicateConn(ConnId),
    /// A connection the relay does not know (closed already).
    #[error("no connection {0:?}")]
    UnknownConn(ConnId),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    /// Reading the hello (`buf` holds what came so far).
    Hello { buf: Vec<u8>, deadline: Time },
    /// Waiting for the other side.
    Waiting { hello: Hello, deadline: Time },
    /// Joined to `partner`.
    Spliced { partner: ConnId, token: RelayToken },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Conn {
    from: IpAddr,
    state: State,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Pairs joined.
    pub paired: u64,
    /// Connections refused at a limit.
    pub busy: u64,
    /// Malformed hellos.
    pub bad_hellos: u64,
    /// Connections that waited too long.
    pub timeouts: u64,
    /// Hellos for a token and role already waiting.
    pub duplicates: u64,
}

/// The relay role, sans-IO.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relay {
    config: RelayConfig,
    conns: BTreeMap<ConnId, Conn>,
    waiting: BTreeMap<(RelayToken, Role), ConnId>,
    out: VecDeque<Output>,
    stats: Stats,
}

impl Relay {
    /// A relay with no connection.
    pub fn new(config: RelayConfig) -> Relay {
        Relay {
            config,
            conns: BTreeMap::new(),
            waiting: BTreeMap::new(),
            out: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Connections not yet joined (reading a hello or waiting), in total and from `ip`.
    pub fn pending(&self, ip: Option<IpAddr>) -> usize {
        self.conns
            .values()
            .filter(|c| !matches!(c.state, State::Spliced { .. }))
            .filter(|c| ip.map_or(true, |ip| c.from == ip))
            .count()
    }

    /// Joined connections, in total and from `ip`.
    pub fn spliced(&self, ip: Option<IpAddr>) -> usize {
        self.conns
            .values()
            .filter(|c| matches!(c.state, State::Spliced { .. }))
            .filter(|c| ip.map_or(true, |ip| c.from == ip))
            .count()
    }

    /// The connection `conn` is joined to, if any, and their token.
    pub fn partner(&self, conn: ConnId) -> Option<(ConnId, RelayToken)> {
        match self.conns.get(&conn)?.state {
            State::Spliced { partner, token } => Some((partner, token)),
            _ => None,
        }
    }

    /// Some connection's deadline (hello or partner) is before `now`: the host has not fired
    /// the relay's timer (a well-driven relay never has one).
    pub fn poll_timeout_before(&self, now: Time) -> bool {
        use crate::machine::Machine as _;
        self.poll_timeout().is_some_and(|d| d < now)
    }

    /// The connections the relay knows.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    fn refuse(&mut self, conn: ConnId, status: Status) {
        if let Some(c) = self.conns.remove(&conn) {
            if let State::Waiting { hello, .. } = c.state {
                self.waiting.remove(&(hello.token, hello.role));
            }
        }
        match status {
            Status::Busy => self.stats.busy += 1,
            Status::BadHello => self.stats.bad_hellos += 1,
            Status::Timeout => self.stats.timeouts += 1,
            Status::Duplicate => self.stats.duplicates += 1,
            Status::Paired => {}
        }
        self.out.push_back(Output::Status { conn, status });
        self.out.push_back(Output::Close(conn));
    }

    fn hello(&mut self, conn: ConnId, hello: Hello) {
        let key = (hello.token, hello.role);
        if self.waiting.contains_key(&key) {
            // the first keeps its place: a second caller never takes it
            return self.refuse(conn, Status::Duplicate);
        }
        let Some(&other) = self.waiting.get(&(hello.token, hello.role.other())) else {
            let deadline = match self.conns.get(&conn).map(|c| &c.state) {
                Some(State::Hello { deadline, .. }) => *deadline,
                _ => return,
            };
            if let Some(c) = self.conns.get_mut(&conn) {
                c.state = State::Waiting { hello, deadline };
            }
            self.waiting.insert(key, conn);
            return;
        };
        let ips: Vec<IpAddr> = [conn, other]
            .iter()
            .filter_map(|c| self.conns.get(c).map(|c| c.from))
            .collect();
        // each side's address may hold one more joined connection (two if both are from it)
        let over_ip = ips.iter().any(|ip| {
            let new = ips.iter().filter(|x| *x == ip).count();
            self.spliced(Some(*ip)) + new > self.config.max_pairs_per_ip
        });
        if self.spliced(None) / 2 >= self.config.max_pairs || over_ip {
            self.refuse(conn, Status::Busy);
            return self.refuse(other, Status::Busy);
        }
        self.waiting.remove(&(hello.token, hello.role.other()));
        let token = hello.token;
        for (a, b) in [(conn, other), (other, conn)] {
            if let Some(c) = self.conns.get_mut(&a) {
                c.state = State::Spliced { partner: b, token };
            }
        }
        let (caller, callee) = match hello.role {
            Role::Caller => (conn, other),
            Role::Callee => (other, conn),
        };
        self.stats.paired += 1;
        for c in [caller, callee] {
            self.out.push_back(Output::Status {
                conn: c,
                status: Status::Paired,
            });
        }
        self.out.push_back(Output::Splice { caller, callee });
    }
}

impl Machine for Relay {
    type Input = Input;
    type Output = Output;
    type Error = RelayError;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), RelayError> {
        match input {
            Input::Accepted { conn, from } => {
                if self.conns.contains_key(&conn) {
                    return Err(RelayError::DuplicateConn(conn));
                }
                let full = self.pending(None) >= self.config.max_pending
                    || self.pending(Some(from)) >= self.config.max_pending_per_ip;
                self.conns.insert(
                    conn,
                    Conn {
                        from,
                        state: State::Hello {
                            buf: Vec::new(),
                            deadline: now + self.config.pending_timeout,
                        },
                    },
                );
                if full {
                    self.refuse(conn, Status::Busy);
                }
                Ok(())
            }
            Input::Data { conn, bytes } => {
                let c = self
                    .conns
                    .get_mut(&conn)
                    .ok_or(RelayError::UnknownConn(conn))?;
                match &mut c.state {
                    State::Hello { buf, .. } => {
                        if buf.len() + bytes.len() > HELLO_LEN {
                            self.refuse(conn, Status::BadHello);
                            return Ok(());
                        }
                        buf.extend_from_slice(&bytes);
                        if buf.len() < HELLO_LEN {
                            return Ok(());
                        }
                        match Hello::decode(buf) {
                            Ok(h) => self.hello(conn, h),
                            Err(_) => self.refuse(conn, Status::BadHello),
                        }
                    }
                    // nothing may come between the hello and the pairing
                    State::Waiting { .. } => self.refuse(conn, Status::BadHello),
                    // the host copies these octets itself
                    State::Spliced { .. } => {}
                }
                Ok(())
            }
            Input::Closed(conn) => {
                let c = self
                    .conns
                    .remove(&conn)
                    .ok_or(RelayError::UnknownConn(conn))?;
                match c.state {
                    State::Waiting { hello, .. } => {
                        self.waiting.remove(&(hello.token, hello.role));
                    }
                    State::Spliced { partner, .. } => {
                        // NoHalfOpenRelay: the other side goes in the same step
                        self.conns.remove(&partner);
                        self.out.push_back(Output::Close(partner));
                    }
                    State::Hello { .. } => {}
                }
                Ok(())
            }
        }
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.conns
            .values()
            .filter_map(|c| match c.state {
                State::Hello { deadline, .. } | State::Waiting { deadline, .. } => Some(deadline),
                State::Spliced { .. } => None,
            })
            .min()
    }

    fn handle_timeout(&mut self, now: Time) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.state {
                State::Hello { deadline, .. } | State::Waiting { deadline, .. } => deadline <= now,
                State::Spliced { .. } => false,
            })
            .map(|(k, _)| *k)
            .collect();
        for c in due {
            self.refuse(c, Status::Timeout);
        }
    }
}

#[cfg(test)]
mod tests;
