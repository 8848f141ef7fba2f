//! SAMP end to end over an in-memory network: eight real SIP servers on a stabilized Chord ring,
//! a real mobile node and a real correspondent, every SIP message encoded and parsed again on the
//! way (so the roles only ever see what the wire carries).
//!
//! Discovery picks an anchor within δ, home registration lands at the owner of H(AOR), a call is
//! routed CN-anchor → home → MN-anchor → MN, HR keeps the home untouched on a near move, a slow
//! anchor makes the MN re-anchor and update home, TTC serves the next call directly, and a stale
//! TTC entry falls back without ever reaching the wrong place.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use ip2p::chord::{self, Node, NodeId, Peer};
use ip2p::machine::Machine;
use ip2p::samp::correspondent::{
    self, CallFailure, CallId, Correspondent, CorrespondentConfig, Path,
};
use ip2p::samp::mobile::{self, MobileConfig, MobileNode, Registration};
use ip2p::samp::server::{self, ProxyMode, Server, ServerConfig, MCAST_GROUP};
use ip2p::samp::Aor;
use ip2p::sip::{self, Message, NameAddr, SipUri};
use ip2p::{Time, TransportAddr};

fn addr(s: &str) -> TransportAddr {
    TransportAddr(s.parse::<SocketAddr>().unwrap())
}

fn server_addr(k: usize) -> TransportAddr {
    addr(&format!("10.0.0.{}:5060", k + 1))
}

const CN_ADDR: &str = "10.2.0.5:5060";

#[derive(Clone, Debug)]
enum Packet {
    Sip(Vec<u8>),
    Chord(Box<chord::Message<NodeId, TransportAddr>>),
}

struct World {
    now: Time,
    servers: BTreeMap<TransportAddr, Server<NodeId>>,
    mn: MobileNode,
    cn: Correspondent,
    /// (time, sequence) → (from, to, packet)
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    packets: Vec<Option<(TransportAddr, TransportAddr, Packet)>>,
    seq: u64,
    /// The servers that hear the MN's multicast, and the one-way latency between the MN and each.
    near: BTreeMap<TransportAddr, Duration>,
    mn_events: Vec<mobile::Event>,
    cn_events: Vec<correspondent::Event>,
    server_events: Vec<(TransportAddr, server::Event<NodeId>)>,
    /// INVITEs that arrived at an address where the MN is not.
    invites_to_nowhere: Vec<TransportAddr>,
    /// Everything delivered to an address that is none of the roles: (to, message).
    elsewhere: Vec<(TransportAddr, Message)>,
}

const LAN: Duration = Duration::from_millis(2);
const WAN: Duration = Duration::from_millis(5);

impl World {
    fn new(mode: ProxyMode, hr: bool, cn_anchor: usize) -> World {
        let config = ServerConfig {
            mode,
            ..ServerConfig::default()
        };
        let mut members: Vec<Peer<NodeId, TransportAddr>> =
            (0..8).map(|k| Peer::hashed(server_addr(k))).collect();
        members.sort();
        let servers = Node::stabilized_ring(&members, &config.chord, 3, Time::ZERO)
            .into_iter()
            .map(|node| (node.me().addr, Server::with_node(node, config.clone())))
            .collect();
        let mn = MobileNode::new(
            SipUri::parse("sip:mn@home.example").unwrap(),
            MobileConfig {
                hr,
                ..MobileConfig::default()
            },
        );
        let cn = Correspondent::new(
            SipUri::parse("sip:cn@other.example").unwrap(),
            addr(CN_ADDR),
            server_addr(cn_anchor),
            CorrespondentConfig::default(),
        );
        World {
            now: Time::ZERO,
            servers,
            mn,
            cn,
            queue: BinaryHeap::new(),
            packets: Vec::new(),
            seq: 0,
            near: BTreeMap::new(),
            mn_events: Vec::new(),
            cn_events: Vec::new(),
            server_events: Vec::new(),
            invites_to_nowhere: Vec::new(),
            elsewhere: Vec::new(),
        }
    }

    fn aor() -> Aor {
        Aor::of(&SipUri::parse("sip:mn@home.example").unwrap())
    }

