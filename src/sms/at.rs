//! AT commands (3GPP TS 27.005 / 27.007) in PDU mode, sans-IO.
//!
//! [`AtEngine`] talks to a GSM/UMTS modem over its serial line. It never touches the line itself:
//! the host feeds it the bytes it read ([`Input::Bytes`]) and the application's commands
//! ([`Input::Command`]), and carries out what it asks ([`Output::Write`]: put these bytes on the
//! line) or reports ([`Output::Event`]). Time is an input like everything else, so the engine
//! follows the [`Machine`] contract of the crate and runs unchanged in the `modem` adapter, in
//! tests and in the fuzzer.
//!
//! What it does:
//!
//! - **Init** ([`Command::Init`]): `AT` (preceded by an ESC that ends a half-typed PDU left over by
//!   an earlier session), `ATE0`, `AT+CMEE=1`, `AT+CMGF=0`, `AT+CNMI=…`, and `AT+CPMS=…` if
//!   configured, then [`Event::Ready`]. An echo still on before `ATE0` is recognised and skipped.
//! - **Send** ([`Command::SendPdu`]): `AT+CMGS=<tpdu_len>`, wait for the `> ` prompt, write the
//!   hex PDU and Ctrl-Z, then `+CMGS: <mr>` and `OK` give [`Event::Sent`].
//! - **Receive**: `+CMTI: <mem>,<index>` → `AT+CMGR=<index>` → [`Event::Received`] →
//!   `AT+CMGD=<index>`; a direct `+CMT: [<alpha>],<length>` with its PDU line gives
//!   [`Event::Received`] at once (acknowledged with `AT+CNMA` when [`Config::ack_direct`] is set);
//!   [`Command::ListStored`] reads what is already stored (`AT+CMGL`).
//! - One command in flight at a time, the rest in a bounded queue. Unsolicited result codes are
//!   recognised wherever they arrive, between a command and its result or before the prompt.
//! - Every command ends: with its result, with a typed [`AtError`] from the modem (`ERROR`,
//!   `+CMS ERROR`, `+CME ERROR` with the meaning of the code), or with a typed time-out after
//!   [`Config::retries`] retries (never for `AT+CMGS` once the PDU is written: that is reported
//!   as [`AtError::SendUnconfirmed`]). After a time-out the engine keeps quiet for
//!   [`Config::late_window`], so that a late answer is not taken for the next command's.
//! - Bounded memory on any input: one line buffer of at most [`Config::max_line`] bytes (longer
//!   lines are discarded and reported), a bounded command queue, bounded text in events.
//!
//! See `spec/sms-at.md` for the state table, the time-out policy and the error mapping.
//!
//! # Example
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::sms::at::{AtEngine, Command, Config, Event, Input, Output, SendId};
//! use ip2p::Time;
//!
//! let mut at = AtEngine::new(Config::default());
//! let mut now = Time::ZERO;
//! let mut wire = Vec::new(); // what the engine wrote to the modem
//! let mut events = Vec::new();
//! let mut step = |at: &mut AtEngine, input: Input, wire: &mut Vec<u8>, events: &mut Vec<Event>| {
//!     at.handle(now, input).unwrap();
//!     while let Some(o) = at.poll() {
//!         match o {
//!             Output::Write(bytes) => wire.extend(bytes),
//!             Output::Event(e) => events.push(e),
//!         }
//!     }
//! };
//! step(&mut at, Input::Command(Command::Init), &mut wire, &mut events);
//! assert_eq!(wire, b"\x1bAT\r");
//! // the modem answers each command of the init sequence with OK (echo on at first)
//! for answer in [&b"AT\r\r\nOK\r\n"[..], b"\r\nOK\r\n", b"\r\nOK\r\n", b"\r\nOK\r\n", b"\r\nOK\r\n"] {
//!     step(&mut at, Input::Bytes(answer.to_vec()), &mut wire, &mut events);
//! }
//! assert_eq!(events, [Event::Ready]);
//!
//! // send an SMS-SUBMIT: SMSC prefix "00" (use the SIM's) + a 13-octet TPDU
//! wire.clear();
//! let pdu = vec![0x00, 0x01, 0x00, 0x0b, 0x91, 0x44, 0x77, 0x58, 0x10, 0x06, 0x50, 0x00, 0x00, 0x00];
//! step(&mut at, Input::Command(Command::SendPdu { id: SendId(7), pdu, tpdu_len: 13 }), &mut wire, &mut events);
//! assert_eq!(wire, b"AT+CMGS=13\r");
//! step(&mut at, Input::Bytes(b"\r\n> ".to_vec()), &mut wire, &mut events);
//! assert_eq!(wire, b"AT+CMGS=13\r0001000B91447758100650000000\x1a");
//! step(&mut at, Input::Bytes(b"\r\n+CMGS: 42\r\n\r\nOK\r\n".to_vec()), &mut wire, &mut events);
//! assert_eq!(events.last(), Some(&Event::Sent { id: SendId(7), message_ref: Some(42) }));
//! ```

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::machine::Machine;
use crate::time::Time;

/// Ctrl-Z: ends the PDU typed after the `> ` prompt.
pub const CTRL_Z: u8 = 0x1a;
/// ESC: cancels the PDU typed after the `> ` prompt.
pub const ESC: u8 = 0x1b;
/// The longest SMSC address prefix (length octet included) a PDU may carry (TS 24.011: at most
/// 11 octets of RP address after the length octet).
pub const MAX_SMSC_PREFIX: usize = 12;
/// The longest TPDU the engine sends or accepts (an SMS-SUBMIT is at most 164 octets).
pub const MAX_TPDU: usize = 164;
/// Text carried in events (unknown URCs, garbage lines, verbose error texts) is cut to this many
/// bytes.
pub const MAX_TEXT: usize = 80;

/// Settings of one engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// How long an ordinary command may take to its final result code.
    pub command_timeout: Duration,
    /// How long to wait for the `> ` prompt after `AT+CMGS=<n>`.
    pub prompt_timeout: Duration,
    /// How long to wait for `+CMGS`/`OK` after the PDU was written (the network is involved:
    /// modem manuals quote up to a minute or more).
    pub send_timeout: Duration,
    /// Retries after a time-out for commands that may be repeated safely (all but `AT+CMGS` and
    /// `AT+CNMA`).
    pub retries: u8,
    /// After a command that saw a time-out ends, nothing is written for this long, and the final
    /// result codes (and responses) arriving meanwhile are taken as late answers to the
    /// timed-out writes, so that they are not mistaken for the next command's.
    pub late_window: Duration,
    /// Parameters of `AT+CNMI=` sent by the init sequence. `2,1,0,0,0` (the default) makes the
    /// modem store new messages and report them with `+CMTI`; `2,2,0,0,0` routes them directly
    /// with `+CMT`.
    pub new_message_indication: String,
    /// Parameters of `AT+CPMS=` sent by the init sequence (e.g. `"SM","SM","SM"`); `None` (the
    /// default) keeps the modem's storage.
    pub preferred_storage: Option<String>,
    /// Acknowledge every `+CMT` with `AT+CNMA` (needed when the modem was put in phase 2+ mode
    /// with `AT+CSMS=1` and routes messages directly).
    pub ack_direct: bool,
    /// Delete a stored message (`AT+CMGD`) once it was read and reported.
    pub delete_after_read: bool,
    /// The longest line kept; longer ones are discarded up to their end and reported.
    pub max_line: usize,
    /// Commands from the host waiting at most; further ones are rejected with
    /// [`Error::QueueFull`]. The engine's own commands (reads after `+CMTI`, deletes, `AT+CNMA`)
    /// may use as many again.
    pub max_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            command_timeout: Duration::from_secs(5),
            prompt_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(60),
            retries: 2,
            late_window: Duration::from_secs(2),
            new_message_indication: String::from("2,1,0,0,0"),
            preferred_storage: None,
            ack_direct: false,
            delete_after_read: true,
            max_line: 512,
            max_queue: 16,
        }
    }
}

