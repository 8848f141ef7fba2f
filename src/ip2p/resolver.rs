//! The name check of the iP2P socket API: is this name an MSISDN, an IP literal or a DNS name?
//!
//! The paper's socket API runs the usual DNS resolution unless "the destination domain name is an
//! MSISDN", in which case it hands the number to the iP2P control function (step B.1). [`classify`]
//! is that decision. The rule, in order:
//!
//! 1. an IPv4 or IPv6 literal (`192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`) is [`Name::Ip`];
//! 2. a name that starts with `+`, `tel:` or `00`, or that has only digits and the visual
//!    separators `space - . ( )`, is a telephone number: [`Name::Msisdn`] if it parses (national
//!    forms need a [`DialPlan`]), else an error — never a silent DNS query for a mistyped number;
//! 3. a syntactically valid host name (RFC 1123 labels) is [`Name::Dns`];
//! 4. anything else is an error.
//!
//! ```
//! use ip2p::ip2p::resolver::{classify, Name};
//! use ip2p::msisdn::DialPlan;
//!
//! let tw = DialPlan::new("886", "0").unwrap();
//! assert!(matches!(classify("+886912345678", None), Ok(Name::Msisdn(_))));
//! assert!(matches!(classify("tel:+886-912-345-678", None), Ok(Name::Msisdn(_))));
//! assert!(matches!(classify("0912 345 678", Some(&tw)), Ok(Name::Msisdn(_))));
//! assert!(matches!(classify("192.0.2.1", None), Ok(Name::Ip(_))));
//! assert!(matches!(classify("ftp.example.org", None), Ok(Name::Dns("ftp.example.org"))));
//! assert!(classify("0912 345 678", None).is_err()); // a national number needs a dial plan
//! assert!(classify("-bad-.example", None).is_err());
//! ```

use core::net::IpAddr;

use crate::msisdn::{DialPlan, Msisdn, MsisdnError};

/// What a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name<'a> {
    /// A telephone number: resolve it through iP2P (SMS).
    Msisdn(Msisdn),
    /// An IP address literal: nothing to resolve.
    Ip(IpAddr),
    /// A host name: resolve it through DNS as usual.
    Dns(&'a str),
}

/// Why a name is neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// It looks like a telephone number but is not a valid one.
    #[error("looks like a telephone number but is not a valid one: {0}")]
    BadNumber(MsisdnError),
    /// Not a valid host name.
    #[error("not a valid host name, IP address or telephone number")]
    BadHostName,
}

/// Classify `name` (see the module docs for the rule). `plan` enables national numbers.
pub fn classify<'a>(name: &'a str, plan: Option<&DialPlan>) -> Result<Name<'a>, NameError> {
    let t = name.trim();
    let literal = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(Name::Ip(ip));
    }
    let phone_like = t.starts_with('+')
        || t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tel:"))
        || (!t.is_empty()
            && t.chars().any(|c| c.is_ascii_digit())
            && t.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')));
    if phone_like {
        let parsed = match plan {
            Some(p) => Msisdn::parse_national(t, p),
            None => Msisdn::parse(t),
        };
        return parsed.map(Name::Msisdn).map_err(NameError::BadNumber);
    }
    if is_host_name(t) {
        Ok(Name::Dns(t))
    } else {
        Err(NameError::BadHostName)
    }
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and inner hyphens, at most 253
/// octets (a trailing dot allowed).
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            classify("+886 912 345 678", None),
            Ok(Name::Msisdn(Msisdn::parse("+886912345678").unwrap()))
        );
        assert!(matches!(classify("[::1]", None), Ok(Name::Ip(_))));
        assert_eq!(classify("localhost", None), Ok(Name::Dns("localhost")));
        assert_eq!(classify("a.b.", None), Ok(Name::Dns("a.b.")));
        // a number with a typo is an error, not a DNS query
        assert!(matches!(
            classify("+886 91x", None),
            Err(NameError::BadNumber(MsisdnError::BadChar('x')))
        ));
        assert!(matches!(
            classify("+1234567890123456", None),
            Err(NameError::BadNumber(MsisdnError::TooLong(_)))
        ));
        assert_eq!(classify("", None), Err(NameError::BadHostName));
        assert_eq!(classify("a..b", None), Err(NameError::BadHostName));
        assert_eq!(
            classify("under_score.org", None),
            Err(NameError::BadHostName)
        );
        let long = "a".repeat(64);
        assert_eq!(classify(&long, None), Err(NameError::BadHostName));
        // an all-digit dotted name that is not an IPv4 literal is a (bad) number
        assert!(matches!(
            classify("1.2.3.4.5", None),
            Err(NameError::BadNumber(_))
        ));
    }
}
