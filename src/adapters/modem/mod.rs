//! The `modem` adapter (feature `modem`): runs the AT engine ([`crate::sms::at::AtEngine`]) over a
//! serial port.
//!
//! A thin driver: one thread owns the port and the engine, reads with a short time-out, feeds
//! what it read to the engine, writes what the engine asks, fires the engine's deadlines from
//! [`std::time::Instant`] (converted to [`Time`]), and hands every event to a callback. Every
//! protocol decision (init sequence, prompt, retries, error mapping) stays in the engine.
//!
//! ```text
//! loop {
//!     take every request from the handles (send, list, init, stop) → engine.handle(now, Command)
//!     read the port (up to Config::read_timeout, shorter if a deadline is nearer)
//!         bytes     → engine.handle(now, Bytes)
//!         time-out  → nothing
//!         error     → ModemEvent::Io, pause one read time-out, carry on
//!     engine.handle_timeout(now) when its deadline has passed
//!     drain poll: Write → write_all + flush to the port; Event → the sink
//! }
//! ```
//!
//! The sink runs on the driver's thread, between two reads: keep it short (forward into a
//! channel). A read error is reported once per streak of failing reads (an unplugged USB modem
//! fails every read; each is still counted in [`Counters::io_errors`]) and the driver keeps
//! trying every [`Config::read_timeout`]; commands in flight meanwhile end by their time-outs.
//!
//! The shape is runtime-agnostic: a tokio host passes a sink that forwards into a channel
//! (`tokio::sync::mpsc::UnboundedSender::send` works from any thread) and calls
//! [`ModemHandle::send_pdu`], which never blocks.
//!
//! # Example
//!
//! ```no_run
//! use ip2p::adapters::modem::{Config, Modem, ModemEvent};
//! use ip2p::sms::at::Event;
//!
//! let (tx, rx) = std::sync::mpsc::channel();
//! let modem = Modem::open("/dev/ttyUSB2", 115_200, Config::default(), move |e| {
//!     let _ = tx.send(e);
//! })?;
//! assert!(matches!(rx.recv()?, ModemEvent::At(Event::Ready)));
//! // SMSC prefix "00" (the SIM's SMSC) + a 13-octet SMS-SUBMIT
//! let pdu = vec![0x00, 0x01, 0x00, 0x0b, 0x91, 0x44, 0x77, 0x58, 0x10, 0x06, 0x50, 0x00, 0x00, 0x00];
//! let id = modem.send_pdu(pdu, 13)?;
//! for e in rx.iter() {
//!     if let ModemEvent::At(Event::Sent { id: sent, message_ref }) = e {
//!         assert_eq!(sent, id);
//!         println!("sent, TP-MR {message_ref:?}");
//!         break;
//!     }
//! }
//! modem.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::machine::Machine;
use crate::sms::at::{self, AtEngine, Command, Event, Output, SendId};
use crate::time::Time;

/// Settings of one driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The engine's settings (time-outs, retries, `+CNMI`, bounds).
    pub engine: at::Config,
    /// How long one read of the port may block; also the longest delay before a request from a
    /// handle is seen.
    pub read_timeout: Duration,
    /// Run the init sequence as soon as the driver starts.
    pub init_on_start: bool,
    /// Size of the read buffer.
    pub read_buf: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            engine: at::Config::default(),
            read_timeout: Duration::from_millis(10),
            init_on_start: true,
            read_buf: 256,
        }
    }
}

/// What the driver tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModemEvent {
    /// An event of the engine.
    At(Event),
    /// The engine refused a request (its queue is full); nothing was sent for it.
    Rejected {
        /// The send it concerns, if it was a send.
        id: Option<SendId>,
        /// Why.
        error: at::Error,
    },
    /// Reading or writing the port failed; the driver carries on (a write that failed is not
    /// repeated: the engine's time-outs end the command).
    Io {
        /// `"read"` or `"write"`.
        op: &'static str,
        /// The kind of the I/O error.
        kind: io::ErrorKind,
        /// Its text.
        message: String,
    },
}

/// Why a request could not be handed to the driver.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The PDU is malformed (checked before it is queued).
    #[error(transparent)]
    Invalid(#[from] at::Error),
    /// The driver thread has stopped.
    #[error("the modem driver has stopped")]
    Stopped,
}

enum Request {
    Command(Command),
}

/// Counters of the driver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes read from the port.
    pub bytes_in: u64,
    /// Bytes written to the port.
    pub bytes_out: u64,
    /// Read or write errors.
    pub io_errors: u64,
    /// Events handed to the sink.
    pub events: u64,
}

#[derive(Default)]
struct Shared {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    io_errors: AtomicU64,
    events: AtomicU64,
}

/// Starts drivers; see [`Modem::spawn`] and [`Modem::open`].
pub struct Modem;

impl Modem {
    /// Run the engine over `port` on a new thread, handing every event to `sink` (called on
    /// that thread). The port's own time-out is replaced by [`Config::read_timeout`].
    pub fn spawn(
        mut port: Box<dyn serialport::SerialPort>,
        config: Config,
        sink: impl FnMut(ModemEvent) + Send + 'static,
    ) -> io::Result<ModemHandle> {
        port.set_timeout(config.read_timeout)
            .map_err(io::Error::from)?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let thread = {
            let stop = stop.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ip2p-modem".into())
                .spawn(move || run(port, config, sink, rx, &stop, &shared))?
        };
        Ok(ModemHandle {
            tx,
            stop,
            shared,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
        })
    }

