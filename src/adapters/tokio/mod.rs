//! The tokio adapter (feature `tokio`): runs any [`Networked`] machine over a UDP socket and
//! tokio's timers.
//!
//! One generic driver, written once, runs every machine of the crate. It owns a
//! [`tokio::net::UdpSocket`], the machine and a clock, and carries out the contract of
//! [`crate::machine`] and nothing else: there is no protocol logic here.
//!
//! ```text
//! loop {
//!     fire every deadline that has passed (handle_timeout), drain poll
//!     wait for the first of (in this order of priority):
//!         stop request / every handle dropped  → return the machine
//!         a request from the application       → handle(now, input) or inspect(&machine), drain poll
//!         a datagram                           → decode, handle(now, message), drain poll;
//!                                                then up to `recv_batch - 1` more without waiting
//!         the machine's next deadline          → handle_timeout(now), drain poll
//! }
//! drain poll: Effect::Send  → encode with M::Wire, send_to (one datagram per message)
//!             Effect::Event → try_send to the events channel (dropped and counted when full)
//! ```
//!
//! # Bounds
//!
//! - One receive buffer of [`DATAGRAM_BUF`] bytes (64 KiB, larger than any UDP payload) and one
//!   reusable encode buffer; nothing else is allocated per datagram by the driver.
//! - The request channel and the events channel are bounded ([`Config::request_capacity`],
//!   [`Config::event_capacity`]). A slow application gets back-pressure on requests; events it
//!   does not read in time are dropped and counted, so the protocol itself (timers, answers to
//!   peers) never stalls behind the application.
//!
//! # Errors
//!
//! Nothing a peer sends can stop the driver. Undecodable datagrams, inputs the machine rejects,
//! failed sends and receive errors are counted in [`Counters`] and reported to
//! [`Config::on_trouble`] (plug in your logger there); the loop carries on.
//!
//! # Time
//!
//! Machine time is `Config::clock_start` plus the milliseconds elapsed on
//! [`tokio::time::Instant`] since the driver started. A restored machine can either continue its
//! old clock (`clock_start` = the [`Stopped::now`] of the run that produced the snapshot) or be
//! rebased onto a new one with the machine's own method (e.g. `Node::rebase_clock`).
//!
//! # Example
//!
//! ```
//! use ip2p::adapters::tokio::{spawn, Config};
//! use ip2p::chord::{self, Command, Event, Input, Node, NodeId, Peer, RingId};
//! use ip2p::TransportAddr;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! let addr = TransportAddr(socket.local_addr()?);
//! let me = Peer { id: NodeId::sha1_of(addr.to_string().as_bytes()), addr };
//! let node = Node::new(me, chord::Config::default());
//!
//! let (handle, mut events) = spawn(socket, node, Config::default())?;
//! handle.input(Input::Command(Command::Create)).await?;
//! assert!(matches!(events.recv().await, Some(Event::Joined { .. })));
//! // read the machine's state without stopping it
//! let phase = handle.inspect(|node, _now| node.phase()).await?;
//! assert_eq!(phase, chord::Phase::Member);
//! // stop it and get the machine back (e.g. to snapshot it with the `serde` feature)
//! let stopped = handle.stop().await?;
//! assert_eq!(stopped.machine.me(), me);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod broker;
pub mod emulated;
pub mod ip2p;
pub mod relay;
pub mod samp;
#[cfg(feature = "modem")]
pub mod sms_link;
pub mod stunt;
pub mod upnp;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::io;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::addr::TransportAddr;
use crate::machine::{Codec, Effect, Machine, Networked};
use crate::time::Time;

/// Size of the receive buffer: larger than the largest UDP payload (65,507 bytes over IPv4).
pub const DATAGRAM_BUF: usize = 64 * 1024;

/// The typed message of machine `M`'s wire codec.
pub type MsgOf<M> = <<M as Networked>::Wire as Codec>::Msg;

