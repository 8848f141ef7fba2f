//! UPnP IGD client, sans-IO: SSDP discovery, the device description, and the WANIPConnection
//! port-mapping actions over SOAP (the paper's steps E.1 and E.3; see `spec/upnp.md`).
//!
//! One [`Client`] talks to one Internet Gateway Device. The application issues [`Command`]s, each
//! with a [`RequestId`]; every command ends with exactly one [`Event::Completed`] or
//! [`Event::Failed`] carrying its id. Commands run one at a time, in order. The host carries out
//! the [`Output`]s: datagrams to the SSDP group, TCP connections to the IGD (one request per
//! connection, `Connection: close`), and reports back what happened as [`Input`]s. Every wait has a
//! deadline ([`Machine::poll_timeout`]), every buffer a bound (see [`http`], [`ssdp`], [`xml`]).
//!
//! | what | states | inputs → outputs |
//! |---|---|---|
//! | discovery (E.1) | `Stage::Search` | M-SEARCH [`Output::SendDatagram`] ×2, re-sent; first [`Input::Datagram`] answer wins |
//! | description (E.1) | `Call::Describe` | [`Output::Connect`] → [`Input::Connected`] → `GET` → [`Input::Received`]… |
//! | GetExternalIPAddress (E.3) | `Call::ExternalIp` | `POST` SOAP, answer parsed |
//! | AddPortMapping (E.3) | `Call::Add` | `POST` SOAP; fault 718 → next port, at most [`Config::conflict_tries`] |
//! | DeletePortMapping | `Call::Delete` | `POST` SOAP; fault 714 counts as deleted |
//! | renewal | `Job::Renew` | re-add the same mapping at half its lease |
//!
//! **Nothing leaks**: the client remembers every mapping it created — and every mapping it may
//! have created (an `AddPortMapping` whose answer never came) — until it is deleted or its lease
//! has run out; [`Command::DeleteAll`] deletes them all. **Warm path**: [`Client::with_cache`]
//! starts from a remembered [`IgdCache`] (location, control URL, service, external address), so a
//! mapping takes one connection and no discovery.
//!
//! # Example: a cold mapping against a scripted IGD
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::upnp::{Client, Command, Config, Event, Input, MappingRequest, Outcome, Output, Protocol, RequestId};
//! use ip2p::Time;
//! use std::time::Duration;
//!
//! let mut c = Client::new(Config::default());
//! let t = Time::ZERO;
//! let req = MappingRequest::new(Protocol::Tcp, "10.0.1.2:4000".parse().unwrap(), 4000, Duration::from_secs(600), "ip2p");
//! c.handle(t, Input::Command(Command::AddMapping { id: RequestId(1), request: req })).unwrap();
//! assert!(matches!(c.poll(), Some(Output::SendDatagram { .. })));            // M-SEARCH
//! let igd = "10.0.1.1:1900".parse().unwrap();
//! let answer = b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://10.0.1.1:5000/rootDesc.xml\r\n\r\n";
//! c.handle(t, Input::Datagram { from: igd, bytes: answer.to_vec() }).unwrap();
//! let mut reply = |c: &mut Client, body: &str, status: &str| {
//!     let conn = std::iter::from_fn(|| c.poll()).find_map(|o| match o { Output::Connect { conn, .. } => Some(conn), _ => None }).unwrap();
//!     c.handle(t, Input::Connected { conn, local: "10.0.1.2:50000".parse().unwrap() }).unwrap();
//!     let resp = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
//!     c.handle(t, Input::Received { conn, bytes: resp.into_bytes() }).unwrap();
//! };
//! reply(&mut c, "<root><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn</controlURL></service></serviceList></device></root>", "200 OK");
//! reply(&mut c, "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><u:AddPortMappingResponse/></s:Body></s:Envelope>", "200 OK");
//! reply(&mut c, "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><u:GetExternalIPAddressResponse><NewExternalIPAddress>80.100.1.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>", "200 OK");
//! let mapped = std::iter::from_fn(|| c.poll()).find_map(|o| match o {
//!     Output::Event(Event::Completed { outcome: Outcome::Mapped(m), .. }) => Some(m),
//!     _ => None,
//! }).unwrap();
//! assert_eq!(mapped.external(), Some("80.100.1.1:4000".parse().unwrap()));
//! assert_eq!(c.mappings().count(), 1); // remembered until deleted
//! ```

pub mod http;
pub mod igd;
pub mod invariants;
pub mod ssdp;
#[cfg(test)]
mod tests;
pub mod xml;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::machine::Machine;
use crate::time::Time;
use http::{HttpError, HttpUrl, ResponseReader};
use xml::{ServiceType, XmlError};

/// Longest mapping description accepted (`NewPortMappingDescription`).
pub const MAX_DESCRIPTION_LEN: usize = 64;
/// Longest UPnP error description kept from a fault.
pub const MAX_ERROR_TEXT: usize = 128;

/// UPnP error 714 NoSuchEntryInArray.
pub const ERR_NO_SUCH_ENTRY: u16 = 714;
/// UPnP error 718 ConflictInMappingEntry.
pub const ERR_CONFLICT: u16 = 718;

