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
use ip2p::broker::BrokerConfig;
use ip2p::ip2p::wire::{
    AppName, Control, Key, Kind, Mode, ModeSet, Nonce, Refusal, MAX_LEN, TAG_LEN,
};
use ip2p::ip2p::{Config, Input, Peer, SessionId};
use ip2p::machine::Machine;
use ip2p::sim::ip2p::{NetKind, Pair, CALLEE_LOCAL, NAT_B, RELAY};
use ip2p::{Msisdn, TransportAddr};

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
        _ => Kind::Refuse(*u.choose(&[
            Refusal::UnknownApp,
            Refusal::Busy,
            Refusal::Declined,
            Refusal::Unreachable,
        ])?),
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
        offer: ModeSet::from_bits(u.int_in_range(0..=15)?).filter(|o| !o.is_empty()),
        sms_reply: u.arbitrary()?,
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
        offer: None,
        sms_reply: false,
    };
    let stunt = Control {
        kind: Kind::Reply,
        addr: Some("[2001:db8::1]:5000".parse().expect("addr")),
        mapped: Some("198.51.100.7:6000".parse().expect("addr")),
        mode: Some(Mode::Stunt2),
        offer: None,
        sms_reply: false,
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

fn world(flags: u8) -> Pair {
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
    // bits 5-6: how the phones are reachable (steps B, E, D, or the caller by UPnP and the
    // callee by STUNT #2)
    let (ma, mb) = match (flags >> 5) & 3 {
        0 => (Mode::Direct, Mode::Direct),
        1 => (Mode::Upnp, Mode::Upnp),
        2 => (Mode::Stunt2, Mode::Stunt2),
        _ => (Mode::Upnp, Mode::Stunt2),
    };
    let mut w = Pair::new(Peer::new(ca.with_mode(ma)), Peer::new(cb.with_mode(mb)));
    w.check_rejections = true;
    w
}

fn check(w: &Pair) {
    if let Some(v) = w.obs.violated() {
        panic!("invariant {} violated: {:?}", v.name(), w.obs);
    }
    assert!(
        !w.rejection_changed,
        "a rejected input changed a peer or produced output"
    );
    assert!(
        w.a.requests() <= 4 && w.b.sessions() <= 2,
        "bounds exceeded"
    );
}

const CALLER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const SERVER_PORTS: [u16; 3] = [2121, 2122, 2123];

/// The body of the `ip2p_peer` target: the same world as the model ([`Pair`]), with the next
/// step picked by the fuzzer's bytes, plus bit flips, junk and host inputs out of turn.
pub fn ip2p_peer(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(flags) = u.arbitrary::<u8>() else {
        return;
    };
    drive(world(flags), flags, u);
}

/// The body of the `broker_pair` target: the same steps as `ip2p_peer`, on two brokered peers
/// whose networks (public, predictable, IGD, symmetric: two bits each), relay and fallback come
/// from the second byte; a third byte may make the callee's profile stale.
pub fn broker_pair(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(flags), Ok(nets), Ok(stale)) = (
        u.arbitrary::<u8>(),
        u.arbitrary::<u8>(),
        u.arbitrary::<u8>(),
    ) else {
        return;
    };
    let kind = |bits: u8| NetKind::ALL[usize::from(bits & 3)];
    let broker = BrokerConfig {
        relay: (nets & 0x10 != 0).then_some(RELAY),
        fallback: nets & 0x20 == 0,
        max_memory: 4,
        ..BrokerConfig::default()
    };
    let app = AppName::new("ftp").expect("name");
    let config = |me, other| {
        let mut c = Config::new(me)
            .with_peer(other, key())
            .with_app(app)
            .with_broker(broker.clone());
        c.sms_attempts = 1 + flags % 3;
        c.max_requests = 4;
        c.max_sessions = 2;
        if flags & 0x10 != 0 {
            c.cache_ttl = Duration::from_secs(20);
        }
        c
    };
    let mut w = Pair::with_nets(
        Peer::new(config(a(), b())),
        Peer::new(config(b(), a())),
        [kind(nets), kind(nets >> 2)],
    );
    if stale & 0x80 != 0 {
        // the callee's profile says something else than its network
        let claim = kind(stale).profile(CALLEE_LOCAL, NAT_B);
        let _ = w.feed(true, Input::Profile(claim));
    }
    w.check_rejections = true;
    drive(w, flags, u);
}

