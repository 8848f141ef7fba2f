//! Addresses: TP-DA / TP-OA (TS 23.040 §9.1.2.5) and the SMSC address (TS 24.011 §8.2.5.2).
//!
//! ```text
//! TP address   = len:u8 (useful semi-octets, <= 20) toa:u8 value (ceil(len/2) octets)
//! SMSC address = len:u8 (octets that follow, 0 = none, <= 11) toa:u8 value (len-1 octets)
//! toa          = 1 ton:3 npi:4     (bit 7 is always 1)
//! value        = BCD semi-octets, low nibble first, F filler in the last high nibble
//!                (0-9, A '*', B '#', C 'a', D 'b', E 'c'), or, for ton = 5 (alphanumeric),
//!                GSM-7 packed septets (len counts the semi-octets they occupy)
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use super::gsm7;
use super::PduError;
use crate::msisdn::Msisdn;

/// Most semi-octets in a TP address value (10 octets).
pub const MAX_SEMI_OCTETS: usize = 20;
/// Most characters of an alphanumeric TP address (11 septets fill 77 of its 80 bits).
pub const MAX_ALPHA_SEPTETS: usize = 11;

/// Type of number (bits 6-4 of the type-of-address octet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TypeOfNumber {
    /// 0: unknown (the number is written as dialled).
    Unknown,
    /// 1: international (country code first, no prefix).
    International,
    /// 2: national.
    National,
    /// 3: network specific.
    NetworkSpecific,
    /// 4: subscriber number.
    Subscriber,
    /// 5: alphanumeric (GSM-7 text, e.g. a sender name).
    Alphanumeric,
    /// 6: abbreviated.
    Abbreviated,
    /// 7: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    fn from_bits(b: u8) -> Self {
        match b & 7 {
            0 => Self::Unknown,
            1 => Self::International,
            2 => Self::National,
            3 => Self::NetworkSpecific,
            4 => Self::Subscriber,
            5 => Self::Alphanumeric,
            6 => Self::Abbreviated,
            _ => Self::Reserved,
        }
    }
    fn bits(self) -> u8 {
        self as u8
    }
}

/// Numbering plan identification (bits 3-0 of the type-of-address octet): 1 is ISDN/telephone
/// (E.164), 0 unknown; the other values are kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NumberingPlan(pub u8);

impl NumberingPlan {
    /// 0: unknown.
    pub const UNKNOWN: Self = Self(0);
    /// 1: ISDN/telephone numbering plan (E.164/E.163).
    pub const ISDN: Self = Self(1);
}

/// An SMS address: who sends, who receives, or the service centre.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Address {
    /// Type of number.
    pub ton: TypeOfNumber,
    /// Numbering plan.
    pub npi: NumberingPlan,
    /// The digits (`0-9 * # a b c`) or, for [`TypeOfNumber::Alphanumeric`], the text.
    pub value: String,
}

impl Address {
    /// An international (E.164) number from its digits, e.g. `"886912345678"`; a leading `+` is
    /// dropped. Characters other than `0-9 * # a b c` are rejected.
    pub fn international(digits: &str) -> Result<Self, PduError> {
        Self::numeric(TypeOfNumber::International, digits.trim_start_matches('+'))
    }

    /// A number with type `ton` and the ISDN numbering plan.
    pub fn numeric(ton: TypeOfNumber, digits: &str) -> Result<Self, PduError> {
        let a = Address {
            ton,
            npi: NumberingPlan::ISDN,
            value: digits.into(),
        };
        a.check(false)?;
        Ok(a)
    }

    /// An alphanumeric sender (at most 11 GSM-7 septets).
    pub fn alphanumeric(text: &str) -> Result<Self, PduError> {
        let a = Address {
            ton: TypeOfNumber::Alphanumeric,
            npi: NumberingPlan::UNKNOWN,
            value: text.into(),
        };
        a.check(false)?;
        Ok(a)
    }

    /// The MSISDN this address names: only for an international number of decimal digits.
    pub fn msisdn(&self) -> Option<Msisdn> {
        if self.ton != TypeOfNumber::International {
            return None;
        }
        Msisdn::from_international_digits(&self.value).ok()
    }

