//! Scenario tests of one caller and one callee, wired by hand.

use super::*;
use alloc::vec;

fn a() -> Msisdn {
    Msisdn::parse("+886900000001").unwrap()
}
fn b() -> Msisdn {
    Msisdn::parse("+886900000002").unwrap()
}
fn ftp() -> AppName {
    AppName::new("ftp").unwrap()
}
fn key() -> Key {
    Key::from_bytes([5; 32])
}
fn ip_a() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}
fn ip_b() -> IpAddr {
    "198.51.100.2".parse().unwrap()
}
const T0: Time = Time::ZERO;

fn pair() -> (Peer, Peer) {
    (
        Peer::new(Config::new(a()).with_peer(b(), key())),
        Peer::new(Config::new(b()).with_peer(a(), key()).with_app(ftp())),
    )
}

fn drain(p: &mut Peer) -> Vec<Output> {
    core::iter::from_fn(|| p.poll()).collect()
}

fn sms_of(outs: &[Output]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SendSms { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn ip_of(outs: &[Output]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SendIp { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn resolve(p: &mut Peer, now: Time, nonce: u64) -> Vec<Output> {
    p.handle(
        now,
        Input::Resolve {
            to: b(),
            app: ftp(),
            nonce: Nonce(nonce),
            port: 40000,
        },
    )
    .unwrap();
    drain(p)
}

/// Callee side from the SMS to the answer; returns the answer bytes.
fn serve(bob: &mut Peer, now: Time, sms: Vec<u8>, port: u16) -> Vec<u8> {
    bob.handle(
        now,
        Input::Sms {
            from: a(),
            payload: sms,
        },
    )
    .unwrap();
    let outs = drain(bob);
    if outs.contains(&Output::ActivateBroadband) {
        bob.handle(now, Input::BroadbandUp { ip: ip_b() }).unwrap();
    }
    let outs: Vec<Output> = outs.into_iter().chain(drain(bob)).collect();
    let session = outs
        .iter()
        .find_map(|o| match o {
            Output::StartServer { session, .. } => Some(*session),
            _ => None,
        })
        .expect("server started");
    bob.handle(now, Input::ServerListening { session, port })
        .unwrap();
    ip_of(&drain(bob)).pop().expect("answer sent over IP")
}

#[test]
fn public_to_public_b1_to_b5() {
    let (mut alice, mut bob) = pair();
    // B.1: the caller's radio is off; resolving switches it on first
    let outs = resolve(&mut alice, T0, 1);
    assert_eq!(outs, vec![Output::ActivateBroadband]);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let outs = drain(&mut alice);
    // B.2: one SMS, then listen on PortA
    let sms = sms_of(&outs);
    assert_eq!(sms.len(), 1);
    assert!(sms[0].len() <= wire::MAX_LEN);
    assert!(outs.contains(&Output::Listen {
        nonce: Nonce(1),
        port: 40000
    }));
    // the callee's radio is off until the SMS arrives
    assert!(!bob.radio_on());
    let answer = serve(&mut bob, T0, sms[0].clone(), 2121);
    assert!(bob.radio_on());
    // B.4
    alice.handle(T0, Input::Ip { payload: answer }).unwrap();
    let outs = drain(&mut alice);
    let want: TransportAddr = "198.51.100.2:2121".parse().unwrap();
    assert!(outs.contains(&Output::Event(Event::Resolved {
        nonce: Nonce(1),
        peer: b(),
        app: ftp(),
        addr: want,
        cached: false
    })));
    assert!(outs.contains(&Output::Connect {
        nonce: Nonce(1),
        to: want,
        from_port: 40000
    }));
    // B.5
    alice.handle(T0, Input::Connected(Nonce(1))).unwrap();
    assert!(alice.is_open(Nonce(1)));
    assert_eq!(
        drain(&mut alice),
        vec![Output::Event(Event::Connected(Nonce(1)))]
    );
    let session = SessionId {
        peer: a(),
        nonce: Nonce(1),
    };
    bob.handle(T0, Input::Accepted(session)).unwrap();
    assert_eq!(drain(&mut bob), vec![Output::Event(Event::Served(session))]);
    // both close; both radios go off after the idle time, not before
    alice.handle(T0, Input::CloseRequest(Nonce(1))).unwrap();
    bob.handle(T0, Input::CloseSession(session)).unwrap();
    assert_eq!(drain(&mut bob), vec![Output::StopServer(session)]);
    let idle = T0 + Duration::from_secs(30);
    assert_eq!(alice.poll_timeout(), Some(idle));
    alice.handle_timeout(idle - Duration::from_millis(1));
    assert!(alice.radio_on());
    alice.handle_timeout(idle);
    assert!(!alice.radio_on());
    assert_eq!(drain(&mut alice), vec![Output::DeactivateBroadband]);
    bob.handle_timeout(idle);
    assert!(!bob.radio_on());
    assert_eq!(alice.poll_timeout(), None);
    assert_eq!(bob.poll_timeout(), None);
}

fn nat_pair(ma: Mode, mb: Mode) -> (Peer, Peer) {
    (
        Peer::new(Config::new(a()).with_peer(b(), key()).with_mode(ma)),
        Peer::new(
            Config::new(b())
                .with_peer(a(), key())
                .with_app(ftp())
                .with_mode(mb),
        ),
    )
}

fn public(s: &str) -> TransportAddr {
    s.parse().unwrap()
}

/// Run the callee from the request SMS to its `Map`; returns the session.
fn callee_until_map(bob: &mut Peer, now: Time, sms: Vec<u8>, port: u16, mode: Mode) -> SessionId {
    bob.handle(
        now,
        Input::Sms {
            from: a(),
            payload: sms,
        },
    )
    .unwrap();
    assert!(drain(bob).contains(&Output::ActivateBroadband));
    bob.handle(now, Input::BroadbandUp { ip: ip_b() }).unwrap();
    let session = drain(bob)
        .into_iter()
        .find_map(|o| match o {
            Output::StartServer { session, .. } => Some(session),
            _ => None,
        })
        .expect("StartServer");
    bob.handle(now, Input::ServerListening { session, port })
        .unwrap();
    let outs = drain(bob);
    assert_eq!(
        outs,
        vec![Output::Map {
            key: MapKey::Session(session),
            mode,
            port
        }],
        "E.3/D.3: the callee maps PortB before it answers"
    );
    session
}

#[test]
fn upnp_e1_to_e5() {
    let (mut alice, mut bob) = nat_pair(Mode::Upnp, Mode::Upnp);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    // E.1: a mapping for PortA before any SMS
    let outs = resolve(&mut alice, T0, 1);
    assert_eq!(
        outs,
        vec![Output::Map {
            key: MapKey::Request(Nonce(1)),
            mode: Mode::Upnp,
            port: 40000
        }]
    );
    let pub_a = public("80.100.1.1:40000");
    alice
        .handle(
            T0,
            Input::Mapped {
                key: MapKey::Request(Nonce(1)),
                result: Ok(Mapping {
                    public: pub_a,
                    ttl: None,
                }),
            },
        )
        .unwrap();
    // E.2: the SMS carries IPA:PortA; then listen on PortA
    let outs = drain(&mut alice);
    let sms = sms_of(&outs);
    assert_eq!(sms.len(), 1);
    assert!(outs.contains(&Output::Listen {
        nonce: Nonce(1),
        port: 40000
    }));
    let req = Control::decode(&sms[0], &key(), &a(), &b()).unwrap();
    assert_eq!(req.mapped, Some(pub_a));
    assert_eq!(req.mode, Some(Mode::Upnp));
    // E.3: B maps PortB
    let session = callee_until_map(&mut bob, T0, sms[0].clone(), 2121, Mode::Upnp);
    let pub_b = public("80.100.2.1:2121");
    bob.handle(
        T0,
        Input::Mapped {
            key: MapKey::Session(session),
            result: Ok(Mapping {
                public: pub_b,
                ttl: None,
            }),
        },
    )
    .unwrap();
    // E.4: over IP to A's public address (through A's mapping)
    let outs = drain(&mut bob);
    let to = outs.iter().find_map(|o| match o {
        Output::SendIp { to, .. } => Some(*to),
        _ => None,
    });
    assert_eq!(to, Some(pub_a));
    assert!(!outs.iter().any(|o| matches!(o, Output::Punch { .. })));
    let answer = ip_of(&outs).remove(0);
    alice.handle(T0, Input::Ip { payload: answer }).unwrap();
    // E.5: connect to IPB:PortB at once
    let outs = drain(&mut alice);
    assert!(outs.contains(&Output::Connect {
        nonce: Nonce(1),
        to: pub_b,
        from_port: 40000
    }));
    alice.handle(T0, Input::Connected(Nonce(1))).unwrap();
    bob.handle(T0, Input::Accepted(session)).unwrap();
    drain(&mut alice);
    drain(&mut bob);
    // nothing leaks: both mappings are released when the two ends close
    alice.handle(T0, Input::CloseRequest(Nonce(1))).unwrap();
    assert!(drain(&mut alice).contains(&Output::Unmap(MapKey::Request(Nonce(1)))));
    bob.handle(T0, Input::CloseSession(session)).unwrap();
    let outs = drain(&mut bob);
    assert!(outs.contains(&Output::Unmap(MapKey::Session(session))));
    assert!(outs.contains(&Output::StopServer(session)));
}

#[test]
fn stunt_d1_to_d6() {
    let (mut alice, mut bob) = nat_pair(Mode::Stunt2, Mode::Stunt2);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    resolve(&mut alice, T0, 7);
    let pub_a = public("80.100.1.1:40000");
    alice
        .handle(
            T0,
            Input::Mapped {
                key: MapKey::Request(Nonce(7)),
                result: Ok(Mapping {
                    public: pub_a,
                    ttl: Some(2),
                }),
            },
        )
        .unwrap();
    let sms = sms_of(&drain(&mut alice)).remove(0); // D.2
    let session = callee_until_map(&mut bob, T0, sms, 2121, Mode::Stunt2); // D.3
    let pub_b = public("80.100.2.1:2121");
    bob.handle(
        T0,
        Input::Mapped {
            key: MapKey::Session(session),
            result: Ok(Mapping {
                public: pub_b,
                ttl: Some(2),
            }),
        },
    )
    .unwrap();
    let outs = drain(&mut bob);
    // D.4 by SMS (A's NAT lets nothing in), D.5 the low-TTL SYN toward IPA:PortA
    assert!(ip_of(&outs).is_empty(), "no answer over IP behind STUNT");
    let reply = sms_of(&outs);
    assert_eq!(reply.len(), 1);
    assert!(outs.contains(&Output::Punch {
        session,
        from_port: 2121,
        to: pub_a,
        ttl: Some(2)
    }));
    let t1 = T0 + Duration::from_secs(3);
    alice
        .handle(
            t1,
            Input::Sms {
                from: b(),
                payload: reply[0].clone(),
            },
        )
        .unwrap();
    // D.6: resolved at once, but the SYN waits `punch_wait`
    let outs = drain(&mut alice);
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Resolved { addr, .. }) if *addr == pub_b)));
    assert!(!outs.iter().any(|o| matches!(o, Output::Connect { .. })));
    let wait = alice.config().punch_wait;
    assert_eq!(alice.poll_timeout(), Some(t1 + wait));
    alice.handle_timeout(t1 + wait);
    assert_eq!(
        drain(&mut alice),
        vec![Output::Connect {
            nonce: Nonce(7),
            to: pub_b,
            from_port: 40000
        }]
    );
}