    fn home(&self) -> TransportAddr {
        let key: NodeId = Self::aor().key();
        *self
            .servers
            .iter()
            .find(|(_, s)| s.node().owns(&key))
            .map(|(a, _)| a)
            .unwrap()
    }

    fn latency(&self, from: TransportAddr, to: TransportAddr) -> Duration {
        let mn = self.mn.coa();
        if Some(from) == mn {
            return self.near.get(&to).copied().unwrap_or(WAN);
        }
        if Some(to) == mn {
            return self.near.get(&from).copied().unwrap_or(WAN);
        }
        if self.servers.contains_key(&from) && self.servers.contains_key(&to) {
            return LAN;
        }
        WAN
    }

    fn push(&mut self, from: TransportAddr, to: TransportAddr, p: Packet) {
        let at = self.now + self.latency(from, to);
        self.seq += 1;
        self.packets.push(Some((from, to, p)));
        self.queue
            .push(Reverse((at, self.seq, self.packets.len() - 1)));
    }

    fn send_sip(&mut self, from: TransportAddr, to: TransportAddr, msg: &Message) {
        let bytes = sip::encode(msg);
        if to == MCAST_GROUP {
            let near: Vec<TransportAddr> = self.near.keys().copied().collect();
            for s in near {
                self.push(from, s, Packet::Sip(bytes.clone()));
            }
        } else {
            self.push(from, to, Packet::Sip(bytes));
        }
    }

    fn drain(&mut self) {
        let addrs: Vec<TransportAddr> = self.servers.keys().copied().collect();
        for a in addrs {
            while let Some(o) = self.servers.get_mut(&a).unwrap().poll() {
                match o {
                    server::Output::Sip { to, msg } => self.send_sip(a, to, &msg),
                    server::Output::Chord { to, msg } => {
                        self.push(a, to, Packet::Chord(Box::new(msg)))
                    }
                    server::Output::Event(server::Event::Chord(_)) => {}
                    server::Output::Event(e) => self.server_events.push((a, e)),
                }
            }
        }
        while let Some(o) = self.mn.poll() {
            match o {
                mobile::Output::Sip { to, msg } => {
                    let from = self.mn.coa().unwrap();
                    self.send_sip(from, to, &msg)
                }
                mobile::Output::Event(e) => self.mn_events.push(e),
            }
        }
        while let Some(o) = self.cn.poll() {
            match o {
                correspondent::Output::Sip { to, msg } => self.send_sip(addr(CN_ADDR), to, &msg),
                correspondent::Output::Event(e) => self.cn_events.push(e),
            }
        }
    }

    fn deliver(&mut self, from: TransportAddr, to: TransportAddr, p: Packet) {
        match p {
            Packet::Chord(msg) => {
                if let Some(s) = self.servers.get_mut(&to) {
                    let _ = s.handle(self.now, server::Input::Chord { from, msg: *msg });
                }
            }
            Packet::Sip(bytes) => {
                let msg = sip::parse(&bytes).expect("what we encode parses");
                if let Some(s) = self.servers.get_mut(&to) {
                    let _ = s.handle(self.now, server::Input::Sip { from, msg });
                } else if Some(to) == self.mn.coa() {
                    let _ = self.mn.handle(self.now, mobile::Input::Sip { from, msg });
                } else if to == addr(CN_ADDR) {
                    let _ = self
                        .cn
                        .handle(self.now, correspondent::Input::Sip { from, msg });
                } else {
                    if let Message::Request(r) = &msg {
                        if r.method == sip::Method::Invite {
                            self.invites_to_nowhere.push(to);
                        }
                    }
                    self.elsewhere.push((to, msg));
                }
            }
        }
    }

