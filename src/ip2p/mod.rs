//! iP2P, sans-IO: find a phone's IP address by sending it an SMS (steps B.1–B.5).
//!
//! A phone runs one [`Peer`]. As a **caller** it resolves another phone's MSISDN: it sends an
//! authenticated control message ([`wire::Control`]) by SMS to the callee's iP2P port and listens
//! for the answer; as a **callee** it receives such an SMS with its broadband (BW) radio off,
//! switches the radio on, has the application's server started, and answers over IP with the
//! server's transport address. The caller then connects. The radio is switched on only when a
//! request or session needs it and off again after [`Config::idle_off`] with nothing to do — that
//! is the point of iP2P (a GSM module idles at about 10 mW, a BW module at 390 mW).
//!
//! | paper step | what the machine does | input → output |
//! |---|---|---|
//! | B.1 | the socket API reserved PortA and asks for B's address; radio on if needed | [`Input::Resolve`] → [`Output::ActivateBroadband`] … [`Input::BroadbandUp`] |
//! | B.2 | control message by SMS, then listen on PortA | → [`Output::SendSms`], [`Output::Listen`] |
//! | B.3 | callee: radio on, DHCP, start the server application | [`Input::Sms`] → [`Output::ActivateBroadband`]; [`Input::BroadbandUp`] → [`Output::StartServer`] |
//! | B.4 | callee answers over IP; caller maps MSISDN → address | [`Input::ServerListening`] → [`Output::SendIp`]; caller: [`Input::Ip`] → [`Event::Resolved`] |
//! | B.5 | TCP connect | → [`Output::Connect`]; [`Input::Connected`] → [`Event::Connected`] |
//!
//! Loss, duplication and delay of SMS are handled here: the caller re-sends the same SMS (same
//! nonce, same sequence number) after [`Config::sms_timeout`], up to [`Config::sms_attempts`]
//! times, then fails with [`Failure::NoAnswer`]; the callee treats a repeat of a request it is
//! serving as a retransmission (it re-sends its answer, starts nothing new) and rejects one it has
//! finished with as [`Error::Replayed`]. Every message is authenticated ([`wire`]); a sliding window
//! of sequence numbers per peer rejects replays of genuine SMS; nonces bind answers to requests.
//! Every request and session ends (resolved and connected, refused, or failed) — see the model
//! `ip2p` in `ip2p-models` and `spec/ip2p.md`.
//!
//! # Example: one phone calls another, hosts reduced to moving outputs around
//!
//! ```
//! use ip2p::ip2p::{Config, Event, Input, Output, Peer};
//! use ip2p::ip2p::wire::{AppName, Key, Nonce};
//! use ip2p::machine::Machine;
//! use ip2p::{Msisdn, Time};
//!
//! let (a, b): (Msisdn, Msisdn) = ("+886900000001".parse().unwrap(), "+886900000002".parse().unwrap());
//! let key = Key::from_bytes([42; 32]);
//! let ftp = AppName::new("ftp").unwrap();
//! let mut alice = Peer::new(Config::new(a).with_peer(b, key.clone()));
//! let mut bob = Peer::new(Config::new(b).with_peer(a, key).with_app(ftp));
//! let t = Time::ZERO;
//!
//! alice.handle(t, Input::BroadbandUp { ip: "192.0.2.1".parse().unwrap() }).unwrap();   // B.1
//! alice.handle(t, Input::Resolve { to: b, app: ftp, nonce: Nonce(7), port: 40000 }).unwrap();
//! let sms = loop {
//!     if let Some(Output::SendSms { payload, .. }) = alice.poll() { break payload; }   // B.2
//! };
//! bob.handle(t, Input::Sms { from: a, payload: sms }).unwrap();                      // B.3
//! assert!(std::iter::from_fn(|| bob.poll()).any(|o| o == Output::ActivateBroadband));
//! bob.handle(t, Input::BroadbandUp { ip: "198.51.100.2".parse().unwrap() }).unwrap();
//! let session = loop {
//!     if let Some(Output::StartServer { session, .. }) = bob.poll() { break session; }
//! };
//! bob.handle(t, Input::ServerListening { session, port: 2121 }).unwrap();
//! let reply = loop {
//!     if let Some(Output::SendIp { payload, .. }) = bob.poll() { break payload; }     // B.4
//! };
//! alice.handle(t, Input::Ip { payload: reply }).unwrap();
//! let mut resolved = None;
//! while let Some(o) = alice.poll() {
//!     match o {
//!         Output::Event(Event::Resolved { addr, .. }) => resolved = Some(addr),
//!         Output::Connect { to, .. } => assert_eq!(Some(to), resolved),              // B.5
//!         _ => {}
//!     }
//! }
//! assert_eq!(resolved, Some("198.51.100.2:2121".parse().unwrap()));
//! ```

pub mod invariants;
pub mod resolver;
pub mod wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::addr::TransportAddr;
use crate::broker::{modes, BrokerConfig, Memory, NatBehaviour, Profile};
use crate::machine::Machine;
use crate::msisdn::Msisdn;
use crate::relay::RelayToken;
use crate::time::Time;
use wire::{AppName, Control, Key, Kind, Mode, ModeSet, Nonce, Refusal, WireError};

/// The SMS application port (TS 23.040 16-bit port addressing) iP2P control messages are sent
/// to and from, so the phone hands them to the iP2P control function and not to the user's inbox.
/// It is in the range TS 23.040 leaves to applications (16000–16999).
pub const SMS_PORT: u16 = 16_422;

/// How a caller matches an answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ReplyMatching {
    /// By the request's nonce, sequence number and application (the protocol).
    #[default]
    Nonce,
    /// By peer and application only. **Unsafe, for the model only**: a delayed answer to an
    /// earlier request is taken for a later one, so the caller can connect to an address the
    /// callee announced for another request (`ip2p-check run ip2p --variant no-nonce`).
    PeerOnly,
}

/// A peer's configuration: who it is, whom it knows, what it serves, its timers and bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// This phone's number.
    pub me: Msisdn,
    /// The peers it may talk to, each with the key the two share.
    pub peers: BTreeMap<Msisdn, Key>,
    /// The applications it serves as callee.
    pub apps: Vec<AppName>,
    /// Wait this long for an answer before re-sending the request SMS (default 30 s: the paper
    /// measured 2.6 s per SMS and 9.4 s to attach to Wi-Fi).
    pub sms_timeout: Duration,
    /// Send the request SMS at most this many times (default 3).
    pub sms_attempts: u8,
    /// Give up on the radio if it has not attached (DHCP done) after this long (default 60 s).
    pub attach_timeout: Duration,
    /// Give up on a TCP connect after this long (default 20 s).
    pub connect_timeout: Duration,
    /// Callee: close the server if the caller has not connected this long after the answer
    /// (default 60 s).
    pub serve_timeout: Duration,
    /// Callee: give up on a server the host has not reported listening this long after
    /// `StartServer` (default 10 s).
    pub server_start_timeout: Duration,
    /// Switch the radio off after this long with no request or session (default 30 s).
    pub idle_off: Duration,
    /// Keep a resolved address this long for another connection to the same peer and
    /// application without an SMS (default 0: no cache; the callee's server may be gone).
    pub cache_ttl: Duration,
    /// The first sequence number used toward each peer. A host that does not persist the
    /// machine should start from a value that grows across restarts (e.g. wall-clock seconds),
    /// so that the callee's replay window does not reject its new requests.
    pub seq_base: u32,
    /// How answers are matched to requests (keep [`ReplyMatching::Nonce`]).
    pub reply_matching: ReplyMatching,
    /// Most requests in flight (default 16).
    pub max_requests: usize,
    /// Most sessions served at once (default 8); more are refused as busy.
    pub max_sessions: usize,
    /// Most cached addresses (default 64).
    pub max_cache: usize,
    /// How this phone makes a port reachable from outside its network: [`Mode::Direct`] (a
    /// public address, steps B), [`Mode::Upnp`] (a port mapping on the IGD, steps E) or
    /// [`Mode::Stunt2`] (a predicted NAT mapping and a low-TTL SYN, steps D). Default `Direct`.
    /// [`Mode::Relay`] is not a mode a phone can make itself reachable by: a peer configured
    /// with it fails its requests with [`Failure::Unsupported`] and refuses calls.
    pub mode: Mode,
    /// Give up on a mapping ([`Output::Map`]) the host has not answered this long (default 10 s).
    pub map_timeout: Duration,
    /// D.6: the caller waits this long after the callee's answer (whose low-TTL SYN is out by
    /// then) before its own SYN (default 100 ms).
    pub punch_wait: Duration,
    /// P2PBroker: choose the mode per connection from the network's [`Profile`] (given by
    /// [`Input::Profile`]) instead of the fixed [`Config::mode`], and fall back to the next mode
    /// when one fails (`spec/broker.md`). Default `None`.
    pub broker: Option<BrokerConfig>,
}

