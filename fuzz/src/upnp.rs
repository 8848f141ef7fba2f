//! Fuzz bodies of the UPnP IGD client (`ip2p::upnp`): the SSDP parser, the HTTP response reader,
//! the XML readers, and the whole client driven by a hostile IGD.
//!
//! - [`upnp_ssdp`]: bytes as an SSDP answer; whatever parses has an `http://` location with a path.
//! - [`upnp_http`]: bytes fed to a [`ResponseReader`] in pieces (the first byte sets the piece
//!   size): it holds at most a fixed amount, and a body it returns is within the cap. The same
//!   bytes as a URL: whatever parses prints back to a URL that parses to the same value.
//! - [`upnp_xml`]: bytes as a device description and as a SOAP answer: no panic, bounded results.
//! - [`upnp_client`]: a real [`Client`] against an IGD that may answer anything: the reference
//!   IGD's honest answers, garbage, huge or endless bodies, deep nesting, entity definitions,
//!   answers dripped byte by byte, closes, silence, with commands and time in between. After every
//!   step **BoundedMemory** and the safety half of **EveryRequestEnds**; at the end, with the IGD
//!   gone silent and time running out, every command ends and nothing is left to wait for.

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::machine::Machine;
use ip2p::upnp::http::{HttpUrl, ResponseReader, MAX_BODY_LEN, MAX_HEAD_LEN};
use ip2p::upnp::igd::{fault, Igd};
use ip2p::upnp::invariants::{self, Observer};
use ip2p::upnp::xml::{self, MAX_FIELDS};
use ip2p::upnp::{
    ssdp, Client, Command, Config, ConnId, Input, MappingKey, MappingRequest, Output, Protocol,
    RequestId,
};
use ip2p::Time;

// ----- upnp_ssdp -------------------------------------------------------------------------------