/// The application's name for one command; echoed in the event that ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

/// Identifies one TCP connection the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// A transport protocol of a port mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

impl Protocol {
    /// `TCP` or `UDP`, as `NewProtocol` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// Names one mapping on the IGD (the remote host is always the wildcard).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MappingKey {
    /// The protocol.
    pub protocol: Protocol,
    /// The external port.
    pub external_port: u16,
}

/// What the application asks to have mapped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MappingRequest {
    /// The protocol.
    pub protocol: Protocol,
    /// The internal address; an unspecified IP (`0.0.0.0`) means "the address this host uses to
    /// reach the IGD", learnt from the connection ([`Input::Connected`]).
    pub internal: SocketAddr,
    /// The external port wanted; on conflict (718) the next ports are tried.
    pub external_port: u16,
    /// The lease asked for, in whole seconds (0: permanent, which many IGDs refuse).
    pub lease: Duration,
    /// `NewPortMappingDescription`, at most [`MAX_DESCRIPTION_LEN`] bytes.
    pub description: String,
}

impl MappingRequest {
    /// A request; see the fields.
    pub fn new(
        protocol: Protocol,
        internal: SocketAddr,
        external_port: u16,
        lease: Duration,
        description: &str,
    ) -> Self {
        MappingRequest {
            protocol,
            internal,
            external_port,
            lease,
            description: String::from(description),
        }
    }
}

/// A mapping the IGD holds for us.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// The protocol.
    pub protocol: Protocol,
    /// The external port (may differ from the one asked for, after conflicts).
    pub external_port: u16,
    /// The IGD's external address, when known.
    pub external_ip: Option<IpAddr>,
    /// Where the IGD forwards to.
    pub internal: SocketAddr,
    /// The lease granted (as asked; the IGD answers nothing else).
    pub lease: Duration,
    /// The description sent.
    pub description: String,
}

impl PortMapping {
    /// The key naming it.
    pub fn key(&self) -> MappingKey {
        MappingKey {
            protocol: self.protocol,
            external_port: self.external_port,
        }
    }
    /// `external_ip:external_port`, when the external address is known.
    pub fn external(&self) -> Option<SocketAddr> {
        self.external_ip
            .map(|ip| SocketAddr::new(ip, self.external_port))
    }
}

/// Everything needed to skip discovery: the warm path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IgdCache {
    /// The device description's URL (from SSDP `LOCATION`).
    pub location: HttpUrl,
    /// The WAN connection service's control URL.
    pub control_url: HttpUrl,
    /// Which service.
    pub service: ServiceType,
    /// The external address, when it has been asked for (refreshed by every
    /// `GetExternalIPAddress`).
    pub external_ip: Option<IpAddr>,
}

/// Timers and bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// `MX` of the M-SEARCH, seconds (1–5; default 1).
    pub mx: u8,
    /// Re-send the M-SEARCH after this long without an answer (default 250 ms).
    pub search_interval: Duration,
    /// Send the M-SEARCH at most this many times (default 3).
    pub search_attempts: u8,
    /// Give up discovery after this long (default 3 s).
    pub discovery_timeout: Duration,
    /// Give up one HTTP exchange (connect, request, whole answer) after this long (default 3 s;
    /// a server dripping bytes slowly is cut off here).
    pub http_timeout: Duration,
    /// `AddPortMapping` tries on conflicts (718), each on the next port (default 8).
    pub conflict_tries: u8,
    /// Re-add each mapping with a lease at half its lease (default true).
    pub auto_renew: bool,
    /// Most commands waiting (default 16).
    pub max_queue: usize,
    /// Most mappings remembered (default 64).
    pub max_mappings: usize,
    /// What is remembered for deletion (default [`Tracking::Doubtful`]).
    pub tracking: Tracking,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mx: 1,
            search_interval: Duration::from_millis(250),
            search_attempts: 3,
            discovery_timeout: Duration::from_secs(3),
            http_timeout: Duration::from_secs(3),
            conflict_tries: 8,
            auto_renew: true,
            max_queue: 16,
            max_mappings: 64,
            tracking: Tracking::Doubtful,
        }
    }
}

/// Which mappings the client remembers for deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Tracking {
    /// Confirmed ones and doubtful ones (an `AddPortMapping` whose answer never came: the IGD may
    /// have made it).
    #[default]
    Doubtful,
    /// Confirmed ones only. **Unsafe, for the model only**: a lost answer leaks a mapping
    /// (`ip2p-check run upnp --variant confirmed-only`).
    ConfirmedOnly,
}