impl Config {
    /// Defaults for the phone `me`, knowing no peer and serving no application.
    pub fn new(me: Msisdn) -> Config {
        Config {
            me,
            peers: BTreeMap::new(),
            apps: Vec::new(),
            sms_timeout: Duration::from_secs(30),
            sms_attempts: 3,
            attach_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            serve_timeout: Duration::from_secs(60),
            server_start_timeout: Duration::from_secs(10),
            idle_off: Duration::from_secs(30),
            cache_ttl: Duration::ZERO,
            seq_base: 1,
            reply_matching: ReplyMatching::Nonce,
            max_requests: 16,
            max_sessions: 8,
            max_cache: 64,
            mode: Mode::Direct,
            map_timeout: Duration::from_secs(10),
            punch_wait: Duration::from_millis(100),
            broker: None,
        }
    }

    /// Broker every connection (see [`Config::broker`]).
    pub fn with_broker(mut self, broker: BrokerConfig) -> Config {
        self.broker = Some(broker);
        self
    }

    /// Make ports reachable by `mode` (see [`Config::mode`]).
    pub fn with_mode(mut self, mode: Mode) -> Config {
        self.mode = mode;
        self
    }

    /// Also know `peer`, sharing `key` with it.
    pub fn with_peer(mut self, peer: Msisdn, key: Key) -> Config {
        self.peers.insert(peer, key);
        self
    }

    /// Also serve `app` as callee.
    pub fn with_app(mut self, app: AppName) -> Config {
        if !self.apps.contains(&app) {
            self.apps.push(app);
        }
        self
    }
}

/// A session the callee serves: the caller and the request's nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionId {
    /// The caller.
    pub peer: Msisdn,
    /// The caller's request.
    pub nonce: Nonce,
}

/// What a NAT mapping is for: a request (the caller's PortA) or a session (the callee's PortB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MapKey {
    /// The caller's request.
    Request(Nonce),
    /// The callee's session.
    Session(SessionId),
}

/// A public transport address the host obtained for a local port (E.1/E.3: the IGD's port
/// mapping; D.1/D.3: the prediction server's forecast).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mapping {
    /// The public address (IPA:PortA or IPB:PortB).
    pub public: TransportAddr,
    /// STUNT #2: the TTL of the callee's low-TTL SYN, from the measured hop count.
    pub ttl: Option<u8>,
}

/// Why the host could not obtain a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MapFailure {
    /// No IGD answered discovery, or no prediction server answered.
    #[error("no gateway or prediction server answered")]
    NoGateway,
    /// The IGD refused the mapping (its UPnP error code).
    #[error("the gateway refused the mapping (UPnP error {0})")]
    Refused(u16),
    /// The NAT's mappings cannot be predicted (symmetric, random ports).
    #[error("the NAT's port mappings are unpredictable")]
    Unpredictable,
    /// The host did not answer within [`Config::map_timeout`].
    #[error("no mapping in time")]
    Timeout,
    /// Anything else the host met (I/O, malformed answers).
    #[error("the mapping failed")]
    Other,
}

/// Everything that can happen to a peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// B.1: the socket API reserved local port `port` and asks for `to`'s address for `app`.
    /// `nonce` must be fresh and random (it names the request in every event).
    Resolve {
        /// The callee.
        to: Msisdn,
        /// The application.
        app: AppName,
        /// A fresh random nonce.
        nonce: Nonce,
        /// The reserved local port (PortA).
        port: u16,
    },
    /// The application is done with the connection of request `nonce` (caller side).
    CloseRequest(Nonce),
    /// The application is done with session `session` (callee side).
    CloseSession(SessionId),
    /// A complete iP2P SMS arrived (reassembled, addressed to the iP2P port) from `from`.
    Sms {
        /// The originating number, normalised to E.164.
        from: Msisdn,
        /// The user data.
        payload: Vec<u8>,
    },
    /// A control message arrived over IP (the answer of B.4).
    Ip {
        /// The message.
        payload: Vec<u8>,
    },
    /// The BW radio attached and DHCP gave this address.
    BroadbandUp {
        /// The address obtained.
        ip: IpAddr,
    },
    /// The BW radio lost its attachment.
    BroadbandDown,
    /// B.3: the server application of `session` listens on `port`.
    ServerListening {
        /// The session.
        session: SessionId,
        /// Its port (PortB).
        port: u16,
    },
    /// The server application of `session` could not be started.
    ServerFailed(SessionId),
    /// The caller connected to the server of `session`.
    Accepted(SessionId),
    /// B.5: the connection of request `nonce` is up.
    Connected(Nonce),
    /// B.5: the connection of request `nonce` failed.
    ConnectFailed(Nonce),
    /// E.1/E.3, D.1/D.3: the answer to [`Output::Map`].
    Mapped {
        /// The request or session it was for.
        key: MapKey,
        /// The public address, or why there is none.
        result: Result<Mapping, MapFailure>,
    },
    /// P2PBroker: what the network around this phone supports, as the host probed it (again
    /// after every change of network). Used by a peer configured with [`Config::broker`].
    Profile(Profile),
}

/// What a peer asks of its host or tells its application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send `payload` as 8-bit data by SMS to `to`'s iP2P port.
    SendSms {
        /// The destination phone.
        to: Msisdn,
        /// The control message.
        payload: Vec<u8>,
    },
    /// Send `payload` over IP to `to` (B.4: the caller's PortA).
    SendIp {
        /// The destination.
        to: TransportAddr,
        /// The control message.
        payload: Vec<u8>,
    },
    /// Switch the BW radio on and attach (DHCP); answer with [`Input::BroadbandUp`].
    ActivateBroadband,
    /// Switch the BW radio off.
    DeactivateBroadband,
    /// B.2: accept answers for request `nonce` on local port `port`.
    Listen {
        /// The request.
        nonce: Nonce,
        /// PortA.
        port: u16,
    },
    /// Stop accepting answers on `port`.
    StopListening {
        /// The request.
        nonce: Nonce,
        /// PortA.
        port: u16,
    },
    /// B.3: start the server application `app` for `session`; answer with
    /// [`Input::ServerListening`] or [`Input::ServerFailed`].
    StartServer {
        /// The session.
        session: SessionId,
        /// The application.
        app: AppName,
    },
    /// Stop the server application of `session`.
    StopServer(SessionId),
    /// B.5: connect from local port `from_port` to `to`; answer with [`Input::Connected`] or
    /// [`Input::ConnectFailed`].
    Connect {
        /// The request.
        nonce: Nonce,
        /// The callee's application address.
        to: TransportAddr,
        /// PortA.
        from_port: u16,
    },
    /// E.1/E.3, D.1/D.3: make local port `port` reachable by `mode` (UPnP: AddPortMapping on the
    /// IGD; STUNT #2: reserve the port and ask the prediction server); answer with
    /// [`Input::Mapped`]. Every `Map` is followed by exactly one [`Output::Unmap`] for its key.
    Map {
        /// The request or session it is for.
        key: MapKey,
        /// How.
        mode: Mode,
        /// The local port (PortA or PortB).
        port: u16,
    },
    /// The request or session of `key` is over: delete its port mapping (UPnP
    /// DeletePortMapping) or release the reserved port. Also sent when the mapping failed or is
    /// still in progress; the host then deletes whatever it obtains.
    Unmap(MapKey),
    /// D.5 (callee, STUNT #2): send a SYN from local port `from_port` to the caller's public
    /// address `to` with IP TTL `ttl` (enough to cross our NAT, too little to reach the caller's),
    /// then accept the caller's connection on that port (by simultaneous open or by the server).
    Punch {
        /// The session.
        session: SessionId,
        /// PortB.
        from_port: u16,
        /// IPA:PortA.
        to: TransportAddr,
        /// The TTL for the SYN (`None`: the host's default).
        ttl: Option<u8>,
    },
    /// Relay mode, caller: connect to the relay at `relay` and present `token` as the caller;
    /// answer with [`Input::Connected`] once the relay has joined the callee (or
    /// [`Input::ConnectFailed`]).
    RelayConnect {
        /// The request.
        nonce: Nonce,
        /// The relay the callee named.
        relay: TransportAddr,
        /// What pairs the two at the relay.
        token: RelayToken,
    },
    /// Relay mode, callee: connect to the relay at `relay`, present `token` as the callee, and
    /// join that connection to the server of `session` listening on local port `port`; answer
    /// with [`Input::Accepted`] once the caller is joined.
    RelayAccept {
        /// The session.
        session: SessionId,
        /// This peer's relay.
        relay: TransportAddr,
        /// What pairs the two at the relay.
        token: RelayToken,
        /// The server's local port (PortB).
        port: u16,
    },
    /// Tell the application.
    Event(Event),
}

