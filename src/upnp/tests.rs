use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::http::{HttpUrl, MAX_BODY_LEN};
use super::igd::{fault, Igd};
use super::invariants::{self, Observer};
use super::*;

const LAN: &str = "10.0.1.2:4000";
const LOCAL: &str = "10.0.1.2:50000";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn igd() -> Igd {
    Igd::new(sa("10.0.1.1:5000"), "80.100.1.1".parse().unwrap())
}

fn req(port: u16, lease: u64) -> MappingRequest {
    MappingRequest::new(
        Protocol::Tcp,
        sa(LAN),
        port,
        Duration::from_secs(lease),
        "ip2p test",
    )
}

/// Drives a client against the reference IGD; `chunk` splits every answer into pieces.
struct Rig {
    c: Client,
    igd: Igd,
    now: Time,
    chunk: usize,
    obs: Observer,
    /// requests seen by the IGD, raw
    requests: Vec<Vec<u8>>,
    datagrams: usize,
    connects: usize,
    events: Vec<Event>,
    ssdp: bool,
    /// answer these instead of the IGD, in order (per connection)
    scripted: Vec<Vec<u8>>,
    /// never answer HTTP (to exercise timeouts)
    mute: bool,
}

impl Rig {
    fn new(c: Client) -> Self {
        Rig {
            c,
            igd: igd(),
            now: Time::ZERO,
            chunk: usize::MAX,
            obs: Observer::default(),
            requests: Vec::new(),
            datagrams: 0,
            connects: 0,
            events: Vec::new(),
            ssdp: true,
            scripted: Vec::new(),
            mute: false,
        }
    }

    fn cmd(&mut self, cmd: Command) {
        self.obs.issue(&cmd);
        self.c.handle(self.now, Input::Command(cmd)).unwrap();
        self.pump();
    }

    /// Carry out outputs until none is left (time does not move).
    fn pump(&mut self) {
        let mut pending: Vec<Input> = Vec::new();
        loop {
            while let Some(o) = self.c.poll() {
                self.obs.output(&o, &self.c);
                match o {
                    Output::SendDatagram { to, bytes } => {
                        assert_eq!(to, ssdp::MULTICAST);
                        assert!(bytes.starts_with(b"M-SEARCH * HTTP/1.1\r\n"));
                        self.datagrams += 1;
                        if self.ssdp {
                            pending.push(Input::Datagram {
                                from: sa("10.0.1.1:1900"),
                                bytes: self.igd.ssdp_answer(),
                            });
                        }
                    }
                    Output::Connect { conn, to } => {
                        assert_eq!(to, self.igd.addr);
                        self.connects += 1;
                        pending.push(Input::Connected {
                            conn,
                            local: sa(LOCAL),
                        });
                    }
                    Output::Send { conn, bytes } => {
                        self.requests.push(bytes.clone());
                        if self.mute {
                            continue;
                        }
                        let answer = if self.scripted.is_empty() {
                            self.igd.answer(self.now, &bytes).unwrap().0
                        } else {
                            self.scripted.remove(0)
                        };
                        for piece in answer.chunks(self.chunk.min(answer.len().max(1))) {
                            pending.push(Input::Received {
                                conn,
                                bytes: piece.to_vec(),
                            });
                        }
                        pending.push(Input::Closed { conn });
                    }
                    Output::Close { .. } => {}
                    Output::Event(e) => self.events.push(e),
                }
            }
            if pending.is_empty() {
                return;
            }
            let input = pending.remove(0);
            let _ = self.c.handle(self.now, input);
            assert!(invariants::bounded_memory(&self.c));
        }
    }

    fn advance_to(&mut self, t: Time) {
        while let Some(d) = self.c.poll_timeout() {
            if d > t {
                break;
            }
            self.now = d;
            self.igd.expire(d);
            self.c.handle_timeout(d);
            self.pump();
        }
        self.now = t;
        self.igd.expire(t);
    }

    fn completed(&self, id: u32) -> Option<&Outcome> {
        self.events.iter().find_map(|e| match e {
            Event::Completed { id: i, outcome } if *i == RequestId(id) => Some(outcome),
            _ => None,
        })
    }

    fn failed(&self, id: u32) -> Option<&Failure> {
        self.events.iter().find_map(|e| match e {
            Event::Failed { id: i, failure } if *i == RequestId(id) => Some(failure),
            _ => None,
        })
    }

