//! A GSM modem emulator on a pseudo-terminal, for tests.
//!
//! It opens a pty pair, serves the slave's path ([`ModemEmu::path`]) to the code under test, and
//! on the master side answers AT commands the way TS 27.005 / 27.007 and modem manuals describe:
//!
//! - echo on until `ATE0` (every byte typed comes back, the PDU after the prompt too);
//! - `OK` / `ERROR`, and `+CMS ERROR` / `+CME ERROR` in the form chosen by `AT+CMEE` (0: plain
//!   `ERROR`, 1: numeric, 2: verbose text);
//! - `AT+CMGF=<0|1>` (a send in text mode is refused with `+CMS ERROR: 305`), `AT+CNMI=<mode>,<mt>…`
//!   (`<mt>` 0: store silently, 1: store and report `+CMTI: "SM",<i>`, 2: route `+CMT` directly),
//!   `AT+CPMS`, `AT+CNMA`;
//! - `AT+CMGS=<n>` → `\r\n> ` (no line end), reads hex until Ctrl-Z (ESC cancels and answers
//!   `OK`), checks the hex and that the TPDU is `<n>` octets after the SMSC prefix (else
//!   `+CMS ERROR: 304`), answers `+CMGS: <mr>` with an incrementing reference and hands the PDU to
//!   the test ([`EmuHandle::on_submit`], [`EmuHandle::next_submit`]);
//! - incoming messages ([`EmuHandle::inject_incoming`]) stored at the lowest free index, and
//!   `AT+CMGR`, `AT+CMGD` (with `<delflag>` 4: all), `AT+CMGL=<stat>`.
//!
//! Fault knobs: [`EmuHandle::urc_before_next_result`], [`EmuHandle::urc_before_next_prompt`],
//! [`EmuHandle::no_prompt_on_next_send`], [`EmuHandle::cms_error_on_next_send`],
//! [`EmuHandle::drop_next_send_result`], [`EmuHandle::drop_next_results`],
//! [`EmuHandle::set_silent`], [`EmuHandle::set_delay`],
//! [`EmuHandle::write_raw`] (garbage, endless output), [`EmuHandle::set_echo`],
//! [`EmuHandle::set_cmee`], [`EmuHandle::set_text_mode`].
//!
//! Use from a test file:
//!
//! ```ignore
//! #[path = "support/modem_emu.rs"]
//! mod modem_emu;
//! let emu = modem_emu::ModemEmu::start();
//! let port_path = emu.path(); // open it with serialport, or ip2p::adapters::modem::Modem::open
//! ```
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::os::fd::AsRawFd;

/// Settings of one emulated modem.
#[derive(Clone, Debug)]
pub struct EmuConfig {
    /// Echo at start (real modems start with it on).
    pub echo: bool,
    /// Message slots in the storage "SM".
    pub capacity: u32,
    /// The first TP-Message-Reference handed out.
    pub first_mr: u8,
    /// `<mt>` of `+CNMI` before the code under test sets it (0: store silently).
    pub mt: u8,
}

impl Default for EmuConfig {
    fn default() -> Self {
        EmuConfig {
            echo: true,
            capacity: 10,
            first_mr: 0,
            mt: 0,
        }
    }
}

/// One PDU the code under test submitted with `AT+CMGS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// SMSC prefix + TPDU, as typed after the prompt.
    pub pdu: Vec<u8>,
    /// The TPDU alone.
    pub tpdu: Vec<u8>,
    /// The TP-Message-Reference answered.
    pub mr: u8,
}

type SubmitHook = Box<dyn FnMut(&Submitted) + Send>;

#[derive(Default)]
struct Faults {
    urc_before_result: VecDeque<String>,
    urc_before_prompt: VecDeque<String>,
    no_prompt: u32,
    cms_on_send: VecDeque<u16>,
    drop_send_result: u32,
    drop_results: u32,
    silent: bool,
    delay: Duration,
}