/// The host's name for one message to send, echoed in [`Event::Sent`] / [`Event::SendFailed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

impl fmt::Display for SendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send #{}", self.0)
    }
}

/// A command from the host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Run the init sequence; [`Event::Ready`] or [`Event::InitFailed`] follows.
    Init,
    /// Send one SMS.
    SendPdu {
        /// The host's name for it (the engine does not check uniqueness).
        id: SendId,
        /// SMSC prefix (its length octet first; `00` for the SIM's SMSC) followed by the TPDU,
        /// exactly as `AT+CMGS` expects it.
        pdu: Vec<u8>,
        /// Length of the TPDU alone in octets (the `<length>` of `AT+CMGS`).
        tpdu_len: u8,
    },
    /// Read the messages already stored: `AT+CMGL=4` (all) or `AT+CMGL=0` (unread only) when
    /// `all` is false. Each received message gives an [`Event::Received`].
    ListStored {
        /// List read messages too.
        all: bool,
    },
}

/// An input to the engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Bytes read from the serial line, in any chunking.
    Bytes(Vec<u8>),
    /// A command from the host.
    Command(Command),
}

/// Which command (for errors and [`AtEngine::in_flight`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// `AT` (the first command of the init sequence).
    Probe,
    /// `ATE0`.
    EchoOff,
    /// `AT+CMEE=1`.
    ErrorCodes,
    /// `AT+CMGF=0`.
    PduMode,
    /// `AT+CNMI=…`.
    Indications,
    /// `AT+CPMS=…`.
    Storage,
    /// `AT+CMGS=…`.
    Send,
    /// `AT+CMGR=…`.
    Read,
    /// `AT+CMGD=…`.
    Delete,
    /// `AT+CMGL=…`.
    List,
    /// `AT+CNMA`.
    Ack,
    /// ESC after a prompt that did not come, and the answer to it.
    Cancel,
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandKind::Probe => "AT",
            CommandKind::EchoOff => "ATE0",
            CommandKind::ErrorCodes => "AT+CMEE",
            CommandKind::PduMode => "AT+CMGF",
            CommandKind::Indications => "AT+CNMI",
            CommandKind::Storage => "AT+CPMS",
            CommandKind::Send => "AT+CMGS",
            CommandKind::Read => "AT+CMGR",
            CommandKind::Delete => "AT+CMGD",
            CommandKind::List => "AT+CMGL",
            CommandKind::Ack => "AT+CNMA",
            CommandKind::Cancel => "ESC",
        })
    }
}

/// A code reported with `+CMS ERROR` or `+CME ERROR`: numeric (`AT+CMEE=1`) or verbose
/// (`AT+CMEE=2`). A verbose text the engine knows is turned back into its number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReportedCode {
    /// The numeric code.
    Code(u16),
    /// A verbose text the engine does not know (cut to [`MAX_TEXT`] bytes).
    Text(String),
}

/// A `+CMS ERROR` (TS 27.005 §3.2.5): message service failure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CmsError(pub ReportedCode);

/// A `+CME ERROR` (TS 27.007 §9.2): mobile equipment failure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CmeError(pub ReportedCode);

impl CmsError {
    /// The numeric code, if the modem gave one or the verbose text is known.
    pub fn code(&self) -> Option<u16> {
        match self.0 {
            ReportedCode::Code(c) => Some(c),
            ReportedCode::Text(_) => None,
        }
    }
    /// What the code means, from TS 27.005 (300–500), TS 24.011 RP-cause (0–127) and
    /// TS 23.040 TP-FCS (128–255).
    pub fn meaning(&self) -> Option<&'static str> {
        self.code().and_then(|c| lookup(CMS_CODES, c))
    }
}

impl CmeError {
    /// The numeric code, if the modem gave one or the verbose text is known.
    pub fn code(&self) -> Option<u16> {
        match self.0 {
            ReportedCode::Code(c) => Some(c),
            ReportedCode::Text(_) => None,
        }
    }
    /// What the code means, from TS 27.007 §9.2.
    pub fn meaning(&self) -> Option<&'static str> {
        self.code().and_then(|c| lookup(CME_CODES, c))
    }
}

fn fmt_code(f: &mut fmt::Formatter<'_>, code: &ReportedCode, meaning: Option<&str>) -> fmt::Result {
    match (code, meaning) {
        (ReportedCode::Code(c), Some(m)) => write!(f, "{c} ({m})"),
        (ReportedCode::Code(c), None) => write!(f, "{c} (no meaning known)"),
        (ReportedCode::Text(t), _) => write!(f, "{t:?}"),
    }
}

impl fmt::Display for CmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_code(f, &self.0, self.meaning())
    }
}

