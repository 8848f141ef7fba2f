//! The SAMP SIP server: one Chord node that is a registrar and a proxy (RP mode) or a registrar
//! and a redirect server (RR mode).
//!
//! Every server plays every part; which one depends on the request and on what the server holds:
//!
//! | request | what the server does |
//! |---|---|
//! | `REGISTER sip:sip.mcast.net` (multicast, anchor discovery) | answers `200 OK` and holds the MN's care-of address (from `Contact`) until the MN's `ACK` |
//! | `ACK` for that REGISTER (same Call-ID) | becomes the MN's **anchor**: AOR → care-of address |
//! | `REGISTER` whose Request-URI is this server | **hierarchical registration**: a move inside the anchor's reach, AOR → new care-of address |
//! | any other `REGISTER` | **home registration**: routed over the ring to the owner of H(AOR), which binds AOR → `Contact` (the anchor with HR, the care-of address without) |
//! | `INVITE`, `BYE`, `OPTIONS`, … for an AOR | routed: anchor binding → the MN; home binding (owner of H(AOR)) → the anchor (RP) or `302` naming it (RR); TTC cache → the cached care-of address; else a Chord lookup of H(AOR) → the home |
//!
//! Responses travel back along the `Via` headers (each server pushes its own when it forwards and
//! pops it from the response). A `2xx` to an `INVITE` that passes through fills the server's TTC
//! cache (phase II) with the callee's `Contact`.
//!
//! The server is sans-IO like every machine here: SIP and Chord messages come in typed
//! ([`Input`]), go out typed ([`Output`]); the host encodes them ([`crate::sip::encode`], the Chord
//! codec) and owns the sockets. Memory is bounded: bindings, cache and requests waiting for a
//! lookup all have capacities ([`ServerConfig`]); what does not fit is refused with a SIP error.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use arrayvec::ArrayString;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;
use sha1::{Digest, Sha1};

use super::bindings::{Bindings, WhenFull};
use crate::chord::{self, Node, OpId, Peer, RingId};
use crate::machine::Machine;
use crate::sip::{Contact, Message, Method, NameAddr, Request, Response, SipUri, Via};
use crate::time::Time;
use crate::TransportAddr;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The host name of the SIP multicast group (RFC 3261 §10.2.6): a REGISTER to it is anchor
/// discovery.
pub const MCAST_HOST: &str = "sip.mcast.net";
/// The SIP multicast group's address.
pub const MCAST_ADDR: &str = "224.0.1.75";
/// The default SIP port.
pub const SIP_PORT: u16 = 5060;
/// The SIP multicast group and port, where anchor discovery is sent.
pub const MCAST_GROUP: TransportAddr = TransportAddr(SocketAddr::V4(SocketAddrV4::new(
    Ipv4Addr::new(224, 0, 1, 75),
    SIP_PORT,
)));
/// The header a correspondent puts on the `INVITE` it sends through its anchor after a phase I
/// entry failed: the anchor must not answer from its own cache either (it would hold the same
/// stale address), and drops its entry.
pub const BYPASS_CACHE: &str = "X-Samp-Ttc";
/// [`BYPASS_CACHE`]'s value.
pub const BYPASS_VALUE: &str = "bypass";
/// RFC 3261's magic cookie that starts every branch.
const COOKIE: &str = "z9hG4bK";

/// An address-of-record, canonical: `sip:user@host` with the host in lower case and no port,
/// parameters or password. Bindings are keyed by it and its SHA-1 places it on the ring.
///
/// Shared text: a clone (a table's second index, an event) is a reference count, not a copy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Aor(Arc<str>);

impl Aor {
    /// The AOR of a URI.
    pub fn of(uri: &SipUri) -> Aor {
        // built on the stack (AORs are short), then one allocation for the shared text
        let mut buf = ArrayString::<128>::new();
        if write_aor(&mut buf, uri).is_ok() {
            return Aor(Arc::from(buf.as_str()));
        }
        let mut s = String::new();
        let _ = write_aor(&mut s, uri);
        Aor(Arc::from(s))
    }

    /// Its place on the ring: H(AOR), the SHA-1 of the canonical form.
    pub fn key<I: RingId>(&self) -> I {
        I::sha1_of(self.0.as_bytes())
    }

    /// The canonical form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `scheme:user@host` (or `scheme:host`): the password dropped, the host in ASCII lower case.
fn write_aor<W: core::fmt::Write>(w: &mut W, uri: &SipUri) -> core::fmt::Result {
    w.write_str(if uri.secure { "sips:" } else { "sip:" })?;
    if let Some(u) = &uri.user {
        w.write_str(u.split(':').next().unwrap_or(u))?;
        w.write_char('@')?;
    }
    for c in uri.host.chars() {
        w.write_char(c.to_ascii_lowercase())?;
    }
    Ok(())
}

impl core::fmt::Display for Aor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RP (registrar + proxy) or RR (registrar + redirect) mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProxyMode {
    /// The home server forwards the request to the anchor.
    #[default]
    Proxy,
    /// The home server answers `302 Moved Temporarily` naming the anchor; the server that asked
    /// (the caller's anchor) sends the request there itself.
    Redirect,
}

/// Tunables of a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerConfig {
    /// RP or RR.
    pub mode: ProxyMode,
    /// The Chord node's tunables.
    pub chord: chord::Config,
    /// Anchor bindings held at most.
    pub max_anchor_bindings: usize,
    /// Home bindings held at most.
    pub max_home_bindings: usize,
    /// TTC phase II cache entries held at most (the soonest to expire goes first).
    pub cache_entries: usize,
    /// How long a cached care-of address is trusted.
    pub cache_lifetime: Duration,
    /// The longest registration granted, in seconds (a longer `Expires` is cut to it).
    pub max_expires: u32,
    /// The registration granted when a REGISTER names none, in seconds.
    pub default_expires: u32,
    /// Discovery REGISTERs waiting for their ACK, at most.
    pub max_discoveries: usize,
    /// How long a discovery waits for the MN's ACK.
    pub discovery_hold: Duration,
    /// Requests waiting for a Chord lookup, at most.
    pub max_waiting: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            mode: ProxyMode::Proxy,
            chord: chord::Config::default(),
            max_anchor_bindings: 100_000,
            max_home_bindings: 100_000,
            cache_entries: 10_000,
            cache_lifetime: Duration::from_secs(30),
            max_expires: 3_600,
            default_expires: 3_600,
            max_discoveries: 1_024,
            discovery_hold: Duration::from_secs(4),
            max_waiting: 1_024,
        }
    }
}

