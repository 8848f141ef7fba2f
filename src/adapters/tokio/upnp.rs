//! The UPnP IGD client over tokio: UDP for SSDP, one TCP connection per request, tokio's timers.
//!
//! [`Igd`] owns a sans-IO [`Client`] and drives it; there is no protocol logic here. Each call
//! issues one [`Command`] and carries out the client's outputs until that command has ended:
//!
//! ```text
//! handle(Command) ; loop {
//!     drain poll: SendDatagram → UDP send_to   Connect → spawn a connection task
//!                 Send → to that task          Close → abort that task
//!                 Event with our id → return it
//!     wait for: a datagram │ an input from a connection task │ the client's next deadline
//! }
//! connection task: connect → Connected{local}; read → Received…; EOF or error → Closed
//! ```
//!
//! Connections and the UDP socket live with the client between calls, so work the client does
//! on its own (renewals that fall due during a call) carries on in the next call. Renewals do
//! not run between calls: call [`Igd::renew`] before half the lease, or let leases lapse.
//!
//! # Example (against the reference IGD on loopback, see `tests/upnp_tokio.rs`)
//!
//! ```no_run
//! use ip2p::adapters::tokio::upnp::Igd;
//! use std::time::Duration;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let igd = Igd::discover(Duration::from_secs(2)).await?;             // SSDP + description
//! let m = igd.add_port_mapping("0.0.0.0:4000".parse()?, 4000, Duration::from_secs(600), "ip2p").await?;
//! println!("reachable at {}", m.external);
//! igd.delete_port_mapping(&m).await?;                                   // nothing left behind
//! let cache = igd.cache().ok_or("nothing to remember")?;
//! let _warm = Igd::from_cache(cache);                     // next time: no discovery, no description
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::machine::Machine;
use crate::time::Time;
use crate::upnp::{
    ssdp, Client, Command, Config, ConnId, Event, Failure, IgdCache, Input, MappingKey,
    MappingRequest, Outcome, Output, Protocol, RequestId,
};

/// Largest read from a connection at once.
const READ_BUF: usize = 4096;
/// Inputs from connection tasks waiting for the driver.
const INPUT_QUEUE: usize = 64;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpnpError {
    /// The client ended the command with a failure.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// The client refused the command.
    #[error(transparent)]
    Rejected(#[from] crate::upnp::Error),
    /// A local socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The mapping is in place but the IGD would not tell its external address; it was deleted.
    #[error("the IGD did not tell its external address")]
    NoExternalIp,
    /// The client ended the command with an outcome of another kind (a bug; never expected).
    #[error("unexpected outcome")]
    Unexpected,
}

/// A mapping in place.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// `IPA:PortA`: where the world reaches it.
    pub external: SocketAddr,
    /// Where the IGD forwards to.
    pub internal: SocketAddr,
    /// The lease granted.
    pub lease: Duration,
    /// The protocol.
    pub protocol: Protocol,
}

impl PortMapping {
    fn key(&self) -> MappingKey {
        MappingKey {
            protocol: self.protocol,
            external_port: self.external.port(),
        }
    }
}

/// Where discovery looks and what the client is configured with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where M-SEARCH goes (default the SSDP group; a unicast address for tests).
    pub ssdp_target: SocketAddr,
    /// Local address of the SSDP socket (default `0.0.0.0:0`).
    pub bind: SocketAddr,
    /// The client's configuration.
    pub config: Config,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ssdp_target: ssdp::MULTICAST,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            config: Config::default(),
        }
    }
}

struct Conn {
    writes: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<()>,
}

struct Driver {
    client: Client,
    udp: Option<UdpSocket>,
    conns: HashMap<ConnId, Conn>,
    tx: mpsc::Sender<Input>,
    rx: mpsc::Receiver<Input>,
    /// Events of commands that ended while another was awaited (renewals have no id).
    other_events: Vec<Event>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        for (_, c) in self.conns.drain() {
            c.task.abort();
        }
    }
}

/// An Internet Gateway Device, as seen through a [`Client`].
pub struct Igd {
    driver: Mutex<Driver>,
    cache: std::sync::Mutex<Option<IgdCache>>,
    origin: Instant,
    next_id: AtomicU32,
    opts: Options,
}

impl std::fmt::Debug for Igd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Igd")
            .field("cache", &self.cache())
            .finish_non_exhaustive()
    }
}

