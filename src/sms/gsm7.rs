//! TS 23.038 alphabets: the GSM 7-bit default alphabet with its extension table, septet packing,
//! UCS-2 (UTF-16BE) and the choice between them.
//!
//! A septet is a 7-bit code (one `u8` below 0x80 here). Characters of the extension table take two
//! septets, the escape 0x1B then the code:
//!
//! | code | char | code | char | code | char |
//! |------|------|------|------|------|------|
//! | 0x0A | form feed | 0x29 | `}` | 0x3E | `]` |
//! | 0x14 | `^` | 0x2F | `\` | 0x40 | `\|` |
//! | 0x28 | `{` | 0x3C | `[` | 0x65 | `€` |
//! | | | 0x3D | `~` | | |
//!
//! Packing puts septet *n* at bit `fill + 7n` of the output, least significant bit first (TS 23.038
//! §6.1.2.1.1). `fill` (0 to 6) is the number of fill bits a user-data header leaves before the
//! first septet boundary after it.
//!
//! ```
//! use ip2p::sms::gsm7;
//! let septets = gsm7::encode("hellohello").unwrap();
//! let mut packed = Vec::new();
//! gsm7::pack(&septets, 0, &mut packed);
//! assert_eq!(packed, [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]);
//! assert_eq!(gsm7::unpack(&packed, 0, 10).unwrap(), septets);
//! assert_eq!(gsm7::decode(&septets), "hellohello");
//! ```

use alloc::string::String;
use alloc::vec::Vec;

/// The escape septet that introduces a character of the extension table.
pub const ESC: u8 = 0x1B;

/// The default alphabet, indexed by septet. Index 0x1B is the escape, never produced by a char.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Code points below 0x100 to septets (0xFF: not in the default alphabet).
const LATIN: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 128 {
        let c = BASIC[i] as u32;
        if i != ESC as usize && c < 256 {
            t[c as usize] = i as u8;
        }
        i += 1;
    }
    t
};

/// The extension-table character of escaped code `code`, if TS 23.038 defines one.
pub fn extension_char(code: u8) -> Option<char> {
    Some(match code {
        0x0A => '\u{0C}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

fn extension_code(c: char) -> Option<u8> {
    Some(match c {
        '\u{0C}' => 0x0A,
        '^' => 0x14,
        '{' => 0x28,
        '}' => 0x29,
        '\\' => 0x2F,
        '[' => 0x3C,
        '~' => 0x3D,
        ']' => 0x3E,
        '|' => 0x40,
        '€' => 0x65,
        _ => return None,
    })
}

/// The septets of one character: one for the default alphabet, two (escape, code) for the
/// extension table, `None` if GSM-7 cannot carry it.
pub fn char_septets(c: char) -> Option<(u8, Option<u8>)> {
    let cp = c as u32;
    if cp < 256 {
        let s = LATIN[cp as usize];
        if s != 0xFF {
            return Some((s, None));
        }
    } else {
        let s = match c {
            'Δ' => Some(0x10),
            'Φ' => Some(0x12),
            'Γ' => Some(0x13),
            'Λ' => Some(0x14),
            'Ω' => Some(0x15),
            'Π' => Some(0x16),
            'Ψ' => Some(0x17),
            'Σ' => Some(0x18),
            'Θ' => Some(0x19),
            'Ξ' => Some(0x1A),
            _ => None,
        };
        if let Some(s) = s {
            return Some((s, None));
        }
    }
    extension_code(c).map(|e| (ESC, Some(e)))
}

/// How many septets `text` takes in GSM-7, or the first character it cannot carry.
pub fn septet_len(text: &str) -> Result<usize, char> {
    let mut n = 0;
    for c in text.chars() {
        match char_septets(c) {
            Some((_, None)) => n += 1,
            Some((_, Some(_))) => n += 2,
            None => return Err(c),
        }
    }
    Ok(n)
}

/// Text to septets, or the first character GSM-7 cannot carry.
pub fn encode(text: &str) -> Result<Vec<u8>, char> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_septets(c) {
            Some((s, None)) => out.push(s),
            Some((s, Some(e))) => {
                out.push(s);
                out.push(e);
            }
            None => return Err(c),
        }
    }
    Ok(out)
}

/// Septets to text. Never fails: as TS 23.038 asks of a receiver, an escape followed by a code the
/// extension table does not define shows the default-alphabet character of that code, and an
/// escape at the end (or before another escape) shows as a space. Bit 7 of each septet is ignored.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut i = 0;
    while i < septets.len() {
        let s = septets[i] & 0x7F;
        i += 1;
        if s != ESC {
            out.push(BASIC[s as usize]);
            continue;
        }
        match septets.get(i).map(|n| n & 0x7F) {
            Some(ESC) | None => out.push(' '),
            Some(code) => {
                i += 1;
                out.push(extension_char(code).unwrap_or(BASIC[code as usize]));
            }
        }
    }
    out
}

