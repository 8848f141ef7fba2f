//! STUNT #2 over real sockets: the port-prediction client and server, the proxy, the low-TTL SYN
//! of the callee and the SYN of the caller, and whole C.0–C.8 role drivers.
//!
//! Every function here drives the sans-IO machines of [`crate::stunt`]: [`predict()`] runs a
//! [`Predictor`], [`run_caller`]/[`run_callee`] run a [`Punch`], [`run_proxy`] a [`Proxy`],
//! [`run_prediction_server`] a [`PredictionServer`]. This module only opens sockets, sets TTLs,
//! reads and writes frames and keeps time.
//!
//! Linux only in practice (address and port reuse, `IP_TTL`, `SO_ERROR` semantics).
//!
//! # Kernel behaviour the punch relies on
//!
//! The ICMP time-exceeded for the low-TTL SYN is a *soft* error on current kernels (6.x):
//! `SO_ERROR` reads `EHOSTUNREACH` once and the socket stays in SYN-SENT, so the caller's SYN
//! completes a simultaneous open on that punching socket; the listener never accepts. Older
//! kernels abort the punching socket and the listener accepts. [`serve_punch`] restores the TTL to
//! 64 right after the SYN is out (else the SYN-ACK of the simultaneous open would die at the
//! router too) and waits on both sockets.
//!
//! ```no_run
//! # async fn f() -> Result<(), ip2p::adapters::tokio::stunt::Error> {
//! use ip2p::adapters::tokio::stunt::{predict, serve_punch};
//! use ip2p::stunt::predict::PredictConfig;
//! use std::time::Duration;
//! let servers = ["80.100.2.254:3478".parse().unwrap(), "80.100.2.254:3479".parse().unwrap(),
//!                "80.100.2.254:3480".parse().unwrap()];
//! let p = predict("10.0.2.2:40001".parse().unwrap(), &servers, PredictConfig::default()).await?;
//! // … send p.mapping() to the peer, learn the peer's public address …
//! # let peer_public = "80.100.1.1:40000".parse().unwrap();
//! let stream = serve_punch(p.local.0, peer_public, p.ttl, Duration::from_secs(3)).await?;
//! # drop(stream); Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use crate::machine::Machine;
use crate::stunt::predict::{
    self, PredictConfig, Prediction, PredictionServer, Predictor, ProbeId,
};
use crate::stunt::proxy::{self, ConnId, Proxy};
use crate::stunt::punch::{self, Exchange, Punch, PunchConfig, Via};
use crate::stunt::wire::{body_len, Msg, PeerId, SessionId};
use crate::stunt::{Established, StuntError};
use crate::{Time, TransportAddr};

/// `EHOSTUNREACH` on Linux: what `SO_ERROR` reports after an ICMP time-exceeded.
const EHOSTUNREACH: i32 = 113;
/// `EINPROGRESS` on Linux: a non-blocking connect under way.
const EINPROGRESS: i32 = 115;
/// How often a connecting socket is looked at.
const TICK: Duration = Duration::from_millis(1);

/// Why an adapter call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The protocol failed (unpredictable NAT, punch time-out, …).
    #[error(transparent)]
    Stunt(#[from] StuntError),
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

struct Clock(Instant);
impl Clock {
    fn now(&self) -> Time {
        Time::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
    fn instant(&self, t: Time) -> Instant {
        self.0 + Duration::from_millis(t.as_millis())
    }
}

/// A TCP socket bound to `from` (with address and port reuse when `reuse`), IP TTL `ttl`, its SYN
/// to `to` already sent. Returns the tokio stream and a second handle on the same socket.
fn start_connect(
    from: SocketAddr,
    to: SocketAddr,
    ttl: u8,
    reuse: bool,
) -> Result<(TcpStream, Socket), Error> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))
        .map_err(io_err("socket"))?;
    if reuse {
        s.set_reuse_address(true).map_err(io_err("SO_REUSEADDR"))?;
        s.set_reuse_port(true).map_err(io_err("SO_REUSEPORT"))?;
    }
    s.bind(&from.into()).map_err(io_err("bind"))?;
    s.set_ttl(u32::from(ttl)).map_err(io_err("IP_TTL"))?;
    s.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
    match s.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => {
            return Err(Error::Io {
                op: "connect",
                source: e,
            })
        }
    }
    let dup = s.try_clone().map_err(io_err("dup"))?;
    let stream = TcpStream::from_std(std::net::TcpStream::from(s)).map_err(io_err("register"))?;
    Ok((stream, dup))
}