impl fmt::Display for CmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_code(f, &self.0, self.meaning())
    }
}

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AtError {
    /// Plain `ERROR` (no reason given; `AT+CMEE=1` makes modems give codes).
    #[error("the modem answered ERROR without a reason")]
    Error,
    /// `+CMS ERROR: <n>`.
    #[error("the modem answered +CMS ERROR: {0}")]
    Cms(CmsError),
    /// `+CME ERROR: <n>`.
    #[error("the modem answered +CME ERROR: {0}")]
    Cme(CmeError),
    /// Another final result code of V.250 (`NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`).
    #[error("the modem answered {0}")]
    Final(&'static str),
    /// No final result code within the command's time-out, after every retry.
    #[error("{command}: no final result code after {attempts} attempt(s); is the modem powered and connected?")]
    Timeout {
        /// The command.
        command: CommandKind,
        /// How many times it was written.
        attempts: u8,
    },
    /// The `> ` prompt did not come after `AT+CMGS`: the input was cancelled with ESC and the
    /// message was **not** sent; sending it again is safe.
    #[error("no `> ` prompt after AT+CMGS; the message was not sent (input cancelled with ESC)")]
    NoPrompt,
    /// The PDU was written but neither `+CMGS` nor a final result code came in time: the message
    /// may or may not have been sent. It is not retried, so that it is not sent twice.
    #[error("no answer after the PDU was written; the message may or may not have been sent")]
    SendUnconfirmed,
    /// The modem's answer does not fit the command.
    #[error("unexpected answer: {0}")]
    BadResponse(&'static str),
}

/// Why the engine rejected an input (the engine is unchanged and carries on).
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// Too many host commands waiting ([`Config::max_queue`]).
    #[error("{max} commands already wait for the modem; wait for some to finish")]
    QueueFull {
        /// The limit.
        max: usize,
    },
    /// The PDU is not an SMSC prefix followed by exactly `tpdu_len` octets.
    #[error("PDU of {pdu_len} octets is not an SMSC prefix of 1 + {smsc_len} octets followed by a TPDU of {tpdu_len} octets")]
    PduLength {
        /// Length of the whole PDU.
        pdu_len: usize,
        /// The SMSC prefix's length octet (0 if the PDU is empty).
        smsc_len: usize,
        /// The declared TPDU length.
        tpdu_len: u8,
    },
    /// The SMSC prefix is longer than [`MAX_SMSC_PREFIX`] or the TPDU empty or longer than
    /// [`MAX_TPDU`].
    #[error("SMSC prefix of {smsc_len} octets or TPDU of {tpdu_len} octets out of range (TPDU 1..={MAX_TPDU})")]
    PduRange {
        /// The SMSC prefix's length octet.
        smsc_len: usize,
        /// The declared TPDU length.
        tpdu_len: u8,
    },
}

/// Check that `pdu` is an SMSC prefix followed by a TPDU of `tpdu_len` octets, as
/// [`Command::SendPdu`] requires. Hosts may call it before queueing.
pub fn check_pdu(pdu: &[u8], tpdu_len: u8) -> Result<(), Error> {
    let smsc_len = pdu.first().copied().unwrap_or(0) as usize;
    if tpdu_len == 0 || tpdu_len as usize > MAX_TPDU || smsc_len + 1 > MAX_SMSC_PREFIX {
        return Err(Error::PduRange { smsc_len, tpdu_len });
    }
    if pdu.is_empty() || pdu.len() != 1 + smsc_len + tpdu_len as usize {
        return Err(Error::PduLength {
            pdu_len: pdu.len(),
            smsc_len,
            tpdu_len,
        });
    }
    Ok(())
}

/// A problem on the line that concerns no command (reported, counted, then the engine carries on).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LineTrouble {
    /// A line longer than [`Config::max_line`]: discarded up to its end.
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A line with bytes that are not UTF-8 and not a known response.
    NotText,
    /// Control bytes (NUL and others) were dropped from a line.
    ControlBytes {
        /// How many.
        count: usize,
    },
    /// A line that is neither a response, an echo nor a result code (cut to [`MAX_TEXT`]).
    Garbage(String),
    /// A final result code with no command in flight (e.g. late, after a time-out).
    UnexpectedFinal(String),
    /// A PDU line that is not hex of the announced length; the message is lost.
    BadPdu {
        /// The storage index, if the message was read from storage.
        index: Option<u32>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `+CMTI` could not be queued (queue full): the message stays in the modem's storage;
    /// [`Command::ListStored`] fetches it later.
    QueueFull {
        /// Its storage index.
        index: u32,
    },
}

/// An unsolicited result code.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Urc {
    /// `+CMTI: <mem>,<index>`: a new message was stored (the engine reads it next).
    NewMessage {
        /// The storage (`SM`, `ME`, …), without quotes.
        mem: String,
        /// Its index there.
        index: u32,
    },
    /// `+CDSI: <mem>,<index>`: a status report was stored.
    StatusReportStored {
        /// The storage, without quotes.
        mem: String,
        /// Its index there.
        index: u32,
    },
    /// `RING`: an incoming call.
    Ring,
    /// `+CREG:`, `+CGREG:`, `+CEREG:`: network registration changed.
    Registration {
        /// Which one (`CREG`, `CGREG`, `CEREG`).
        kind: String,
        /// `<stat>` (1 registered home, 5 roaming, 0/2/3/4 not registered …).
        stat: Option<u8>,
    },
    /// Any other unsolicited line (cut to [`MAX_TEXT`] bytes).
    Other(String),
}

/// Something the host should know.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The init sequence succeeded: the modem is in PDU mode and reports new messages.
    Ready,
    /// A command of the init sequence failed; the rest of the sequence was dropped.
    InitFailed {
        /// The command.
        command: CommandKind,
        /// Why.
        error: AtError,
    },
    /// A message was sent.
    Sent {
        /// The host's id.
        id: SendId,
        /// The TP-Message-Reference from `+CMGS: <mr>` (`None` if the modem said `OK` without
        /// it).
        message_ref: Option<u8>,
    },
    /// A message was not sent, or may not have been ([`AtError::SendUnconfirmed`]).
    SendFailed {
        /// The host's id.
        id: SendId,
        /// Why.
        error: AtError,
    },
    /// A message arrived: SMSC prefix followed by the TPDU, as `+CMGR`/`+CMGL`/`+CMT` give it.
    Received {
        /// The bytes.
        pdu: Vec<u8>,
        /// Its storage index (`None` for a direct `+CMT`). Deleted after this event when
        /// [`Config::delete_after_read`] is set.
        index: Option<u32>,
    },
    /// [`Command::ListStored`] ended: `count` messages were reported with [`Event::Received`]
    /// (a failure gives [`Event::Failed`] instead).
    Listed {
        /// How many.
        count: u32,
    },
    /// A status report routed directly (`+CDS`): SMSC prefix followed by the TPDU.
    StatusReport {
        /// The bytes.
        pdu: Vec<u8>,
    },
    /// An unsolicited result code.
    Unsolicited(Urc),
    /// One of the engine's own commands (read, delete, list, acknowledge) failed.
    Failed {
        /// The command.
        command: CommandKind,
        /// Why.
        error: AtError,
    },
    /// A problem on the line.
    Trouble(LineTrouble),
}

/// An output of the engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Put these bytes on the serial line.
    Write(Vec<u8>),
    /// Tell the host.
    Event(Event),
}

/// Counters a host can read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Complete lines read.
    pub lines: u64,
    /// Echoed lines skipped.
    pub echoes: u64,
    /// Unsolicited result codes.
    pub urcs: u64,
    /// Line troubles reported.
    pub troubles: u64,
    /// Bytes discarded (overlong lines, control bytes).
    pub discarded_bytes: u64,
    /// Commands that timed out once (each retry counts).
    pub timeouts: u64,
    /// Commands written again after a time-out.
    pub retries: u64,
    /// Host inputs rejected.
    pub rejected: u64,
    /// Lines taken as late answers to writes that had timed out.
    pub late_answers: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Job {
    Init {
        kind: CommandKind,
        last: bool,
    },
    Send {
        id: SendId,
        pdu: Vec<u8>,
        tpdu_len: u8,
    },
    Read {
        index: u32,
    },
    Delete {
        index: u32,
    },
    List {
        all: bool,
    },
    Ack,
    Cancel,
}

