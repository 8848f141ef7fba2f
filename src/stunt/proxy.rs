//! The proxy server of C.0 and what a peer does with what it relays.
//!
//! [`Proxy`] keeps one registration per peer identification (C.0) on the connection it came from
//! (ConnectionA, ConnectionB, …) and relays signals between registered peers: the request (C.1),
//! the acknowledgement (C.2) and the mappings (C.5, C.6). Connections are numbered by the host
//! ([`ConnId`]). The table is bounded ([`Proxy::new`]'s `max_peers`); a connection that breaks
//! the protocol is closed.
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::stunt::proxy::{ConnId, Input, Output, Proxy};
//! use ip2p::stunt::wire::{Msg, PeerId, SessionId, Signal};
//! use ip2p::Time;
//! let mut p = Proxy::new(16);
//! for (c, id) in [(ConnId(1), PeerId(10)), (ConnId(2), PeerId(20))] {
//!     p.handle(Time::ZERO, Input::Frame { conn: c, msg: Msg::Register { id } }).unwrap();
//!     assert_eq!(p.poll(), Some(Output::Send { conn: c, msg: Msg::Registered { id } }));
//! }
//! let signal = Signal::Request { session: SessionId(5) };
//! p.handle(Time::ZERO, Input::Frame { conn: ConnId(1), msg: Msg::Relay { to: PeerId(20), signal } }).unwrap();
//! assert_eq!(p.poll(), Some(Output::Send { conn: ConnId(2), msg: Msg::Relayed { from: PeerId(10), signal } }));
//! ```

use alloc::collections::{BTreeMap, VecDeque};

use super::wire::{Msg, PeerId, Signal};
use super::StuntError;
use crate::machine::Machine;
use crate::time::Time;

/// A connection to the proxy, numbered by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// What happens to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// A message arrived on `conn`.
    Frame {
        /// Which connection.
        conn: ConnId,
        /// The message.
        msg: Msg,
    },
    /// `conn` closed (or could not be read: the host closes it and says so).
    Closed {
        /// Which connection.
        conn: ConnId,
    },
}

/// What the proxy asks its host to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send `msg` on `conn`.
    Send {
        /// Which connection.
        conn: ConnId,
        /// What.
        msg: Msg,
    },
    /// Close `conn`.
    Close {
        /// Which connection.
        conn: ConnId,
    },
}

/// Why the proxy rejected an input (the offending connection is closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyInputError {
    /// A relay from a connection that registered no one.
    #[error("relay from a connection that has not registered")]
    NotRegistered,
    /// A message only the proxy sends, or a probe.
    #[error("message not for the proxy")]
    NotForProxy,
    /// The registration table is full.
    #[error("registration table full ({0} peers)")]
    Full(usize),
}

/// The proxy server (C.0–C.2, C.5, C.6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proxy {
    max_peers: usize,
    by_id: BTreeMap<PeerId, ConnId>,
    by_conn: BTreeMap<ConnId, PeerId>,
    out: VecDeque<Output>,
    /// Signals relayed.
    pub relayed: u64,
    /// Inputs rejected.
    pub rejected: u64,
}

impl Proxy {
    /// A proxy that keeps at most `max_peers` registrations.
    pub fn new(max_peers: usize) -> Self {
        Proxy {
            max_peers,
            ..Proxy::default()
        }
    }

    /// The connection `id` is registered on.
    pub fn registered(&self, id: PeerId) -> Option<ConnId> {
        self.by_id.get(&id).copied()
    }

    fn reject(&mut self, conn: ConnId, e: ProxyInputError) -> Result<(), ProxyInputError> {
        self.rejected += 1;
        self.drop_conn(conn);
        self.out.push_back(Output::Close { conn });
        Err(e)
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(id) = self.by_conn.remove(&conn) {
            self.by_id.remove(&id);
        }
    }
}

impl Machine for Proxy {
    type Input = Input;
    type Output = Output;
    type Error = ProxyInputError;

