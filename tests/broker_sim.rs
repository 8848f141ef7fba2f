//! P2PBroker in the simulated world: two brokered iP2P peers on every pair of networks
//! (public, predictable NAT, NAT with an IGD, symmetric NAT), with and without a relay, driven
//! to the end. Asserts the mode chosen is the cheapest the two networks allow, that a mode
//! failing at run time falls back to the next, and that nothing is left mapped or at the relay.

use ip2p::broker::BrokerConfig;
use ip2p::ip2p::wire::{AppName, Key, Mode, Nonce, Refusal};
use ip2p::ip2p::{Config, Failure, Input, Peer};
use ip2p::machine::Machine;
use ip2p::sim::ip2p::{NetKind, Pair, CALLEE_LOCAL, CALLER_LOCAL, RELAY};
use ip2p::Msisdn;

fn a() -> Msisdn {
    "+886900000001".parse().unwrap()
}
fn b() -> Msisdn {
    "+886900000002".parse().unwrap()
}
fn ftp() -> AppName {
    AppName::new("ftp").unwrap()
}

fn world(nets: [NetKind; 2], relay: bool) -> Pair {
    let key = Key::from_bytes([3; 32]);
    let broker = BrokerConfig {
        relay: relay.then_some(RELAY),
        ..BrokerConfig::default()
    };
    let alice = Peer::new(
        Config::new(a())
            .with_peer(b(), key.clone())
            .with_broker(broker.clone()),
    );
    let bob = Peer::new(
        Config::new(b())
            .with_peer(a(), key)
            .with_app(ftp())
            .with_broker(broker),
    );
    Pair::with_nets(alice, bob, nets)
}

/// What happened to the request.
#[derive(Debug, Default)]
struct Outcome {
    /// The mode it connected in.
    connected: Option<Mode>,
    /// Modes that failed, in order.
    failed_modes: Vec<Mode>,
    /// The final failure, if it failed.
    failure: Option<Failure>,
}

/// Everything the hosts and networks can do, done as soon as possible; timers fire when
/// nothing else can happen. `map_ok` decides whether mappings the network allows succeed.
fn run(w: &mut Pair, nonce: Nonce, map_ok: bool) -> Outcome {
    let mut out = Outcome::default();
    w.resolve(ftp(), nonce, 40000).unwrap();
    for _ in 0..500 {
        let before = w.clone();
        if w.a_activating {
            w.attach(false, CALLER_LOCAL);
        }
        if w.b_activating {
            w.attach(true, CALLEE_LOCAL);
        }
        while !w.sms.is_empty() {
            w.deliver_sms(0);
        }
        while !w.ip.is_empty() {
            w.deliver_ip(0);
        }
        for s in w.b_starting.clone() {
            w.server_up(s, &[2121, 2122]);
        }
        for side in [false, true] {
            for m in w.mapping[usize::from(side)].clone() {
                w.map_done(side, m, map_ok);
            }
        }
        for i in (0..w.relay.len()).rev() {
            w.relay_join(i);
        }
        for (n, _) in w.a_connecting.clone() {
            w.settle_connect(n, true);
        }
        if w.a.is_open(nonce) && out.connected.is_none() {
            out.connected = w.a.request_mode(nonce);
        }
        if out.connected.is_some() || (w.a.requests() == 0 && w.issued.contains(&nonce)) {
            break;
        }
        if *w == before {
            // nothing else can happen now: the earlier deadline fires
            let (ta, tb) = (w.a.poll_timeout(), w.b.poll_timeout());
            match (ta, tb) {
                (None, None) => break,
                (Some(x), Some(y)) => w.timeout(y < x),
                (Some(_), None) => w.timeout(false),
                (None, Some(_)) => w.timeout(true),
            }
        }
    }
    out.failed_modes = w.obs.failed_modes(nonce);
    out.failure = w.obs.failure(nonce);
    out
}

