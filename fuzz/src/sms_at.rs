//! Fuzz target body for the AT engine ([`ip2p::sms::at::AtEngine`]).
//!
//! [`sms_at`] decodes a scenario from the fuzzer's bytes, one byte at a time (`byte % n` picks
//! among `n` choices, so a person can write a seed by hand): a header with the engine's settings,
//! then steps: raw byte chunks from the "modem" (anything at all, in any chunking), lines from a
//! dictionary of real modem answers (so the fuzzer reaches deep states quickly), host commands
//! (`Init`, `SendPdu` with well- or ill-formed PDUs, `ListStored`) and time.
//!
//! Checked after every step:
//! - no panic;
//! - bounded memory: the partial line never exceeds `max_line`, the queue never exceeds its two
//!   shares (`7 × max_queue` jobs: up to 6 per init), every output is drained, every write is at most a command line or a PDU;
//! - every outcome belongs to a command: `Sent`/`SendFailed` only for an accepted id not yet
//!   ended, `Ready`/`InitFailed` only for an accepted `Init`, `Listed` only for an accepted
//!   `ListStored`;
//! - the deadline is in the future after `handle_timeout(now)`.
//!
//! At the end, with the modem silent, time runs on: **every command ends** (each accepted send,
//! init and list has exactly one outcome) within a bounded number of deadlines, and the engine is
//! idle.

use std::collections::BTreeSet;
use std::time::Duration;

use ip2p::machine::Machine;
use ip2p::sms::at::{AtEngine, Command, Config, Event, Input, Output, SendId};
use ip2p::Time;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let end = (self.pos + n).min(self.data.len());
        let s = &self.data[self.pos..end];
        self.pos = end;
        s
    }
}

/// Lines a modem really sends (the fuzzer combines and mutates them).
const DICTIONARY: &[&[u8]] = &[
    b"\r\nOK\r\n",
    b"\r\nERROR\r\n",
    b"\r\n> ",
    b">",
    b"\r\n+CMGS: 17\r\n",
    b"\r\n+CMS ERROR: 304\r\n",
    b"\r\n+CMS ERROR: invalid PDU mode parameter\r\n",
    b"\r\n+CME ERROR: 11\r\n",
    b"\r\n+CMTI: \"SM\",3\r\n",
    b"\r\n+CMGR: 0,,30\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n",
    b"\r\n+CMGL: 2,0,,30\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n",
    b"\r\n+CMT: ,30\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n",
    b"\r\n+CDS: 6\r\n00060102030405\r\n",
    b"\r\nRING\r\n",
    b"\r\n+CREG: 1\r\n",
    b"\r\n+CDSI: \"SM\",4\r\n",
    b"AT\r",
    b"\r\n+CPMS: 0,30,0,30,0,30\r\n",
    b"\x00\xff\r\n",
];

/// The longest write the engine may ask for: ESC + the longest command line, or a PDU in hex
/// plus Ctrl-Z.
fn max_write(config: &Config) -> usize {
    let cmd = 16
        + config.new_message_indication.len()
        + config.preferred_storage.as_ref().map_or(0, |s| s.len());
    cmd.max(2 * (ip2p::sms::at::MAX_SMSC_PREFIX + ip2p::sms::at::MAX_TPDU) + 1)
}

#[derive(Default)]
struct Open {
    sends: BTreeSet<u64>,
    inits: u32,
    lists: u32,
}

struct Run {
    at: AtEngine,
    now: Time,
    open: Open,
    max_write: usize,
}

