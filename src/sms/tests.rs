//! Known-answer vectors and property tests across the SMS layers.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::machine::Machine;
use crate::time::Time;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn enc_submit(s: &Submit) -> Vec<u8> {
    let mut o = vec![];
    s.encode(&mut o).unwrap();
    o
}

fn enc_deliver(d: &Deliver) -> Vec<u8> {
    let mut o = vec![];
    d.encode(&mut o).unwrap();
    o
}

#[test]
fn submit_with_smsc_prefix() {
    let s = Submit::text(
        Address::international("+886912345678").unwrap(),
        "hellohello",
    )
    .unwrap();
    let smsc = Address::international("+31624000000").unwrap();
    let mut o = vec![];
    let n = s.encode_pdu_mode(Some(&smsc), &mut o).unwrap();
    assert_eq!(
        o,
        hex("07911326040000F001000C9188962143658700000AE8329BFD4697D9EC37")
    );
    assert_eq!(n, 22);
    let (c, tpdu) = split_smsc(&o).unwrap();
    assert_eq!(c, Some(smsc));
    assert_eq!(Submit::decode(tpdu).unwrap(), s);
}

#[test]
fn classic_deliver() {
    // the SMS-DELIVER every PDU tutorial quotes, SMSC prefix included
    let b = hex("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07");
    let (smsc, tpdu) = split_smsc(&b).unwrap();
    assert_eq!(smsc.unwrap().to_string(), "+31624000000");
    let d = Deliver::decode(tpdu).unwrap();
    assert_eq!(d.from.to_string(), "+31641600986");
    assert_eq!(d.text().unwrap(), "How are you?");
    assert!(!d.more_messages);
    let t = d.scts;
    assert_eq!(
        (t.year, t.month, t.day, t.hour, t.minute, t.second),
        (2, 8, 26, 19, 37, 41)
    );
    // time-zone octet 0x08 is "minus zero": it re-encodes as 0x00
    assert_eq!(t.tz_quarters, 0);
    assert_eq!(Deliver::decode_pdu_mode(&b).unwrap().1, d);
    let mut again = vec![];
    let n = d.encode_pdu_mode(None, &mut again).unwrap();
    assert_eq!((again[0], n), (0, again.len() - 1));
}

#[test]
fn deliver_scts_time_zones() {
    let mut d = Deliver::from_submit(
        &Submit::text(Address::international("1").unwrap(), "hi").unwrap(),
        Address::international("886912345678").unwrap(),
        Timestamp {
            year: 26,
            month: 11,
            day: 22,
            hour: 5,
            minute: 43,
            second: 7,
            tz_quarters: 32,
        },
    );
    let b = enc_deliver(&d);
    // SCTS: 26-11-22 05:43:07, +8 h = 32 quarter-hours -> octet 0x23
    assert_eq!(b, hex("040C9188962143658700006211225034702302E834"));
    assert_eq!(Deliver::decode(&b).unwrap(), d);
    // -5 h = -20 quarter-hours: tens 2 with the sign bit, units 0 -> 0x0A
    d.scts.tz_quarters = -20;
    let b = enc_deliver(&d);
    assert_eq!(b[17], 0x0A);
    assert_eq!(Deliver::decode(&b).unwrap().scts.tz_quarters, -20);
    // a non-decimal semi-octet is refused, naming the field
    let mut bad = b.clone();
    bad[12] = 0x1A;
    assert_eq!(
        Deliver::decode(&bad),
        Err(PduError::BadTimestamp {
            field: "month",
            octet: 0x1A
        })
    );
}

