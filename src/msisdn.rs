//! Telephone numbers as peer identities: [`Msisdn`], an E.164 number.
//!
//! iP2P names a peer by its MSISDN (its telephone number). The iP2P socket API must tell an MSISDN
//! from a DNS name; [`Msisdn::parse`] accepts the international forms, and
//! [`Msisdn::parse_national`] also accepts a national form given a [`DialPlan`].
//!
//! ```
//! use ip2p::msisdn::{DialPlan, Msisdn};
//!
//! let a: Msisdn = "+886 912-345-678".parse().unwrap();
//! let b = Msisdn::parse("tel:+886-912-345-678").unwrap();
//! let c = Msisdn::parse_national("0912 345 678", &DialPlan::new("886", "0").unwrap()).unwrap();
//! assert_eq!(a, b);
//! assert_eq!(a, c);
//! assert_eq!(a.to_string(), "+886912345678");
//! assert_eq!(a.digits(), "886912345678");
//! assert!(Msisdn::parse("example.com").is_err());
//! ```

use core::fmt;
use core::str::FromStr;

/// The most digits an E.164 number has (country code included).
pub const MAX_DIGITS: usize = 15;

/// An E.164 telephone number: a country code and a national number, 1 to 15 decimal digits in all,
/// stored without the leading `+`. Small and `Copy`, so machines can hold it in checkable state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Msisdn {
    len: u8,
    digits: [u8; MAX_DIGITS],
}

/// Why a string is not an MSISDN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    /// Nothing but separators.
    #[error("no digits in the number")]
    Empty,
    /// More than 15 digits.
    #[error("{0} digits: an E.164 number has at most 15")]
    TooLong(usize),
    /// A character that is neither a digit nor a visual separator.
    #[error("character {0:?} is not allowed in a telephone number")]
    BadChar(char),
    /// An international number must start with `+` (or, with a dial plan, the national trunk prefix).
    #[error("not an international number: it must start with '+'")]
    NotInternational,
    /// A national number does not start with the dial plan's trunk prefix.
    #[error("national number does not start with the trunk prefix {0:?}")]
    NoTrunkPrefix(&'static str),
    /// Country codes are 1 to 3 digits and never start with 0.
    #[error("country code must be 1 to 3 digits, not starting with 0")]
    BadCountryCode,
    /// A trunk prefix is 0 to 2 digits.
    #[error("trunk prefix must be at most 2 digits")]
    BadTrunkPrefix,
}

/// How national numbers are written where the phone is: the country code to prepend and the trunk
/// prefix to strip (`"0"` in most of Europe and Asia, `"1"` in North America, `""` where there is
/// none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DialPlan {
    cc_len: u8,
    cc: [u8; 3],
    trunk_len: u8,
    trunk: [u8; 2],
}

impl DialPlan {
    /// A dial plan from a country code (1–3 digits, e.g. `"886"`) and a trunk prefix (e.g. `"0"`).
    pub fn new(country_code: &str, trunk_prefix: &str) -> Result<Self, MsisdnError> {
        let cc = country_code.as_bytes();
        if cc.is_empty() || cc.len() > 3 || cc[0] == b'0' || !cc.iter().all(u8::is_ascii_digit) {
            return Err(MsisdnError::BadCountryCode);
        }
        let tp = trunk_prefix.as_bytes();
        if tp.len() > 2 || !tp.iter().all(u8::is_ascii_digit) {
            return Err(MsisdnError::BadTrunkPrefix);
        }
        let mut p = DialPlan {
            cc_len: cc.len() as u8,
            cc: [0; 3],
            trunk_len: tp.len() as u8,
            trunk: [0; 2],
        };
        p.cc[..cc.len()].copy_from_slice(cc);
        p.trunk[..tp.len()].copy_from_slice(tp);
        Ok(p)
    }

    /// The country code digits.
    pub fn country_code(&self) -> &str {
        core::str::from_utf8(&self.cc[..self.cc_len as usize]).unwrap_or("")
    }

    /// The trunk prefix digits.
    pub fn trunk_prefix(&self) -> &str {
        core::str::from_utf8(&self.trunk[..self.trunk_len as usize]).unwrap_or("")
    }
}

/// Separators people and RFC 3966 put between digits; they carry no meaning.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

impl Msisdn {
    /// Parse an international number: `+886912345678`, `+886 912-345-678`, `tel:+886912345678`
    /// (RFC 3966 global number; parameters after `;` are ignored) or `00886912345678`.
    pub fn parse(s: &str) -> Result<Self, MsisdnError> {
        let s = s.trim();
        let s = strip_tel(s);
        if let Some(rest) = s.strip_prefix('+') {
            Self::from_digits(rest)
        } else if let Some(rest) = s.strip_prefix("00") {
            Self::from_digits(rest)
        } else {
            // say which is wrong: a stray letter, or just the missing '+'
            match s.chars().find(|&c| !c.is_ascii_digit() && !is_separator(c)) {
                Some(c) => Err(MsisdnError::BadChar(c)),
                None => Err(MsisdnError::NotInternational),
            }
        }
    }