impl Job {
    fn kind(&self) -> CommandKind {
        match self {
            Job::Init { kind, .. } => *kind,
            Job::Send { .. } => CommandKind::Send,
            Job::Read { .. } => CommandKind::Read,
            Job::Delete { .. } => CommandKind::Delete,
            Job::List { .. } => CommandKind::List,
            Job::Ack => CommandKind::Ack,
            Job::Cancel => CommandKind::Cancel,
        }
    }
    /// Counts against the host's share of the queue: one per host command (an init run counts
    /// once, by its last step).
    fn is_host_job(&self) -> bool {
        matches!(
            self,
            Job::Init { last: true, .. } | Job::Send { .. } | Job::List { .. }
        )
    }
    /// Counts against the engine's own share of the queue.
    fn is_own_job(&self) -> bool {
        matches!(
            self,
            Job::Read { .. } | Job::Delete { .. } | Job::Ack | Job::Cancel
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Stage {
    /// Waiting for the final result code (or, for a send, `+CMGS` after the PDU).
    Result,
    /// A send waiting for `> `.
    Prompt,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InFlight {
    job: Job,
    /// The command line as written, without the terminating CR (to recognise its echo).
    text: Vec<u8>,
    stage: Stage,
    deadline: Time,
    attempts: u8,
    /// `+CMGS: <mr>` seen.
    message_ref: Option<u8>,
    /// The PDU of a `+CMGR` response.
    read: Option<Vec<u8>>,
    /// Indices listed by `+CMGL` (to delete after `OK`).
    listed: Vec<u32>,
    /// Messages reported by `+CMGL`.
    received: u32,
    /// A write of this command timed out: its answer may still come.
    timed_out: bool,
}

impl InFlight {
    fn new(job: Job, text: Vec<u8>, stage: Stage, deadline: Time) -> InFlight {
        InFlight {
            job,
            text,
            stage,
            deadline,
            attempts: 1,
            message_ref: None,
            read: None,
            listed: Vec::new(),
            received: 0,
            timed_out: false,
        }
    }
}

/// What the next line is expected to be the PDU of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PduFor {
    Cmgr {
        len: usize,
    },
    Cmgl {
        index: u32,
        len: usize,
        received: bool,
    },
    Cmt {
        len: usize,
    },
    Cds {
        len: usize,
    },
}

/// The AT-command engine. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AtEngine {
    config: Config,
    line: Vec<u8>,
    discarding: bool,
    control_bytes: usize,
    expect_pdu: Option<PduFor>,
    queue: VecDeque<Job>,
    current: Option<InFlight>,
    out: VecDeque<Output>,
    ready: bool,
    /// Nothing is written before this time (see [`Config::late_window`]).
    quiet_until: Time,
    stats: Stats,
}

impl AtEngine {
    /// A new engine; nothing is written until the first command.
    pub fn new(config: Config) -> AtEngine {
        AtEngine {
            line: Vec::with_capacity(config.max_line.min(1024)),
            config,
            discarding: false,
            control_bytes: 0,
            expect_pdu: None,
            queue: VecDeque::new(),
            current: None,
            out: VecDeque::new(),
            ready: false,
            quiet_until: Time::ZERO,
            stats: Stats::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The init sequence has succeeded (and no new one is running).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The command in flight, if any.
    pub fn in_flight(&self) -> Option<CommandKind> {
        self.current.as_ref().map(|c| c.job.kind())
    }

    /// Commands waiting behind the one in flight.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes of the partial line held (never more than [`Config::max_line`]).
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Outputs not yet taken with [`Machine::poll`].
    pub fn pending_outputs(&self) -> usize {
        self.out.len()
    }

    /// Feed bytes read from the serial line (the same as `handle(now, Input::Bytes(..))`
    /// without the copy).
    pub fn receive(&mut self, now: Time, bytes: &[u8]) {
        for &b in bytes {
            self.byte(now, b);
        }
        self.pump(now);
    }

    /// Queue a command (the same as `handle(now, Input::Command(..))`).
    pub fn command(&mut self, now: Time, cmd: Command) -> Result<(), Error> {
        let r = self.enqueue(cmd);
        if r.is_err() {
            self.stats.rejected += 1;
        }
        self.pump(now);
        r
    }

    fn enqueue(&mut self, cmd: Command) -> Result<(), Error> {
        let host_jobs = self.queue.iter().filter(|j| j.is_host_job()).count();
        if host_jobs >= self.config.max_queue.max(1) {
            self.check_command(&cmd)?;
            return Err(Error::QueueFull {
                max: self.config.max_queue,
            });
        }
        match cmd {
            Command::Init => {
                let mut steps = alloc::vec![
                    CommandKind::Probe,
                    CommandKind::EchoOff,
                    CommandKind::ErrorCodes,
                    CommandKind::PduMode,
                    CommandKind::Indications,
                ];
                if self.config.preferred_storage.is_some() {
                    steps.push(CommandKind::Storage);
                }
                self.ready = false;
                let n = steps.len();
                for (i, kind) in steps.into_iter().enumerate() {
                    self.queue.push_back(Job::Init {
                        kind,
                        last: i + 1 == n,
                    });
                }
            }
            Command::SendPdu { id, pdu, tpdu_len } => {
                check_pdu(&pdu, tpdu_len)?;
                self.queue.push_back(Job::Send { id, pdu, tpdu_len });
            }
            Command::ListStored { all } => {
                self.queue.push_back(Job::List { all });
            }
        }
        Ok(())
    }

    /// A malformed command is reported as such even when the queue is full.
    fn check_command(&self, cmd: &Command) -> Result<(), Error> {
        match cmd {
            Command::SendPdu { pdu, tpdu_len, .. } => check_pdu(pdu, *tpdu_len),
            _ => Ok(()),
        }
    }

    /// Queue one of the engine's own jobs; `false` if its share of the queue is full.
    fn enqueue_own(&mut self, job: Job, front: bool) -> bool {
        let own = self.queue.iter().filter(|j| j.is_own_job()).count();
        if own >= self.config.max_queue.max(1) {
            return false;
        }
        if front {
            self.queue.push_front(job);
        } else {
            self.queue.push_back(job);
        }
        true
    }

    fn event(&mut self, e: Event) {
        if let Event::Trouble(_) = e {
            self.stats.troubles += 1;
        }
        self.out.push_back(Output::Event(e));
    }

    fn trouble(&mut self, t: LineTrouble) {
        self.event(Event::Trouble(t));
    }

    // ----- commands ----------------------------------------------------------------------

    fn command_text(&self, job: &Job) -> Vec<u8> {
        let mut s = String::new();
        use core::fmt::Write as _;
        let _ = match job {
            Job::Init { kind, .. } => match kind {
                CommandKind::Probe => write!(s, "AT"),
                CommandKind::EchoOff => write!(s, "ATE0"),
                CommandKind::ErrorCodes => write!(s, "AT+CMEE=1"),
                CommandKind::PduMode => write!(s, "AT+CMGF=0"),
                CommandKind::Indications => {
                    write!(s, "AT+CNMI={}", self.config.new_message_indication)
                }
                CommandKind::Storage => write!(
                    s,
                    "AT+CPMS={}",
                    self.config.preferred_storage.as_deref().unwrap_or("")
                ),
                _ => Ok(()),
            },
            Job::Send { tpdu_len, .. } => write!(s, "AT+CMGS={tpdu_len}"),
            Job::Read { index } => write!(s, "AT+CMGR={index}"),
            Job::Delete { index } => write!(s, "AT+CMGD={index}"),
            Job::List { all } => write!(s, "AT+CMGL={}", if *all { 4 } else { 0 }),
            Job::Ack => write!(s, "AT+CNMA"),
            Job::Cancel => Ok(()),
        };
        // a configured parameter with a CR, Ctrl-Z or ESC in it would end the command early or
        // start another: control bytes are never written inside a command line
        s.retain(|c| !c.is_control());
        s.into_bytes()
    }

    fn timeout_for(&self, job: &Job) -> Duration {
        match job {
            Job::Send { .. } => self.config.prompt_timeout,
            _ => self.config.command_timeout,
        }
    }

    /// Start the next queued job if nothing is in flight.
    fn pump(&mut self, now: Time) {
        if now < self.quiet_until {
            return;
        }
        while self.current.is_none() {
            let Some(job) = self.queue.pop_front() else {
                return;
            };
            let text = self.command_text(&job);
            let mut bytes = Vec::with_capacity(text.len() + 2);
            if matches!(
                job,
                Job::Init {
                    kind: CommandKind::Probe,
                    ..
                }
            ) {
                bytes.push(ESC);
            }
            bytes.extend_from_slice(&text);
            bytes.push(b'\r');
            let stage = if matches!(job, Job::Send { .. }) {
                Stage::Prompt
            } else {
                Stage::Result
            };
            let deadline = now + self.timeout_for(&job);
            self.out.push_back(Output::Write(bytes));
            self.current = Some(InFlight::new(job, text, stage, deadline));
        }
    }

    /// The command in flight ended with `result`.
    fn finish(&mut self, now: Time, result: Result<(), AtError>) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let kind = cur.job.kind();
        if cur.timed_out && !matches!(cur.job, Job::Cancel) {
            self.quiet_until = now + self.config.late_window;
        }
        match (cur.job, result) {
            (Job::Init { last, .. }, Ok(())) => {
                if last {
                    self.ready = true;
                    self.event(Event::Ready);
                }
            }
            (Job::Init { last, .. }, Err(error)) => {
                // drop the rest of this init run (up to its last step), not a later run
                if !last {
                    while let Some(pos) = self
                        .queue
                        .iter()
                        .position(|j| matches!(j, Job::Init { .. }))
                    {
                        let Some(Job::Init { last, .. }) = self.queue.remove(pos) else {
                            break;
                        };
                        if last {
                            break;
                        }
                    }
                }
                self.event(Event::InitFailed {
                    command: kind,
                    error,
                });
            }
            (Job::Send { id, .. }, Ok(())) => self.event(Event::Sent {
                id,
                message_ref: cur.message_ref,
            }),
            (Job::Send { id, .. }, Err(error)) => self.event(Event::SendFailed { id, error }),
            (Job::Read { index }, Ok(())) => {
                if let Some(pdu) = cur.read {
                    self.event(Event::Received {
                        pdu,
                        index: Some(index),
                    });
                    if self.config.delete_after_read {
                        self.enqueue_own(Job::Delete { index }, true);
                    }
                }
            }
            (Job::List { .. }, Ok(())) => {
                self.event(Event::Listed {
                    count: cur.received,
                });
                if self.config.delete_after_read {
                    for index in cur.listed.into_iter().rev() {
                        self.enqueue_own(Job::Delete { index }, true);
                    }
                }
            }
            (Job::Cancel, _) => {}
            (job, Err(error)) => self.event(Event::Failed {
                command: job.kind(),
                error,
            }),
            (_, Ok(())) => {}
        }
        self.pump(now);
    }

    // ----- bytes and lines -----------------------------------------------------------------

    fn byte(&mut self, now: Time, b: u8) {
        match b {
            b'\r' | b'\n' | CTRL_Z | ESC => {
                if self.discarding {
                    self.discarding = false;
                    self.line.clear();
                } else if !self.line.is_empty() {
                    let line = core::mem::take(&mut self.line);
                    self.line_done(now, &line);
                    self.line = line;
                    self.line.clear();
                }
                if self.control_bytes > 0 {
                    let count = core::mem::take(&mut self.control_bytes);
                    self.trouble(LineTrouble::ControlBytes { count });
                }
            }
            b'>' if self.line.is_empty()
                && !self.discarding
                && self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.stage == Stage::Prompt) =>
            {
                self.prompt(now);
            }
            b' ' | b'\t' if self.line.is_empty() => {}
            0..=0x1f | 0x7f => {
                self.control_bytes += 1;
                self.stats.discarded_bytes += 1;
            }
            _ => {
                if self.discarding {
                    self.stats.discarded_bytes += 1;
                } else if self.line.len() >= self.config.max_line.max(1) {
                    self.stats.discarded_bytes += self.line.len() as u64 + 1;
                    self.line.clear();
                    self.discarding = true;
                    self.trouble(LineTrouble::TooLong {
                        max: self.config.max_line,
                    });
                } else {
                    self.line.push(b);
                }
            }
        }
    }

    fn prompt(&mut self, now: Time) {
        let send_timeout = self.config.send_timeout;
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let Job::Send { pdu, .. } = &cur.job else {
            return;
        };
        let mut bytes = Vec::with_capacity(pdu.len() * 2 + 1);
        push_hex(&mut bytes, pdu);
        bytes.push(CTRL_Z);
        cur.stage = Stage::Result;
        cur.deadline = now + send_timeout;
        // from now on the echo of the PDU (echo on) is recognised as ours
        cur.text = bytes[..bytes.len() - 1].to_vec();
        self.out.push_back(Output::Write(bytes));
    }

    fn line_done(&mut self, now: Time, raw: &[u8]) {
        self.stats.lines += 1;
        // the PDU line of a +CMGR / +CMGL / +CMT / +CDS header
        if let Some(what) = self.expect_pdu.take() {
            if is_hex_line(raw) {
                self.pdu_line(raw, what);
                return;
            }
            let index = match what {
                PduFor::Cmgl { index, .. } => Some(index),
                PduFor::Cmgr { .. } => self.current.as_ref().and_then(|c| match c.job {
                    Job::Read { index } => Some(index),
                    _ => None,
                }),
                _ => None,
            };
            self.trouble(LineTrouble::BadPdu {
                index,
                reason: "the line after the header is not hex",
            });
            // and the line is read as what it is
        }
        let text: Cow<'_, str> = String::from_utf8_lossy(raw);
        let lossy = matches!(text, Cow::Owned(_));
        let t = text.trim();
        if t.is_empty() {
            return;
        }
        // our own echo (echo on): the command line, or the PDU after the prompt
        if let Some(cur) = &self.current {
            if raw.eq_ignore_ascii_case(&cur.text) {
                self.stats.echoes += 1;
                return;
            }
        }
        if t.len() >= 2 && t.as_bytes()[..2].eq_ignore_ascii_case(b"AT") {
            self.stats.echoes += 1;
            return;
        }
        // in a late-answer window nothing is in flight: whatever is not unsolicited is the late
        // answer to a write that timed out
        if self.current.is_none() && now < self.quiet_until && !self.is_urc_line(t) {
            self.stats.late_answers += 1;
            return;
        }
        // final result codes
        if let Some(result) = final_code(t) {
            if self.current.is_some() {
                self.final_result(now, result);
            } else {
                self.trouble(LineTrouble::UnexpectedFinal(cut(t)));
            }
            return;
        }
        // responses of the command in flight
        if self.response(t) {
            return;
        }
        // unsolicited result codes
        if self.urc(now, t) {
            return;
        }
        if lossy {
            self.trouble(LineTrouble::NotText);
        } else if t.starts_with(['+', '^', '*', '#', '$', '%']) {
            self.stats.urcs += 1;
            self.event(Event::Unsolicited(Urc::Other(cut(t))));
        } else {
            self.trouble(LineTrouble::Garbage(cut(t)));
        }
    }

    fn final_result(&mut self, now: Time, result: Result<(), AtError>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        match (&cur.job, cur.stage, result) {
            (Job::Send { .. }, Stage::Prompt, Ok(())) => self.finish(
                now,
                Err(AtError::BadResponse("OK instead of the `> ` prompt")),
            ),
            (_, _, r) => self.finish(now, r),
        }
    }

    /// A line answering the command in flight; `true` if it was one.
    fn response(&mut self, t: &str) -> bool {
        let Some(cur) = self.current.as_mut() else {
            return false;
        };
        match &cur.job {
            Job::Send { .. } if cur.stage == Stage::Result => {
                if let Some(rest) = strip_prefix_ci(t, "+CMGS:") {
                    let mr = rest.split(',').next().unwrap_or("").trim().parse::<u8>();
                    match mr {
                        Ok(mr) => cur.message_ref = Some(mr),
                        Err(_) => {
                            self.trouble(LineTrouble::Garbage(cut(t)));
                        }
                    }
                    return true;
                }
                // the echo of our PDU, cut differently than we wrote it
                if is_hex_line(t.as_bytes()) {
                    self.stats.echoes += 1;
                    return true;
                }
                false
            }
            Job::Read { index } => {
                let index = *index;
                if let Some(rest) = strip_prefix_ci(t, "+CMGR:") {
                    match last_field_len(rest) {
                        Some(0) => {}
                        Some(len) if len <= MAX_TPDU => {
                            self.expect_pdu = Some(PduFor::Cmgr { len });
                        }
                        _ => self.trouble(LineTrouble::BadPdu {
                            index: Some(index),
                            reason: "+CMGR with a bad <length>",
                        }),
                    }
                    return true;
                }
                false
            }
            Job::List { .. } => {
                if let Some(rest) = strip_prefix_ci(t, "+CMGL:") {
                    let mut fields = rest.split(',');
                    let index = fields.next().and_then(|f| f.trim().parse::<u32>().ok());
                    let stat = fields.next().and_then(|f| f.trim().parse::<u8>().ok());
                    match (index, stat, last_field_len(rest)) {
                        (Some(index), Some(stat), Some(len)) if len <= MAX_TPDU => {
                            self.expect_pdu = Some(PduFor::Cmgl {
                                index,
                                len,
                                received: stat <= 1,
                            });
                        }
                        (index, _, _) => self.trouble(LineTrouble::BadPdu {
                            index,
                            reason: "+CMGL with a bad <index>, <stat> or <length>",
                        }),
                    }
                    return true;
                }
                false
            }
            Job::Init {
                kind: CommandKind::Storage,
                ..
            } => strip_prefix_ci(t, "+CPMS:").is_some(),
            _ => false,
        }
    }

    /// `t` starts like an unsolicited result code.
    fn is_urc_line(&self, t: &str) -> bool {
        [
            "+CMTI:", "+CDSI:", "+CMT:", "+CDS:", "+CREG:", "+CGREG:", "+CEREG:",
        ]
        .iter()
        .any(|p| strip_prefix_ci(t, p).is_some())
            || t.eq_ignore_ascii_case("RING")
    }

    /// An unsolicited result code; `true` if it was one.
    fn urc(&mut self, now: Time, t: &str) -> bool {
        let urc = if let Some(rest) = strip_prefix_ci(t, "+CMTI:") {
            let Some((mem, index)) = mem_index(rest) else {
                self.trouble(LineTrouble::Garbage(cut(t)));
                return true;
            };
            if !self.enqueue_own(Job::Read { index }, false) {
                self.trouble(LineTrouble::QueueFull { index });
            }
            Urc::NewMessage { mem, index }
        } else if let Some(rest) = strip_prefix_ci(t, "+CDSI:") {
            let Some((mem, index)) = mem_index(rest) else {
                self.trouble(LineTrouble::Garbage(cut(t)));
                return true;
            };
            Urc::StatusReportStored { mem, index }
        } else if let Some((rest, direct)) = strip_prefix_ci(t, "+CMT:")
            .map(|r| (r, true))
            .or_else(|| strip_prefix_ci(t, "+CDS:").map(|r| (r, false)))
        {
            // a direct delivery or status report: the PDU is on the next line
            match last_field_len(rest) {
                Some(len) if (1..=MAX_TPDU).contains(&len) => {
                    self.expect_pdu = Some(if direct {
                        PduFor::Cmt { len }
                    } else {
                        PduFor::Cds { len }
                    })
                }
                _ => self.trouble(LineTrouble::BadPdu {
                    index: None,
                    reason: "+CMT or +CDS with a bad <length>",
                }),
            }
            self.stats.urcs += 1;
            return true;
        } else if t.eq_ignore_ascii_case("RING") {
            Urc::Ring
        } else if let Some((kind, rest)) = ["CREG", "CGREG", "CEREG"].iter().find_map(|k| {
            let p = t.strip_prefix('+')?;
            let rest = strip_prefix_ci(p, k)?.strip_prefix(':')?;
            Some((*k, rest))
        }) {
            // the URC form is `<stat>[,…]`; a reply to `AT+CREG?` would be `<n>,<stat>`, but the
            // engine never asks
            let stat = rest.split(',').next().and_then(|s| s.trim().parse().ok());
            Urc::Registration {
                kind: String::from(kind),
                stat,
            }
        } else {
            return false;
        };
        let _ = now;
        self.stats.urcs += 1;
        self.event(Event::Unsolicited(urc));
        true
    }

    fn pdu_line(&mut self, raw: &[u8], what: PduFor) {
        let hex: &[u8] = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(&raw[..0], |end| &raw[..=end]);
        let (len, index) = match what {
            PduFor::Cmgr { len } => (
                len,
                self.current.as_ref().and_then(|c| match c.job {
                    Job::Read { index } => Some(index),
                    _ => None,
                }),
            ),
            PduFor::Cmgl { index, len, .. } => (len, Some(index)),
            PduFor::Cmt { len } | PduFor::Cds { len } => (len, None),
        };
        let pdu = match decode_hex(hex) {
            Some(p) if !p.is_empty() && p.len() == 1 + p[0] as usize + len => p,
            Some(_) => {
                self.trouble(LineTrouble::BadPdu {
                    index,
                    reason: "the PDU's length does not match the SMSC prefix and <length>",
                });
                return;
            }
            None => {
                self.trouble(LineTrouble::BadPdu {
                    index,
                    reason: "odd number of hex digits",
                });
                return;
            }
        };
        match what {
            PduFor::Cmgr { .. } => {
                if let Some(cur) = self.current.as_mut() {
                    cur.read = Some(pdu);
                }
            }
            PduFor::Cmgl {
                index, received, ..
            } => {
                if received {
                    self.event(Event::Received {
                        pdu,
                        index: Some(index),
                    });
                    if let Some(cur) = self.current.as_mut() {
                        cur.received = cur.received.saturating_add(1);
                        if cur.listed.len() < self.config.max_queue.max(1) {
                            cur.listed.push(index);
                        }
                    }
                }
            }
            PduFor::Cmt { .. } => {
                self.event(Event::Received { pdu, index: None });
                if self.config.ack_direct {
                    self.enqueue_own(Job::Ack, true);
                }
            }
            PduFor::Cds { .. } => {
                self.event(Event::StatusReport { pdu });
                if self.config.ack_direct {
                    self.enqueue_own(Job::Ack, true);
                }
            }
        }
    }

    // ----- time ------------------------------------------------------------------------------

    fn timed_out(&mut self, now: Time) {
        let retries = self.config.retries;
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        self.stats.timeouts += 1;
        cur.timed_out = true;
        let kind = cur.job.kind();
        match (&cur.job, cur.stage) {
            (Job::Send { id, .. }, Stage::Prompt) => {
                // the modem may be waiting for the PDU: cancel the input, then swallow its answer
                let id = *id;
                self.expect_pdu = None;
                self.out.push_back(Output::Write(alloc::vec![ESC]));
                self.current = Some(InFlight::new(
                    Job::Cancel,
                    Vec::new(),
                    Stage::Result,
                    now + self.config.command_timeout,
                ));
                self.event(Event::SendFailed {
                    id,
                    error: AtError::NoPrompt,
                });
            }
            (Job::Send { .. }, Stage::Result) => {
                let r = if cur.message_ref.is_some() {
                    Ok(())
                } else {
                    Err(AtError::SendUnconfirmed)
                };
                self.finish(now, r);
            }
            (Job::Cancel, _) => self.finish(now, Ok(())),
            (Job::Ack, _) => {
                let attempts = cur.attempts;
                self.finish(
                    now,
                    Err(AtError::Timeout {
                        command: kind,
                        attempts,
                    }),
                );
            }
            _ => {
                if cur.attempts <= retries {
                    cur.attempts += 1;
                    cur.deadline = now + self.config.command_timeout;
                    let mut bytes = cur.text.clone();
                    bytes.push(b'\r');
                    self.stats.retries += 1;
                    self.out.push_back(Output::Write(bytes));
                } else {
                    let attempts = cur.attempts;
                    self.expect_pdu = None;
                    self.finish(
                        now,
                        Err(AtError::Timeout {
                            command: kind,
                            attempts,
                        }),
                    );
                }
            }
        }
        if self.current.is_none() {
            self.pump(now);
        }
    }
}

impl Machine for AtEngine {
    type Input = Input;
    type Output = Output;
    type Error = Error;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), Error> {
        match input {
            Input::Bytes(bytes) => {
                self.receive(now, &bytes);
                Ok(())
            }
            Input::Command(cmd) => self.command(now, cmd),
        }
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        match &self.current {
            Some(c) => Some(c.deadline),
            // queued work waits for the end of a late-answer window
            None => (!self.queue.is_empty()).then_some(self.quiet_until),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        // a retry sets a later deadline, so this ends
        while self.current.as_ref().is_some_and(|c| c.deadline <= now) {
            self.timed_out(now);
        }
        self.pump(now);
    }
}

// ----- parsing helpers ---------------------------------------------------------------------

/// `t` without `prefix`, compared case-insensitively.
fn strip_prefix_ci<'a>(t: &'a str, prefix: &str) -> Option<&'a str> {
    let head = t.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &t[prefix.len()..])
}