/// Fuzz body: `data` as an SSDP answer.
pub fn upnp_ssdp(data: &[u8]) {
    match ssdp::parse_response(data) {
        Ok(r) => {
            assert!(r.location.path.starts_with('/'), "{r:?}");
            assert!(!r.st.is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Seeds for `upnp_ssdp`.
pub fn ssdp_seeds() -> Vec<(String, Vec<u8>)> {
    let igd = reference();
    vec![
        ("igd-answer".into(), igd.ssdp_answer()),
        (
            "wanip-answer".into(),
            b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:service:WANIPConnection:2\r\nLOCATION: http://[fe80::1]:49000/igddesc.xml\r\n\r\n".to_vec(),
        ),
        ("notify".into(), b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n".to_vec()),
    ]
}

// ----- upnp_http -------------------------------------------------------------------------------

/// Fuzz body: `data[1..]` through a response reader in pieces of `data[0]` bytes; `data` as a URL.
pub fn upnp_http(data: &[u8]) {
    let Some((&piece, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut r = ResponseReader::new();
    let mut done = false;
    for chunk in rest.chunks(piece) {
        match r.push(chunk) {
            Ok(Some(resp)) => {
                assert!(resp.body.len() <= MAX_BODY_LEN);
                done = true;
                break;
            }
            Ok(None) => {}
            Err(e) => {
                assert!(!e.to_string().is_empty());
                done = true;
                break;
            }
        }
        assert!(
            r.held() <= 2 * (MAX_HEAD_LEN + 3 * MAX_BODY_LEN),
            "reader holds {}",
            r.held()
        );
    }
    if !done {
        if let Ok(resp) = r.close() {
            assert!(resp.body.len() <= 2 * MAX_BODY_LEN + MAX_HEAD_LEN);
        }
    }
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Ok(u) = HttpUrl::parse(s) {
            let again = HttpUrl::parse(&u.to_string());
            assert_eq!(again.as_ref(), Ok(&u), "{s:?} → {u} does not parse back");
            let _ = u.join(s);
        }
    }
}

/// Seeds for `upnp_http`.
pub fn http_seeds() -> Vec<(String, Vec<u8>)> {
    let mut igd = reference();
    let desc = igd
        .answer(Time::ZERO, b"GET /rootDesc.xml HTTP/1.1\r\n\r\n")
        .map(|a| a.0)
        .unwrap_or_default();
    let with = |p: u8, b: &[u8]| {
        let mut v = vec![p];
        v.extend_from_slice(b);
        v
    };
    vec![
        ("description-whole".into(), with(255, &desc)),
        ("description-drip".into(), with(1, &desc)),
        ("fault".into(), with(17, &fault(718))),
        (
            "chunked".into(),
            with(3, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        ),
        ("until-close".into(), with(9, b"HTTP/1.0 200 OK\r\n\r\n<root/>")),
        ("url".into(), with(1, b"http://10.0.1.1:5000/ctl/IPConn")),
    ]
}

// ----- upnp_xml --------------------------------------------------------------------------------

/// Fuzz body: `data` as a description and as a SOAP answer.
pub fn upnp_xml(data: &[u8]) {
    match xml::parse_description(data) {
        Ok(Some(d)) => assert!(d.control_url.len() <= xml::MAX_TEXT_LEN),
        Ok(None) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(f) = xml::parse_soap(data) {
        assert!(f.0.len() <= MAX_FIELDS);
        let _ = f.upnp_error();
    }
}

/// Seeds for `upnp_xml`.
pub fn xml_seeds() -> Vec<(String, Vec<u8>)> {
    let igd = reference();
    let body = |b: Vec<u8>| {
        let s = String::from_utf8_lossy(&b).into_owned();
        s.split_once("\r\n\r\n")
            .map(|(_, b)| b.as_bytes().to_vec())
            .unwrap_or_default()
    };
    vec![
        ("description".into(), igd.description().into_bytes()),
        ("fault".into(), body(fault(718))),
        (
            "billion-laughs".into(),
            b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><r>&b;</r>".to_vec(),
        ),
        ("deep".into(), format!("{}{}", "<a>".repeat(40), "</a>".repeat(40)).into_bytes()),
    ]
}

// ----- upnp_client -----------------------------------------------------------------------------

/// Most steps of one scenario.
const MAX_STEPS: usize = 300;

fn reference() -> Igd {
    Igd::new(
        SocketAddr::from(([10, 0, 1, 1], 5000)),
        "80.100.1.1".parse().expect("address"),
    )
}

struct Rig {
    c: Client,
    igd: Igd,
    now: Time,
    obs: Observer,
    /// Connections the client asked for and has not closed: (conn, connected, request bytes).
    conns: Vec<(ConnId, bool, Vec<u8>)>,
    next_id: u32,
}

impl Rig {
    fn drain(&mut self) {
        while let Some(o) = self.c.poll() {
            self.obs.output(&o, &self.c);
            match o {
                Output::Connect { conn, .. } => self.conns.push((conn, false, Vec::new())),
                Output::Send { conn, bytes } => {
                    if let Some(c) = self.conns.iter_mut().find(|c| c.0 == conn) {
                        c.2 = bytes;
                    }
                }
                Output::Close { conn } => self.conns.retain(|c| c.0 != conn),
                Output::SendDatagram { .. } | Output::Event(_) => {}
            }
        }
        assert!(
            invariants::bounded_memory(&self.c),
            "client holds {} bytes",
            self.c.held_bytes()
        );
        assert!(self.obs.ends_once(), "a command ended twice or unasked");
        assert!(self.c.mappings().count() <= self.c.config().max_mappings);
    }

    fn input(&mut self, i: Input) {
        let _ = self.c.handle(self.now, i);
        self.drain();
    }

    fn command(&mut self, u: &mut Unstructured) -> Result<()> {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let port = 4000 + u16::from(u.arbitrary::<u8>()? % 4);
        let cmd = match u.arbitrary::<u8>()? % 6 {
            0 | 1 => Command::AddMapping {
                id,
                request: MappingRequest::new(
                    if u.arbitrary::<bool>()? {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    },
                    SocketAddr::from(([0, 0, 0, 0], port)),
                    port,
                    Duration::from_secs(u64::from(u.arbitrary::<u8>()? % 8) * 30),
                    "fuzz",
                ),
            },
            2 => Command::DeleteAll { id },
            3 => Command::ExternalIp { id },
            4 => Command::Renew {
                id,
                key: MappingKey {
                    protocol: Protocol::Tcp,
                    external_port: port,
                },
            },
            _ => Command::Discover { id },
        };
        if self.c.handle(self.now, Input::Command(cmd.clone())).is_ok() {
            self.obs.issue(&cmd);
        }
        self.drain();
        Ok(())
    }

    /// A hostile answer, chosen by one byte.
    fn hostile(&mut self, u: &mut Unstructured, request: &[u8]) -> Result<Vec<u8>> {
        Ok(match u.arbitrary::<u8>()? % 8 {
            0 => {
                let n = usize::from(u.arbitrary::<u16>()? % 2048);
                u.bytes(n.min(u.len()))?.to_vec()
            }
            1 => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", u64::MAX).into_bytes(),
            2 => {
                let mut v = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
                v.resize(3 * MAX_BODY_LEN, b'<');
                v
            }
            3 => format!("HTTP/1.1 200 OK\r\n\r\n{}{}", "<a>".repeat(5000), "</a>".repeat(5000)).into_bytes(),
            4 => b"HTTP/1.1 200 OK\r\n\r\n<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;\">]><root>&c;</root>".to_vec(),
            5 => fault(u16::from(u.arbitrary::<u8>()? % 4) + 714 + u16::from(u.arbitrary::<bool>()?) * 4),
            6 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nxx".to_vec(),
            _ => self.igd.answer(self.now, request).map(|a| a.0).unwrap_or_default(),
        })
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let pick = |u: &mut Unstructured, n: usize| -> Result<usize> {
            Ok(usize::from(u.arbitrary::<u8>()?) % n.max(1))
        };
        match u.arbitrary::<u8>()? % 9 {
            0 => self.command(u)?,
            1 => {
                let bytes = if u.arbitrary::<bool>()? {
                    self.igd.ssdp_answer()
                } else {
                    let n = usize::from(u.arbitrary::<u16>()? % 3000);
                    u.bytes(n.min(u.len()))?.to_vec()
                };
                self.input(Input::Datagram {
                    from: SocketAddr::from(([10, 0, 1, 1], 1900)),
                    bytes,
                });
            }
            2 => {
                let i = pick(u, self.conns.len())?;
                if let Some(&(conn, false, _)) = self.conns.get(i) {
                    if let Some(c) = self.conns.get_mut(i) {
                        c.1 = true;
                    }
                    self.input(Input::Connected {
                        conn,
                        local: SocketAddr::from(([10, 0, 1, 2], 50000)),
                    });
                }
            }
            3 | 4 => {
                // an honest (3) or hostile (4) answer, in pieces
                let i = pick(u, self.conns.len())?;
                let Some((conn, true, req)) = self.conns.get(i).cloned() else {
                    return Ok(());
                };
                let answer = if u.arbitrary::<u8>()? % 2 == 0 {
                    self.igd
                        .answer(self.now, &req)
                        .map(|a| a.0)
                        .unwrap_or_default()
                } else {
                    self.hostile(u, &req)?
                };
                let piece = usize::from(u.arbitrary::<u8>()?).max(1) * 64;
                for chunk in answer.chunks(piece) {
                    if !self.conns.iter().any(|c| c.0 == conn) {
                        break;
                    }
                    self.input(Input::Received {
                        conn,
                        bytes: chunk.to_vec(),
                    });
                }
                if u.arbitrary::<bool>()? && self.conns.iter().any(|c| c.0 == conn) {
                    self.input(Input::Closed { conn });
                    self.conns.retain(|c| c.0 != conn);
                }
            }
            5 => {
                // slow drip: a few bytes, then time passes
                let i = pick(u, self.conns.len())?;
                if let Some((conn, true, _)) = self.conns.get(i).cloned() {
                    let n = usize::from(u.arbitrary::<u8>()? % 4);
                    let b = u.bytes(n.min(u.len()))?.to_vec();
                    self.input(Input::Received { conn, bytes: b });
                    self.now = self.now + Duration::from_millis(500);
                    self.c.handle_timeout(self.now);
                    self.drain();
                }
            }
            6 => {
                let i = pick(u, self.conns.len())?;
                if let Some(&(conn, ..)) = self.conns.get(i) {
                    self.conns.remove(i);
                    self.input(Input::Closed { conn });
                }
            }
            7 => {
                if let Some(t) = self.c.poll_timeout() {
                    self.now = self.now.max(t);
                    self.igd.expire(self.now);
                    self.c.handle_timeout(self.now);
                    self.drain();
                }
            }
            _ => {
                // inputs for connections that do not exist
                let conn = ConnId(u.arbitrary::<u32>()?);
                self.input(Input::Received {
                    conn,
                    bytes: vec![b'x'],
                });
                self.input(Input::Closed { conn });
            }
        }
        Ok(())
    }

    /// The IGD falls silent; time runs on: everything must end.
    fn finish(&mut self) {
        for _ in 0..10_000 {
            for (conn, ..) in std::mem::take(&mut self.conns) {
                self.input(Input::Closed { conn });
            }
            match self.c.poll_timeout() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.c.handle_timeout(self.now);
                    self.drain();
                }
                None if self.conns.is_empty() => break,
                None => {}
            }
        }
        assert!(
            self.c.is_idle(),
            "the client is still busy after the IGD fell silent"
        );
        assert_eq!(self.c.poll_timeout(), None, "a deadline is left");
        assert!(
            self.obs.all_ended(),
            "a command never ended: {:?} vs {:?}",
            self.obs.issued,
            self.obs.ended
        );
    }
}

/// Fuzz body: see the module docs. The first byte picks a cold (even) or warm (odd) client.
pub fn upnp_client(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(head) = u.arbitrary::<u8>() else {
        return;
    };
    let config = Config {
        max_queue: 4,
        max_mappings: 8,
        ..Config::default()
    };
    let igd = reference();
    let c = if head & 1 == 1 {
        Client::with_cache(
            config,
            ip2p::upnp::IgdCache {
                location: HttpUrl::parse("http://10.0.1.1:5000/rootDesc.xml").expect("url"),
                control_url: HttpUrl::parse("http://10.0.1.1:5000/ctl/IPConn").expect("url"),
                service: ip2p::upnp::xml::ServiceType::WanIp1,
                external_ip: None,
            },
        )
    } else {
        Client::new(config)
    };
    let mut rig = Rig {
        c,
        igd,
        now: Time::ZERO,
        obs: Observer::default(),
        conns: Vec::new(),
        next_id: 0,
    };
    for _ in 0..MAX_STEPS {
        if rig.step(&mut u).is_err() || u.is_empty() {
            break;
        }
    }
    rig.finish();
}

/// Seeds for `upnp_client`, in the byte format [`upnp_client`] reads.
pub fn client_seeds() -> Vec<(String, Vec<u8>)> {
    // command add TCP 4000 lease 60 s; SSDP answer; connect; honest answers; tick
    let honest: Vec<u8> = vec![
        0, // cold
        0, 0, 0, 1, 2, // AddMapping TCP port 4000 lease 60
        1, 1, // honest SSDP answer
        2, 0, 3, 0, 0, 255, 1, // description
        2, 0, 2, 0, 3, 0, 0, 255, 1, 3, 0, 0, 255, 1, // add + ip
        7, 7, 0, 0, 2, // ticks, then DeleteAll
        2, 0, 3, 0, 0, 255, 1,
    ];
    let mut hostile = vec![1u8, 0, 1, 0, 1, 2];
    for h in 0..8u8 {
        hostile.extend_from_slice(&[2, 0, 4, 0, 1, h, 0, 1, 1]);
        hostile.extend_from_slice(&[0, 0, 1, 0, 1, 2]);
    }
    let drip = vec![
        1u8, 0, 0, 0, 1, 2, 2, 0, 5, 0, 3, b'H', b'T', b'T', 5, 0, 2, b'P', b'/', 7, 7, 7,
    ];
    vec![
        ("honest".into(), honest),
        ("hostile-answers".into(), hostile),
        ("drip".into(), drip),
    ]
}