    /// Whether the address fits its field (`smsc`: the TS 24.011 SMSC field).
    pub fn check(&self, smsc: bool) -> Result<(), PduError> {
        if self.ton == TypeOfNumber::Alphanumeric && !smsc {
            let n = gsm7::septet_len(&self.value).map_err(PduError::AddressChar)?;
            if n > MAX_ALPHA_SEPTETS {
                return Err(PduError::AddressTooLong {
                    len: n,
                    max: MAX_ALPHA_SEPTETS,
                });
            }
            return Ok(());
        }
        for c in self.value.chars() {
            nibble(c).ok_or(PduError::AddressChar(c))?;
        }
        let max = if smsc {
            2 * (MAX_SMSC_OCTETS - 1)
        } else {
            MAX_SEMI_OCTETS
        };
        if self.value.len() > max {
            return Err(PduError::AddressTooLong {
                len: self.value.len(),
                max,
            });
        }
        Ok(())
    }

    fn toa(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | (self.npi.0 & 0x0F)
    }

    /// Append the TP-DA/TP-OA encoding.
    pub(crate) fn encode_tp(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        self.check(false)?;
        if self.ton == TypeOfNumber::Alphanumeric {
            let septets = gsm7::encode(&self.value).map_err(PduError::AddressChar)?;
            let octets = gsm7::packed_len(septets.len(), 0);
            // semi-octets actually carrying septet bits
            out.push((septets.len() * 7).div_ceil(4) as u8);
            out.push(self.toa());
            let at = out.len();
            gsm7::pack(&septets, 0, out);
            debug_assert_eq!(out.len() - at, octets);
        } else {
            out.push(self.value.len() as u8);
            out.push(self.toa());
            bcd(&self.value, out);
        }
        Ok(())
    }

    /// Decode a TP-DA/TP-OA at the start of `b`; returns the address and the octets used.
    pub(crate) fn decode_tp(b: &[u8]) -> Result<(Self, usize), PduError> {
        let (&len, rest) = b
            .split_first()
            .ok_or(PduError::Truncated("address length"))?;
        let len = len as usize;
        if len > MAX_SEMI_OCTETS {
            return Err(PduError::AddressTooLong {
                len,
                max: MAX_SEMI_OCTETS,
            });
        }
        let (&toa, rest) = rest
            .split_first()
            .ok_or(PduError::Truncated("type of address"))?;
        let n = len.div_ceil(2);
        let value = rest.get(..n).ok_or(PduError::Truncated("address digits"))?;
        let ton = TypeOfNumber::from_bits(toa >> 4);
        let npi = NumberingPlan(toa & 0x0F);
        let value = if ton == TypeOfNumber::Alphanumeric {
            let septets =
                gsm7::unpack(value, 0, len * 4 / 7).ok_or(PduError::Truncated("address digits"))?;
            gsm7::decode(&septets)
        } else {
            unbcd(value, len)?
        };
        Ok((Address { ton, npi, value }, 2 + n))
    }
}

/// Most octets after the SMSC length octet (TS 24.011: type of address + 10 octets).
pub const MAX_SMSC_OCTETS: usize = 11;

fn nibble(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '*' => 0xA,
        '#' => 0xB,
        'a' | 'A' => 0xC,
        'b' | 'B' => 0xD,
        'c' | 'C' => 0xE,
        _ => return None,
    })
}

const DIGITS: &[u8; 15] = b"0123456789*#abc";

fn bcd(digits: &str, out: &mut Vec<u8>) {
    let mut it = digits.chars().map(|c| nibble(c).unwrap_or(0xF));
    while let Some(lo) = it.next() {
        let hi = it.next().unwrap_or(0xF);
        out.push(lo | (hi << 4));
    }
}

/// `n` semi-octets from `b`; an F is allowed only as the filler after an odd count.
fn unbcd(b: &[u8], n: usize) -> Result<String, PduError> {
    let mut s = String::with_capacity(n);
    for i in 0..n {
        let o = b[i / 2];
        let d = if i % 2 == 0 { o & 0x0F } else { o >> 4 };
        match DIGITS.get(d as usize) {
            Some(&c) => s.push(c as char),
            None => return Err(PduError::Invalid("address digit F before the end")),
        }
    }
    Ok(s)
}

impl From<Msisdn> for Address {
    fn from(m: Msisdn) -> Self {
        Address {
            ton: TypeOfNumber::International,
            npi: NumberingPlan::ISDN,
            value: m.digits().into(),
        }
    }
}