/// Why a request or session ended without a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Failure {
    /// The callee never answered.
    #[error("no answer from the callee after {0} SMS")]
    NoAnswer(u8),
    /// The callee refused.
    #[error("the callee refused: {0:?}")]
    Refused(Refusal),
    /// The radio did not attach in time.
    #[error("the broadband radio did not attach in time")]
    AttachFailed,
    /// The radio lost its attachment.
    #[error("the broadband link was lost")]
    LinkLost,
    /// The TCP connection to the callee failed.
    #[error("could not connect to the callee's application")]
    ConnectFailed,
    /// The TCP connection to the callee did not complete in time.
    #[error("the connection to the callee's application timed out")]
    ConnectTimeout,
    /// Callee: the caller never connected to the server.
    #[error("the caller never connected")]
    NeverConnected,
    /// Callee: the server application could not be started.
    #[error("the server application could not be started")]
    ServerFailed,
    /// No public mapping for the port (E.1/E.3, D.1/D.3).
    #[error("no NAT mapping: {0}")]
    MapFailed(MapFailure),
    /// This peer's configured mode cannot carry a connection ([`Mode::Relay`]).
    #[error("the configured mode cannot carry a connection")]
    Unsupported,
}

/// What a peer tells its application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// B.4: `peer`'s `app` is at `addr` (`cached`: from the cache, no SMS sent).
    Resolved {
        /// The request.
        nonce: Nonce,
        /// The callee.
        peer: Msisdn,
        /// The application.
        app: AppName,
        /// Its transport address.
        addr: TransportAddr,
        /// Taken from the cache.
        cached: bool,
    },
    /// B.5: the connection of request `nonce` is up.
    Connected(Nonce),
    /// P2PBroker: the attempt of request `nonce` in `mode` failed with `error`; the request goes
    /// on with the next mode of its offer, or ends with [`Event::Failed`] when none is left.
    ModeFailed {
        /// The request.
        nonce: Nonce,
        /// The callee.
        peer: Msisdn,
        /// The mode tried.
        mode: Mode,
        /// Why it failed.
        error: Failure,
    },
    /// Request `nonce` to `peer` failed.
    Failed {
        /// The request.
        nonce: Nonce,
        /// The callee.
        peer: Msisdn,
        /// Why.
        error: Failure,
    },
    /// Callee: `session.peer` asks for `app` (B.3 begins).
    Incoming {
        /// The session.
        session: SessionId,
        /// The application.
        app: AppName,
    },
    /// Callee, P2PBroker: `session` could not be made reachable by `mode` (`error`); it goes on
    /// with the next mode the caller offered and this peer can do, without another SMS.
    SessionModeFailed {
        /// The session.
        session: SessionId,
        /// The mode that failed.
        mode: Mode,
        /// Why.
        error: Failure,
    },
    /// Callee: the caller connected to the server of `session`.
    Served(SessionId),
    /// Callee: session ended without the caller connecting.
    SessionFailed {
        /// The session.
        session: SessionId,
        /// Why.
        error: Failure,
    },
}