/// How a connecting socket ended.
enum Connecting {
    Established,
    /// `SO_ERROR` said `EHOSTUNREACH` (ICMP time-exceeded or unreachable).
    HostUnreachable,
    Failed,
}

/// Look once at a connecting socket.
fn look(stream: &TcpStream, dup: &Socket) -> Option<Connecting> {
    match dup.take_error() {
        Ok(Some(e)) if e.raw_os_error() == Some(EHOSTUNREACH) => {
            return Some(Connecting::HostUnreachable)
        }
        Ok(Some(_)) | Err(_) => return Some(Connecting::Failed),
        Ok(None) => {}
    }
    // getpeername succeeds from SYN-RECEIVED on; being writable means ESTABLISHED
    if stream.peer_addr().is_ok() && stream.try_write(&[]).is_ok() {
        return Some(Connecting::Established);
    }
    None
}

/// Wait until the socket is established, fails, or `deadline`.
async fn poll_connecting(
    stream: &TcpStream,
    dup: &Socket,
    deadline: Instant,
) -> Option<Connecting> {
    loop {
        if let Some(c) = look(stream, dup) {
            return Some(c);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(TICK).await;
    }
}

/// A listener on `bind` with address and port reuse.
pub(crate) fn reuse_listener(bind: SocketAddr) -> Result<TcpListener, Error> {
    let s = Socket::new(Domain::for_address(bind), Type::STREAM, Some(Protocol::TCP))
        .map_err(io_err("socket"))?;
    s.set_reuse_address(true).map_err(io_err("SO_REUSEADDR"))?;
    s.set_reuse_port(true).map_err(io_err("SO_REUSEPORT"))?;
    s.bind(&bind.into()).map_err(io_err("bind"))?;
    s.listen(8).map_err(io_err("listen"))?;
    s.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
    TcpListener::from_std(std::net::TcpListener::from(s)).map_err(io_err("register"))
}

/// Read one frame; `None` at a clean end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> Result<Option<Msg>, Error> {
    let mut h = [0u8; 2];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                op: "read",
                source: e,
            })
        }
    }
    let n = body_len(h).map_err(|_| StuntError::BadServerAnswer)?;
    let mut body = [0u8; crate::stunt::wire::MAX_BODY];
    let body = &mut body[..n];
    r.read_exact(body).await.map_err(io_err("read"))?;
    Ok(Some(
        Msg::decode(body).map_err(|_| StuntError::BadServerAnswer)?,
    ))
}

async fn write_frame<W: AsyncWriteExt + Unpin>(w: &mut W, m: &Msg) -> Result<(), Error> {
    w.write_all(&m.to_frame()).await.map_err(io_err("write"))
}

// ----- prediction ------------------------------------------------------------------------------

/// Events the drivers wait for.
enum Ev {
    Probe(predict::Input),
    Proxy(Result<Option<Msg>, Error>),
    Punched(Result<(TcpStream, Via), Error>),
}

/// The open probe connections of one prediction.
#[derive(Default)]
struct Probes {
    tasks: BTreeMap<ProbeId, (JoinHandle<()>, mpsc::Sender<Msg>)>,
}

