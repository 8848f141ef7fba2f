//! Fuzz target bodies for STUNT #2: the wire format, and the real roles in the NAT world.
//!
//! - [`stunt_wire`]: arbitrary bytes through [`Msg::decode`], [`Signal::from_bytes`] and the
//!   incremental [`FrameReader`]; whatever decodes re-encodes to the very same bytes, and the
//!   reader never holds more than a frame. Then a [`Predictor`] is fed what a malicious prediction
//!   server could send (any message, any probe number, connects and failures in any order, time
//!   jumps): it must end with a prediction or a typed error, never panic, never hold more than its
//!   probes' worth of observations.
//! - [`stunt_roles`]: a [`World`] (NAT behaviours, filtering, seed, exchange, TTL override from the
//!   bytes) driven by the bytes: start, signal and packet deliveries, losses, timers, hostile
//!   signals. After every step the invariants of [`ip2p::stunt::invariants`] that the scenario's
//!   fault model promises are checked (LowTtlSynNeverReachesNatA, CallerSynAfterCalleeMapping,
//!   PortNeverBlocked when the TTL is right and no hostile signal came); at the end, with time run
//!   out, EveryAttemptEnds always and EventuallyEstablished when both NATs are predictable and
//!   nothing was lost or forged.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::machine::Machine;
use ip2p::stunt::nat::{Filtering, MappingBehaviour, Side, World, WorldConfig};
use ip2p::stunt::predict::{self, PredictConfig, Predictor, ProbeId, MAX_PROBES};
use ip2p::stunt::wire::{FrameReader, Mapping, Msg, PeerId, SessionId, Signal, MAX_BODY};
use ip2p::stunt::{Exchange, PunchConfig};
use ip2p::{Time, TransportAddr};

fn addr(u: &mut Unstructured<'_>) -> Result<TransportAddr> {
    let ip = Ipv4Addr::from(u.arbitrary::<u32>()?);
    Ok(TransportAddr(SocketAddr::new(
        IpAddr::V4(ip),
        u.arbitrary()?,
    )))
}

fn gen_signal(u: &mut Unstructured<'_>) -> Result<Signal> {
    let session = SessionId(u32::from(u.arbitrary::<u8>()? % 3));
    Ok(match u.arbitrary::<u8>()? % 5 {
        0 => Signal::Request { session },
        1 => Signal::Accept { session },
        2 => Signal::Reject { session },
        3 => Signal::Abort { session },
        _ => Signal::Mapping {
            session,
            mapping: Mapping {
                private: addr(u)?,
                public: addr(u)?,
            },
        },
    })
}

fn gen_msg(u: &mut Unstructured<'_>) -> Result<Msg> {
    Ok(match u.arbitrary::<u8>()? % 7 {
        0 => Msg::Register {
            id: PeerId(u.arbitrary()?),
        },
        1 => Msg::Registered {
            id: PeerId(u.arbitrary()?),
        },
        2 => Msg::Relay {
            to: PeerId(u.arbitrary()?),
            signal: gen_signal(u)?,
        },
        3 => Msg::Relayed {
            from: PeerId(u.arbitrary()?),
            signal: gen_signal(u)?,
        },
        4 => Msg::NoSuchPeer {
            to: PeerId(u.arbitrary()?),
        },
        5 => Msg::Probe {
            seq: u.arbitrary()?,
        },
        _ => Msg::Observed {
            seq: u.arbitrary::<u8>()? % 4,
            addr: addr(u)?,
        },
    })
}

// ----- stunt_wire --------------------------------------------------------------------------------

/// The body of the `stunt_wire` target.
pub fn stunt_wire(data: &[u8]) {
    if let Ok(m) = Msg::decode(data) {
        let mut again = Vec::new();
        m.encode(&mut again);
        assert_eq!(again, data, "decode → encode is not canonical");
    }
    if let Ok(s) = Signal::from_bytes(data) {
        assert_eq!(
            s.to_bytes(),
            data,
            "signal decode → encode is not canonical"
        );
    }
    // the same bytes as a stream, in chunks of varying size
    let mut r = FrameReader::new();
    let mut rest = data;
    let mut chunk = 1;
    while !rest.is_empty() {
        let take = chunk.min(rest.len());
        let (piece, tail) = rest.split_at(take);
        rest = tail;
        let mut piece = piece;
        while !piece.is_empty() {
            let (n, m) = r.push(piece);
            assert!(n > 0 && n <= piece.len());
            piece = &piece[n..];
            assert!(r.buffered() <= 2 + MAX_BODY);
            if let Some(Ok(m)) = m {
                let f = m.to_frame();
                assert!(f.len() <= 2 + MAX_BODY);
            }
        }
        chunk = chunk % 7 + 1;
    }
    let mut u = Unstructured::new(data);
    let _ = hostile_prediction_server(&mut u);
}