/// Run the fuzzer's steps on `w`, then quiesce and check the end-state invariants.
fn drive(mut w: Pair, flags: u8, mut u: Unstructured) {
    let app = AppName::new("ftp").expect("name");
    let other_app = AppName::new("telnet").expect("name");
    let mut steps = 0;
    while !u.is_empty() && steps < 400 {
        steps += 1;
        let Ok(op) = u.arbitrary::<u8>() else { break };
        let pick = u.arbitrary::<u8>().unwrap_or(0) as usize;
        match op % 24 {
            0 if w.issued.len() < 8 => {
                let nonce = Nonce(steps as u64);
                let which = if pick % 5 == 0 { other_app } else { app };
                let _ = w.resolve(which, nonce, 40000 + (pick % 2) as u16);
            }
            1 if w.a_activating => w.attach(false, CALLER_IP),
            2 if w.b_activating => w.attach(
                true,
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, (pick % 3) as u8 + 1)),
            ),
            3..=5 if !w.sms.is_empty() => w.deliver_sms(pick % w.sms.len()),
            6 | 7 if !w.ip.is_empty() => w.deliver_ip(pick % w.ip.len()),
            8 if !w.sms.is_empty() => {
                w.sms.remove(pick % w.sms.len());
            }
            9 if !w.sms_log.is_empty() => w.replay_sms(pick % w.sms_log.len()),
            10 if !w.sms_log.is_empty() => {
                // corruption: one flipped bit can never verify
                let m = w.sms_log[pick % w.sms_log.len()].clone();
                let mut payload = m.payload;
                let bit = u.arbitrary::<u16>().unwrap_or(0) as usize % (payload.len() * 8);
                payload[bit / 8] ^= 1 << (bit % 8);
                let from = if m.to_callee { a() } else { b() };
                w.inject(m.to_callee, Input::Sms { from, payload });
            }
            11 => {
                // hostile octets by SMS to either side, or over IP to the caller
                let len = pick % 150;
                let junk: Vec<u8> = (0..len).map(|_| u.arbitrary().unwrap_or(0)).collect();
                let callee = flags & 1 == 0 && pick % 3 != 0;
                let input = if callee {
                    Input::Sms {
                        from: a(),
                        payload: junk,
                    }
                } else if pick % 3 == 0 {
                    Input::Ip { payload: junk }
                } else {
                    Input::Sms {
                        from: b(),
                        payload: junk,
                    }
                };
                w.inject(callee, input);
            }
            12 if !w.b_starting.is_empty() => {
                let s = w.b_starting[pick % w.b_starting.len()];
                w.server_up(s, &SERVER_PORTS[pick % 3..]);
            }
            13 if !w.a_connecting.is_empty() => {
                let n = w.a_connecting[pick % w.a_connecting.len()].0;
                w.settle_connect(n, true);
            }
            14 if !w.a_connecting.is_empty() => {
                let n = w.a_connecting[pick % w.a_connecting.len()].0;
                w.settle_connect(n, false);
            }
            15 => w.timeout(false),
            16 => w.timeout(true),
            17 => {
                let now = w.ta.max(w.tb) + Duration::from_millis((pick as u64) * 250);
                w.advance(now);
            }
            18 => {
                let open: Vec<Nonce> = w
                    .issued
                    .iter()
                    .copied()
                    .filter(|n| w.a.is_open(*n))
                    .collect();
                if let Some(n) = open.get(pick % open.len().max(1)) {
                    w.close_request(*n);
                } else if let Some((s, _)) =
                    w.b_servers.get(pick % w.b_servers.len().max(1)).copied()
                {
                    w.close_session(s);
                }
            }
            19 => {
                // a host input out of turn: accepted or rejected cleanly (the world's
                // `check_rejections` compares the peer before and after)
                let n = Nonce((pick % 4) as u64);
                let s = SessionId {
                    peer: a(),
                    nonce: n,
                };
                match pick % 4 {
                    0 if !w.a_connecting.iter().any(|c| c.0 == n) => {
                        let _ = w.feed(false, Input::Connected(n));
                    }
                    1 if !w.a_connecting.iter().any(|c| c.0 == n) => {
                        let _ = w.feed(false, Input::ConnectFailed(n));
                    }
                    2 if !w.b_starting.contains(&s) => {
                        let _ = w.feed(true, Input::ServerFailed(s));
                    }
                    3 => {
                        w.b_servers.clear();
                        w.b_starting.clear();
                        w.b_activating = false;
                        let _ = w.feed(true, Input::BroadbandDown);
                    }
                    _ => {}
                }
            }
            20 | 21 => {
                // a host's mapping (AddPortMapping, prediction) is in place or fails
                let callee = pick % 2 == 1;
                let pending = &w.mapping[usize::from(callee)];
                if let Some(m) = pending.get(pick / 2 % pending.len().max(1)).copied() {
                    w.map_done(callee, m, op % 24 == 20);
                }
            }
            22 if !w.relay.is_empty() => w.relay_join(pick % w.relay.len()),
            23 if !w.relay.is_empty() => w.relay_drop(pick % w.relay.len()),
            _ => {}
        }
        check(&w);
    }
    // Quiesce: deliver what is in flight, attach radios, start servers, settle connects, close
    // what opened, and let time run; then every request must have ended and both phones be idle.
    for _ in 0..10_000 {
        if w.a_activating {
            w.attach(false, CALLER_IP);
        } else if w.b_activating {
            w.attach(true, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
        } else if !w.sms.is_empty() {
            w.deliver_sms(w.sms.len() - 1);
        } else if !w.ip.is_empty() {
            w.deliver_ip(0);
        } else if let Some(s) = w.b_starting.first().copied() {
            w.server_up(s, &[]);
        } else if let Some(m) = w.mapping[0].first().copied() {
            w.map_done(false, m, false);
        } else if let Some(m) = w.mapping[1].first().copied() {
            w.map_done(true, m, false);
        } else if let Some((n, _)) = w.a_connecting.first().copied() {
            w.settle_connect(n, false);
        } else if !w.relay.is_empty() {
            w.relay_drop(0);
        } else if let Some(n) = w.issued.iter().copied().find(|n| w.a.is_open(*n)) {
            w.close_request(n);
        } else if let Some((s, _)) = w.b_servers.first().copied() {
            w.close_session(s);
        } else if w.a.poll_timeout().is_some() {
            w.timeout(false);
        } else if w.b.poll_timeout().is_some() {
            w.timeout(true);
        } else {
            break;
        }
        check(&w);
    }
    assert!(
        w.every_request_ends(),
        "EveryRequestEnds: issued {:?}, ended {:?}, idle {}",
        w.issued,
        w.obs.ended,
        w.idle()
    );
    assert!(
        w.no_mapping_left(),
        "NoLeakedMapping: held {:?}, obs {:?}",
        w.held,
        w.obs.held
    );
    assert!(
        w.no_relay_left(),
        "NoHalfOpenRelay: waiting {:?}, joined {:?}",
        w.relay,
        w.relayed
    );
}