impl Probes {
    fn act(&mut self, o: predict::Output, ev: &mpsc::Sender<Ev>) {
        match o {
            predict::Output::Open {
                probe,
                from,
                to,
                ttl,
            } => {
                let (tx, rx) = mpsc::channel(1);
                let task = tokio::spawn(probe_task(probe, from.0, to.0, ttl, rx, ev.clone()));
                if let Some((old, _)) = self.tasks.insert(probe, (task, tx)) {
                    old.abort();
                }
            }
            predict::Output::Send { probe, msg } => {
                if let Some((_, tx)) = self.tasks.get(&probe) {
                    let _ = tx.try_send(msg);
                }
            }
            predict::Output::Close { probe } => {
                if let Some((t, _)) = self.tasks.remove(&probe) {
                    t.abort();
                }
            }
            predict::Output::Done(_) => {}
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        for (t, _) in self.tasks.values() {
            t.abort();
        }
    }
}

async fn probe_task(
    probe: ProbeId,
    from: SocketAddr,
    to: SocketAddr,
    ttl: u8,
    mut cmd: mpsc::Receiver<Msg>,
    ev: mpsc::Sender<Ev>,
) {
    let report = |i| {
        let ev = ev.clone();
        async move { ev.send(Ev::Probe(i)).await.is_ok() }
    };
    let reuse = from.port() != 0;
    let (mut stream, dup) = match start_connect(from, to, ttl, reuse) {
        Ok(x) => x,
        Err(_) => {
            report(predict::Input::Failed { probe }).await;
            return;
        }
    };
    // the predictor's own deadline ends this task (by abort); wait as long as it takes
    let far = Instant::now() + Duration::from_secs(3600);
    match poll_connecting(&stream, &dup, far).await {
        Some(Connecting::Established) => {
            // A probe ends with a reset, not a FIN: an orderly close would leave this end in
            // TIME-WAIT for a minute, and a retry from the same reserved port to the same
            // prediction server would then fail to connect (EADDRNOTAVAIL). The server has
            // already said all it will say when the predictor closes a probe.
            let _ = dup.set_linger(Some(Duration::ZERO));
        }
        Some(Connecting::HostUnreachable) => {
            report(predict::Input::TimeExceeded { probe }).await;
            return;
        }
        Some(Connecting::Failed) | None => {
            report(predict::Input::Failed { probe }).await;
            return;
        }
    }
    if !report(predict::Input::Connected { probe }).await {
        return;
    }
    let Some(msg) = cmd.recv().await else { return };
    let answer = match write_frame(&mut stream, &msg).await {
        Ok(()) => read_frame(&mut stream).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(Some(msg)) => report(predict::Input::Answer { probe, msg }).await,
        _ => report(predict::Input::Failed { probe }).await,
    };
    // hold the connection until the predictor closes it (abort)
    std::future::pending::<()>().await;
}

/// C.3/C.4, D.1/D.3: measure the hop count to the prediction server, then probe it from `bind`
/// (address and port reuse; port 0 picks one) and predict the public mapping of `bind`.
/// `servers` are the prediction server's addresses, at least `config.probes` of them.
pub async fn predict(
    bind: SocketAddr,
    servers: &[SocketAddr],
    config: PredictConfig,
) -> Result<Prediction, Error> {
    let bind = reserve(bind)?;
    let servers: Vec<TransportAddr> = servers.iter().map(|s| TransportAddr(*s)).collect();
    let mut p = Predictor::new(config, TransportAddr(bind), &servers)?;
    let clock = Clock(Instant::now());
    let (tx, mut rx) = mpsc::channel(16);
    let mut probes = Probes::default();
    p.handle(clock.now(), predict::Input::Start)
        .map_err(|_| StuntError::Config("predictor would not start"))?;
    loop {
        while let Some(o) = p.poll() {
            if let predict::Output::Done(r) = o {
                return r.map_err(Error::from);
            }
            probes.act(o, &tx);
        }
        let deadline = p.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            Some(ev) = rx.recv() => {
                if let Ev::Probe(i) = ev {
                    let _ = p.handle(clock.now(), i); // a stale probe's news is rejected and ignored
                }
            }
            () = sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))) => {
                p.handle_timeout(clock.now());
            }
        }
    }
}