/// `text` cut to [`MAX_TEXT`] bytes on a character boundary.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&text[..end])
}

/// The last comma-separated field as a length (`+CMGR: <stat>,[<alpha>],<length>`, `+CMT:
/// [<alpha>],<length>`, `+CDS: <length>`).
fn last_field_len(rest: &str) -> Option<usize> {
    rest.rsplit(',').next()?.trim().parse::<usize>().ok()
}

/// `<mem>,<index>` of `+CMTI` / `+CDSI`.
fn mem_index(rest: &str) -> Option<(String, u32)> {
    let (mem, index) = rest.rsplit_once(',')?;
    let index = index.trim().parse::<u32>().ok()?;
    Some((cut(mem.trim().trim_matches('"')), index))
}

/// A final result code: `Ok(())` for `OK`, the typed error for the others; `None` if `t` is not
/// one.
fn final_code(t: &str) -> Option<Result<(), AtError>> {
    if t.eq_ignore_ascii_case("OK") {
        return Some(Ok(()));
    }
    if t.eq_ignore_ascii_case("ERROR") {
        return Some(Err(AtError::Error));
    }
    for name in ["NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"] {
        if t.eq_ignore_ascii_case(name) {
            return Some(Err(AtError::Final(name)));
        }
    }
    if let Some(rest) = strip_prefix_ci(t, "+CMS ERROR:") {
        return Some(Err(AtError::Cms(CmsError(reported(rest, CMS_CODES)))));
    }
    if let Some(rest) = strip_prefix_ci(t, "+CME ERROR:") {
        return Some(Err(AtError::Cme(CmeError(reported(rest, CME_CODES)))));
    }
    None
}