    fn check_invariants(&self) {
        assert!(self.obs.ends_once());
        assert!(invariants::inbound_only_after_mapping(&self.obs, |k| self
            .igd
            .table
            .get(&k)
            .map(|e| e.internal)));
        assert!(invariants::no_leaked_mapping(
            &self.c,
            self.igd.table.keys().copied()
        ));
    }
}

fn mapped(o: Option<&Outcome>) -> PortMapping {
    match o {
        Some(Outcome::Mapped(m)) => m.clone(),
        other => panic!("not mapped: {other:?}"),
    }
}

#[test]
fn cold_mapping_discovers_describes_maps_and_learns_the_address() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    let m = mapped(r.completed(1));
    assert_eq!(m.external(), Some(sa("80.100.1.1:4000")));
    assert_eq!(m.internal, sa(LAN));
    assert_eq!(r.datagrams, 2, "one M-SEARCH per search target");
    assert_eq!(
        r.connects, 3,
        "description, AddPortMapping, GetExternalIPAddress"
    );
    let add = String::from_utf8(r.requests[1].clone()).unwrap();
    assert!(add.starts_with("POST /ctl/IPConn HTTP/1.1\r\n"), "{add}");
    assert!(add
        .contains("SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\""));
    assert!(add.contains("<NewInternalClient>10.0.1.2</NewInternalClient>"));
    assert!(add.contains("<NewLeaseDuration>600</NewLeaseDuration>"));
    assert_eq!(r.igd.table.len(), 1);
    let cache = r.c.igd().unwrap().clone();
    assert_eq!(
        cache.control_url.to_string(),
        "http://10.0.1.1:5000/ctl/IPConn"
    );
    assert_eq!(cache.external_ip, Some("80.100.1.1".parse().unwrap()));
    r.check_invariants();
}

#[test]
fn warm_mapping_takes_one_connection_and_no_discovery() {
    let mut cold = Rig::new(Client::new(Config::default()));
    cold.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    let cache = cold.c.igd().unwrap().clone();
    let mut r = Rig::new(Client::with_cache(Config::default(), cache));
    r.cmd(Command::AddMapping {
        id: RequestId(2),
        request: req(4001, 600),
    });
    assert_eq!(
        mapped(r.completed(2)).external(),
        Some(sa("80.100.1.1:4001"))
    );
    assert_eq!((r.datagrams, r.connects), (0, 1));
}

#[test]
fn unspecified_internal_address_is_the_connections_local_address() {
    let mut r = Rig::new(Client::new(Config::default()));
    let mut q = req(4000, 600);
    q.internal = sa("0.0.0.0:4000");
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: q,
    });
    assert_eq!(mapped(r.completed(1)).internal, sa("10.0.1.2:4000"));
}

#[test]
fn conflict_718_moves_to_the_next_port() {
    let mut r = Rig::new(Client::new(Config::default()));
    let other = super::igd::Entry {
        internal: sa("10.0.1.3:9"),
        expires: None,
    };
    let k = |p| MappingKey {
        protocol: Protocol::Tcp,
        external_port: p,
    };
    r.igd.table.insert(k(4000), other.clone());
    r.igd.table.insert(k(4001), other);
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    assert_eq!(mapped(r.completed(1)).external_port, 4002);
    assert_eq!(r.igd.table.get(&k(4002)).map(|e| e.internal), Some(sa(LAN)));
    // the others' mappings are not ours: only ours are remembered
    assert_eq!(r.c.mappings().count(), 1);
}

#[test]
fn conflicts_are_bounded() {
    let mut r = Rig::new(Client::new(Config {
        conflict_tries: 3,
        ..Config::default()
    }));
    let other = super::igd::Entry {
        internal: sa("10.0.1.3:9"),
        expires: None,
    };
    for p in 4000..4003 {
        let k = MappingKey {
            protocol: Protocol::Tcp,
            external_port: p,
        };
        r.igd.table.insert(k, other.clone());
    }
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    assert_eq!(r.failed(1), Some(&Failure::ConflictsExhausted(3)));
    assert_eq!(r.c.mappings().count(), 0);
    assert!(r.c.is_idle());
}

#[test]
fn slow_drip_one_byte_at_a_time_still_parses() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.chunk = 1;
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    assert_eq!(mapped(r.completed(1)).external_port, 4000);
}

