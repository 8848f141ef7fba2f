//! The SAMP correspondent node (CN), the caller, with two-tier caching (TTC) phase I.
//!
//! A call ([`Input::Call`]) first looks in the CN's own cache: with a live entry for the callee
//! the `INVITE` goes straight to the cached care-of address (phase I) and waits `direct_timeout`.
//! With no entry, or no answer in time (the MN has moved: the entry is dropped), the `INVITE` goes
//! to the CN's anchor (phase II happens there: its cache, then the overlay). In RR mode a `302`
//! is followed to the address it names. A `2xx` establishes the call, fills the cache with the
//! callee's `Contact`, and is acknowledged end to end; any other final answer, or none within
//! `call_timeout`, fails the call with its reason. Every call ends one way or the other.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use core::time::Duration;

use super::bindings::{Bindings, WhenFull};
use super::server::{ip_host, uri_addr, Aor, BYPASS_CACHE, BYPASS_VALUE};
use crate::machine::Machine;
use crate::sip::{Contact, Message, Method, NameAddr, Request, Response, SipUri, Via};
use crate::time::Time;
use crate::TransportAddr;

/// Tunables of a correspondent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CorrespondentConfig {
    /// Use the phase I cache.
    pub ttc: bool,
    /// Cache entries held at most.
    pub cache_entries: usize,
    /// How long a cached care-of address is trusted.
    pub cache_lifetime: Duration,
    /// How long a direct (phase I) INVITE waits before falling back to the anchor.
    pub direct_timeout: Duration,
    /// How long a call may take through the overlay before it has failed.
    pub call_timeout: Duration,
    /// Redirections followed at most per call (RR mode).
    pub max_redirects: u8,
    /// Calls in progress at most.
    pub max_calls: usize,
}

impl Default for CorrespondentConfig {
    fn default() -> Self {
        CorrespondentConfig {
            ttc: true,
            cache_entries: 1_024,
            cache_lifetime: Duration::from_secs(30),
            direct_timeout: Duration::from_millis(500),
            call_timeout: Duration::from_secs(8),
            max_redirects: 3,
            max_calls: 64,
        }
    }
}

/// A caller-chosen handle for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// What comes into a correspondent.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Call `callee` (its home URI).
    Call {
        /// The handle echoed in the call's events.
        call: CallId,
        /// The callee's home URI.
        callee: SipUri,
    },
    /// A SIP message arrived.
    Sip {
        /// The sender.
        from: TransportAddr,
        /// The message.
        msg: Message,
    },
}

/// What a correspondent asks its host to do.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send a SIP message.
    Sip {
        /// The destination.
        to: TransportAddr,
        /// The message.
        msg: Message,
    },
    /// Tell the application.
    Event(Event),
}

/// How a call reached the callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Phase I: straight to the cached care-of address.
    Direct,
    /// Through the CN's anchor (its cache, or the overlay).
    Anchor,
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallFailure {
    /// A final status other than 2xx (404: nobody registered, 408: lookup failed, 483 …).
    Status(u16),
    /// No final answer in time.
    Timeout,
    /// Too many redirections.
    TooManyRedirects,
    /// Too many calls in progress.
    Busy,
}

/// What a correspondent tells its application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The callee answered at `at`.
    Established {
        /// The call.
        call: CallId,
        /// The dialog's SIP Call-ID.
        call_id: String,
        /// The callee's care-of address (its `Contact`).
        at: TransportAddr,
        /// How the INVITE got there.
        path: Path,
    },
    /// The call failed.
    Failed {
        /// The call.
        call: CallId,
        /// Why.
        reason: CallFailure,
    },
    /// The phase I entry did not answer; the call goes through the anchor.
    FellBack {
        /// The call.
        call: CallId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pending {
    callee: SipUri,
    /// The Request-URI: the callee's AOR, or the target a `302` named.
    target: SipUri,
    call_id: String,
    path: Path,
    until: Time,
    redirects: u8,
    cseq: u32,
    /// Phase I failed: the anchor must not answer from its cache either.
    bypass: bool,
}

/// A SAMP correspondent node (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Correspondent {
    config: CorrespondentConfig,
    me: SipUri,
    addr: TransportAddr,
    anchor: TransportAddr,
    cache: Bindings<Aor, TransportAddr>,
    calls: BTreeMap<CallId, Pending>,
    cseq: u32,
    out: VecDeque<Output>,
}

