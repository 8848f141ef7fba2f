//! Fuzz target bodies for the SMS codec and reassembler (`ip2p::sms`).
//!
//! - [`sms_tpdu`]: arbitrary bytes decoded as an SMS-SUBMIT, an SMS-DELIVER and a PDU-mode string
//!   (SMSC prefix + TPDU). Whatever decodes must re-encode, and the re-encoding is canonical: it
//!   decodes to the same message and re-encodes to the same bytes.
//! - [`sms_gsm7`]: arbitrary septets unpacked at any fill offset and packed back; arbitrary text
//!   that GSM-7 can carry survives text → septets → text; UCS-2 survives for any text.
//! - [`sms_concat`]: a scenario of texts and data split into parts, then parts delivered in any
//!   order, duplicated, dropped, forged, with time passing, into a [`Reassembler`] with small
//!   limits. After every step the limits hold; at the end every message that started is either
//!   completed with exactly the body that was split, or reported expired/evicted with the parts
//!   it missed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::machine::Machine;
use ip2p::sms::{
    self, gsm7, Address, Body, Config, Deliver, Event, Reassembler, Submit, Timestamp,
};
use ip2p::Time;

/// Decode bytes as every PDU kind; check canonical re-encoding.
pub fn sms_tpdu(data: &[u8]) {
    if let Ok(s) = Submit::decode(data) {
        let mut a = Vec::new();
        s.encode(&mut a).expect("a decoded SUBMIT re-encodes");
        let s2 = Submit::decode(&a).expect("a re-encoded SUBMIT decodes");
        assert_eq!(s2, s, "SUBMIT changed through encode/decode");
        let mut b = Vec::new();
        s2.encode(&mut b).unwrap();
        assert_eq!(a, b, "SUBMIT encoding is not canonical");
    }
    if let Ok(d) = Deliver::decode(data) {
        let mut a = Vec::new();
        d.encode(&mut a).expect("a decoded DELIVER re-encodes");
        let d2 = Deliver::decode(&a).expect("a re-encoded DELIVER decodes");
        assert_eq!(d2, d, "DELIVER changed through encode/decode");
        let mut b = Vec::new();
        d2.encode(&mut b).unwrap();
        assert_eq!(a, b, "DELIVER encoding is not canonical");
        let _ = d.text();
    }
    if let Ok((smsc, tpdu)) = sms::split_smsc(data) {
        assert!(tpdu.len() < data.len());
        let mut a = Vec::new();
        if sms::encode_smsc(smsc.as_ref(), &mut a).is_ok() {
            let (again, rest) = sms::split_smsc(&a).expect("a re-encoded SMSC prefix splits");
            assert_eq!(again, smsc);
            assert!(rest.is_empty());
        }
        let _ = Submit::decode(tpdu);
    }
}

/// Septet packing at every fill offset; GSM-7 and UCS-2 text round trips.
pub fn sms_gsm7(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let fill = first % 7;
    // the septets that fit after the fill bits
    let count = (rest.len() * 8).saturating_sub(usize::from(fill)) / 7;
    let septets = gsm7::unpack(rest, fill, count).expect("enough octets for count septets");
    assert_eq!(septets.len(), count);
    let mut packed = Vec::new();
    gsm7::pack(&septets, fill, &mut packed);
    assert_eq!(gsm7::unpack(&packed, fill, count).unwrap(), septets);
    // decoding never fails; what it gives encodes back to septets that decode the same
    let text = gsm7::decode(&septets);
    let again = gsm7::encode(&text).expect("decoded GSM-7 text is GSM-7");
    assert_eq!(gsm7::decode(&again), text);
    // arbitrary text: GSM-7 when it maps, UCS-2 always
    let s = String::from_utf8_lossy(rest);
    if let Ok(sep) = gsm7::encode(&s) {
        assert_eq!(gsm7::septet_len(&s), Ok(sep.len()));
        assert_eq!(gsm7::decode(&sep), s);
        assert_eq!(gsm7::choose(&s), sms::Alphabet::Gsm7);
    } else {
        assert_eq!(gsm7::choose(&s), sms::Alphabet::Ucs2);
    }
    let mut u = Vec::new();
    gsm7::ucs2_encode(&s, &mut u);
    assert_eq!(gsm7::ucs2_decode(&u), s);
}

const SENDERS: [&str; 3] = ["886912345678", "31612345678", "15550001111"];