    fn handle(&mut self, _now: Time, input: Input) -> Result<(), ProxyInputError> {
        match input {
            Input::Closed { conn } => {
                self.drop_conn(conn);
                Ok(())
            }
            Input::Frame {
                conn,
                msg: Msg::Register { id },
            } => {
                // one identification per connection, the newest connection wins an identification
                self.drop_conn(conn);
                if let Some(old) = self.by_id.remove(&id) {
                    self.by_conn.remove(&old);
                }
                if self.by_id.len() >= self.max_peers {
                    return self.reject(conn, ProxyInputError::Full(self.max_peers));
                }
                self.by_id.insert(id, conn);
                self.by_conn.insert(conn, id);
                self.out.push_back(Output::Send {
                    conn,
                    msg: Msg::Registered { id },
                });
                Ok(())
            }
            Input::Frame {
                conn,
                msg: Msg::Relay { to, signal },
            } => {
                let Some(from) = self.by_conn.get(&conn).copied() else {
                    return self.reject(conn, ProxyInputError::NotRegistered);
                };
                let msg = match self.by_id.get(&to) {
                    Some(dest) => {
                        self.relayed += 1;
                        self.out.push_back(Output::Send {
                            conn: *dest,
                            msg: Msg::Relayed { from, signal },
                        });
                        return Ok(());
                    }
                    None => Msg::NoSuchPeer { to },
                };
                self.out.push_back(Output::Send { conn, msg });
                Ok(())
            }
            Input::Frame { conn, .. } => self.reject(conn, ProxyInputError::NotForProxy),
        }
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        None
    }

    fn handle_timeout(&mut self, _now: Time) {}
}

/// What a peer registered at the proxy makes of a message from it, in an attempt with `peer`:
/// `Ok(Some(signal))` to feed to its [`Punch`](super::punch::Punch), `Ok(None)` to ignore
/// (a registration answer, or a signal from someone else), `Err` when the peer is not registered
/// or the proxy sent something it never sends.
pub fn client_input(peer: PeerId, msg: Msg) -> Result<Option<Signal>, StuntError> {
    match msg {
        Msg::Relayed { from, signal } if from == peer => Ok(Some(signal)),
        Msg::Relayed { .. } | Msg::Registered { .. } => Ok(None),
        Msg::NoSuchPeer { to } if to == peer => Err(StuntError::UnknownPeer),
        Msg::NoSuchPeer { .. } => Ok(None),
        _ => Err(StuntError::BadServerAnswer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stunt::wire::SessionId;

    #[test]
    fn relays_between_registered_peers_and_refuses_the_rest() {
        let mut p = Proxy::new(2);
        let t = Time::ZERO;
        let s = Signal::Accept {
            session: SessionId(3),
        };
        // a relay before registering closes the connection
        assert_eq!(
            p.handle(
                t,
                Input::Frame {
                    conn: ConnId(9),
                    msg: Msg::Relay {
                        to: PeerId(1),
                        signal: s
                    }
                }
            ),
            Err(ProxyInputError::NotRegistered)
        );
        assert_eq!(p.poll(), Some(Output::Close { conn: ConnId(9) }));
        p.handle(
            t,
            Input::Frame {
                conn: ConnId(1),
                msg: Msg::Register { id: PeerId(1) },
            },
        )
        .unwrap();
        p.handle(
            t,
            Input::Frame {
                conn: ConnId(2),
                msg: Msg::Register { id: PeerId(2) },
            },
        )
        .unwrap();
        // table full
        assert_eq!(
            p.handle(
                t,
                Input::Frame {
                    conn: ConnId(3),
                    msg: Msg::Register { id: PeerId(3) }
                }
            ),
            Err(ProxyInputError::Full(2))
        );
        while p.poll().is_some() {}
        p.handle(
            t,
            Input::Frame {
                conn: ConnId(2),
                msg: Msg::Relay {
                    to: PeerId(1),
                    signal: s,
                },
            },
        )
        .unwrap();
        assert_eq!(
            p.poll(),
            Some(Output::Send {
                conn: ConnId(1),
                msg: Msg::Relayed {
                    from: PeerId(2),
                    signal: s
                }
            })
        );
        // peer 1 leaves: a relay to it is answered NoSuchPeer
        p.handle(t, Input::Closed { conn: ConnId(1) }).unwrap();
        p.handle(
            t,
            Input::Frame {
                conn: ConnId(2),
                msg: Msg::Relay {
                    to: PeerId(1),
                    signal: s,
                },
            },
        )
        .unwrap();
        assert_eq!(
            p.poll(),
            Some(Output::Send {
                conn: ConnId(2),
                msg: Msg::NoSuchPeer { to: PeerId(1) }
            })
        );
        assert_eq!(
            client_input(PeerId(1), Msg::NoSuchPeer { to: PeerId(1) }),
            Err(StuntError::UnknownPeer)
        );
        assert_eq!(p.relayed, 1);
        assert_eq!(p.rejected, 2);
    }
}