    /// Run until `until` (simulated), delivering packets and firing timers in time order.
    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.drain();
            let next_packet = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self
                .servers
                .values()
                .filter_map(|s| s.poll_timeout())
                .chain(self.mn.poll_timeout())
                .chain(self.cn.poll_timeout())
                .min();
            let next = match (next_packet, next_timer) {
                (Some(p), Some(t)) => p.min(t),
                (Some(p), None) => p,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_packet == Some(next) {
                let Reverse((_, _, i)) = self.queue.pop().unwrap();
                let (from, to, p) = self.packets[i].take().unwrap();
                self.deliver(from, to, p);
            } else {
                let now = self.now;
                for s in self.servers.values_mut() {
                    s.handle_timeout(now);
                }
                self.mn.handle_timeout(now);
                self.cn.handle_timeout(now);
            }
        }
        self.now = self.now.max(until);
    }

    fn attach(&mut self, coa: &str, near: &[(usize, u64)], random: u64) {
        self.near = near
            .iter()
            .map(|&(k, ms)| (server_addr(k), Duration::from_millis(ms)))
            .collect();
        let now = self.now;
        self.mn
            .handle(
                now,
                mobile::Input::Attached {
                    coa: addr(coa),
                    random,
                },
            )
            .unwrap();
        self.run_for(Duration::from_secs(2));
    }

    fn call(&mut self, id: u64) -> correspondent::Event {
        let now = self.now;
        self.cn
            .handle(
                now,
                correspondent::Input::Call {
                    call: CallId(id),
                    callee: SipUri::parse("sip:mn@home.example").unwrap(),
                },
            )
            .unwrap();
        self.run_for(Duration::from_secs(10));
        self.cn_events
            .iter()
            .rev()
            .find(|e| match e {
                correspondent::Event::Established { call, .. }
                | correspondent::Event::Failed { call, .. } => *call == CallId(id),
                correspondent::Event::FellBack { .. } => false,
            })
            .cloned()
            .expect("every call ends")
    }

    fn last_registration(&self) -> mobile::Event {
        self.mn_events.last().cloned().expect("an MN event")
    }
}

#[test]
fn discovery_home_registration_and_a_call_through_the_ring() {
    let mut w = World::new(ProxyMode::Proxy, true, 5);
    // servers 1 and 2 answer within δ = 50 ms, server 3 does not
    w.attach("10.1.0.10:5060", &[(1, 10), (2, 20), (3, 80)], 7);
    let mobile::Event::Registered { coa, anchor, how } = w.last_registration() else {
        panic!("{:?}", w.mn_events)
    };
    assert_eq!(coa, addr("10.1.0.10:5060"));
    assert!(
        [server_addr(1), server_addr(2)].contains(&anchor),
        "{anchor:?}"
    );
    assert_eq!(how, Registration::Home);
    let aor = World::aor();
    let home = w.home();
    assert_eq!(w.servers[&home].home_binding(w.now, &aor), Some(anchor));
    assert_eq!(w.servers[&anchor].anchor_binding(w.now, &aor), Some(coa));
    // only the anchor holds the care-of address
    let holders: Vec<_> = w
        .servers
        .iter()
        .filter(|(_, s)| s.anchor_binding(w.now, &aor).is_some())
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(holders, [anchor]);

    let e = w.call(1);
    assert_eq!(established(e), (CallId(1), coa, Path::Anchor));
    assert!(w.invites_to_nowhere.is_empty());
    // the INVITE went CN-anchor → (overlay) → home → MN-anchor → MN
    let routes: Vec<_> = w
        .server_events
        .iter()
        .filter_map(|(at, e)| match e {
            server::Event::Forwarded { route, to, .. } => Some((*at, *route, *to)),
            _ => None,
        })
        .collect();
    assert!(
        routes.contains(&(anchor, server::Route::Anchor, coa)),
        "{routes:?}"
    );
    if home != server_addr(5) && home != anchor {
        assert!(
            routes.contains(&(home, server::Route::Home, anchor)),
            "{routes:?}"
        );
    }
    // TTC: both tiers now know where the MN is
    assert_eq!(w.cn.cached(w.now, &aor), Some(coa));
    assert_eq!(w.servers[&server_addr(5)].cached(w.now, &aor), Some(coa));
    // the second call is phase I: straight to the MN
    let e = w.call(2);
    assert!(matches!(
        e,
        correspondent::Event::Established {
            path: Path::Direct,
            ..
        }
    ));
}