fn hostile_prediction_server(u: &mut Unstructured<'_>) -> Result<()> {
    let config = PredictConfig {
        probes: 2 + u.arbitrary::<u8>()? % (MAX_PROBES - 1),
        max_ttl: 1 + u.arbitrary::<u8>()? % 8,
        probe_timeout: Duration::from_millis(100),
        ttl: None,
    };
    let local: TransportAddr = "10.0.0.2:40000".parse().expect("addr");
    let servers: Vec<TransportAddr> = (0..3)
        .map(|i| {
            TransportAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                3478 + i,
            ))
        })
        .collect();
    let mut p = Predictor::new(config, local, &servers).expect("valid config");
    let mut now = Time::ZERO;
    let _ = p.handle(now, predict::Input::Start);
    let mut done = 0;
    let mut steps = 0u32;
    while steps < 200 && done == 0 {
        steps += 1;
        while let Some(o) = p.poll() {
            if let predict::Output::Done(_) = o {
                done += 1;
            }
        }
        if done > 0 || u.is_empty() {
            break;
        }
        let probe = ProbeId(u.arbitrary::<u8>()? % 12);
        let input = match u.arbitrary::<u8>()? % 6 {
            0 => predict::Input::Connected { probe },
            1 => predict::Input::TimeExceeded { probe },
            2 => predict::Input::Failed { probe },
            3 => predict::Input::Start,
            4 => {
                now = now + Duration::from_millis(u64::from(u.arbitrary::<u8>()?));
                p.handle_timeout(now);
                continue;
            }
            _ => predict::Input::Answer {
                probe,
                msg: gen_msg(u)?,
            },
        };
        let _ = p.handle(now, input);
        assert!(p.observed().len() <= usize::from(config.probes));
    }
    // time runs out: it must end
    for _ in 0..64 {
        while let Some(o) = p.poll() {
            if let predict::Output::Done(_) = o {
                done += 1;
            }
        }
        match p.poll_timeout() {
            Some(t) => p.handle_timeout(t.max(now)),
            None => break,
        }
    }
    while let Some(o) = p.poll() {
        if let predict::Output::Done(_) = o {
            done += 1;
        }
    }
    assert!(
        p.is_done(),
        "the predictor hangs: no deadline and no result"
    );
    assert!(done <= 1, "the predictor finished twice");
    Ok(())
}

// ----- stunt_roles -------------------------------------------------------------------------------

fn gen_mapping(u: &mut Unstructured<'_>) -> Result<MappingBehaviour> {
    Ok(match u.arbitrary::<u8>()? % 4 {
        0 => MappingBehaviour::Preserving,
        1 => MappingBehaviour::Offset(u.arbitrary::<u16>()? % 2000),
        2 => MappingBehaviour::Sequential {
            step: 1 + u.arbitrary::<u16>()? % 4,
        },
        _ => MappingBehaviour::Random,
    })
}

fn gen_filtering(u: &mut Unstructured<'_>) -> Result<Filtering> {
    Ok(match u.arbitrary::<u8>()? % 3 {
        0 => Filtering::Drop,
        1 => Filtering::Rst,
        _ => Filtering::Block,
    })
}

/// The body of the `stunt_roles` target.
pub fn stunt_roles(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = roles(&mut u);
}

