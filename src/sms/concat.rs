//! Splitting long messages into concatenated parts, and a sans-IO [`Reassembler`] that puts
//! received parts back together.
//!
//! Per-part capacities (TS 23.040 §9.2.3.24.1):
//!
//! | header (octets, UDHL included) | GSM-7 septets | 8-bit / UCS-2 octets |
//! |------|------|------|
//! | none | 160 | 140 |
//! | 8-bit concatenation (6) | 153 | 134 |
//! | 16-bit ports (7), or 16-bit concatenation (7) | 152 | 133 |
//! | 16-bit ports + 8-bit concatenation (12) | 146 | 128 |
//! | 16-bit ports + 16-bit concatenation (13) | 145 | 127 |
//!
//! A GSM-7 escape pair and a UTF-16 surrogate pair are never split across parts.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::address::Address;
use super::gsm7::{self, Alphabet};
use super::pdu::{Dcs, Deliver, PduError, Submit, UserData, MAX_UD_OCTETS, MAX_UD_SEPTETS};
use super::udh::{Ie, Udh};
use crate::machine::Machine;
use crate::time::Time;

/// Most parts a concatenated message can have (the total is one octet).
pub const MAX_TOTAL_PARTS: usize = 255;

fn concat_ie(reference: u16, total: u8, seq: u8) -> Ie {
    match u8::try_from(reference) {
        Ok(r) => Ie::Concat8 {
            reference: r,
            total,
            seq,
        },
        Err(_) => Ie::Concat16 {
            reference,
            total,
            seq,
        },
    }
}

/// Split `body` (already in `dcs`'s alphabet: septets or octets) into SUBMITs to `to`, with
/// `ports` as a 16-bit port header on every part. `reference` below 256 gives 8-bit concatenation
/// headers, above 255 16-bit ones. `cut` says where a part may end (never inside an escape or
/// surrogate pair).
fn split_body(
    to: &Address,
    dcs: Dcs,
    body: &[u8],
    ports: Option<(u16, u16)>,
    reference: u16,
    cut: impl Fn(&[u8], usize) -> usize,
) -> Result<Vec<Submit>, PduError> {
    let alphabet = dcs.alphabet()?;
    let mut base = Vec::new();
    if let Some((dst, src)) = ports {
        base.push(Ie::Ports16 { dst, src });
    }
    let cap = |ies: &[Ie]| {
        let h = Udh { ies: ies.to_vec() };
        let has = !ies.is_empty();
        match alphabet {
            Alphabet::Gsm7 => MAX_UD_SEPTETS - if has { h.septets() } else { 0 },
            _ => MAX_UD_OCTETS - if has { h.len() } else { 0 },
        }
    };
    let header = |ies: Vec<Ie>| (!ies.is_empty()).then_some(Udh { ies });
    // one part?
    if body.len() <= cap(&base) {
        let ud = UserData {
            header: header(base),
            body: body.to_vec(),
        };
        return Ok(alloc::vec![Submit::new(to.clone(), dcs, ud)]);
    }
    let mut with = base.clone();
    with.push(concat_ie(reference, 0, 0));
    let per = cap(&with);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let end = cut(body, (at + per).min(body.len()));
        let end = if end <= at {
            (at + per).min(body.len())
        } else {
            end
        };
        chunks.push(&body[at..end]);
        at = end;
    }
    let total = u8::try_from(chunks.len()).map_err(|_| PduError::UserDataTooLong {
        len: body.len(),
        unit: if alphabet == Alphabet::Gsm7 {
            "septets"
        } else {
            "octets"
        },
        max: per * MAX_TOTAL_PARTS,
    })?;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut ies = base.clone();
            ies.push(concat_ie(reference, total, i as u8 + 1));
            Submit::new(
                to.clone(),
                dcs,
                UserData {
                    header: header(ies),
                    body: c.to_vec(),
                },
            )
        })
        .collect())
}

fn no_cut(_: &[u8], end: usize) -> usize {
    end
}

/// Split 8-bit `payload` into SUBMITs to application port `dst_port` (from `src_port`): one part
/// if it fits 133 octets, else parts of 128 octets with concatenation headers (reference below
/// 256: 8-bit, else 16-bit). At most 255 parts.
pub fn split_data(
    to: &Address,
    ports: Option<(u16, u16)>,
    payload: &[u8],
    reference: u16,
) -> Result<Vec<Submit>, PduError> {
    split_body(to, Dcs::DATA8, payload, ports, reference, no_cut)
}