/// Hand-written seeds for `broker_pair`: flags, networks and stale bytes, then one scenario that
/// offers every step once in the order a call takes (resolve, attach, map, SMS, server, map,
/// answer, punch wait, connect, relay, close), on a few pairs of networks.
pub fn broker_seeds() -> Vec<(String, Vec<u8>)> {
    let call = [
        0, 0, 1, 0, 20, 0, 3, 0, 2, 0, 12, 0, 20, 1, 3, 0, 6, 0, 15, 0, 13, 0, 22, 0, 18, 0,
    ];
    let mut v = Vec::new();
    for (name, nets, stale) in [
        ("public-public", 0x00u8, 0u8),
        ("predictable-predictable", 0x15, 0),
        ("igd-igd", 0x1a, 0),
        ("symmetric-symmetric-relay", 0x1f, 0),
        ("symmetric-no-relay", 0x0f, 0),
        ("stale-public-claim", 0x1c, 0x80),
        ("stale-no-fallback", 0x3c, 0x80),
    ] {
        let mut bytes = vec![0, nets, stale];
        bytes.extend_from_slice(&call);
        // a second call after the first, as the memory of failed modes matters then
        bytes.extend_from_slice(&call);
        v.push((name.into(), bytes));
    }
    v
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
    // E.1-E.5: both mappings in place, the answer over IP to the caller's mapping
    let upnp = vec![
        0x20, 0, 0, 1, 0, 20, 0, 3, 0, 2, 0, 12, 0, 20, 1, 6, 0, 13, 0, 18, 0,
    ];
    // D.1-D.6: the answer by SMS, the low-TTL SYN, the caller's wait, then its SYN
    let stunt = vec![
        0x40, 0, 0, 1, 0, 20, 0, 3, 0, 2, 0, 12, 0, 20, 1, 3, 0, 15, 0, 13, 0, 18, 0,
    ];
    // the callee's mapping fails: it refuses by SMS, nothing is left mapped
    let unmappable = vec![0x60, 0, 0, 1, 0, 20, 0, 3, 0, 2, 0, 12, 0, 21, 1, 3, 0];
    vec![
        ("happy".into(), happy),
        ("retry".into(), retry),
        ("hostile".into(), hostile),
        ("upnp".into(), upnp),
        ("stunt".into(), stunt),
        ("unmappable".into(), unmappable),
    ]
}