impl Correspondent {
    /// A correspondent `me` at `addr` whose anchor is `anchor`.
    pub fn new(
        me: SipUri,
        addr: TransportAddr,
        anchor: TransportAddr,
        config: CorrespondentConfig,
    ) -> Self {
        Correspondent {
            cache: Bindings::new(config.cache_entries, WhenFull::EvictSoonest),
            config,
            me,
            addr,
            anchor,
            calls: BTreeMap::new(),
            cseq: 0,
            out: VecDeque::new(),
        }
    }

    /// The phase I entry for `callee`.
    pub fn cached(&self, now: Time, callee: &Aor) -> Option<TransportAddr> {
        self.cache.get(now, callee).copied()
    }

    /// Calls in progress.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// A new anchor (the CN moved).
    pub fn set_anchor(&mut self, anchor: TransportAddr) {
        self.anchor = anchor;
    }

    fn on_call(&mut self, now: Time, call: CallId, callee: SipUri) {
        if self.calls.len() >= self.config.max_calls || self.calls.contains_key(&call) {
            return self.fail_now(call, CallFailure::Busy);
        }
        let aor = Aor::of(&callee);
        let direct = if self.config.ttc {
            self.cache.get(now, &aor).copied()
        } else {
            None
        };
        let call_id = format!(
            "call-{}-{}@{}",
            call.0,
            self.cseq,
            ip_host(self.addr.0.ip())
        );
        let (to, path, wait) = match direct {
            Some(coa) => (coa, Path::Direct, self.config.direct_timeout),
            None => (self.anchor, Path::Anchor, self.config.call_timeout),
        };
        let mut p = Pending {
            target: callee.clone(),
            callee,
            call_id,
            path,
            until: now + wait,
            redirects: 0,
            cseq: 0,
            bypass: false,
        };
        self.send_invite(&mut p, to, call);
        self.calls.insert(call, p);
    }