/// Why an input was rejected. The peer is unchanged apart from its [`Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The message does not decode or does not verify.
    #[error("bad control message: {0}")]
    Wire(#[from] WireError),
    /// No key is configured for this number.
    #[error("unknown peer {0}: no shared key is configured for it")]
    UnknownPeer(Msisdn),
    /// The nonce names a request already in flight.
    #[error("nonce {0} is already in use by a request")]
    NonceInUse(Nonce),
    /// Too many requests in flight.
    #[error("too many requests in flight (at most {0})")]
    TooManyRequests(usize),
    /// A request already served, or older than the replay window: a replay or a stale duplicate.
    #[error("request {seq} from {peer} was already handled (replay or stale duplicate)")]
    Replayed {
        /// The sender.
        peer: Msisdn,
        /// Its sequence number.
        seq: u32,
    },
    /// An answer for no request in flight (late, duplicated after the end, or forged).
    #[error("answer for no request in flight (nonce {0})")]
    NoSuchRequest(Nonce),
    /// An answer whose fields do not match the request it names.
    #[error("answer does not match its request ({0})")]
    Mismatch(&'static str),
    /// A message kind that makes no sense on this path (a request over IP).
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
    /// A host input for a session or request that does not exist or is not waiting for it.
    #[error("no {0} is waiting for this input")]
    NotWaiting(&'static str),
    /// A message sent by this very phone came back to it.
    #[error("a message from this phone's own number")]
    FromSelf,
}

/// Counters. They are not part of the state a model checker compares: two peers that differ only
/// in their counters are equal.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Inputs rejected (any [`Error`]).
    pub rejected: u64,
    /// Messages that failed authentication.
    pub bad_tags: u64,
    /// Requests rejected as replays.
    pub replays: u64,
    /// Repeated requests for a session in progress (answered again).
    pub retransmissions_answered: u64,
    /// Request SMS sent again after a timeout.
    pub sms_resent: u64,
    /// Duplicate answers ignored.
    pub duplicate_answers: u64,
}

impl PartialEq for Stats {
    fn eq(&self, _: &Stats) -> bool {
        true
    }
}
impl Eq for Stats {}
impl Hash for Stats {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// The sliding window of sequence numbers seen from one peer (64 wide, as IPsec's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Window {
    top: u32,
    seen: u64,
}

const WINDOW: u32 = 64;

impl Window {
    fn contains(&self, seq: u32) -> bool {
        if self.seen == 0 || seq > self.top {
            return false;
        }
        let back = self.top - seq;
        back >= WINDOW || self.seen & (1 << back) != 0
    }
    fn insert(&mut self, seq: u32) {
        if self.seen == 0 {
            self.top = seq;
            self.seen = 1;
        } else if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            } | 1;
            self.top = seq;
        } else {
            self.seen |= 1 << (self.top - seq);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Radio {
    Off,
    Activating { deadline: Time },
    On { ip: IpAddr, idle: Option<Time> },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ReqState {
    /// Waiting for the radio; `cached` holds an address from the cache.
    WaitRadio { cached: Option<TransportAddr> },
    /// E.1/D.1: `Map` is out for PortA; the host answers by `deadline`.
    WaitMapping { deadline: Time },
    /// B.2 done: the SMS is out, `attempts` sent.
    WaitAnswer {
        attempts: u8,
        deadline: Time,
        sms: Vec<u8>,
    },
    /// D.6: the answer came; connect to `to` at `at` (B's low-TTL SYN is out by then).
    Punching { to: TransportAddr, at: Time },
    /// B.5 in progress.
    Connecting { to: TransportAddr, deadline: Time },
    /// Connected.
    Open { to: TransportAddr },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Request {
    peer: Msisdn,
    app: AppName,
    port: u16,
    seq: u32,
    state: ReqState,
    /// A `Map` went out for this request (so an `Unmap` must follow).
    mapped: bool,
    /// The nonce of the current attempt on the wire: the request's own for the first, a
    /// derived one for each fallback (the callee takes each attempt as a new request).
    wire: Nonce,
    /// Attempts made before the current one.
    attempt: u8,
    /// P2PBroker: the modes still offered (`None`: a fixed-mode peer).
    offer: Option<ModeSet>,
    /// The mode the callee chose for the current attempt (from its answer).
    mode: Option<Mode>,
    /// PortA's public address, once mapped (kept for the fallback attempts).
    mapping: Option<Mapping>,
    /// How PortA was mapped (`None`: not at all).
    map_mode: Option<Mode>,
    /// Ask the callee to answer by SMS: nothing reaches this phone from outside.
    sms_reply: bool,
    /// `Listen` is out for PortA (a brokered request listens until it ends, across attempts).
    listening: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SessState {
    WaitRadio,
    /// `StartServer` is out; the host answers by `deadline`.
    WaitServer {
        deadline: Time,
    },
    /// E.3/D.3: the server listens on `port`; `Map` is out, answered by `deadline`.
    WaitMapping {
        port: u16,
        deadline: Time,
    },
    /// B.4 done: the answer is out; re-sent if the request is repeated.
    Serving {
        answer: Vec<u8>,
        deadline: Time,
    },
    Served,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Session {
    app: AppName,
    seq: u32,
    /// Where the caller can be reached: its public address if it sent one, else its own.
    caller: TransportAddr,
    /// D.4: the caller is behind a NAT that lets nothing in (STUNT #2): answer by SMS.
    answer_by_sms: bool,
    state: SessState,
    /// A `Map` went out for this session (so an `Unmap` must follow).
    mapped: bool,
    /// How this session is reached.
    mode: Mode,
    /// P2PBroker: the other offered modes this peer can do, tried in turn if making the server
    /// reachable by `mode` fails.
    rest: ModeSet,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PeerState {
    next_seq: u32,
    window: Window,
}

/// The wire nonce of fallback attempt `attempt` of request `nonce`: a SplitMix64 step, so
/// attempts of one request never collide with each other and almost never with other requests.
pub(crate) fn attempt_nonce(nonce: Nonce, attempt: u8) -> Nonce {
    if attempt == 0 {
        return nonce;
    }
    let mut z = nonce
        .0
        .wrapping_add(u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Nonce(z ^ (z >> 31))
}

/// One phone's iP2P control function: caller and callee roles, and its BW radio.
///
/// Cloning shares the configuration (behind an [`Arc`]); hashing leaves it out (it never changes
/// after construction, and equal peers have equal configurations, so hashes stay consistent with
/// equality) — a model checker clones and hashes a peer in every state it visits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    config: Arc<Config>,
    radio: Radio,
    peers: BTreeMap<Msisdn, PeerState>,
    requests: BTreeMap<Nonce, Request>,
    sessions: BTreeMap<SessionId, Session>,
    cache: BTreeMap<(Msisdn, AppName), (TransportAddr, Time)>,
    /// P2PBroker: the network as last probed.
    profile: Option<Profile>,
    /// P2PBroker: what failed and worked, per network and peer.
    memory: Memory,
    out: VecDeque<Output>,
    stats: Stats,
}

impl Hash for Peer {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.radio.hash(h);
        self.peers.hash(h);
        self.requests.hash(h);
        self.sessions.hash(h);
        self.cache.hash(h);
        self.profile.hash(h);
        self.memory.hash(h);
        self.out.hash(h);
    }
}

impl Peer {
    /// A peer with its radio off and nothing in flight.
    pub fn new(config: Config) -> Peer {
        let peers = config
            .peers
            .keys()
            .map(|m| {
                (
                    *m,
                    PeerState {
                        next_seq: config.seq_base,
                        window: Window::default(),
                    },
                )
            })
            .collect();
        Peer {
            radio: Radio::Off,
            peers,
            requests: BTreeMap::new(),
            sessions: BTreeMap::new(),
            cache: BTreeMap::new(),
            profile: None,
            memory: config.broker.as_ref().map_or_else(
                || Memory::new(Duration::ZERO, 0),
                |b| Memory::new(b.forget_after, b.max_memory),
            ),
            out: VecDeque::new(),
            stats: Stats::default(),
            config: Arc::new(config),
        }
    }

    /// P2PBroker: the network as last probed ([`Input::Profile`]).
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// P2PBroker: what this peer remembers of modes that failed and worked.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The network around this phone: the probed profile, or — before any probe — an unknown
    /// NAT in front of the radio's address (so nothing is assumed reachable).
    fn own_profile(&self, ip: IpAddr) -> Profile {
        self.profile.unwrap_or(Profile {
            local: ip,
            public: None,
            igd: None,
            nat: NatBehaviour::Unknown,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the BW radio is on (or being switched on).
    pub fn radio_on(&self) -> bool {
        !matches!(self.radio, Radio::Off)
    }

    /// The address DHCP gave the radio, if attached.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.radio {
            Radio::On { ip, .. } => Some(ip),
            _ => None,
        }
    }

    /// Requests in flight (caller side).
    pub fn requests(&self) -> usize {
        self.requests.len()
    }

    /// Sessions being served (callee side).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Whether request `nonce` is in flight and connected.
    pub fn is_open(&self, nonce: Nonce) -> bool {
        matches!(
            self.requests.get(&nonce).map(|r| &r.state),
            Some(ReqState::Open { .. })
        )
    }

    /// The sessions being served (callee side).
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// The mode of request `nonce`'s current attempt, once the callee's answer named it (a
    /// fixed-mode peer's answer without a mode counts as [`Mode::Direct`]).
    pub fn request_mode(&self, nonce: Nonce) -> Option<Mode> {
        self.requests.get(&nonce).and_then(|r| r.mode)
    }

    /// The mode session `session` is reached by.
    pub fn session_mode(&self, session: SessionId) -> Option<Mode> {
        self.sessions.get(&session).map(|s| s.mode)
    }

    /// The application of session `session`, if it is being served.
    pub fn session_app(&self, session: SessionId) -> Option<AppName> {
        self.sessions.get(&session).map(|s| s.app)
    }

    fn key(&self, peer: &Msisdn) -> Result<&Key, Error> {
        self.config.peers.get(peer).ok_or(Error::UnknownPeer(*peer))
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    // ----- caller ----------------------------------------------------------------------------

    fn resolve(
        &mut self,
        now: Time,
        to: Msisdn,
        app: AppName,
        nonce: Nonce,
        port: u16,
    ) -> Result<(), Error> {
        if to == self.config.me {
            return Err(Error::FromSelf);
        }
        self.key(&to)?;
        if self.requests.contains_key(&nonce) {
            return Err(Error::NonceInUse(nonce));
        }
        if self.requests.len() >= self.config.max_requests {
            return Err(Error::TooManyRequests(self.config.max_requests));
        }
        let cached = match self.cache.get(&(to, app)) {
            Some(&(addr, expires)) if expires > now => Some(addr),
            _ => None,
        };
        let ps = self.peers.get_mut(&to).ok_or(Error::UnknownPeer(to))?;
        let seq = ps.next_seq;
        ps.next_seq = ps.next_seq.wrapping_add(1);
        self.requests.insert(
            nonce,
            Request {
                peer: to,
                app,
                port,
                seq,
                state: ReqState::WaitRadio { cached },
                mapped: false,
                wire: nonce,
                attempt: 0,
                offer: None,
                mode: None,
                mapping: None,
                map_mode: None,
                sms_reply: false,
                listening: false,
            },
        );
        match self.radio {
            Radio::On { ip, .. } => self.start_request(now, nonce, ip),
            Radio::Activating { .. } => {}
            Radio::Off => self.activate(now),
        }
        Ok(())
    }

    /// The radio is up: send the SMS of a waiting request (B.2), or connect to a cached address.
    fn start_request(&mut self, now: Time, nonce: Nonce, ip: IpAddr) {
        let Some(r) = self.requests.get(&nonce) else {
            return;
        };
        let ReqState::WaitRadio { cached } = r.state else {
            return;
        };
        let (peer, app, port) = (r.peer, r.app, r.port);
        if let Some(addr) = cached {
            self.event(Event::Resolved {
                nonce,
                peer,
                app,
                addr,
                cached: true,
            });
            self.connect(now, nonce, addr);
            return;
        }
        let map_mode = if self.config.broker.is_some() {
            // P2PBroker: offer every mode this network lets the caller take part in, less those
            // that failed toward this peer from here lately; map PortA when the callee's answer
            // or SYN could not reach it otherwise
            let own = self.own_profile(ip);
            let offer = self
                .memory
                .offer(own.network(), peer, modes::caller_offer(&own), now);
            let map_mode = if own.is_public() {
                None
            } else if own.igd.is_some() {
                Some(Mode::Upnp)
            } else if offer.contains(Mode::Stunt2) {
                Some(Mode::Stunt2)
            } else {
                None
            };
            if let Some(r) = self.requests.get_mut(&nonce) {
                r.offer = Some(offer);
                r.map_mode = map_mode;
                r.sms_reply = !own.is_public() && map_mode != Some(Mode::Upnp);
            }
            map_mode
        } else {
            match self.config.mode {
                Mode::Direct => None,
                Mode::Relay => return self.fail_request(nonce, Failure::Unsupported),
                mode @ (Mode::Upnp | Mode::Stunt2) => Some(mode),
            }
        };
        match map_mode {
            None => self.send_request(now, nonce, ip, None),
            Some(mode) => {
                // E.1 / D.1: a public address for PortA first
                let deadline = now + self.config.map_timeout;
                if let Some(r) = self.requests.get_mut(&nonce) {
                    r.state = ReqState::WaitMapping { deadline };
                    r.mapped = true;
                }
                self.out.push_back(Output::Map {
                    key: MapKey::Request(nonce),
                    mode,
                    port,
                });
            }
        }
    }

    /// B.2 / E.2 / D.2: the control message by SMS (with PortA's public address when mapped),
    /// then listen on PortA.
    fn send_request(&mut self, now: Time, nonce: Nonce, ip: IpAddr, mapped: Option<Mapping>) {
        let me = self.config.me;
        let Some(r) = self.requests.get(&nonce) else {
            return;
        };
        let (peer, app, port, seq, wire, offer, sms_reply) =
            (r.peer, r.app, r.port, r.seq, r.wire, r.offer, r.sms_reply);
        let Ok(key) = self.key(&peer) else { return };
        let mode = match offer {
            Some(_) => None,
            None => (self.config.mode != Mode::Direct).then_some(self.config.mode),
        };
        let sms = Control {
            kind: Kind::Request,
            nonce: wire,
            seq,
            app,
            addr: Some(TransportAddr(SocketAddr::new(ip, port))),
            mapped: mapped.map(|m| m.public),
            mode,
            offer,
            sms_reply,
        }
        .encode(key, &me, &peer);
        let listen = match self.requests.get_mut(&nonce) {
            Some(r) => {
                r.mapping = mapped;
                !core::mem::replace(&mut r.listening, true)
            }
            None => false,
        };
        self.out.push_back(Output::SendSms {
            to: peer,
            payload: sms.clone(),
        });
        if listen {
            self.out.push_back(Output::Listen { nonce, port });
        }
        if let Some(r) = self.requests.get_mut(&nonce) {
            r.state = ReqState::WaitAnswer {
                attempts: 1,
                deadline: now + self.config.sms_timeout,
                sms,
            };
        }
    }

    fn connect(&mut self, now: Time, nonce: Nonce, to: TransportAddr) {
        let Some(r) = self.requests.get_mut(&nonce) else {
            return;
        };
        r.state = ReqState::Connecting {
            to,
            deadline: now + self.config.connect_timeout,
        };
        let from_port = r.port;
        self.out.push_back(Output::Connect {
            nonce,
            to,
            from_port,
        });
    }

    /// Relay mode: join the callee at the relay it named, with the token of this attempt.
    fn relay_connect(&mut self, now: Time, nonce: Nonce, relay: TransportAddr) {
        let me = self.config.me;
        let Some(r) = self.requests.get(&nonce) else {
            return;
        };
        let (peer, wire) = (r.peer, r.wire);
        let Ok(key) = self.key(&peer) else { return };
        let token = RelayToken::derive(key, wire, &me, &peer);
        if let Some(r) = self.requests.get_mut(&nonce) {
            r.state = ReqState::Connecting {
                to: relay,
                deadline: now + self.config.connect_timeout,
            };
        }
        self.out.push_back(Output::RelayConnect {
            nonce,
            relay,
            token,
        });
    }

    /// The connection of request `nonce` failed with `error`. A brokered request drops the mode
    /// from its offer and tries again with what is left (a new SMS: the callee must set up its
    /// side for the next mode); otherwise, or when nothing is left, the request fails.
    fn connection_failed(&mut self, now: Time, nonce: Nonce, error: Failure) {
        let Some(r) = self.requests.get(&nonce) else {
            return;
        };
        let (Some(offer), Some(mode)) = (r.offer, r.mode) else {
            return self.fail_request(nonce, error);
        };
        let (peer, app, attempt) = (r.peer, r.app, r.attempt);
        self.event(Event::ModeFailed {
            nonce,
            peer,
            mode,
            error,
        });
        let Some(ip) = self.ip() else {
            return self.fail_request(nonce, error);
        };
        let network = self.own_profile(ip).network();
        self.memory.failed(network, peer, mode, now);
        self.cache.remove(&(peer, app));
        let rest = offer.without(mode);
        let fallback = self.config.broker.as_ref().is_some_and(|b| b.fallback);
        if !fallback || rest.is_empty() || usize::from(attempt) + 1 >= Mode::ALL.len() {
            return self.fail_request(nonce, error);
        }
        let Some(ps) = self.peers.get_mut(&peer) else {
            return self.fail_request(nonce, error);
        };
        let seq = ps.next_seq;
        ps.next_seq = ps.next_seq.wrapping_add(1);
        let Some(r) = self.requests.get_mut(&nonce) else {
            return;
        };
        r.attempt = attempt + 1;
        r.wire = attempt_nonce(nonce, r.attempt);
        r.seq = seq;
        r.offer = Some(rest);
        r.mode = None;
        let mapping = r.mapping;
        self.send_request(now, nonce, ip, mapping);
    }

    /// End request `nonce` with `error` (and stop listening if it was).
    fn fail_request(&mut self, nonce: Nonce, error: Failure) {
        if let Some(r) = self.requests.remove(&nonce) {
            self.release_request(nonce, &r);
            if matches!(error, Failure::ConnectFailed | Failure::ConnectTimeout) {
                self.cache.remove(&(r.peer, r.app));
            }
            self.event(Event::Failed {
                nonce,
                peer: r.peer,
                error,
            });
        }
    }

    /// What a request holds when it goes: the answer listener, the mapping.
    fn release_request(&mut self, nonce: Nonce, r: &Request) {
        if r.listening {
            self.out.push_back(Output::StopListening {
                nonce,
                port: r.port,
            });
        }
        if r.mapped {
            self.out.push_back(Output::Unmap(MapKey::Request(nonce)));
        }
    }

    /// An answer (Reply or Refuse) to one of our requests, arriving by IP or SMS.
    fn answer(&mut self, now: Time, sms_from: Option<Msisdn>, bytes: &[u8]) -> Result<(), Error> {
        let me = self.config.me;
        let unverified = Control::parse(bytes)?;
        if unverified.kind == Kind::Request {
            return Err(Error::Unexpected("request"));
        }
        // Which request does it answer? Only the matching rule decides which key to try.
        let candidates: Vec<Nonce> = match self.config.reply_matching {
            ReplyMatching::Nonce => self
                .requests
                .iter()
                .filter(|(_, r)| r.wire == unverified.nonce)
                .map(|(n, _)| *n)
                .collect(),
            ReplyMatching::PeerOnly => self
                .requests
                .iter()
                .filter(|(_, r)| r.app == unverified.app)
                .map(|(n, _)| *n)
                .collect(),
        };
        let mut found = None;
        let mut last_err = Error::NoSuchRequest(unverified.nonce);
        for n in candidates {
            let r = &self.requests[&n];
            if sms_from.is_some_and(|f| f != r.peer) {
                continue;
            }
            let key = self.key(&r.peer)?;
            match Control::decode(bytes, key, &r.peer, &me) {
                Ok(msg) => {
                    found = Some((n, msg));
                    break;
                }
                Err(e) => last_err = e.into(),
            }
        }
        let (nonce, msg) = found.ok_or(last_err)?;
        let r = &self.requests[&nonce];
        if self.config.reply_matching == ReplyMatching::Nonce
            && (msg.seq != r.seq || msg.app != r.app)
        {
            return Err(Error::Mismatch("sequence number or application"));
        }
        match (&r.state, msg.kind) {
            (ReqState::WaitAnswer { .. }, Kind::Reply) => {
                // E.4 / D.4: the callee's public address when it has one, else its own (B.4)
                let addr = msg
                    .mapped
                    .or(msg.addr)
                    .ok_or(Error::Mismatch("answer without an address"))?;
                let mode = msg.mode.unwrap_or(Mode::Direct);
                if r.offer.is_some_and(|o| !o.contains(mode)) {
                    return Err(Error::Mismatch("a mode that was not offered"));
                }
                let (peer, app, port) = (r.peer, r.app, r.port);
                let brokered = r.offer.is_some();
                if let Some(r) = self.requests.get_mut(&nonce) {
                    r.mode = Some(mode);
                    r.listening &= brokered;
                }
                if !brokered {
                    self.out.push_back(Output::StopListening { nonce, port });
                }
                // a STUNT #2 address is good for one punched connection only, a relay's for one
                // pairing: neither is cached
                if self.config.cache_ttl > Duration::ZERO
                    && !matches!(mode, Mode::Stunt2 | Mode::Relay)
                {
                    if self.cache.len() >= self.config.max_cache
                        && !self.cache.contains_key(&(peer, app))
                    {
                        // evict the entry closest to expiry
                        if let Some(k) = self.cache.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k)
                        {
                            self.cache.remove(&k);
                        }
                    }
                    self.cache
                        .insert((peer, app), (addr, now + self.config.cache_ttl));
                }
                self.event(Event::Resolved {
                    nonce,
                    peer,
                    app,
                    addr,
                    cached: false,
                });
                match mode {
                    Mode::Stunt2 => {
                        // D.6: wait until the callee's low-TTL SYN has opened NAT-B, then SYN
                        let at = now + self.config.punch_wait;
                        if let Some(r) = self.requests.get_mut(&nonce) {
                            r.state = ReqState::Punching { to: addr, at };
                        }
                    }
                    Mode::Relay => self.relay_connect(now, nonce, addr),
                    Mode::Direct | Mode::Upnp => self.connect(now, nonce, addr),
                }
                Ok(())
            }
            (ReqState::WaitAnswer { .. }, Kind::Refuse(why)) => {
                self.fail_request(nonce, Failure::Refused(why));
                Ok(())
            }
            (
                ReqState::Punching { .. } | ReqState::Connecting { .. } | ReqState::Open { .. },
                _,
            ) => {
                self.stats.duplicate_answers += 1;
                Ok(())
            }
            (ReqState::WaitRadio { .. } | ReqState::WaitMapping { .. }, _) => {
                Err(Error::NoSuchRequest(nonce))
            }
            (_, Kind::Request) => Err(Error::Unexpected("request")),
        }
    }

    // ----- callee ----------------------------------------------------------------------------

    fn request(&mut self, now: Time, from: Msisdn, bytes: &[u8]) -> Result<(), Error> {
        let me = self.config.me;
        let key = self.key(&from)?;
        let msg = Control::decode(bytes, key, &from, &me)?;
        if msg.kind != Kind::Request {
            return self.answer(now, Some(from), bytes);
        }
        let session = SessionId {
            peer: from,
            nonce: msg.nonce,
        };
        let window = self.peers.get(&from).map(|p| p.window).unwrap_or_default();
        if window.contains(msg.seq) {
            // a repeat: the caller's retransmission while we serve it, or a replay
            if let Some(s) = self.sessions.get(&session) {
                if s.seq == msg.seq && s.app == msg.app {
                    self.stats.retransmissions_answered += 1;
                    if let SessState::Serving { answer, .. } = &s.state {
                        let payload = answer.clone();
                        self.out.push_back(if s.answer_by_sms {
                            Output::SendSms { to: from, payload }
                        } else {
                            Output::SendIp {
                                to: s.caller,
                                payload,
                            }
                        });
                    }
                    return Ok(());
                }
            }
            self.stats.replays += 1;
            return Err(Error::Replayed {
                peer: from,
                seq: msg.seq,
            });
        }
        // B.2: the caller's own address; E.2/D.2: also its public one, which is where it can be
        // reached (and, for STUNT #2, where the low-TTL SYN goes)
        let caller = msg
            .mapped
            .or(msg.addr)
            .ok_or(Error::Mismatch("request without an address"))?;
        if let Some(p) = self.peers.get_mut(&from) {
            p.window.insert(msg.seq);
        }
        // How to be reached: a fixed-mode peer its configured mode; a brokered one the cheapest
        // offered mode its network allows
        let (mode, rest) = match &self.config.broker {
            None => (Some(self.config.mode), ModeSet::EMPTY),
            Some(b) => {
                let offer = msg
                    .offer
                    .unwrap_or(ModeSet::only(msg.mode.unwrap_or(Mode::Direct)));
                let own = self.own_profile(self.ip().unwrap_or(caller.0.ip()));
                let mut can = offer.and(modes::callee_modes(&own, b.relay.is_some()));
                // STUNT #2 punches toward PortA's public side: a mapped one, or the caller's own
                // address when it takes answers over IP and sent no mapping (it is public)
                if msg.mapped.is_none() && msg.sms_reply {
                    can = can.without(Mode::Stunt2);
                }
                let mode = can.cheapest();
                (mode, mode.map_or(ModeSet::EMPTY, |m| can.without(m)))
            }
        };
        let refusal = if !self.config.apps.contains(&msg.app) {
            Some(Refusal::UnknownApp)
        } else if matches!(mode, None | Some(Mode::Relay)) && self.config.broker.is_none()
            || mode.is_none()
        {
            Some(Refusal::Unreachable)
        } else if self.sessions.len() >= self.config.max_sessions
            || self.sessions.contains_key(&session)
        {
            Some(Refusal::Busy)
        } else {
            None
        };
        if let Some(why) = refusal {
            // by SMS: no reason to power the radio up to say no
            let payload = Control {
                kind: Kind::Refuse(why),
                addr: None,
                mapped: None,
                mode: None,
                offer: None,
                sms_reply: false,
                ..msg
            }
            .encode(self.key(&from)?, &me, &from);
            self.out.push_back(Output::SendSms { to: from, payload });
            return Ok(());
        }
        self.sessions.insert(
            session,
            Session {
                app: msg.app,
                seq: msg.seq,
                caller,
                answer_by_sms: msg.sms_reply
                    || msg.mode == Some(Mode::Stunt2)
                    || mode == Some(Mode::Stunt2),
                state: SessState::WaitRadio,
                mapped: false,
                mode: mode.unwrap_or(Mode::Direct),
                rest,
            },
        );
        self.event(Event::Incoming {
            session,
            app: msg.app,
        });
        match self.radio {
            Radio::On { .. } => self.start_server(now, session),
            Radio::Activating { .. } => {}
            Radio::Off => self.activate(now),
        }
        Ok(())
    }

    fn start_server(&mut self, now: Time, session: SessionId) {
        let deadline = now + self.config.server_start_timeout;
        if let Some(s) = self.sessions.get_mut(&session) {
            if s.state == SessState::WaitRadio {
                s.state = SessState::WaitServer { deadline };
                let app = s.app;
                self.out.push_back(Output::StartServer { session, app });
            }
        }
    }

    fn end_session(&mut self, session: SessionId, error: Failure) {
        if let Some(s) = self.sessions.remove(&session) {
            self.release_session(session, &s);
            self.event(Event::SessionFailed { session, error });
        }
    }

    /// What a session holds when it goes: the server, the mapping.
    fn release_session(&mut self, session: SessionId, s: &Session) {
        if !matches!(s.state, SessState::WaitRadio) {
            self.out.push_back(Output::StopServer(session));
        }
        if s.mapped {
            self.out.push_back(Output::Unmap(MapKey::Session(session)));
        }
    }

    /// The server of `session` listens on `port`: make it reachable (E.3/D.3) or answer (B.4).
    fn server_listening(&mut self, now: Time, session: SessionId, port: u16) -> Result<(), Error> {
        let ip = self.ip().ok_or(Error::NotWaiting("attached radio"))?;
        self.sessions
            .get(&session)
            .filter(|s| matches!(s.state, SessState::WaitServer { .. }))
            .ok_or(Error::NotWaiting("session"))?;
        self.reach(now, session, ip, port)
    }

    /// Make the server of `session` (on `port`) reachable by the session's mode, then answer.
    fn reach(&mut self, now: Time, session: SessionId, ip: IpAddr, port: u16) -> Result<(), Error> {
        let deadline = now + self.config.map_timeout;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(Error::NotWaiting("session"))?;
        match s.mode {
            mode @ (Mode::Upnp | Mode::Stunt2) => {
                s.state = SessState::WaitMapping { port, deadline };
                s.mapped = true;
                self.out.push_back(Output::Map {
                    key: MapKey::Session(session),
                    mode,
                    port,
                });
                Ok(())
            }
            Mode::Direct | Mode::Relay => self.send_answer(now, session, ip, port, None),
        }
    }

    /// B.4 / E.4 over IP to the caller; D.4 by SMS (the caller's NAT lets nothing in).
    fn send_answer(
        &mut self,
        now: Time,
        session: SessionId,
        ip: IpAddr,
        port: u16,
        mapped: Option<Mapping>,
    ) -> Result<(), Error> {
        let me = self.config.me;
        let s = self
            .sessions
            .get(&session)
            .ok_or(Error::NotWaiting("session"))?;
        let relay = self.config.broker.as_ref().and_then(|b| b.relay);
        let (mode, addr) = match (&self.config.broker, s.mode, relay) {
            // Relay mode: the caller is told where the relay is, never this phone's address
            (Some(_), Mode::Relay, Some(relay)) => (Some(Mode::Relay), relay),
            (Some(_), mode, _) => (Some(mode), TransportAddr(SocketAddr::new(ip, port))),
            (None, _, _) => (
                (self.config.mode != Mode::Direct).then_some(self.config.mode),
                TransportAddr(SocketAddr::new(ip, port)),
            ),
        };
        let key = self.key(&session.peer)?;
        let answer = Control {
            kind: Kind::Reply,
            nonce: session.nonce,
            seq: s.seq,
            app: s.app,
            addr: Some(addr),
            mapped: mapped.map(|m| m.public),
            mode,
            offer: None,
            sms_reply: false,
        }
        .encode(key, &me, &session.peer);
        if mode == Some(Mode::Relay) {
            // at the relay before the caller can be, so its wait there is short
            let token = RelayToken::derive(key, session.nonce, &session.peer, &me);
            self.out.push_back(Output::RelayAccept {
                session,
                relay: addr,
                token,
                port,
            });
        }
        let (caller, by_sms) = (s.caller, s.answer_by_sms);
        if s.mode == Mode::Stunt2 {
            // D.5 before D.4: NAT-B holds the mapping toward the caller's public address before
            // the caller can learn ours, so its SYN (D.6) can never arrive first
            self.out.push_back(Output::Punch {
                session,
                from_port: port,
                to: caller,
                ttl: mapped.and_then(|m| m.ttl),
            });
        }
        self.out.push_back(if by_sms {
            Output::SendSms {
                to: session.peer,
                payload: answer.clone(),
            }
        } else {
            Output::SendIp {
                to: caller,
                payload: answer.clone(),
            }
        });
        if let Some(s) = self.sessions.get_mut(&session) {
            s.state = SessState::Serving {
                answer,
                deadline: now + self.config.serve_timeout,
            };
        }
        Ok(())
    }

    /// The callee cannot be reached: tell the caller by SMS (so it fails now, not after its
    /// time-outs) and end the session.
    fn unreachable(&mut self, now: Time, session: SessionId, why: MapFailure) {
        let me = self.config.me;
        // P2PBroker: the next mode this peer can do from the caller's offer, with no SMS round
        // trip (the mapping that failed is released first)
        let fallback = self.config.broker.as_ref().is_some_and(|b| b.fallback);
        let next = self
            .sessions
            .get_mut(&session)
            .filter(|_| fallback)
            .and_then(|s| {
                let port = match s.state {
                    SessState::WaitMapping { port, .. } => port,
                    _ => return None,
                };
                let mode = s.rest.cheapest()?;
                s.rest = s.rest.without(mode);
                let failed = core::mem::replace(&mut s.mode, mode);
                if mode == Mode::Stunt2 {
                    s.answer_by_sms = true;
                }
                let was_mapped = core::mem::replace(&mut s.mapped, false);
                Some((port, was_mapped, failed))
            });
        if let (Some((port, was_mapped, failed)), Some(ip)) = (next, self.ip()) {
            if was_mapped {
                self.out.push_back(Output::Unmap(MapKey::Session(session)));
            }
            self.event(Event::SessionModeFailed {
                session,
                mode: failed,
                error: Failure::MapFailed(why),
            });
            if self.reach(now, session, ip, port).is_ok() {
                return;
            }
        }
        if let (Some(s), Ok(key)) = (self.sessions.get(&session), self.key(&session.peer)) {
            let payload = Control {
                kind: Kind::Refuse(Refusal::Unreachable),
                nonce: session.nonce,
                seq: s.seq,
                app: s.app,
                addr: None,
                mapped: None,
                mode: None,
                offer: None,
                sms_reply: false,
            }
            .encode(key, &me, &session.peer);
            self.out.push_back(Output::SendSms {
                to: session.peer,
                payload,
            });
        }
        self.end_session(session, Failure::MapFailed(why));
    }

    /// The host's answer to `Map`.
    fn mapped(
        &mut self,
        now: Time,
        key: MapKey,
        result: Result<Mapping, MapFailure>,
    ) -> Result<(), Error> {
        let ip = self.ip().ok_or(Error::NotWaiting("attached radio"))?;
        match key {
            MapKey::Request(nonce) => {
                match self.requests.get(&nonce).map(|r| &r.state) {
                    Some(ReqState::WaitMapping { .. }) => {}
                    _ => return Err(Error::NotWaiting("mapping")),
                }
                match result {
                    Ok(m) => self.send_request(now, nonce, ip, Some(m)),
                    Err(why) => match self.requests.get_mut(&nonce) {
                        // P2PBroker: PortA stays unreachable. The answer comes by SMS, and
                        // STUNT #2 (which needs PortA's public address) is no longer offered.
                        Some(r) if r.offer.is_some() => {
                            r.sms_reply = true;
                            if r.map_mode == Some(Mode::Stunt2) {
                                r.offer = r.offer.map(|o| o.without(Mode::Stunt2));
                            }
                            self.send_request(now, nonce, ip, None);
                        }
                        _ => self.fail_request(nonce, Failure::MapFailed(why)),
                    },
                }
                Ok(())
            }
            MapKey::Session(session) => {
                let port = match self.sessions.get(&session).map(|s| &s.state) {
                    Some(SessState::WaitMapping { port, .. }) => *port,
                    _ => return Err(Error::NotWaiting("mapping")),
                };
                match result {
                    Ok(m) => self.send_answer(now, session, ip, port, Some(m)),
                    Err(why) => {
                        self.unreachable(now, session, why);
                        Ok(())
                    }
                }
            }
        }
    }

    // ----- radio -----------------------------------------------------------------------------

    fn activate(&mut self, now: Time) {
        self.radio = Radio::Activating {
            deadline: now + self.config.attach_timeout,
        };
        self.out.push_back(Output::ActivateBroadband);
    }

    fn broadband_up(&mut self, now: Time, ip: IpAddr) {
        self.radio = Radio::On { ip, idle: None };
        let waiting: Vec<Nonce> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.state, ReqState::WaitRadio { .. }))
            .map(|(n, _)| *n)
            .collect();
        for n in waiting {
            self.start_request(now, n, ip);
        }
        let waiting: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.state == SessState::WaitRadio)
            .map(|(k, _)| *k)
            .collect();
        for s in waiting {
            self.start_server(now, s);
        }
    }

    /// Everything that needed the radio fails with `why`.
    fn fail_all(&mut self, why: Failure) {
        let reqs: Vec<Nonce> = self.requests.keys().copied().collect();
        for n in reqs {
            self.fail_request(n, why);
        }
        let sess: Vec<SessionId> = self.sessions.keys().copied().collect();
        for s in sess {
            self.end_session(s, why);
        }
    }

    /// Keep the radio's idle timer in step with the work in flight.
    fn settle_radio(&mut self, now: Time) {
        let busy = !self.requests.is_empty() || !self.sessions.is_empty();
        if let Radio::On { idle, .. } = &mut self.radio {
            match (busy, *idle) {
                (true, _) => *idle = None,
                (false, None) => *idle = Some(now + self.config.idle_off),
                (false, Some(_)) => {}
            }
        }
    }

    fn dispatch(&mut self, now: Time, input: Input) -> Result<(), Error> {
        match input {
            Input::Resolve {
                to,
                app,
                nonce,
                port,
            } => self.resolve(now, to, app, nonce, port),
            Input::CloseRequest(nonce) => {
                let r = self
                    .requests
                    .remove(&nonce)
                    .ok_or(Error::NotWaiting("request"))?;
                self.release_request(nonce, &r);
                Ok(())
            }
            Input::CloseSession(session) => {
                let s = self
                    .sessions
                    .remove(&session)
                    .ok_or(Error::NotWaiting("session"))?;
                self.release_session(session, &s);
                Ok(())
            }
            Input::Sms { from, payload } => {
                if from == self.config.me {
                    return Err(Error::FromSelf);
                }
                self.request(now, from, &payload).inspect_err(|e| {
                    if matches!(e, Error::Wire(WireError::BadTag)) {
                        self.stats.bad_tags += 1;
                    }
                })
            }
            Input::Ip { payload } => self.answer(now, None, &payload).inspect_err(|e| {
                if matches!(e, Error::Wire(WireError::BadTag)) {
                    self.stats.bad_tags += 1;
                }
            }),
            Input::BroadbandUp { ip } => {
                self.broadband_up(now, ip);
                Ok(())
            }
            Input::BroadbandDown => {
                if self.radio != Radio::Off {
                    self.radio = Radio::Off;
                    self.fail_all(Failure::LinkLost);
                }
                Ok(())
            }
            Input::ServerListening { session, port } => self.server_listening(now, session, port),
            Input::Mapped { key, result } => self.mapped(now, key, result),
            Input::ServerFailed(session) => {
                if !self.sessions.contains_key(&session) {
                    return Err(Error::NotWaiting("session"));
                }
                self.end_session(session, Failure::ServerFailed);
                Ok(())
            }
            Input::Accepted(session) => {
                let s = self
                    .sessions
                    .get_mut(&session)
                    .filter(|s| matches!(s.state, SessState::Serving { .. }))
                    .ok_or(Error::NotWaiting("session"))?;
                s.state = SessState::Served;
                self.event(Event::Served(session));
                Ok(())
            }
            Input::Connected(nonce) => {
                let ip = self.ip();
                let r = self
                    .requests
                    .get_mut(&nonce)
                    .ok_or(Error::NotWaiting("request"))?;
                let ReqState::Connecting { to, .. } = r.state else {
                    return Err(Error::NotWaiting("request"));
                };
                r.state = ReqState::Open { to };
                if let (Some(_), Some(mode), Some(ip)) = (r.offer, r.mode, ip) {
                    let peer = r.peer;
                    let network = self.own_profile(ip).network();
                    self.memory.worked_with(network, peer, mode, now);
                }
                self.event(Event::Connected(nonce));
                Ok(())
            }
            Input::ConnectFailed(nonce) => {
                match self.requests.get(&nonce).map(|r| &r.state) {
                    Some(ReqState::Connecting { .. }) => {}
                    _ => return Err(Error::NotWaiting("request")),
                }
                self.connection_failed(now, nonce, Failure::ConnectFailed);
                Ok(())
            }
            Input::Profile(profile) => {
                self.profile = Some(profile);
                Ok(())
            }
        }
    }
}

impl Machine for Peer {
    type Input = Input;
    type Output = Output;
    type Error = Error;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), Error> {
        let r = self.dispatch(now, input);
        if r.is_err() {
            self.stats.rejected += 1;
        }
        self.settle_radio(now);
        r
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        let radio = match self.radio {
            Radio::Activating { deadline } => Some(deadline),
            Radio::On { idle, .. } => idle,
            Radio::Off => None,
        };
        let reqs = self.requests.values().filter_map(|r| match r.state {
            ReqState::WaitAnswer { deadline, .. }
            | ReqState::Connecting { deadline, .. }
            | ReqState::WaitMapping { deadline }
            | ReqState::Punching { at: deadline, .. } => Some(deadline),
            _ => None,
        });
        let sess = self.sessions.values().filter_map(|s| match s.state {
            SessState::Serving { deadline, .. }
            | SessState::WaitServer { deadline }
            | SessState::WaitMapping { deadline, .. } => Some(deadline),
            _ => None,
        });
        radio.into_iter().chain(reqs).chain(sess).min()
    }

    fn handle_timeout(&mut self, now: Time) {
        match self.radio {
            Radio::Activating { deadline } if deadline <= now => {
                self.radio = Radio::Off;
                self.out.push_back(Output::DeactivateBroadband);
                self.fail_all(Failure::AttachFailed);
            }
            Radio::On {
                idle: Some(idle), ..
            } if idle <= now => {
                self.radio = Radio::Off;
                self.out.push_back(Output::DeactivateBroadband);
            }
            _ => {}
        }
        let due: Vec<Nonce> = self
            .requests
            .iter()
            .filter(|(_, r)| match r.state {
                ReqState::WaitAnswer { deadline, .. }
                | ReqState::Connecting { deadline, .. }
                | ReqState::WaitMapping { deadline }
                | ReqState::Punching { at: deadline, .. } => deadline <= now,
                _ => false,
            })
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            let max = self.config.sms_attempts;
            let Some(r) = self.requests.get_mut(&n) else {
                continue;
            };
            match &mut r.state {
                ReqState::WaitAnswer {
                    attempts,
                    deadline,
                    sms,
                } if *attempts < max => {
                    *attempts += 1;
                    *deadline = now + self.config.sms_timeout;
                    let (to, payload) = (r.peer, sms.clone());
                    self.stats.sms_resent += 1;
                    self.out.push_back(Output::SendSms { to, payload });
                }
                ReqState::WaitAnswer { attempts, .. } => {
                    let a = *attempts;
                    self.fail_request(n, Failure::NoAnswer(a));
                }
                ReqState::WaitMapping { .. } => {
                    self.fail_request(n, Failure::MapFailed(MapFailure::Timeout))
                }
                ReqState::Punching { to, .. } => {
                    let to = *to;
                    self.connect(now, n, to);
                }
                _ => self.connection_failed(now, n, Failure::ConnectTimeout),
            }
        }
        let due: Vec<(SessionId, Failure)> = self
            .sessions
            .iter()
            .filter_map(|(k, s)| match s.state {
                SessState::Serving { deadline, .. } if deadline <= now => {
                    Some((*k, Failure::NeverConnected))
                }
                SessState::WaitServer { deadline } if deadline <= now => {
                    Some((*k, Failure::ServerFailed))
                }
                SessState::WaitMapping { deadline, .. } if deadline <= now => {
                    Some((*k, Failure::MapFailed(MapFailure::Timeout)))
                }
                _ => None,
            })
            .collect();
        for (s, why) in due {
            match why {
                Failure::MapFailed(f) => self.unreachable(now, s, f),
                _ => self.end_session(s, why),
            }
        }
        self.settle_radio(now);
    }
}

#[cfg(test)]
mod tests;