/// What comes into a server.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input<I> {
    /// A SIP message arrived from `from`.
    Sip {
        /// The sender.
        from: TransportAddr,
        /// The message.
        msg: Message,
    },
    /// A Chord message arrived from `from`.
    Chord {
        /// The sender.
        from: TransportAddr,
        /// The message.
        msg: chord::Message<I, TransportAddr>,
    },
    /// A command for the Chord node (create, join, leave).
    Command(chord::Command<I, TransportAddr>),
}

/// What a server asks its host to do.
// A SIP message is a few hundred bytes; it is moved once, so boxing it would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output<I> {
    /// Send a SIP message.
    Sip {
        /// The destination.
        to: TransportAddr,
        /// The message.
        msg: Message,
    },
    /// Send a Chord message.
    Chord {
        /// The destination.
        to: TransportAddr,
        /// The message.
        msg: chord::Message<I, TransportAddr>,
    },
    /// Tell the application.
    Event(Event<I>),
}

/// Where a request was sent, and why (for logs, tests and the simulation's hop counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// To the MN's care-of address, from this server's anchor binding.
    Anchor,
    /// To the binding this server holds as the AOR's home.
    Home,
    /// To a care-of address from the TTC cache (phase II).
    Cache,
    /// To the home server found by a Chord lookup.
    Overlay,
}

/// What a server tells its application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event<I> {
    /// The Chord node's own news (joined, left, lookups …).
    Chord(chord::Event<I, TransportAddr>),
    /// This server became (or stays) an MN's anchor.
    Anchored {
        /// The MN.
        aor: Aor,
        /// Its care-of address.
        coa: TransportAddr,
    },
    /// This server, as the AOR's home, bound it to `contact` (an anchor, or the MN itself).
    HomeBound {
        /// The MN.
        aor: Aor,
        /// Where requests for it go.
        contact: TransportAddr,
    },
    /// A request was forwarded.
    Forwarded {
        /// Its method.
        method: Method,
        /// The AOR it is for.
        aor: Aor,
        /// Where it went.
        to: TransportAddr,
        /// Why there.
        route: Route,
        /// For [`Route::Overlay`], the lookup's hop count.
        hops: u16,
    },
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerStats {
    /// SIP messages dropped: not for this server, no Via of ours, malformed for their purpose.
    pub dropped: u64,
    /// Requests answered with an error status.
    pub refused: u64,
    /// Requests forwarded.
    pub forwarded: u64,
    /// TTC phase II hits.
    pub cache_hits: u64,
}

/// Why an input was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// The Chord node rejected its input.
    #[error("chord: {0}")]
    Chord(#[from] chord::Error),
}

/// A registration as bound: the address, and which REGISTER put it there, so that a late copy
/// of an older REGISTER cannot undo a newer one (RFC 3261 §10.3 step 7: same Call-ID, CSeq not
/// above the bound one). The Call-ID is kept as a 64-bit FNV-1a hash (a collision can only make
/// the sender's own REGISTER look old).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Bound {
    addr: TransportAddr,
    call: u64,
    cseq: u32,
}

impl Bound {
    fn new(addr: TransportAddr, req: &Request) -> Bound {
        Bound {
            addr,
            call: fnv1a(req.headers.call_id.as_deref().unwrap_or("").as_bytes()),
            cseq: req.headers.cseq.as_ref().map_or(0, |c| c.seq),
        }
    }

    /// Sent before (or is) what bound `current`: same Call-ID, CSeq not above.
    fn older_than(&self, current: Option<&Bound>) -> bool {
        current.is_some_and(|b| b.call == self.call && self.cseq <= b.cseq)
    }
}