    /// Open the serial device at `path` (a pseudo-terminal works too) at `baud` and
    /// [`spawn`](Modem::spawn) the driver on it.
    pub fn open(
        path: &str,
        baud: u32,
        config: Config,
        sink: impl FnMut(ModemEvent) + Send + 'static,
    ) -> io::Result<ModemHandle> {
        let port = serialport::new(path, baud)
            .timeout(config.read_timeout)
            .open()
            .map_err(io::Error::from)?;
        Modem::spawn(port, config, sink)
    }
}

/// The application's side of a running driver. Dropping it stops the driver and joins its thread.
pub struct ModemHandle {
    tx: mpsc::Sender<Request>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl ModemHandle {
    /// Queue one SMS: `pdu` is the SMSC prefix followed by the TPDU of `tpdu_len` octets (as
    /// `AT+CMGS` expects it). Returns at once with the id that [`Event::Sent`] or
    /// [`Event::SendFailed`] (or [`ModemEvent::Rejected`]) will carry.
    pub fn send_pdu(&self, pdu: Vec<u8>, tpdu_len: u8) -> Result<SendId, SendError> {
        at::check_pdu(&pdu, tpdu_len)?;
        let id = SendId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.request(Command::SendPdu { id, pdu, tpdu_len })?;
        Ok(id)
    }

    /// Read the messages already stored in the modem ([`Command::ListStored`]).
    pub fn list_stored(&self, all: bool) -> Result<(), SendError> {
        self.request(Command::ListStored { all })
    }

    /// Run the init sequence (again).
    pub fn init(&self) -> Result<(), SendError> {
        self.request(Command::Init)
    }

    fn request(&self, c: Command) -> Result<(), SendError> {
        self.tx
            .send(Request::Command(c))
            .map_err(|_| SendError::Stopped)
    }

    /// The driver's counters.
    pub fn counters(&self) -> Counters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            bytes_in: g(&self.shared.bytes_in),
            bytes_out: g(&self.shared.bytes_out),
            io_errors: g(&self.shared.io_errors),
            events: g(&self.shared.events),
        }
    }

    /// The driver thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stop the driver and wait for its thread to end (at most about one read time-out). The port
    /// is closed.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // a panic in the thread (a bug in the engine or the sink) is not re-raised in drop
            let _ = t.join();
        }
    }
}

impl Drop for ModemHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run(
    mut port: Box<dyn serialport::SerialPort>,
    config: Config,
    mut sink: impl FnMut(ModemEvent),
    rx: mpsc::Receiver<Request>,
    stop: &AtomicBool,
    shared: &Shared,
) {
    let origin = Instant::now();
    let clock =
        || Time::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut engine = AtEngine::new(config.engine.clone());
    let mut buf = alloc::vec![0u8; config.read_buf.max(1)];
    let mut timeout_set = config.read_timeout;
    let mut read_failing = false;
    if config.init_on_start {
        let _ = engine.handle(clock(), at::Input::Command(Command::Init));
    }
    while !stop.load(Ordering::Relaxed) {
        drain(&mut engine, &mut port, &mut sink, shared);
        // requests from the handles
        loop {
            match rx.try_recv() {
                Ok(Request::Command(c)) => {
                    let id = match &c {
                        Command::SendPdu { id, .. } => Some(*id),
                        _ => None,
                    };
                    if let Err(error) = engine.handle(clock(), at::Input::Command(c)) {
                        bump(&shared.events, 1);
                        sink(ModemEvent::Rejected { id, error });
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                // every handle is gone: the Drop of the last one sets `stop` as well
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        drain(&mut engine, &mut port, &mut sink, shared);
        // read, but not past the engine's next deadline
        let now = clock();
        let wait = match engine.poll_timeout() {
            Some(d) => d.saturating_since(now).min(config.read_timeout),
            None => config.read_timeout,
        }
        .max(Duration::from_millis(1));
        if wait != timeout_set && port.set_timeout(wait).is_ok() {
            timeout_set = wait;
        }
        match port.read(&mut buf) {
            // end of file (a hang-up): nothing to read now; do not spin
            Ok(0) => std::thread::sleep(config.read_timeout),
            Ok(n) => {
                read_failing = false;
                bump(&shared.bytes_in, n as u64);
                engine.receive(clock(), &buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // a device that went away fails every read: report the first of a streak only
                if read_failing {
                    bump(&shared.io_errors, 1);
                } else {
                    read_failing = true;
                    io_trouble(&mut sink, shared, "read", &e);
                }
                std::thread::sleep(config.read_timeout);
            }
        }
        let now = clock();
        if engine.poll_timeout().is_some_and(|d| d <= now) {
            engine.handle_timeout(now);
        }
    }
}

fn drain(
    engine: &mut AtEngine,
    port: &mut Box<dyn serialport::SerialPort>,
    sink: &mut impl FnMut(ModemEvent),
    shared: &Shared,
) {
    while let Some(o) = engine.poll() {
        match o {
            Output::Write(bytes) => match port.write_all(&bytes).and_then(|()| port.flush()) {
                Ok(()) => bump(&shared.bytes_out, bytes.len() as u64),
                Err(e) => io_trouble(sink, shared, "write", &e),
            },
            Output::Event(e) => {
                bump(&shared.events, 1);
                sink(ModemEvent::At(e));
            }
        }
    }
}

fn io_trouble(sink: &mut impl FnMut(ModemEvent), shared: &Shared, op: &'static str, e: &io::Error) {
    bump(&shared.io_errors, 1);
    bump(&shared.events, 1);
    sink(ModemEvent::Io {
        op,
        kind: e.kind(),
        message: e.to_string(),
    });
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}