struct State {
    echo: bool,
    cmee: u8,
    cmgf: u8,
    mt: u8,
    mr: u8,
    capacity: u32,
    /// index → (stat, SMSC prefix + TPDU)
    slots: BTreeMap<u32, (u8, Vec<u8>)>,
    line: Vec<u8>,
    /// `Some(n)` while reading a PDU after `AT+CMGS=<n>`.
    pdu_input: Option<usize>,
    pdu_hex: Vec<u8>,
    faults: Faults,
    commands: Vec<String>,
    outbox: VecDeque<(Instant, Vec<u8>)>,
    /// Submissions to hand out once the lock is released.
    submitted: Vec<Submitted>,
}

struct Inner {
    state: Mutex<State>,
    hook: Mutex<Option<SubmitHook>>,
    submits_tx: Mutex<mpsc::Sender<Submitted>>,
    submits_rx: Mutex<mpsc::Receiver<Submitted>>,
    stop: AtomicBool,
}

/// A cloneable, `Send` handle on a running emulator (for callbacks such as an emulated SMS
/// centre that delivers one modem's submissions to another).
#[derive(Clone)]
pub struct EmuHandle(Arc<Inner>);

/// A running emulator; stops (and joins its thread) on drop.
pub struct ModemEmu {
    handle: EmuHandle,
    path: String,
    thread: Option<JoinHandle<()>>,
    _slave: OwnedFd,
}

impl std::ops::Deref for ModemEmu {
    type Target = EmuHandle;
    fn deref(&self) -> &EmuHandle {
        &self.handle
    }
}

impl ModemEmu {
    /// Start with the default settings.
    pub fn start() -> ModemEmu {
        ModemEmu::with_config(EmuConfig::default())
    }