/// Split messages, deliver their parts in a hostile order into a small [`Reassembler`].
pub fn sms_concat(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = concat_scenario(&mut u);
}

fn concat_scenario(u: &mut Unstructured) -> Result<()> {
    let config = Config {
        max_partial: 1 + u.int_in_range(0..=3)?,
        max_parts: u.int_in_range(2..=8)?,
        timeout: Duration::from_millis(100 * u64::from(u.int_in_range(1u8..=50)?)),
    };
    let mut r = Reassembler::new(config);
    let me = Address::international("886900000000").unwrap();
    // messages: key (sender, reference) -> (body, parts)
    let mut sent: Vec<(Address, Body, Vec<Deliver>)> = Vec::new();
    let n = u.int_in_range(1..=4)?;
    for i in 0..n {
        let from = Address::international(SENDERS[u.int_in_range(0..=2)?]).unwrap();
        // distinct references per scenario, so keys never collide by accident
        let reference = if u.arbitrary::<bool>()? {
            i as u16
        } else {
            256 + i as u16
        };
        let ports = if u.arbitrary::<bool>()? {
            Some((u.arbitrary()?, u.arbitrary()?))
        } else {
            None
        };
        let len = u.int_in_range(0..=600)?;
        let (body, parts) = if u.arbitrary::<bool>()? {
            let bytes = u.bytes(len.min(u.len()))?.to_vec();
            let p = sms::split_data(&me, ports, &bytes, reference).unwrap();
            (Body::Bytes(bytes), p)
        } else {
            let pool: Vec<char> = "ab€[😀日 \n".chars().collect();
            let text: String = (0..len / 4)
                .map(|_| pool[(u.arbitrary::<u8>().unwrap_or(0) as usize) % pool.len()])
                .collect();
            let p = sms::split_text(&me, &text, ports, reference).unwrap();
            (Body::Text(text), p)
        };
        let ds = parts
            .iter()
            .map(|p| Deliver::from_submit(p, from.clone(), Timestamp::default()))
            .collect();
        sent.push((from, body, ds));
    }
    let mut now = Time::ZERO;
    let mut events = Vec::new();
    let mut fed = BTreeMap::<usize, usize>::new();
    let mut forged = BTreeSet::<usize>::new();
    let steps = u.int_in_range(0..=64)?;
    for _ in 0..steps {
        match u.int_in_range(0..=9)? {
            0..=6 => {
                let m = u.choose_index(sent.len())?;
                let k = u.choose_index(sent[m].2.len())?;
                let mut d = sent[m].2[k].clone();
                if u.ratio(1, 16)? {
                    // a forged part: same key, other contents
                    d.ud.body.push(0x41);
                    forged.insert(m);
                }
                // through the codec, as a modem would give it (a forged part may no longer fit)
                let mut b = Vec::new();
                if d.encode(&mut b).is_ok() {
                    *fed.entry(m).or_default() += 1;
                    let d = Deliver::decode(&b).expect("what we encode decodes");
                    let _ = r.handle(now, d);
                }
            }
            7 | 8 => {
                now = now + Duration::from_millis(u64::from(u.arbitrary::<u16>()?));
                if let Some(t) = r.poll_timeout() {
                    if t <= now {
                        r.handle_timeout(now);
                        assert!(
                            r.poll_timeout().map_or(true, |t| t > now),
                            "a deadline left at or before now"
                        );
                    }
                }
            }
            _ => {
                // deliver every part of one message in order
                let m = u.choose_index(sent.len())?;
                for d in sent[m].2.clone() {
                    let _ = r.handle(now, d);
                }
                *fed.entry(m).or_default() += 1;
            }
        }
        while let Some(e) = r.poll() {
            events.push(e);
        }
        assert!(
            r.pending() <= config.max_partial,
            "{} partial messages over the limit",
            r.pending()
        );
    }
    // the end: time runs out for everything
    r.handle_timeout(Time::MAX);
    while let Some(e) = r.poll() {
        events.push(e);
    }
    assert_eq!(
        r.pending(),
        0,
        "partial messages left after the last deadline"
    );
    // every completed message is one that was sent, with the body that was split (unless a
    // forged part of it went in first)
    for e in &events {
        match e {
            Event::Complete(m) => {
                let ok = sent.iter().enumerate().any(|(i, (from, body, parts))| {
                    *from == m.from
                        && m.ports == parts[0].ud.header.as_ref().and_then(|h| h.ports())
                        && (*body == m.body || forged.contains(&i))
                });
                assert!(ok, "completed a message that was not sent: {m:?}");
            }
            Event::Expired { missing, key } | Event::Evicted { missing, key } => {
                assert!(!missing.is_empty(), "{key:?} ended with no part missing");
                assert!(missing.iter().all(|&s| s >= 1 && s <= key.total));
            }
        }
    }
    // every message fed to it (within the part limit) ended in an event
    for (&i, _) in fed.iter() {
        let (from, body, parts) = &sent[i];
        if parts.len() > usize::from(config.max_parts) {
            continue;
        }
        let reference = parts[0]
            .ud
            .header
            .as_ref()
            .and_then(|h| h.concat())
            .map(|c| c.reference);
        let ended = events.iter().any(|e| match e {
            Event::Complete(m) => m.from == *from && (m.body == *body || forged.contains(&i)),
            Event::Expired { key, .. } | Event::Evicted { key, .. } => {
                key.from == *from && Some(key.reference) == reference
            }
        });
        assert!(
            ended,
            "message {i} from {from} was fed but never completed, expired or evicted"
        );
    }
    let st = r.stats();
    assert_eq!(
        st.completed as usize,
        events
            .iter()
            .filter(|e| matches!(e, Event::Complete(_)))
            .count()
    );
    Ok(())
}