/// A callback that hears about every problem the driver counts (see [`Trouble`]).
pub type TroubleHook = Arc<dyn Fn(&Trouble<'_>) + Send + Sync>;

/// Settings of one driver.
#[derive(Clone)]
pub struct Config {
    /// Requests (inputs, inspections) queued from the application at most; further ones wait.
    pub request_capacity: usize,
    /// Events queued for the application at most; further ones are dropped and counted.
    pub event_capacity: usize,
    /// Datagrams handled in one go before the driver looks at timers and requests again.
    pub recv_batch: usize,
    /// The machine time at which the driver starts (see the [module docs](self#time)).
    pub clock_start: Time,
    /// Called on every counted problem; `None` (the default) only counts.
    pub on_trouble: Option<TroubleHook>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_capacity: 64,
            event_capacity: 1024,
            recv_batch: 32,
            clock_start: Time::ZERO,
            on_trouble: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("request_capacity", &self.request_capacity)
            .field("event_capacity", &self.event_capacity)
            .field("recv_batch", &self.recv_batch)
            .field("clock_start", &self.clock_start)
            .field("on_trouble", &self.on_trouble.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// A problem the driver counted and carried on from, as handed to [`Config::on_trouble`].
pub enum Trouble<'a> {
    /// A datagram that is not a message of the machine's codec.
    Decode {
        /// Its sender.
        from: TransportAddr,
        /// Its length in bytes.
        len: usize,
        /// The codec's error.
        error: &'a dyn fmt::Display,
    },
    /// The machine rejected a message from a peer.
    Rejected {
        /// Its sender.
        from: TransportAddr,
        /// The machine's error.
        error: &'a dyn fmt::Display,
    },
    /// Sending a datagram failed (too large, no route, buffer full …).
    Send {
        /// The destination.
        to: TransportAddr,
        /// The socket's error.
        error: &'a io::Error,
    },
    /// Receiving failed.
    Recv {
        /// The socket's error.
        error: &'a io::Error,
    },
    /// The application did not read events fast enough (or dropped the receiver): one was dropped.
    EventDropped,
}

impl fmt::Debug for Trouble<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trouble({self})")
    }
}

impl fmt::Display for Trouble<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Decode { from, len, error } => {
                write!(
                    f,
                    "undecodable datagram of {len} bytes from {from}: {error}"
                )
            }
            Trouble::Rejected { from, error } => write!(f, "message from {from} rejected: {error}"),
            Trouble::Send { to, error } => write!(f, "sending to {to} failed: {error}"),
            Trouble::Recv { error } => write!(f, "receiving failed: {error}"),
            Trouble::EventDropped => f.write_str("event dropped: the events channel is full"),
        }
    }
}

/// What the driver has done so far (a snapshot of monotonically increasing counters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams the codec could not decode.
    pub decode_errors: u64,
    /// Messages the machine rejected (`handle` returned `Err`).
    pub rejected_messages: u64,
    /// Application inputs the machine rejected.
    pub rejected_inputs: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// Times `handle_timeout` was called.
    pub timeouts: u64,
    /// Events delivered to the events channel.
    pub events: u64,
    /// Events dropped because the channel was full or closed.
    pub events_dropped: u64,
}

#[derive(Default)]
struct SharedCounters {
    datagrams_in: AtomicU64,
    bytes_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
    decode_errors: AtomicU64,
    rejected_messages: AtomicU64,
    rejected_inputs: AtomicU64,
    send_errors: AtomicU64,
    recv_errors: AtomicU64,
    timeouts: AtomicU64,
    events: AtomicU64,
    events_dropped: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

impl SharedCounters {
    fn snapshot(&self) -> Counters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            datagrams_in: g(&self.datagrams_in),
            bytes_in: g(&self.bytes_in),
            datagrams_out: g(&self.datagrams_out),
            bytes_out: g(&self.bytes_out),
            decode_errors: g(&self.decode_errors),
            rejected_messages: g(&self.rejected_messages),
            rejected_inputs: g(&self.rejected_inputs),
            send_errors: g(&self.send_errors),
            recv_errors: g(&self.recv_errors),
            timeouts: g(&self.timeouts),
            events: g(&self.events),
            events_dropped: g(&self.events_dropped),
        }
    }
}

/// Machine time on a tokio clock: `start` at `origin`, counting milliseconds.
#[derive(Clone, Copy, Debug)]
struct Clock {
    origin: Instant,
    start: Time,
}

impl Clock {
    fn now(&self) -> Time {
        self.start + self.origin.elapsed()
    }

    /// The instant machine time `t` is reached (the origin for times before `start`).
    fn instant(&self, t: Time) -> Instant {
        let d = t.saturating_since(self.start);
        self.origin
            .checked_add(d)
            // a deadline too far out to represent: a year from now is as good as never
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
    }
}

/// The driver is not running any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The driver stopped (it was stopped, or its task was aborted with the runtime).
    #[error("the node's driver is not running")]
    Stopped,
    /// The machine panicked inside the driver; its state is lost.
    #[error("the node's driver panicked")]
    Panicked,
}

/// Why [`NodeHandle::input`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError<E> {
    /// The machine rejected the input (it is unchanged and carries on).
    #[error("the machine rejected the input: {0}")]
    Rejected(E),
    /// The driver is not running.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}