#[test]
fn chunked_description_is_decoded() {
    let mut r = Rig::new(Client::new(Config::default()));
    let d = r.igd.description();
    let (a, b) = d.split_at(100);
    let chunked = alloc::format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    r.scripted = vec![chunked.into_bytes()];
    r.chunk = 7;
    r.cmd(Command::Discover { id: RequestId(1) });
    assert!(
        matches!(r.completed(1), Some(Outcome::Discovered(_))),
        "{:?}",
        r.events
    );
}

#[test]
fn a_silent_igd_times_out_and_the_doubtful_mapping_is_deleted_later() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.cmd(Command::Discover { id: RequestId(1) });
    r.mute = true;
    // the IGD makes the mapping but its answer never comes
    r.cmd(Command::AddMapping {
        id: RequestId(2),
        request: req(4000, 600),
    });
    let add = r
        .requests
        .iter()
        .find(|q| q.windows(14).any(|w| w == b"AddPortMapping"))
        .unwrap()
        .clone();
    r.igd.answer(r.now, &add).unwrap();
    r.advance_to(Time::from_millis(3_000));
    assert_eq!(r.failed(2), Some(&Failure::Timeout));
    assert_eq!(
        r.c.is_confirmed(MappingKey {
            protocol: Protocol::Tcp,
            external_port: 4000
        }),
        Some(false)
    );
    r.check_invariants();
    r.mute = false;
    r.cmd(Command::DeleteAll { id: RequestId(3) });
    assert_eq!(r.completed(3), Some(&Outcome::AllUnmapped(1)));
    assert!(r.igd.table.is_empty());
    assert_eq!(r.c.mappings().count(), 0);
}

#[test]
fn confirmed_only_tracking_leaks_the_doubtful_mapping() {
    let mut r = Rig::new(Client::new(Config {
        tracking: Tracking::ConfirmedOnly,
        ..Config::default()
    }));
    r.cmd(Command::Discover { id: RequestId(1) });
    r.mute = true;
    r.cmd(Command::AddMapping {
        id: RequestId(2),
        request: req(4000, 600),
    });
    let add = r
        .requests
        .iter()
        .find(|q| q.windows(14).any(|w| w == b"AddPortMapping"))
        .unwrap()
        .clone();
    r.igd.answer(r.now, &add).unwrap();
    r.advance_to(Time::from_millis(3_000));
    assert!(!invariants::no_leaked_mapping(
        &r.c,
        r.igd.table.keys().copied()
    ));
}

#[test]
fn discovery_without_answers_fails_after_resends() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.ssdp = false;
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 600),
    });
    r.advance_to(Time::from_millis(10_000));
    assert_eq!(r.failed(1), Some(&Failure::NoIgd));
    assert_eq!(r.datagrams, 6, "3 attempts of 2 search targets");
    assert!(r.c.is_idle());
    assert_eq!(r.c.poll_timeout(), None);
}

#[test]
fn renews_at_half_lease_and_forgets_when_renewal_is_impossible() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.cmd(Command::AddMapping {
        id: RequestId(1),
        request: req(4000, 10),
    });
    let n = r.requests.len();
    r.advance_to(Time::from_millis(5_000));
    assert_eq!(r.requests.len(), n + 1, "one renewal");
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::Renewed(m) if m.external_port == 4000)));
    r.check_invariants();
    // now the IGD stops answering: renewals time out, the mapping becomes doubtful, then expires
    r.mute = true;
    r.advance_to(Time::from_millis(40_000));
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::RenewFailed { .. })));
    // renewal at 10 s times out at 13 s: doubtful (the IGD may have extended it to 23 s)
    assert!(r.obs.advertised.is_empty());
    assert!(r.igd.table.is_empty());
    assert_eq!(r.c.mappings().count(), 0);
    r.check_invariants();
}

#[test]
fn delete_of_a_missing_mapping_counts_as_done() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.cmd(Command::DeleteMapping {
        id: RequestId(1),
        key: MappingKey {
            protocol: Protocol::Udp,
            external_port: 9,
        },
    });
    assert!(matches!(r.completed(1), Some(Outcome::Unmapped(_))));
}

#[test]
fn external_ip_and_faults_are_reported() {
    let mut r = Rig::new(Client::new(Config::default()));
    r.cmd(Command::ExternalIp { id: RequestId(1) });
    assert_eq!(
        r.completed(1),
        Some(&Outcome::ExternalIp("80.100.1.1".parse().unwrap()))
    );
    r.scripted = vec![fault(501)];
    r.cmd(Command::ExternalIp { id: RequestId(2) });
    assert!(matches!(r.failed(2), Some(Failure::Upnp { code: 501, .. })));
}

