//! TPDUs (TS 23.040 §9.2.2): SMS-SUBMIT (phone → centre) and SMS-DELIVER (centre → phone), the
//! data coding scheme (TS 23.038 §4), time stamps and validity periods.
//!
//! SMS-SUBMIT:
//!
//! | octets | field | contents |
//! |--------|-------|----------|
//! | 1 | first octet | bit 7 TP-RP, 6 TP-UDHI, 5 TP-SRR, 4-3 TP-VPF, 2 TP-RD, 1-0 TP-MTI = 01 |
//! | 1 | TP-MR | message reference |
//! | 2-12 | TP-DA | destination address ([`Address`]) |
//! | 1 | TP-PID | protocol identifier |
//! | 1 | TP-DCS | data coding scheme ([`Dcs`]) |
//! | 0, 1 or 7 | TP-VP | validity period, as TP-VPF says: none (00), relative (10), enhanced (01), absolute (11) |
//! | 1 | TP-UDL | user-data length: septets for GSM-7 (header and fill included), else octets |
//! | 0-140 | TP-UD | user data: [`Udh`] if TP-UDHI, then the body |
//!
//! SMS-DELIVER:
//!
//! | octets | field | contents |
//! |--------|-------|----------|
//! | 1 | first octet | bit 7 TP-RP, 6 TP-UDHI, 5 TP-SRI, 3 TP-LP, 2 TP-MMS (0 = more waiting), 1-0 TP-MTI = 00 |
//! | 2-12 | TP-OA | originating address |
//! | 1 | TP-PID | |
//! | 1 | TP-DCS | |
//! | 7 | TP-SCTS | centre time stamp ([`Timestamp`]) |
//! | 1 | TP-UDL | |
//! | 0-140 | TP-UD | |
//!
//! Decoding is strict: an input either decodes completely, with no octet left over, or fails with
//! a [`PduError`] naming the field. Re-encoding a decoded TPDU gives the same octets except for
//! bits the standard leaves free (fill bits, the unused bits of the last septet octet, TP-DELIVER
//! bit 4, bit 7 of a type-of-address), which are written as zero (one for the type-of-address).

use alloc::string::String;
use alloc::vec::Vec;

use super::address::Address;
use super::gsm7::{self, Alphabet};
use super::udh::Udh;

/// Most octets of user data.
pub const MAX_UD_OCTETS: usize = 140;
/// Most septets of GSM-7 user data (header septets included).
pub const MAX_UD_SEPTETS: usize = 160;

/// Why octets are not the TPDU asked for, or a TPDU cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The input ends inside a field.
    #[error("PDU truncated while reading {0}")]
    Truncated(&'static str),
    /// Octets after the end of the user data.
    #[error("{0} octets after the end of the user data")]
    TrailingBytes(usize),
    /// The TP-MTI says another message type.
    #[error("not an {expected}: TP-MTI is {mti}")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        /// The message-type indicator found.
        mti: u8,
    },
    /// A field holds a value it may not hold.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// An address longer than its field allows.
    #[error("address of {len} digits/septets/octets is over the limit of {max}")]
    AddressTooLong {
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character an address cannot carry.
    #[error("character {0:?} cannot be carried in an SMS address")]
    AddressChar(char),
    /// A text character the chosen alphabet cannot carry.
    #[error("character {0:?} is not in the GSM 7-bit alphabet")]
    NotGsm7(char),
    /// TP-UDHL says more octets than the user data holds.
    #[error("user-data header of {udhl} octets overruns the {available} octets of user data")]
    UdhOverrun {
        /// The header length octet.
        udhl: usize,
        /// Octets available for it.
        available: usize,
    },
    /// An information element's length overruns the header.
    #[error("information element {iei:#04x} of {len} octets overruns the {available} octets left in the header")]
    IeOverrun {
        /// The element identifier.
        iei: u8,
        /// Its length octet.
        len: usize,
        /// Octets left in the header.
        available: usize,
    },
    /// A known information element with the wrong length.
    #[error("information element {iei:#04x} has {len} octets of data, it must have {want}")]
    IeLength {
        /// The element identifier.
        iei: u8,
        /// Its length.
        len: usize,
        /// The length TS 23.040 gives it.
        want: usize,
    },
    /// TS 23.038 compression (the DCS compressed bit): not supported.
    #[error("compressed user data (DCS {0:#04x}) is not supported")]
    Compressed(u8),
    /// A DCS whose coding group or alphabet is reserved, so the user data cannot be read.
    #[error("data coding scheme {0:#04x} uses a reserved coding group or alphabet")]
    ReservedDcs(u8),
    /// The user data is over its bound.
    #[error("user data of {len} {unit} is over the limit of {max}")]
    UserDataTooLong {
        /// Its length.
        len: usize,
        /// `"septets"` or `"octets"`.
        unit: &'static str,
        /// The limit.
        max: usize,
    },
    /// A time-stamp semi-octet that is not a decimal digit.
    #[error("time stamp {field} octet {octet:#04x} is not two decimal digits")]
    BadTimestamp {
        /// Which field (year, month …).
        field: &'static str,
        /// The octet.
        octet: u8,
    },
}