/// Pack septets into octets after `fill` fill bits (0 to 6; larger values are taken modulo 7).
/// Fill bits and the unused high bits of the last octet are zero.
pub fn pack(septets: &[u8], fill: u8, out: &mut Vec<u8>) {
    if septets.is_empty() {
        return;
    }
    let fill = u32::from(fill % 7);
    let mut acc: u32 = 0;
    let mut bits = fill;
    out.reserve((fill as usize + septets.len() * 7).div_ceil(8));
    for &s in septets {
        acc |= u32::from(s & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Octets needed for `count` septets after `fill` fill bits (none for no septets).
pub fn packed_len(count: usize, fill: u8) -> usize {
    if count == 0 {
        return 0;
    }
    (usize::from(fill % 7) + count * 7).div_ceil(8)
}

/// Unpack `count` septets from `octets`, skipping `fill` fill bits first. `None` if `octets` is
/// shorter than [`packed_len`]`(count, fill)`; extra octets are ignored.
pub fn unpack(octets: &[u8], fill: u8, count: usize) -> Option<Vec<u8>> {
    let fill = u32::from(fill % 7);
    if octets.len() < packed_len(count, fill as u8) {
        return None;
    }
    if count == 0 {
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(count);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut it = octets.iter();
    // drop the fill bits
    if fill > 0 {
        acc = u32::from(*it.next()?) >> fill;
        bits = 8 - fill;
    }
    while out.len() < count {
        if bits < 7 {
            acc |= u32::from(*it.next()?) << bits;
            bits += 8;
        }
        out.push((acc & 0x7F) as u8);
        acc >>= 7;
        bits -= 7;
    }
    Some(out)
}

/// Text to UCS-2 octets (UTF-16BE; characters outside the BMP as surrogate pairs).
pub fn ucs2_encode(text: &str, out: &mut Vec<u8>) {
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// UCS-2 (UTF-16BE) octets to text. Lenient like a handset: a lone surrogate or an odd final octet
/// shows as U+FFFD.
pub fn ucs2_decode(octets: &[u8]) -> String {
    let units = octets
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    // at most 3 UTF-8 octets per UTF-16 unit (4 per surrogate pair): one allocation
    let mut s = String::with_capacity(octets.len() / 2 * 3 + 3);
    for c in char::decode_utf16(units) {
        s.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    if octets.len() % 2 == 1 {
        s.push(char::REPLACEMENT_CHARACTER);
    }
    s
}

/// The character set of a short message's user data (TS 23.038 §4, bits 3-2 of the DCS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Alphabet {
    /// GSM 7-bit default alphabet: user data is packed septets, TP-UDL counts septets.
    Gsm7,
    /// 8-bit data: user data is octets.
    Data8,
    /// UCS-2 (UTF-16BE): user data is octets, two (or four) per character.
    Ucs2,
}

/// The alphabet to send `text` in: GSM-7 if every character maps, else UCS-2.
pub fn choose(text: &str) -> Alphabet {
    if septet_len(text).is_ok() {
        Alphabet::Gsm7
    } else {
        Alphabet::Ucs2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn hellohello() {
        let s = encode("hellohello").unwrap();
        let mut p = vec![];
        pack(&s, 0, &mut p);
        assert_eq!(p, [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]);
    }

    #[test]
    fn fill_bit_offset() {
        // "hello" after a 6-octet UDH: one fill bit, the first septet at bit 1
        let s = encode("hello").unwrap();
        let mut p = vec![];
        pack(&s, 1, &mut p);
        assert_eq!(p, [0xD0, 0x65, 0x36, 0xFB, 0x0D]);
        assert_eq!(unpack(&p, 1, 5).unwrap(), s);
        assert!(unpack(&p[..4], 1, 5).is_none());
    }

    #[test]
    fn extension_and_escape_rules() {
        let s = encode("[€]^{}\\~|\u{0C}").unwrap();
        assert_eq!(s.len(), 20);
        assert_eq!(decode(&s), "[€]^{}\\~|\u{0C}");
        // unknown escape shows the basic char; trailing escape a space
        assert_eq!(decode(&[ESC, 0x41, ESC]), "A ");
        assert_eq!(encode("日"), Err('日'));
        assert_eq!(choose("héllo Δ"), Alphabet::Gsm7);
        assert_eq!(choose("hi 😀"), Alphabet::Ucs2);
        assert_eq!(septet_len("a€"), Ok(3));
    }

    #[test]
    fn ucs2_vector() {
        let mut o = vec![];
        ucs2_encode("你好😀", &mut o);
        assert_eq!(o, [0x4F, 0x60, 0x59, 0x7D, 0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(ucs2_decode(&o), "你好😀");
        assert_eq!(ucs2_decode(&[0xD8, 0x3D, 0x00]), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn every_basic_char_round_trips() {
        for s in 0u8..128 {
            if s == ESC {
                continue;
            }
            let t = decode(&[s]);
            assert_eq!(encode(&t).unwrap(), [s], "septet {s:#x}");
        }
    }
}
