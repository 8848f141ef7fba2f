//! The SAMP mobile node (MN): anchor discovery, home registration, hierarchical registration,
//! and the user agent that answers calls at its care-of address.
//!
//! On a new care-of address ([`Input::Attached`]):
//!
//! - with HR and an anchor already chosen, the MN re-registers with the anchor only
//!   (`REGISTER sip:<anchor>`); an answer within δ keeps the anchor ([`AfterMove::KeepAnchor`]);
//!   a slow answer or none re-anchors;
//! - otherwise it sends `REGISTER sip:sip.mcast.net` to the SIP multicast group, gathers the
//!   answers for `gather` time, draws an anchor with [`choose_anchor`], confirms it with `ACK`, and
//!   registers with its home — the owner of H(home URI) on the ring — through the anchor, naming
//!   the anchor in `Contact` (HR) or its care-of address (no HR).
//!
//! It answers every `INVITE` reaching its current care-of address with `200 OK` naming that
//! address, and during a call re-INVITEs the correspondent after a move (mid-session mobility).

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::anchor::{after_move, choose_anchor, AfterMove, Answer};
use super::server::{ip_host, uri_addr, via_addr, Aor, MCAST_GROUP, MCAST_HOST};
use crate::machine::Machine;
use crate::sip::{Contact, Message, Method, NameAddr, Request, Response, SipUri, Via};
use crate::time::Time;
use crate::TransportAddr;

/// Tunables of a mobile node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MobileConfig {
    /// The response-time threshold δ (the application's tolerable hand-off delay, typically
    /// 30–50 ms for telephony).
    pub delta: Duration,
    /// Use hierarchical registration.
    pub hr: bool,
    /// How long discovery answers are gathered.
    pub gather: Duration,
    /// How long a home registration may take before it has failed.
    pub register_timeout: Duration,
    /// The registration lifetime asked for, in seconds.
    pub expires: u32,
    /// With HR, tell the home about a new anchor. Always `true` but in the model's variant that
    /// shows why it is needed.
    pub update_home_on_reanchor: bool,
}

impl Default for MobileConfig {
    fn default() -> Self {
        MobileConfig {
            delta: Duration::from_millis(50),
            hr: true,
            gather: Duration::from_millis(200),
            register_timeout: Duration::from_secs(4),
            expires: 3_600,
            update_home_on_reanchor: true,
        }
    }
}

/// What comes into a mobile node.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// The MN has a new care-of address (entered a subnet). `random` draws the anchor.
    Attached {
        /// The new address.
        coa: TransportAddr,
        /// 64 random bits.
        random: u64,
    },
    /// A SIP message arrived.
    Sip {
        /// The sender.
        from: TransportAddr,
        /// The message.
        msg: Message,
    },
}

/// What a mobile node asks its host to do.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send a SIP message from the current care-of address.
    Sip {
        /// The destination (the multicast group for discovery).
        to: TransportAddr,
        /// The message.
        msg: Message,
    },
    /// Tell the application.
    Event(Event),
}

/// How a registration went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Registration {
    /// HR: the anchor alone took the new address.
    Local,
    /// The home server took it (through the anchor).
    Home,
}

