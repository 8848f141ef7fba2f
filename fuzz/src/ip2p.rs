//! Fuzz target bodies for iP2P: the control-message codec and two real peers.
//!
//! - [`ip2p_wire`]: arbitrary bytes through [`Control::parse`] and [`Control::decode`]; whatever
//!   parses re-encodes to the very same octets before the tag (the encoding is canonical), and
//!   verifies only under the right key and direction. The same bytes also build a message that must
//!   survive encode → decode and fit one SMS.
//! - [`ip2p_peer`]: a caller and a callee ([`Peer`]) over an SMS network and an IP network that
//!   lose, duplicate, reorder and corrupt, with radios, servers, connects, timers and an attacker
//!   all driven by the fuzzer's bytes. After every step the invariants of
//!   [`ip2p::ip2p::invariants`] hold and every rejected input left its peer unchanged; at the end,
//!   with the network drained and time run out, every request has ended (EveryRequestEnds).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::ip2p::invariants::Observer;
use ip2p::ip2p::wire::{AppName, Control, Key, Kind, Mode, Nonce, Refusal, MAX_LEN, TAG_LEN};
use ip2p::ip2p::{Config, Event, Input, Output, Peer, SessionId};
use ip2p::machine::Machine;
use ip2p::{Msisdn, Time, TransportAddr};

fn a() -> Msisdn {
    Msisdn::from_international_digits("886900000001").expect("number")
}
fn b() -> Msisdn {
    Msisdn::from_international_digits("886900000002").expect("number")
}
fn key() -> Key {
    Key::from_bytes([0x11; 32])
}

// ----- ip2p_wire -------------------------------------------------------------------------------

/// The body of the `ip2p_wire` target.
pub fn ip2p_wire(data: &[u8]) {
    if let Ok(msg) = Control::parse(data) {
        let again = msg.encode(&key(), &a(), &b());
        assert_eq!(
            again[..again.len() - TAG_LEN],
            data[..data.len() - TAG_LEN],
            "parse → encode is not canonical"
        );
        // the fuzzer's tag verifies only if it is the right one
        match Control::decode(data, &key(), &a(), &b()) {
            Ok(m) => {
                assert_eq!(m, msg);
                assert_eq!(again, data);
            }
            Err(e) => assert_eq!(e, ip2p::ip2p::wire::WireError::BadTag),
        }
    } else {
        assert!(Control::decode(data, &key(), &a(), &b()).is_err());
    }
    let mut u = Unstructured::new(data);
    if let Ok(m) = gen_control(&mut u) {
        let bytes = m.encode(&key(), &a(), &b());
        assert!(bytes.len() <= MAX_LEN);
        assert_eq!(Control::decode(&bytes, &key(), &a(), &b()), Ok(m));
        assert!(Control::decode(&bytes, &key(), &b(), &a()).is_err());
    }
}

fn gen_addr(u: &mut Unstructured) -> Result<TransportAddr> {
    let ip = if u.arbitrary::<bool>()? {
        IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?))
    } else {
        IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?))
    };
    Ok(TransportAddr(SocketAddr::new(ip, u.arbitrary()?)))
}

fn gen_control(u: &mut Unstructured) -> Result<Control> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._+-";
    let n = u.int_in_range(1..=32)?;
    let mut name = String::new();
    for _ in 0..n {
        name.push(CHARS[u.choose_index(CHARS.len())?] as char);
    }
    let app = AppName::new(&name).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let kind = match u.int_in_range(0..=2)? {
        0 => Kind::Request,
        1 => Kind::Reply,
        _ => Kind::Refuse(*u.choose(&[Refusal::UnknownApp, Refusal::Busy, Refusal::Declined])?),
    };
    Ok(Control {
        kind,
        nonce: Nonce(u.arbitrary()?),
        seq: u.arbitrary()?,
        app,
        addr: if u.arbitrary()? {
            Some(gen_addr(u)?)
        } else {
            None
        },
        mapped: if u.arbitrary()? {
            Some(gen_addr(u)?)
        } else {
            None
        },
        mode: if u.arbitrary()? {
            Some(*u.choose(&[Mode::Direct, Mode::Upnp, Mode::Stunt2, Mode::Relay])?)
        } else {
            None
        },
    })
}

