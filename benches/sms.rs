//! SMS PDU codec: ours (`ip2p::sms`) beside `sms-pdu` 1.1, in the same run.
//!
//! `sms-pdu` encodes SMS-SUBMIT (text only, through `GsmMessageData::encode_message` and
//! `SubmitPdu::make_simple_message`) and decodes SMS-DELIVER (`DeliverPdu::try_from` then
//! `decode_message`); it has no SUBMIT decoder and no 8-bit text decoding, so those rows compare
//! what exists. Every PDU carries the SMSC prefix `00` on both sides. Ratios are in
//! `spec/sms.md` and `spec/benchmarks.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ip2p::sms::{self, Address, Deliver, Submit, Timestamp};
use sms_pdu::gsm_encoding::GsmMessageData;
use sms_pdu::pdu::{DeliverPdu, MessageEncoding, PduAddress, SubmitPdu};

const GSM_TEXT: &str = "iP2P: peer +886912345678 is at 203.0.113.7:40000, try TCP now {ok}";
const UCS_TEXT: &str = "iP2P 對等端位於 203.0.113.7:40000，請立即連線 😀";

fn deliver_pdu(s: &Submit) -> Vec<u8> {
    let d = Deliver::from_submit(
        s,
        Address::international("886987654321").unwrap(),
        Timestamp {
            year: 26,
            month: 11,
            day: 22,
            hour: 6,
            minute: 5,
            second: 0,
            tz_quarters: 32,
        },
    );
    let mut b = vec![0];
    d.encode(&mut b).unwrap();
    b
}

fn bench(c: &mut Criterion) {
    let to = Address::international("886912345678").unwrap();
    let their_to: PduAddress = "+886912345678".parse().unwrap();
    let mut g = c.benchmark_group("sms");
    for (name, text) in [("gsm7", GSM_TEXT), ("ucs2", UCS_TEXT)] {
        g.bench_function(format!("encode submit {name}/ip2p"), |b| {
            let mut out = Vec::with_capacity(200);
            b.iter(|| {
                out.clear();
                let s = Submit::text(to.clone(), black_box(text)).unwrap();
                s.encode_pdu_mode(None, &mut out).unwrap();
                black_box(&out);
            })
        });
        g.bench_function(format!("encode submit {name}/sms-pdu"), |b| {
            b.iter(|| {
                let data = GsmMessageData::encode_message(black_box(text));
                let p = SubmitPdu::make_simple_message(their_to.clone(), data[0].clone());
                black_box(p.as_bytes());
            })
        });
        let pdu = deliver_pdu(&Submit::text(to.clone(), text).unwrap());
        g.bench_function(format!("decode deliver {name}/ip2p"), |b| {
            b.iter(|| {
                let (_, tpdu) = sms::split_smsc(black_box(&pdu)).unwrap();
                let d = Deliver::decode(tpdu).unwrap();
                black_box(d.text().unwrap());
            })
        });
        g.bench_function(format!("decode deliver {name}/sms-pdu"), |b| {
            b.iter(|| {
                let d = DeliverPdu::try_from(black_box(&pdu[..])).unwrap();
                black_box(d.get_message_data().decode_message().unwrap().text);
            })
        });
    }
    // 8-bit data to an application port (the iP2P control path): sms-pdu has neither a port
    // header builder nor 8-bit decoding, so it gets the same octets through its generic paths.
    let payload: Vec<u8> = (0..120u8).collect();
    g.bench_function("encode submit data+port/ip2p", |b| {
        let mut out = Vec::with_capacity(200);
        b.iter(|| {
            out.clear();
            let parts = sms::port_message(to.clone(), 9200, 9201, black_box(&payload), 1).unwrap();
            parts[0].encode_pdu_mode(None, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("encode submit data+port/sms-pdu", |b| {
        b.iter(|| {
            let mut bytes = vec![6, 5, 4, 0x23, 0xF0, 0x23, 0xF1];
            bytes.extend_from_slice(black_box(&payload));
            let data = GsmMessageData {
                encoding: MessageEncoding::EightBit,
                udh: true,
                user_data_len: bytes.len() as u8,
                bytes,
            };
            let p = SubmitPdu::make_simple_message(their_to.clone(), data);
            black_box(p.as_bytes());
        })
    });
    let parts = sms::port_message(to.clone(), 9200, 9201, &payload, 1).unwrap();
    let pdu = deliver_pdu(&parts[0]);
    g.bench_function("decode deliver data+port/ip2p", |b| {
        b.iter(|| {
            let (_, tpdu) = sms::split_smsc(black_box(&pdu)).unwrap();
            let d = Deliver::decode(tpdu).unwrap();
            black_box((
                d.ud.header.as_ref().and_then(|h| h.ports()),
                d.ud.body.len(),
            ));
        })
    });
    g.bench_function("decode deliver data+port/sms-pdu", |b| {
        b.iter(|| {
            let d = DeliverPdu::try_from(black_box(&pdu[..])).unwrap();
            let m = d.get_message_data();
            // sms-pdu parses the header only inside decode_message, which refuses 8-bit data
            black_box((m.decode_message().is_err(), m.bytes.len()));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