/// Seeds for `sms_tpdu`: the spec's known-answer PDUs.
pub fn tpdu_seeds() -> Vec<(String, Vec<u8>)> {
    let h = |s: &str| {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let to = Address::international("886912345678").unwrap();
    let mut out = vec![
        (
            "deliver-classic-with-smsc".into(),
            h("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"),
        ),
        (
            "deliver-udh16-no-fill".into(),
            h("440C9188962143658700006211225034702D0D06080412340201E8329BFD06"),
        ),
        (
            "submit-hellohello".into(),
            h("01000C9188962143658700000AE8329BFD4697D9EC37"),
        ),
    ];
    for (i, p) in sms::port_message(to.clone(), 9200, 9201, &[0x5A; 150], 7)
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut b = Vec::new();
        p.encode(&mut b).unwrap();
        out.push((format!("submit-port-part{i}"), b));
    }
    let mut s = Submit::text(to, "Ünïcødé 😀").unwrap();
    s.validity = sms::Validity::Absolute(Timestamp {
        year: 26,
        month: 11,
        day: 22,
        hour: 7,
        minute: 10,
        second: 0,
        tz_quarters: -20,
    });
    let mut b = Vec::new();
    s.encode(&mut b).unwrap();
    out.push(("submit-ucs2-absolute-vp".into(), b));
    out
}

/// Seeds for `sms_gsm7`.
pub fn gsm7_seeds() -> Vec<(String, Vec<u8>)> {
    let mut hello = vec![0u8];
    hello.extend_from_slice(&[0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]);
    let mut ext = vec![1u8];
    ext.extend_from_slice("{€}[~]^|\\ text".as_bytes());
    vec![
        ("hellohello".into(), hello),
        ("extension-text-fill1".into(), ext),
    ]
}

/// Seeds for `sms_concat`: small limits, two messages, parts out of order, time passing.
pub fn concat_seeds() -> Vec<(String, Vec<u8>)> {
    let mut a = vec![1, 2, 10, 1];
    // message 0: sender 0, 8-bit ref, no ports, data of 300 octets
    a.extend_from_slice(&[0, 0, 0, 0, 0x2C, 0x01, 1]);
    a.extend_from_slice(&[0x33; 300]);
    a.extend_from_slice(&[20, 0, 1, 0, 0, 0, 9, 0, 9, 0, 7, 0xFF, 0x7F]);
    let mut b = vec![2, 6, 3, 2];
    b.extend_from_slice(&[1, 1, 1, 0x12, 0x34, 0x56, 0x78, 0x90, 0x01, 0]);
    b.extend_from_slice(&[0x07; 64]);
    b.extend_from_slice(&[
        2, 0, 0, 0, 0, 0, 0xC8, 0x00, 0, 30, 9, 1, 0, 1, 1, 0, 2, 7, 0x10, 0x27,
    ]);
    vec![
        ("two-messages-out-of-order".into(), a),
        ("text-and-ports".into(), b),
    ]
}