/// Split `text` into SUBMITs: GSM-7 if every character maps (160 / 153 septets a part), else
/// UCS-2 (70 / 67 characters a part).
pub fn split_text(
    to: &Address,
    text: &str,
    ports: Option<(u16, u16)>,
    reference: u16,
) -> Result<Vec<Submit>, PduError> {
    let (dcs, ud) = UserData::text(text);
    if dcs == Dcs::GSM7 {
        // never end a part just after an escape
        split_body(to, dcs, &ud.body, ports, reference, |b, end| {
            if end < b.len() && end > 0 && b[end - 1] == gsm7::ESC && !escaped(b, end - 1) {
                end - 1
            } else {
                end
            }
        })
    } else {
        // never end a part between a high and a low surrogate
        split_body(to, dcs, &ud.body, ports, reference, |b, end| {
            if end < b.len() && end >= 2 && (0xD8..=0xDB).contains(&b[end - 2]) {
                end - 2
            } else {
                end
            }
        })
    }
}

/// Whether the septet at `i` is itself the code of an escape pair (an odd run of escapes before it).
fn escaped(b: &[u8], i: usize) -> bool {
    b[..i].iter().rev().take_while(|&&s| s == gsm7::ESC).count() % 2 == 1
}

/// A message body: text (GSM-7 or UCS-2) or 8-bit data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// Text.
    Text(String),
    /// 8-bit data.
    Bytes(Vec<u8>),
}

/// A complete message, from one part or many.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// The originator (TP-OA).
    pub from: Address,
    /// Application ports `(destination, originator)`, if the message had a port header.
    pub ports: Option<(u16, u16)>,
    /// The body, parts joined.
    pub body: Body,
}

/// What identifies the parts of one concatenated message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartsKey {
    /// The originator.
    pub from: Address,
    /// The concatenation reference (8-bit references widened).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// Application ports, if any.
    pub ports: Option<(u16, u16)>,
}

/// What the reassembler reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A message is complete.
    Complete(Message),
    /// A partial message timed out: these parts (numbers from 1) never arrived.
    Expired {
        /// Which message.
        key: PartsKey,
        /// The missing part numbers.
        missing: Vec<u8>,
    },
    /// A partial message was dropped to make room for a newer one (the limit
    /// [`Config::max_partial`] was reached): these parts never arrived.
    Evicted {
        /// Which message.
        key: PartsKey,
        /// The missing part numbers.
        missing: Vec<u8>,
    },
}

/// Why a part was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// The part's sequence number is 0 or above the total (TS 23.040: ignore the element).
    #[error("part {seq} of {total} is out of range")]
    BadSequence {
        /// The sequence number.
        seq: u8,
        /// The total.
        total: u8,
    },
    /// More parts than [`Config::max_parts`] allows.
    #[error("message of {total} parts is over the limit of {max}")]
    TooManyParts {
        /// The total announced.
        total: u8,
        /// The limit.
        max: u8,
    },
    /// The part's DCS cannot be read.
    #[error(transparent)]
    Pdu(#[from] PduError),
    /// A part with another alphabet than the parts before it.
    #[error("part {seq} is in another alphabet than the earlier parts")]
    MixedAlphabets {
        /// The part's sequence number.
        seq: u8,
    },
    /// A part already received, with other contents.
    #[error("part {seq} received twice with different contents")]
    Conflict {
        /// The sequence number.
        seq: u8,
    },
}

/// Limits and time-out of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Most messages being reassembled at once; the oldest is evicted (with an event) for a new one.
    pub max_partial: usize,
    /// Most parts a message may announce (bounds memory: at most
    /// `max_partial × max_parts × 140` octets of bodies).
    pub max_parts: u8,
    /// How long after its first part a message may take to complete.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_partial: 16,
            max_parts: 16,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Partial {
    key: PartsKey,
    alphabet: Alphabet,
    started: Time,
    deadline: Time,
    parts: Vec<Option<Vec<u8>>>,
}

impl Partial {
    fn missing(&self) -> Vec<u8> {
        (1..=self.parts.len())
            .filter(|&i| self.parts[i - 1].is_none())
            .map(|i| i as u8)
            .collect()
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Parts accepted (duplicates excluded).
    pub parts: u64,
    /// Exact duplicates ignored (of a partial or a recently completed message).
    pub duplicates: u64,
    /// Parts rejected with an error.
    pub rejected: u64,
    /// Messages completed.
    pub completed: u64,
    /// Messages expired.
    pub expired: u64,
    /// Messages evicted.
    pub evicted: u64,
}

/// Reassembles concatenated SMS-DELIVERs, sans-IO.
///
/// Input: a received [`Deliver`]. Output: [`Event`]s. Parts may come in any order; an exact
/// duplicate is ignored, also shortly after its message completed (the last
/// [`Config::max_partial`] completed messages are remembered). A message is keyed by
/// [`PartsKey`] (originator, reference, total, ports). A message of one part, or without a
/// concatenation header, completes at once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reassembler {
    config: Config,
    partial: Vec<Partial>,
    recent: VecDeque<(PartsKey, Vec<Vec<u8>>)>,
    out: VecDeque<Event>,
    stats: Stats,
}