/// `bind` with a concrete port: port 0 is replaced by one the kernel picks now.
fn reserve(bind: SocketAddr) -> Result<SocketAddr, Error> {
    if bind.port() != 0 {
        return Ok(bind);
    }
    let s = Socket::new(Domain::for_address(bind), Type::STREAM, Some(Protocol::TCP))
        .map_err(io_err("socket"))?;
    s.set_reuse_address(true).map_err(io_err("SO_REUSEADDR"))?;
    s.set_reuse_port(true).map_err(io_err("SO_REUSEPORT"))?;
    s.bind(&bind.into()).map_err(io_err("bind"))?;
    s.local_addr()
        .map_err(io_err("getsockname"))?
        .as_socket()
        .ok_or(Error::Stunt(StuntError::Config("not an IP address")))
}

/// The port-prediction server: on every listener, answer each probe with the address it came from
/// ([`PredictionServer`]), then wait for the client to close. Runs until a listener fails.
pub async fn run_prediction_server(listeners: Vec<TcpListener>) -> Result<(), Error> {
    let mut tasks = Vec::new();
    for l in listeners {
        tasks.push(tokio::spawn(async move {
            loop {
                let (mut s, peer) = match l.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        return Err(Error::Io {
                            op: "accept",
                            source: e,
                        })
                    }
                };
                tokio::spawn(async move {
                    let limit = Instant::now() + Duration::from_secs(5);
                    let mut server = PredictionServer::default();
                    if let Ok(Ok(Some(msg))) = timeout_at(limit, read_frame(&mut s)).await {
                        if let Some(a) = server.answer(TransportAddr(peer), msg) {
                            if write_frame(&mut s, &a).await.is_ok() {
                                // let the client close first: its TIME-WAIT, not ours
                                let mut sink = [0u8; 16];
                                let _ = timeout_at(limit, s.read(&mut sink)).await;
                            }
                        }
                    }
                });
            }
        }));
    }
    for t in tasks {
        match t.await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

// ----- the punch ---------------------------------------------------------------------------------

/// C.7/D.5 (App-B): listen on `bind` (address and port reuse), send a SYN with IP TTL `ttl` from
/// `bind` to the caller's public address, restore the TTL to 64, and return the first connection
/// from `peer_public` established on either socket within `timeout`.
pub async fn serve_punch(
    bind: SocketAddr,
    peer_public: SocketAddr,
    ttl: u8,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    serve_punch_via(bind, peer_public, ttl, timeout)
        .await
        .map(|(s, _)| s)
}

async fn serve_punch_via(
    bind: SocketAddr,
    peer_public: SocketAddr,
    ttl: u8,
    timeout: Duration,
) -> Result<(TcpStream, Via), Error> {
    let deadline = Instant::now() + timeout;
    let listener = reuse_listener(bind)?;
    let (punching, dup) = start_connect(bind, peer_public, ttl, true)?;
    dup.set_ttl(64).map_err(io_err("IP_TTL restore"))?;
    let mut punching = Some((punching, dup));
    loop {
        if let Some((s, d)) = &punching {
            match look(s, d) {
                Some(Connecting::Established) => {
                    if let Some((s, _)) = punching.take() {
                        return Ok((s, Via::PunchingSocket));
                    }
                }
                // the ICMP time-exceeded of our own SYN: a soft error, the socket lives on
                Some(Connecting::HostUnreachable) | None => {}
                // older kernels: the punching socket is gone, the listener remains
                Some(Connecting::Failed) => punching = None,
            }
        }
        if Instant::now() >= deadline {
            return Err(StuntError::PunchTimeout.into());
        }
        tokio::select! {
            r = listener.accept() => {
                if let Ok((s, from)) = r {
                    if from == peer_public {
                        return Ok((s, Via::Listener));
                    }
                }
            }
            () = sleep(TICK) => {}
        }
    }
}

/// C.8/D.6 (App-A): wait `wait`, then connect from `bind` (address and port reuse) to the callee's
/// public address; the connection within `timeout`, or an error.
pub async fn connect_punch(
    bind: SocketAddr,
    peer_public: SocketAddr,
    wait: Duration,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    sleep(wait).await;
    let deadline = Instant::now() + timeout;
    let (s, dup) = start_connect(bind, peer_public, 64, true)?;
    match poll_connecting(&s, &dup, deadline).await {
        Some(Connecting::Established) => Ok(s),
        Some(Connecting::HostUnreachable) | Some(Connecting::Failed) => {
            Err(StuntError::ConnectFailed.into())
        }
        None => Err(StuntError::PunchTimeout.into()),
    }
}

// ----- the proxy ---------------------------------------------------------------------------------

/// The proxy server of C.0 on `listener`, keeping at most `max_peers` registrations ([`Proxy`]).
/// Runs until the listener fails.
pub async fn run_proxy(listener: TcpListener, max_peers: usize) -> Result<(), Error> {
    let (tx, mut rx) = mpsc::channel::<proxy::Input>(64);
    let mut proxy = Proxy::new(max_peers);
    let mut writers: BTreeMap<ConnId, (tokio::net::tcp::OwnedWriteHalf, JoinHandle<()>)> =
        BTreeMap::new();
    let mut next = 0u32;
    let clock = Clock(Instant::now());
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (s, _) = r.map_err(io_err("accept"))?;
                let conn = ConnId(next);
                next = next.wrapping_add(1);
                let (mut rd, wr) = s.into_split();
                let tx = tx.clone();
                let reader = tokio::spawn(async move {
                    while let Ok(Some(msg)) = read_frame(&mut rd).await {
                        if tx.send(proxy::Input::Frame { conn, msg }).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(proxy::Input::Closed { conn }).await;
                });
                writers.insert(conn, (wr, reader));
            }
            Some(input) = rx.recv() => {
                if let proxy::Input::Closed { conn } = input {
                    writers.remove(&conn);
                }
                let _ = proxy.handle(clock.now(), input); // rejected inputs close their connection below
                while let Some(o) = proxy.poll() {
                    match o {
                        proxy::Output::Send { conn, msg } => {
                            let failed = match writers.get_mut(&conn) {
                                Some((w, _)) => write_frame(w, &msg).await.is_err(),
                                None => false,
                            };
                            if failed {
                                if let Some((_, r)) = writers.remove(&conn) { r.abort(); }
                                let _ = proxy.handle(clock.now(), proxy::Input::Closed { conn });
                            }
                        }
                        proxy::Output::Close { conn } => {
                            if let Some((_, r)) = writers.remove(&conn) { r.abort(); }
                        }
                    }
                }
            }
        }
    }
}