#[test]
fn hr_keeps_home_on_a_near_move_and_reanchors_when_the_anchor_is_slow() {
    let mut w = World::new(ProxyMode::Proxy, true, 5);
    w.attach("10.1.0.10:5060", &[(1, 10)], 1);
    let anchor = w.mn.anchor().unwrap();
    assert_eq!(anchor, server_addr(1));
    let aor = World::aor();
    let home = w.home();
    let home_bindings_before = w
        .server_events
        .iter()
        .filter(|(_, e)| matches!(e, server::Event::HomeBound { .. }))
        .count();

    // a near move: the anchor answers within δ; only it learns the new address
    w.attach("10.1.0.11:5060", &[(1, 15)], 2);
    assert!(matches!(
        w.last_registration(),
        mobile::Event::Registered {
            how: Registration::Local,
            ..
        }
    ));
    assert_eq!(
        w.servers[&anchor].anchor_binding(w.now, &aor),
        Some(addr("10.1.0.11:5060"))
    );
    let home_bindings_after = w
        .server_events
        .iter()
        .filter(|(_, e)| matches!(e, server::Event::HomeBound { .. }))
        .count();
    assert_eq!(
        home_bindings_before, home_bindings_after,
        "HR must not touch home"
    );

    // a far move: the old anchor now takes 100 ms (> δ); server 6 is near
    w.attach("10.3.0.7:5060", &[(1, 100), (6, 10)], 3);
    let mobile::Event::Registered {
        anchor: new,
        how,
        coa,
    } = w.last_registration()
    else {
        panic!("{:?}", w.mn_events)
    };
    assert_eq!(
        (new, how, coa),
        (server_addr(6), Registration::Home, addr("10.3.0.7:5060"))
    );
    assert_eq!(
        w.servers[&home].home_binding(w.now, &aor),
        Some(server_addr(6))
    );
    // a call finds the MN at its new place
    let e = w.call(1);
    assert_eq!(
        established(e),
        (CallId(1), addr("10.3.0.7:5060"), Path::Anchor)
    );
}

#[test]
fn a_stale_cache_entry_falls_back_and_never_reaches_the_wrong_place() {
    let mut w = World::new(ProxyMode::Proxy, true, 5);
    w.attach("10.1.0.10:5060", &[(1, 10)], 1);
    assert!(matches!(
        w.call(1),
        correspondent::Event::Established {
            path: Path::Anchor,
            ..
        }
    ));
    // the MN moves within its anchor's reach: both caches now hold a stale address
    w.attach("10.1.0.12:5060", &[(1, 10)], 2);
    let e = w.call(2);
    assert_eq!(
        established(e),
        (CallId(2), addr("10.1.0.12:5060"), Path::Anchor)
    );
    assert!(w
        .cn_events
        .contains(&correspondent::Event::FellBack { call: CallId(2) }));
    // the one INVITE that went to the old address found nobody (the phase I try); none other did
    assert_eq!(w.invites_to_nowhere, [addr("10.1.0.10:5060")]);
}

#[test]
fn redirect_mode_answers_302_and_the_caller_follows_it() {
    let mut w = World::new(ProxyMode::Redirect, true, 5);
    w.attach("10.1.0.10:5060", &[(1, 10)], 1);
    let e = w.call(1);
    assert_eq!(
        established(e),
        (CallId(1), addr("10.1.0.10:5060"), Path::Anchor)
    );
}

#[test]
fn without_hr_every_move_registers_at_home() {
    let mut w = World::new(ProxyMode::Proxy, false, 5);
    w.attach("10.1.0.10:5060", &[(1, 10)], 1);
    let aor = World::aor();
    let home = w.home();
    assert_eq!(
        w.servers[&home].home_binding(w.now, &aor),
        Some(addr("10.1.0.10:5060"))
    );
    // the anchor keeps no care-of address of its own (it would go stale)
    assert_eq!(w.servers[&server_addr(1)].anchor_binding(w.now, &aor), None);
    w.attach("10.1.0.11:5060", &[(1, 10)], 2);
    assert_eq!(
        w.servers[&home].home_binding(w.now, &aor),
        Some(addr("10.1.0.11:5060"))
    );
    let e = w.call(1);
    assert!(
        matches!(e, correspondent::Event::Established { at, .. } if at == addr("10.1.0.11:5060"))
    );
}