    /// Start with `config`.
    pub fn with_config(config: EmuConfig) -> ModemEmu {
        let pty = openpty(None, None).expect("openpty");
        // raw mode on the line: no echo or CR/LF translation by the kernel, only ours
        let mut t = tcgetattr(&pty.slave).expect("tcgetattr");
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
        let path = nix::unistd::ttyname(&pty.slave)
            .expect("ttyname")
            .to_string_lossy()
            .into_owned();
        fcntl(pty.master.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                echo: config.echo,
                cmee: 0,
                cmgf: 0,
                mt: config.mt,
                mr: config.first_mr,
                capacity: config.capacity,
                slots: BTreeMap::new(),
                line: Vec::new(),
                pdu_input: None,
                pdu_hex: Vec::new(),
                faults: Faults::default(),
                commands: Vec::new(),
                outbox: VecDeque::new(),
                submitted: Vec::new(),
            }),
            hook: Mutex::new(None),
            submits_tx: Mutex::new(tx),
            submits_rx: Mutex::new(rx),
            stop: AtomicBool::new(false),
        });
        let master = File::from(pty.master);
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("modem-emu".into())
                .spawn(move || serve(master, &inner))
                .expect("spawn emulator")
        };
        ModemEmu {
            handle: EmuHandle(inner),
            path,
            thread: Some(thread),
            _slave: pty.slave,
        }
    }

    /// The serial device to open (`/dev/pts/N`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A handle for other threads and callbacks.
    pub fn handle(&self) -> EmuHandle {
        self.handle.clone()
    }

    /// Stop the emulator and join its thread.
    pub fn stop(mut self) {
        self.stop_join();
    }

    fn stop_join(&mut self) {
        self.handle.0.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ModemEmu {
    fn drop(&mut self) {
        self.stop_join();
    }
}

impl EmuHandle {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Call `f` with every submitted PDU (on the emulator's thread, after it answered
    /// `+CMGS`). Submissions also go to [`EmuHandle::next_submit`].
    pub fn on_submit(&self, f: impl FnMut(&Submitted) + Send + 'static) {
        *self.0.hook.lock().unwrap() = Some(Box::new(f));
    }

    /// The next submitted PDU, waiting at most `timeout`.
    pub fn next_submit(&self, timeout: Duration) -> Option<Submitted> {
        self.0.submits_rx.lock().unwrap().recv_timeout(timeout).ok()
    }

    /// A message arrives from the network: `pdu` is SMSC prefix + SMS-DELIVER TPDU. With
    /// `<mt>` 2 it is routed directly (`+CMT`) and `None` is returned; otherwise it is stored at
    /// the lowest free index (returned), reported with `+CMTI` when `<mt>` is 1. `None` too
    /// when the storage is full (the message is lost, as a full SIM loses it).
    pub fn inject_incoming(&self, pdu: &[u8]) -> Option<u32> {
        let mut st = self.st();
        let tpdu_len = pdu
            .len()
            .saturating_sub(1 + *pdu.first().unwrap_or(&0) as usize);
        if st.mt == 2 {
            let s = format!("\r\n+CMT: ,{tpdu_len}\r\n{}\r\n", hex(pdu));
            st.emit(s.into_bytes());
            return None;
        }
        let index = (1..=st.capacity).find(|i| !st.slots.contains_key(i))?;
        st.slots.insert(index, (0, pdu.to_vec()));
        if st.mt == 1 {
            st.emit(format!("\r\n+CMTI: \"SM\",{index}\r\n").into_bytes());
        }
        Some(index)
    }

    /// [`EmuHandle::inject_incoming`] with the PDU in hex.
    pub fn inject_incoming_hex(&self, pdu_hex: &str) -> Option<u32> {
        self.inject_incoming(&unhex(pdu_hex.as_bytes()).expect("hex PDU"))
    }

    /// Put these bytes on the line now (garbage, URCs, endless output …).
    pub fn write_raw(&self, bytes: &[u8]) {
        self.st().emit(bytes.to_vec());
    }

    /// The next command's final result is preceded by this URC line.
    pub fn urc_before_next_result(&self, urc: &str) {
        self.st().faults.urc_before_result.push_back(urc.into());
    }

    /// The next `AT+CMGS`'s prompt is preceded by this URC line.
    pub fn urc_before_next_prompt(&self, urc: &str) {
        self.st().faults.urc_before_prompt.push_back(urc.into());
    }

    /// The next `AT+CMGS` gets no prompt (the emulator still waits for a PDU; ESC cancels).
    pub fn no_prompt_on_next_send(&self) {
        self.st().faults.no_prompt += 1;
    }

    /// The next `AT+CMGS` is refused with `+CMS ERROR: <code>` before the prompt.
    pub fn cms_error_on_next_send(&self, code: u16) {
        self.st().faults.cms_on_send.push_back(code);
    }

    /// The next PDU is taken (and handed to the test) but never answered.
    pub fn drop_next_send_result(&self) {
        self.st().faults.drop_send_result += 1;
    }

    /// The next `n` final result codes (`OK`, errors) are not sent (the command's other lines
    /// are).
    pub fn drop_next_results(&self, n: u32) {
        self.st().faults.drop_results += n;
    }

    /// Say nothing at all (no echo, no answers) until cleared.
    pub fn set_silent(&self, silent: bool) {
        self.st().faults.silent = silent;
    }

    /// Delay everything written from now on by `d`.
    pub fn set_delay(&self, d: Duration) {
        self.st().faults.delay = d;
    }

    /// Switch echo as `ATE` would.
    pub fn set_echo(&self, on: bool) {
        self.st().echo = on;
    }

    /// Set the `AT+CMEE` mode as if the modem had been told so (0 plain, 1 numeric, 2 verbose).
    pub fn set_cmee(&self, mode: u8) {
        self.st().cmee = mode;
    }

    /// Switch text mode (`AT+CMGF=1`) on or off behind the client's back.
    pub fn set_text_mode(&self, on: bool) {
        self.st().cmgf = u8::from(on);
    }

    /// Every command line received so far (without CR).
    pub fn commands(&self) -> Vec<String> {
        self.st().commands.clone()
    }

    /// The stored messages: (index, stat, SMSC prefix + TPDU).
    pub fn stored(&self) -> Vec<(u32, u8, Vec<u8>)> {
        self.st()
            .slots
            .iter()
            .map(|(i, (s, p))| (*i, *s, p.clone()))
            .collect()
    }

    /// The echo setting now.
    pub fn echo(&self) -> bool {
        self.st().echo
    }
}

fn serve(mut master: File, inner: &Inner) {
    let mut buf = [0u8; 4096];
    while !inner.stop.load(Ordering::Relaxed) {
        let readable = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(5u8)), Ok(n) if n > 0)
        };
        if readable {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    for &b in &buf[..n] {
                        st.byte(b);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // EIO: no slave open right now (we keep one, so only in odd cases)
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let submitted = {
            let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut st.submitted)
        };
        for s in submitted {
            let _ = inner.submits_tx.lock().unwrap().send(s.clone());
            if let Some(hook) = inner.hook.lock().unwrap().as_mut() {
                hook(&s);
            }
        }
        // write what is due, without blocking
        let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while let Some((due, bytes)) = st.outbox.front_mut() {
            if *due > now {
                break;
            }
            match master.write(bytes) {
                Ok(n) if n == bytes.len() => {
                    st.outbox.pop_front();
                }
                Ok(n) => {
                    bytes.drain(..n);
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

const CTRL_Z: u8 = 0x1a;
const ESC: u8 = 0x1b;

impl State {
    fn emit(&mut self, bytes: Vec<u8>) {
        if self.faults.silent || bytes.is_empty() {
            return;
        }
        let due = Instant::now() + self.faults.delay;
        self.outbox.push_back((due, bytes));
    }

    fn byte(&mut self, b: u8) {
        if let Some(n) = self.pdu_input {
            if self.echo && b != CTRL_Z && b != ESC {
                self.emit(vec![b]);
            }
            match b {
                CTRL_Z => {
                    self.pdu_input = None;
                    let hex = std::mem::take(&mut self.pdu_hex);
                    self.submit(n, &hex);
                }
                ESC => {
                    self.pdu_input = None;
                    self.pdu_hex.clear();
                    self.emit(b"\r\nOK\r\n".to_vec());
                }
                b'\r' | b'\n' => {}
                _ if self.pdu_hex.len() < 1024 => self.pdu_hex.push(b),
                _ => {}
            }
            return;
        }
        if self.echo && b != ESC {
            self.emit(vec![b]);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let text = String::from_utf8_lossy(&line).trim().to_string();
                if !text.is_empty() {
                    self.command(&text);
                }
            }
            b'\n' | ESC => {}
            _ if self.line.len() < 1024 => self.line.push(b),
            _ => {}
        }
    }

    fn info(&mut self, s: &str) {
        self.emit(format!("\r\n{s}\r\n").into_bytes());
    }

    fn result(&mut self, s: &str) {
        if let Some(urc) = self.faults.urc_before_result.pop_front() {
            self.info(&urc);
        }
        if self.faults.drop_results > 0 {
            self.faults.drop_results -= 1;
            return;
        }
        self.info(s);
    }

    fn ok(&mut self) {
        self.result("OK");
    }

    fn cms(&mut self, code: u16) {
        self.error("+CMS ERROR", code, cms_text(code));
    }

    fn cme(&mut self, code: u16) {
        self.error("+CME ERROR", code, cme_text(code));
    }

    /// An error result in the form `AT+CMEE` chose.
    fn error(&mut self, name: &str, code: u16, text: &str) {
        let s = match self.cmee {
            0 => "ERROR".to_string(),
            1 => format!("{name}: {code}"),
            _ => format!("{name}: {text}"),
        };
        self.result(&s);
    }

    fn command(&mut self, text: &str) {
        self.commands.push(text.to_string());
        let upper = text.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("AT") else {
            self.result("ERROR");
            return;
        };
        // the parameters keep their case (storage names are upper case anyway)
        let param = |p: &str| rest.strip_prefix(p).map(str::trim);
        if rest.is_empty() {
            self.ok();
        } else if let Some(v) = param("E") {
            match v {
                "" | "0" => self.echo = false,
                "1" => self.echo = true,
                _ => return self.result("ERROR"),
            }
            self.ok();
        } else if rest == "Z" {
            self.echo = true;
            self.cmee = 0;
            self.ok();
        } else if let Some(v) = param("+CMEE=") {
            match v.parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmee = n;
                    self.ok();
                }
                _ => self.cme(50),
            }
        } else if let Some(v) = param("+CMGF=") {
            match v.parse::<u8>() {
                Ok(n @ 0..=1) => {
                    self.cmgf = n;
                    self.ok();
                }
                _ => self.cme(50),
            }
        } else if let Some(v) = param("+CNMI=") {
            match v.split(',').nth(1).map(|f| f.trim().parse::<u8>()) {
                Some(Ok(mt @ 0..=3)) => {
                    self.mt = mt;
                    self.ok();
                }
                None => self.ok(),
                _ => self.cms(303),
            }
        } else if param("+CPMS=").is_some() {
            let (used, cap) = (self.slots.len(), self.capacity);
            self.info(&format!("+CPMS: {used},{cap},{used},{cap},{used},{cap}"));
            self.ok();
        } else if let Some(v) = param("+CMGS=") {
            self.cmgs(v);
        } else if let Some(v) = param("+CMGR=") {
            match v
                .parse::<u32>()
                .ok()
                .and_then(|i| Some((i, self.slots.get_mut(&i)?)))
            {
                Some((_, (stat, pdu))) => {
                    let line = format!("+CMGR: {},,{}", *stat, tpdu_len(pdu));
                    let body = hex(pdu);
                    if *stat == 0 {
                        *stat = 1;
                    }
                    self.info(&line);
                    self.emit(format!("{body}\r\n").into_bytes());
                    self.ok();
                }
                None => self.cms(321),
            }
        } else if let Some(v) = param("+CMGD=") {
            let mut f = v.split(',');
            let index = f.next().and_then(|s| s.trim().parse::<u32>().ok());
            let flag = f
                .next()
                .and_then(|s| s.trim().parse::<u8>().ok())
                .unwrap_or(0);
            match index {
                _ if flag == 4 => {
                    self.slots.clear();
                    self.ok();
                }
                Some(i) if (1..=self.capacity).contains(&i) => {
                    self.slots.remove(&i);
                    self.ok();
                }
                _ => self.cms(321),
            }
        } else if let Some(v) = param("+CMGL") {
            let stat = v.strip_prefix('=').unwrap_or("4").trim().parse::<u8>();
            match stat {
                Ok(s @ 0..=4) => {
                    let mut out = Vec::new();
                    for (i, (st, pdu)) in self.slots.iter_mut() {
                        if s == 4 || *st == s {
                            out.push(format!(
                                "+CMGL: {i},{},,{}\r\n{}",
                                *st,
                                tpdu_len(pdu),
                                hex(pdu)
                            ));
                            if *st == 0 {
                                *st = 1;
                            }
                        }
                    }
                    for l in out {
                        self.info(&l);
                    }
                    self.ok();
                }
                _ => self.cms(304),
            }
        } else if rest == "+CNMA" {
            if self.mt == 2 {
                self.ok();
            } else {
                self.cms(340);
            }
        } else {
            self.cme(4);
        }
    }

    fn cmgs(&mut self, v: &str) {
        if self.cmgf == 1 {
            return self.cms(305);
        }
        let Ok(n @ 1..=255) = v.parse::<usize>() else {
            return self.cms(304);
        };
        if let Some(code) = self.faults.cms_on_send.pop_front() {
            return self.cms(code);
        }
        self.pdu_input = Some(n);
        self.pdu_hex.clear();
        if self.faults.no_prompt > 0 {
            self.faults.no_prompt -= 1;
            return;
        }
        if let Some(urc) = self.faults.urc_before_prompt.pop_front() {
            self.info(&urc);
        }
        self.emit(b"\r\n> ".to_vec());
    }

    fn submit(&mut self, n: usize, hex_digits: &[u8]) {
        let pdu = match unhex(hex_digits) {
            Some(p) if !p.is_empty() && p.len() == 1 + p[0] as usize + n => p,
            _ => return self.cms(304),
        };
        let mr = self.mr;
        self.mr = self.mr.wrapping_add(1);
        let tpdu = pdu[1 + pdu[0] as usize..].to_vec();
        self.submitted.push(Submitted { pdu, tpdu, mr });
        if self.faults.drop_send_result > 0 {
            self.faults.drop_send_result -= 1;
            return;
        }
        self.info(&format!("+CMGS: {mr}"));
        self.ok();
    }
}

fn tpdu_len(pdu: &[u8]) -> usize {
    pdu.len()
        .saturating_sub(1 + *pdu.first().unwrap_or(&0) as usize)
}

/// Upper-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Hex digits to bytes; `None` if odd or not hex.
pub fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    hex.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn cms_text(code: u16) -> &'static str {
    match code {
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        321 => "invalid memory index",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        _ => "unknown error",
    }
}

fn cme_text(code: u16) -> &'static str {
    match code {
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        30 => "no network service",
        50 => "incorrect parameters",
        _ => "unknown",
    }
}