/// A stopped driver's machine and the machine time at which it stopped.
#[derive(Clone, Debug)]
pub struct Stopped<M> {
    /// The machine, exactly as the driver left it (snapshot it, inspect it, run it again).
    pub machine: M,
    /// Machine time when the driver stopped: pass it as [`Config::clock_start`] to continue the
    /// same clock, or as the `from` of a clock rebase.
    pub now: Time,
}

type Inspector<M> = Box<dyn FnOnce(&M, Time) + Send>;

enum Request<M: Machine> {
    Input(M::Input, oneshot::Sender<Result<(), M::Error>>),
    Inspect(Inspector<M>),
}

/// The application's side of a running node: send inputs, inspect the machine, read counters,
/// stop it. Dropping the handle stops the driver too (and drops the machine).
pub struct NodeHandle<M: Networked> {
    requests: mpsc::Sender<Request<M>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Stopped<M>>,
    counters: Arc<SharedCounters>,
    clock: Clock,
    local_addr: TransportAddr,
}

impl<M: Networked> fmt::Debug for NodeHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeHandle")
            .field("local_addr", &self.local_addr)
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

/// Start driving `machine` over `socket` on the current tokio runtime.
///
/// Returns the handle and the receiver of the machine's events. Fails only if the socket has no
/// local address.
///
/// # Panics
///
/// When called outside a tokio runtime (like [`tokio::spawn`]).
#[allow(clippy::type_complexity)]
pub fn spawn<M>(
    socket: UdpSocket,
    machine: M,
    config: Config,
) -> io::Result<(NodeHandle<M>, mpsc::Receiver<M::Event>)>
where
    M: Networked + Send + 'static,
    M::Input: Send,
    M::Error: fmt::Display + Send,
    M::Event: Send,
    MsgOf<M>: Send,
{
    let local_addr = TransportAddr(socket.local_addr()?);
    let (req_tx, req_rx) = mpsc::channel(config.request_capacity.max(1));
    let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
    let (stop_tx, stop_rx) = oneshot::channel();
    let counters = Arc::new(SharedCounters::default());
    let clock = Clock {
        origin: Instant::now(),
        start: config.clock_start,
    };
    let driver = Driver {
        socket,
        machine,
        clock,
        events: ev_tx,
        counters: counters.clone(),
        encode_buf: Vec::new(),
        on_trouble: config.on_trouble.clone(),
    };
    let task = tokio::spawn(driver.run(req_rx, stop_rx, config.recv_batch.max(1)));
    let handle = NodeHandle {
        requests: req_tx,
        stop: Some(stop_tx),
        task,
        counters,
        clock,
        local_addr,
    };
    Ok((handle, ev_rx))
}

impl<M: Networked> NodeHandle<M>
where
    M: Send + 'static,
{
    /// Feed one input (usually an application command) and wait until the machine has handled
    /// it and its outputs are sent.
    pub async fn input(&self, input: M::Input) -> Result<(), InputError<M::Error>> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Input(input, tx))
            .await
            .map_err(|_| AdapterError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(InputError::Rejected(e)),
            Err(_) => Err(AdapterError::Stopped.into()),
        }
    }

    /// Run `f` on the machine inside the driver (between two inputs) and return its result:
    /// read a pointer, clone the whole state for a snapshot, check an invariant.
    pub async fn inspect<R, F>(&self, f: F) -> Result<R, AdapterError>
    where
        F: FnOnce(&M, Time) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Inspector<M> = Box::new(move |m, now| {
            let _ = tx.send(f(m, now));
        });
        self.requests
            .send(Request::Inspect(job))
            .await
            .map_err(|_| AdapterError::Stopped)?;
        rx.await.map_err(|_| AdapterError::Stopped)
    }

    /// The driver's counters so far.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    /// The socket's local address (the node's own address).
    pub fn local_addr(&self) -> TransportAddr {
        self.local_addr
    }

    /// The machine time now, on this driver's clock.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Whether the driver is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stop the driver (inputs already queued are dropped) and return the machine with the time
    /// it stopped at. The socket is closed.
    pub async fn stop(mut self) -> Result<Stopped<M>, AdapterError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match (&mut self.task).await {
            Ok(stopped) => Ok(stopped),
            Err(e) if e.is_panic() => Err(AdapterError::Panicked),
            Err(_) => Err(AdapterError::Stopped),
        }
    }
}

struct Driver<M: Networked> {
    socket: UdpSocket,
    machine: M,
    clock: Clock,
    events: mpsc::Sender<M::Event>,
    counters: Arc<SharedCounters>,
    encode_buf: Vec<u8>,
    on_trouble: Option<TroubleHook>,
}

