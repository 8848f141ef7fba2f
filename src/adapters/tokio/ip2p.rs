//! The iP2P socket API over tokio: one task runs a [`Peer`] and carries out its IP side on real
//! TCP sockets (listen for the answer, answer, serve, connect); SMS and the radio stay with the
//! host through channels ([`Links`]), because they belong to the phone (a modem through
//! [`crate::adapters::modem`], a platform's connection manager), not to tokio.
//!
//! ```text
//! app ── Ip2pHandle::connect(msisdn, app) ──► task ── Peer ──► SendSms ─► Links::sms_out
//!                                                   ▲  │         ActivateBroadband ─► Links::radio_out
//!     Links::sms_in, Links::radio_in ───────────────┘  ├─ Listen      → TCP listener on PortA (reserved at resolve)
//!                                                      ├─ SendIp      → TCP connect, one frame, close
//!                                                      ├─ StartServer → TCP listener on the radio's address
//!                                                      ├─ Connect     → TCP connect → the app gets the stream
//!                                                      ├─ Map / Unmap → UPnP IGD port mapping, or STUNT #2 prediction
//!                                                      └─ Punch       → STUNT #2 low-TTL SYN from PortB, accept on it
//! ```
//!
//! Behind a NAT ([`HostConfig::traversal`]) the host carries out the peer's `Map` with the UPnP
//! client ([`super::upnp::Igd`], steps E: AddPortMapping, DeletePortMapping on `Unmap`) or the
//! STUNT #2 adapter ([`super::stunt`], steps D: prediction from the reserved port, the callee's
//! low-TTL SYN, the caller's SYN from PortA). PortA and PortB are bound with `SO_REUSEADDR` and
//! `SO_REUSEPORT` so the prediction query and the punched connection can share them with the
//! listeners. A mapping that completes after the peer already released it is deleted at once;
//! mappings still held when the task stops are deleted before it ends.
//!
//! Over IP a control message travels in one frame: a 2-octet big-endian length (at most 140)
//! and the message. A frame that is too long, or does not arrive within
//! [`HostConfig::frame_timeout`], is dropped and counted; nothing a peer sends stops the task.
//!
//! Nonces come from the standard library's per-process random hash keys mixed with a counter:
//! unique and unpredictable enough for binding answers to requests (the tag, not the nonce, is
//! what authenticates).
//!
//! # Example
//!
//! See `tests/ip2p_e2e.rs`: two phones, two emulated modems, an emulated SMS centre, and a real
//! TCP connection at the end.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::upnp::{Igd, PortMapping, UpnpError};
use crate::ip2p::resolver::{classify, Name, NameError};
use crate::ip2p::wire::Mode;
use crate::ip2p::wire::{AppName, Nonce, MAX_LEN};
use crate::ip2p::{Event, Failure, Input, MapFailure, MapKey, Mapping, Output, Peer, SessionId};
use crate::machine::Machine;
use crate::msisdn::DialPlan;
use crate::msisdn::Msisdn;
use crate::relay::wire::Role;
use crate::time::Time;
use crate::TransportAddr;

/// Answers read at once on one PortA listener; further connections are dropped (and counted as
/// bad frames) until one finishes.
pub const MAX_READERS: usize = 8;

/// What the host asks of the phone's BW radio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadioCommand {
    /// Switch on and attach; answer with [`RadioEvent::Up`].
    On,
    /// Switch off.
    Off,
}

/// What the phone's BW radio reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadioEvent {
    /// Attached; DHCP gave this address.
    Up(IpAddr),
    /// Lost the attachment.
    Down,
}

/// The channels between the task and the phone: SMS (complete iP2P control messages, already
/// port-addressed and reassembled) and the radio.
#[derive(Debug)]
pub struct Links {
    /// Control messages to send by SMS: (to, payload).
    pub sms_out: mpsc::UnboundedSender<(Msisdn, Vec<u8>)>,
    /// Control messages received by SMS: (from, payload).
    pub sms_in: mpsc::Receiver<(Msisdn, Vec<u8>)>,
    /// Radio commands.
    pub radio_out: mpsc::UnboundedSender<RadioCommand>,
    /// Radio events.
    pub radio_in: mpsc::Receiver<RadioEvent>,
}