/// Close everything and let every timer run out: nothing may be left mapped or at the relay.
fn wind_down(w: &mut Pair, nonce: Nonce) {
    w.close_request(nonce);
    for s in w.b.session_ids() {
        w.close_session(s);
    }
    for n in w.issued.clone() {
        w.close_request(n);
    }
    for _ in 0..100 {
        if w.a.poll_timeout().is_none() && w.b.poll_timeout().is_none() {
            break;
        }
        w.timeout(false);
        w.timeout(true);
    }
    assert!(w.obs.connect_only_to_announced(), "{:?}", w.obs);
    assert!(w.obs.no_connect_before_identification());
    assert!(w.obs.at_most_one_session(), "{:?}", w.obs);
    assert!(w.every_request_ends(), "{:?}", w.obs);
    assert!(
        w.no_mapping_left(),
        "mappings left: {:?} {:?}",
        w.held,
        w.mapping
    );
    assert!(
        w.no_relay_left(),
        "relay left: {:?} {:?}",
        w.relay,
        w.relayed
    );
    assert!(w.idle(), "not idle");
}

/// The cheapest mode the two networks allow (the broker's promise), `None` if none.
fn expected(caller: NetKind, callee: NetKind, relay: bool) -> Option<Mode> {
    use NetKind::*;
    match (caller, callee) {
        (_, Public) => Some(Mode::Direct),
        (_, Igd) => Some(Mode::Upnp),
        (Public | Predictable | Igd, Predictable) => Some(Mode::Stunt2),
        _ => relay.then_some(Mode::Relay),
    }
}

#[test]
fn every_combination_connects_in_the_cheapest_mode_or_fails_typed() {
    for relay in [true, false] {
        for ca in NetKind::ALL {
            for cb in NetKind::ALL {
                let mut w = world([ca, cb], relay);
                let o = run(&mut w, Nonce(11), true);
                let want = expected(ca, cb, relay);
                assert_eq!(o.connected, want, "{ca:?} → {cb:?}, relay {relay}: {o:?}");
                assert!(o.failed_modes.is_empty(), "{ca:?} → {cb:?}: {o:?}");
                if want.is_none() {
                    assert_eq!(o.failure, Some(Failure::Refused(Refusal::Unreachable)));
                }
                wind_down(&mut w, Nonce(11));
            }
        }
    }
}

#[test]
fn a_callee_whose_igd_fails_falls_back_without_another_sms() {
    // the callee's profile says IGD, but every mapping fails: STUNT #2 would need a mapping
    // too, so the callee ends up at the relay — all within one request SMS
    let mut w = world([NetKind::Predictable, NetKind::Igd], true);
    let o = run(&mut w, Nonce(12), false);
    assert_eq!(o.connected, Some(Mode::Relay), "{o:?}");
    assert_eq!(w.sms_log.iter().filter(|s| s.to_callee).count(), 1);
    wind_down(&mut w, Nonce(12));
}

#[test]
fn a_mode_that_fails_to_connect_is_dropped_and_the_next_is_tried() {
    // the callee believes it is public, but a symmetric NAT is in front of it: direct fails,
    // then STUNT #2 cannot be predicted, and the relay carries the connection
    let mut w = world([NetKind::Public, NetKind::Symmetric], true);
    let lie = NetKind::Public.profile(CALLEE_LOCAL, CALLEE_LOCAL);
    w.feed(true, Input::Profile(lie)).unwrap();
    let o = run(&mut w, Nonce(13), true);
    assert_eq!(o.failed_modes, [Mode::Direct], "{o:?}");
    assert_eq!(o.connected, Some(Mode::Relay), "{o:?}");
    // the failure is remembered for this network and peer: the next request does not offer it
    let network = w.a.profile().unwrap().network();
    let offer = w.a.memory().offer(
        network,
        b(),
        ip2p::ip2p::wire::ModeSet::ALL,
        ip2p::Time::ZERO,
    );
    assert!(!offer.contains(Mode::Direct));
    wind_down(&mut w, Nonce(13));
}

#[test]
fn without_a_relay_every_failed_mode_is_named() {
    let mut w = world([NetKind::Public, NetKind::Symmetric], false);
    let lie = NetKind::Public.profile(CALLEE_LOCAL, CALLEE_LOCAL);
    w.feed(true, Input::Profile(lie)).unwrap();
    let o = run(&mut w, Nonce(14), true);
    assert_eq!(o.connected, None);
    assert_eq!(o.failed_modes, [Mode::Direct], "{o:?}");
    // after direct failed, STUNT #2 was chosen but could not be predicted: the callee refused
    assert_eq!(
        o.failure,
        Some(Failure::Refused(Refusal::Unreachable)),
        "{o:?}"
    );
    wind_down(&mut w, Nonce(14));
}