/// Message class (TS 23.038 §4): where a receiving phone puts the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Class 0: shown at once, not stored ("flash").
    Class0,
    /// Class 1: default, stored by the phone.
    Class1,
    /// Class 2: SIM-specific.
    Class2,
    /// Class 3: terminal equipment specific.
    Class3,
}

/// TP-DCS, the data coding scheme octet, kept as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Dcs(pub u8);

impl Dcs {
    /// General data coding, GSM-7, no class (0x00).
    pub const GSM7: Dcs = Dcs(0x00);
    /// General data coding, 8-bit data, no class (0x04).
    pub const DATA8: Dcs = Dcs(0x04);
    /// General data coding, UCS-2, no class (0x08).
    pub const UCS2: Dcs = Dcs(0x08);

    /// General data coding group with `alphabet` and an optional class.
    pub fn new(alphabet: Alphabet, class: Option<MessageClass>) -> Dcs {
        let a = match alphabet {
            Alphabet::Gsm7 => 0,
            Alphabet::Data8 => 4,
            Alphabet::Ucs2 => 8,
        };
        match class {
            None => Dcs(a),
            Some(c) => Dcs(0x10 | a | c as u8),
        }
    }

    /// Whether the compressed bit is set (general coding groups 00xx and 01xx).
    pub fn compressed(self) -> bool {
        self.0 & 0xC0 != 0xC0 && self.0 & 0xC0 != 0x80 && self.0 & 0x20 != 0
    }

    /// The alphabet of the user data. Errors for compressed data and reserved groups/alphabets.
    pub fn alphabet(self) -> Result<Alphabet, PduError> {
        let d = self.0;
        if self.compressed() {
            return Err(PduError::Compressed(d));
        }
        match d >> 4 {
            // general data coding and automatic deletion groups
            0..=7 => match (d >> 2) & 3 {
                0 => Ok(Alphabet::Gsm7),
                1 => Ok(Alphabet::Data8),
                2 => Ok(Alphabet::Ucs2),
                _ => Err(PduError::ReservedDcs(d)),
            },
            // message waiting indication: discard / store (GSM-7), store (UCS-2)
            0xC | 0xD => Ok(Alphabet::Gsm7),
            0xE => Ok(Alphabet::Ucs2),
            // data coding / message class
            0xF => Ok(if d & 4 == 0 {
                Alphabet::Gsm7
            } else {
                Alphabet::Data8
            }),
            _ => Err(PduError::ReservedDcs(d)),
        }
    }

    /// The message class, if the scheme gives one.
    pub fn class(self) -> Option<MessageClass> {
        let d = self.0;
        let has = match d >> 4 {
            0..=7 => d & 0x10 != 0,
            0xF => true,
            _ => false,
        };
        has.then_some(match d & 3 {
            0 => MessageClass::Class0,
            1 => MessageClass::Class1,
            2 => MessageClass::Class2,
            _ => MessageClass::Class3,
        })
    }
}

/// A TS 23.040 §9.2.3.11 time stamp (TP-SCTS, absolute TP-VP): local time and its offset from UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timestamp {
    /// Year within the century, 0-99.
    pub year: u8,
    /// Month, 1-12.
    pub month: u8,
    /// Day, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
    /// Local time minus UTC in quarter-hours, -79 to 79 (e.g. +8 hours is 32).
    pub tz_quarters: i8,
}

const TS_FIELDS: [&str; 6] = ["year", "month", "day", "hour", "minute", "second"];