const OUT_OF_ORDER: (u16, &str) = (500, "Server Internal Error");
/// A placeholder address where only the REGISTER's order matters.
const NOWHERE: TransportAddr =
    TransportAddr(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Discovery {
    coa: TransportAddr,
    expires: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiting {
    req: Request,
    aor: Aor,
}

/// A SAMP SIP server (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server<I: RingId> {
    config: ServerConfig,
    node: Node<I, TransportAddr>,
    anchor: Bindings<Aor, Bound>,
    home: Bindings<Aor, Bound>,
    cache: Bindings<Aor, TransportAddr>,
    /// Keyed by AOR and the discovery's Call-ID: an older discovery of the same MN arriving
    /// late (reordered) must not replace the one its ACK will confirm.
    discoveries: Bindings<(Aor, String), Discovery>,
    waiting: BTreeMap<OpId, Waiting>,
    next_op: u64,
    out: VecDeque<Output<I>>,
    stats: ServerStats,
}

impl<I: RingId> Server<I> {
    /// A server at `addr` with ring identifier `id` (usually `I::sha1_of` its address); its
    /// Chord node is idle until [`chord::Command::Create`] or [`chord::Command::Join`].
    pub fn new(id: I, addr: TransportAddr, config: ServerConfig) -> Self {
        let node = Node::new(Peer { id, addr }, config.chord.clone());
        Self::with_node(node, config)
    }

    /// A server around a Chord node built elsewhere (a stabilized ring in a test or simulation).
    pub fn with_node(node: Node<I, TransportAddr>, config: ServerConfig) -> Self {
        Server {
            anchor: Bindings::new(config.max_anchor_bindings, WhenFull::Refuse),
            home: Bindings::new(config.max_home_bindings, WhenFull::Refuse),
            cache: Bindings::new(config.cache_entries, WhenFull::EvictSoonest),
            discoveries: Bindings::new(config.max_discoveries, WhenFull::Refuse),
            waiting: BTreeMap::new(),
            next_op: 0,
            out: VecDeque::new(),
            stats: ServerStats::default(),
            config,
            node,
        }
    }

    /// The Chord node.
    pub fn node(&self) -> &Node<I, TransportAddr> {
        &self.node
    }

    /// This server's address.
    pub fn addr(&self) -> TransportAddr {
        self.node.me().addr
    }

    /// The MN's care-of address if this server is its anchor.
    pub fn anchor_binding(&self, now: Time, aor: &Aor) -> Option<TransportAddr> {
        self.anchor.get(now, aor).map(|b| b.addr)
    }

    /// Where the AOR's requests go if this server is its home.
    pub fn home_binding(&self, now: Time, aor: &Aor) -> Option<TransportAddr> {
        self.home.get(now, aor).map(|b| b.addr)
    }

    /// The TTC phase II entry for the AOR.
    pub fn cached(&self, now: Time, aor: &Aor) -> Option<TransportAddr> {
        self.cache.get(now, aor).copied()
    }

    /// Bindings held: (anchor, home, cache).
    pub fn binding_counts(&self) -> (usize, usize, usize) {
        (self.anchor.len(), self.home.len(), self.cache.len())
    }

    /// Counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// When the next binding, cache entry or discovery expires (the Chord node's own deadlines
    /// left out).
    pub fn next_expiry(&self) -> Option<Time> {
        [
            self.anchor.next_expiry(),
            self.home.next_expiry(),
            self.cache.next_expiry(),
            self.discoveries.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Every binding held, with when it expires: the anchor, home and cache tables in turn.
    pub fn bindings(&self) -> impl Iterator<Item = (&Aor, Time)> {
        self.anchor
            .iter()
            .map(|(a, b)| (a, b.expires))
            .chain(self.home.iter().map(|(a, b)| (a, b.expires)))
            .chain(self.cache.iter().map(|(a, b)| (a, b.expires)))
    }

    /// Requests waiting for a lookup.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    // ----- requests ------------------------------------------------------------------------

    fn on_request(&mut self, now: Time, from: TransportAddr, mut req: Request) {
        mark_received(&mut req, from);
        if req.headers.max_forwards == Some(0) {
            return self.reply(&req, 483, "Too Many Hops");
        }
        let is_mcast = req.uri.host.eq_ignore_ascii_case(MCAST_HOST) || req.uri.host == MCAST_ADDR;
        match req.method {
            Method::Register if is_mcast => self.on_discovery(now, from, &req),
            Method::Register if uri_addr(&req.uri) == Some(self.addr()) => {
                self.on_local_register(now, req)
            }
            Method::Register => {
                let Some(aor) = req.headers.to.as_ref().map(|t| Aor::of(&t.uri)) else {
                    return self.reply(&req, 400, "Bad Request");
                };
                // An MN registering its care-of address itself with its home (no HR) no longer
                // relies on this server as its anchor: forget the address discovery left here,
                // which the MN's next move would make stale.
                let direct = req.headers.vias.len() == 1;
                let contact = first_contact(&req).and_then(|c| uri_addr(&c.uri));
                if direct && contact == Some(self.addr()) {
                    // The MN registers with its home through us, naming us in Contact: we are
                    // its anchor. Binding here, and not only on the discovery's ACK, means a
                    // home registration that succeeds always has its anchor binding, even when
                    // the ACK was lost or came after the hold. The care-of address is where the
                    // MN says it listens (its Via's sent-by), else the sender's. A discovery
                    // still held for it is done with: its ACK, or a copy of it delayed in the
                    // network, must not bind an older address later.
                    let held: Vec<(Aor, String)> = self
                        .discoveries
                        .iter()
                        .filter(|((a, _), _)| *a == aor)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in &held {
                        self.discoveries.unbind(k);
                    }
                    let coa = req
                        .headers
                        .vias
                        .first()
                        .and_then(via_sent_by)
                        .unwrap_or(from);
                    if let Err((code, reason)) = self.bind_anchor_at(now, &req, aor.clone(), coa) {
                        return self.reply(&req, code, reason);
                    }
                } else if direct && contact.is_some() {
                    self.anchor.unbind(&aor);
                }
                if self.node.owns(&aor.key()) {
                    self.on_home_register(now, req, aor);
                } else {
                    self.lookup_and_forward(now, req, aor);
                }
            }
            // the confirmation of a discovery; late (its hold is over, or the home REGISTER
            // took its place) or for another server, it is dropped: an ACK is never answered
            Method::Ack if is_mcast => {
                if self.is_discovery_ack(now, &req) {
                    self.on_discovery_ack(now, &req)
                } else {
                    self.stats.dropped += 1;
                }
            }
            Method::Options
                if uri_addr(&req.uri) == Some(self.addr()) && req.uri.user.is_none() =>
            {
                self.reply(&req, 200, "OK")
            }
            // retargeted to us by the callee's home (`sip:user@anchor`): we are its anchor;
            // without a user it names nobody we could serve
            _ if uri_addr(&req.uri) == Some(self.addr()) => {
                if req.uri.user.is_some() {
                    self.route_as_anchor(now, req)
                } else {
                    self.reply(&req, 404, "Not Found")
                }
            }
            _ => {
                let aor = Aor::of(&req.uri);
                self.route(now, req, aor);
            }
        }
    }

    fn on_discovery(&mut self, now: Time, from: TransportAddr, req: &Request) {
        let Some(aor) = req.headers.from.as_ref().map(|f| Aor::of(&f.uri)) else {
            return self.reply(req, 400, "Bad Request");
        };
        let coa = first_contact(req)
            .and_then(|c| uri_addr(&c.uri))
            .unwrap_or(from);
        let expires = self.granted(req, first_contact(req));
        let d = Discovery { coa, expires };
        let call_id = req.headers.call_id.clone().unwrap_or_default();
        if self
            .discoveries
            .bind(now, (aor, call_id), d, self.config.discovery_hold)
            .is_err()
        {
            return self.reply(req, 503, "Service Unavailable");
        }
        let me = self.contact_of_self();
        let resp = Response::to(req, 200, "OK")
            .with_to_tag(self.tag(req))
            .with_contact(Contact::Addrs(alloc::vec![me]))
            .with_expires(expires);
        self.respond(resp);
    }

    fn is_discovery_ack(&self, now: Time, req: &Request) -> bool {
        let Some(aor) = req.headers.from.as_ref().map(|f| Aor::of(&f.uri)) else {
            return false;
        };
        let call_id = req.headers.call_id.clone().unwrap_or_default();
        self.discoveries.get(now, &(aor, call_id)).is_some()
    }

    fn on_discovery_ack(&mut self, now: Time, req: &Request) {
        let Some(aor) = req.headers.from.as_ref().map(|f| Aor::of(&f.uri)) else {
            return;
        };
        let call_id = req.headers.call_id.clone().unwrap_or_default();
        let Some(d) = self
            .discoveries
            .unbind(&(aor.clone(), call_id))
            .map(|b| b.value)
        else {
            return;
        };
        let life = Duration::from_secs(u64::from(d.expires.max(1)));
        let bound = Bound::new(d.coa, req);
        if self.anchor.bind(now, aor.clone(), bound, life).is_ok() {
            self.emit(Event::Anchored { aor, coa: d.coa });
        } else {
            self.stats.refused += 1;
        }
    }

    /// HR: the MN moved inside this anchor's reach; bind its new care-of address here only.
    fn on_local_register(&mut self, now: Time, req: Request) {
        let Some(aor) = req.headers.to.as_ref().map(|t| Aor::of(&t.uri)) else {
            return self.reply(&req, 400, "Bad Request");
        };
        match self.bind_from(now, &req, Table::Anchor, aor.clone()) {
            Ok(Some((coa, secs))) => {
                self.emit(Event::Anchored { aor, coa });
                self.ok_register(req, secs);
            }
            Ok(None) => self.ok_register(req, 0),
            Err((code, reason)) => self.reply(&req, code, reason),
        }
    }

    fn on_home_register(&mut self, now: Time, req: Request, aor: Aor) {
        match self.bind_from(now, &req, Table::Home, aor.clone()) {
            Ok(Some((contact, secs))) => {
                if contact != self.addr() {
                    // The home knows where the MN is now, and it is not through us: an anchor
                    // binding we still hold from an earlier stay is stale (its de-registration
                    // may have been lost), and `route` would prefer it to the home binding.
                    self.anchor.unbind(&aor);
                }
                self.emit(Event::HomeBound { aor, contact });
                self.ok_register(req, secs);
            }
            Ok(None) => self.ok_register(req, 0),
            Err((code, reason)) => self.reply(&req, code, reason),
        }
    }

    /// Apply a REGISTER's Contact/Expires to `table`: `Some((addr, secs))` bound, `None` removed.
    fn bind_from(
        &mut self,
        now: Time,
        req: &Request,
        table: Table,
        aor: Aor,
    ) -> Result<Option<(TransportAddr, u32)>, (u16, &'static str)> {
        let t = match table {
            Table::Anchor => &mut self.anchor,
            Table::Home => &mut self.home,
        };
        if req.headers.contact.is_some() && Bound::new(NOWHERE, req).older_than(t.get(now, &aor)) {
            return Err(OUT_OF_ORDER);
        }
        match &req.headers.contact {
            Some(Contact::Star) if req.headers.expires == Some(0) => {
                t.unbind(&aor);
                Ok(None)
            }
            Some(Contact::Star) => Err((400, "Bad Request")),
            Some(Contact::Addrs(list)) => {
                let Some(c) = list.first() else {
                    return Err((400, "Bad Request"));
                };
                let Some(addr) = uri_addr(&c.uri) else {
                    return Err((400, "Bad Request"));
                };
                let secs = granted(&self.config, req, Some(c));
                if secs == 0 {
                    t.unbind(&aor);
                    return Ok(None);
                }
                let life = Duration::from_secs(u64::from(secs));
                t.bind(now, aor, Bound::new(addr, req), life)
                    .map_err(|_| (503, "Service Unavailable"))?;
                Ok(Some((addr, secs)))
            }
            // a query: nothing changes
            None => Ok(None),
        }
    }

    /// Bind `aor` to `coa` in the anchor table for as long as the REGISTER asks (remove it on
    /// `Expires: 0`).
    fn bind_anchor_at(
        &mut self,
        now: Time,
        req: &Request,
        aor: Aor,
        coa: TransportAddr,
    ) -> Result<(), (u16, &'static str)> {
        let bound = Bound::new(coa, req);
        if bound.older_than(self.anchor.get(now, &aor)) {
            return Err(OUT_OF_ORDER);
        }
        let secs = granted(&self.config, req, first_contact(req));
        if secs == 0 {
            self.anchor.unbind(&aor);
            return Ok(());
        }
        let life = Duration::from_secs(u64::from(secs));
        self.anchor
            .bind(now, aor.clone(), bound, life)
            .map_err(|_| (503, "Service Unavailable"))?;
        self.emit(Event::Anchored { aor, coa });
        Ok(())
    }

    /// A request the callee's home retargeted to `sip:user@<us>`: deliver it from our anchor
    /// binding of the `To` AOR, or answer `480`. It never goes back into the overlay, so a home
    /// that points at an anchor which has forgotten the MN ends the request here instead of
    /// bouncing it between the two until Max-Forwards runs out.
    fn route_as_anchor(&mut self, now: Time, mut req: Request) {
        let Some(aor) = req.headers.to.as_ref().map(|t| Aor::of(&t.uri)) else {
            return self.reply(&req, 400, "Bad Request");
        };
        match self.anchor.get(now, &aor).map(|b| b.addr) {
            Some(coa) => {
                req.uri = user_at(req.uri.user.clone(), coa);
                self.forward(req, aor, coa, Route::Anchor, 0)
            }
            None => self.reply(&req, 480, "Temporarily Unavailable"),
        }
    }

    fn route(&mut self, now: Time, req: Request, aor: Aor) {
        if let Some(coa) = self.anchor.get(now, &aor).map(|b| b.addr) {
            return self.forward(req, aor, coa, Route::Anchor, 0);
        }
        if self.node.owns(&aor.key()) {
            return self.route_as_home(now, req, aor);
        }
        if req.method == Method::Invite {
            let bypass = req
                .headers
                .get(BYPASS_CACHE)
                .any(|v| v.eq_ignore_ascii_case(BYPASS_VALUE));
            if bypass {
                self.cache.unbind(&aor);
            } else if let Some(coa) = self.cache.get(now, &aor).copied() {
                self.stats.cache_hits += 1;
                return self.forward(req, aor, coa, Route::Cache, 0);
            }
        }
        self.lookup_and_forward(now, req, aor);
    }

    /// The home retargets the request to the binding, `sip:user@<anchor>` (with HR) or
    /// `sip:user@<care-of address>` (without): by forwarding it (RP) or by naming it in a `302`
    /// (RR).
    fn route_as_home(&mut self, now: Time, mut req: Request, aor: Aor) {
        match (self.home.get(now, &aor).map(|b| b.addr), self.config.mode) {
            (None, _) => self.reply(&req, 404, "Not Found"),
            (Some(to), ProxyMode::Proxy) => {
                req.uri = user_at(to_user(&req), to);
                self.forward(req, aor, to, Route::Home, 0)
            }
            (Some(to), ProxyMode::Redirect) => {
                let target = user_at(to_user(&req), to);
                let resp = Response::to(&req, 302, "Moved Temporarily")
                    .with_to_tag(self.tag(&req))
                    .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(target)]));
                self.respond(resp);
            }
        }
    }

    fn lookup_and_forward(&mut self, now: Time, req: Request, aor: Aor) {
        if self.waiting.len() >= self.config.max_waiting {
            return self.reply(&req, 503, "Service Unavailable");
        }
        let op = OpId(self.next_op);
        self.next_op += 1;
        let key = aor.key();
        match self.node.handle(
            now,
            chord::Input::Command(chord::Command::Lookup { op, key }),
        ) {
            Ok(()) => {
                self.waiting.insert(op, Waiting { req, aor });
                self.drain_node(now);
            }
            Err(_) => self.reply(&req, 503, "Service Unavailable"),
        }
    }

    fn on_lookup(&mut self, now: Time, op: OpId, owner: Option<(TransportAddr, u16)>) {
        let Some(w) = self.waiting.remove(&op) else {
            return;
        };
        match owner {
            Some((to, _)) if to == self.addr() => {
                // the ring changed under us: we are the home now
                if w.req.method == Method::Register {
                    self.on_home_register(now, w.req, w.aor);
                } else {
                    self.route_as_home(now, w.req, w.aor);
                }
            }
            Some((to, hops)) => self.forward(w.req, w.aor, to, Route::Overlay, hops),
            None => self.reply(&w.req, 408, "Request Timeout"),
        }
    }

    /// Forward statelessly: our Via on top (branch derived from the request's), one hop less.
    fn forward(&mut self, mut req: Request, aor: Aor, to: TransportAddr, route: Route, hops: u16) {
        if to == self.addr() {
            // a binding pointing back at us would loop
            return self.reply(&req, 482, "Loop Detected");
        }
        let mf = req.headers.max_forwards.unwrap_or(70);
        if mf == 0 {
            return self.reply(&req, 483, "Too Many Hops");
        }
        // our Via would make one more than a SIP parser here accepts: the next hop could not
        // even read the request (a loop that Max-Forwards has not stopped yet), so answer now
        if req.headers.vias.len() >= crate::sip::Limits::default().max_vias {
            return self.reply(&req, 483, "Too Many Hops");
        }
        req.headers.max_forwards = Some(mf - 1);
        let branch = self.branch_for(&req);
        let me = self.addr();
        req.headers
            .vias
            .insert(0, Via::udp(ip_host(me.0.ip()), Some(me.0.port()), branch));
        self.stats.forwarded += 1;
        let method = req.method.clone();
        self.out.push_back(Output::Sip {
            to,
            msg: Message::Request(req),
        });
        self.emit(Event::Forwarded {
            method,
            aor,
            to,
            route,
            hops,
        });
    }

    // ----- responses -----------------------------------------------------------------------

    fn on_response(&mut self, now: Time, mut resp: Response) {
        let me = self.addr();
        let ours = resp
            .headers
            .vias
            .first()
            .is_some_and(|v| via_addr(v) == Some(me));
        if !ours {
            self.stats.dropped += 1;
            return;
        }
        resp.headers.vias.remove(0);
        let Some(next) = resp.headers.vias.first().and_then(via_addr) else {
            self.stats.dropped += 1;
            return;
        };
        let invite = resp
            .headers
            .cseq
            .as_ref()
            .is_some_and(|c| c.method == Method::Invite);
        if invite && (200..300).contains(&resp.code) {
            // TTC phase II: remember where the callee answered from
            let callee = resp.headers.to.as_ref().map(|t| Aor::of(&t.uri));
            let at = match &resp.headers.contact {
                Some(Contact::Addrs(l)) => l.first().and_then(|c| uri_addr(&c.uri)),
                _ => None,
            };
            if let (Some(aor), Some(coa)) = (callee, at) {
                let _ = self.cache.bind(now, aor, coa, self.config.cache_lifetime);
            }
        }
        self.out.push_back(Output::Sip {
            to: next,
            msg: Message::Response(resp),
        });
    }

    // ----- helpers -------------------------------------------------------------------------

    fn granted(&self, req: &Request, contact: Option<&NameAddr>) -> u32 {
        granted(&self.config, req, contact)
    }

    /// The 200 to a REGISTER, built from the request itself (its headers move, not copied).
    fn ok_register(&mut self, mut req: Request, secs: u32) {
        let tag = self.tag(&req);
        let contact = req.headers.contact.take();
        let mut resp = Response::answering(req, 200, "OK").with_to_tag(&tag);
        if let Some(c) = contact {
            resp = resp.with_contact(c);
        }
        self.respond(resp.with_expires(secs));
    }

    fn reply(&mut self, req: &Request, code: u16, reason: &str) {
        if req.method == Method::Ack {
            // an ACK is never answered
            self.stats.dropped += 1;
            return;
        }
        if code >= 300 {
            self.stats.refused += 1;
        }
        let resp = Response::to(req, code, reason).with_to_tag(self.tag(req));
        self.respond(resp);
    }

    /// Send a response we generated to the top Via (its `received`/`rport` when set).
    fn respond(&mut self, resp: Response) {
        match resp.headers.vias.first().and_then(via_addr) {
            Some(to) => self.out.push_back(Output::Sip {
                to,
                msg: Message::Response(resp),
            }),
            None => self.stats.dropped += 1,
        }
    }

    fn contact_of_self(&self) -> NameAddr {
        let me = self.addr();
        let mut u = SipUri::new(ip_host(me.0.ip()));
        u.port = Some(me.0.port());
        NameAddr::new(u)
    }

    /// A To tag stable for one request (its Call-ID and CSeq) at this server.
    fn tag(&self, req: &Request) -> String {
        let mut h = Sha1::new();
        hash_addr(&mut h, self.addr());
        h.update(req.headers.call_id.as_deref().unwrap_or("").as_bytes());
        if let Some(c) = &req.headers.cseq {
            h.update(c.seq.to_be_bytes());
        }
        hex8(&h.finalize())
    }

    /// RFC 3261 §16.11: a stateless proxy derives its branch from the request's own, so a
    /// retransmission gets the same branch.
    fn branch_for(&self, req: &Request) -> String {
        let mut h = Sha1::new();
        hash_addr(&mut h, self.addr());
        match req.headers.vias.first().and_then(|v| v.branch.as_deref()) {
            Some(b) => h.update(b.as_bytes()),
            None => {
                h.update(req.headers.call_id.as_deref().unwrap_or("").as_bytes());
                if let Some(c) = &req.headers.cseq {
                    h.update(c.seq.to_be_bytes());
                }
            }
        }
        h.update(req.method.as_str().as_bytes());
        let mut b = String::with_capacity(COOKIE.len() + 16);
        b.push_str(COOKIE);
        push_hex8(&mut b, &h.finalize());
        b
    }

    fn emit(&mut self, e: Event<I>) {
        self.out.push_back(Output::Event(e));
    }

    fn drain_node(&mut self, now: Time) {
        while let Some(o) = self.node.poll() {
            match o {
                chord::Output::Send { to, msg } => self.out.push_back(Output::Chord { to, msg }),
                chord::Output::Event(chord::Event::LookupDone {
                    op, owner, hops, ..
                }) if self.waiting.contains_key(&op) => {
                    self.on_lookup(now, op, Some((owner.addr, hops)))
                }
                chord::Output::Event(chord::Event::OpFailed { op, .. })
                    if self.waiting.contains_key(&op) =>
                {
                    self.on_lookup(now, op, None)
                }
                chord::Output::Event(e) => self.emit(Event::Chord(e)),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Table {
    Anchor,
    Home,
}

fn granted(config: &ServerConfig, req: &Request, contact: Option<&NameAddr>) -> u32 {
    let asked = contact
        .and_then(|c| c.param("expires").flatten())
        .and_then(|v| v.parse::<u32>().ok())
        .or(req.headers.expires)
        .unwrap_or(config.default_expires);
    asked.min(config.max_expires)
}

/// `sip:user@ip:port`.
fn user_at(user: Option<String>, at: TransportAddr) -> SipUri {
    let mut u = SipUri::new(ip_host(at.0.ip()));
    u.port = Some(at.0.port());
    u.user = user;
    u
}

/// The user part of the AOR a request is for: the `To` URI's (the Request-URI may already be
/// somebody's contact).
fn to_user(req: &Request) -> Option<String> {
    req.headers
        .to
        .as_ref()
        .and_then(|t| t.uri.user.clone())
        .or_else(|| req.uri.user.clone())
}

fn first_contact(req: &Request) -> Option<&NameAddr> {
    match &req.headers.contact {
        Some(Contact::Addrs(l)) => l.first(),
        _ => None,
    }
}

/// RFC 3261 §18.2.1 and RFC 3581: note where a request really came from on its top Via, so the
/// response goes back there.
fn mark_received(req: &mut Request, from: TransportAddr) {
    let Some(v) = req.headers.vias.first_mut() else {
        return;
    };
    if via_addr(v) == Some(from) {
        return;
    }
    v.params
        .retain(|(n, _)| !n.eq_ignore_ascii_case("received") && !n.eq_ignore_ascii_case("rport"));
    v.params
        .push((String::from("received"), Some(ip_host(from.0.ip()))));
    v.params
        .push((String::from("rport"), Some(from.0.port().to_string())));
}

/// The address a Via's sent-by names (where its sender listens), when its host is an IP literal.
fn via_sent_by(v: &Via) -> Option<TransportAddr> {
    let ip = parse_ip(&v.host)?;
    Some(TransportAddr(SocketAddr::new(
        ip,
        v.port.unwrap_or(SIP_PORT),
    )))
}

/// Where a Via says responses go: `received`/`rport` when present, else its sent-by.
pub fn via_addr(v: &Via) -> Option<TransportAddr> {
    let find = |name: &str| {
        v.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, val)| val.as_deref())
    };
    let ip = parse_ip(find("received").unwrap_or(&v.host))?;
    let port = find("rport")
        .and_then(|p| p.parse().ok())
        .or(v.port)
        .unwrap_or(SIP_PORT);
    Some(TransportAddr(SocketAddr::new(ip, port)))
}

/// The transport address a URI names, when its host is an IP literal (no DNS in a sans-IO core).
pub fn uri_addr(uri: &SipUri) -> Option<TransportAddr> {
    let ip = parse_ip(&uri.host)?;
    Some(TransportAddr(SocketAddr::new(
        ip,
        uri.port.unwrap_or(SIP_PORT),
    )))
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_v4_plain(host) {
        return Some(IpAddr::V4(v4));
    }
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// A fast path for the common case: `a.b.c.d` with 1–3 digits per octet, no leading zeros, each
/// ≤ 255 (exactly what `Ipv4Addr`'s parser accepts); `None` for anything else, which then goes to
/// the standard parser.
fn parse_v4_plain(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut o = [0u8; 4];
    let mut i = 0;
    for (k, slot) in o.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *slot = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(o))
}

/// An IP as a SIP host: IPv6 in brackets.
pub fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let n = write_v4(&mut buf, v4);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn hex8(d: &[u8]) -> String {
    let mut s = String::with_capacity(16);
    push_hex8(&mut s, d);
    s
}

/// Append the first 8 bytes of `d` in lower-case hex.
fn push_hex8(s: &mut String, d: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in d.iter().take(8) {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Write `v4` as `to_string` does (`a.b.c.d`) into `buf`; the length written. Formatting an
/// address through `core::fmt` is slow enough to show up in the simulation's profile.
fn write_v4(buf: &mut [u8; 15], v4: Ipv4Addr) -> usize {
    let mut n = 0;
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        n += write_dec(&mut buf[n..], u32::from(o));
    }
    n
}

/// Write `v` in decimal at the start of `buf` (which must be long enough); the length written.
fn write_dec(buf: &mut [u8], mut v: u32) -> usize {
    let mut tmp = [0u8; 10];
    let mut k = tmp.len();
    loop {
        k -= 1;
        tmp[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = tmp.len() - k;
    buf[..len].copy_from_slice(&tmp[k..]);
    len
}

/// Feed `addr`'s text form (exactly what `to_string` gives) into a hasher without allocating.
fn hash_addr(h: &mut Sha1, addr: TransportAddr) {
    if let SocketAddr::V4(a) = addr.0 {
        let mut buf = [0u8; 21];
        let mut ip = [0u8; 15];
        let n = write_v4(&mut ip, *a.ip());
        buf[..n].copy_from_slice(&ip[..n]);
        buf[n] = b':';
        let m = write_dec(&mut buf[n + 1..], u32::from(a.port()));
        h.update(&buf[..n + 1 + m]);
        return;
    }
    struct W<'a>(&'a mut Sha1);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let _ = core::fmt::Write::write_fmt(&mut W(h), format_args!("{}", addr.0));
}

impl<I: RingId> Machine for Server<I> {
    type Input = Input<I>;
    type Output = Output<I>;
    type Error = ServerError;

    fn handle(&mut self, now: Time, input: Input<I>) -> Result<(), ServerError> {
        match input {
            Input::Sip {
                from,
                msg: Message::Request(req),
            } => self.on_request(now, from, req),
            Input::Sip {
                msg: Message::Response(resp),
                ..
            } => self.on_response(now, resp),
            Input::Chord { from, msg } => {
                let r = self.node.handle(now, chord::Input::Message { from, msg });
                self.drain_node(now);
                r?;
            }
            Input::Command(c) => {
                let r = self.node.handle(now, chord::Input::Command(c));
                self.drain_node(now);
                r?;
            }
        }
        Ok(())
    }

    fn poll(&mut self) -> Option<Output<I>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        [self.node.poll_timeout(), self.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Time) {
        self.node.handle_timeout(now);
        self.drain_node(now);
        self.anchor.expire(now);
        self.home.expire(now);
        self.cache.expire(now);
        self.discoveries.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::NodeId;

    #[test]
    fn parse_ip_fast_path_agrees_with_the_standard_parser() {
        for h in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.04",
            "1234.1.1.1",
            "1.2.3.4 ",
            "a.b.c.d",
            "",
            "::1",
            "[::1]",
            "[10.0.0.1]",
            "10.0.0.1:5060",
            "1.2.3.0",
        ] {
            let std = h
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(h)
                .parse::<IpAddr>()
                .ok();
            assert_eq!(parse_ip(h), std, "{h}");
            if let Some(v4) = parse_v4_plain(h) {
                assert_eq!(Some(IpAddr::V4(v4)), h.parse().ok(), "{h}");
            }
        }
    }

    #[test]
    fn aor_of_matches_its_formatted_form() {
        for u in [
            "sip:mn7@Samp.Example",
            "sips:Bob:pw@H.example:5061;x=1",
            "sip:HOST.example",
        ] {
            let uri = SipUri::parse(u).unwrap();
            let scheme = if uri.secure { "sips" } else { "sip" };
            let host = uri.host.to_ascii_lowercase();
            let want = match &uri.user {
                Some(u) => format!("{scheme}:{}@{host}", u.split(':').next().unwrap()),
                None => format!("{scheme}:{host}"),
            };
            assert_eq!(Aor::of(&uri).as_str(), want);
        }
    }

    #[test]
    fn hex8_and_hash_addr_match_their_formatted_forms() {
        let d: [u8; 10] = [0x00, 0x0f, 0xa0, 0xff, 0x12, 0x9c, 0x7e, 0x81, 0x55, 0x66];
        let want: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex8(&d), want);
        for a in [
            "10.0.0.1:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "192.168.100.7:1024",
            "[2001:db8::1]:5061",
        ] {
            let addr = TransportAddr(a.parse().unwrap());
            let mut h1 = Sha1::new();
            hash_addr(&mut h1, addr);
            let mut h2 = Sha1::new();
            h2.update(addr.0.to_string().as_bytes());
            assert_eq!(h1.finalize(), h2.finalize());
            let ip = addr.0.ip();
            let want = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            assert_eq!(ip_host(ip), want);
        }
    }

    /// A server alone on its ring (so the home of every AOR) at 10.0.0.1:5060.
    fn lone_server() -> Server<NodeId> {
        let me = TransportAddr("10.0.0.1:5060".parse().unwrap());
        let node = Node::with_state(
            Peer {
                id: NodeId::sha1_of(b"10.0.0.1:5060"),
                addr: me,
            },
            chord::Config::default(),
            None,
            &[],
            Time::ZERO,
        );
        Server::with_node(node, ServerConfig::default())
    }

    /// Found by the `samp_roles` fuzz target: a request looping between servers gained a Via at
    /// every hop and was forwarded with 33, which no server's parser accepts, so it vanished
    /// instead of being answered. The server now answers 483 rather than add a 33rd Via.
    #[test]
    fn a_request_is_never_forwarded_with_more_vias_than_a_parser_accepts() {
        let mut s = lone_server();
        let mn = SipUri::parse("sip:mn@home.example").unwrap();
        let mut contact = SipUri::new("10.1.0.10");
        contact.port = Some(5060);
        let register = Request::new(Method::Register, SipUri::new("home.example"))
            .with_via(Via::udp("10.1.0.10", Some(5060), "z9hG4bKr"))
            .with_from(NameAddr::new(mn.clone()))
            .with_to(NameAddr::new(mn.clone()))
            .with_call_id("r")
            .with_cseq(1)
            .with_contact(Contact::Addrs(alloc::vec![NameAddr::new(contact)]));
        let from = TransportAddr("10.1.0.10:5060".parse().unwrap());
        s.handle(
            Time::ZERO,
            Input::Sip {
                from,
                msg: Message::Request(register),
            },
        )
        .unwrap();
        while s.poll().is_some() {}
        let limit = crate::sip::Limits::default().max_vias;
        for (vias, forwarded) in [(limit - 1, true), (limit, false)] {
            let mut invite = Request::new(Method::Invite, mn.clone())
                .with_from(NameAddr::new(SipUri::parse("sip:cn@x.example").unwrap()))
                .with_to(NameAddr::new(mn.clone()))
                .with_call_id("i")
                .with_cseq(1)
                .with_max_forwards(70);
            for k in 0..vias {
                invite = invite.with_via(Via::udp("10.2.0.5", Some(5060), format!("z9hG4bK{k}")));
            }
            let peer = TransportAddr("10.2.0.5:5060".parse().unwrap());
            s.handle(
                Time::ZERO,
                Input::Sip {
                    from: peer,
                    msg: Message::Request(invite),
                },
            )
            .unwrap();
            let mut out = alloc::vec::Vec::new();
            while let Some(o) = s.poll() {
                if let Output::Sip { msg, .. } = o {
                    out.push(msg);
                }
            }
            match &out[..] {
                [Message::Request(r)] if forwarded => {
                    assert_eq!(r.headers.vias.len(), limit);
                    let bytes = crate::sip::encode(&out[0]);
                    assert_eq!(crate::sip::parse(&bytes).as_ref(), Ok(&out[0]));
                }
                [Message::Response(r)] if !forwarded => assert_eq!(r.code, 483),
                other => panic!("{vias} Vias: {other:?}"),
            }
        }
    }

    /// Found by the `samp_roles` fuzz target: the MN moved twice quickly and its first discovery
    /// REGISTER reached a server after the second one; it replaced the second, so the ACK that
    /// confirmed the second (another Call-ID) was taken for an ordinary request and the server
    /// never became the anchor, while the MN registered through it.
    #[test]
    fn a_late_older_discovery_does_not_replace_the_one_being_confirmed() {
        let mut s = lone_server();
        let mn = SipUri::parse("sip:mn@home.example").unwrap();
        let discovery = |call_id: &str, host: &str, method: Method| {
            let mut c = SipUri::new(host);
            c.port = Some(5060);
            let mut r = Request::new(method, SipUri::new(MCAST_HOST))
                .with_via(Via::udp(host, Some(5060), format!("z9hG4bK{call_id}")))
                .with_from(NameAddr::new(mn.clone()))
                .with_to(NameAddr::new(mn.clone()))
                .with_call_id(call_id)
                .with_cseq(1)
                .with_max_forwards(70);
            if r.method == Method::Register {
                r = r.with_contact(Contact::Addrs(alloc::vec![NameAddr::new(c)]));
            }
            r
        };
        let (old, new) = ("10.1.0.10", "10.1.0.11");
        for (call_id, host, method) in [
            ("d2", new, Method::Register),
            ("d1", old, Method::Register),
            ("d2", new, Method::Ack),
        ] {
            let from = TransportAddr(format!("{host}:5060").parse().unwrap());
            let msg = Message::Request(discovery(call_id, host, method));
            s.handle(Time::ZERO, Input::Sip { from, msg }).unwrap();
        }
        let anchored: alloc::vec::Vec<_> = core::iter::from_fn(|| s.poll())
            .filter_map(|o| match o {
                Output::Event(Event::Anchored { coa, .. }) => Some(coa),
                _ => None,
            })
            .collect();
        let new_coa = TransportAddr("10.1.0.11:5060".parse().unwrap());
        assert_eq!(anchored, [new_coa]);
        assert_eq!(s.anchor_binding(Time::ZERO, &Aor::of(&mn)), Some(new_coa));
    }
}