/// How the host makes a local port reachable when the peer asks ([`Output::Map`]).
#[derive(Clone, Debug, Default)]
pub enum Traversal {
    /// No NAT traversal: every `Map` fails with [`MapFailure::NoGateway`].
    #[default]
    None,
    /// A UPnP IGD on the local network (steps E).
    Upnp {
        /// Discovery options (SSDP target, bind address, client configuration).
        options: super::upnp::Options,
        /// The lease asked for each mapping (the host deletes it when done; the lease bounds
        /// what is left if the phone dies first).
        lease: Duration,
    },
    /// STUNT #2 through a port-prediction server (steps D).
    Stunt {
        /// The prediction server's addresses, one per probe (see
        /// [`crate::stunt::predict::PredictConfig::probes`]).
        servers: Vec<SocketAddr>,
        /// How predictions are made (probes, hop-count limit, probe time-out).
        predict: crate::stunt::predict::PredictConfig,
        /// How long the callee's punched port waits for the caller's SYN.
        punch_timeout: Duration,
    },
    /// P2PBroker: every way out this host has; the peer ([`crate::ip2p::Config::broker`])
    /// asks for one per connection.
    Brokered {
        /// UPnP IGD discovery options, if the network may have an IGD.
        upnp: Option<super::upnp::Options>,
        /// The lease asked for each UPnP mapping.
        lease: Duration,
        /// Prediction servers for STUNT #2 (empty: no STUNT #2).
        servers: Vec<SocketAddr>,
        /// How predictions are made.
        predict: crate::stunt::predict::PredictConfig,
        /// How long the callee's punched port waits for the caller's SYN.
        punch_timeout: Duration,
    },
}

impl Traversal {
    /// UPnP: the discovery options and the lease, if this host may map by UPnP.
    fn upnp(&self) -> Option<(super::upnp::Options, Duration)> {
        match self {
            Traversal::Upnp { options, lease } => Some((options.clone(), *lease)),
            Traversal::Brokered {
                upnp: Some(options),
                lease,
                ..
            } => Some((options.clone(), *lease)),
            _ => None,
        }
    }

    /// STUNT #2: servers, prediction settings and punch time-out, if this host may punch.
    fn stunt(
        &self,
    ) -> Option<(
        Vec<SocketAddr>,
        crate::stunt::predict::PredictConfig,
        Duration,
    )> {
        match self {
            Traversal::Stunt {
                servers,
                predict,
                punch_timeout,
            }
            | Traversal::Brokered {
                servers,
                predict,
                punch_timeout,
                ..
            } if !servers.is_empty() => Some((servers.clone(), *predict, *punch_timeout)),
            _ => None,
        }
    }
}

/// Settings of the task.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// NAT traversal for [`Output::Map`] (default none).
    pub traversal: Traversal,
    /// How long a TCP connect (the answer of B.4, the connection of B.5) may take.
    pub connect_timeout: Duration,
    /// How long a peer may take to send its one frame after connecting.
    pub frame_timeout: Duration,
    /// Capacity of the events channel.
    pub event_capacity: usize,
    /// P2PBroker: the profile of the network, as probed before the task starts
    /// ([`Ip2pHandle::set_profile`] replaces it later).
    pub profile: Option<crate::broker::Profile>,
    /// Also report every output of the peer ([`HostEvent::Output`]) before the host carries it
    /// out: a trace of the protocol's steps for demos and logs.
    pub trace: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            traversal: Traversal::None,
            connect_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(5),
            event_capacity: 64,
            profile: None,
            trace: false,
        }
    }
}

/// Why [`Ip2pHandle::connect`] did not give a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The protocol failed (no answer, refused, radio, connect).
    #[error("iP2P: {0}")]
    Failed(Failure),
    /// P2PBroker: every mode tried failed; `tried` names each mode and why, in order, and
    /// `error` is how the request ended.
    #[error("iP2P: every mode failed ({}); then {error}", tried.iter().map(|(m, f)| format!("{m}: {f}")).collect::<Vec<_>>().join("; "))]
    ModesFailed {
        /// Each mode tried, and why it failed.
        tried: Vec<(Mode, Failure)>,
        /// How the request ended.
        error: Failure,
    },
    /// The peer rejected the request (unknown peer, too many requests …).
    #[error("iP2P request rejected: {0}")]
    Rejected(crate::ip2p::Error),
    /// The name is neither a valid telephone number nor a host name.
    #[error("{0}")]
    Name(NameError),
    /// A socket operation failed (reserving the local port, a direct connect).
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The task has stopped.
    #[error("the iP2P task has stopped")]
    Stopped,
}

