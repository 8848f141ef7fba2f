//! The SIP message layer against messages shaped like real agents' (SIPp's default scenarios, a
//! softphone, RFC 4475-style torture cases), hostile datagrams, and a round-trip property over
//! generated messages.

#[path = "../fuzz/src/sip.rs"]
#[allow(dead_code)] // the seed list is for tests/fuzz_corpus.rs
mod samples;

use ip2p::sip::{
    encode, parse, parse_with, CSeq, Contact, Headers, Limits, Message, Method, NameAddr, Request,
    Response, SipError, SipUri, Via,
};
use proptest::prelude::*;

fn sample(name: &str) -> Vec<u8> {
    samples::sample_messages()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| b)
        .expect("sample")
}

fn request(name: &str) -> Request {
    match parse(&sample(name)) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match parse(&sample(name)) {
        Ok(Message::Response(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn every_sample_parses_and_round_trips() {
    for (name, bytes) in samples::sample_messages() {
        let m = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = encode(&m);
        assert_eq!(parse(&e).as_ref(), Ok(&m), "{name}");
        assert_eq!(encode(&parse(&e).unwrap()), e, "{name}");
        samples::sip_wire(&bytes);
    }
}

#[test]
fn sipp_invite() {
    let r = request("sipp-uac-invite");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri, SipUri::parse("sip:service@127.0.0.1:5060").unwrap());
    let h = &r.headers;
    assert_eq!(h.vias.len(), 1);
    assert_eq!(h.vias[0].branch.as_deref(), Some("z9hG4bK-4242-1-0"));
    assert_eq!(h.vias[0].port, Some(5061));
    assert_eq!(h.from.as_ref().unwrap().display.as_deref(), Some("sipp"));
    assert_eq!(h.from.as_ref().unwrap().tag(), Some("4242SIPpTag001"));
    assert_eq!(h.to.as_ref().unwrap().tag(), None);
    assert_eq!(h.call_id.as_deref(), Some("1-4242@127.0.1.1"));
    assert_eq!(
        h.cseq,
        Some(CSeq {
            seq: 1,
            method: Method::Invite
        })
    );
    // a bare addr-spec Contact
    let Some(Contact::Addrs(c)) = &h.contact else {
        panic!("contact")
    };
    assert_eq!(c[0].uri.user.as_deref(), Some("sipp"));
    assert_eq!(h.max_forwards, Some(70));
    assert_eq!(
        h.other,
        [
            ("Subject".to_string(), "Performance Test".to_string()),
            ("Content-Type".to_string(), "application/sdp".to_string())
        ]
    );
    assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"PCMU/8000\r\n"));
}

#[test]
fn sipp_answers() {
    let ringing = response("sipp-uas-180");
    assert_eq!((ringing.code, ringing.reason.as_str()), (180, "Ringing"));
    assert_eq!(
        ringing.headers.to.as_ref().unwrap().tag(),
        Some("4243SIPpTag011")
    );
    let ok = response("sipp-uas-200");
    assert_eq!(ok.code, 200);
    assert!(!ok.body.is_empty());
    assert_eq!(request("sipp-uac-ack").method, Method::Ack);
    assert_eq!(request("sipp-uac-bye").headers.cseq.unwrap().seq, 2);
}

#[test]
fn softphone_register() {
    let r = request("softphone-register");
    let h = &r.headers;
    assert_eq!(
        h.vias.len(),
        3,
        "two Vias in one compact header, one in another"
    );
    assert_eq!(h.vias[0].host, "10.8.0.1");
    assert_eq!(
        h.vias[0].params,
        [("received".to_string(), Some("172.16.0.9".to_string()))]
    );
    assert_eq!(h.vias[1].branch.as_deref(), Some("z9hG4bK.hT3vn0P6a"));
    assert_eq!(h.vias[2].transport, "TCP");
    assert_eq!(h.vias[2].host, "[2001:db8::7]");
    assert_eq!(
        h.from.as_ref().unwrap().display.as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(h.to.as_ref().unwrap().uri.host, "example.com");
    let Some(Contact::Addrs(c)) = &h.contact else {
        panic!("contact")
    };
    assert_eq!(c.len(), 2, "a folded Contact list");
    assert_eq!(
        c[0].param("+sip.instance"),
        Some(Some("\"<urn:uuid:4b1b2c3d-0000-1111-2222-333344445555>\""))
    );
    assert_eq!(c[0].param("expires"), Some(Some("600")));
    assert_eq!(c[0].uri.param("transport"), Some(Some("udp")));
    assert_eq!(c[1].uri.port, Some(5070));
    assert_eq!(h.expires, Some(600));
    assert_eq!(h.get("supported").collect::<Vec<_>>(), ["outbound, path"]);
    assert_eq!(h.other.len(), 3);
    assert!(r.body.is_empty());
}

#[test]
fn unregister_and_lax_agents() {
    let r = request("unregister-star");
    assert_eq!(r.headers.contact, Some(Contact::Star));
    assert_eq!(r.headers.expires, Some(0));
    assert!(encode(&Message::Request(r))
        .windows(12)
        .any(|w| w == b"Contact: *\r\n"));

    let o = request("options-lf-no-length");
    assert_eq!(o.method, Method::Options);
    assert!(o.uri.secure);
    assert_eq!(o.uri.host, "[2001:db8::2]");
    assert_eq!(o.headers.get("Accept").next(), Some("application/sdp"));
}

#[test]
fn torture_cases_accepted() {
    let r = request("torture-escapes");
    assert_eq!(
        r.uri.user.as_deref(),
        Some("sips%3Auser%40example.com;x=y?/")
    );
    assert_eq!(r.uri.host, "example.net");
    assert_eq!(r.uri.params.len(), 2);
    assert_eq!(
        r.headers.to.as_ref().unwrap().display.as_deref(),
        Some(r#"Quoted "Name" \ here"#)
    );
    let n = request("torture-unknown-method");
    assert_eq!(n.method, Method::Other("NEWMETHOD".into()));
    assert_eq!(n.body, b"a body of 2 lines\r\nof text\r\n");
    assert_eq!(response("response-empty-reason").reason, "");
}

fn replace(name: &str, from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(sample(name)).unwrap();
    assert!(s.contains(from), "{from}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn torture_cases_rejected() {
    let cases: Vec<(&str, Vec<u8>, SipError)> = vec![
        (
            "negative Content-Length",
            replace("sipp-uac-bye", "Content-Length: 0", "Content-Length: -5"),
            SipError::BadContentLength,
        ),
        (
            "huge Content-Length",
            replace(
                "sipp-uac-bye",
                "Content-Length: 0",
                "Content-Length: 99999999999999999999",
            ),
            SipError::BadContentLength,
        ),
        (
            "Content-Length past the datagram",
            replace("sipp-uac-bye", "Content-Length: 0", "Content-Length: 1"),
            SipError::BadContentLength,
        ),
        (
            "two different Content-Lengths",
            replace(
                "sipp-uac-bye",
                "Content-Length: 0",
                "l: 0\r\nContent-Length: 2",
            ),
            SipError::BadContentLength,
        ),
        (
            "missing CSeq",
            replace("sipp-uac-bye", "CSeq: 2 BYE\r\n", ""),
            SipError::MissingHeader("CSeq"),
        ),
        (
            "missing Via",
            replace(
                "sipp-uac-bye",
                "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-7\r\n",
                "",
            ),
            SipError::MissingHeader("Via"),
        ),
        (
            "CSeq method differs from the request's",
            replace("sipp-uac-bye", "CSeq: 2 BYE", "CSeq: 2 INVITE"),
            SipError::MethodMismatch,
        ),
        (
            "CSeq too large",
            replace("sipp-uac-bye", "CSeq: 2 BYE", "CSeq: 4294967296 BYE"),
            SipError::BadCSeq,
        ),
        (
            "no final CRLF",
            {
                let mut b = sample("sipp-uac-bye");
                b.truncate(b.len() - 2);
                b
            },
            SipError::NoEndOfHead,
        ),
        (
            "SIP/7.0",
            replace("sipp-uac-bye", " SIP/2.0\r\n", " SIP/7.0\r\n"),
            SipError::BadVersion,
        ),
        (
            "status 099",
            replace("sipp-uas-180", "180 Ringing", "099 Ringing"),
            SipError::BadStatus,
        ),
        (
            "a space too many in the request line",
            replace("sipp-uac-bye", "BYE sip", "BYE  sip"),
            SipError::BadStartLine,
        ),
        (
            "tel: Request-URI",
            replace(
                "sipp-uac-bye",
                "sip:service@127.0.0.1:5060 SIP",
                "tel:+1-201-555-0123 SIP",
            ),
            SipError::BadUri,
        ),
        (
            "bad escape in the Request-URI",
            replace("sipp-uac-bye", "sip:service@", "sip:serv%4gice@"),
            SipError::BadUri,
        ),
        (
            "two From headers",
            replace("sipp-uac-bye", "Call-ID", "f: <sip:x@y>;tag=2\r\nCall-ID"),
            SipError::DuplicateHeader("From"),
        ),
        (
            "unclosed angle bracket in To",
            replace(
                "sipp-uac-bye",
                "<sip:service@127.0.0.1:5060>",
                "<sip:service@127.0.0.1:5060",
            ),
            SipError::BadHeader { name: "To" },
        ),
        (
            "Contact * beside an address",
            replace("unregister-star", "Contact: *", "Contact: *, <sip:a@b>"),
            SipError::BadHeader { name: "Contact" },
        ),
        (
            "Via port out of range",
            replace(
                "sipp-uac-bye",
                "127.0.1.1:5061;branch",
                "127.0.1.1:65536;branch",
            ),
            SipError::BadHeader { name: "Via" },
        ),
        (
            "Max-Forwards 256",
            replace("sipp-uac-bye", "Max-Forwards: 70", "Max-Forwards: 256"),
            SipError::BadHeader {
                name: "Max-Forwards",
            },
        ),
        (
            "header line without colon",
            replace(
                "sipp-uac-bye",
                "Subject: Performance Test",
                "Subject Performance Test",
            ),
            SipError::BadHeaderLine,
        ),
        (
            "continuation line before any header",
            replace("sipp-uac-bye", "SIP/2.0\r\nVia", "SIP/2.0\r\n Via"),
            SipError::BadHeaderLine,
        ),
        (
            "a stray CR inside a header",
            replace("sipp-uac-bye", "Performance Test", "Performance\rTest"),
            SipError::BadHeaderLine,
        ),
        (
            "Latin-1 in a header",
            {
                let mut b = sample("sipp-uac-bye");
                let i = b.windows(11).position(|w| w == b"Performance").unwrap();
                b[i] = 0xe9;
                b
            },
            SipError::NotUtf8,
        ),
        ("empty datagram", Vec::new(), SipError::NoEndOfHead),
        ("keep-alive", b"\r\n\r\n".to_vec(), SipError::NoEndOfHead),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(parse(&bytes), Err(want), "{what}");
    }
}

/// `head` followed by `n` copies of `line`, then the rest of a valid BYE.
fn hostile(n: usize, line: &str) -> Vec<u8> {
    let bye = String::from_utf8(sample("sipp-uac-bye")).unwrap();
    let (start, rest) = bye.split_once("\r\n").unwrap();
    let mut s = String::with_capacity(n * line.len() + bye.len());
    s.push_str(start);
    s.push_str("\r\n");
    for _ in 0..n {
        s.push_str(line);
    }
    s.push_str(rest);
    s.into_bytes()
}

fn roomy() -> Limits {
    Limits {
        max_message: 64 << 20,
        ..Limits::default()
    }
}

#[test]
fn hostile_inputs_rejected_with_typed_errors() {
    // 5000 Vias: over 64 KiB, so refused before any parsing; with room, refused at Via 33
    let vias = hostile(5000, "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n");
    assert_eq!(parse(&vias), Err(SipError::TooLarge));
    assert_eq!(parse_with(&vias, &roomy()), Err(SipError::TooManyVias));
    let one_line = hostile(1, &format!("v: {}\r\n", ["SIP/2.0/UDP h"; 40].join(",")));
    assert_eq!(parse(&one_line), Err(SipError::TooManyVias));

    // a 1 MB header line
    let big = hostile(1, &format!("X-Big: {}\r\n", "a".repeat(1 << 20)));
    assert_eq!(parse(&big), Err(SipError::TooLarge));
    assert_eq!(parse_with(&big, &roomy()), Err(SipError::LineTooLong));
    // ... or one folded into many short lines
    let folded = hostile(1, &format!("X-Big: a{}\r\n", "\r\n a".repeat(5000)));
    assert_eq!(parse(&folded), Err(SipError::LineTooLong));
    // a line with no end at all
    let endless = [b"INVITE ".as_slice(), &[b'a'; 10_000]].concat();
    assert_eq!(parse(&endless), Err(SipError::LineTooLong));

    // 100 000 tiny headers
    let tiny = hostile(100_000, "X:y\r\n");
    assert_eq!(parse(&tiny), Err(SipError::TooLarge));
    assert_eq!(parse_with(&tiny, &roomy()), Err(SipError::TooManyHeaders));
    assert_eq!(
        parse(&hostile(129, "X:y\r\n")),
        Err(SipError::TooManyHeaders)
    );
    // at the limit is fine: the BYE has 9 headers of its own
    assert!(parse(&hostile(128 - 9, "X:y\r\n")).is_ok());
}

#[test]
fn builders_make_what_samp_needs() {
    let alice = SipUri::parse("sip:alice@example.com").unwrap();
    let reg = Request::new(Method::Register, SipUri::new("example.com"))
        .with_via(Via::udp("10.0.0.1", Some(5060), "z9hG4bK1"))
        .with_max_forwards(70)
        .with_from(NameAddr {
            params: vec![("tag".into(), Some("t1".into()))],
            ..NameAddr::new(alice.clone())
        })
        .with_to(NameAddr::new(alice))
        .with_call_id("c1@10.0.0.1")
        .with_cseq(1)
        .with_contact(Contact::Addrs(vec![NameAddr::new(
            SipUri::parse("sip:alice@10.0.0.1:5060").unwrap(),
        )]))
        .with_expires(3600)
        .with_header("User-Agent", "ip2p");
    let bytes = encode(&Message::Request(reg.clone()));
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:alice@example.com>;tag=t1\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: c1@10.0.0.1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Expires: 3600\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: ip2p\r\n\
         Content-Length: 0\r\n\r\n"
    );
    assert_eq!(parse(&bytes), Ok(Message::Request(reg.clone())));

    let ok = Response::to(&reg, 200, "OK")
        .with_to_tag("srv")
        .with_contact(reg.headers.contact.clone().unwrap())
        .with_expires(3600);
    assert_eq!(ok.headers.vias, reg.headers.vias);
    assert_eq!(ok.headers.cseq, reg.headers.cseq);
    assert_eq!(ok.headers.to.as_ref().unwrap().tag(), Some("srv"));
    // answering a request by value builds the same response as answering it by reference
    assert_eq!(
        Response::answering(reg.clone(), 404, "Not Found"),
        Response::to(&reg, 404, "Not Found")
    );
    // a To that already has a tag keeps it
    let again = Response::to(
        &Request {
            headers: ok.headers.clone(),
            ..reg.clone()
        },
        200,
        "OK",
    )
    .with_to_tag("other");
    assert_eq!(again.headers.to.as_ref().unwrap().tag(), Some("srv"));
    let m = Message::Response(ok);
    assert_eq!(parse(&encode(&m)), Ok(m));
}

// ----- round-trip property over generated messages ---------------------------------------------

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.!%*_+`'~-]{1,8}".prop_filter("escapes in tokens are fine, lone % too", |_| true)
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}(\\.[a-z]{1,5}){0,2}",
        (0u8.., 0u8.., 0u8.., 0u8..).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        "\\[[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,5}\\]",
    ]
}

fn uri_params() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    prop::collection::vec(
        (
            "[a-z]{1,6}",
            prop::option::of("[a-z0-9.]{1,6}|%[0-9A-F]{2}"),
        ),
        0..3,
    )
}

fn uri() -> BoxedStrategy<SipUri> {
    (
        any::<bool>(),
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}(%[0-9a-fA-F]{2})?(:[a-z0-9]{1,4})?"),
        host(),
        prop::option::of(any::<u16>()),
        uri_params(),
        prop::option::of("[a-z]{1,4}=[a-z0-9]{1,4}(&[a-z]=[0-9])?"),
    )
        .prop_map(|(secure, user, host, port, params, headers)| SipUri {
            secure,
            user,
            host,
            port,
            params,
            headers,
        })
        .boxed()
}

fn header_params() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    prop::collection::vec(
        (
            "p[a-z]{0,5}",
            prop::option::of(prop_oneof![
                token(),
                "\"[a-zA-Z0-9 ;,<>:@=]{0,10}\"",
                "[0-9a-f:]{1,10}"
            ]),
        ),
        0..3,
    )
}

fn name_addr() -> BoxedStrategy<NameAddr> {
    (
        prop::option::of("[a-zA-Z0-9 \"\\\\,;<>@\u{e9}\u{4e2d}]{0,12}"),
        uri(),
        header_params(),
    )
        .prop_map(|(display, uri, params)| NameAddr {
            display,
            uri,
            params,
        })
        .boxed()
}

fn via() -> BoxedStrategy<Via> {
    (
        "UDP|TCP|TLS|SCTP|ws",
        host(),
        prop::option::of(any::<u16>()),
        prop::option::of("z9hG4bK[a-zA-Z0-9.~-]{1,10}"),
        header_params(),
    )
        .prop_map(|(transport, host, port, branch, params)| Via {
            transport,
            host,
            port,
            branch,
            params,
        })
        .boxed()
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Register),
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Options),
        Just(Method::Cancel),
        "[A-Z]{1,10}".prop_map(|s| Method::parse(&s).unwrap()),
    ]
}

fn headers(m: Method) -> BoxedStrategy<Headers> {
    (
        prop::collection::vec(via(), 1..5),
        name_addr(),
        name_addr(),
        "[a-zA-Z0-9.@~!%-]{1,20}",
        0u32..(1 << 31),
        prop::option::of(prop_oneof![
            Just(Contact::Star),
            prop::collection::vec(name_addr(), 1..4).prop_map(Contact::Addrs)
        ]),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u8>()),
        prop::collection::vec(
            ("X-[A-Za-z0-9-]{1,8}", "([!-~]([ -~\u{e9}]{0,16}[!-~])?)?"),
            0..4,
        ),
    )
        .prop_map(
            move |(vias, from, to, call_id, seq, contact, expires, max_forwards, other)| Headers {
                vias,
                from: Some(from),
                to: Some(to),
                call_id: Some(call_id),
                cseq: Some(CSeq {
                    seq,
                    method: m.clone(),
                }),
                contact,
                expires,
                max_forwards,
                other,
            },
        )
        .boxed()
}

fn message() -> BoxedStrategy<Message> {
    let body = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (method(), uri(), body.clone()).prop_flat_map(|(m, uri, body)| {
            headers(m.clone()).prop_map(move |headers| {
                Message::Request(Request {
                    method: m.clone(),
                    uri: uri.clone(),
                    headers,
                    body: body.clone(),
                })
            })
        }),
        (100u16..700, "[a-zA-Z \u{e9}]{0,12}", method(), body).prop_flat_map(
            |(code, reason, m, body)| {
                headers(m).prop_map(move |headers| {
                    Message::Response(Response {
                        code,
                        reason: reason.clone(),
                        headers,
                        body: body.clone(),
                    })
                })
            }
        ),
    ]
    .boxed()
}

/// The same message as a lax agent could write it: compact or lower-case names, bare LF line
/// ends, a folded Via list, `Content-Length` written first.
fn noisy(m: &Message, variant: u8) -> Vec<u8> {
    let canonical = encode(m);
    let head_end = canonical
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end")
        + 2;
    let head = std::str::from_utf8(&canonical[..head_end]).unwrap();
    let mut lines: Vec<String> = head.split_terminator("\r\n").map(String::from).collect();
    let start = lines.remove(0);
    let mut out: Vec<String> = vec![start];
    // Content-Length first
    let cl = lines.pop().unwrap();
    out.push(if variant & 1 == 1 {
        cl.replace("Content-Length:", "l:")
    } else {
        cl.to_lowercase()
    });
    // all Vias in one header, folded
    let vias: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("Via: ").map(String::from))
        .collect();
    out.push(format!("v: {}", vias.join(",\r\n  ")));
    for l in lines.into_iter().filter(|l| !l.starts_with("Via: ")) {
        let (n, v) = l.split_once(": ").unwrap();
        let n = match (variant & 2 == 2, n) {
            (true, "From") => "f".to_string(),
            (true, "To") => "t".to_string(),
            (true, "Call-ID") => "i".to_string(),
            (true, "Contact") => "m".to_string(),
            (_, n) if n.starts_with("X-") => n.to_string(),
            (_, n) => n.to_uppercase(),
        };
        out.push(format!("{n} :\t{v}"));
    }
    let eol = if variant & 4 == 4 { "\n" } else { "\r\n" };
    let mut bytes = out.join(eol).into_bytes();
    bytes.extend_from_slice(eol.as_bytes());
    bytes.extend_from_slice(eol.as_bytes());
    bytes.extend_from_slice(m.body());
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A generated message encodes to bytes that parse back to it, and re-encode identically.
    #[test]
    fn generated_messages_round_trip(m in message()) {
        let e = encode(&m);
        let p = parse(&e);
        prop_assert_eq!(p.as_ref(), Ok(&m), "{}", String::from_utf8_lossy(&e));
        prop_assert_eq!(encode(&p.unwrap()), e);
    }

    /// parse(encode(parse(x))) == parse(x) for x written the way lax agents write.
    #[test]
    fn noisy_renderings_parse_to_the_same_message(m in message(), variant in 0u8..8) {
        let x = noisy(&m, variant);
        let p = parse(&x);
        prop_assert_eq!(p.as_ref(), Ok(&m), "{}", String::from_utf8_lossy(&x));
        let p = p.unwrap();
        prop_assert_eq!(parse(&encode(&p)), Ok(p));
    }

    /// Arbitrary mutations of a real message never panic and, when they parse, round-trip.
    #[test]
    fn mutated_samples_never_panic(
        which in 0usize..11,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = samples::sample_messages()[which % samples::sample_messages().len()].1.clone();
        for (i, byte) in edits {
            let i = i.index(b.len());
            b[i] = byte;
        }
        samples::sip_wire(&b);
    }
}