impl Run {
    fn drain(&mut self) {
        let mut n = 0usize;
        while let Some(o) = self.at.poll() {
            n += 1;
            match o {
                Output::Write(w) => {
                    assert!(w.len() <= self.max_write, "write of {} bytes", w.len())
                }
                Output::Event(e) => self.event(e),
            }
        }
        let _ = n;
        assert_eq!(self.at.pending_outputs(), 0);
        let c = self.at.config();
        assert!(
            self.at.buffered() <= c.max_line.max(1),
            "line buffer over max_line"
        );
        // host share (an init counts once but queues up to 6 steps) plus the engine's own share
        assert!(
            self.at.queued() <= 7 * c.max_queue.max(1),
            "queue of {} over its bounds",
            self.at.queued()
        );
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Sent { id, .. } | Event::SendFailed { id, .. } => {
                assert!(
                    self.open.sends.remove(&id.0),
                    "{id} ended twice or was never accepted"
                );
            }
            Event::Ready | Event::InitFailed { .. } => {
                assert!(self.open.inits > 0, "init outcome without an Init");
                self.open.inits -= 1;
            }
            Event::Listed { .. }
            | Event::Failed {
                command: ip2p::sms::at::CommandKind::List,
                ..
            } => {
                assert!(self.open.lists > 0, "list outcome without a ListStored");
                self.open.lists -= 1;
            }
            Event::Received { pdu, .. } | Event::StatusReport { pdu } => {
                // it came from one hex line, so it is bounded by the line cap
                let max = self.at.config().max_line.max(1) / 2;
                assert!(
                    !pdu.is_empty() && pdu.len() <= max,
                    "PDU of {} octets",
                    pdu.len()
                );
            }
            _ => {}
        }
    }

    fn input(&mut self, input: Input) {
        let accepted = match &input {
            Input::Command(c) => Some(c.clone()),
            Input::Bytes(_) => None,
        };
        let r = self.at.handle(self.now, input);
        if let (Ok(()), Some(c)) = (&r, accepted) {
            match c {
                Command::Init => self.open.inits += 1,
                Command::SendPdu { id, .. } => {
                    self.open.sends.insert(id.0);
                }
                Command::ListStored { .. } => self.open.lists += 1,
            }
        }
        // bytes are never rejected
        self.drain();
    }

    fn timeout(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.at.handle_timeout(self.now);
        self.drain();
        if let Some(d) = self.at.poll_timeout() {
            assert!(
                d > self.now,
                "deadline {d} not after now {} after handle_timeout",
                self.now
            );
        }
    }
}

/// Fuzz body: see the [module docs](self).
pub fn sms_at(data: &[u8]) {
    let mut r = Reader { data, pos: 0 };
    let h = |r: &mut Reader<'_>| r.byte().unwrap_or(0);
    let flags = h(&mut r);
    let ms = |b: u8| Duration::from_millis(1 + b as u64 * 5);
    let command_timeout = ms(h(&mut r));
    let config = Config {
        command_timeout,
        // the header has no byte of its own for it
        late_window: command_timeout,
        prompt_timeout: ms(h(&mut r)),
        send_timeout: ms(h(&mut r)),
        retries: h(&mut r) % 4,
        new_message_indication: if flags & 1 == 0 {
            "2,1,0,0,0"
        } else {
            "2,2,0,0,0"
        }
        .into(),
        preferred_storage: (flags & 2 != 0).then(|| "\"SM\",\"SM\",\"SM\"".into()),
        ack_direct: flags & 4 != 0,
        delete_after_read: flags & 8 == 0,
        max_line: [8, 64, 512, 100][(flags >> 4) as usize % 4],
        max_queue: 1 + (flags >> 6) as usize,
    };
    let mut run = Run {
        max_write: max_write(&config),
        at: AtEngine::new(config),
        now: Time::ZERO,
        open: Open::default(),
    };
    let mut next_id = 0u64;
    let mut steps = 0;
    while let Some(op) = r.byte() {
        steps += 1;
        if steps > 2_000 {
            break;
        }
        match op % 10 {
            0 | 1 => {
                let n = h(&mut r) as usize;
                let bytes = r.bytes(n).to_vec();
                run.input(Input::Bytes(bytes));
            }
            2 | 3 => {
                let line = DICTIONARY[h(&mut r) as usize % DICTIONARY.len()];
                // split at an arbitrary point, as a serial read would
                let cut = h(&mut r) as usize % (line.len() + 1);
                run.input(Input::Bytes(line[..cut].to_vec()));
                run.input(Input::Bytes(line[cut..].to_vec()));
            }
            4 => run.input(Input::Command(Command::Init)),
            5 => {
                let smsc = h(&mut r) % 14;
                let tpdu_len = h(&mut r);
                let real = if h(&mut r) & 1 == 0 {
                    tpdu_len as usize
                } else {
                    h(&mut r) as usize
                };
                let mut pdu = vec![smsc];
                pdu.extend(std::iter::repeat(0x11).take(smsc as usize + real));
                next_id += 1;
                run.input(Input::Command(Command::SendPdu {
                    id: SendId(next_id),
                    pdu,
                    tpdu_len,
                }));
            }
            6 => {
                let all = h(&mut r) & 1 == 0;
                run.input(Input::Command(Command::ListStored { all }));
            }
            7 => {
                let dt = Duration::from_millis(h(&mut r) as u64 * 4);
                let t = run.now + dt;
                run.timeout(t);
            }
            8 => {
                if let Some(d) = run.at.poll_timeout() {
                    run.timeout(d);
                }
            }
            _ => {
                // the prompt, possibly split from its space
                run.input(Input::Bytes(b"\r\n>".to_vec()));
                run.input(Input::Bytes(b" ".to_vec()));
            }
        }
    }
    // the modem falls silent: every command must end
    let mut deadlines = 0;
    while let Some(d) = run.at.poll_timeout() {
        deadlines += 1;
        assert!(
            deadlines < 10_000,
            "commands still running after {deadlines} deadlines"
        );
        run.timeout(d);
    }
    assert!(
        run.at.in_flight().is_none() && run.at.queued() == 0,
        "idle without a deadline but work left"
    );
    assert!(
        run.open.sends.is_empty() && run.open.inits == 0 && run.open.lists == 0,
        "commands never ended: sends {:?}, inits {}, lists {}",
        run.open.sends,
        run.open.inits,
        run.open.lists
    );
}