/// A connection made by [`Ip2pHandle::connect_name`]: through iP2P, or directly.
#[derive(Debug)]
pub enum Stream {
    /// Resolved by iP2P.
    Ip2p(Connection),
    /// An IP literal or a DNS name, connected the usual way.
    Direct(TcpStream),
}

impl Stream {
    /// The TCP stream.
    pub fn stream(&mut self) -> &mut TcpStream {
        match self {
            Stream::Ip2p(c) => &mut c.stream,
            Stream::Direct(s) => s,
        }
    }
}

/// A connection made by [`Ip2pHandle::connect`]. Dropping it tells the peer the session is over
/// (so the radio can go idle).
#[derive(Debug)]
pub struct Connection {
    /// The TCP stream to the callee's application (B.5).
    pub stream: TcpStream,
    /// The request.
    pub nonce: Nonce,
    /// The callee's application address (in relay mode: the relay's).
    pub addr: TransportAddr,
    /// The mode of operation that connected (P2PBroker; a fixed-mode peer's mode otherwise).
    pub mode: Mode,
    /// Modes that failed before this one (P2PBroker fallback), and why.
    pub failed: Vec<(Mode, Failure)>,
    close: mpsc::UnboundedSender<Command>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.close.send(Command::CloseRequest(self.nonce));
    }
}

/// A connection a caller made to a server this phone started for it (callee side). Dropping it
/// ends the session.
#[derive(Debug)]
pub struct Served {
    /// The TCP stream from the caller.
    pub stream: TcpStream,
    /// The session.
    pub session: SessionId,
    /// The application.
    pub app: AppName,
    close: mpsc::UnboundedSender<Command>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.close.send(Command::CloseSession(self.session));
    }
}

/// What the task tells the application.
#[derive(Debug)]
pub enum HostEvent {
    /// A caller connected to the server started for it.
    Incoming(Served),
    /// An event of the peer (resolved, failed, incoming request …).
    Peer(Event),
    /// An output of the peer, when [`HostConfig::trace`] is on.
    Output(Output),
}

/// Counters of the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Inputs the peer rejected (forged, replayed, late …).
    pub rejected: u64,
    /// Frames dropped (too long, too slow, bad length).
    pub bad_frames: u64,
    /// Answers that could not be delivered over IP.
    pub send_failures: u64,
    /// Events dropped because the application did not read them.
    pub events_dropped: u64,
}

#[derive(Debug, Default)]
struct Shared {
    rejected: AtomicU64,
    bad_frames: AtomicU64,
    send_failures: AtomicU64,
    events_dropped: AtomicU64,
}

#[derive(Debug)]
enum Command {
    Resolve {
        to: Msisdn,
        app: AppName,
        reply: oneshot::Sender<Result<Connection, ConnectError>>,
    },
    CloseRequest(Nonce),
    CloseSession(SessionId),
    Profile(crate::broker::Profile),
    Stop,
}

enum Internal {
    Input(Input),
    Connected(Nonce, TcpStream, TransportAddr),
    Accepted(SessionId, TcpStream),
    ServerListening(SessionId, TcpListener),
    ServerFailed(SessionId),
    BadFrame,
    SendFailed,
    Mapped(MapKey, Result<(Mapping, Held), MapFailure>),
}

/// A mapping the host holds for the peer, and what releasing it takes.
enum Held {
    /// A port mapping on the IGD: deleted on release.
    Upnp(Arc<Igd>, PortMapping),
    /// A predicted mapping: nothing to delete (the NAT's entry times out with the connection).
    Predicted,
}