    fn send_invite(&mut self, p: &mut Pending, to: TransportAddr, call: CallId) {
        self.cseq += 1;
        p.cseq = self.cseq;
        let mut from = NameAddr::new(self.me.clone());
        from.set_tag(format!("cn{}", call.0));
        let mut contact = SipUri::new(ip_host(self.addr.0.ip()));
        contact.port = Some(self.addr.0.port());
        contact.user = self.me.user.clone();
        let branch = format!("z9hG4bKcn{}x{}", call.0, self.cseq);
        let mut req = Request::new(Method::Invite, p.target.clone())
            .with_via(Via::udp(
                ip_host(self.addr.0.ip()),
                Some(self.addr.0.port()),
                branch,
            ))
            .with_from(from)
            .with_to(NameAddr::new(p.callee.clone()))
            .with_call_id(&p.call_id)
            .with_cseq(self.cseq)
            .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(contact)]))
            .with_max_forwards(70);
        if p.bypass {
            req = req.with_header(BYPASS_CACHE, BYPASS_VALUE);
        }
        self.out.push_back(Output::Sip {
            to,
            msg: Message::Request(req),
        });
    }

    fn on_response(&mut self, now: Time, resp: Response) {
        if resp.code < 200 {
            return;
        }
        let Some(call_id) = resp.headers.call_id.as_deref() else {
            return;
        };
        let Some((&call, p)) = self.calls.iter().find(|(_, p)| p.call_id == call_id) else {
            return;
        };
        // an answer to an INVITE we have since replaced (the direct one we gave up on) is late
        if resp.headers.cseq.as_ref().map(|c| c.seq) != Some(p.cseq) {
            return;
        }
        let contact_uri = match &resp.headers.contact {
            Some(Contact::Addrs(l)) => l.first().map(|c| &c.uri),
            _ => None,
        };
        let contact = contact_uri.and_then(uri_addr);
        match resp.code {
            200..=299 => {
                let path = p.path;
                let call_id = p.call_id.clone();
                let aor = Aor::of(&p.callee);
                let to_tag_to = resp.headers.to.clone();
                self.calls.remove(&call);
                let Some(at) = contact else {
                    return self.fail_now(call, CallFailure::Status(resp.code));
                };
                let _ = self.cache.bind(now, aor, at, self.config.cache_lifetime);
                self.ack(&resp, at, to_tag_to);
                self.out.push_back(Output::Event(Event::Established {
                    call,
                    call_id,
                    at,
                    path,
                }));
            }
            300..=399 if contact.is_some() => {
                let mut p = p.clone();
                if p.redirects >= self.config.max_redirects {
                    self.calls.remove(&call);
                    return self.fail_now(call, CallFailure::TooManyRedirects);
                }
                p.redirects += 1;
                p.until = now + self.config.call_timeout;
                if let (Some(to), Some(uri)) = (contact, contact_uri) {
                    p.target = uri.clone();
                    self.send_invite(&mut p, to, call);
                }
                self.calls.insert(call, p);
            }
            // phase I reached somebody else, or nobody who takes the call: the entry is stale;
            // through an anchor, a 404/480 may come from an address an anchor had cached
            // (phase II): ask once more, past every cache
            code if p.path == Path::Direct || (!p.bypass && matches!(code, 404 | 408 | 480)) => {
                let mut p = p.clone();
                self.fall_back(now, call, &mut p);
                self.calls.insert(call, p);
            }
            code => {
                self.calls.remove(&call);
                self.fail_now(call, CallFailure::Status(code));
            }
        }
    }

    /// The ACK for a 2xx goes end to end, to the callee's Contact.
    fn ack(&mut self, resp: &Response, at: TransportAddr, to: Option<NameAddr>) {
        let (Some(call_id), Some(cseq)) = (&resp.headers.call_id, &resp.headers.cseq) else {
            return;
        };
        let mut uri = SipUri::new(ip_host(at.0.ip()));
        uri.port = Some(at.0.port());
        let mut ack = Request::new(Method::Ack, uri)
            .with_via(Via::udp(
                ip_host(self.addr.0.ip()),
                Some(self.addr.0.port()),
                format!("z9hG4bKack{}", cseq.seq),
            ))
            .with_call_id(call_id)
            .with_cseq(cseq.seq)
            .with_max_forwards(70);
        ack.headers.from = resp.headers.from.clone();
        ack.headers.to = to;
        self.out.push_back(Output::Sip {
            to: at,
            msg: Message::Request(ack),
        });
    }

    /// Phase I failed: the entry is stale; drop it and go through the anchor, asking it not to
    /// answer from its own cache.
    fn fall_back(&mut self, now: Time, call: CallId, p: &mut Pending) {
        self.cache.unbind(&Aor::of(&p.callee));
        self.out.push_back(Output::Event(Event::FellBack { call }));
        p.path = Path::Anchor;
        p.bypass = true;
        p.target = p.callee.clone();
        p.until = now + self.config.call_timeout;
        let anchor = self.anchor;
        self.send_invite(p, anchor, call);
    }

    fn fail_now(&mut self, call: CallId, reason: CallFailure) {
        self.out
            .push_back(Output::Event(Event::Failed { call, reason }));
    }
}

impl Machine for Correspondent {
    type Input = Input;
    type Output = Output;
    type Error = core::convert::Infallible;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), Self::Error> {
        match input {
            Input::Call { call, callee } => self.on_call(now, call, callee),
            Input::Sip {
                msg: Message::Response(r),
                ..
            } => self.on_response(now, r),
            // re-INVITEs after a callee's move and BYEs are the application's (not routed here)
            Input::Sip { .. } => {}
        }
        Ok(())
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.calls.values().map(|p| p.until).min()
    }

    fn handle_timeout(&mut self, now: Time) {
        let due: alloc::vec::Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, p)| p.until <= now)
            .map(|(c, _)| *c)
            .collect();
        for call in due {
            let Some(mut p) = self.calls.remove(&call) else {
                continue;
            };
            if p.path == Path::Direct || !p.bypass {
                // phase I unanswered, or phase II: the anchor may have sent it to an address
                // from its cache that nobody holds now; once more, past every cache
                self.fall_back(now, call, &mut p);
                self.calls.insert(call, p);
            } else {
                self.fail_now(call, CallFailure::Timeout);
            }
        }
    }
}