// ----- whole roles (C.0–C.8) -------------------------------------------------------------------

/// Where a role finds the servers.
#[derive(Clone, Debug)]
pub struct Servers {
    /// The proxy server (C.0).
    pub proxy: SocketAddr,
    /// The prediction server's addresses (C.3/C.4).
    pub prediction: Vec<SocketAddr>,
}

/// App-A, C.0–C.8: register as `me` at the proxy, ask `peer` for a connection (session
/// `session`) and punch from `bind`. The stream and what was set up, or why not.
pub async fn run_caller(
    servers: &Servers,
    me: PeerId,
    peer: PeerId,
    session: SessionId,
    bind: SocketAddr,
    config: PunchConfig,
) -> Result<(TcpStream, Established), Error> {
    let bind = reserve(bind)?;
    let pred: Vec<TransportAddr> = servers
        .prediction
        .iter()
        .map(|s| TransportAddr(*s))
        .collect();
    let m = Punch::caller(config, Exchange::Proxy, session, TransportAddr(bind), &pred)?;
    drive(servers.proxy, me, Some(peer), m, config).await
}

/// App-B, C.0–C.8: register as `me` at the proxy, accept the first request relayed to it and
/// punch from `bind`.
pub async fn run_callee(
    servers: &Servers,
    me: PeerId,
    bind: SocketAddr,
    config: PunchConfig,
) -> Result<(TcpStream, Established), Error> {
    let bind = reserve(bind)?;
    let pred: Vec<TransportAddr> = servers
        .prediction
        .iter()
        .map(|s| TransportAddr(*s))
        .collect();
    let m = Punch::callee(config, Exchange::Proxy, TransportAddr(bind), &pred)?;
    drive(servers.proxy, me, None, m, config).await
}