impl Timestamp {
    /// Append the 7 semi-octet-swapped octets. Fields over 99 (79 for the zone) are clamped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let swap = |v: u8| {
            let v = v.min(99);
            ((v % 10) << 4) | (v / 10)
        };
        for v in [
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ] {
            out.push(swap(v));
        }
        let q = self.tz_quarters.unsigned_abs().min(79);
        let sign = if self.tz_quarters < 0 { 0x08 } else { 0 };
        out.push(((q % 10) << 4) | (q / 10) | sign);
    }

    /// Decode 7 octets. Every semi-octet must be a decimal digit; values are not range-checked
    /// beyond that (a receiver shows what the centre sent).
    pub fn decode(b: &[u8]) -> Result<Timestamp, PduError> {
        let b: &[u8; 7] = b
            .get(..7)
            .and_then(|s| s.try_into().ok())
            .ok_or(PduError::Truncated("time stamp"))?;
        let mut v = [0u8; 6];
        for i in 0..6 {
            let (lo, hi) = (b[i] & 0x0F, b[i] >> 4);
            if lo > 9 || hi > 9 {
                return Err(PduError::BadTimestamp {
                    field: TS_FIELDS[i],
                    octet: b[i],
                });
            }
            v[i] = lo * 10 + hi;
        }
        let (tens, units) = (b[6] & 0x07, b[6] >> 4);
        if units > 9 {
            return Err(PduError::BadTimestamp {
                field: "time zone",
                octet: b[6],
            });
        }
        let q = (tens * 10 + units) as i8;
        Ok(Timestamp {
            year: v[0],
            month: v[1],
            day: v[2],
            hour: v[3],
            minute: v[4],
            second: v[5],
            tz_quarters: if b[6] & 0x08 != 0 { -q } else { q },
        })
    }
}

/// TP-VP, how long the centre keeps trying (TS 23.040 §9.2.3.12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Validity {
    /// TP-VPF 00: no validity period (the centre's default).
    #[default]
    None,
    /// TP-VPF 10: relative, one octet (see [`Validity::relative_minutes`]).
    Relative(u8),
    /// TP-VPF 01: enhanced format, 7 octets kept as they are.
    Enhanced([u8; 7]),
    /// TP-VPF 11: absolute, a time stamp.
    Absolute(Timestamp),
}

impl Validity {
    fn vpf(&self) -> u8 {
        match self {
            Validity::None => 0,
            Validity::Enhanced(_) => 1,
            Validity::Relative(_) => 2,
            Validity::Absolute(_) => 3,
        }
    }

    /// The length in minutes a relative TP-VP octet stands for: 0-143 (v+1)×5 min, 144-167
    /// 12 h + (v-143)×30 min, 168-196 (v-166) days, 197-255 (v-192) weeks.
    pub fn relative_minutes(v: u8) -> u32 {
        let v = u32::from(v);
        match v {
            0..=143 => (v + 1) * 5,
            144..=167 => 12 * 60 + (v - 143) * 30,
            168..=196 => (v - 166) * 24 * 60,
            _ => (v - 192) * 7 * 24 * 60,
        }
    }
}

/// TP-UD: an optional header and the body. For GSM-7 the body is septets (one per `u8`, below
/// 0x80), for 8-bit data and UCS-2 it is octets. [`Submit::dcs`]/[`Deliver::dcs`] say which.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UserData {
    /// The user-data header; `Some` sets TP-UDHI.
    pub header: Option<Udh>,
    /// Septets (GSM-7) or octets (8-bit, UCS-2).
    pub body: Vec<u8>,
}

impl UserData {
    /// `text` in the alphabet [`gsm7::choose`] picks, with its DCS (general group, no class).
    pub fn text(text: &str) -> (Dcs, UserData) {
        match gsm7::encode(text) {
            Ok(body) => (Dcs::GSM7, UserData { header: None, body }),
            Err(_) => {
                let mut body = Vec::with_capacity(text.len() * 2);
                gsm7::ucs2_encode(text, &mut body);
                (Dcs::UCS2, UserData { header: None, body })
            }
        }
    }

    /// The body as text in `alphabet` (8-bit data is read as Latin-1), lenient as
    /// [`gsm7::decode`] and [`gsm7::ucs2_decode`] are.
    pub fn body_text(&self, alphabet: Alphabet) -> String {
        match alphabet {
            Alphabet::Gsm7 => gsm7::decode(&self.body),
            Alphabet::Ucs2 => gsm7::ucs2_decode(&self.body),
            Alphabet::Data8 => self.body.iter().map(|&b| b as char).collect(),
        }
    }