impl Igd {
    fn with_client(client: Client, opts: Options) -> Igd {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let cache = client.igd().cloned();
        Igd {
            driver: Mutex::new(Driver {
                client,
                udp: None,
                conns: HashMap::new(),
                tx,
                rx,
                other_events: Vec::new(),
            }),
            cache: std::sync::Mutex::new(cache),
            origin: Instant::now(),
            next_id: AtomicU32::new(1),
            opts,
        }
    }

    /// Cold start: SSDP discovery and the device description, within `timeout`.
    pub async fn discover(timeout: Duration) -> Result<Igd, UpnpError> {
        let mut opts = Options::default();
        opts.config.discovery_timeout = timeout;
        Self::discover_with(opts).await
    }

    /// Cold start with explicit options.
    pub async fn discover_with(opts: Options) -> Result<Igd, UpnpError> {
        let igd = Igd::with_client(Client::new(opts.config.clone()), opts);
        match igd.run(|id| Command::Discover { id }).await? {
            Outcome::Discovered(_) => Ok(igd),
            _ => Err(UpnpError::Unexpected),
        }
    }

    /// Warm start from a remembered IGD: no discovery, no description.
    pub fn from_cache(cache: IgdCache) -> Igd {
        Self::from_cache_with(cache, Options::default())
    }

    /// Warm start with explicit options.
    pub fn from_cache_with(cache: IgdCache, opts: Options) -> Igd {
        Igd::with_client(Client::with_cache(opts.config.clone(), cache), opts)
    }

    /// What to remember for [`Igd::from_cache`] (location, control URL, service, external
    /// address when known).
    ///
    /// # Panics
    ///
    /// Never in practice: only if a previous call panicked while holding the cache lock.
    pub fn cache(&self) -> Option<IgdCache> {
        self.cache.lock().map(|c| c.clone()).unwrap_or(None)
    }

    /// `GetExternalIPAddress`.
    pub async fn external_ip(&self) -> Result<IpAddr, UpnpError> {
        match self.run(|id| Command::ExternalIp { id }).await? {
            Outcome::ExternalIp(ip) => Ok(ip),
            _ => Err(UpnpError::Unexpected),
        }
    }

    /// Map TCP `wanted_external` (or the next free port, on conflicts) to `internal`; an
    /// unspecified internal IP means this host's address towards the IGD.
    pub async fn add_port_mapping(
        &self,
        internal: SocketAddr,
        wanted_external: u16,
        lease: Duration,
        description: &str,
    ) -> Result<PortMapping, UpnpError> {
        let r = MappingRequest::new(Protocol::Tcp, internal, wanted_external, lease, description);
        self.add_mapping(r).await
    }

    /// Map anything [`MappingRequest`] describes.
    pub async fn add_mapping(&self, request: MappingRequest) -> Result<PortMapping, UpnpError> {
        let m = match self.run(|id| Command::AddMapping { id, request }).await? {
            Outcome::Mapped(m) => m,
            _ => return Err(UpnpError::Unexpected),
        };
        let ip = match m.external_ip {
            Some(ip) => ip,
            None => match self.external_ip().await {
                Ok(ip) => ip,
                Err(_) => {
                    // a mapping the caller cannot use is not left behind
                    let key = m.key();
                    let _ = self.run(|id| Command::DeleteMapping { id, key }).await;
                    return Err(UpnpError::NoExternalIp);
                }
            },
        };
        Ok(PortMapping {
            external: SocketAddr::new(ip, m.external_port),
            internal: m.internal,
            lease: m.lease,
            protocol: m.protocol,
        })
    }

    /// `DeletePortMapping` (a mapping already gone counts as deleted).
    pub async fn delete_port_mapping(&self, m: &PortMapping) -> Result<(), UpnpError> {
        let key = m.key();
        match self.run(|id| Command::DeleteMapping { id, key }).await? {
            Outcome::Unmapped(_) => Ok(()),
            _ => Err(UpnpError::Unexpected),
        }
    }

    /// Extend a mapping's lease now.
    pub async fn renew(&self, m: &PortMapping) -> Result<(), UpnpError> {
        let key = m.key();
        match self.run(|id| Command::Renew { id, key }).await? {
            Outcome::Renewed(_) => Ok(()),
            _ => Err(UpnpError::Unexpected),
        }
    }

    /// Delete every mapping this `Igd` made (or may have made); how many were deleted.
    pub async fn delete_all(&self) -> Result<u32, UpnpError> {
        match self.run(|id| Command::DeleteAll { id }).await? {
            Outcome::AllUnmapped(n) => Ok(n),
            _ => Err(UpnpError::Unexpected),
        }
    }