#[test]
fn calls_to_an_unknown_user_fail_with_404() {
    let mut w = World::new(ProxyMode::Proxy, true, 5);
    let e = w.call(1);
    assert_eq!(
        e,
        correspondent::Event::Failed {
            call: CallId(1),
            reason: CallFailure::Status(404)
        }
    );
}

#[test]
fn no_server_answers_discovery() {
    let mut w = World::new(ProxyMode::Proxy, true, 5);
    w.attach("10.1.0.10:5060", &[], 1);
    assert_eq!(w.last_registration(), mobile::Event::NoAnchor);
}

/// The call, the callee's address and the path of an `Established` event; the dialog's Call-ID
/// must be there. Panics with the event otherwise.
fn established(e: correspondent::Event) -> (CallId, TransportAddr, Path) {
    match e {
        correspondent::Event::Established {
            call,
            call_id,
            at,
            path,
        } => {
            assert!(!call_id.is_empty(), "an established call has a Call-ID");
            (call, at, path)
        }
        other => panic!("expected an established call, got {other:?}"),
    }
}

/// P2P-SIP as the lecture slides tell it, on the same servers in RR mode: a plain user agent
/// (Bob, no anchor, no HR) REGISTERs with whichever node it knows; the REGISTER goes to the node
/// responsible for H(bob@work.example) and binds there. Alice (the correspondent) searches by
/// sending her INVITE into the ring; the responsible node returns Bob's contact in a 302, and
/// Alice sets up the call with Bob directly.
#[test]
fn p2p_sip_register_search_and_call() {
    let mut w = World::new(ProxyMode::Redirect, false, 5);
    let bob = addr("10.9.0.9:5060");
    let bob_uri = SipUri::parse("sip:bob@work.example").unwrap();
    let bob_aor = Aor::of(&bob_uri);
    let key: NodeId = bob_aor.key();
    let responsible = *w
        .servers
        .iter()
        .find(|(_, s)| s.node().owns(&key))
        .map(|(a, _)| a)
        .unwrap();
    // Bob knows one node of the overlay, not the responsible one
    let first = (0..8).map(server_addr).find(|a| *a != responsible).unwrap();
    let mut contact = SipUri::new("10.9.0.9");
    contact.port = Some(5060);
    contact.user = Some("bob".into());
    let mut from = NameAddr::new(bob_uri.clone());
    from.set_tag("b1");
    let register = sip::Request::new(sip::Method::Register, SipUri::new("work.example"))
        .with_via(sip::Via::udp("10.9.0.9", Some(5060), "z9hG4bKbobreg1"))
        .with_from(from)
        .with_to(NameAddr::new(bob_uri.clone()))
        .with_call_id("bob-reg-1@10.9.0.9")
        .with_cseq(1)
        .with_contact(sip::Contact::Addrs(vec![NameAddr::new(contact.clone())]))
        .with_expires(600)
        .with_max_forwards(70);
    w.send_sip(bob, first, &Message::Request(register));
    w.run_for(Duration::from_secs(1));
    let answers: Vec<u16> = w
        .elsewhere
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Response(r) if *to == bob => Some(r.code),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [200], "Bob's REGISTER is answered once, with 200");
    let holders: Vec<TransportAddr> = w
        .servers
        .iter()
        .filter(|(_, s)| s.home_binding(w.now, &bob_aor).is_some())
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(
        holders,
        [responsible],
        "only the responsible node binds Bob"
    );
    assert_eq!(
        w.servers[&responsible].home_binding(w.now, &bob_aor),
        Some(bob)
    );

    // Alice calls: the responsible node answers her search with Bob's contact (302) ...
    w.elsewhere.clear();
    let now = w.now;
    w.cn.handle(
        now,
        correspondent::Input::Call {
            call: CallId(7),
            callee: bob_uri.clone(),
        },
    )
    .unwrap();
    w.run_for(Duration::from_secs(1));
    // ... and her INVITE then reaches Bob himself, addressed to his contact
    let invite = w
        .elsewhere
        .iter()
        .find_map(|(to, m)| match m {
            Message::Request(r) if *to == bob && r.method == sip::Method::Invite => Some(r.clone()),
            _ => None,
        })
        .expect("the INVITE reaches Bob");
    assert_eq!(
        invite.uri, contact,
        "Alice follows the 302 to Bob's contact"
    );
    assert_eq!(
        invite.headers.vias.len(),
        1,
        "Alice sends it herself, not through a proxy"
    );
    let ok = sip::Response::to(&invite, 200, "OK")
        .with_to_tag("bobcall")
        .with_contact(sip::Contact::Addrs(vec![NameAddr::new(contact.clone())]));
    w.send_sip(bob, addr(CN_ADDR), &Message::Response(ok));
    w.run_for(Duration::from_secs(1));
    let e = w
        .cn_events
        .iter()
        .find(|e| {
            matches!(e, correspondent::Event::Established { call, .. } | correspondent::Event::Failed { call, .. } if *call == CallId(7))
        })
        .cloned()
        .expect("the call ended");
    assert_eq!(established(e), (CallId(7), bob, Path::Anchor));
    // the home forwarded nothing: it only answered the search
    assert!(!w.server_events.iter().any(|(a, e)| *a == responsible
        && matches!(
            e,
            server::Event::Forwarded {
                method: sip::Method::Invite,
                ..
            }
        )));
}