async fn drive(
    proxy_addr: SocketAddr,
    me: PeerId,
    mut peer: Option<PeerId>,
    mut m: Punch,
    config: PunchConfig,
) -> Result<(TcpStream, Established), Error> {
    // C.0: ConnectionA / ConnectionB
    let conn = TcpStream::connect(proxy_addr)
        .await
        .map_err(io_err("connect to proxy"))?;
    let (mut rd, mut wr) = conn.into_split();
    write_frame(&mut wr, &Msg::Register { id: me }).await?;
    let limit = Instant::now() + config.signal_timeout;
    match timeout_at(limit, read_frame(&mut rd)).await {
        Ok(Ok(Some(Msg::Registered { id }))) if id == me => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(StuntError::PeerTimeout.into()),
        _ => return Err(StuntError::BadServerAnswer.into()),
    }
    let (tx, mut rx) = mpsc::channel(16);
    let reader = {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let r = read_frame(&mut rd).await;
                let end = !matches!(r, Ok(Some(_)));
                if tx.send(Ev::Proxy(r)).await.is_err() || end {
                    return;
                }
            }
        })
    };
    struct Abort(Vec<JoinHandle<()>>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.iter().for_each(|t| t.abort());
        }
    }
    let mut guard = Abort(vec![reader]);
    let clock = Clock(Instant::now());
    let mut probes = Probes::default();
    let mut won: Option<TcpStream> = None;
    if peer.is_some() {
        m.handle(clock.now(), punch::Input::Start)
            .map_err(|_| StuntError::Config("caller would not start"))?;
    }
    loop {
        while let Some(o) = m.poll() {
            match o {
                punch::Output::Signal(signal) => {
                    if let Some(to) = peer {
                        write_frame(&mut wr, &Msg::Relay { to, signal }).await?;
                    }
                }
                punch::Output::Probe(p) => probes.act(p, &tx),
                punch::Output::Predicted(_) => {}
                punch::Output::ListenAndSyn { local, to, ttl } => {
                    let tx = tx.clone();
                    let t = config.punch_timeout;
                    guard.0.push(tokio::spawn(async move {
                        let r = serve_punch_via(local.0, to.0, ttl, t).await;
                        let _ = tx.send(Ev::Punched(r)).await;
                    }));
                }
                punch::Output::Connect { local, to } => {
                    let tx = tx.clone();
                    let t = config.punch_timeout;
                    guard.0.push(tokio::spawn(async move {
                        let r = connect_punch(local.0, to.0, Duration::ZERO, t).await;
                        let _ = tx.send(Ev::Punched(r.map(|s| (s, Via::Connect)))).await;
                    }));
                }
                punch::Output::Done(Ok(est)) => {
                    return match won.take() {
                        Some(s) => Ok((s, est)),
                        None => Err(StuntError::Config("established without a stream").into()),
                    }
                }
                punch::Output::Done(Err(e)) => return Err(e.into()),
            }
        }
        let deadline = m.poll_timeout().map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |t| clock.instant(t),
        );
        let ev = tokio::select! {
            Some(ev) = rx.recv() => ev,
            () = sleep_until(deadline) => {
                m.handle_timeout(clock.now());
                continue;
            }
        };
        let now = clock.now();
        match ev {
            Ev::Probe(i) => {
                let _ = m.handle(now, punch::Input::Probe(i)); // stale probe news is ignored
            }
            Ev::Proxy(Ok(Some(msg))) => {
                // the callee learns its peer from the first request relayed to it
                if let (None, Msg::Relayed { from, .. }) = (peer, msg) {
                    peer = Some(from);
                }
                if let Some(p) = peer {
                    if let Some(signal) = proxy::client_input(p, msg)? {
                        let _ = m.handle(now, punch::Input::Signal(signal));
                    }
                }
            }
            Ev::Proxy(Ok(None)) => return Err(StuntError::PeerTimeout.into()),
            Ev::Proxy(Err(e)) => return Err(e),
            Ev::Punched(Ok((s, via))) => {
                won = Some(s);
                let _ = m.handle(now, punch::Input::Established(via));
            }
            Ev::Punched(Err(_)) => {
                let _ = m.handle(now, punch::Input::ConnectFailed);
            }
        }
    }
}
