//! Fuzz target body for the SIP message layer (`ip2p::sip`): arbitrary octets through
//! [`parse`]; whatever parses encodes to a message that parses to the same value, and the
//! encoding is stable (`encode(parse(encode(m))) == encode(m)`).
//!
//! The real-world messages below are also the seeds, and `tests/sip_wire.rs` includes this file
//! to test them one by one.

use ip2p::sip::{encode, parse, parse_with, Limits};

/// The limits under which an encoding is re-parsed. The canonical form may be longer than the
/// input (long header names, `<…>` around every address, one `Via` per line, an added
/// `Content-Length`), so the size limits are lifted; counts grow by at most one line per Via.
pub fn reparse_limits() -> Limits {
    let d = Limits::default();
    Limits {
        max_message: usize::MAX,
        max_line: usize::MAX,
        max_headers: d.max_headers + d.max_vias + 1,
        max_vias: d.max_vias,
    }
}

/// The body of the `sip_wire` target.
pub fn sip_wire(data: &[u8]) {
    match parse(data) {
        Ok(m) => {
            let e = encode(&m);
            let again = parse_with(&e, &reparse_limits())
                .unwrap_or_else(|err| panic!("the encoding of a parsed message fails: {err}"));
            assert_eq!(again, m, "encode → parse changed the message");
            assert_eq!(encode(&again), e, "the encoding is not stable");
        }
        Err(e) => {
            // an error renders: it is what a host logs
            let _ = format!("{e}");
        }
    }
}