impl From<&Msisdn> for Address {
    fn from(m: &Msisdn) -> Self {
        Address::from(*m)
    }
}

impl core::fmt::Display for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.ton == TypeOfNumber::International {
            f.write_str("+")?;
        }
        f.write_str(&self.value)
    }
}

/// Append the PDU-mode SMSC prefix: `00` for "the modem's default centre", else the address.
pub fn encode_smsc(smsc: Option<&Address>, out: &mut Vec<u8>) -> Result<(), PduError> {
    let Some(a) = smsc else {
        out.push(0);
        return Ok(());
    };
    a.check(true)?;
    if a.ton == TypeOfNumber::Alphanumeric {
        return Err(PduError::Invalid("an SMSC address cannot be alphanumeric"));
    }
    out.push((1 + a.value.len().div_ceil(2)) as u8);
    out.push(a.toa());
    bcd(&a.value, out);
    Ok(())
}

/// Split a PDU-mode string's octets (what `AT+CMGS`/`+CMGR` carry) into the SMSC address
/// (`None` when the length octet is 0: the default centre) and the TPDU that follows.
pub fn split_smsc(pdu: &[u8]) -> Result<(Option<Address>, &[u8]), PduError> {
    let (&len, rest) = pdu
        .split_first()
        .ok_or(PduError::Truncated("SMSC length"))?;
    let len = len as usize;
    if len == 0 {
        return Ok((None, rest));
    }
    if len > MAX_SMSC_OCTETS {
        return Err(PduError::AddressTooLong {
            len,
            max: MAX_SMSC_OCTETS,
        });
    }
    let field = rest.get(..len).ok_or(PduError::Truncated("SMSC address"))?;
    let toa = field[0];
    let digits = &field[1..];
    let mut n = digits.len() * 2;
    if digits.last().is_some_and(|d| d >> 4 == 0xF) {
        n -= 1;
    }
    let value = unbcd(digits, n)?;
    let a = Address {
        ton: TypeOfNumber::from_bits(toa >> 4),
        npi: NumberingPlan(toa & 0x0F),
        value,
    };
    Ok((Some(a), &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn international_number() {
        let a = Address::international("+886912345678").unwrap();
        let mut o = vec![];
        a.encode_tp(&mut o).unwrap();
        assert_eq!(o, [0x0C, 0x91, 0x88, 0x96, 0x21, 0x43, 0x65, 0x87]);
        assert_eq!(Address::decode_tp(&o).unwrap(), (a.clone(), 8));
        assert_eq!(a.msisdn().unwrap().to_string(), "+886912345678");
        let m: Msisdn = "+31612345678".parse().unwrap();
        assert_eq!(Address::from(m).msisdn(), Some(m));
    }

    #[test]
    fn odd_digits_and_filler() {
        let a = Address::numeric(TypeOfNumber::National, "12345").unwrap();
        let mut o = vec![];
        a.encode_tp(&mut o).unwrap();
        assert_eq!(o, [0x05, 0xA1, 0x21, 0x43, 0xF5]);
        assert_eq!(Address::decode_tp(&o).unwrap().0, a);
        assert!(a.msisdn().is_none());
        assert!(Address::decode_tp(&[0x04, 0x91, 0x21, 0xF3]).is_err());
    }

    #[test]
    fn alphanumeric_sender() {
        let a = Address::alphanumeric("Google").unwrap();
        let mut o = vec![];
        a.encode_tp(&mut o).unwrap();
        // 6 septets = 42 bits = 11 semi-octets
        assert_eq!(o[..2], [0x0B, 0xD0]);
        assert_eq!(Address::decode_tp(&o).unwrap().0, a);
        assert!(Address::alphanumeric("twelve chars").is_err());
    }

    #[test]
    fn smsc_prefix() {
        let s = Address::international("31624000000").unwrap();
        let mut o = vec![];
        encode_smsc(Some(&s), &mut o).unwrap();
        assert_eq!(o, [0x07, 0x91, 0x13, 0x26, 0x04, 0x00, 0x00, 0xF0]);
        o.push(0x11);
        assert_eq!(split_smsc(&o).unwrap(), (Some(s), &[0x11][..]));
        assert_eq!(split_smsc(&[0, 1, 2]).unwrap(), (None, &[1, 2][..]));
        assert!(split_smsc(&[12, 0x91]).is_err());
        assert!(split_smsc(&[3, 0x91]).is_err());
    }
}