impl<M> Driver<M>
where
    M: Networked,
    M::Error: fmt::Display,
{
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request<M>>,
        mut stop: oneshot::Receiver<()>,
        recv_batch: usize,
    ) -> Stopped<M> {
        let mut buf = alloc::vec![0u8; DATAGRAM_BUF];
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        loop {
            // deadlines first: a busy socket never starves the machine's timers
            self.fire_due_timers().await;
            let deadline = self.machine.poll_timeout();
            if let Some(t) = deadline {
                sleep.as_mut().reset(self.clock.instant(t));
            }
            tokio::select! {
                biased;
                // an explicit stop, or the handle was dropped
                _ = &mut stop => break,
                req = requests.recv() => match req {
                    Some(req) => self.request(req).await,
                    None => break,
                },
                res = self.socket.recv_from(&mut buf) => {
                    self.datagram(res, &buf).await;
                    for _ in 1..recv_batch {
                        match self.socket.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            res => self.datagram(res, &buf).await,
                        }
                    }
                }
                () = &mut sleep, if deadline.is_some() => {
                    // `sleep` never fires early, but the clock is read in whole milliseconds
                    let now = deadline.map_or(self.clock.now(), |t| t.max(self.clock.now()));
                    self.timeout(now).await;
                }
            }
        }
        Stopped {
            now: self.clock.now(),
            machine: self.machine,
        }
    }

    fn trouble(&self, t: Trouble<'_>) {
        if let Some(hook) = &self.on_trouble {
            hook(&t);
        }
    }

    async fn fire_due_timers(&mut self) {
        let now = self.clock.now();
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.timeout(now).await;
        }
    }

    async fn timeout(&mut self, now: Time) {
        bump(&self.counters.timeouts, 1);
        self.machine.handle_timeout(now);
        self.drain().await;
    }

    async fn request(&mut self, req: Request<M>) {
        match req {
            Request::Input(input, reply) => {
                let res = self.machine.handle(self.clock.now(), input);
                if res.is_err() {
                    bump(&self.counters.rejected_inputs, 1);
                }
                self.drain().await;
                // the caller may have given up waiting: nothing to do then
                let _ = reply.send(res);
            }
            Request::Inspect(f) => f(&self.machine, self.clock.now()),
        }
    }

    async fn datagram(&mut self, res: io::Result<(usize, std::net::SocketAddr)>, buf: &[u8]) {
        let (len, from) = match res {
            Ok(x) => x,
            Err(error) => {
                bump(&self.counters.recv_errors, 1);
                self.trouble(Trouble::Recv { error: &error });
                return;
            }
        };
        let from = TransportAddr(from);
        bump(&self.counters.datagrams_in, 1);
        bump(&self.counters.bytes_in, len as u64);
        let bytes = buf.get(..len).unwrap_or(buf);
        let msg = match <M::Wire as Codec>::decode(bytes) {
            Ok(m) => m,
            Err(error) => {
                bump(&self.counters.decode_errors, 1);
                self.trouble(Trouble::Decode {
                    from,
                    len,
                    error: &error,
                });
                return;
            }
        };
        let input = M::message_input(from, msg);
        if let Err(error) = self.machine.handle(self.clock.now(), input) {
            bump(&self.counters.rejected_messages, 1);
            self.trouble(Trouble::Rejected {
                from,
                error: &error,
            });
        }
        self.drain().await;
    }

    /// Carry out every output the machine has queued.
    async fn drain(&mut self) {
        loop {
            let Some(out) = self.machine.poll() else {
                break;
            };
            let effect = M::effect(out);
            match effect {
                Effect::Send { to, msg } => {
                    self.encode_buf.clear();
                    <M::Wire as Codec>::encode(&msg, &mut self.encode_buf);
                    match self.socket.send_to(&self.encode_buf, to.0).await {
                        Ok(n) => {
                            bump(&self.counters.datagrams_out, 1);
                            bump(&self.counters.bytes_out, n as u64);
                        }
                        Err(error) => {
                            bump(&self.counters.send_errors, 1);
                            self.trouble(Trouble::Send { to, error: &error });
                        }
                    }
                }
                Effect::Event(ev) => match self.events.try_send(ev) {
                    Ok(()) => bump(&self.counters.events, 1),
                    Err(_) => {
                        bump(&self.counters.events_dropped, 1);
                        self.trouble(Trouble::EventDropped);
                    }
                },
            }
        }
        // don't keep a buffer sized for one huge message forever
        if self.encode_buf.capacity() > DATAGRAM_BUF {
            self.encode_buf = Vec::new();
        }
    }
}
