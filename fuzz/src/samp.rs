//! Fuzz target bodies for SAMP (`ip2p::samp`): the SIP servers under hostile input, and the
//! mobile node and the correspondent over a network that loses, reorders and duplicates.
//!
//! - [`samp_server`]: a ring of 1–3 real [`Server`]s (a stabilized Chord ring built in memory)
//!   with small fuzz-chosen capacities, fed arbitrary datagrams and structurally valid but
//!   adversarial SIP requests and responses from arbitrary sources, every one through the
//!   server's socket codec ([`SampWire`]); Chord and SIP traffic between the servers is delivered,
//!   dropped or duplicated by the fuzzer, and timers fire at fuzz-chosen times. After every step:
//!   every SIP output re-parses to itself, a forwarded request carries exactly one hop less than a
//!   request the ring received (never an underflow), a relayed response is the received one minus
//!   exactly the server's own top Via, tables stay within their capacities, and BindingsExpire.
//!   At the end, once time has passed every expiry, no binding is left and no request waits.
//! - [`samp_roles`]: a [`MobileNode`], a [`Correspondent`] and a ring of 2–4 servers, driven by a
//!   fuzz-chosen sequence of moves, calls, hang-ups, deliveries in any order, losses,
//!   duplicates and timers; the invariants of [`ip2p::samp::invariants`] are checked after every
//!   step (SessionOnlyWithCallee, EveryCallEnds at most once, BindingsExpire), and at the end,
//!   with the network drained and the timers run, EveryCallEnds (every call ended exactly once)
//!   and, past every expiry, no binding left.
//!
//! Scenarios are read one byte at a time (`byte % n` picks one of `n` choices) so that seeds can
//! be written by hand: see [`server_seeds`] and [`roles_seeds`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Unstructured;
use ip2p::chord::{self, Node, NodeId, Peer};
use ip2p::machine::{Codec, Machine};
use ip2p::samp::correspondent::{self, CallId, Correspondent, CorrespondentConfig};
use ip2p::samp::invariants::{self, Invariant, Observer};
use ip2p::samp::mobile::{self, MobileConfig, MobileNode};
use ip2p::samp::server::{
    self, via_addr, ProxyMode, Server, ServerConfig, BYPASS_CACHE, BYPASS_VALUE, MCAST_GROUP,
};
use ip2p::samp::wire::{Packet, SampWire, SipWire};
use ip2p::sip::{self, Contact, Message, Method, NameAddr, Request, Response, SipUri, Via};
use ip2p::{Time, TransportAddr};

use super::sip_targets::reparse_limits;

type W = SampWire<NodeId>;

fn addr(s: &str) -> TransportAddr {
    TransportAddr(s.parse::<SocketAddr>().expect("address"))
}

fn server_addr(k: usize) -> TransportAddr {
    addr(&format!("10.0.0.{}:5060", k + 1))
}

fn byte(u: &mut Unstructured) -> u8 {
    u.arbitrary().unwrap_or(0)
}

fn pick<T: Copy>(u: &mut Unstructured, from: &[T]) -> T {
    from[usize::from(byte(u)) % from.len()]
}

/// A stabilized ring of `n` servers at `server_addr(0..n)`.
fn ring(n: usize, config: &ServerConfig, now: Time) -> BTreeMap<TransportAddr, Server<NodeId>> {
    let mut members: Vec<Peer<NodeId, TransportAddr>> =
        (0..n).map(|k| Peer::hashed(server_addr(k))).collect();
    members.sort();
    Node::stabilized_ring(&members, &config.chord, 3, now)
        .into_iter()
        .map(|node| (node.me().addr, Server::with_node(node, config.clone())))
        .collect()
}

