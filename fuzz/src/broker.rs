//! Fuzz target body for the LAN broker's answer: arbitrary octets through
//! [`decode_answer`]; whatever decodes re-encodes to the very same octets (bounded work, no
//! panic on anything a hostile host on the LAN sends).

use ip2p::broker::wire::{decode_answer, encode_answer, QUERY};

/// The body of the `broker_wire` target.
pub fn broker_wire(data: &[u8]) {
    let local = "10.0.1.7".parse().expect("ip");
    if let Ok(p) = decode_answer(data, local) {
        let again = encode_answer(&p);
        // a "no NAT" answer is re-sent with the asking host's address as its public one
        let back = decode_answer(&again, local).expect("an encoded answer decodes");
        assert_eq!(back, p);
        if p.nat != ip2p::broker::NatBehaviour::NoNat {
            assert_eq!(again, data);
        }
    }
    let _ = ip2p::broker::wire::is_query(data);
}

/// Hand-written seeds for `broker_wire`.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    let p = ip2p::broker::Profile {
        local: "10.0.1.1".parse().expect("ip"),
        public: Some("80.100.1.1".parse().expect("ip")),
        igd: Some("2001:db8::1".parse().expect("ip")),
        nat: ip2p::broker::NatBehaviour::Delta(-3),
    };
    vec![
        ("answer".into(), encode_answer(&p)),
        ("query".into(), QUERY.to_vec()),
    ]
}