impl Held {
    fn release(self, failures: &Arc<Shared>) {
        if let Held::Upnp(igd, m) = self {
            let shared = Arc::clone(failures);
            tokio::spawn(async move {
                if igd.delete_port_mapping(&m).await.is_err() {
                    shared.send_failures.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}

/// The application's handle on the task.
#[derive(Clone, Debug)]
pub struct Ip2pHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl Ip2pHandle {
    /// The iP2P socket API: resolve `to` by SMS (B.1–B.4) and connect to its `app` (B.5).
    pub async fn connect(&self, to: Msisdn, app: AppName) -> Result<Connection, ConnectError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Resolve { to, app, reply })
            .map_err(|_| ConnectError::Stopped)?;
        rx.await.map_err(|_| ConnectError::Stopped)?
    }

    /// The whole socket API: `name` is classified by [`crate::ip2p::resolver::classify`]; an
    /// MSISDN goes through iP2P ([`Ip2pHandle::connect`]; the callee announces its port), an IP
    /// literal or a DNS name is connected the usual way on `port` (DNS through the system
    /// resolver).
    pub async fn connect_name(
        &self,
        name: &str,
        app: AppName,
        port: u16,
        plan: Option<&DialPlan>,
    ) -> Result<Stream, ConnectError> {
        match classify(name, plan).map_err(ConnectError::Name)? {
            Name::Msisdn(m) => self.connect(m, app).await.map(Stream::Ip2p),
            Name::Ip(ip) => Ok(Stream::Direct(
                TcpStream::connect(SocketAddr::new(ip, port)).await?,
            )),
            Name::Dns(host) => Ok(Stream::Direct(TcpStream::connect((host, port)).await?)),
        }
    }

    /// The counters.
    pub fn counters(&self) -> HostCounters {
        let s = &self.shared;
        HostCounters {
            rejected: s.rejected.load(Ordering::Relaxed),
            bad_frames: s.bad_frames.load(Ordering::Relaxed),
            send_failures: s.send_failures.load(Ordering::Relaxed),
            events_dropped: s.events_dropped.load(Ordering::Relaxed),
        }
    }

    /// P2PBroker: the network was probed again (a new network, a changed NAT).
    pub fn set_profile(&self, profile: crate::broker::Profile) {
        let _ = self.commands.send(Command::Profile(profile));
    }

    /// Stop the task (sockets close, the radio is told to switch off).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }
}

/// Start the task. Returns the handle and the events.
pub fn spawn(
    peer: Peer,
    links: Links,
    config: HostConfig,
) -> (Ip2pHandle, mpsc::Receiver<HostEvent>) {
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::channel(config.event_capacity.max(1));
    let (internal, internal_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    let mut peer = peer;
    if let Some(p) = config.profile {
        // a profile is always accepted
        let _ = peer.handle(Time::ZERO, Input::Profile(p));
    }
    let task = Task {
        peer,
        links,
        config,
        origin: Instant::now(),
        commands: commands.clone(),
        events,
        internal,
        shared: Arc::clone(&shared),
        reserved: HashMap::new(),
        listeners: HashMap::new(),
        servers: HashMap::new(),
        pending: HashMap::new(),
        tried: HashMap::new(),
        streams: HashMap::new(),
        held: HashMap::new(),
        mapping: std::collections::HashSet::new(),
        released_early: std::collections::HashSet::new(),
        igd: Arc::new(tokio::sync::Mutex::new(None)),
        punches: HashMap::new(),
        nonce_seed: std::collections::hash_map::RandomState::new(),
        nonce_counter: 0,
    };
    tokio::spawn(task.run(commands_rx, internal_rx));
    (Ip2pHandle { commands, shared }, events_rx)
}

struct Task {
    peer: Peer,
    links: Links,
    config: HostConfig,
    origin: Instant,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Sender<HostEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    shared: Arc<Shared>,
    /// PortA listeners reserved at resolve time, until the peer says Listen.
    reserved: HashMap<Nonce, TcpListener>,
    /// PortA accept loops.
    listeners: HashMap<Nonce, JoinHandle<()>>,
    /// Server accept tasks.
    servers: HashMap<SessionId, JoinHandle<()>>,
    /// Applications waiting for their connection.
    pending: HashMap<Nonce, oneshot::Sender<Result<Connection, ConnectError>>>,
    /// Streams connected (and to where), waiting for the peer to confirm.
    streams: HashMap<Nonce, (TcpStream, TransportAddr)>,
    /// P2PBroker: modes that failed per request, for the application's error or connection.
    tried: HashMap<Nonce, Vec<(Mode, Failure)>>,
    /// Mappings in place, by the peer's key.
    held: HashMap<MapKey, Held>,
    /// Mappings being obtained.
    mapping: std::collections::HashSet<MapKey>,
    /// Mappings the peer released while they were being obtained: released on arrival.
    released_early: std::collections::HashSet<MapKey>,
    /// The IGD, once discovered (warm for every later mapping).
    igd: Arc<tokio::sync::Mutex<Option<Arc<Igd>>>>,
    /// D.5 tasks: the punched PortB of a session.
    punches: HashMap<SessionId, JoinHandle<()>>,
    nonce_seed: std::collections::hash_map::RandomState,
    nonce_counter: u64,
}

impl Task {
    fn now(&self) -> Time {
        Time::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: Time) -> Instant {
        self.origin + Duration::from_millis(t.as_millis())
    }

    fn fresh_nonce(&mut self) -> Nonce {
        self.nonce_counter += 1;
        let mut h = self.nonce_seed.build_hasher();
        h.write_u64(self.nonce_counter);
        Nonce(h.finish())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        loop {
            let deadline = self.peer.poll_timeout().map(|t| self.instant(t));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = commands.recv() => match c {
                    None | Some(Command::Stop) => break,
                    Some(c) => self.command(c).await,
                },
                Some(i) = internal.recv() => self.internal(i),
                Some((from, payload)) = self.links.sms_in.recv() => {
                    self.input(Input::Sms { from, payload });
                }
                Some(ev) = self.links.radio_in.recv() => {
                    let input = match ev {
                        RadioEvent::Up(ip) => Input::BroadbandUp { ip },
                        RadioEvent::Down => Input::BroadbandDown,
                    };
                    self.input(input);
                }
                _ = sleep => {
                    let now = self.now();
                    self.peer.handle_timeout(now);
                }
            }
            self.drain();
        }
        for (_, h) in self
            .listeners
            .drain()
            .chain(self.servers.drain().map(|(k, v)| (k.nonce, v)))
        {
            h.abort();
        }
        for (_, h) in self.punches.drain() {
            h.abort();
        }
        // nothing left on the IGD: delete what is held (and wait, the runtime may end next)
        for (_, held) in self.held.drain() {
            if let Held::Upnp(igd, m) = held {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), igd.delete_port_mapping(&m)).await;
            }
        }
        let _ = self.links.radio_out.send(RadioCommand::Off);
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        if self.peer.handle(now, input).is_err() {
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::Resolve { to, app, reply } => {
                // B.1: the socket API reserves PortA before it asks the control function
                let listener = match reusable_listener(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    0,
                )) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = reply.send(Err(ConnectError::Io(e)));
                        return;
                    }
                };
                let port = match listener.local_addr() {
                    Ok(a) => a.port(),
                    Err(e) => {
                        let _ = reply.send(Err(ConnectError::Io(e)));
                        return;
                    }
                };
                let nonce = self.fresh_nonce();
                let now = self.now();
                match self.peer.handle(
                    now,
                    Input::Resolve {
                        to,
                        app,
                        nonce,
                        port,
                    },
                ) {
                    Ok(()) => {
                        self.reserved.insert(nonce, listener);
                        self.pending.insert(nonce, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ConnectError::Rejected(e)));
                    }
                }
            }
            Command::CloseRequest(n) => {
                self.tried.remove(&n);
                self.input(Input::CloseRequest(n))
            }
            Command::CloseSession(s) => self.input(Input::CloseSession(s)),
            Command::Profile(p) => self.input(Input::Profile(p)),
            Command::Stop => {}
        }
    }

    fn internal(&mut self, i: Internal) {
        match i {
            Internal::Input(input) => self.input(input),
            Internal::Connected(n, stream, to) => {
                self.streams.insert(n, (stream, to));
                let now = self.now();
                if self.peer.handle(now, Input::Connected(n)).is_err() {
                    // the request ended meanwhile (timed out, closed): do not keep the stream
                    self.streams.remove(&n);
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Internal::Accepted(session, stream) => {
                let now = self.now();
                if self.peer.handle(now, Input::Accepted(session)).is_ok() {
                    if let Some(app) = self.peer.session_app(session) {
                        let served = Served {
                            stream,
                            session,
                            app,
                            close: self.commands.clone(),
                        };
                        self.emit(HostEvent::Incoming(served));
                    }
                } else {
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Internal::ServerListening(session, listener) => {
                let port = match listener.local_addr() {
                    Ok(a) => a.port(),
                    Err(_) => {
                        self.input(Input::ServerFailed(session));
                        return;
                    }
                };
                let now = self.now();
                if self
                    .peer
                    .handle(now, Input::ServerListening { session, port })
                    .is_err()
                {
                    // the session ended while the server was starting: close it again
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let tx = self.internal.clone();
                let h = tokio::spawn(async move {
                    // one connection per session: the caller's (B.5)
                    if let Ok((stream, _)) = listener.accept().await {
                        let _ = tx.send(Internal::Accepted(session, stream));
                    }
                });
                self.servers.insert(session, h);
            }
            Internal::ServerFailed(session) => self.input(Input::ServerFailed(session)),
            Internal::BadFrame => {
                self.shared.bad_frames.fetch_add(1, Ordering::Relaxed);
            }
            Internal::SendFailed => {
                self.shared.send_failures.fetch_add(1, Ordering::Relaxed);
            }
            Internal::Mapped(key, result) => {
                self.mapping.remove(&key);
                if self.released_early.remove(&key) {
                    // the peer is done with it already: give it back at once
                    if let Ok((_, held)) = result {
                        held.release(&self.shared);
                    }
                    return;
                }
                let now = self.now();
                let (result, held) = match result {
                    Ok((m, h)) => (Ok(m), Some(h)),
                    Err(e) => (Err(e), None),
                };
                if let Some(h) = held {
                    self.held.insert(key, h);
                }
                if self
                    .peer
                    .handle(now, Input::Mapped { key, result })
                    .is_err()
                {
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// E.1/E.3 (UPnP) or D.1/D.3 (STUNT #2 prediction) for local port `port`.
    fn map(&mut self, key: MapKey, mode: Mode, port: u16) {
        let tx = self.internal.clone();
        let Some(ip) = self.peer.ip() else {
            let _ = tx.send(Internal::Mapped(key, Err(MapFailure::Other)));
            return;
        };
        let local = SocketAddr::new(ip, port);
        self.mapping.insert(key);
        match (
            mode,
            self.config.traversal.upnp(),
            self.config.traversal.stunt(),
        ) {
            (Mode::Upnp, Some((options, lease)), _) => {
                let igd = Arc::clone(&self.igd);
                tokio::spawn(async move {
                    let r = upnp_map(igd, options, local, lease).await;
                    let _ = tx.send(Internal::Mapped(key, r));
                });
            }
            (Mode::Stunt2, _, Some((servers, predict, _))) => {
                tokio::spawn(async move {
                    let r = match super::stunt::predict(local, &servers, predict).await {
                        Ok(p) => Ok((
                            Mapping {
                                public: p.public,
                                ttl: Some(p.ttl),
                            },
                            Held::Predicted,
                        )),
                        Err(e) => Err(stunt_failure(&e)),
                    };
                    let _ = tx.send(Internal::Mapped(key, r));
                });
            }
            _ => {
                let _ = tx.send(Internal::Mapped(key, Err(MapFailure::NoGateway)));
            }
        }
    }

    fn emit(&self, e: HostEvent) {
        if self.events.try_send(e).is_err() {
            self.shared.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.peer.poll() {
            if self.config.trace {
                self.emit(HostEvent::Output(o.clone()));
            }
            self.output(o);
        }
    }

    fn output(&mut self, o: Output) {
        match o {
            Output::SendSms { to, payload } => {
                let _ = self.links.sms_out.send((to, payload));
            }
            Output::ActivateBroadband => {
                let _ = self.links.radio_out.send(RadioCommand::On);
            }
            Output::DeactivateBroadband => {
                let _ = self.links.radio_out.send(RadioCommand::Off);
            }
            Output::Listen { nonce, .. } => {
                if let Some(listener) = self.reserved.remove(&nonce) {
                    let tx = self.internal.clone();
                    let timeout = self.config.frame_timeout;
                    let h = tokio::spawn(async move {
                        // at most MAX_READERS answers being read at once: a flood of
                        // connections to PortA costs bounded memory
                        let readers = Arc::new(tokio::sync::Semaphore::new(MAX_READERS));
                        loop {
                            let mut s = match listener.accept().await {
                                Ok((s, _)) => s,
                                Err(_) => {
                                    // e.g. out of descriptors: do not spin
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    continue;
                                }
                            };
                            let Ok(permit) = Arc::clone(&readers).try_acquire_owned() else {
                                let _ = tx.send(Internal::BadFrame);
                                continue;
                            };
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                let msg =
                                    match tokio::time::timeout(timeout, read_frame(&mut s)).await {
                                        Ok(Ok(p)) => Internal::Input(Input::Ip { payload: p }),
                                        _ => Internal::BadFrame,
                                    };
                                drop(permit);
                                let _ = tx.send(msg);
                            });
                        }
                    });
                    self.listeners.insert(nonce, h);
                }
            }
            Output::StopListening { nonce, .. } => {
                self.reserved.remove(&nonce);
                if let Some(h) = self.listeners.remove(&nonce) {
                    h.abort();
                }
            }
            Output::SendIp { to, payload } => {
                let tx = self.internal.clone();
                let timeout = self.config.connect_timeout;
                tokio::spawn(async move {
                    let r = tokio::time::timeout(timeout, async {
                        let mut s = TcpStream::connect(to.0).await?;
                        write_frame(&mut s, &payload).await?;
                        s.shutdown().await
                    })
                    .await;
                    if !matches!(r, Ok(Ok(()))) {
                        let _ = tx.send(Internal::SendFailed);
                    }
                });
            }
            Output::StartServer { session, .. } => {
                let tx = self.internal.clone();
                let ip = self.peer.ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                tokio::spawn(async move {
                    let msg = match reusable_listener(SocketAddr::new(ip, 0)) {
                        Ok(l) => Internal::ServerListening(session, l),
                        Err(_) => Internal::ServerFailed(session),
                    };
                    let _ = tx.send(msg);
                });
            }
            Output::StopServer(session) => {
                if let Some(h) = self.servers.remove(&session) {
                    h.abort();
                }
                if let Some(h) = self.punches.remove(&session) {
                    h.abort();
                }
            }
            Output::Connect {
                nonce,
                to,
                from_port,
            } => {
                let tx = self.internal.clone();
                let timeout = self.config.connect_timeout;
                // D.6: the SYN must leave from PortA, whose mapping the callee punched toward
                let punched = (self.peer.request_mode(nonce) == Some(Mode::Stunt2))
                    .then(|| self.peer.ip())
                    .flatten()
                    .map(|ip| SocketAddr::new(ip, from_port));
                tokio::spawn(async move {
                    let r = match punched {
                        Some(local) => {
                            super::stunt::connect_punch(local, to.0, Duration::ZERO, timeout)
                                .await
                                .ok()
                        }
                        None => tokio::time::timeout(timeout, TcpStream::connect(to.0))
                            .await
                            .ok()
                            .and_then(Result::ok),
                    };
                    let msg = match r {
                        Some(s) => Internal::Connected(nonce, s, to),
                        None => Internal::Input(Input::ConnectFailed(nonce)),
                    };
                    let _ = tx.send(msg);
                });
            }
            Output::Map { key, mode, port } => self.map(key, mode, port),
            Output::Unmap(key) => {
                if let Some(h) = self.held.remove(&key) {
                    h.release(&self.shared);
                } else if self.mapping.contains(&key) {
                    self.released_early.insert(key);
                }
            }
            Output::Punch {
                session,
                from_port,
                to,
                ttl,
            } => {
                let Some((_, _, punch_timeout)) = self.config.traversal.stunt() else {
                    return;
                };
                let Some(ip) = self.peer.ip() else { return };
                let tx = self.internal.clone();
                let h = tokio::spawn(async move {
                    let local = SocketAddr::new(ip, from_port);
                    // the prediction always measures one; a peer fed by another host may not
                    let ttl = ttl.unwrap_or(FALLBACK_TTL);
                    if let Ok(stream) =
                        super::stunt::serve_punch(local, to.0, ttl, punch_timeout).await
                    {
                        let _ = tx.send(Internal::Accepted(session, stream));
                    }
                });
                if let Some(old) = self.punches.insert(session, h) {
                    old.abort();
                }
            }
            Output::RelayConnect {
                nonce,
                relay,
                token,
            } => {
                let tx = self.internal.clone();
                let timeout = self.config.connect_timeout;
                tokio::spawn(async move {
                    let msg = match super::relay::relay_dial(relay.0, token, Role::Caller, timeout)
                        .await
                    {
                        Ok(s) => Internal::Connected(nonce, s, relay),
                        Err(_) => Internal::Input(Input::ConnectFailed(nonce)),
                    };
                    let _ = tx.send(msg);
                });
            }
            Output::RelayAccept {
                session,
                relay,
                token,
                ..
            } => {
                // the callee waits at the relay as long as it would serve the caller directly
                let tx = self.internal.clone();
                let wait = self.peer.config().serve_timeout;
                let h = tokio::spawn(async move {
                    if let Ok(s) =
                        super::relay::relay_dial(relay.0, token, Role::Callee, wait).await
                    {
                        let _ = tx.send(Internal::Accepted(session, s));
                    }
                });
                if let Some(old) = self.punches.insert(session, h) {
                    old.abort();
                }
            }
            Output::Event(e) => {
                match &e {
                    Event::Connected(n) => {
                        let failed = self.tried.remove(n).unwrap_or_default();
                        let mode = self.peer.request_mode(*n).unwrap_or(Mode::Direct);
                        if let (Some(reply), Some((stream, addr))) =
                            (self.pending.remove(n), self.streams.remove(n))
                        {
                            let conn = Connection {
                                stream,
                                nonce: *n,
                                addr,
                                mode,
                                failed,
                                close: self.commands.clone(),
                            };
                            if let Err(Ok(conn)) = reply.send(Ok(conn)) {
                                // the application gave up waiting: close at once
                                drop(conn);
                            }
                        }
                    }
                    Event::ModeFailed {
                        nonce, mode, error, ..
                    } => {
                        let tried = self.tried.entry(*nonce).or_default();
                        if tried.len() < Mode::ALL.len() {
                            tried.push((*mode, *error));
                        }
                    }
                    Event::Failed { nonce, error, .. } => {
                        self.reserved.remove(nonce);
                        self.streams.remove(nonce);
                        let tried = self.tried.remove(nonce).unwrap_or_default();
                        if let Some(reply) = self.pending.remove(nonce) {
                            let e = if tried.is_empty() {
                                ConnectError::Failed(*error)
                            } else {
                                ConnectError::ModesFailed {
                                    tried,
                                    error: *error,
                                }
                            };
                            let _ = reply.send(Err(e));
                        }
                    }
                    Event::SessionFailed { session, .. } => {
                        if let Some(h) = self.servers.remove(session) {
                            h.abort();
                        }
                    }
                    _ => {}
                }
                self.emit(HostEvent::Peer(e));
            }
        }
    }
}

/// Read one frame: 2-octet length (at most [`MAX_LEN`]), then the message.
async fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let n = u16::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame length out of range",
        ));
    }
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Write one frame.
async fn write_frame(s: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let n = u16::try_from(payload.len())
        .ok()
        .filter(|n| *n as usize <= MAX_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "control message too long"))?;
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(&n.to_be_bytes());
    frame.extend_from_slice(payload);
    s.write_all(&frame).await
}

/// E.1/E.3: discover the IGD once (then warm), map `local` TCP on the same external port or the
/// next free one.
async fn upnp_map(
    igd: Arc<tokio::sync::Mutex<Option<Arc<Igd>>>>,
    options: super::upnp::Options,
    local: SocketAddr,
    lease: Duration,
) -> Result<(Mapping, Held), MapFailure> {
    let igd = {
        let mut slot = igd.lock().await;
        match &*slot {
            Some(i) => Arc::clone(i),
            None => {
                let i = Arc::new(
                    Igd::discover_with(options)
                        .await
                        .map_err(|e| upnp_failure(&e))?,
                );
                *slot = Some(Arc::clone(&i));
                i
            }
        }
    };
    let m = igd
        .add_port_mapping(local, local.port(), lease, "ip2p")
        .await
        .map_err(|e| upnp_failure(&e))?;
    Ok((
        Mapping {
            public: TransportAddr(m.external),
            ttl: None,
        },
        Held::Upnp(igd, m),
    ))
}

fn upnp_failure(e: &UpnpError) -> MapFailure {
    use crate::upnp::Failure as F;
    match e {
        UpnpError::Failed(F::NoIgd | F::NoWanService) => MapFailure::NoGateway,
        UpnpError::Failed(F::Upnp { code, .. }) => MapFailure::Refused(*code),
        UpnpError::Failed(F::ConflictsExhausted(_)) => MapFailure::Refused(718),
        UpnpError::Failed(F::Timeout) => MapFailure::Timeout,
        _ => MapFailure::Other,
    }
}

fn stunt_failure(e: &super::stunt::Error) -> MapFailure {
    use crate::stunt::StuntError as S;
    match e {
        super::stunt::Error::Stunt(S::Unpredictable { .. }) => MapFailure::Unpredictable,
        super::stunt::Error::Stunt(
            S::ServerUnreachable | S::NoHopCount { .. } | S::BadServerAnswer,
        ) => MapFailure::NoGateway,
        super::stunt::Error::Stunt(S::PredictionTimeout) => MapFailure::Timeout,
        _ => MapFailure::Other,
    }
}

/// The TTL of a low-TTL SYN when the mapping came without one: two hops (out of the phone's
/// NAT, dying at the first router beyond), the common case of a phone right behind its NAT.
const FALLBACK_TTL: u8 = 2;

/// A listener on `addr` that other sockets may share the port with (`SO_REUSEADDR`,
/// `SO_REUSEPORT`): the STUNT #2 prediction query and the punched connection leave from PortA and
/// PortB while the listeners hold them.
fn reusable_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    super::stunt::reuse_listener(addr).map_err(|e| match e {
        super::stunt::Error::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })
}