/// An anchor that has forgotten the MN (its binding removed behind the home's back) ends a call
/// the home retargets to it with 480: the INVITE is not sent back into the overlay, where it
/// used to bounce between the home and the anchor until Max-Forwards ran out.
#[test]
fn an_anchor_without_a_binding_answers_480_instead_of_looping() {
    for mode in [ProxyMode::Proxy, ProxyMode::Redirect] {
        let mut w = World::new(mode, true, 5);
        w.attach("10.1.0.10:5060", &[(1, 10), (2, 20)], 7);
        let mobile::Event::Registered { anchor, .. } = w.last_registration() else {
            panic!("{:?}", w.mn_events)
        };
        let aor = World::aor();
        // the anchor forgets; the home still points at it
        let now = w.now;
        let mut uri = SipUri::new("10.9.9.9");
        uri.port = Some(5060);
        let mut from = NameAddr::new(SipUri::parse("sip:mn@home.example").unwrap());
        from.set_tag("x");
        let mut a = SipUri::new(anchor.0.ip().to_string());
        a.port = Some(anchor.0.port());
        let dereg = sip::Request::new(sip::Method::Register, a)
            .with_via(sip::Via::udp("10.9.9.9", Some(5060), "z9hG4bKforget"))
            .with_from(from)
            .with_to(NameAddr::new(SipUri::parse("sip:mn@home.example").unwrap()))
            .with_call_id("forget@10.9.9.9")
            .with_cseq(1)
            .with_contact(sip::Contact::Star)
            .with_expires(0)
            .with_max_forwards(70);
        w.servers
            .get_mut(&anchor)
            .unwrap()
            .handle(
                now,
                server::Input::Sip {
                    from: addr("10.9.9.9:5060"),
                    msg: Message::Request(dereg),
                },
            )
            .unwrap();
        w.server_events.clear();
        assert_eq!(w.servers[&anchor].anchor_binding(w.now, &aor), None);
        assert_eq!(w.servers[&w.home()].home_binding(w.now, &aor), Some(anchor));

        let e = w.call(1);
        assert!(
            matches!(
                e,
                correspondent::Event::Failed {
                    call: CallId(1),
                    reason: CallFailure::Status(480)
                }
            ),
            "{mode:?}: {e:?}"
        );
        // two tries (the second past the caches), each a bounded number of hops
        let invites = w
            .server_events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    server::Event::Forwarded {
                        method: sip::Method::Invite,
                        ..
                    }
                )
            })
            .count();
        assert!(invites <= 6, "{mode:?}: {invites} INVITE forwards");
        assert!(w.invites_to_nowhere.is_empty());
    }
}
