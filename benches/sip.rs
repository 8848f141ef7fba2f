//! SIP messages: ours (`ip2p::sip`) beside `rsip` 0.4, the SIP crate a user on our Rust would
//! otherwise pick (see `spec/sip.md`, "Choice: hand-written"), on the REGISTER that SIPp sends
//! in `benches/samp_register.rs` and on the 200 a registrar answers it with.
//!
//! Rows:
//! - `parse`: the datagram to a message. Ours types every header it knows as it parses; rsip
//!   splits the head into named headers and keeps their values as text.
//! - `parse+fields`: the datagram to what a registrar reads (top Via's branch, From and To
//!   URIs, Call-ID, CSeq, the Contact's URI, Expires). For rsip that adds its `typed()` calls.
//! - `encode`: the 200 to bytes.
//!
//! `cargo bench --bench sip`; ratios are in `spec/benchmarks.md` and `spec/sip.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ip2p::sip::{self, Contact, Message};
use rsip::prelude::*;

const REGISTER: &[u8] = b"REGISTER sip:bench.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:15090;branch=z9hG4bK-23855-1-0\r\n\
From: <sip:u000001@bench.example>;tag=23855R1\r\n\
To: <sip:u000001@bench.example>\r\n\
Call-ID: 1-23855@127.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:u000001@127.0.0.1:15090>\r\n\
Expires: 3600\r\n\
Max-Forwards: 70\r\n\
User-Agent: sipp-bench\r\n\
Content-Length: 0\r\n\r\n";

const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:15090;branch=z9hG4bK-23855-1-0\r\n\
From: <sip:u000001@bench.example>;tag=23855R1\r\n\
To: <sip:u000001@bench.example>;tag=5f1c2a9d\r\n\
Call-ID: 1-23855@127.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:u000001@127.0.0.1:15090>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

/// What a registrar reads from a REGISTER, summed into a number so nothing is optimised away.
fn ours_fields(data: &[u8]) -> usize {
    let Ok(Message::Request(r)) = sip::parse(data) else {
        panic!("our parser refused the REGISTER");
    };
    let h = &r.headers;
    let branch = h
        .vias
        .first()
        .and_then(|v| v.branch.as_deref())
        .map_or(0, str::len);
    let from = h.from.as_ref().map_or(0, |f| f.uri.host.len());
    let to = h.to.as_ref().map_or(0, |t| t.uri.host.len());
    let contact = match &h.contact {
        Some(Contact::Addrs(list)) => list.first().map_or(0, |c| c.uri.host.len()),
        _ => 0,
    };
    branch
        + from
        + to
        + contact
        + h.call_id.as_deref().map_or(0, str::len)
        + h.cseq.as_ref().map_or(0, |c| c.seq as usize)
        + h.expires.unwrap_or(0) as usize
}

fn rsip_fields(data: &[u8]) -> usize {
    let Ok(r) = rsip::Request::try_from(data) else {
        panic!("rsip refused the REGISTER");
    };
    let (Ok(via), Ok(from), Ok(to), Ok(call_id), Ok(cseq), Ok(contact)) = (
        r.via_header().and_then(|v| v.typed()),
        r.from_header().and_then(|v| v.typed()),
        r.to_header().and_then(|v| v.typed()),
        r.call_id_header(),
        r.cseq_header().and_then(|v| v.typed()),
        r.contact_header().and_then(|v| v.typed()),
    ) else {
        panic!("rsip refused a header of the REGISTER");
    };
    let expires = r
        .expires_header()
        .and_then(|e| e.seconds().ok())
        .unwrap_or(0);
    let branch = via.branch().map_or(0, |b| b.to_string().len());
    branch
        + from.uri.host_with_port.to_string().len()
        + to.uri.host_with_port.to_string().len()
        + contact.uri.host_with_port.to_string().len()
        + call_id.value().len()
        + cseq.seq as usize
        + expires as usize
}

fn bench(c: &mut Criterion) {
    // both parsers agree on what they read (the host lengths differ only by rsip's port)
    assert!(ours_fields(REGISTER) > 3600 && rsip_fields(REGISTER) > 3600);
    let ours_ok = sip::parse(OK).expect("our parser takes the 200");
    let rsip_ok = rsip::SipMessage::try_from(OK).expect("rsip takes the 200");

    let mut g = c.benchmark_group("sip REGISTER");
    g.bench_function("parse/ip2p", |b| {
        b.iter(|| sip::parse(black_box(REGISTER)).map(|m| m.headers().vias.len()))
    });
    g.bench_function("parse/rsip", |b| {
        b.iter(|| {
            rsip::SipMessage::try_from(black_box(REGISTER)).map(|m| m.headers().iter().count())
        })
    });
    g.bench_function("parse+fields/ip2p", |b| {
        b.iter(|| ours_fields(black_box(REGISTER)))
    });
    g.bench_function("parse+fields/rsip", |b| {
        b.iter(|| rsip_fields(black_box(REGISTER)))
    });
    g.finish();

    let mut g = c.benchmark_group("sip 200");
    g.bench_function("encode/ip2p", |b| {
        b.iter(|| sip::encode(black_box(&ours_ok)))
    });
    g.bench_function("encode/rsip", |b| {
        b.iter(|| Vec::<u8>::from(black_box(rsip_ok.clone())))
    });
    g.bench_function("clone/rsip", |b| b.iter(|| black_box(rsip_ok.clone())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