    /// Whether the header and body fit the user data in `alphabet`.
    pub fn check(&self, alphabet: Alphabet) -> Result<(), PduError> {
        let hlen = self.header.as_ref().map_or(0, Udh::len);
        let (len, unit, max) = match alphabet {
            Alphabet::Gsm7 => (
                self.header.as_ref().map_or(0, Udh::septets) + self.body.len(),
                "septets",
                MAX_UD_SEPTETS,
            ),
            _ => (hlen + self.body.len(), "octets", MAX_UD_OCTETS),
        };
        if hlen > MAX_UD_OCTETS || len > max {
            return Err(PduError::UserDataTooLong { len, unit, max });
        }
        Ok(())
    }

    /// Append TP-UDL and TP-UD.
    fn encode(&self, alphabet: Alphabet, out: &mut Vec<u8>) -> Result<(), PduError> {
        let hlen = self.header.as_ref().map_or(0, Udh::len);
        if hlen > MAX_UD_OCTETS {
            return Err(PduError::UserDataTooLong {
                len: hlen,
                unit: "octets",
                max: MAX_UD_OCTETS,
            });
        }
        if alphabet == Alphabet::Gsm7 {
            let hs = self.header.as_ref().map_or(0, Udh::septets);
            let udl = hs + self.body.len();
            if udl > MAX_UD_SEPTETS {
                return Err(PduError::UserDataTooLong {
                    len: udl,
                    unit: "septets",
                    max: MAX_UD_SEPTETS,
                });
            }
            out.push(udl as u8);
            let start = out.len();
            let fill = match &self.header {
                Some(h) => {
                    h.encode(out);
                    h.fill_bits()
                }
                None => 0,
            };
            gsm7::pack(&self.body, fill, out);
            // a header with fill bits and no text still ends on the octet that holds the fill
            out.resize(start + gsm7::packed_len(udl, 0), 0);
        } else {
            let udl = hlen + self.body.len();
            if udl > MAX_UD_OCTETS {
                return Err(PduError::UserDataTooLong {
                    len: udl,
                    unit: "octets",
                    max: MAX_UD_OCTETS,
                });
            }
            out.push(udl as u8);
            if let Some(h) = &self.header {
                h.encode(out);
            }
            out.extend_from_slice(&self.body);
        }
        Ok(())
    }

    /// Decode TP-UDL and TP-UD, which must end the input exactly.
    fn decode(alphabet: Alphabet, udhi: bool, b: &[u8]) -> Result<UserData, PduError> {
        let (&udl, ud) = b.split_first().ok_or(PduError::Truncated("TP-UDL"))?;
        let udl = udl as usize;
        let (octets, max, unit) = match alphabet {
            Alphabet::Gsm7 => (gsm7::packed_len(udl, 0), MAX_UD_SEPTETS, "septets"),
            _ => (udl, MAX_UD_OCTETS, "octets"),
        };
        if udl > max {
            return Err(PduError::UserDataTooLong {
                len: udl,
                unit,
                max,
            });
        }
        let ud = match ud.len().cmp(&octets) {
            core::cmp::Ordering::Less => return Err(PduError::Truncated("user data")),
            core::cmp::Ordering::Greater => return Err(PduError::TrailingBytes(ud.len() - octets)),
            core::cmp::Ordering::Equal => ud,
        };
        let (header, hlen) = if udhi {
            let (h, n) = Udh::decode(ud)?;
            (Some(h), n)
        } else {
            (None, 0)
        };
        let body = match (alphabet, &header) {
            (Alphabet::Gsm7, Some(h)) => {
                let hs = h.septets();
                if hs > udl {
                    return Err(PduError::UdhOverrun {
                        udhl: hlen - 1,
                        available: octets.saturating_sub(1),
                    });
                }
                gsm7::unpack(&ud[hlen..], h.fill_bits(), udl - hs)
                    .ok_or(PduError::Truncated("user data"))?
            }
            (Alphabet::Gsm7, None) => {
                gsm7::unpack(ud, 0, udl).ok_or(PduError::Truncated("user data"))?
            }
            _ => ud[hlen..].to_vec(),
        };
        Ok(UserData { header, body })
    }
}

fn bit(b: bool, n: u8) -> u8 {
    u8::from(b) << n
}

/// An SMS-SUBMIT: what a phone hands its service centre.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Submit {
    /// TP-RD: the centre should reject a duplicate (same TP-MR and TP-DA).
    pub reject_duplicates: bool,
    /// TP-VPF and TP-VP.
    pub validity: Validity,
    /// TP-SRR: a status report is requested.
    pub status_report: bool,
    /// TP-RP: a reply path is set.
    pub reply_path: bool,
    /// TP-MR: the message reference (modems usually overwrite it).
    pub reference: u8,
    /// TP-DA: the recipient.
    pub to: Address,
    /// TP-PID: protocol identifier (0 for plain SMS).
    pub pid: u8,
    /// TP-DCS.
    pub dcs: Dcs,
    /// TP-UDHI, TP-UDL and TP-UD.
    pub ud: UserData,
}