/// `msg` encoded, and that encoding parsed back: it must be `msg` itself (what a role sends is
/// what its peer reads).
fn encode_checked(msg: &Message) -> Vec<u8> {
    let bytes = sip::encode(msg);
    match sip::parse_with(&bytes, &reparse_limits()) {
        Ok(back) => assert_eq!(&back, msg, "an output does not re-parse to itself"),
        Err(e) => panic!(
            "an output does not parse ({e}):\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    }
    bytes
}

fn bindings_limit(c: &ServerConfig) -> u32 {
    // a discovery confirmed by ACK binds for at least one second even when 0 was granted
    c.max_expires
        .max(1)
        .max(u32::try_from(c.cache_lifetime.as_secs()).unwrap_or(u32::MAX))
}

fn check_server_bounds(s: &Server<NodeId>, c: &ServerConfig, now: Time) {
    let (a, h, k) = s.binding_counts();
    assert!(a <= c.max_anchor_bindings, "anchor table over capacity");
    assert!(h <= c.max_home_bindings, "home table over capacity");
    assert!(k <= c.cache_entries, "cache over capacity");
    assert!(
        s.waiting() <= c.max_waiting,
        "waiting requests over capacity"
    );
    assert!(
        // the node clamps `max_pending` to at least one
        s.node().pending_requests() <= usize::from(c.chord.max_pending.max(1)),
        "Chord requests over capacity"
    );
    assert!(
        invariants::bindings_expire(s, now, bindings_limit(c)),
        "{} violated",
        Invariant::BindingsExpire.name()
    );
}

// ----- adversarial SIP ------------------------------------------------------------------------

const USERS: [&str; 6] = ["mn", "alice", "bob", "u3", "MN", "u5"];
const DOMAINS: [&str; 3] = ["home.example", "other.example", "HOME.example"];

/// An address from a small pool: the servers, clients, IPv6, an odd port.
fn gen_addr(u: &mut Unstructured, n: usize) -> TransportAddr {
    let b = byte(u);
    match b % 8 {
        0..=2 => server_addr(usize::from(b / 8) % n.max(1)),
        3 | 4 => addr(&format!("10.1.0.{}:5060", 10 + b / 8 % 4)),
        5 => addr(&format!("10.2.0.5:{}", 5060 + u16::from(b / 8 % 3))),
        6 => addr("[2001:db8::7]:5062"),
        _ => addr(&format!("192.0.2.{}:{}", b / 8, u16::from(b) * 97)),
    }
}

fn uri_of(a: TransportAddr, user: Option<&str>, port: bool) -> SipUri {
    let mut uri = SipUri::new(server::ip_host(a.0.ip()));
    if port || a.0.port() != 5060 {
        uri.port = Some(a.0.port());
    }
    uri.user = user.map(String::from);
    uri
}

fn gen_aor_uri(u: &mut Unstructured) -> SipUri {
    let user = pick(u, &USERS);
    let dom = pick(u, &DOMAINS);
    let mut uri = SipUri::new(dom);
    uri.user = Some(user.into());
    uri
}

fn gen_request_uri(u: &mut Unstructured, n: usize) -> SipUri {
    let b = byte(u);
    match b % 8 {
        0 => SipUri::new(server::MCAST_HOST),
        1 => SipUri::new(server::MCAST_ADDR),
        2 => uri_of(server_addr(usize::from(b / 8) % n), None, b & 0x80 != 0),
        3 | 4 => gen_aor_uri(u),
        5 => {
            let a = gen_addr(u, n);
            uri_of(a, Some(pick(u, &USERS)), true)
        }
        6 => {
            let mut uri = gen_aor_uri(u);
            uri.secure = true;
            uri.port = Some(5061);
            uri
        }
        _ => {
            let mut uri = SipUri::new("proxy.invalid");
            uri.user = Some("mn".into());
            uri
        }
    }
}

fn gen_via(u: &mut Unstructured, n: usize) -> Via {
    let flags = byte(u);
    let host_addr = gen_addr(u, n);
    let host = if flags & 1 == 0 {
        server::ip_host(host_addr.0.ip())
    } else {
        "proxy.invalid".to_string()
    };
    let port = (flags & 2 == 0).then_some(host_addr.0.port());
    let mut v = Via::udp(&host, port, format!("z9hG4bK{}", flags >> 4));
    if flags & 4 != 0 {
        v.branch = None;
    }
    if flags & 8 != 0 {
        let r = gen_addr(u, n);
        v.params
            .push(("received".into(), Some(server::ip_host(r.0.ip()))));
        let rport = if flags & 0x10 != 0 {
            r.0.port().to_string()
        } else {
            "x".into()
        };
        v.params.push(("rport".into(), Some(rport)));
    }
    v
}

fn gen_vias(u: &mut Unstructured, n: usize) -> Vec<Via> {
    let b = byte(u);
    let count = match b % 4 {
        0..=2 => 1 + usize::from(b / 4) % 3,
        // many: around the parser's limit of 32
        _ => 28 + usize::from(b / 4) % 8,
    };
    (0..count).map(|_| gen_via(u, n)).collect()
}

fn gen_expires(u: &mut Unstructured) -> Option<String> {
    let b = byte(u);
    Some(match b % 8 {
        0 => return None,
        1 => "0".into(),
        2 => "1".into(),
        3 => "3600".into(),
        4 => u32::MAX.to_string(),
        5 => "99999999999".into(),
        6 => "x".into(),
        _ => (u32::from(b) * 100).to_string(),
    })
}

fn gen_contact(u: &mut Unstructured, n: usize) -> Option<Contact> {
    let b = byte(u);
    match b % 6 {
        0 => None,
        1 => Some(Contact::Star),
        _ => {
            let count = 1 + usize::from(b / 8) % 3;
            let list = (0..count)
                .map(|_| {
                    let f = byte(u);
                    let uri = if f % 4 == 0 {
                        SipUri::new("mn.invalid")
                    } else {
                        let a = gen_addr(u, n);
                        uri_of(a, (f & 4 != 0).then_some("mn"), f & 8 != 0)
                    };
                    let mut c = NameAddr::new(uri);
                    if f & 0x10 != 0 {
                        c.params.push(("expires".into(), gen_expires(u)));
                    }
                    c
                })
                .collect();
            Some(Contact::Addrs(list))
        }
    }
}

fn gen_request(u: &mut Unstructured, n: usize) -> Request {
    let m = pick(
        u,
        &[0u8, 0, 1, 1, 1, 2, 3, 4, 5, 6], // REGISTER, INVITE, ACK, BYE, OPTIONS, CANCEL, other
    );
    let method = match m {
        0 => Method::Register,
        1 => Method::Invite,
        2 => Method::Ack,
        3 => Method::Bye,
        4 => Method::Options,
        5 => Method::Cancel,
        _ => Method::parse("FOO").expect("a token is a method"),
    };
    let uri = gen_request_uri(u, n);
    let mut from = NameAddr::new(gen_aor_uri(u));
    from.set_tag(format!("f{}", byte(u) % 4));
    let to = NameAddr::new(gen_aor_uri(u));
    let mut req = Request::new(method, uri)
        .with_from(from)
        .with_to(to)
        .with_call_id(format!("c{}@x", byte(u) % 6))
        .with_cseq(u32::from(byte(u)));
    req.headers.vias = gen_vias(u, n);
    req.headers.contact = gen_contact(u, n);
    req.headers.expires = gen_expires(u).and_then(|e| e.parse().ok());
    let mf = byte(u);
    req.headers.max_forwards = match mf % 8 {
        0 => None,
        1 => Some(0),
        2 => Some(1),
        3 => Some(u8::MAX),
        _ => Some(mf % 71),
    };
    let extra = byte(u);
    if extra & 1 != 0 {
        req = req.with_header(BYPASS_CACHE, BYPASS_VALUE);
    }
    req
}

fn gen_code(u: &mut Unstructured) -> u16 {
    let b = byte(u);
    match b % 12 {
        0 => 100,
        1 => 180,
        2..=4 => 200,
        5 => 302,
        6 => 404,
        7 => 480,
        8 => 483,
        9 => 503,
        10 => 603,
        _ => 100 + u16::from(b) * 3 % 600,
    }
}

// ----- samp_server -----------------------------------------------------------------------------

struct ServerWorld {
    now: Time,
    config: ServerConfig,
    servers: BTreeMap<TransportAddr, Server<NodeId>>,
    /// Datagrams between the servers: (from, to, bytes).
    flights: Vec<(TransportAddr, TransportAddr, Vec<u8>)>,
    /// Requests the servers forwarded out of the ring (the newest last), for honest answers.
    forwarded: Vec<(TransportAddr, Request)>,
    /// (Call-ID, CSeq number, method) → the Max-Forwards values seen on requests the ring took in.
    hops_in: BTreeMap<(String, u32, String), BTreeSet<u8>>,
}

const MAX_FLIGHTS: usize = 512;

impl ServerWorld {
    fn addrs(&self) -> Vec<TransportAddr> {
        self.servers.keys().copied().collect()
    }

    /// Feed a datagram to server `to` through its socket codec, then check and route its outputs.
    fn deliver(&mut self, from: TransportAddr, to: TransportAddr, bytes: &[u8]) {
        let Some(s) = self.servers.get_mut(&to) else {
            return;
        };
        let input = match W::decode(bytes) {
            Ok(Packet::Sip(msg)) => server::Input::Sip { from, msg },
            Ok(Packet::Chord(msg)) => server::Input::Chord { from, msg },
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        // what the checks of the outputs need to know about the input
        let mut relayed: Option<Response> = None;
        if let server::Input::Sip { msg, .. } = &input {
            match msg {
                Message::Request(r) => {
                    if let (Some(c), Some(q)) = (&r.headers.call_id, &r.headers.cseq) {
                        self.hops_in
                            .entry((c.clone(), q.seq, r.method.as_str().to_string()))
                            .or_default()
                            .insert(r.headers.max_forwards.unwrap_or(70));
                    }
                }
                Message::Response(r) => relayed = Some(r.clone()),
            }
        }
        let _ = s.handle(self.now, input);
        self.drain(to, relayed);
    }

    fn drain(&mut self, at: TransportAddr, relayed: Option<Response>) {
        let me = at;
        let mut outputs = Vec::new();
        {
            let s = self.servers.get_mut(&at).expect("server");
            while let Some(o) = s.poll() {
                outputs.push(o);
                assert!(outputs.len() <= 4_096, "unbounded output");
            }
        }
        let mut sip_outputs = 0;
        for o in outputs {
            match o {
                server::Output::Sip { to, msg } => {
                    sip_outputs += 1;
                    let bytes = encode_checked(&msg);
                    match &msg {
                        Message::Request(r) => self.check_forwarded(me, r),
                        Message::Response(r) => {
                            if let Some(input) = &relayed {
                                // a relayed response is the one received minus our top Via
                                assert_eq!(
                                    input.headers.vias.first().and_then(via_addr),
                                    Some(me),
                                    "relayed a response whose top Via is not ours"
                                );
                                let mut want = input.clone();
                                want.headers.vias.remove(0);
                                assert_eq!(r, &want, "a relayed response changed");
                                assert_eq!(r.headers.vias.first().and_then(via_addr), Some(to));
                            }
                        }
                    }
                    if self.servers.contains_key(&to) {
                        self.push(me, to, bytes);
                    } else if let Message::Request(r) = msg {
                        self.forwarded.push((to, r));
                        if self.forwarded.len() > 16 {
                            self.forwarded.remove(0);
                        }
                    }
                }
                server::Output::Chord { to, msg } => {
                    let mut bytes = Vec::new();
                    W::encode(&Packet::Chord(msg), &mut bytes);
                    if self.servers.contains_key(&to) {
                        self.push(me, to, bytes);
                    }
                }
                server::Output::Event(_) => {}
            }
        }
        if relayed.is_some() {
            assert!(sip_outputs <= 1, "one response relayed as {sip_outputs}");
        }
    }

    fn check_forwarded(&self, me: TransportAddr, r: &Request) {
        // the server's own Via on top, the request's below it
        assert_eq!(
            r.headers.vias.first().and_then(via_addr),
            Some(me),
            "a forwarded request without our Via on top"
        );
        assert!(
            r.headers.vias.len() >= 2,
            "forwarded without the sender's Via"
        );
        let mf = r
            .headers
            .max_forwards
            .expect("a forwarded request carries Max-Forwards");
        let (Some(c), Some(q)) = (&r.headers.call_id, &r.headers.cseq) else {
            panic!("a forwarded request without Call-ID or CSeq")
        };
        let seen = self
            .hops_in
            .get(&(c.clone(), q.seq, r.method.as_str().to_string()))
            .expect("forwarded a request the ring never received");
        assert!(
            mf < u8::MAX && seen.contains(&(mf + 1)),
            "forwarded with Max-Forwards {mf}, received {seen:?}"
        );
    }

    fn push(&mut self, from: TransportAddr, to: TransportAddr, bytes: Vec<u8>) {
        if self.flights.len() >= MAX_FLIGHTS {
            self.flights.remove(0);
        }
        self.flights.push((from, to, bytes));
    }

    fn timers(&mut self) {
        let now = self.now;
        for a in self.addrs() {
            self.servers
                .get_mut(&a)
                .expect("server")
                .handle_timeout(now);
            self.drain(a, None);
        }
    }

    fn check(&self) {
        for s in self.servers.values() {
            check_server_bounds(s, &self.config, self.now);
        }
    }
}

fn server_config(u: &mut Unstructured) -> ServerConfig {
    let mode = if byte(u) & 1 == 0 {
        ProxyMode::Proxy
    } else {
        ProxyMode::Redirect
    };
    let chord = chord::Config {
        max_pending: u16::from(byte(u) % 8),
        request_timeout: Duration::from_millis(200 + u64::from(byte(u)) * 10),
        ..chord::Config::default()
    };
    let e = byte(u);
    ServerConfig {
        mode,
        chord,
        max_anchor_bindings: usize::from(byte(u) % 5),
        max_home_bindings: usize::from(byte(u) % 5),
        cache_entries: usize::from(byte(u) % 5),
        cache_lifetime: Duration::from_secs(1 + u64::from(byte(u) % 60)),
        max_expires: match e % 4 {
            0 => 0,
            1 => 1,
            2 => 3_600,
            _ => u32::from(e) * 30,
        },
        default_expires: u32::from(byte(u)) * 30,
        max_discoveries: usize::from(byte(u) % 4),
        discovery_hold: Duration::from_millis(100 * (1 + u64::from(byte(u) % 50))),
        max_waiting: usize::from(byte(u) % 5),
    }
}

/// The body of the `samp_server` target.
pub fn samp_server(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let n = 1 + usize::from(byte(&mut u) % 3);
    let config = server_config(&mut u);
    let now = Time::ZERO;
    let mut w = ServerWorld {
        now,
        servers: ring(n, &config, now),
        config,
        flights: Vec::new(),
        forwarded: Vec::new(),
        hops_in: BTreeMap::new(),
    };
    let mut steps = 0;
    while !u.is_empty() && steps < 300 {
        steps += 1;
        let op = byte(&mut u);
        let (no_forwarded, quiet_net) = (w.forwarded.is_empty(), w.flights.is_empty());
        match op % 12 {
            3 | 4 if no_forwarded => {}
            7..=9 if quiet_net => {}
            // a structurally valid, adversarial request from anywhere to any server
            0..=2 => {
                let to = server_addr(usize::from(byte(&mut u)) % n);
                let from = gen_addr(&mut u, n);
                let req = gen_request(&mut u, n);
                let bytes = sip::encode(&Message::Request(req));
                w.deliver(from, to, &bytes);
            }
            // an honest answer to a request the ring forwarded out, from where it went
            3 | 4 if !w.forwarded.is_empty() => {
                let i = usize::from(byte(&mut u)) % w.forwarded.len();
                let (from, req) = w.forwarded[i].clone();
                let code = gen_code(&mut u);
                let mut resp = Response::to(&req, code, "Fuzz");
                if code != 100 {
                    resp = resp.with_to_tag("uas");
                }
                if byte(&mut u) & 1 == 0 {
                    resp = resp.with_contact(Contact::Addrs(vec![NameAddr::new(uri_of(
                        from,
                        Some("mn"),
                        true,
                    ))]));
                }
                let Some(to) = resp.headers.vias.first().and_then(via_addr) else {
                    continue;
                };
                let bytes = sip::encode(&Message::Response(resp));
                w.deliver(from, to, &bytes);
            }
            // a response nobody asked for: unknown branches, many Vias, ours on top or not
            5 => {
                let to = server_addr(usize::from(byte(&mut u)) % n);
                let from = gen_addr(&mut u, n);
                let mut req = gen_request(&mut u, n);
                if byte(&mut u) & 1 == 0 {
                    req.headers.vias.insert(
                        0,
                        Via::udp(server::ip_host(to.0.ip()), Some(5060), "z9hG4bKx"),
                    );
                }
                let code = gen_code(&mut u);
                let resp = Response::to(&req, code, "Odd").with_to_tag("t");
                let bytes = sip::encode(&Message::Response(resp));
                w.deliver(from, to, &bytes);
            }
            // raw bytes through the socket codec (SIP text, Chord binary, or neither)
            6 => {
                let to = server_addr(usize::from(byte(&mut u)) % n);
                let from = gen_addr(&mut u, n);
                let len = usize::from(byte(&mut u));
                let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec();
                w.deliver(from, to, &bytes);
            }
            // the network between the servers: deliver (any order), drop, duplicate
            7 | 8 if !w.flights.is_empty() => {
                let i = usize::from(byte(&mut u)) % w.flights.len();
                let (from, to, bytes) = w.flights.remove(i);
                w.deliver(from, to, &bytes);
            }
            9 if !w.flights.is_empty() => {
                let b = byte(&mut u);
                let i = usize::from(b) % w.flights.len();
                if b & 0x80 == 0 {
                    w.flights.remove(i);
                } else {
                    let f = w.flights[i].clone();
                    w.push(f.0, f.1, f.2);
                }
            }
            // time passes, timers fire
            10 => {
                let b = byte(&mut u);
                w.now = w.now + Duration::from_millis(u64::from(b) * u64::from(b) * 4);
                w.timers();
            }
            _ => {
                // jump to the earliest deadline
                if let Some(t) = w.servers.values().filter_map(|s| s.poll_timeout()).min() {
                    w.now = w.now.max(t);
                }
                w.timers();
            }
        }
        w.check();
    }
    // drain the network without timers: every message between servers is delivered once
    let mut budget = 20_000;
    while !w.flights.is_empty() && budget > 0 {
        budget -= 1;
        let (from, to, bytes) = w.flights.remove(0);
        w.deliver(from, to, &bytes);
        w.check();
    }
    // then nothing more arrives and time passes every expiry: every lookup ends, every binding
    // (and discovery) is gone
    w.flights.clear();
    let c = w.config.clone();
    let step = c.chord.request_timeout.max(c.chord.stabilize_every);
    let rounds =
        (usize::from(c.chord.max_hops.min(64)) + 8) * (usize::from(c.chord.request_retries) + 1);
    for round in 0.. {
        if w.servers.values().all(|s| s.waiting() == 0) {
            break;
        }
        assert!(round < rounds, "a request still waits for its lookup");
        w.now = w.now + step;
        w.timers();
        w.flights.clear();
    }
    w.now = w.now
        + Duration::from_secs(u64::from(bindings_limit(&c)))
        + c.discovery_hold
        + Duration::from_secs(1);
    w.timers();
    w.check();
    for s in w.servers.values() {
        assert_eq!(s.bindings().count(), 0, "a binding outlived every expiry");
        assert_eq!(s.next_expiry(), None, "a discovery outlived its hold");
        assert_eq!(s.waiting(), 0, "a request still waits for its lookup");
    }
}

// ----- samp_roles ------------------------------------------------------------------------------

/// `SAMP_TRACE=1` prints what the roles say (for reading a corpus input).
fn trace() -> bool {
    std::env::var_os("SAMP_TRACE").is_some()
}

/// The registration lifetime the MN asks for (`MobileConfig::default().expires`).
const MOBILE_EXPIRES: u32 = 3_600;

const CN_ADDR: &str = "10.2.0.5:5060";

fn coa(k: u8) -> TransportAddr {
    addr(&format!("10.1.0.{}:5060", 10 + k % 4))
}

fn mn_uri() -> SipUri {
    SipUri::parse("sip:mn@home.example").expect("uri")
}

struct RolesWorld {
    now: Time,
    config: ServerConfig,
    corr_config: CorrespondentConfig,
    servers: BTreeMap<TransportAddr, Server<NodeId>>,
    mn: MobileNode,
    cn: Correspondent,
    near: BTreeSet<TransportAddr>,
    flights: Vec<(TransportAddr, TransportAddr, Vec<u8>)>,
    obs: Observer,
    next_call: u64,
    /// When the MN last registered with its home.
    home_at: Option<Time>,
}

impl RolesWorld {
    fn lose(&mut self) {
        self.obs.losses = self.obs.losses.saturating_add(1);
    }

    fn push(&mut self, from: TransportAddr, to: TransportAddr, bytes: Vec<u8>) {
        if self.flights.len() >= MAX_FLIGHTS {
            self.flights.remove(0);
            self.lose();
        }
        self.flights.push((from, to, bytes));
    }

    fn send_sip(&mut self, from: TransportAddr, to: TransportAddr, msg: &Message) {
        let bytes = encode_checked(msg);
        if to == MCAST_GROUP {
            for s in self.near.clone() {
                self.push(from, s, bytes.clone());
            }
        } else {
            self.push(from, to, bytes);
        }
    }

    fn drain(&mut self) {
        let addrs: Vec<TransportAddr> = self.servers.keys().copied().collect();
        for a in addrs {
            let mut outs = Vec::new();
            let s = self.servers.get_mut(&a).expect("server");
            while let Some(o) = s.poll() {
                outs.push(o);
                assert!(outs.len() <= 4_096, "unbounded server output");
            }
            for o in outs {
                match o {
                    server::Output::Sip { to, msg } => self.send_sip(a, to, &msg),
                    server::Output::Chord { to, msg } => {
                        let mut bytes = Vec::new();
                        W::encode(&Packet::Chord(msg), &mut bytes);
                        self.push(a, to, bytes);
                    }
                    server::Output::Event(e) => {
                        if trace() {
                            eprintln!("{} server {a}: {e:?}", self.now);
                        }
                    }
                }
            }
        }
        let mut count = 0;
        while let Some(o) = self.mn.poll() {
            count += 1;
            assert!(count <= 4_096, "unbounded MN output");
            match o {
                mobile::Output::Sip { to, msg } => {
                    let from = self.mn.coa().expect("an MN sends only once attached");
                    self.send_sip(from, to, &msg)
                }
                mobile::Output::Event(e) => {
                    if trace() {
                        eprintln!("{} MN: {e:?}", self.now);
                    }
                    let at = self.mn.coa();
                    if let mobile::Event::Registered {
                        how: mobile::Registration::Home,
                        ..
                    } = e
                    {
                        self.home_at = Some(self.now);
                    }
                    self.obs.mn_event(&e, at);
                }
            }
        }
        count = 0;
        while let Some(o) = self.cn.poll() {
            count += 1;
            assert!(count <= 4_096, "unbounded CN output");
            match o {
                correspondent::Output::Sip { to, msg } => self.send_sip(addr(CN_ADDR), to, &msg),
                correspondent::Output::Event(e) => {
                    if trace() {
                        eprintln!("{} CN: {e:?}", self.now);
                    }
                    self.obs.cn_event(&e)
                }
            }
        }
    }

    fn deliver(&mut self, from: TransportAddr, to: TransportAddr, bytes: &[u8]) {
        if let Some(s) = self.servers.get_mut(&to) {
            let msg = W::decode(bytes).expect("what a role sends decodes");
            let input = match msg {
                Packet::Sip(msg) => server::Input::Sip { from, msg },
                Packet::Chord(msg) => server::Input::Chord { from, msg },
            };
            let _ = s.handle(self.now, input);
        } else if Some(to) == self.mn.coa() {
            let msg = SipWire::decode(bytes).expect("what a role sends decodes");
            let _ = self.mn.handle(self.now, mobile::Input::Sip { from, msg });
        } else if to == addr(CN_ADDR) {
            let msg = SipWire::decode(bytes).expect("what a role sends decodes");
            let _ = self
                .cn
                .handle(self.now, correspondent::Input::Sip { from, msg });
        }
        // else: nobody is at that address (an MN's earlier care-of address): lost
        self.drain();
    }

    fn deadline(&self) -> Option<Time> {
        self.servers
            .values()
            .filter_map(|s| s.poll_timeout())
            .chain(self.mn.poll_timeout())
            .chain(self.cn.poll_timeout())
            .min()
    }

    /// Let `d` pass and run the timers; `on_time`: stop at the first deadline on the way (so
    /// no timer fires late and what it sends flies before more time passes).
    fn advance(&mut self, d: Duration, on_time: bool) {
        let mut to = self.now + d;
        if on_time {
            if let Some(t) = self.deadline() {
                to = to.min(t.max(self.now));
            }
        }
        self.now = to;
        self.timers();
    }

    fn timers(&mut self) {
        let now = self.now;
        for s in self.servers.values_mut() {
            s.handle_timeout(now);
        }
        self.mn.handle_timeout(now);
        self.cn.handle_timeout(now);
        self.drain();
    }

    fn check(&self, quiet: bool) {
        assert!(
            invariants::session_only_with_callee(&self.obs),
            "{} violated: established {:?}, answered {:?}",
            Invariant::SessionOnlyWithCallee.name(),
            self.obs.established,
            self.obs.mn_answers
        );
        assert!(
            invariants::every_call_ends(&self.obs, quiet),
            "{} violated: {:?}",
            Invariant::EveryCallEnds.name(),
            self.obs.calls
        );
        assert!(self.cn.calls_in_progress() <= self.corr_config.max_calls);
        for s in self.servers.values() {
            check_server_bounds(s, &self.config, self.now);
        }
    }
}

/// The body of the `samp_roles` target.
pub fn samp_roles(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let flags = byte(&mut u);
    let n = 2 + usize::from(flags % 3);
    let config = ServerConfig {
        mode: if flags & 0x04 == 0 {
            ProxyMode::Proxy
        } else {
            ProxyMode::Redirect
        },
        max_anchor_bindings: 4,
        max_home_bindings: 4,
        cache_entries: 4,
        max_discoveries: 4,
        max_waiting: 8,
        chord: chord::Config {
            max_pending: 16,
            ..chord::Config::default()
        },
        ..ServerConfig::default()
    };
    let corr_config = CorrespondentConfig {
        ttc: flags & 0x10 == 0,
        max_calls: 4,
        ..CorrespondentConfig::default()
    };
    let now = Time::ZERO;
    let cn_anchor = server_addr(usize::from((flags >> 5) & 3) % n);
    // no loss, no duplicate, and time passes only once nothing is in flight (no message is late)
    let reliable = flags & 0x80 != 0;
    let hr = flags & 0x08 == 0;
    let mut w = RolesWorld {
        now,
        servers: ring(n, &config, now),
        config,
        mn: MobileNode::new(
            mn_uri(),
            MobileConfig {
                hr,
                ..MobileConfig::default()
            },
        ),
        cn: Correspondent::new(
            SipUri::parse("sip:cn@other.example").expect("uri"),
            addr(CN_ADDR),
            cn_anchor,
            corr_config.clone(),
        ),
        corr_config,
        near: BTreeSet::new(),
        flights: Vec::new(),
        obs: Observer::default(),
        next_call: 0,
        home_at: None,
    };
    let mut steps = 0;
    while !u.is_empty() && steps < 400 {
        steps += 1;
        let op = byte(&mut u);
        let quiet_net = w.flights.is_empty();
        match op % 16 {
            // an op on the network while nothing is in flight does nothing
            0..=6 if quiet_net => {}
            // nor do a loss or a duplicate in reliable mode, nor time while messages fly
            5..=8 if reliable && !quiet_net => {}
            // the network: deliver in any order (mostly the oldest), lose, duplicate
            0..=3 if !w.flights.is_empty() => {
                let i = if op & 0x80 == 0 {
                    0
                } else {
                    usize::from(byte(&mut u)) % w.flights.len()
                };
                let (from, to, bytes) = w.flights.remove(i);
                w.deliver(from, to, &bytes);
            }
            4 if !w.flights.is_empty() => {
                // a burst in order
                for _ in 0..1 + op / 16 {
                    if w.flights.is_empty() {
                        break;
                    }
                    let (from, to, bytes) = w.flights.remove(0);
                    w.deliver(from, to, &bytes);
                }
            }
            5 if !w.flights.is_empty() => {
                let i = usize::from(byte(&mut u)) % w.flights.len();
                w.flights.remove(i);
                w.lose();
            }
            6 if !w.flights.is_empty() => {
                let i = usize::from(byte(&mut u)) % w.flights.len();
                let f = w.flights[i].clone();
                w.push(f.0, f.1, f.2);
            }
            // time passes a little (within or beyond δ), or to the next deadline
            7 => {
                let d = Duration::from_millis(u64::from(op / 16) * 10 + 1);
                w.advance(d, reliable);
            }
            8 => {
                if let Some(t) = w.deadline() {
                    w.now = w.now.max(t);
                }
                w.timers();
            }
            // the MN moves: a new care-of address, heard by a fuzz-chosen set of servers
            9 | 10 => {
                let to = coa(byte(&mut u));
                let mask = byte(&mut u);
                w.near = (0..n)
                    .filter(|k| mask & (1 << k) != 0)
                    .map(server_addr)
                    .collect();
                let random = u64::from(byte(&mut u));
                w.obs.moved();
                let now = w.now;
                let _ =
                    w.mn.handle(now, mobile::Input::Attached { coa: to, random });
                w.drain();
            }
            // the CN calls the MN (or somebody unknown)
            11 | 12 => {
                let callee = if op & 0x80 == 0 {
                    mn_uri()
                } else {
                    SipUri::parse("sip:nobody@home.example").expect("uri")
                };
                let call = CallId(w.next_call);
                w.next_call += 1;
                // registered here, idle, not about to expire, and a call the CN can take
                // (a call may take two tries: phase II from a stale cache, then past it)
                let fresh = w.home_at.is_some_and(|t| {
                    w.now + w.corr_config.call_timeout * 2 + Duration::from_secs(1)
                        < t + Duration::from_secs(u64::from(w.config.max_expires))
                });
                let here = matches!(w.obs.registered, Some((c, _)) if Some(c) == w.mn.coa())
                    && w.mn.is_idle()
                    && fresh
                    && w.cn.calls_in_progress() < w.corr_config.max_calls;
                w.obs.placed(call, here && callee == mn_uri());
                let now = w.now;
                let _ =
                    w.cn.handle(now, correspondent::Input::Call { call, callee });
                w.drain();
            }
            // the CN hangs up an established call: BYE to where the callee answered
            13 if w.obs.established.is_empty() => {}
            13 => {
                let i = usize::from(byte(&mut u)) % w.obs.established.len();
                let (call_id, at) = w.obs.established.iter().nth(i).cloned().expect("index");
                let mut uri = uri_of(at, Some("mn"), true);
                uri.params.clear();
                let mut from = NameAddr::new(SipUri::parse("sip:cn@other.example").expect("uri"));
                from.set_tag("cnbye");
                let bye = Request::new(Method::Bye, uri)
                    .with_via(Via::udp("10.2.0.5", Some(5060), "z9hG4bKbye"))
                    .with_from(from)
                    .with_to(NameAddr::new(mn_uri()))
                    .with_call_id(&call_id)
                    .with_cseq(1_000)
                    .with_max_forwards(70);
                w.send_sip(addr(CN_ADDR), at, &Message::Request(bye));
            }
            _ => {
                // time passes a lot: calls and registrations time out
                let d = Duration::from_millis(u64::from(byte(&mut u)) * 50);
                if !reliable || quiet_net {
                    w.advance(d, reliable);
                }
            }
        }
        w.check(false);
    }
    // quiet: the network drains, timers run until no call and no registration is under way
    let mut budget = 50_000;
    loop {
        assert!(budget > 0, "the roles never became quiet");
        budget -= 1;
        if !w.flights.is_empty() {
            let (from, to, bytes) = w.flights.remove(0);
            w.deliver(from, to, &bytes);
            w.check(false);
            continue;
        }
        if w.cn.calls_in_progress() == 0 && w.mn.is_idle() {
            break;
        }
        match w.deadline() {
            Some(t) => w.now = w.now.max(t),
            None => break,
        }
        w.timers();
        w.check(false);
    }
    w.check(true);
    if reliable {
        assert!(
            invariants::call_connects_when_registered(&w.obs, true),
            "{} violated: {:?}",
            Invariant::CallConnectsWhenRegistered.name(),
            w.obs.calls
        );
        let fresh = w.home_at.is_some_and(|t| {
            w.now < t + Duration::from_secs(u64::from(w.config.max_expires.min(MOBILE_EXPIRES)))
        });
        let servers: Vec<Server<NodeId>> = w.servers.values().cloned().collect();
        let aor = ip2p::samp::Aor::of(&mn_uri());
        assert!(
            !fresh
                || invariants::bindings_consistent(
                    &w.obs,
                    w.mn.is_idle(),
                    w.mn.coa(),
                    &aor,
                    hr,
                    &servers,
                    w.now
                ),
            "{} violated: registered {:?}",
            Invariant::BindingsConsistent.name(),
            w.obs.registered
        );
    }
    // past every expiry no server holds a binding
    w.flights.clear();
    w.now = w.now + Duration::from_secs(u64::from(bindings_limit(&w.config)) + 10);
    w.timers();
    for s in w.servers.values() {
        assert_eq!(
            s.bindings().count(),
            0,
            "{} violated: a binding outlived its expiry",
            Invariant::BindingsExpire.name()
        );
        assert_eq!(s.next_expiry(), None, "a discovery outlived its hold");
    }
}

// ----- seeds -----------------------------------------------------------------------------------

/// Hand-written seeds for `samp_server`: a configuration, then ops (see [`samp_server`]).
pub fn server_seeds() -> Vec<(String, Vec<u8>)> {
    // n = 1, Proxy, max_pending 4, timeout, max_expires 3600 (e % 4 == 2), capacities 2,
    // cache 30 s, default 3600 (120 * 30), discoveries 2, hold 1 s, waiting 2
    let one = [0u8, 0, 4, 80, 2, 2, 2, 2, 29, 120, 2, 9, 2];
    // the same with three servers, redirect mode
    let three = [2u8, 1, 4, 80, 2, 2, 2, 2, 29, 120, 2, 9, 2];
    // an op 0 request: to, from, method, uri, (user, domain), from (user, domain, tag), to (user,
    // domain), call-id, cseq, vias (count, per via: flags, addr), contact (kind, …), expires, mf,
    // extra
    let register_home = [
        0u8,
        0,
        3,
        /* REGISTER */ 0,
        /* uri: aor */ 3,
        0,
        0,
        /* from */ 0,
        0,
        0,
        /* to */ 0,
        0,
        /* call-id */ 1,
        /* cseq */ 1,
        /* one via */ 0,
        0,
        3,
        /* contact: one addr, port */ 2,
        8,
        3,
        /* expires */ 3,
        /* mf 70 */ 4 + 8 * 8,
        0,
    ];
    let invite_mn = [
        0u8,
        0,
        5,
        /* INVITE */ 2,
        /* uri: aor */ 3,
        0,
        0,
        1,
        0,
        1,
        0,
        0,
        2,
        7,
        0,
        0,
        5,
        /* no contact */ 0,
        0,
        /* mf 70 */ 4 + 8 * 8,
        0,
    ];
    let discovery = [
        0u8, 0, 3, /* REGISTER */ 0, /* mcast */ 0, 0, 0, 2, 0, 0, 3, 4, 1, 0, 3,
        /* contact */ 2, 8, 3, 3, 0, 0,
    ];
    let ack = [
        0u8, 0, 3, /* ACK */ 5, 0, /* from mn */ 0, 0, 2, 0, 0, 3, 5, 0, 0, 3, 0, 0, 0, 0,
    ];
    let answer = [3u8, 0, 2, 1];
    let answer_invite = [4u8, 0, 3, 0];
    let odd_response = [
        5u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    let many_vias_mf0 = [
        0u8, 0, 3, 2, 3, 0, 0, 1, 0, 1, 0, 0, 2, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    ];
    let raw = b"\x06\x00\x03\x10INVITE sip:x SIP";
    let time = [10u8, 200, 11, 10, 255];
    let network = [7u8, 0, 9, 0x80, 8, 0, 9, 0, 7, 0, 7, 0, 7, 0];

    let with = |cfg: &[u8], ops: &[&[u8]]| -> Vec<u8> {
        let mut v = cfg.to_vec();
        for o in ops {
            v.extend_from_slice(o);
        }
        v
    };
    vec![
        (
            "register-invite-answer".into(),
            with(&one, &[&register_home, &invite_mn, &answer, &time]),
        ),
        (
            "discovery-ack-invite".into(),
            with(&one, &[&discovery, &ack, &invite_mn, &answer_invite, &time]),
        ),
        (
            "ring-register-invite".into(),
            with(
                &three,
                &[
                    &register_home,
                    &network,
                    &network,
                    &invite_mn,
                    &network,
                    &answer,
                    &time,
                ],
            ),
        ),
        (
            "odd-responses-many-vias".into(),
            with(&one, &[&odd_response, &many_vias_mf0, &raw[..], &time]),
        ),
    ]
}

/// Hand-written seeds for `samp_roles`: flags, then ops (see [`samp_roles`]).
pub fn roles_seeds() -> Vec<(String, Vec<u8>)> {
    // attach at coa 0 heard by servers 0 and 1, let 10 ms pass, deliver everything, gather,
    // register at home, call, deliver, hang up
    let attach = |k: u8, mask: u8| [9u8, k, mask, 7];
    let deliver_all = [4u8 + 16 * 15; 8];
    let gather = [8u8, 8];
    let call = [11u8];
    let hang_up = [13u8, 0];
    let mut basic = vec![0x02]; // four servers, proxy, HR, TTC
    basic.extend_from_slice(&attach(0, 3));
    basic.extend_from_slice(&[7, 7]);
    basic.extend_from_slice(&deliver_all);
    basic.extend_from_slice(&gather);
    basic.extend_from_slice(&deliver_all);
    basic.extend_from_slice(&call);
    basic.extend_from_slice(&deliver_all);
    basic.extend_from_slice(&call);
    basic.extend_from_slice(&deliver_all);
    basic.extend_from_slice(&hang_up);
    basic.extend_from_slice(&deliver_all);

    // a move during a call, then a call on the stale cache entry; losses and duplicates
    let mut moves = basic.clone();
    moves.extend_from_slice(&attach(1, 1));
    moves.extend_from_slice(&[7, 7]);
    moves.extend_from_slice(&deliver_all);
    moves.extend_from_slice(&call);
    moves.extend_from_slice(&[6, 0, 5, 1]);
    moves.extend_from_slice(&deliver_all);
    moves.extend_from_slice(&gather);
    moves.extend_from_slice(&deliver_all);
    moves.extend_from_slice(&[15, 200]);

    // redirect mode without HR or TTC
    let mut rr = basic.clone();
    rr[0] = 0x02 | 0x04 | 0x08 | 0x10;

    // reordering: the newest message first, again and again
    let mut reorder = vec![0x01];
    reorder.extend_from_slice(&attach(2, 3));
    for _ in 0..40 {
        reorder.extend_from_slice(&[0x80, 255]);
    }
    reorder.extend_from_slice(&gather);
    reorder.extend_from_slice(&call);
    for _ in 0..40 {
        reorder.extend_from_slice(&[0x80, 255]);
    }

    // the same two in reliable mode (CallConnectsWhenRegistered and BindingsConsistent are
    // checked at the end), the second in redirect mode without HR
    let mut reliable = basic.clone();
    reliable[0] |= 0x80;
    let mut reliable_moves = moves.clone();
    reliable_moves[0] |= 0x80 | 0x04 | 0x08;

    vec![
        ("reliable-register-call-hangup".into(), reliable),
        ("reliable-rr-no-hr-moves".into(), reliable_moves),
        ("register-call-hangup".into(), basic),
        ("move-stale-cache-loss".into(), moves),
        ("redirect-no-hr-no-ttc".into(), rr),
        ("reorder".into(), reorder),
    ]
}