#[test]
fn failed_mappings_end_cleanly_and_release() {
    // the caller: no IGD → the request fails with the reason, and the mapping is released
    let (mut alice, mut bob) = nat_pair(Mode::Upnp, Mode::Stunt2);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    resolve(&mut alice, T0, 1);
    alice
        .handle(
            T0,
            Input::Mapped {
                key: MapKey::Request(Nonce(1)),
                result: Err(MapFailure::NoGateway),
            },
        )
        .unwrap();
    let outs = drain(&mut alice);
    assert!(outs.contains(&Output::Unmap(MapKey::Request(Nonce(1)))));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Failed {
            error: Failure::MapFailed(MapFailure::NoGateway),
            ..
        })
    )));
    assert!(sms_of(&outs).is_empty(), "no SMS without a mapping");
    // a late answer to that Map is rejected and changes nothing
    let before = alice.clone();
    assert!(alice
        .handle(
            T0,
            Input::Mapped {
                key: MapKey::Request(Nonce(1)),
                result: Err(MapFailure::Timeout),
            },
        )
        .is_err());
    assert_eq!(alice, before);

    // the callee: unpredictable NAT → refusal by SMS, session over, mapping released
    resolve(&mut alice, T0, 2);
    alice
        .handle(
            T0,
            Input::Mapped {
                key: MapKey::Request(Nonce(2)),
                result: Ok(Mapping {
                    public: public("80.100.1.1:40000"),
                    ttl: None,
                }),
            },
        )
        .unwrap();
    let sms = sms_of(&drain(&mut alice)).remove(0);
    let session = callee_until_map(&mut bob, T0, sms, 2121, Mode::Stunt2);
    bob.handle(
        T0,
        Input::Mapped {
            key: MapKey::Session(session),
            result: Err(MapFailure::Unpredictable),
        },
    )
    .unwrap();
    let outs = drain(&mut bob);
    assert!(outs.contains(&Output::Unmap(MapKey::Session(session))));
    assert!(outs.contains(&Output::StopServer(session)));
    let refusal = sms_of(&outs).remove(0);
    alice
        .handle(
            T0,
            Input::Sms {
                from: b(),
                payload: refusal,
            },
        )
        .unwrap();
    let outs = drain(&mut alice);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Failed {
            error: Failure::Refused(Refusal::Unreachable),
            ..
        })
    )));
    assert!(outs.contains(&Output::Unmap(MapKey::Request(Nonce(2)))));
    assert_eq!(alice.requests(), 0);
    assert_eq!(bob.sessions(), 0);
}