impl Submit {
    /// A text message to `to`: GSM-7 if every character maps, else UCS-2. Errors if it does not
    /// fit one message (split longer texts with [`super::concat::split_text`]).
    pub fn text(to: Address, text: &str) -> Result<Submit, PduError> {
        let (dcs, ud) = UserData::text(text);
        let s = Submit::new(to, dcs, ud);
        s.check()?;
        Ok(s)
    }

    /// A message with every flag clear, no validity period, reference 0, PID 0.
    pub fn new(to: Address, dcs: Dcs, ud: UserData) -> Submit {
        Submit {
            reject_duplicates: false,
            validity: Validity::None,
            status_report: false,
            reply_path: false,
            reference: 0,
            to,
            pid: 0,
            dcs,
            ud,
        }
    }

    /// Whether [`Submit::encode`] will succeed (checked without encoding).
    pub fn check(&self) -> Result<(), PduError> {
        let alphabet = self.dcs.alphabet()?;
        self.to.check(false)?;
        self.ud.check(alphabet)
    }

    /// Append the TPDU's octets. Fails (appending nothing) if the address or the user data do
    /// not fit their fields or the DCS cannot be encoded.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let start = out.len();
        let r = self.encode_inner(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let alphabet = self.dcs.alphabet()?;
        out.push(
            0x01 | bit(self.reject_duplicates, 2)
                | (self.validity.vpf() << 3)
                | bit(self.status_report, 5)
                | bit(self.ud.header.is_some(), 6)
                | bit(self.reply_path, 7),
        );
        out.push(self.reference);
        self.to.encode_tp(out)?;
        out.push(self.pid);
        out.push(self.dcs.0);
        match &self.validity {
            Validity::None => {}
            Validity::Relative(v) => out.push(*v),
            Validity::Enhanced(e) => out.extend_from_slice(e),
            Validity::Absolute(t) => t.encode(out),
        }
        self.ud.encode(alphabet, out)
    }

    /// Decode exactly one SMS-SUBMIT.
    pub fn decode(b: &[u8]) -> Result<Submit, PduError> {
        let (&first, rest) = b.split_first().ok_or(PduError::Truncated("first octet"))?;
        if first & 3 != 1 {
            return Err(PduError::WrongType {
                expected: "SMS-SUBMIT",
                mti: first & 3,
            });
        }
        let (&reference, rest) = rest.split_first().ok_or(PduError::Truncated("TP-MR"))?;
        let (to, n) = Address::decode_tp(rest)?;
        let rest = &rest[n..];
        let [pid, dcs, rest @ ..] = rest else {
            return Err(PduError::Truncated("TP-PID and TP-DCS"));
        };
        let dcs = Dcs(*dcs);
        let alphabet = dcs.alphabet()?;
        let (validity, rest) = match (first >> 3) & 3 {
            0 => (Validity::None, rest),
            2 => {
                let (&v, r) = rest.split_first().ok_or(PduError::Truncated("TP-VP"))?;
                (Validity::Relative(v), r)
            }
            1 => {
                let e: [u8; 7] = rest
                    .get(..7)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(PduError::Truncated("TP-VP"))?;
                (Validity::Enhanced(e), &rest[7..])
            }
            _ => (Validity::Absolute(Timestamp::decode(rest)?), &rest[7..]),
        };
        let ud = UserData::decode(alphabet, first & 0x40 != 0, rest)?;
        Ok(Submit {
            reject_duplicates: first & 0x04 != 0,
            validity,
            status_report: first & 0x20 != 0,
            reply_path: first & 0x80 != 0,
            reference,
            to,
            pid: *pid,
            dcs,
            ud,
        })
    }

    /// Append what `AT+CMGS` takes in PDU mode: the SMSC prefix (`00`: the modem's default centre)
    /// then the TPDU. Returns the TPDU's length, the number `AT+CMGS=<length>` wants.
    pub fn encode_pdu_mode(
        &self,
        smsc: Option<&Address>,
        out: &mut Vec<u8>,
    ) -> Result<usize, PduError> {
        pdu_mode(smsc, out, |out| self.encode(out))
    }
}