/// Hand-written seeds for `ip2p_wire`: the encodings of a few messages.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    let app = AppName::new("ftp").expect("name");
    let req = Control {
        kind: Kind::Request,
        nonce: Nonce(7),
        seq: 1,
        app,
        addr: Some("192.0.2.1:40000".parse().expect("addr")),
        mapped: None,
        mode: None,
    };
    let stunt = Control {
        kind: Kind::Reply,
        addr: Some("[2001:db8::1]:5000".parse().expect("addr")),
        mapped: Some("198.51.100.7:6000".parse().expect("addr")),
        mode: Some(Mode::Stunt2),
        ..req
    };
    let refuse = Control {
        kind: Kind::Refuse(Refusal::Busy),
        addr: None,
        ..req
    };
    vec![
        ("request".into(), req.encode(&key(), &a(), &b())),
        ("reply-stunt".into(), stunt.encode(&key(), &a(), &b())),
        ("refuse".into(), refuse.encode(&key(), &a(), &b())),
    ]
}

// ----- ip2p_peer -------------------------------------------------------------------------------

struct World {
    a: Peer,
    b: Peer,
    now: Time,
    sms: Vec<(bool, Vec<u8>)>,
    ip: Vec<(TransportAddr, Vec<u8>)>,
    log: Vec<(bool, Vec<u8>)>,
    a_listening: Vec<(Nonce, u16)>,
    a_connecting: Vec<(Nonce, TransportAddr)>,
    a_activating: bool,
    b_activating: bool,
    b_starting: Vec<SessionId>,
    b_servers: Vec<(SessionId, TransportAddr)>,
    issued: Vec<Nonce>,
    obs: Observer,
}

const MAX_QUEUE: usize = 64;