impl Reassembler {
    /// An empty reassembler. A `max_partial` of 0 is taken as 1.
    pub fn new(mut config: Config) -> Self {
        config.max_partial = config.max_partial.max(1);
        Reassembler {
            config,
            partial: Vec::new(),
            recent: VecDeque::new(),
            out: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Messages being reassembled now.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    fn finish(
        from: Address,
        ports: Option<(u16, u16)>,
        alphabet: Alphabet,
        body: Vec<u8>,
    ) -> Message {
        let body = match alphabet {
            Alphabet::Data8 => Body::Bytes(body),
            Alphabet::Gsm7 => Body::Text(gsm7::decode(&body)),
            Alphabet::Ucs2 => Body::Text(gsm7::ucs2_decode(&body)),
        };
        Message { from, ports, body }
    }

    fn accept(&mut self, now: Time, d: Deliver) -> Result<(), ReassemblyError> {
        let alphabet = d.dcs.alphabet()?;
        let header = d.ud.header.as_ref();
        let ports = header.and_then(Udh::ports);
        let concat = header.and_then(Udh::concat);
        // no concatenation header, or "part 1 of 1": complete at once
        let Some(c) = concat.filter(|c| c.total != 1 || c.seq != 1) else {
            self.stats.parts += 1;
            self.stats.completed += 1;
            self.out.push_back(Event::Complete(Self::finish(
                d.from, ports, alphabet, d.ud.body,
            )));
            return Ok(());
        };
        if c.seq == 0 || c.seq > c.total {
            return Err(ReassemblyError::BadSequence {
                seq: c.seq,
                total: c.total,
            });
        }
        if c.total > self.config.max_parts {
            return Err(ReassemblyError::TooManyParts {
                total: c.total,
                max: self.config.max_parts,
            });
        }
        let key = PartsKey {
            from: d.from,
            reference: c.reference,
            total: c.total,
            ports,
        };
        let i = c.seq as usize - 1;
        let body = d.ud.body;
        if let Some((_, bodies)) = self.recent.iter().find(|(k, _)| *k == key) {
            if bodies.get(i) == Some(&body) {
                self.stats.duplicates += 1;
                return Ok(());
            }
        }
        let idx = match self.partial.iter().position(|p| p.key == key) {
            Some(idx) => idx,
            None => {
                if self.partial.len() >= self.config.max_partial {
                    // the oldest goes (by start time, then arrival order)
                    let (o, _) = self
                        .partial
                        .iter()
                        .enumerate()
                        .min_by_key(|(j, p)| (p.started, *j))
                        .unwrap_or((0, &self.partial[0]));
                    let p = self.partial.remove(o);
                    self.stats.evicted += 1;
                    self.out.push_back(Event::Evicted {
                        missing: p.missing(),
                        key: p.key,
                    });
                }
                self.partial.push(Partial {
                    key,
                    alphabet,
                    started: now,
                    deadline: now + self.config.timeout,
                    parts: alloc::vec![None; c.total as usize],
                });
                self.partial.len() - 1
            }
        };
        let p = &mut self.partial[idx];
        if p.alphabet != alphabet {
            return Err(ReassemblyError::MixedAlphabets { seq: c.seq });
        }
        match &p.parts[i] {
            Some(b) if *b == body => {
                self.stats.duplicates += 1;
                return Ok(());
            }
            Some(_) => return Err(ReassemblyError::Conflict { seq: c.seq }),
            None => p.parts[i] = Some(body),
        }
        self.stats.parts += 1;
        if p.parts.iter().all(Option::is_some) {
            let p = self.partial.remove(idx);
            let bodies: Vec<Vec<u8>> = p.parts.into_iter().flatten().collect();
            let joined = bodies.concat();
            if self.recent.len() >= self.config.max_partial {
                self.recent.pop_front();
            }
            self.recent.push_back((p.key.clone(), bodies));
            self.stats.completed += 1;
            self.out.push_back(Event::Complete(Self::finish(
                p.key.from,
                p.key.ports,
                p.alphabet,
                joined,
            )));
        }
        Ok(())
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Machine for Reassembler {
    type Input = Deliver;
    type Output = Event;
    type Error = ReassemblyError;

    fn handle(&mut self, now: Time, input: Deliver) -> Result<(), ReassemblyError> {
        let r = self.accept(now, input);
        if r.is_err() {
            self.stats.rejected += 1;
        }
        r
    }

    fn poll(&mut self) -> Option<Event> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.partial.iter().map(|p| p.deadline).min()
    }

    fn handle_timeout(&mut self, now: Time) {
        let mut i = 0;
        while i < self.partial.len() {
            if self.partial[i].deadline <= now {
                let p = self.partial.remove(i);
                self.stats.expired += 1;
                self.out.push_back(Event::Expired {
                    missing: p.missing(),
                    key: p.key,
                });
            } else {
                i += 1;
            }
        }
    }
}