/// Seed scenarios for [`sms_at`], in its byte format.
pub fn sms_at_seeds() -> Vec<(String, Vec<u8>)> {
    // header: flags (bits 4-5: max_line 8/64/512/100), command/prompt/send time-outs
    // (x5 ms + 1), retries
    let head = |flags: u8| vec![flags, 20, 10, 60, 2];
    let ok = [2, 0, 3];
    let mut out = Vec::new();
    // init (echo on), answered, then a send with prompt, +CMGS and OK
    let mut s = head(0x20);
    s.extend([4]);
    s.extend([0, 3, b'A', b'T', b'\r']);
    for _ in 0..5 {
        s.extend(ok);
    }
    s.extend([5, 0, 13, 0]); // send: no SMSC, 13-octet TPDU
    s.extend([9]); // prompt
    s.extend([2, 4, 5, 2, 0, 2]); // +CMGS then OK
    out.push(("init-send".into(), s));
    // URC before the prompt, then a prompt that never comes
    let mut s = head(0x20);
    s.extend([5, 0, 20, 0]);
    s.extend([2, 8, 7]); // +CMTI
    s.extend([7, 255, 7, 255, 8]); // time passes
    s.extend([2, 9, 40, 2, 0, 2]); // +CMGR then OK
    out.push(("urc-no-prompt".into(), s));
    // garbage, an endless line, CMS errors, list
    let mut s = head(0x10);
    s.extend([0, 12, 0, 0xff, 0xfe, b'x', b'\r', 0, 1, 2, 3, 4, 5, 6]);
    s.extend([1, 200]);
    s.extend(std::iter::repeat(b'Z').take(200));
    s.extend([6, 0, 2, 10, 5, 2, 0, 3]); // list, +CMGL, OK
    s.extend([5, 3, 9, 0, 2, 5, 60]); // send, CMS 304
    s.extend([5, 0, 9, 1, 4]); // send with a bad length (rejected)
    out.push(("garbage-list-errors".into(), s));
    // direct +CMT with ack, status report, init failing on CME
    let mut s = head(0x25);
    s.extend([2, 11, 20, 2, 12, 3, 4, 3, 0, 3, 7, 3]);
    s.extend([8, 8, 8, 8]);
    out.push(("cmt-ack-cme".into(), s));
    out
}