/// A command of the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Discover an IGD afresh (SSDP and description), replacing any cached one.
    Discover {
        /// Echoed in the ending event.
        id: RequestId,
    },
    /// `GetExternalIPAddress`.
    ExternalIp {
        /// Echoed in the ending event.
        id: RequestId,
    },
    /// `AddPortMapping`, stepping to the next port on conflict.
    AddMapping {
        /// Echoed in the ending event.
        id: RequestId,
        /// What to map.
        request: MappingRequest,
    },
    /// `DeletePortMapping` (of any mapping, remembered or not).
    DeleteMapping {
        /// Echoed in the ending event.
        id: RequestId,
        /// Which.
        key: MappingKey,
    },
    /// Delete every mapping the client remembers.
    DeleteAll {
        /// Echoed in the ending event.
        id: RequestId,
    },
    /// Re-add a remembered mapping now (extends its lease).
    Renew {
        /// Echoed in the ending event.
        id: RequestId,
        /// Which.
        key: MappingKey,
    },
}

/// What happened, as the host reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// A command of the application.
    Command(Command),
    /// A datagram arrived on the socket the M-SEARCH was sent from.
    Datagram {
        /// Its source.
        from: SocketAddr,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A connection asked for with [`Output::Connect`] is established.
    Connected {
        /// Which.
        conn: ConnId,
        /// Its local address (the internal address of unspecified mappings).
        local: SocketAddr,
    },
    /// Bytes arrived on a connection (any split).
    Received {
        /// Which.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The connection ended: closed by the peer, reset, or never established.
    Closed {
        /// Which.
        conn: ConnId,
    },
}

/// What the client asks its host to do, or tells the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send a datagram (the M-SEARCH, to [`ssdp::MULTICAST`]).
    SendDatagram {
        /// Destination.
        to: SocketAddr,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Open a TCP connection.
    Connect {
        /// The client's name for it.
        conn: ConnId,
        /// Where to.
        to: SocketAddr,
    },
    /// Write bytes on a connection.
    Send {
        /// Which.
        conn: ConnId,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Close a connection; nothing more will be read from it.
    Close {
        /// Which.
        conn: ConnId,
    },
    /// Tell the application.
    Event(Event),
}

/// What a command achieved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An IGD was found and described.
    Discovered(IgdCache),
    /// The external address.
    ExternalIp(IpAddr),
    /// A mapping is in place.
    Mapped(PortMapping),
    /// A mapping was deleted (or was already gone: 714).
    Unmapped(MappingKey),
    /// Every remembered mapping was deleted; how many.
    AllUnmapped(u32),
    /// A mapping's lease was extended.
    Renewed(PortMapping),
}

/// Application events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A command ended well.
    Completed {
        /// The command's id.
        id: RequestId,
        /// What it achieved.
        outcome: Outcome,
    },
    /// A command ended badly.
    Failed {
        /// The command's id.
        id: RequestId,
        /// Why.
        failure: Failure,
    },
    /// An automatic renewal succeeded.
    Renewed(PortMapping),
    /// An automatic renewal failed; the mapping stays remembered until its lease ends.
    RenewFailed {
        /// Which mapping.
        key: MappingKey,
        /// Why.
        failure: Failure,
    },
    /// A mapping's lease ran out without renewal; it is forgotten (the IGD drops it too).
    Expired(MappingKey),
}

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Failure {
    /// No usable SSDP answer before [`Config::discovery_timeout`].
    #[error("no IGD answered the M-SEARCH")]
    NoIgd,
    /// The description has no WANIPConnection/WANPPPConnection service.
    #[error("the IGD has no WAN connection service")]
    NoWanService,
    /// The connection could not be established or was closed early.
    #[error("connection to the IGD failed or closed early")]
    Connection,
    /// No complete answer within [`Config::http_timeout`].
    #[error("the IGD did not answer in time")]
    Timeout,
    /// An answer that is not acceptable HTTP.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// An answer that is not acceptable XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// An HTTP status other than 200 without a UPnP error.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A SOAP fault with a UPnP error.
    #[error("UPnP error {code}: {description}")]
    Upnp {
        /// `errorCode` (718 conflict, 714 no such entry, 725 only permanent leases, …).
        code: u16,
        /// `errorDescription`, cut to [`MAX_ERROR_TEXT`].
        description: String,
    },
    /// Every port tried was in conflict (718).
    #[error("{0} ports tried, all in conflict")]
    ConflictsExhausted(u8),
    /// A well-formed answer missing a field, or one with an unusable value.
    #[error("bad answer: {0}")]
    BadAnswer(&'static str),
    /// The mapping is not one the client remembers.
    #[error("unknown mapping")]
    UnknownMapping,
    /// [`Config::max_mappings`] reached.
    #[error("too many mappings")]
    TooManyMappings,
}

/// Why an input was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// [`Config::max_queue`] commands are already waiting.
    #[error("command queue full")]
    QueueFull,
    /// A command with an unusable field.
    #[error("bad command: {0}")]
    BadCommand(&'static str),
    /// A datagram while not discovering.
    #[error("datagram while not discovering")]
    NotSearching,
    /// A datagram that is not a usable SSDP answer.
    #[error(transparent)]
    Ssdp(#[from] ssdp::SsdpError),
    /// An input for a connection the client does not have.
    #[error("unknown connection {0:?}")]
    UnknownConnection(ConnId),
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Inputs rejected.
    pub rejected: u64,
    /// Connections opened.
    pub connections: u64,
    /// M-SEARCH datagrams sent.
    pub searches: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Job {
    Discover,
    ExternalIp,
    Add(MappingRequest),
    Delete(MappingKey),
    DeleteAll,
    Renew(MappingKey),
}

impl Job {
    fn needs_igd(&self) -> bool {
        !matches!(self, Job::Discover)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Call {
    Describe(HttpUrl),
    ExternalIp,
    Add(PortMapping),
    Delete(MappingKey),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Exchange {
    conn: ConnId,
    call: Call,
    connected: bool,
    reader: ResponseReader,
    /// When the exchange began: the IGD acted on it no earlier.
    opened: Time,
    deadline: Time,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Search {
    deadline: Time,
    resend_at: Time,
    sent: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Op {
    /// `None`: an automatic renewal.
    id: Option<RequestId>,
    job: Job,
    search: Option<Search>,
    exchanges: Vec<Exchange>,
    tries: u8,
    ip: Option<IpAddr>,
    mapped: Option<PortMapping>,
    failure: Option<Failure>,
    unmapped: u32,
    remaining: Vec<MappingKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Held {
    mapping: PortMapping,
    confirmed: bool,
    renew_at: Option<Time>,
    /// Until when the IGD surely holds it (lease counted from when the request was opened).
    trusted_until: Option<Time>,
    /// When the IGD surely has dropped it (lease counted from the answer, or from now).
    expires: Option<Time>,
}

/// The UPnP IGD client machine. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    config: Config,
    igd: Option<IgdCache>,
    mappings: BTreeMap<MappingKey, Held>,
    queue: VecDeque<(Option<RequestId>, Job)>,
    op: Option<Op>,
    next_conn: u32,
    out: VecDeque<Output>,
    stats: Stats,
}

/// The answer to one exchange.
enum Answer {
    Ok(http::Response),
    Err(Failure),
}

impl Client {
    /// A cold client: the first command that needs the IGD discovers it.
    pub fn new(config: Config) -> Self {
        Client {
            config,
            igd: None,
            mappings: BTreeMap::new(),
            queue: VecDeque::new(),
            op: None,
            next_conn: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// A warm client: starts from a remembered IGD (no discovery, no description).
    pub fn with_cache(config: Config, cache: IgdCache) -> Self {
        let mut c = Self::new(config);
        c.igd = Some(cache);
        c
    }

    /// The IGD in use, if known (store it for [`Client::with_cache`]).
    pub fn igd(&self) -> Option<&IgdCache> {
        self.igd.as_ref()
    }

    /// Every mapping remembered (confirmed or doubtful), in key order.
    pub fn mappings(&self) -> impl Iterator<Item = &PortMapping> + '_ {
        self.mappings.values().map(|h| &h.mapping)
    }

    /// Whether a remembered mapping was confirmed by the IGD (`false`: its answer never came).
    pub fn is_confirmed(&self, key: MappingKey) -> Option<bool> {
        self.mappings.get(&key).map(|h| h.confirmed)
    }

    /// No command running or waiting.
    pub fn is_idle(&self) -> bool {
        self.op.is_none() && self.queue.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes held in buffers (the fuzz targets check this stays under a fixed bound).
    pub fn held_bytes(&self) -> usize {
        let ex = self
            .op
            .iter()
            .flat_map(|o| o.exchanges.iter())
            .map(|e| e.reader.held())
            .sum::<usize>();
        let out = self
            .out
            .iter()
            .map(|o| match o {
                Output::SendDatagram { bytes, .. } | Output::Send { bytes, .. } => bytes.len(),
                _ => 0,
            })
            .sum::<usize>();
        ex + out
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn check(&self, cmd: &Command) -> Result<(), Error> {
        if self.queue.len() >= self.config.max_queue {
            return Err(Error::QueueFull);
        }
        if let Command::AddMapping { request: r, .. } = cmd {
            if r.description.len() > MAX_DESCRIPTION_LEN {
                return Err(Error::BadCommand("description too long"));
            }
            if r.internal.port() == 0 || r.external_port == 0 {
                return Err(Error::BadCommand("port 0"));
            }
            if r.lease.as_secs() > u64::from(u32::MAX) {
                return Err(Error::BadCommand("lease too long"));
            }
        }
        Ok(())
    }

    fn command(&mut self, now: Time, cmd: Command) -> Result<(), Error> {
        self.check(&cmd)?;
        let (id, job) = match cmd {
            Command::Discover { id } => (id, Job::Discover),
            Command::ExternalIp { id } => (id, Job::ExternalIp),
            Command::AddMapping { id, request } => (id, Job::Add(request)),
            Command::DeleteMapping { id, key } => (id, Job::Delete(key)),
            Command::DeleteAll { id } => (id, Job::DeleteAll),
            Command::Renew { id, key } => (id, Job::Renew(key)),
        };
        self.queue.push_back((Some(id), job));
        self.start_next(now);
        Ok(())
    }

    fn start_next(&mut self, now: Time) {
        while self.op.is_none() {
            let Some((id, job)) = self.queue.pop_front() else {
                return;
            };
            let mut op = Op {
                id,
                job,
                search: None,
                exchanges: Vec::new(),
                tries: 0,
                ip: None,
                mapped: None,
                failure: None,
                unmapped: 0,
                remaining: Vec::new(),
            };
            if op.job.needs_igd() && self.igd.is_some() {
                self.begin_calls(now, &mut op);
            } else {
                self.send_search(now, &mut op);
            }
            self.settle(now, op);
        }
    }

    fn send_search(&mut self, now: Time, op: &mut Op) {
        for st in ssdp::SEARCH_TARGETS {
            self.out.push_back(Output::SendDatagram {
                to: ssdp::MULTICAST,
                bytes: ssdp::m_search(st, self.config.mx),
            });
            self.stats.searches += 1;
        }
        let sent = op.search.as_ref().map_or(0, |s| s.sent) + 1;
        let deadline = op
            .search
            .as_ref()
            .map_or(now + self.config.discovery_timeout, |s| s.deadline);
        op.search = Some(Search {
            deadline,
            resend_at: now + self.config.search_interval,
            sent,
        });
    }

    fn open(&mut self, now: Time, op: &mut Op, to: SocketAddr, call: Call) {
        let conn = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        self.stats.connections += 1;
        self.out.push_back(Output::Connect { conn, to });
        op.exchanges.push(Exchange {
            conn,
            call,
            connected: false,
            reader: ResponseReader::new(),
            opened: now,
            deadline: now + self.config.http_timeout,
        });
    }

    fn control_addr(&self) -> Option<SocketAddr> {
        self.igd.as_ref().map(|g| g.control_url.addr)
    }

    /// Start the SOAP calls of `op` (the IGD is known).
    fn begin_calls(&mut self, now: Time, op: &mut Op) {
        let Some(to) = self.control_addr() else {
            op.failure = Some(Failure::NoIgd);
            return;
        };
        match op.job.clone() {
            Job::Discover => {}
            Job::ExternalIp => self.open(now, op, to, Call::ExternalIp),
            Job::Add(r) => {
                if self.mappings.len() >= self.config.max_mappings {
                    op.failure = Some(Failure::TooManyMappings);
                    return;
                }
                let m = PortMapping {
                    protocol: r.protocol,
                    external_port: r.external_port,
                    external_ip: None,
                    internal: r.internal,
                    lease: Duration::from_secs(r.lease.as_secs()),
                    description: r.description,
                };
                op.tries = 1;
                self.open(now, op, to, Call::Add(m));
                if self.igd.as_ref().is_some_and(|g| g.external_ip.is_none()) {
                    // in parallel, so a cold mapping costs no extra round trip
                    self.open(now, op, to, Call::ExternalIp);
                }
            }
            Job::Delete(key) => self.open(now, op, to, Call::Delete(key)),
            Job::DeleteAll => {
                op.remaining = self.mappings.keys().rev().copied().collect();
                if let Some(key) = op.remaining.pop() {
                    self.open(now, op, to, Call::Delete(key));
                }
            }
            Job::Renew(key) => match self.mappings.get(&key) {
                Some(h) => {
                    let m = h.mapping.clone();
                    op.tries = self.config.conflict_tries; // a renewal never moves the port
                    self.open(now, op, to, Call::Add(m));
                }
                None => op.failure = Some(Failure::UnknownMapping),
            },
        }
    }

    /// Finish `op` if nothing of it is running; otherwise keep it as the running op.
    fn settle(&mut self, now: Time, op: Op) {
        if op.search.is_some() || !op.exchanges.is_empty() {
            self.op = Some(op);
            return;
        }
        let result = match (&op.failure, &op.job) {
            (Some(f), _) => Err(f.clone()),
            (None, Job::Discover) => match &self.igd {
                Some(g) => Ok(Outcome::Discovered(g.clone())),
                None => Err(Failure::NoIgd),
            },
            (None, Job::ExternalIp) => match op.ip {
                Some(ip) => Ok(Outcome::ExternalIp(ip)),
                None => Err(Failure::BadAnswer("no external address")),
            },
            (None, Job::Add(_)) => match op.mapped.clone() {
                Some(mut m) => {
                    m.external_ip = op.ip.or(self.igd.as_ref().and_then(|g| g.external_ip));
                    if let Some(h) = self.mappings.get_mut(&m.key()) {
                        h.mapping.external_ip = m.external_ip;
                    }
                    Ok(Outcome::Mapped(m))
                }
                None => Err(Failure::BadAnswer("no mapping")),
            },
            (None, Job::Delete(key)) => Ok(Outcome::Unmapped(*key)),
            (None, Job::DeleteAll) => Ok(Outcome::AllUnmapped(op.unmapped)),
            (None, Job::Renew(key)) => match self.mappings.get(key) {
                Some(h) => Ok(Outcome::Renewed(h.mapping.clone())),
                None => Err(Failure::UnknownMapping),
            },
        };
        let _ = now;
        match (op.id, result) {
            (Some(id), Ok(outcome)) => self.event(Event::Completed { id, outcome }),
            (Some(id), Err(failure)) => self.event(Event::Failed { id, failure }),
            (None, Ok(Outcome::Renewed(m))) => self.event(Event::Renewed(m)),
            (None, Ok(_)) => {}
            (None, Err(failure)) => {
                if let Job::Renew(key) = op.job {
                    self.event(Event::RenewFailed { key, failure });
                }
            }
        }
    }

    fn datagram(&mut self, now: Time, bytes: &[u8]) -> Result<(), Error> {
        let searching = self.op.as_ref().is_some_and(|o| o.search.is_some());
        if !searching {
            return Err(Error::NotSearching);
        }
        let answer = ssdp::parse_response(bytes)?;
        let Some(mut op) = self.op.take() else {
            return Err(Error::NotSearching);
        };
        op.search = None;
        let to = answer.location.addr;
        self.open(now, &mut op, to, Call::Describe(answer.location));
        self.settle(now, op);
        Ok(())
    }

    fn exchange_index(&self, conn: ConnId) -> Result<usize, Error> {
        self.op
            .as_ref()
            .and_then(|o| o.exchanges.iter().position(|e| e.conn == conn))
            .ok_or(Error::UnknownConnection(conn))
    }

    fn connected(&mut self, conn: ConnId, local: SocketAddr) -> Result<(), Error> {
        let i = self.exchange_index(conn)?;
        let igd = self.igd.clone();
        let Some(ex) = self.op.as_mut().and_then(|o| o.exchanges.get_mut(i)) else {
            return Err(Error::UnknownConnection(conn));
        };
        if ex.connected {
            return Err(Error::UnknownConnection(conn));
        }
        ex.connected = true;
        if let Call::Add(m) = &mut ex.call {
            if m.internal.ip().is_unspecified() {
                m.internal.set_ip(local.ip());
            }
        }
        let bytes = match (&ex.call, igd) {
            (Call::Describe(url), _) => http::get_request(url),
            (call, Some(g)) => soap_request(&g, call),
            (_, None) => return Err(Error::UnknownConnection(conn)),
        };
        self.out.push_back(Output::Send { conn, bytes });
        Ok(())
    }

    fn received(&mut self, now: Time, conn: ConnId, bytes: &[u8]) -> Result<(), Error> {
        let i = self.exchange_index(conn)?;
        let Some(ex) = self.op.as_mut().and_then(|o| o.exchanges.get_mut(i)) else {
            return Err(Error::UnknownConnection(conn));
        };
        let answer = match ex.reader.push(bytes) {
            Ok(None) => return Ok(()),
            Ok(Some(resp)) => Answer::Ok(resp),
            Err(e) => Answer::Err(Failure::Http(e)),
        };
        self.out.push_back(Output::Close { conn });
        self.complete(now, i, answer);
        Ok(())
    }

    fn closed(&mut self, now: Time, conn: ConnId) -> Result<(), Error> {
        let i = self.exchange_index(conn)?;
        let Some(ex) = self.op.as_mut().and_then(|o| o.exchanges.get_mut(i)) else {
            return Err(Error::UnknownConnection(conn));
        };
        let answer = if !ex.connected {
            Answer::Err(Failure::Connection)
        } else {
            match ex.reader.close() {
                Ok(resp) => Answer::Ok(resp),
                Err(HttpError::Truncated) => Answer::Err(Failure::Connection),
                Err(e) => Answer::Err(Failure::Http(e)),
            }
        };
        self.complete(now, i, answer);
        Ok(())
    }

    /// Exchange `i` of the running op has its answer.
    fn complete(&mut self, now: Time, i: usize, answer: Answer) {
        let Some(mut op) = self.op.take() else {
            return;
        };
        if i >= op.exchanges.len() {
            self.op = Some(op);
            return;
        }
        let ex = op.exchanges.remove(i);
        if matches!(answer, Answer::Err(Failure::Connection)) && !ex.connected {
            // the cached IGD may be gone: the next command discovers afresh
            self.igd = None;
        }
        match ex.call {
            Call::Describe(location) => self.described(now, &mut op, location, answer),
            Call::ExternalIp => match soap_result(answer) {
                Ok(fields) => match fields
                    .get("NewExternalIPAddress")
                    .map(|s| s.trim().parse::<IpAddr>())
                {
                    Some(Ok(ip)) => {
                        op.ip = Some(ip);
                        if let Some(g) = self.igd.as_mut() {
                            g.external_ip = Some(ip);
                        }
                    }
                    _ if matches!(op.job, Job::ExternalIp) => {
                        op.failure = Some(Failure::BadAnswer("NewExternalIPAddress"))
                    }
                    _ => {}
                },
                // for an AddMapping the address is a bonus; its failure fails only ExternalIp
                Err(f) if matches!(op.job, Job::ExternalIp) => op.failure = Some(f),
                Err(_) => {}
            },
            Call::Add(m) => self.added(now, ex.opened, &mut op, m, answer),
            Call::Delete(key) => {
                match soap_result(answer) {
                    Ok(_) => {
                        self.mappings.remove(&key);
                        op.unmapped += 1;
                    }
                    Err(Failure::Upnp { code, .. }) if code == ERR_NO_SUCH_ENTRY => {
                        self.mappings.remove(&key);
                        op.unmapped += 1;
                    }
                    Err(f) => {
                        if !matches!(f, Failure::Upnp { .. } | Failure::Status(_)) {
                            // the IGD may have deleted it: no longer to be relied on
                            if let Some(h) = self.mappings.get_mut(&key) {
                                h.confirmed = false;
                                h.renew_at = None;
                                h.trusted_until = None;
                            }
                        }
                        op.failure = Some(f)
                    }
                }
                if let Some(next) = op.remaining.pop() {
                    if let Some(to) = self.control_addr() {
                        self.open(now, &mut op, to, Call::Delete(next));
                    }
                }
            }
        }
        self.settle(now, op);
    }

    fn described(&mut self, now: Time, op: &mut Op, location: HttpUrl, answer: Answer) {
        let desc = match answer {
            Answer::Ok(r) if r.status == 200 => match xml::parse_description(&r.body) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    op.failure = Some(Failure::NoWanService);
                    return;
                }
                Err(e) => {
                    op.failure = Some(Failure::Xml(e));
                    return;
                }
            },
            Answer::Ok(r) => {
                op.failure = Some(Failure::Status(r.status));
                return;
            }
            Answer::Err(f) => {
                op.failure = Some(f);
                return;
            }
        };
        let base = desc
            .url_base
            .as_deref()
            .and_then(|b| HttpUrl::parse(b).ok())
            .unwrap_or_else(|| location.clone());
        let control_url = match base.join(&desc.control_url) {
            Ok(u) => u,
            Err(e) => {
                op.failure = Some(Failure::Http(e));
                return;
            }
        };
        self.igd = Some(IgdCache {
            location,
            control_url,
            service: desc.service,
            external_ip: None,
        });
        if op.job.needs_igd() {
            self.begin_calls(now, op);
        }
    }

    fn added(&mut self, now: Time, opened: Time, op: &mut Op, m: PortMapping, answer: Answer) {
        let key = m.key();
        let lease = m.lease;
        let renewal = matches!(op.job, Job::Renew(_));
        match soap_result(answer) {
            Ok(_) => {
                let (renew_at, trusted_until, expires) = if lease.is_zero() {
                    (None, None, None)
                } else {
                    let renew = self.config.auto_renew.then(|| opened + lease / 2);
                    (renew, Some(opened + lease), Some(now + lease))
                };
                let held = Held {
                    mapping: m.clone(),
                    confirmed: true,
                    renew_at,
                    trusted_until,
                    expires,
                };
                self.mappings.insert(key, held);
                op.mapped = Some(m);
            }
            Err(Failure::Upnp { code, .. })
                if code == ERR_CONFLICT && op.tries < self.config.conflict_tries =>
            {
                let mut next = m;
                next.external_port = if next.external_port == u16::MAX {
                    1024
                } else {
                    next.external_port + 1
                };
                op.tries += 1;
                if let Some(to) = self.control_addr() {
                    self.open(now, op, to, Call::Add(next));
                }
            }
            Err(Failure::Upnp { code, .. }) if code == ERR_CONFLICT => {
                op.failure = Some(if matches!(op.job, Job::Renew(_)) {
                    Failure::Upnp {
                        code,
                        description: String::from("ConflictInMappingEntry"),
                    }
                } else {
                    Failure::ConflictsExhausted(op.tries)
                });
            }
            Err(f) => {
                let definite = matches!(f, Failure::Upnp { .. } | Failure::Status(_));
                let expires = (!lease.is_zero()).then(|| now + lease);
                if !definite && renewal {
                    // the IGD may or may not have extended it: doubtful, and remembered for
                    // as long as the extension would last
                    if let Some(h) = self.mappings.get_mut(&key) {
                        h.confirmed = false;
                        h.renew_at = None;
                        h.trusted_until = None;
                        h.expires = expires;
                    }
                } else if !definite && self.config.tracking == Tracking::Doubtful {
                    // the IGD may have made it: remember it so that DeleteAll removes it
                    self.mappings.entry(key).or_insert(Held {
                        mapping: m,
                        confirmed: false,
                        renew_at: None,
                        trusted_until: None,
                        expires,
                    });
                }
                op.failure = Some(f);
            }
        }
    }

    fn timeouts(&mut self, now: Time) {
        // mappings: renew at half the lease, forget at its end
        let mut expired = Vec::new();
        let mut renew = Vec::new();
        let mut untrusted = Vec::new();
        for (k, h) in self.mappings.iter_mut() {
            if h.expires.is_some_and(|t| t <= now) {
                expired.push(*k);
            } else if h.trusted_until.is_some_and(|t| t <= now) {
                // the IGD may drop it from now on: tell the application, delete it later
                h.trusted_until = None;
                h.renew_at = None;
                h.confirmed = false;
                untrusted.push(*k);
            } else if h.renew_at.is_some_and(|t| t <= now) {
                h.renew_at = None;
                renew.push(*k);
            }
        }
        for k in expired {
            if self.mappings.remove(&k).is_some_and(|h| h.confirmed) {
                self.event(Event::Expired(k));
            }
        }
        for k in untrusted {
            self.event(Event::Expired(k));
        }
        for k in renew {
            if !self.queue.iter().any(|(_, j)| *j == Job::Renew(k)) {
                self.queue.push_back((None, Job::Renew(k)));
            }
        }
        if let Some(mut op) = self.op.take() {
            if let Some(s) = op.search.clone() {
                if s.deadline <= now {
                    op.search = None;
                    op.failure = Some(Failure::NoIgd);
                } else if s.resend_at <= now && s.sent < self.config.search_attempts {
                    self.send_search(now, &mut op);
                } else if s.resend_at <= now {
                    op.search = Some(Search {
                        resend_at: s.deadline,
                        ..s
                    });
                }
                self.settle(now, op);
            } else if let Some(i) = op.exchanges.iter().position(|e| e.deadline <= now) {
                let conn = op.exchanges.get(i).map(|e| e.conn);
                self.op = Some(op);
                if let Some(conn) = conn {
                    self.out.push_back(Output::Close { conn });
                }
                self.complete(now, i, Answer::Err(Failure::Timeout));
            } else {
                self.op = Some(op);
            }
        }
    }
}

/// The SOAP request bytes for `call` on `igd`.
fn soap_request(igd: &IgdCache, call: &Call) -> Vec<u8> {
    let port;
    let iport;
    let ihost;
    let lease;
    let (action, args): (&str, Vec<(&str, &str)>) = match call {
        Call::ExternalIp | Call::Describe(_) => ("GetExternalIPAddress", Vec::new()),
        Call::Add(m) => {
            port = m.external_port.to_string();
            iport = m.internal.port().to_string();
            ihost = m.internal.ip().to_string();
            lease = m.lease.as_secs().to_string();
            (
                "AddPortMapping",
                alloc::vec![
                    ("NewRemoteHost", ""),
                    ("NewExternalPort", port.as_str()),
                    ("NewProtocol", m.protocol.as_str()),
                    ("NewInternalPort", iport.as_str()),
                    ("NewInternalClient", ihost.as_str()),
                    ("NewEnabled", "1"),
                    ("NewPortMappingDescription", m.description.as_str()),
                    ("NewLeaseDuration", lease.as_str()),
                ],
            )
        }
        Call::Delete(k) => {
            port = k.external_port.to_string();
            (
                "DeletePortMapping",
                alloc::vec![
                    ("NewRemoteHost", ""),
                    ("NewExternalPort", port.as_str()),
                    ("NewProtocol", k.protocol.as_str()),
                ],
            )
        }
    };
    let body = xml::soap_body(igd.service, action, &args);
    let mut soap_action = String::from(igd.service.urn());
    soap_action.push('#');
    soap_action.push_str(action);
    http::post_request(&igd.control_url, &soap_action, &body)
}

/// A SOAP answer as fields, or the failure it carries.
fn soap_result(answer: Answer) -> Result<xml::SoapFields, Failure> {
    match answer {
        Answer::Err(f) => Err(f),
        Answer::Ok(r) if r.status == 200 => {
            // the status is the verdict; fields are read when the body is well-formed
            Ok(xml::parse_soap(&r.body).unwrap_or_default())
        }
        Answer::Ok(r) => match xml::parse_soap(&r.body).ok().and_then(|f| f.upnp_error()) {
            Some((code, mut description)) => {
                if description.len() > MAX_ERROR_TEXT {
                    let mut cut = MAX_ERROR_TEXT;
                    while !description.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    description.truncate(cut);
                }
                Err(Failure::Upnp { code, description })
            }
            None => Err(Failure::Status(r.status)),
        },
    }
}

impl Machine for Client {
    type Input = Input;
    type Output = Output;
    type Error = Error;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), Error> {
        let r = match input {
            Input::Command(c) => self.command(now, c),
            Input::Datagram { bytes, .. } => self.datagram(now, &bytes),
            Input::Connected { conn, local } => self.connected(conn, local),
            Input::Received { conn, bytes } => self.received(now, conn, &bytes),
            Input::Closed { conn } => self.closed(now, conn),
        };
        if r.is_err() {
            self.stats.rejected += 1;
        }
        self.start_next(now);
        r
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        let op = self.op.iter().flat_map(|o| {
            o.search
                .iter()
                .flat_map(|s| [s.deadline, s.resend_at])
                .chain(o.exchanges.iter().map(|e| e.deadline))
        });
        let maps = self.mappings.values().flat_map(|h| {
            h.renew_at
                .into_iter()
                .chain(h.trusted_until)
                .chain(h.expires)
        });
        op.chain(maps).min()
    }

    fn handle_timeout(&mut self, now: Time) {
        self.timeouts(now);
        self.start_next(now);
    }
}