    /// Mappings remembered by the client (made, or possibly made and not yet deleted).
    pub async fn remembered(&self) -> Vec<crate::upnp::PortMapping> {
        self.driver
            .lock()
            .await
            .client
            .mappings()
            .cloned()
            .collect()
    }

    fn now(&self) -> Time {
        Time::from_millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Time) -> Instant {
        self.origin + Duration::from_millis(t.as_millis())
    }

    /// Issue one command and drive the client until it has ended.
    async fn run(&self, cmd: impl FnOnce(RequestId) -> Command) -> Result<Outcome, UpnpError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut d = self.driver.lock().await;
        let now = self.now();
        d.client.handle_timeout(now);
        d.client.handle(now, Input::Command(cmd(id)))?;
        let result = loop {
            if let Some(r) = self.drain(&mut d, id).await? {
                break r;
            }
            let deadline = d.client.poll_timeout().map(|t| self.instant(t));
            let Driver { udp, rx, .. } = &mut *d;
            let mut buf = [0u8; ssdp::MAX_DATAGRAM_LEN];
            let input = tokio::select! {
                r = recv(udp.as_ref(), &mut buf) => r.map(|(n, from)| Input::Datagram {
                    from,
                    bytes: buf.get(..n).unwrap_or(&[]).to_vec(),
                }),
                i = rx.recv() => i,
                _ = sleep_until(deadline) => None,
            };
            let now = self.now();
            if let Some(i) = input {
                let _ = d.client.handle(now, i); // rejected inputs are counted by the client
            }
            d.client.handle_timeout(now);
        };
        if let Ok(mut c) = self.cache.lock() {
            *c = d.client.igd().cloned();
        }
        result.map_err(UpnpError::Failed)
    }

    /// Carry out every output; `Some` once command `id` has ended.
    async fn drain(
        &self,
        d: &mut Driver,
        id: RequestId,
    ) -> Result<Option<Result<Outcome, Failure>>, UpnpError> {
        let mut ended = None;
        while let Some(o) = d.client.poll() {
            match o {
                Output::SendDatagram { to, bytes } => {
                    if d.udp.is_none() {
                        let s = UdpSocket::bind(self.opts.bind).await?;
                        d.udp = Some(s);
                    }
                    if let Some(s) = &d.udp {
                        let target = if to == ssdp::MULTICAST {
                            self.opts.ssdp_target
                        } else {
                            to
                        };
                        let _ = s.send_to(&bytes, target).await; // a lost M-SEARCH is re-sent
                    }
                }
                Output::Connect { conn, to } => {
                    let (wtx, wrx) = mpsc::channel(4);
                    let task = tokio::spawn(connection(conn, to, wrx, d.tx.clone()));
                    d.conns.insert(conn, Conn { writes: wtx, task });
                }
                Output::Send { conn, bytes } => {
                    if let Some(c) = d.conns.get(&conn) {
                        let _ = c.writes.send(bytes).await;
                    }
                }
                Output::Close { conn } => {
                    if let Some(c) = d.conns.remove(&conn) {
                        c.task.abort();
                    }
                }
                Output::Event(Event::Completed { id: i, outcome }) if i == id => {
                    ended = Some(Ok(outcome))
                }
                Output::Event(Event::Failed { id: i, failure }) if i == id => {
                    ended = Some(Err(failure))
                }
                Output::Event(e) => {
                    if d.other_events.len() < 64 {
                        d.other_events.push(e);
                    }
                }
            }
        }
        Ok(ended)
    }
}

async fn recv(udp: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match udp {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One TCP connection: reports Connected, Received…, Closed.
async fn connection(
    conn: ConnId,
    to: SocketAddr,
    mut writes: mpsc::Receiver<Vec<u8>>,
    inputs: mpsc::Sender<Input>,
) {
    let mut stream = match TcpStream::connect(to).await {
        Ok(s) => s,
        Err(_) => {
            let _ = inputs.send(Input::Closed { conn }).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => {
            let _ = inputs.send(Input::Closed { conn }).await;
            return;
        }
    };
    if inputs.send(Input::Connected { conn, local }).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = stream.split();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        tokio::select! {
            w = writes.recv() => match w {
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => return,
            },
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or(&[]).to_vec();
                    if inputs.send(Input::Received { conn, bytes }).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    let _ = inputs.send(Input::Closed { conn }).await;
}