#[test]
fn udh_fill_bits_known_answers() {
    let to = Address::international("886912345678").unwrap();
    // 6-octet UDH (8-bit concat): 1 fill bit; "hello" at bit 49
    let mut s = Submit::text(to.clone(), "hello").unwrap();
    s.ud.header = Some(Udh {
        ies: vec![Ie::Concat8 {
            reference: 0x2A,
            total: 2,
            seq: 1,
        }],
    });
    let b = enc_submit(&s);
    assert_eq!(&b[b.len() - 12..], hex("0C0500032A0201D06536FB0D"));
    assert_eq!(Submit::decode(&b).unwrap(), s);
    // 7-octet UDH (16-bit concat): 56 bits = 8 septets, no fill
    s.ud.header = Some(Udh {
        ies: vec![Ie::Concat16 {
            reference: 0x1234,
            total: 2,
            seq: 1,
        }],
    });
    let b = enc_submit(&s);
    assert_eq!(&b[b.len() - 13..], hex("0D06080412340201E8329BFD06"));
    assert_eq!(Submit::decode(&b).unwrap(), s);
    // 5-octet UDH (8-bit ports): 40 bits, 2 fill bits, 6 header septets
    s.ud.header = Some(Udh {
        ies: vec![Ie::Ports8 { dst: 1, src: 2 }],
    });
    let b = enc_submit(&s);
    assert_eq!(&b[b.len() - 11..], hex("0B0404020102A0CB6CF61B")); // UDL: 6 header septets + 5
    assert_eq!(Submit::decode(&b).unwrap(), s);
}

#[test]
fn ucs2_submit() {
    let s = Submit::text(Address::international("886912345678").unwrap(), "你好").unwrap();
    assert_eq!(s.dcs, Dcs::UCS2);
    assert_eq!(enc_submit(&s), hex("01000C918896214365870008044F60597D"));
}

#[test]
fn validity_periods() {
    let to = Address::international("1234").unwrap();
    let mut s = Submit::text(to, "x").unwrap();
    for (v, first, vp) in [
        (Validity::Relative(0xA7), 0x11, "A7"),
        (
            Validity::Enhanced([0x42, 0, 0, 0, 0, 0, 0]),
            0x09,
            "42000000000000",
        ),
        (
            Validity::Absolute(Timestamp {
                year: 99,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 58,
                tz_quarters: -4,
            }),
            0x19,
            "99211332958548",
        ),
    ] {
        s.validity = v;
        let b = enc_submit(&s);
        assert_eq!(b[0], first);
        assert_eq!(&b[8..8 + vp.len() / 2], hex(vp));
        assert_eq!(Submit::decode(&b).unwrap(), s);
    }
    assert_eq!(Validity::relative_minutes(0xA7), 24 * 60);
    assert_eq!(Validity::relative_minutes(143), 720);
    assert_eq!(Validity::relative_minutes(255), 63 * 7 * 24 * 60);
}

#[test]
fn dcs_groups() {
    assert_eq!(Dcs(0x00).alphabet(), Ok(Alphabet::Gsm7));
    assert_eq!(Dcs(0xF4).alphabet(), Ok(Alphabet::Data8));
    assert_eq!(Dcs(0xF4).class(), Some(MessageClass::Class0));
    assert_eq!(Dcs(0x18).alphabet(), Ok(Alphabet::Ucs2));
    assert_eq!(Dcs(0x18).class(), Some(MessageClass::Class0));
    assert_eq!(Dcs(0xE0).alphabet(), Ok(Alphabet::Ucs2));
    assert_eq!(Dcs(0x20).alphabet(), Err(PduError::Compressed(0x20)));
    assert_eq!(Dcs(0x0C).alphabet(), Err(PduError::ReservedDcs(0x0C)));
    assert_eq!(Dcs(0x80).alphabet(), Err(PduError::ReservedDcs(0x80)));
    assert_eq!(
        Dcs::new(Alphabet::Data8, Some(MessageClass::Class1)),
        Dcs(0x15)
    );
    // a compressed SUBMIT is refused with that reason
    let b = hex("0100039121F300200100");
    assert_eq!(Submit::decode(&b), Err(PduError::Compressed(0x20)));
}