#[test]
fn a_mapping_the_host_never_answers_times_out() {
    let (mut alice, _) = nat_pair(Mode::Upnp, Mode::Upnp);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    resolve(&mut alice, T0, 1);
    let deadline = alice.poll_timeout().expect("a deadline on the mapping");
    assert_eq!(deadline, T0 + alice.config().map_timeout);
    alice.handle_timeout(deadline);
    let outs = drain(&mut alice);
    assert!(outs.contains(&Output::Unmap(MapKey::Request(Nonce(1)))));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Failed {
            error: Failure::MapFailed(MapFailure::Timeout),
            ..
        })
    )));
}

#[test]
fn relay_mode_is_refused_not_pretended() {
    let (mut alice, _) = nat_pair(Mode::Relay, Mode::Direct);
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let outs = resolve(&mut alice, T0, 1);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::Failed {
            error: Failure::Unsupported,
            ..
        })
    )));
}

#[test]
fn lost_sms_is_resent_then_fails_with_no_answer() {
    let (mut alice, _) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let first = sms_of(&resolve(&mut alice, T0, 9));
    for _ in 1..3 {
        let now = alice.poll_timeout().unwrap();
        alice.handle_timeout(now);
        // the very same bytes: same nonce and sequence number, so the callee can tell a repeat
        assert_eq!(sms_of(&drain(&mut alice)), first);
    }
    let now = alice.poll_timeout().unwrap();
    assert_eq!(now, T0 + Duration::from_secs(90));
    alice.handle_timeout(now);
    let outs = drain(&mut alice);
    assert!(outs.contains(&Output::Event(Event::Failed {
        nonce: Nonce(9),
        peer: b(),
        error: Failure::NoAnswer(3)
    })));
    assert!(outs.contains(&Output::StopListening {
        nonce: Nonce(9),
        port: 40000
    }));
    assert_eq!(alice.requests(), 0);
}