    /// Parse an international number as [`Msisdn::parse`] does, or a national one written with the
    /// plan's trunk prefix (`0912 345 678` with `DialPlan::new("886", "0")`).
    pub fn parse_national(s: &str, plan: &DialPlan) -> Result<Self, MsisdnError> {
        match Self::parse(s) {
            Err(MsisdnError::NotInternational) => {}
            other => return other,
        }
        let s = strip_tel(s.trim());
        let trunk = plan.trunk_prefix();
        let national = s
            .strip_prefix(trunk)
            .ok_or(MsisdnError::NoTrunkPrefix(match trunk {
                "0" => "0",
                "1" => "1",
                _ => "the plan's",
            }))?;
        let mut m = Msisdn {
            len: 0,
            digits: [0; MAX_DIGITS],
        };
        for b in plan.country_code().bytes() {
            m.push(b)?;
        }
        let before = m.len;
        for c in national.chars() {
            if c.is_ascii_digit() {
                m.push(c as u8)?;
            } else if !is_separator(c) {
                return Err(MsisdnError::BadChar(c));
            }
        }
        if m.len == before {
            return Err(MsisdnError::Empty);
        }
        Ok(m)
    }

    fn from_digits(s: &str) -> Result<Self, MsisdnError> {
        let mut m = Msisdn {
            len: 0,
            digits: [0; MAX_DIGITS],
        };
        for c in s.chars() {
            if c.is_ascii_digit() {
                m.push(c as u8)?;
            } else if !is_separator(c) {
                return Err(MsisdnError::BadChar(c));
            }
        }
        match m.len {
            0 => Err(MsisdnError::Empty),
            _ if m.digits[0] == b'0' => Err(MsisdnError::BadCountryCode),
            _ => Ok(m),
        }
    }

    fn push(&mut self, digit: u8) -> Result<(), MsisdnError> {
        let n = self.len as usize;
        if n == MAX_DIGITS {
            // count the rest honestly only up to the first excess digit
            return Err(MsisdnError::TooLong(MAX_DIGITS + 1));
        }
        self.digits[n] = digit;
        self.len += 1;
        Ok(())
    }

    /// The digits, country code first, without `+` (what TS 23.040 puts in an address field with
    /// type-of-number "international").
    pub fn digits(&self) -> &str {
        // only ASCII digits are ever stored
        core::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }

    /// Build from digits only (country code first, no `+`), e.g. an SMS originating address.
    pub fn from_international_digits(digits: &str) -> Result<Self, MsisdnError> {
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(MsisdnError::BadChar(c));
        }
        Self::from_digits(digits)
    }
}

fn strip_tel(s: &str) -> &str {
    let s = match s.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tel:") => &s[4..],
        _ => s,
    };
    match s.find(';') {
        Some(i) => &s[..i],
        None => s,
    }
}

impl FromStr for Msisdn {
    type Err = MsisdnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.digits())
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn(+{})", self.digits())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Msisdn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Msisdn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::string::String as serde::Deserialize>::deserialize(d)?;
        Msisdn::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let want = "+886912345678";
        for s in [
            "+886912345678",
            " +886 (912) 345-678 ",
            "tel:+886-912-345-678",
            "TEL:+886.912.345.678;phone-context=x",
            "00886912345678",
        ] {
            assert_eq!(Msisdn::parse(s).unwrap().to_string(), want, "{s}");
        }
        let plan = DialPlan::new("886", "0").unwrap();
        assert_eq!(
            Msisdn::parse_national("0912-345-678", &plan)
                .unwrap()
                .to_string(),
            want
        );
        assert_eq!(
            Msisdn::parse_national("+886912345678", &plan)
                .unwrap()
                .to_string(),
            want
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(Msisdn::parse("example.com"), Err(MsisdnError::BadChar('e')));
        assert_eq!(Msisdn::parse("+"), Err(MsisdnError::Empty));
        assert_eq!(
            Msisdn::parse("0912345678"),
            Err(MsisdnError::NotInternational)
        );
        assert_eq!(
            Msisdn::parse("+1234567890123456"),
            Err(MsisdnError::TooLong(16))
        );
        assert!(Msisdn::parse("+123456789012345").is_ok());
        assert_eq!(Msisdn::parse("+0123"), Err(MsisdnError::BadCountryCode));
        assert_eq!(Msisdn::parse("+12a3"), Err(MsisdnError::BadChar('a')));
        let plan = DialPlan::new("886", "0").unwrap();
        assert_eq!(
            Msisdn::parse_national("912345678", &plan),
            Err(MsisdnError::NoTrunkPrefix("0"))
        );
        assert_eq!(Msisdn::parse_national("0", &plan), Err(MsisdnError::Empty));
        assert!(DialPlan::new("0", "0").is_err());
        assert!(DialPlan::new("1234", "0").is_err());
        assert!(DialPlan::new("1", "012").is_err());
    }
}