#[test]
fn strict_decoding() {
    let s = enc_submit(&Submit::text(Address::international("12").unwrap(), "hi").unwrap());
    let mut long = s.clone();
    long.push(0);
    assert_eq!(Submit::decode(&long), Err(PduError::TrailingBytes(1)));
    for n in 0..s.len() {
        assert!(Submit::decode(&s[..n]).is_err(), "prefix {n}");
    }
    assert!(matches!(
        Deliver::decode(&s),
        Err(PduError::WrongType { mti: 1, .. })
    ));
    // UDL over 160 septets
    let mut over = s.clone();
    let at = over.len() - 3;
    over[at] = 161;
    assert!(matches!(
        Submit::decode(&over),
        Err(PduError::UserDataTooLong { len: 161, .. })
    ));
    // an encoder refuses what does not fit, appending nothing
    let big = Submit::new(
        Address::international("1").unwrap(),
        Dcs::DATA8,
        UserData {
            header: None,
            body: vec![0; 141],
        },
    );
    let mut o = vec![1, 2];
    assert!(big.encode(&mut o).is_err());
    assert_eq!(o, [1, 2]);
}

#[test]
fn port_message_single_and_split() {
    let to = Address::international("886912345678").unwrap();
    let one = port_message(to.clone(), 9200, 9201, &[7; 133], 1).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0].ud.header.as_ref().unwrap().ports(),
        Some((9200, 9201))
    );
    assert!(one[0].ud.header.as_ref().unwrap().concat().is_none());
    let two = port_message(to.clone(), 9200, 9201, &[7; 140], 300).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].ud.body.len(), 127);
    assert!(matches!(
        two[1].ud.header.as_ref().unwrap().ies[1],
        Ie::Concat16 {
            reference: 300,
            total: 2,
            seq: 2
        }
    ));
    for p in &two {
        p.check().unwrap();
    }
    assert!(port_message(to, 1, 2, &vec![0; 128 * 256], 1).is_err());
}

#[test]
fn text_split_keeps_escapes_and_surrogates_whole() {
    let to = Address::international("1").unwrap();
    // 152 'a' then '€': the escape would be septet 153 of part 1
    let t: String = "a".repeat(152) + "€€€€€";
    let parts = split_text(&to, &t, None, 5).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].ud.body.len(), 152);
    let u: String = "日".repeat(66) + "😀" + &"日".repeat(10);
    let parts = split_text(&to, &u, None, 5).unwrap();
    assert_eq!(parts[0].ud.body.len(), 132);
}

fn deliver_parts(parts: &[Submit], from: &Address) -> Vec<Deliver> {
    parts
        .iter()
        .map(|p| Deliver::from_submit(p, from.clone(), Timestamp::default()))
        .collect()
}

#[test]
fn reassembler_expiry_eviction_duplicates() {
    let me = Address::international("886912345678").unwrap();
    let a = Address::international("1").unwrap();
    let mut r = Reassembler::new(Config {
        max_partial: 1,
        max_parts: 4,
        timeout: Duration::from_secs(10),
    });
    let p = deliver_parts(&split_text(&me, &"x".repeat(400), None, 9).unwrap(), &a);
    assert_eq!(p.len(), 3);
    r.handle(Time::ZERO, p[2].clone()).unwrap();
    r.handle(Time::ZERO, p[2].clone()).unwrap();
    assert_eq!(r.stats().duplicates, 1);
    assert_eq!(r.poll_timeout(), Some(Time::from_millis(10_000)));
    r.handle_timeout(Time::from_millis(9_999));
    assert!(r.poll().is_none());
    r.handle_timeout(Time::from_millis(10_000));
    match r.poll() {
        Some(Event::Expired { key, missing }) => {
            assert_eq!(missing, [1, 2]);
            assert_eq!((key.reference, key.total), (9, 3));
        }
        e => panic!("{e:?}"),
    }
    // eviction: a second message while one is pending
    let q = deliver_parts(&split_text(&me, &"y".repeat(400), None, 10).unwrap(), &a);
    r.handle(Time::ZERO, p[0].clone()).unwrap();
    r.handle(Time::ZERO, q[1].clone()).unwrap();
    assert!(matches!(r.poll(), Some(Event::Evicted { ref missing, .. }) if missing == &[2, 3]));
    r.handle(Time::ZERO, q[0].clone()).unwrap();
    r.handle(Time::ZERO, q[2].clone()).unwrap();
    assert_eq!(
        r.poll(),
        Some(Event::Complete(Message {
            from: a.clone(),
            ports: None,
            body: Body::Text("y".repeat(400))
        }))
    );
    // a late duplicate of a completed message is ignored, not started afresh
    r.handle(Time::ZERO, q[1].clone()).unwrap();
    assert_eq!(r.pending(), 0);
    // bounds
    let mut big = q[0].clone();
    big.ud.header = Some(Udh {
        ies: vec![Ie::Concat8 {
            reference: 1,
            total: 5,
            seq: 1,
        }],
    });
    assert_eq!(
        r.handle(Time::ZERO, big.clone()),
        Err(ReassemblyError::TooManyParts { total: 5, max: 4 })
    );
    big.ud.header = Some(Udh {
        ies: vec![Ie::Concat8 {
            reference: 1,
            total: 3,
            seq: 4,
        }],
    });
    assert_eq!(
        r.handle(Time::ZERO, big),
        Err(ReassemblyError::BadSequence { seq: 4, total: 3 })
    );
}