#[test]
fn repeated_request_is_answered_again_not_served_twice() {
    let (mut alice, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms = sms_of(&resolve(&mut alice, T0, 3)).pop().unwrap();
    let answer = serve(&mut bob, T0, sms.clone(), 2121);
    // the answer was lost; the caller's retry (same bytes) arrives
    bob.handle(
        T0,
        Input::Sms {
            from: a(),
            payload: sms.clone(),
        },
    )
    .unwrap();
    let outs = drain(&mut bob);
    assert_eq!(ip_of(&outs), vec![answer.clone()]);
    assert!(!outs.iter().any(|o| matches!(o, Output::StartServer { .. })));
    assert_eq!(bob.sessions(), 1);
    // the duplicate answer at the caller is harmless
    alice
        .handle(
            T0,
            Input::Ip {
                payload: answer.clone(),
            },
        )
        .unwrap();
    assert_eq!(
        drain(&mut alice)
            .iter()
            .filter(|o| matches!(o, Output::Connect { .. }))
            .count(),
        1
    );
    alice.handle(T0, Input::Ip { payload: answer }).unwrap();
    assert!(drain(&mut alice).is_empty());
    // after the session ended, the same SMS again is a replay: rejected, nothing happens
    let session = SessionId {
        peer: a(),
        nonce: Nonce(3),
    };
    bob.handle(T0, Input::CloseSession(session)).unwrap();
    drain(&mut bob);
    let before = bob.clone();
    assert_eq!(
        bob.handle(
            T0,
            Input::Sms {
                from: a(),
                payload: sms
            }
        ),
        Err(Error::Replayed { peer: a(), seq: 1 })
    );
    assert_eq!(bob, before);
    assert!(drain(&mut bob).is_empty());
}

#[test]
fn forged_and_spoofed_messages_change_nothing() {
    let (mut alice, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms = sms_of(&resolve(&mut alice, T0, 4)).pop().unwrap();
    // an attacker with another key, claiming to be a
    let forged = Control::parse(&sms)
        .unwrap()
        .encode(&Key::from_bytes([6; 32]), &a(), &b());
    let before = bob.clone();
    assert_eq!(
        bob.handle(
            T0,
            Input::Sms {
                from: a(),
                payload: forged
            }
        ),
        Err(Error::Wire(WireError::BadTag))
    );
    assert_eq!(bob, before);
    assert!(!bob.radio_on());
    assert_eq!(bob.stats().bad_tags, 1);
    // an unknown number
    let c = Msisdn::parse("+886900000003").unwrap();
    assert_eq!(
        bob.handle(
            T0,
            Input::Sms {
                from: c,
                payload: sms.clone()
            }
        ),
        Err(Error::UnknownPeer(c))
    );
    // a forged answer over IP for the live request
    let fake = Control {
        kind: Kind::Reply,
        addr: Some("203.0.113.66:22".parse().unwrap()),
        ..Control::parse(&sms).unwrap()
    }
    .encode(&Key::from_bytes([6; 32]), &b(), &a());
    let before = alice.clone();
    assert_eq!(
        alice.handle(T0, Input::Ip { payload: fake }),
        Err(Error::Wire(WireError::BadTag))
    );
    assert_eq!(alice, before);
    // the caller's own request reflected back to it over IP
    assert_eq!(
        alice.handle(T0, Input::Ip { payload: sms }),
        Err(Error::Unexpected("request"))
    );
    assert_eq!(alice, before);
}

#[test]
fn unknown_app_is_refused_by_sms_without_the_radio() {
    let (mut alice, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    alice
        .handle(
            T0,
            Input::Resolve {
                to: b(),
                app: AppName::new("telnet").unwrap(),
                nonce: Nonce(5),
                port: 40001,
            },
        )
        .unwrap();
    let sms = sms_of(&drain(&mut alice)).pop().unwrap();
    bob.handle(
        T0,
        Input::Sms {
            from: a(),
            payload: sms,
        },
    )
    .unwrap();
    let outs = drain(&mut bob);
    assert!(!bob.radio_on());
    let refusal = sms_of(&outs).pop().expect("refusal by SMS");
    alice
        .handle(
            T0,
            Input::Sms {
                from: b(),
                payload: refusal,
            },
        )
        .unwrap();
    assert!(drain(&mut alice).contains(&Output::Event(Event::Failed {
        nonce: Nonce(5),
        peer: b(),
        error: Failure::Refused(Refusal::UnknownApp)
    })));
}

#[test]
fn attach_timeout_fails_what_waited_and_switches_off() {
    let (mut alice, mut bob) = pair();
    let outs = resolve(&mut alice, T0, 6);
    assert_eq!(outs, vec![Output::ActivateBroadband]);
    let t = alice.poll_timeout().unwrap();
    alice.handle_timeout(t);
    let outs = drain(&mut alice);
    assert!(outs.contains(&Output::DeactivateBroadband));
    assert!(outs.contains(&Output::Event(Event::Failed {
        nonce: Nonce(6),
        peer: b(),
        error: Failure::AttachFailed
    })));
    assert!(!alice.radio_on());
    // callee side: the caller never connects after the answer
    let mut a2 = Peer::new(Config::new(a()).with_peer(b(), key()));
    a2.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms = sms_of(&resolve(&mut a2, T0, 7)).pop().unwrap();
    serve(&mut bob, T0, sms, 2121);
    let t = bob.poll_timeout().unwrap();
    assert_eq!(t, T0 + Duration::from_secs(60));
    bob.handle_timeout(t);
    let session = SessionId {
        peer: a(),
        nonce: Nonce(7),
    };
    let outs = drain(&mut bob);
    assert!(outs.contains(&Output::StopServer(session)));
    assert!(outs.contains(&Output::Event(Event::SessionFailed {
        session,
        error: Failure::NeverConnected
    })));
    assert_eq!(bob.sessions(), 0);
}

#[test]
fn a_server_that_never_starts_ends_the_session() {
    let (mut alice, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms = sms_of(&resolve(&mut alice, T0, 8)).pop().unwrap();
    bob.handle(T0, Input::BroadbandUp { ip: ip_b() }).unwrap();
    bob.handle(
        T0,
        Input::Sms {
            from: a(),
            payload: sms,
        },
    )
    .unwrap();
    let session = SessionId {
        peer: a(),
        nonce: Nonce(8),
    };
    assert!(drain(&mut bob).contains(&Output::StartServer {
        session,
        app: ftp()
    }));
    // the host never says the server listens
    let t = bob.poll_timeout().unwrap();
    assert_eq!(t, T0 + Duration::from_secs(10));
    bob.handle_timeout(t);
    let outs = drain(&mut bob);
    assert!(outs.contains(&Output::StopServer(session)));
    assert!(outs.contains(&Output::Event(Event::SessionFailed {
        session,
        error: Failure::ServerFailed
    })));
    // a late report is rejected and changes nothing; the radio goes idle
    let before = bob.clone();
    assert_eq!(
        bob.handle(
            t,
            Input::ServerListening {
                session,
                port: 2121
            }
        ),
        Err(Error::NotWaiting("session"))
    );
    assert_eq!(bob, before);
    assert_eq!(bob.poll_timeout(), Some(t + Duration::from_secs(30)));
}

#[test]
fn stale_answer_is_not_taken_for_a_new_request() {
    let (mut alice, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms1 = sms_of(&resolve(&mut alice, T0, 10)).pop().unwrap();
    let answer1 = serve(&mut bob, T0, sms1, 2121);
    // the caller gave up on request 10 before the answer came, and asks again
    alice.handle(T0, Input::CloseRequest(Nonce(10))).unwrap();
    drain(&mut alice);
    resolve(&mut alice, T0, 11);
    let before = alice.clone();
    assert_eq!(
        alice.handle(T0, Input::Ip { payload: answer1 }),
        Err(Error::NoSuchRequest(Nonce(10)))
    );
    assert_eq!(alice, before);
}

#[test]
fn cache_skips_the_sms_within_its_lifetime() {
    let mut cfg = Config::new(a()).with_peer(b(), key());
    cfg.cache_ttl = Duration::from_secs(10);
    let mut alice = Peer::new(cfg);
    let (_, mut bob) = pair();
    alice.handle(T0, Input::BroadbandUp { ip: ip_a() }).unwrap();
    let sms = sms_of(&resolve(&mut alice, T0, 1)).pop().unwrap();
    let answer = serve(&mut bob, T0, sms, 2121);
    alice.handle(T0, Input::Ip { payload: answer }).unwrap();
    alice.handle(T0, Input::Connected(Nonce(1))).unwrap();
    drain(&mut alice);
    let t1 = T0 + Duration::from_secs(5);
    let outs = resolve(&mut alice, t1, 2);
    assert!(sms_of(&outs).is_empty());
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Resolved { cached: true, .. }))));
    // a failed connect drops the entry; expiry does too
    alice.handle(t1, Input::ConnectFailed(Nonce(2))).unwrap();
    drain(&mut alice);
    assert_eq!(sms_of(&resolve(&mut alice, t1, 3)).len(), 1);
}

#[test]
fn bad_commands_are_rejected_cleanly() {
    let (mut alice, _) = pair();
    let c = Msisdn::parse("+886900000003").unwrap();
    let r = alice.handle(
        T0,
        Input::Resolve {
            to: c,
            app: ftp(),
            nonce: Nonce(1),
            port: 1,
        },
    );
    assert_eq!(r, Err(Error::UnknownPeer(c)));
    resolve(&mut alice, T0, 1);
    let r = alice.handle(
        T0,
        Input::Resolve {
            to: b(),
            app: ftp(),
            nonce: Nonce(1),
            port: 1,
        },
    );
    assert_eq!(r, Err(Error::NonceInUse(Nonce(1))));
    assert_eq!(
        alice.handle(T0, Input::Connected(Nonce(1))),
        Err(Error::NotWaiting("request"))
    );
    assert_eq!(alice.stats().rejected, 3);
}

#[test]
fn window_accepts_reordered_and_rejects_repeats() {
    let mut w = Window::default();
    assert!(!w.contains(5));
    w.insert(5);
    assert!(w.contains(5));
    assert!(!w.contains(4));
    w.insert(7);
    assert!(!w.contains(6));
    w.insert(6);
    assert!(w.contains(6) && w.contains(7) && w.contains(5));
    w.insert(200);
    // older than the window: treated as seen
    assert!(w.contains(100));
    assert!(!w.contains(199));
}

mod props {
    use super::*;
    use crate::ip2p::wire::{Mode, ModeSet, MAX_LEN, TAG_LEN};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    fn addr() -> impl Strategy<Value = TransportAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| TransportAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(ip)),
                p
            ))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| TransportAddr(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                p
            ))),
        ]
    }

    fn control() -> impl Strategy<Value = Control> {
        (
            0u8..3,
            any::<u64>(),
            any::<u32>(),
            "[a-z0-9._+-]{1,32}",
            proptest::option::of(addr()),
            proptest::option::of(addr()),
            proptest::option::of(0u8..4),
            0u8..3,
            proptest::option::of(1u8..16),
            any::<bool>(),
        )
            .prop_map(
                |(k, nonce, seq, app, addr, mapped, mode, why, offer, sms_reply)| {
                    let refusal =
                        [Refusal::UnknownApp, Refusal::Busy, Refusal::Declined][why as usize];
                    Control {
                        kind: [Kind::Request, Kind::Reply, Kind::Refuse(refusal)][k as usize],
                        nonce: Nonce(nonce),
                        seq,
                        app: AppName::new(&app).unwrap(),
                        addr,
                        mapped,
                        mode: mode.map(|m| {
                            [Mode::Direct, Mode::Upnp, Mode::Stunt2, Mode::Relay][m as usize]
                        }),
                        offer: offer.and_then(ModeSet::from_bits),
                        sms_reply,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn control_round_trips_and_fits_one_sms(m in control(), k in any::<[u8; 32]>()) {
            let key = Key::from_bytes(k);
            let bytes = m.encode(&key, &a(), &b());
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(Control::decode(&bytes, &key, &a(), &b()), Ok(m));
            prop_assert_eq!(Control::parse(&bytes), Ok(m));
        }

        #[test]
        fn any_flipped_bit_fails(m in control(), bit in any::<usize>()) {
            let bytes = m.encode(&key(), &a(), &b());
            let mut x = bytes.clone();
            let bit = bit % (x.len() * 8);
            x[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Control::decode(&x, &key(), &a(), &b()).is_err());
        }

        #[test]
        fn truncation_fails(m in control(), cut in 1usize..TAG_LEN + 20) {
            let bytes = m.encode(&key(), &a(), &b());
            let keep = bytes.len().saturating_sub(cut);
            prop_assert!(Control::decode(&bytes[..keep], &key(), &a(), &b()).is_err());
        }

        #[test]
        fn msisdn_display_parses_back(d in "[1-9][0-9]{0,14}") {
            let m = Msisdn::from_international_digits(&d).unwrap();
            prop_assert_eq!(m.digits(), d.as_str());
            prop_assert_eq!(Msisdn::parse(&m.to_string()), Ok(m));
            prop_assert_eq!(Msisdn::parse(&alloc::format!("tel:{m}")), Ok(m));
        }
    }
}