fn with_len(head: &str, body: &str) -> Vec<u8> {
    // `{len}` in the head is the body's length
    let mut v = head.replace("{len}", &body.len().to_string()).into_bytes();
    v.extend_from_slice(body.as_bytes());
    v
}

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.1.1\r\ns=-\r\nc=IN IP4 127.0.1.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Messages shaped like what real agents send, named; every one parses.
pub fn sample_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // SIPp's built-in `uac` scenario (sipp -sn uac), first call
        (
            "sipp-uac-invite",
            with_len(
                "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0\r\n\
                 From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n\
                 To: service <sip:service@127.0.0.1:5060>\r\n\
                 Call-ID: 1-4242@127.0.1.1\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: sip:sipp@127.0.1.1:5061\r\n\
                 Max-Forwards: 70\r\n\
                 Subject: Performance Test\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length:   {len}\r\n\r\n",
                SDP,
            ),
        ),
        // SIPp's `uas` scenario answering it
        (
            "sipp-uas-180",
            with_len(
                "SIP/2.0 180 Ringing\r\n\
                 Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0\r\n\
                 From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n\
                 To: service <sip:service@127.0.0.1:5060>;tag=4243SIPpTag011\r\n\
                 Call-ID: 1-4242@127.0.1.1\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n\
                 Content-Length: {len}\r\n\r\n",
                "",
            ),
        ),
        (
            "sipp-uas-200",
            with_len(
                "SIP/2.0 200 OK\r\n\
                 Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0\r\n\
                 From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n\
                 To: service <sip:service@127.0.0.1:5060>;tag=4243SIPpTag011\r\n\
                 Call-ID: 1-4242@127.0.1.1\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {len}\r\n\r\n",
                SDP,
            ),
        ),
        (
            "sipp-uac-ack",
            with_len(
                "ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-5\r\n\
                 From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n\
                 To: service <sip:service@127.0.0.1:5060>;tag=4243SIPpTag011\r\n\
                 Call-ID: 1-4242@127.0.1.1\r\n\
                 CSeq: 1 ACK\r\n\
                 Contact: sip:sipp@127.0.1.1:5061\r\n\
                 Max-Forwards: 70\r\n\
                 Subject: Performance Test\r\n\
                 Content-Length: {len}\r\n\r\n",
                "",
            ),
        ),
        (
            "sipp-uac-bye",
            with_len(
                "BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-7\r\n\
                 From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n\
                 To: service <sip:service@127.0.0.1:5060>;tag=4243SIPpTag011\r\n\
                 Call-ID: 1-4242@127.0.1.1\r\n\
                 CSeq: 2 BYE\r\n\
                 Contact: sip:sipp@127.0.1.1:5061\r\n\
                 Max-Forwards: 70\r\n\
                 Subject: Performance Test\r\n\
                 Content-Length: {len}\r\n\r\n",
                "",
            ),
        ),
        // a softphone REGISTER through one proxy: compact names, two Vias in one header and a
        // third in another, a folded Contact list and a folded Supported, an IPv6 sent-by
        (
            "softphone-register",
            with_len(
                "REGISTER sip:example.com SIP/2.0\r\n\
                 v: SIP/2.0/UDP 10.8.0.1:5070;received=172.16.0.9;branch=z9hG4bK.proxy1, SIP/2.0/UDP 192.168.1.20:5060;rport=5060;branch=z9hG4bK.hT3vn0P6a\r\n\
                 Via: SIP/2.0/TCP [2001:db8::7]:5060;branch=z9hG4bK.v6\r\n\
                 Max-Forwards: 69\r\n\
                 f: \"Alice Liddell\" <sip:alice@example.com>;tag=ZbtlOYo~D\r\n\
                 t: sip:alice@example.com\r\n\
                 i: Y0X~3hcKnb\r\n\
                 CSeq: 20 REGISTER\r\n\
                 m: <sip:alice@192.168.1.20;transport=udp>;+sip.instance=\"<urn:uuid:4b1b2c3d-0000-1111-2222-333344445555>\";expires=600,\r\n \
                 <sip:alice@10.8.0.1:5070>;q=0.5\r\n\
                 Expires: 600\r\n\
                 Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n\
                 Supported: outbound,\r\n\tpath\r\n\
                 User-Agent: LinphoneAndroid/4.6 (belle-sip/4.5)\r\n\
                 l: {len}\r\n\r\n",
                "",
            ),
        ),
        // removing every binding
        (
            "unregister-star",
            with_len(
                "REGISTER sip:example.com SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK.unreg1\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:alice@example.com>;tag=77\r\n\
                 To: <sip:alice@example.com>\r\n\
                 Call-ID: Y0X~3hcKnb\r\n\
                 CSeq: 21 REGISTER\r\n\
                 Contact: *\r\n\
                 Expires: 0\r\n\
                 Content-Length: {len}\r\n\r\n",
                "",
            ),
        ),
        // a lax agent: bare LF line ends, lower-case names, no Content-Length (the body is the
        // rest of the datagram)
        (
            "options-lf-no-length",
            b"OPTIONS sips:bob@[2001:db8::2]:5061 SIP/2.0\n\
              via: SIP/2.0/TLS client.example.org:5061;branch=z9hG4bKopt\n\
              from: Bob <sips:bob@example.org>;tag=o1\n\
              to: <sips:bob@[2001:db8::2]:5061>\n\
              call-id: opt-1@client.example.org\n\
              cseq: 8 OPTIONS\n\
              accept: application/sdp\n\n"
                .to_vec(),
        ),
        // RFC 4475-style: escaped characters and a `?`/`;` in the user part, escapes in a
        // parameter, an unknown scheme-less display name with escapes in a quoted string
        (
            "torture-escapes",
            with_len(
                "INVITE sip:sips%3Auser%40example.com;x=y?/@example.net;lr;p%61ram=v%20a SIP/2.0\r\n\
                 Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bK-esc\r\n\
                 To: \"Quoted \\\"Name\\\" \\\\ here\" <sip:%61lice@example.com>\r\n\
                 From: <sip:I%20have%20spaces@example.net>;tag=938\r\n\
                 Max-Forwards: 87\r\n\
                 Call-ID: esc01.239409asdfakjkn23onasd0-3234\r\n\
                 CSeq: 234234 INVITE\r\n\
                 Contact: <sip:caller@host5.example.net>\r\n\
                 Content-Type: application/sdp\r\n\
                 l: {len}\r\n\r\n",
                SDP,
            ),
        ),
        // RFC 4475-style: a method nobody knows, a response with an empty reason
        (
            "torture-unknown-method",
            with_len(
                "NEWMETHOD sip:user@example.com SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n\
                 To: <sip:user@example.com>\r\n\
                 From: <sip:caller@example.net>;tag=34525\r\n\
                 Max-Forwards: 6\r\n\
                 Call-ID: newmeth.jfsd8j42@example.net\r\n\
                 CSeq: 8 NEWMETHOD\r\n\
                 Content-Type: text/plain\r\n\
                 Content-Length: {len}\r\n\r\n",
                "a body of 2 lines\r\nof text\r\n",
            ),
        ),
        (
            "response-empty-reason",
            with_len(
                "SIP/2.0 499 \r\n\
                 Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n\
                 To: <sip:user@example.com>;tag=x\r\n\
                 From: <sip:caller@example.net>;tag=34525\r\n\
                 Call-ID: newmeth.jfsd8j42@example.net\r\n\
                 CSeq: 8 NEWMETHOD\r\n\
                 Content-Length: {len}\r\n\r\n",
                "",
            ),
        ),
    ]
}

/// The committed seeds: the sample messages.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    sample_messages()
        .into_iter()
        .map(|(n, b)| (n.to_string(), b))
        .collect()
}