fn arb_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        "[0-9]{1,15}".prop_map(|d| Address::international(&d).unwrap()),
        "[0-9*#]{0,20}".prop_map(|d| Address::numeric(TypeOfNumber::Unknown, &d).unwrap()),
        "[A-Za-z0-9 @$]{1,11}".prop_map(|d| Address::alphanumeric(&d).unwrap()),
    ]
}

fn arb_ts() -> impl Strategy<Value = Timestamp> {
    (
        0u8..100,
        1u8..13,
        1u8..32,
        0u8..24,
        0u8..60,
        0u8..60,
        -79i8..80,
    )
        .prop_map(
            |(year, month, day, hour, minute, second, tz_quarters)| Timestamp {
                year,
                month,
                day,
                hour,
                minute,
                second,
                tz_quarters,
            },
        )
}

fn arb_udh() -> impl Strategy<Value = Option<Udh>> {
    let ie = prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(reference, total, seq)| Ie::Concat8 {
            reference,
            total,
            seq
        }),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(reference, total, seq)| Ie::Concat16 {
            reference,
            total,
            seq
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(dst, src)| Ie::Ports8 { dst, src }),
        (any::<u16>(), any::<u16>()).prop_map(|(dst, src)| Ie::Ports16 { dst, src }),
        (
            prop_oneof![0x01u8..0x04, 0x09u8..0xFF],
            proptest::collection::vec(any::<u8>(), 0..6)
        )
            .prop_map(|(iei, data)| Ie::Other { iei, data }),
    ];
    proptest::option::of(proptest::collection::vec(ie, 0..4).prop_map(|ies| Udh { ies }))
}

fn arb_ud() -> impl Strategy<Value = (Dcs, UserData)> {
    (
        arb_udh(),
        0u8..3,
        proptest::collection::vec(any::<u8>(), 0..140),
    )
        .prop_map(|(header, a, mut body)| {
            let dcs = [Dcs::GSM7, Dcs::DATA8, Dcs::UCS2][a as usize];
            let room = match a {
                0 => 160 - header.as_ref().map_or(0, Udh::septets),
                _ => 140 - header.as_ref().map_or(0, Udh::len),
            };
            body.truncate(room);
            if a == 0 {
                body.iter_mut().for_each(|s| *s &= 0x7F);
            }
            (dcs, UserData { header, body })
        })
}