impl World {
    fn new(flags: u8) -> World {
        let app = AppName::new("ftp").expect("name");
        let mut ca = Config::new(a()).with_peer(b(), key()).with_app(app);
        let mut cb = Config::new(b()).with_peer(a(), key()).with_app(app);
        for c in [&mut ca, &mut cb] {
            c.sms_attempts = 1 + flags % 3;
            c.max_requests = 4;
            c.max_sessions = 2;
            if flags & 0x10 != 0 {
                c.cache_ttl = Duration::from_secs(20);
            }
        }
        World {
            a: Peer::new(ca),
            b: Peer::new(cb),
            now: Time::ZERO,
            sms: Vec::new(),
            ip: Vec::new(),
            log: Vec::new(),
            a_listening: Vec::new(),
            a_connecting: Vec::new(),
            a_activating: false,
            b_activating: false,
            b_starting: Vec::new(),
            b_servers: Vec::new(),
            issued: Vec::new(),
            obs: Observer::default(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.a.poll() {
            self.obs.caller(&o);
            match o {
                Output::SendSms { payload, .. } => self.send_sms(true, payload),
                Output::Listen { nonce, port } => self.a_listening.push((nonce, port)),
                Output::StopListening { nonce, port } => {
                    self.a_listening.retain(|l| *l != (nonce, port))
                }
                Output::Connect { nonce, to, .. } => self.a_connecting.push((nonce, to)),
                Output::ActivateBroadband => self.a_activating = true,
                Output::DeactivateBroadband => self.a_activating = false,
                Output::Event(Event::Failed { nonce, .. }) => {
                    self.a_connecting.retain(|c| c.0 != nonce)
                }
                _ => {}
            }
        }
        while let Some(o) = self.b.poll() {
            self.obs.callee(&o);
            match o {
                Output::SendSms { payload, .. } => self.send_sms(false, payload),
                Output::SendIp { to, payload } if self.ip.len() < MAX_QUEUE => {
                    self.ip.push((to, payload));
                }
                Output::StartServer { session, .. } => self.b_starting.push(session),
                Output::StopServer(s) => {
                    self.b_starting.retain(|x| *x != s);
                    self.b_servers.retain(|x| x.0 != s);
                }
                Output::ActivateBroadband => self.b_activating = true,
                Output::DeactivateBroadband => {
                    self.b_activating = false;
                    self.b_servers.clear();
                }
                Output::Event(Event::SessionFailed { session, .. }) => {
                    self.b_starting.retain(|x| *x != session);
                    self.b_servers.retain(|x| x.0 != session);
                }
                _ => {}
            }
        }
    }

    fn send_sms(&mut self, to_b: bool, payload: Vec<u8>) {
        assert!(payload.len() <= MAX_LEN, "a control SMS over 140 octets");
        if self.log.len() < MAX_QUEUE {
            self.log.push((to_b, payload.clone()));
        }
        if self.sms.len() < MAX_QUEUE {
            self.sms.push((to_b, payload));
        }
    }

    /// Feed a peer; a rejected input must leave it unchanged.
    fn feed(&mut self, to_b: bool, input: Input) {
        let now = self.now;
        let p = if to_b { &mut self.b } else { &mut self.a };
        let before = p.clone();
        if p.handle(now, input).is_err() {
            assert!(*p == before, "a rejected input changed the peer");
            assert!(p.poll().is_none(), "a rejected input produced output");
        }
        self.drain();
    }

    fn deliver_ip(&mut self, i: usize) {
        let (to, payload) = self.ip.remove(i);
        if self.a_listening.iter().any(|l| l.1 == to.0.port()) && self.a.ip() == Some(to.0.ip()) {
            self.feed(false, Input::Ip { payload });
        }
    }

    fn timeout(&mut self) {
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        if let Some(t) = next {
            self.now = self.now.max(t);
            let now = self.now;
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
            self.drain();
        }
    }

    fn check(&self) {
        if let Some(v) = self.obs.violated() {
            panic!("invariant {} violated: {:?}", v.name(), self.obs);
        }
    }
}

/// The body of the `ip2p_peer` target.
pub fn ip2p_peer(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(flags) = u.arbitrary::<u8>() else {
        return;
    };
    let mut w = World::new(flags);
    let app = AppName::new("ftp").expect("name");
    let other_app = AppName::new("telnet").expect("name");
    let mut steps = 0;
    while !u.is_empty() && steps < 400 {
        steps += 1;
        let Ok(op) = u.arbitrary::<u8>() else { break };
        let pick = u.arbitrary::<u8>().unwrap_or(0) as usize;
        match op % 20 {
            0 if w.issued.len() < 8 => {
                let nonce = Nonce(w.issued.len() as u64 + 1);
                w.issued.push(nonce);
                let which = if pick % 5 == 0 { other_app } else { app };
                let before = w.a.clone();
                if w.a
                    .handle(
                        w.now,
                        Input::Resolve {
                            to: b(),
                            app: which,
                            nonce,
                            port: 40000 + (pick % 2) as u16,
                        },
                    )
                    .is_err()
                {
                    assert!(w.a == before);
                    w.issued.pop();
                }
                w.drain();
            }
            1 if w.a_activating => {
                w.a_activating = false;
                w.feed(
                    false,
                    Input::BroadbandUp {
                        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    },
                );
            }
            2 if w.b_activating => {
                w.b_activating = false;
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, (pick % 3) as u8 + 1));
                w.feed(true, Input::BroadbandUp { ip });
            }
            3..=5 if !w.sms.is_empty() => {
                let (to_b, payload) = w.sms.remove(pick % w.sms.len());
                let from = if to_b { a() } else { b() };
                w.feed(to_b, Input::Sms { from, payload });
            }
            6 | 7 if !w.ip.is_empty() => w.deliver_ip(pick % w.ip.len()),
            8 if !w.sms.is_empty() => {
                w.sms.remove(pick % w.sms.len());
            }
            9 if !w.log.is_empty() => {
                // duplicate or replay: a second delivery may be answered again but changes no state
                let (to_b, payload) = w.log[pick % w.log.len()].clone();
                let from = if to_b { a() } else { b() };
                w.feed(to_b, Input::Sms { from, payload });
            }
            10 if !w.log.is_empty() => {
                // corruption: one flipped bit can never verify
                let (to_b, mut payload) = w.log[pick % w.log.len()].clone();
                let bit = u.arbitrary::<u16>().unwrap_or(0) as usize % (payload.len() * 8);
                payload[bit / 8] ^= 1 << (bit % 8);
                let from = if to_b { a() } else { b() };
                let p = if to_b { &mut w.b } else { &mut w.a };
                let before = p.clone();
                assert!(p.handle(w.now, Input::Sms { from, payload }).is_err());
                if *p != before {
                    w.obs.forged_changed = true;
                }
                w.drain();
            }
            11 => {
                // hostile bytes from the attacker, by SMS to either side or over IP to the caller
                let len = pick % 150;
                let junk: Vec<u8> = (0..len).map(|_| u.arbitrary().unwrap_or(0)).collect();
                let to_b = flags & 1 == 0;
                let p = if to_b { &mut w.b } else { &mut w.a };
                let before = p.clone();
                let input = if pick % 3 == 0 {
                    Input::Ip { payload: junk }
                } else {
                    Input::Sms {
                        from: if to_b { a() } else { b() },
                        payload: junk,
                    }
                };
                if p.handle(w.now, input).is_ok() || *p != before {
                    // random bytes do not carry a valid tag
                    w.obs.forged_changed = true;
                }
                w.drain();
            }
            12 if !w.b_starting.is_empty() => {
                let s = w.b_starting.remove(pick % w.b_starting.len());
                let port = 2121 + (pick % 3) as u16;
                let taken = w.b_servers.iter().any(|x| x.1 .0.port() == port);
                match w.b.ip() {
                    Some(ip) if !taken => {
                        w.b_servers
                            .push((s, TransportAddr(SocketAddr::new(ip, port))));
                        w.feed(true, Input::ServerListening { session: s, port });
                    }
                    _ => w.feed(true, Input::ServerFailed(s)),
                }
            }
            13 if !w.a_connecting.is_empty() => {
                let (n, to) = w.a_connecting.remove(pick % w.a_connecting.len());
                if let Some(s) = w.b_servers.iter().find(|x| x.1 == to).map(|x| x.0) {
                    w.feed(false, Input::Connected(n));
                    w.feed(true, Input::Accepted(s));
                } else {
                    w.feed(false, Input::ConnectFailed(n));
                }
            }
            14 if !w.a_connecting.is_empty() => {
                let (n, _) = w.a_connecting.remove(pick % w.a_connecting.len());
                w.feed(false, Input::ConnectFailed(n));
            }
            15 | 16 => w.timeout(),
            17 => {
                w.now = w.now + Duration::from_millis((pick as u64) * 250);
                let now = w.now;
                w.a.handle_timeout(now);
                w.b.handle_timeout(now);
                w.drain();
            }
            18 => {
                let open: Vec<Nonce> = w
                    .issued
                    .iter()
                    .copied()
                    .filter(|n| w.a.is_open(*n))
                    .collect();
                if let Some(n) = open.get(pick % open.len().max(1)) {
                    w.feed(false, Input::CloseRequest(*n));
                } else if let Some((s, _)) =
                    w.b_servers.get(pick % w.b_servers.len().max(1)).copied()
                {
                    w.b_servers.retain(|x| x.0 != s);
                    w.feed(true, Input::CloseSession(s));
                }
            }
            19 => {
                // an arbitrary host input out of turn: accepted or rejected cleanly
                let n = Nonce((pick % 4) as u64);
                let s = SessionId {
                    peer: a(),
                    nonce: n,
                };
                let (to_b, input) = match pick % 5 {
                    0 => (false, Input::Connected(n)),
                    1 => (false, Input::ConnectFailed(n)),
                    2 => (true, Input::Accepted(s)),
                    3 => (true, Input::ServerFailed(s)),
                    _ => (true, Input::BroadbandDown),
                };
                if matches!(input, Input::BroadbandDown) {
                    w.b_servers.clear();
                    w.b_starting.clear();
                    w.b_activating = false;
                }
                if matches!(input, Input::Connected(_) | Input::ConnectFailed(_)) {
                    w.a_connecting.retain(|c| c.0 != n);
                }
                if matches!(input, Input::ServerFailed(_)) {
                    w.b_starting.retain(|x| *x != s);
                    w.b_servers.retain(|x| x.0 != s);
                }
                if matches!(input, Input::Accepted(_)) && !w.b_servers.iter().any(|x| x.0 == s) {
                    // no caller connected to it: the host would never say so
                    continue;
                }
                w.feed(to_b, input);
            }
            _ => {}
        }
        w.check();
        assert!(
            w.a.requests() <= 4 && w.b.sessions() <= 2,
            "bounds exceeded"
        );
    }
    // Quiesce: deliver what is in flight, attach radios, start servers, settle connects, close
    // what opened, and let time run; then every request must have ended and both phones be idle.
    for _ in 0..10_000 {
        if w.a_activating {
            w.a_activating = false;
            w.feed(
                false,
                Input::BroadbandUp {
                    ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                },
            );
        } else if w.b_activating {
            w.b_activating = false;
            w.feed(
                true,
                Input::BroadbandUp {
                    ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                },
            );
        } else if let Some((to_b, payload)) = w.sms.pop() {
            let from = if to_b { a() } else { b() };
            w.feed(to_b, Input::Sms { from, payload });
        } else if !w.ip.is_empty() {
            w.deliver_ip(0);
        } else if let Some(s) = w.b_starting.pop() {
            w.feed(true, Input::ServerFailed(s));
        } else if let Some((n, _)) = w.a_connecting.pop() {
            w.feed(false, Input::ConnectFailed(n));
        } else if let Some(n) = w.issued.iter().copied().find(|n| w.a.is_open(*n)) {
            w.feed(false, Input::CloseRequest(n));
        } else if let Some((s, _)) = w.b_servers.pop() {
            w.feed(true, Input::CloseSession(s));
        } else if w.a.poll_timeout().is_some() || w.b.poll_timeout().is_some() {
            w.timeout();
        } else {
            break;
        }
        w.check();
    }
    let idle = w.a.requests() == 0 && w.b.sessions() == 0 && !w.a.radio_on() && !w.b.radio_on();
    assert!(
        w.obs.every_request_ends(&w.issued, idle),
        "EveryRequestEnds: issued {:?}, ended {:?}, idle {idle}",
        w.issued,
        w.obs.ended
    );
}

/// Hand-written seeds for `ip2p_peer`: byte scenarios (op, pick) pairs after a flags byte.
pub fn peer_seeds() -> Vec<(String, Vec<u8>)> {
    // happy path: resolve, attach A, deliver SMS, attach B, server up, deliver answer, connect
    let happy = vec![0, 0, 0, 1, 0, 3, 0, 2, 0, 12, 0, 6, 0, 13, 0, 18, 0];
    // lost SMS, retry after a timeout, then success
    let retry = vec![1, 0, 0, 1, 0, 8, 0, 15, 0, 3, 0, 2, 1, 12, 1, 6, 0, 13, 0];
    // replay after the end, a corrupted SMS, junk, a forged answer over IP
    let hostile = vec![
        2, 0, 0, 1, 0, 3, 0, 2, 0, 12, 0, 6, 0, 13, 0, 18, 0, 18, 0, 9, 0, 10, 0, 0, 5, 11, 40, 1,
        2, 3,
    ];
    vec![
        ("happy".into(), happy),
        ("retry".into(), retry),
        ("hostile".into(), hostile),
    ]
}