fn roles(u: &mut Unstructured<'_>) -> Result<()> {
    let mapping = [gen_mapping(u)?, gen_mapping(u)?];
    let filtering = [gen_filtering(u)?, gen_filtering(u)?];
    let seed = u64::from(u.arbitrary::<u8>()?);
    let exchange = if u.arbitrary::<bool>()? {
        Exchange::Sms
    } else {
        Exchange::Proxy
    };
    let ttl = match u.arbitrary::<u8>()? % 4 {
        0 => Some(3),
        1 => Some(1),
        _ => None,
    };
    let mut callee = PunchConfig::default();
    callee.predict.ttl = ttl;
    let config = WorldConfig {
        mapping,
        filtering,
        seed,
        punch: [PunchConfig::default(), callee],
        exchange,
    };
    let mut w = World::new(config).expect("valid world");
    let ttl_ok = ttl.is_none();
    let predictable = mapping
        .iter()
        .all(|m| !matches!(m, MappingBehaviour::Random));
    let mut lost = false;
    let mut hostile = false;
    let mut started = false;
    let check = |w: &World, hostile: bool| {
        if ttl_ok && !hostile {
            assert!(
                w.low_ttl_syn_never_reaches_nat_a(),
                "LowTtlSynNeverReachesNatA"
            );
            assert!(
                w.caller_syn_after_callee_mapping(),
                "CallerSynAfterCalleeMapping"
            );
            assert!(w.port_never_blocked(), "PortNeverBlocked");
            assert_eq!(w.rejected, 0, "a role rejected an input of an honest world");
        }
        assert!(w.wan.len() <= ip2p::stunt::nat::MAX_IN_FLIGHT);
    };
    for _ in 0..256 {
        if u.is_empty() {
            break;
        }
        match u.arbitrary::<u8>()? % 9 {
            0 => {
                if !started {
                    started = true;
                    w.start();
                }
            }
            1 => {
                w.deliver_signal(Side::A);
            }
            2 => {
                w.deliver_signal(Side::B);
            }
            3 => {
                let i = usize::from(u.arbitrary::<u8>()?) % w.wan.len().max(1);
                w.deliver_packet(i);
            }
            4 => {
                let i = usize::from(u.arbitrary::<u8>()?) % w.wan.len().max(1);
                lost |= w.lose_packet(i);
            }
            5 => {
                w.fire_timer(Side::A);
            }
            6 => {
                w.fire_timer(Side::B);
            }
            7 => {
                hostile = true;
                let side = if u.arbitrary::<bool>()? {
                    Side::A
                } else {
                    Side::B
                };
                let s = gen_signal(u)?;
                w.inject_signal(side, s);
            }
            _ => {
                let side = if u.arbitrary::<bool>()? {
                    Side::A
                } else {
                    Side::B
                };
                w.deliver_signal(side);
            }
        }
        check(&w, hostile);
    }
    if !started {
        started = true;
        w.start();
    }
    // drain: everything in flight delivered, then timers, until nothing is left
    for _ in 0..10_000 {
        if w.deliver_signal(Side::A) || w.deliver_signal(Side::B) || w.deliver_packet(0) {
            check(&w, hostile);
            continue;
        }
        if !(w.fire_timer(Side::A) || w.fire_timer(Side::B)) {
            break;
        }
        check(&w, hostile);
    }
    assert!(started && w.finished(), "the world did not come to rest");
    assert!(w.both_done(), "EveryAttemptEnds: {:?}", w.results);
    if predictable && ttl_ok && !lost && !hostile {
        assert!(w.established(), "EventuallyEstablished: {:?}", w.results);
    }
    Ok(())
}

// ----- seeds -------------------------------------------------------------------------------------

/// Seeds for `stunt_wire`: one frame body of each message type.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    let session = SessionId(1);
    let mapping = Mapping {
        private: "10.0.1.2:40000".parse().expect("addr"),
        public: "80.100.1.1:40000".parse().expect("addr"),
    };
    let msgs = [
        ("register", Msg::Register { id: PeerId(1) }),
        ("registered", Msg::Registered { id: PeerId(1) }),
        (
            "relay-request",
            Msg::Relay {
                to: PeerId(2),
                signal: Signal::Request { session },
            },
        ),
        (
            "relayed-mapping",
            Msg::Relayed {
                from: PeerId(1),
                signal: Signal::Mapping { session, mapping },
            },
        ),
        ("no-such-peer", Msg::NoSuchPeer { to: PeerId(3) }),
        ("probe", Msg::Probe { seq: 0 }),
        (
            "observed",
            Msg::Observed {
                seq: 0,
                addr: mapping.public,
            },
        ),
    ];
    let mut v: Vec<(String, Vec<u8>)> = msgs
        .iter()
        .map(|(n, m)| {
            let mut b = Vec::new();
            m.encode(&mut b);
            (n.to_string(), b)
        })
        .collect();
    let stream: Vec<u8> = msgs.iter().flat_map(|(_, m)| m.to_frame()).collect();
    v.push(("stream".into(), stream));
    v
}

/// Seeds for `stunt_roles`: hand-written scenarios (one byte per choice).
pub fn roles_seeds() -> Vec<(String, Vec<u8>)> {
    // mapping A, mapping B, filtering A, filtering B, seed, exchange(bool), ttl choice, then steps
    let happy = vec![0, 0, 0, 0, 1, 0, 2, 0, 2, 1, 3, 0, 1, 5, 3, 0, 3, 0];
    let sms = vec![0, 0, 2, 2, 1, 1, 2, 0, 2, 1, 3, 0, 5, 3, 0, 3, 0];
    let sequential = vec![2, 1, 2, 1, 1, 1, 1, 0, 2, 2, 1, 3, 0, 1, 5, 3, 0];
    let symmetric = vec![3, 3, 1, 1, 9, 0, 2, 0, 2, 1, 2, 1, 5, 6];
    let ttl_too_large = vec![0, 0, 2, 2, 1, 0, 0, 0, 2, 1, 3, 0, 1, 5, 3, 0];
    let lossy = vec![0, 0, 0, 0, 1, 0, 2, 0, 2, 1, 4, 0, 1, 5, 4, 0, 6, 5];
    let hostile = vec![
        0, 0, 0, 0, 1, 0, 2, 7, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 7, 1, 1, 0,
    ];
    [
        ("happy", happy),
        ("sms", sms),
        ("sequential", sequential),
        ("symmetric", symmetric),
        ("ttl-too-large", ttl_too_large),
        ("lossy", lossy),
        ("hostile", hostile),
    ]
    .into_iter()
    .map(|(n, b)| (n.to_string(), b))
    .collect()
}