proptest! {
    #[test]
    fn submit_round_trips(to in arb_address(), (dcs, ud) in arb_ud(), rd: bool, srr: bool, rp: bool, mr: u8, pid: u8,
                          vp in prop_oneof![Just(Validity::None), any::<u8>().prop_map(Validity::Relative),
                                            any::<[u8; 7]>().prop_map(Validity::Enhanced), arb_ts().prop_map(Validity::Absolute)]) {
        let s = Submit { reject_duplicates: rd, validity: vp, status_report: srr, reply_path: rp, reference: mr, to, pid, dcs, ud };
        let b = enc_submit(&s);
        prop_assert!(b.len() <= 1 + 1 + 12 + 2 + 7 + 1 + 140);
        prop_assert_eq!(Submit::decode(&b).unwrap(), s);
    }

    #[test]
    fn deliver_round_trips(from in arb_address(), (dcs, ud) in arb_ud(), scts in arb_ts(), mms: bool, lp: bool, sri: bool, rp: bool, pid: u8) {
        let d = Deliver { more_messages: mms, loop_prevention: lp, status_report: sri, reply_path: rp, from, pid, dcs, scts, ud };
        let b = enc_deliver(&d);
        prop_assert_eq!(Deliver::decode(&b).unwrap(), d);
    }

    #[test]
    fn decoders_never_panic_and_are_canonical(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(s) = Submit::decode(&b) {
            let e = enc_submit(&s);
            prop_assert_eq!(Submit::decode(&e).unwrap(), s);
        }
        if let Ok(d) = Deliver::decode(&b) {
            let e = enc_deliver(&d);
            prop_assert_eq!(Deliver::decode(&e).unwrap(), d);
        }
        let _ = split_smsc(&b);
    }

    #[test]
    fn septets_round_trip_at_any_fill(s in proptest::collection::vec(0u8..128, 0..200), fill in 0u8..7) {
        let mut p = vec![];
        gsm7::pack(&s, fill, &mut p);
        prop_assert_eq!(p.len(), gsm7::packed_len(s.len(), fill));
        prop_assert_eq!(gsm7::unpack(&p, fill, s.len()).unwrap(), s);
    }

    #[test]
    fn text_round_trips(t in "\\PC{0,200}") {
        match gsm7::encode(&t) {
            Ok(s) => prop_assert_eq!(gsm7::decode(&s), t.clone()),
            Err(_) => prop_assert_eq!(gsm7::choose(&t), Alphabet::Ucs2),
        }
        let mut u = vec![];
        gsm7::ucs2_encode(&t, &mut u);
        prop_assert_eq!(gsm7::ucs2_decode(&u), t);
    }

    #[test]
    fn split_then_reassemble_in_any_order(t in "\\PC{0,600}", data in proptest::collection::vec(any::<u8>(), 0..700),
                                          reference: u16, ports in proptest::option::of((any::<u16>(), any::<u16>())),
                                          order in proptest::collection::vec(any::<u16>(), 8), dup: bool) {
        let to = Address::international("886912345678").unwrap();
        let from = Address::international("31612345678").unwrap();
        for (parts, body) in [
            (split_text(&to, &t, ports, reference).unwrap(), Body::Text(t.clone())),
            (split_data(&to, ports, &data, reference).unwrap(), Body::Bytes(data.clone())),
        ] {
            let mut ds = deliver_parts(&parts, &from);
            for (i, o) in order.iter().enumerate() {
                let n = ds.len();
                ds.swap(i % n, *o as usize % n);
            }
            if dup && ds.len() > 1 { let d = ds[0].clone(); ds.insert(ds.len() / 2, d); }
            let mut r = Reassembler::new(Config { max_parts: 16, ..Config::default() });
            let mut done = vec![];
            for d in ds {
                let mut b = vec![];
                d.encode(&mut b).unwrap();
                r.handle(Time::ZERO, Deliver::decode(&b).unwrap()).unwrap();
                while let Some(e) = r.poll() { done.push(e); }
            }
            prop_assert_eq!(done, vec![Event::Complete(Message { from: from.clone(), ports, body })]);
            prop_assert_eq!(r.pending(), 0);
        }
    }
}

#[test]
fn header_with_fill_bits_and_no_text() {
    // 6-octet header, 1 fill bit, no septets: TP-UDL 7, and 7 octets of user data (the last one
    // holds only the fill bit)
    let mut s = Submit::text(Address::international("1").unwrap(), "").unwrap();
    s.ud.header = Some(Udh {
        ies: vec![Ie::Concat8 {
            reference: 1,
            total: 2,
            seq: 2,
        }],
    });
    let b = enc_submit(&s);
    assert_eq!(
        &b[b.len() - 8..],
        hex("07050003010202")
            .iter()
            .chain(&[0])
            .copied()
            .collect::<Vec<_>>()
    );
    assert_eq!(Submit::decode(&b).unwrap(), s);
    assert_eq!(gsm7::packed_len(0, 3), 0);
    assert_eq!(gsm7::unpack(&[], 3, 0), Some(vec![]));
}