/// The SMSC prefix, then the TPDU `encode` appends; the TPDU's length. On error nothing is left
/// appended.
fn pdu_mode(
    smsc: Option<&Address>,
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), PduError>,
) -> Result<usize, PduError> {
    let start = out.len();
    super::address::encode_smsc(smsc, out)?;
    let at = out.len();
    if let Err(e) = encode(out) {
        out.truncate(start);
        return Err(e);
    }
    Ok(out.len() - at)
}

/// An SMS-DELIVER: what a phone receives from its service centre.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Deliver {
    /// More messages are waiting at the centre (TP-MMS bit clear).
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report: bool,
    /// TP-RP: a reply path is set.
    pub reply_path: bool,
    /// TP-OA: the sender.
    pub from: Address,
    /// TP-PID.
    pub pid: u8,
    /// TP-DCS.
    pub dcs: Dcs,
    /// TP-SCTS: when the centre received the message.
    pub scts: Timestamp,
    /// TP-UDHI, TP-UDL and TP-UD.
    pub ud: UserData,
}

impl Deliver {
    /// What a service centre delivers for `submit` from `originator`, stamped `scts`: the same
    /// PID, DCS and user data (header included), TP-SRI from TP-SRR, TP-RP carried over.
    pub fn from_submit(submit: &Submit, originator: Address, scts: Timestamp) -> Deliver {
        Deliver {
            more_messages: false,
            loop_prevention: false,
            status_report: submit.status_report,
            reply_path: submit.reply_path,
            from: originator,
            pid: submit.pid,
            dcs: submit.dcs,
            scts,
            ud: submit.ud.clone(),
        }
    }

    /// Append the TPDU's octets; fails (appending nothing) like [`Submit::encode`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let start = out.len();
        let r = self.encode_inner(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let alphabet = self.dcs.alphabet()?;
        out.push(
            bit(!self.more_messages, 2)
                | bit(self.loop_prevention, 3)
                | bit(self.status_report, 5)
                | bit(self.ud.header.is_some(), 6)
                | bit(self.reply_path, 7),
        );
        self.from.encode_tp(out)?;
        out.push(self.pid);
        out.push(self.dcs.0);
        self.scts.encode(out);
        self.ud.encode(alphabet, out)
    }

    /// Decode exactly one SMS-DELIVER.
    pub fn decode(b: &[u8]) -> Result<Deliver, PduError> {
        let (&first, rest) = b.split_first().ok_or(PduError::Truncated("first octet"))?;
        if first & 3 != 0 {
            return Err(PduError::WrongType {
                expected: "SMS-DELIVER",
                mti: first & 3,
            });
        }
        let (from, n) = Address::decode_tp(rest)?;
        let rest = &rest[n..];
        let [pid, dcs, rest @ ..] = rest else {
            return Err(PduError::Truncated("TP-PID and TP-DCS"));
        };
        let dcs = Dcs(*dcs);
        let alphabet = dcs.alphabet()?;
        let scts = Timestamp::decode(rest)?;
        let ud = UserData::decode(alphabet, first & 0x40 != 0, &rest[7..])?;
        Ok(Deliver {
            more_messages: first & 0x04 == 0,
            loop_prevention: first & 0x08 != 0,
            status_report: first & 0x20 != 0,
            reply_path: first & 0x80 != 0,
            from,
            pid: *pid,
            dcs,
            scts,
            ud,
        })
    }

    /// Append a PDU-mode string (what `+CMGR`/`+CMT` show): the SMSC prefix then the TPDU.
    /// Returns the TPDU's length.
    pub fn encode_pdu_mode(
        &self,
        smsc: Option<&Address>,
        out: &mut Vec<u8>,
    ) -> Result<usize, PduError> {
        pdu_mode(smsc, out, |out| self.encode(out))
    }

    /// Decode a PDU-mode string (what `+CMGR`/`+CMT` give): the SMSC address (`None` for the
    /// default centre) and the SMS-DELIVER after it.
    pub fn decode_pdu_mode(pdu: &[u8]) -> Result<(Option<Address>, Deliver), PduError> {
        let (smsc, tpdu) = super::address::split_smsc(pdu)?;
        Ok((smsc, Deliver::decode(tpdu)?))
    }

    /// The text of the body (see [`UserData::body_text`]); `None` for 8-bit data.
    pub fn text(&self) -> Option<String> {
        match self.dcs.alphabet() {
            Ok(Alphabet::Data8) | Err(_) => None,
            Ok(a) => Some(self.ud.body_text(a)),
        }
    }
}