/// What a mobile node tells its application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Registered at `coa` with `anchor`.
    Registered {
        /// The care-of address registered.
        coa: TransportAddr,
        /// The anchor.
        anchor: TransportAddr,
        /// Where the registration ended.
        how: Registration,
    },
    /// No SIP server answered the discovery.
    NoAnchor,
    /// The home registration failed (`None`: no answer in time).
    RegisterFailed {
        /// The final status, if one came.
        code: Option<u16>,
    },
    /// A call arrived and was answered.
    Answered {
        /// The caller.
        from: Aor,
        /// Its Call-ID.
        call_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Idle,
    /// Gathering discovery answers until `until`.
    Discovering {
        sent: Time,
        until: Time,
        call_id: String,
    },
    /// HR: waiting for the anchor's answer to the REGISTER with this CSeq.
    Local {
        sent: Time,
        call_id: String,
        cseq: u32,
    },
    /// Waiting for the home registration's answer (the REGISTER with this CSeq).
    Home {
        until: Time,
        call_id: String,
        cseq: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Call {
    call_id: String,
    peer: TransportAddr,
    local: NameAddr,
    remote: NameAddr,
}

/// A SAMP mobile node (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MobileNode {
    config: MobileConfig,
    aor: SipUri,
    coa: Option<TransportAddr>,
    anchor: Option<TransportAddr>,
    phase: Phase,
    answers: Vec<Answer<TransportAddr>>,
    random: u64,
    cseq: u32,
    calls: Vec<Call>,
    registered_home: bool,
    reg_call_id: Option<String>,
    out: VecDeque<Output>,
}

/// Calls an MN keeps for mid-session moves, at most.
const MAX_CALLS: usize = 16;
/// Discovery answers kept, at most.
const MAX_ANSWERS: usize = 64;

impl MobileNode {
    /// An MN whose home URI is `aor`.
    pub fn new(aor: SipUri, config: MobileConfig) -> Self {
        MobileNode {
            config,
            aor,
            coa: None,
            anchor: None,
            phase: Phase::Idle,
            answers: Vec::new(),
            random: 0,
            cseq: 0,
            calls: Vec::new(),
            registered_home: false,
            reg_call_id: None,
            out: VecDeque::new(),
        }
    }

    /// The current anchor.
    pub fn anchor(&self) -> Option<TransportAddr> {
        self.anchor
    }

    /// The current care-of address.
    pub fn coa(&self) -> Option<TransportAddr> {
        self.coa
    }

    /// No registration is under way.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    fn on_attached(&mut self, now: Time, coa: TransportAddr, random: u64) {
        self.coa = Some(coa);
        self.random = random;
        match self.anchor {
            Some(anchor) if self.config.hr => {
                let call_id = self.reg_call_id();
                let mut uri = SipUri::new(ip_host(anchor.0.ip()));
                uri.port = Some(anchor.0.port());
                let req = self.register(uri, coa, &call_id);
                self.send(anchor, req);
                self.phase = Phase::Local {
                    sent: now,
                    call_id,
                    cseq: self.cseq,
                };
            }
            _ => self.discover(now),
        }
        self.reinvite_calls();
    }

    /// The anchor is too slow: discover a new one (the old one is told to forget us once the
    /// new one is chosen, see [`Self::leave_anchor`]).
    fn reanchor(&mut self, now: Time) {
        self.discover(now);
    }

    /// We chose `new` as anchor: tell the previous one, if another, to forget us (best effort:
    /// it may be unreachable, and its binding then lapses at its expiry; the home also drops a
    /// stale anchor binding it holds itself). Told only now, not when the move began, so that a
    /// de-registration can never reach a server we choose again and undo its fresh binding.
    fn leave_anchor(&mut self, old: Option<TransportAddr>, new: Option<TransportAddr>) {
        let (Some(old), Some(coa)) = (old, self.coa) else {
            return;
        };
        if Some(old) == new {
            return;
        }
        let call_id = self.reg_call_id();
        let mut uri = SipUri::new(ip_host(old.0.ip()));
        uri.port = Some(old.0.port());
        let mut req = self.register(uri, coa, &call_id);
        req.headers.contact = Some(Contact::Star);
        req.headers.expires = Some(0);
        self.send(old, req);
    }

    fn discover(&mut self, now: Time) {
        let Some(coa) = self.coa else { return };
        self.answers.clear();
        let call_id = self.call_id("disc");
        let req = self.register(SipUri::new(MCAST_HOST), coa, &call_id);
        self.send(MCAST_GROUP, req);
        self.phase = Phase::Discovering {
            sent: now,
            until: now + self.config.gather,
            call_id,
        };
    }

    fn choose(&mut self, now: Time) {
        let Phase::Discovering { call_id, .. } = &self.phase else {
            return;
        };
        let disc_id = call_id.clone();
        let Some(anchor) = choose_anchor(&self.answers, self.config.delta, self.random) else {
            let old = self.anchor.take();
            self.leave_anchor(old, None);
            self.phase = Phase::Idle;
            self.out.push_back(Output::Event(Event::NoAnchor));
            return;
        };
        let Some(coa) = self.coa else { return };
        let old = self.anchor.replace(anchor);
        // confirm the choice: ACK to the chosen server, in the discovery's dialog
        let mut ack = self.register(SipUri::new(MCAST_HOST), coa, &disc_id);
        ack.method = Method::Ack;
        if let Some(c) = &mut ack.headers.cseq {
            c.method = Method::Ack;
        }
        ack.headers.contact = None;
        ack.headers.expires = None;
        self.send(anchor, ack);
        self.leave_anchor(old, Some(anchor));
        if self.registered_home && self.config.hr && !self.config.update_home_on_reanchor {
            // the model's bug variant: the home keeps pointing at the old anchor
            self.phase = Phase::Idle;
            self.out.push_back(Output::Event(Event::Registered {
                coa,
                anchor,
                how: Registration::Local,
            }));
            return;
        }
        // home registration through the anchor
        let call_id = self.reg_call_id();
        let home = SipUri::new(&self.aor.host);
        let contact = if self.config.hr { anchor } else { coa };
        let req = self.register(home, contact, &call_id);
        self.send(anchor, req);
        self.phase = Phase::Home {
            until: now + self.config.register_timeout,
            call_id,
            cseq: self.cseq,
        };
    }

    fn on_response(&mut self, now: Time, from: TransportAddr, resp: Response) {
        let call_id = resp.headers.call_id.as_deref().unwrap_or("");
        let resp_cseq = resp.headers.cseq.as_ref().map(|c| c.seq);
        match &self.phase {
            Phase::Discovering {
                sent, call_id: c, ..
            } if *c == call_id && resp.code == 200 && self.answers.len() < MAX_ANSWERS => {
                let response_time = now.saturating_since(*sent);
                if !self.answers.iter().any(|a| a.server == from) {
                    self.answers.push(Answer {
                        server: from,
                        response_time,
                    });
                }
            }
            Phase::Local {
                sent,
                call_id: c,
                cseq,
            } if *c == call_id && resp_cseq == Some(*cseq) && resp.code >= 200 => {
                let rt = now.saturating_since(*sent);
                let ok = resp.code < 300;
                let decision = after_move(ok.then_some(rt), self.config.delta);
                match (decision, self.anchor, self.coa) {
                    (AfterMove::KeepAnchor, Some(anchor), Some(coa)) => {
                        self.phase = Phase::Idle;
                        self.out.push_back(Output::Event(Event::Registered {
                            coa,
                            anchor,
                            how: Registration::Local,
                        }));
                    }
                    _ => self.reanchor(now),
                }
            }
            Phase::Home {
                call_id: c, cseq, ..
            } if *c == call_id && resp_cseq == Some(*cseq) && resp.code >= 200 => {
                self.phase = Phase::Idle;
                match (resp.code, self.anchor, self.coa) {
                    (200..=299, Some(anchor), Some(coa)) => {
                        self.registered_home = true;
                        self.out.push_back(Output::Event(Event::Registered {
                            coa,
                            anchor,
                            how: Registration::Home,
                        }))
                    }
                    (code, _, _) => {
                        self.anchor = None;
                        self.out
                            .push_back(Output::Event(Event::RegisterFailed { code: Some(code) }))
                    }
                }
            }
            _ => {}
        }
    }

    fn on_request(&mut self, from: TransportAddr, req: Request) {
        let Some(coa) = self.coa else { return };
        let for_us = Aor::of(&req.uri) == Aor::of(&self.aor)
            || (uri_addr(&req.uri) == Some(coa) && req.uri.user == self.aor.user);
        if !for_us && req.method != Method::Ack {
            // an address we hold now may be in someone's stale cache for its earlier owner:
            // never answer a call for another user
            let resp = Response::to(&req, 404, "Not Found").with_to_tag("nf");
            let back = resp.headers.vias.first().and_then(via_addr).unwrap_or(from);
            self.out.push_back(Output::Sip {
                to: back,
                msg: Message::Response(resp),
            });
            return;
        }
        match req.method {
            Method::Invite => {
                let mut me = SipUri::new(ip_host(coa.0.ip()));
                me.port = Some(coa.0.port());
                me.user = self.aor.user.clone();
                let call_id = req.headers.call_id.clone().unwrap_or_default();
                let tag = format!("mn{}", self.cseq);
                let resp = Response::to(&req, 200, "OK")
                    .with_to_tag(tag)
                    .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(me)]));
                let caller = req.headers.from.clone();
                let to = resp.headers.to.clone();
                let back = resp.headers.vias.first().and_then(via_addr).unwrap_or(from);
                self.out.push_back(Output::Sip {
                    to: back,
                    msg: Message::Response(resp),
                });
                if let (Some(remote), Some(local)) = (caller, to) {
                    let peer = match &req.headers.contact {
                        Some(Contact::Addrs(l)) => l.first().and_then(|c| uri_addr(&c.uri)),
                        _ => None,
                    }
                    .unwrap_or(from);
                    self.out.push_back(Output::Event(Event::Answered {
                        from: Aor::of(&remote.uri),
                        call_id: call_id.clone(),
                    }));
                    if !self.calls.iter().any(|c| c.call_id == call_id) {
                        if self.calls.len() >= MAX_CALLS {
                            self.calls.remove(0);
                        }
                        self.calls.push(Call {
                            call_id,
                            peer,
                            local,
                            remote,
                        });
                    }
                }
            }
            Method::Bye => {
                let call_id = req.headers.call_id.clone().unwrap_or_default();
                self.calls.retain(|c| c.call_id != call_id);
                let resp = Response::to(&req, 200, "OK");
                let back = resp.headers.vias.first().and_then(via_addr).unwrap_or(from);
                self.out.push_back(Output::Sip {
                    to: back,
                    msg: Message::Response(resp),
                });
            }
            _ => {}
        }
    }

    /// Mid-session mobility: tell every correspondent in a call where the MN is now.
    fn reinvite_calls(&mut self) {
        let Some(coa) = self.coa else { return };
        let calls = self.calls.clone();
        for c in calls {
            self.cseq += 1;
            let mut me = SipUri::new(ip_host(coa.0.ip()));
            me.port = Some(coa.0.port());
            me.user = self.aor.user.clone();
            let req = Request::new(Method::Invite, c.remote.uri.clone())
                .with_via(self.via(coa))
                .with_from(c.local.clone())
                .with_to(c.remote.clone())
                .with_call_id(&c.call_id)
                .with_cseq(self.cseq)
                .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(me)]))
                .with_max_forwards(70);
            self.send(c.peer, req);
        }
    }

    fn register(&mut self, uri: SipUri, contact: TransportAddr, call_id: &str) -> Request {
        self.cseq += 1;
        let coa = self.coa.unwrap_or(contact);
        let mut c = SipUri::new(ip_host(contact.0.ip()));
        c.port = Some(contact.0.port());
        let mut from = NameAddr::new(self.aor.clone());
        from.set_tag(format!("mn{}", self.cseq));
        Request::new(Method::Register, uri)
            .with_via(self.via(coa))
            .with_from(from)
            .with_to(NameAddr::new(self.aor.clone()))
            .with_call_id(call_id)
            .with_cseq(self.cseq)
            .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(c)]))
            .with_expires(self.config.expires)
            .with_max_forwards(70)
    }

    fn via(&self, coa: TransportAddr) -> Via {
        let branch = format!("z9hG4bKmn{:x}{}", self.random & 0xffff_ffff, self.cseq);
        Via::udp(ip_host(coa.0.ip()), Some(coa.0.port()), branch)
    }

    /// The one Call-ID of all our registrations (discovery aside), so that a registrar can
    /// tell a late REGISTER from a newer one by its CSeq (RFC 3261 §10.2, §10.3 step 7). Made
    /// from the first draw, kept for the MN's life.
    fn reg_call_id(&mut self) -> String {
        if self.reg_call_id.is_none() {
            self.reg_call_id = Some(format!("reg-{:x}@{}", self.random, self.aor.host));
        }
        self.reg_call_id.clone().unwrap_or_default()
    }

    fn call_id(&self, what: &str) -> String {
        format!("{what}-{:x}-{}@{}", self.random, self.cseq, self.aor.host)
    }

    fn send(&mut self, to: TransportAddr, req: Request) {
        self.out.push_back(Output::Sip {
            to,
            msg: Message::Request(req),
        });
    }
}

impl Machine for MobileNode {
    type Input = Input;
    type Output = Output;
    type Error = core::convert::Infallible;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), Self::Error> {
        match input {
            Input::Attached { coa, random } => self.on_attached(now, coa, random),
            Input::Sip {
                from,
                msg: Message::Response(r),
            } => self.on_response(now, from, r),
            Input::Sip {
                from,
                msg: Message::Request(r),
            } => self.on_request(from, r),
        }
        Ok(())
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        match &self.phase {
            Phase::Idle => None,
            Phase::Discovering { until, .. } => Some(*until),
            Phase::Local { sent, .. } => Some(*sent + self.config.delta + Duration::from_millis(1)),
            Phase::Home { until, .. } => Some(*until),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self.poll_timeout() {
            Some(t) if t <= now => {}
            _ => return,
        }
        match &self.phase {
            Phase::Idle => {}
            Phase::Discovering { .. } => self.choose(now),
            // the anchor did not answer within δ: re-anchor
            Phase::Local { .. } => self.reanchor(now),
            Phase::Home { .. } => {
                self.phase = Phase::Idle;
                self.anchor = None;
                self.out
                    .push_back(Output::Event(Event::RegisterFailed { code: None }));
            }
        }
    }
}