#[test]
fn hostile_bodies_are_refused() {
    let huge = alloc::format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_LEN + 1
    );
    let nested = alloc::format!(
        "HTTP/1.1 200 OK\r\n\r\n{}{}",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    let dtd = "HTTP/1.1 200 OK\r\n\r\n<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]><root>&b;</root>";
    let endless = alloc::format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(MAX_BODY_LEN + 10));
    let cases: [(&[u8], Failure); 4] = [
        (huge.as_bytes(), Failure::Http(HttpError::BodyTooLarge)),
        (nested.as_bytes(), Failure::Xml(XmlError::TooDeep)),
        (dtd.as_bytes(), Failure::Xml(XmlError::Doctype)),
        (endless.as_bytes(), Failure::Http(HttpError::BodyTooLarge)),
    ];
    for (body, want) in cases {
        let mut r = Rig::new(Client::new(Config::default()));
        r.scripted = vec![body.to_vec()];
        r.chunk = 4096;
        r.cmd(Command::Discover { id: RequestId(1) });
        assert_eq!(r.failed(1), Some(&want));
        assert!(r.c.is_idle());
    }
}

#[test]
fn urls_resolve_against_url_base_and_location() {
    let loc = HttpUrl::parse("http://10.0.1.1:5000/desc/root.xml").unwrap();
    assert_eq!(
        loc.join("ctl").unwrap().to_string(),
        "http://10.0.1.1:5000/desc/ctl"
    );
    assert_eq!(
        loc.join("/ctl").unwrap().to_string(),
        "http://10.0.1.1:5000/ctl"
    );
    assert_eq!(
        loc.join("http://10.0.1.9/x").unwrap().to_string(),
        "http://10.0.1.9:80/x"
    );
    assert!(loc.join("https://10.0.1.9/x").is_err());
    assert!(HttpUrl::parse("http://router.local/").is_err());
    assert!(HttpUrl::parse("http://[fe80::1]:49000/igd.xml").is_ok());
    assert!(HttpUrl::parse("http://10.0.0.1:0/").is_err());
    assert!(HttpUrl::parse("http://10.0.0.1/a b").is_err());
    // Found by the upnp_http fuzzer: U+0085 is Unicode whitespace, so `str::trim` dropped it on
    // the second parse. Non-ASCII paths are refused; only ASCII whitespace is trimmed.
    assert!(HttpUrl::parse("http://1.0.1.1:/\u{85}#").is_err());
    assert!(loc.join("ctl\u{85}").is_err());
    let padded = HttpUrl::parse(" \thttp://10.0.0.1:5000/x\r\n").unwrap();
    assert_eq!(padded.to_string(), "http://10.0.0.1:5000/x");
    let desc = br#"<root><URLBase>http://10.0.1.1:6000/</URLBase><device><serviceList>
        <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>v1</controlURL></service>
        <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>ctl/v2</controlURL></service>
        </serviceList></device></root>"#;
    let d = xml::parse_description(desc).unwrap().unwrap();
    assert_eq!(
        (d.service, d.control_url.as_str()),
        (ServiceType::WanIp2, "ctl/v2")
    );
    assert_eq!(d.url_base.as_deref(), Some("http://10.0.1.1:6000/"));
}

#[test]
fn ssdp_answers_are_checked() {
    assert!(ssdp::parse_response(
        b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://1.2.3.4/\r\n\r\n"
    )
    .is_err());
    assert!(ssdp::parse_response(
        b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
    )
    .is_err());
    assert!(ssdp::parse_response(b"NOTIFY * HTTP/1.1\r\n\r\n").is_err());
    assert!(ssdp::parse_response(&[b'a'; 4000]).is_err());
}

#[test]
fn queue_is_bounded_and_ids_end_once() {
    let mut c = Client::new(Config {
        max_queue: 2,
        ..Config::default()
    });
    let t = Time::ZERO;
    for i in 0..3 {
        c.handle(t, Input::Command(Command::ExternalIp { id: RequestId(i) }))
            .unwrap();
    }
    assert_eq!(
        c.handle(t, Input::Command(Command::ExternalIp { id: RequestId(9) })),
        Err(Error::QueueFull)
    );
    assert_eq!(c.stats().rejected, 1);
}