fn reported(rest: &str, table: &[(u16, &str)]) -> ReportedCode {
    let rest = rest.trim();
    if let Ok(c) = rest.parse::<u16>() {
        return ReportedCode::Code(c);
    }
    match table.iter().find(|(_, m)| m.eq_ignore_ascii_case(rest)) {
        Some((c, _)) => ReportedCode::Code(*c),
        None => ReportedCode::Text(cut(rest)),
    }
}

fn lookup(table: &[(u16, &'static str)], code: u16) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// The line is hex digits only (possibly a PDU).
fn is_hex_line(raw: &[u8]) -> bool {
    let t = raw.trim_ascii();
    !t.is_empty() && t.iter().all(u8::is_ascii_hexdigit)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Hex digits to bytes; `None` on an odd count or a non-hex byte.
fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

/// Append `bytes` as upper-case hex digits.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0xf) as usize]);
    }
}

/// `+CMS ERROR` codes: TS 24.011 RP-cause values (0–127), TS 23.040 TP-FCS values (128–255) and
/// TS 27.005 §3.2.5 (300–500).
const CMS_CODES: &[(u16, &str)] = &[
    (1, "unassigned (unallocated) number"),
    (8, "operator determined barring"),
    (10, "call barred"),
    (21, "short message transfer rejected"),
    (27, "destination out of service"),
    (28, "unidentified subscriber"),
    (29, "facility rejected"),
    (30, "unknown subscriber"),
    (38, "network out of order"),
    (41, "temporary failure"),
    (42, "congestion"),
    (47, "resources unavailable, unspecified"),
    (50, "requested facility not subscribed"),
    (69, "requested facility not implemented"),
    (81, "invalid short message transfer reference value"),
    (95, "invalid message, unspecified"),
    (96, "invalid mandatory information"),
    (97, "message type non-existent or not implemented"),
    (
        98,
        "message not compatible with short message protocol state",
    ),
    (99, "information element non-existent or not implemented"),
    (111, "protocol error, unspecified"),
    (127, "interworking, unspecified"),
    (128, "telematic interworking not supported"),
    (129, "short message type 0 not supported"),
    (130, "cannot replace short message"),
    (143, "unspecified TP-PID error"),
    (144, "data coding scheme (alphabet) not supported"),
    (145, "message class not supported"),
    (159, "unspecified TP-DCS error"),
    (160, "command cannot be actioned"),
    (161, "command unsupported"),
    (175, "unspecified TP-Command error"),
    (176, "TPDU not supported"),
    (192, "SC busy"),
    (193, "no SC subscription"),
    (194, "SC system failure"),
    (195, "invalid SME address"),
    (196, "destination SME barred"),
    (197, "SM rejected-duplicate SM"),
    (198, "TP-VPF not supported"),
    (199, "TP-VP not supported"),
    (208, "(U)SIM SMS storage full"),
    (209, "no SMS storage capability in (U)SIM"),
    (210, "error in MS"),
    (211, "memory capacity exceeded"),
    (212, "(U)SIM application toolkit busy"),
    (213, "(U)SIM data download error"),
    (255, "unspecified error cause"),
    (300, "ME failure"),
    (301, "SMS service of ME reserved"),
    (302, "operation not allowed"),
    (303, "operation not supported"),
    (304, "invalid PDU mode parameter"),
    (305, "invalid text mode parameter"),
    (310, "(U)SIM not inserted"),
    (311, "(U)SIM PIN required"),
    (312, "PH-(U)SIM PIN required"),
    (313, "(U)SIM failure"),
    (314, "(U)SIM busy"),
    (315, "(U)SIM wrong"),
    (316, "(U)SIM PUK required"),
    (317, "(U)SIM PIN2 required"),
    (318, "(U)SIM PUK2 required"),
    (320, "memory failure"),
    (321, "invalid memory index"),
    (322, "memory full"),
    (330, "SMSC address unknown"),
    (331, "no network service"),
    (332, "network timeout"),
    (340, "no +CNMA acknowledgement expected"),
    (500, "unknown error"),
];

/// `+CME ERROR` codes of TS 27.007 §9.2.
const CME_CODES: &[(u16, &str)] = &[
    (0, "phone failure"),
    (1, "no connection to phone"),
    (2, "phone-adaptor link reserved"),
    (3, "operation not allowed"),
    (4, "operation not supported"),
    (5, "PH-SIM PIN required"),
    (6, "PH-FSIM PIN required"),
    (7, "PH-FSIM PUK required"),
    (10, "SIM not inserted"),
    (11, "SIM PIN required"),
    (12, "SIM PUK required"),
    (13, "SIM failure"),
    (14, "SIM busy"),
    (15, "SIM wrong"),
    (16, "incorrect password"),
    (17, "SIM PIN2 required"),
    (18, "SIM PUK2 required"),
    (20, "memory full"),
    (21, "invalid index"),
    (22, "not found"),
    (23, "memory failure"),
    (24, "text string too long"),
    (25, "invalid characters in text string"),
    (26, "dial string too long"),
    (27, "invalid characters in dial string"),
    (30, "no network service"),
    (31, "network timeout"),
    (32, "network not allowed - emergency calls only"),
    (40, "network personalization PIN required"),
    (41, "network personalization PUK required"),
    (42, "network subset personalization PIN required"),
    (43, "network subset personalization PUK required"),
    (44, "service provider personalization PIN required"),
    (45, "service provider personalization PUK required"),
    (46, "corporate personalization PIN required"),
    (47, "corporate personalization PUK required"),
    (100, "unknown"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut h = Vec::new();
        push_hex(&mut h, &[0x00, 0xab, 0x1f]);
        assert_eq!(h, b"00AB1F");
        assert_eq!(decode_hex(b"00ab1F"), Some(alloc::vec![0, 0xab, 0x1f]));
        assert_eq!(decode_hex(b"0"), None);
        assert_eq!(decode_hex(b"0g"), None);
    }

    #[test]
    fn codes_text_and_number() {
        assert_eq!(
            final_code("+CMS ERROR: invalid PDU mode parameter"),
            Some(Err(AtError::Cms(CmsError(ReportedCode::Code(304)))))
        );
        assert_eq!(
            final_code("+CME ERROR: 11"),
            Some(Err(AtError::Cme(CmeError(ReportedCode::Code(11)))))
        );
        assert_eq!(
            CmsError(ReportedCode::Code(330)).meaning(),
            Some("SMSC address unknown")
        );
        assert_eq!(final_code("+CMGS: 3"), None);
    }

    #[test]
    fn check_pdu_lengths() {
        assert!(check_pdu(&[0, 1, 2], 2).is_ok());
        assert!(check_pdu(&[0, 1, 2], 3).is_err());
        assert!(check_pdu(&[], 1).is_err());
        assert!(check_pdu(&[0], 0).is_err());
        assert!(check_pdu(&[20, 1], 1).is_err());
    }
}
