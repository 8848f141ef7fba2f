//! The user-data header (TS 23.040 §9.2.3.24): information elements in front of the user data.
//!
//! ```text
//! UDH = UDHL:u8 (octets that follow) IE*
//! IE  = IEI:u8 IEDL:u8 data (IEDL octets)
//! ```
//!
//! | IEI  | element                              | data                                   |
//! |------|--------------------------------------|----------------------------------------|
//! | 0x00 | concatenation, 8-bit reference       | ref:u8 total:u8 seq:u8 (seq from 1)    |
//! | 0x04 | application ports, 8-bit             | dst:u8 src:u8                          |
//! | 0x05 | application ports, 16-bit            | dst:u16 src:u16 (big-endian)           |
//! | 0x08 | concatenation, 16-bit reference      | ref:u16 total:u8 seq:u8                |
//! | else | kept as raw octets, re-encoded as is |                                        |
//!
//! With GSM-7 user data the header occupies whole octets and the text starts at the next septet
//! boundary: [`Udh::fill_bits`] fill bits follow the header, and TP-UDL counts
//! [`Udh::septets`] septets for it.

use alloc::vec::Vec;

use super::PduError;

/// One information element.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Ie {
    /// Concatenated message, 8-bit reference (IEI 0x00).
    Concat8 {
        /// Reference shared by every part.
        reference: u8,
        /// Number of parts.
        total: u8,
        /// This part's number, from 1.
        seq: u8,
    },
    /// Concatenated message, 16-bit reference (IEI 0x08).
    Concat16 {
        /// Reference shared by every part.
        reference: u16,
        /// Number of parts.
        total: u8,
        /// This part's number, from 1.
        seq: u8,
    },
    /// Application port addressing, 8-bit ports (IEI 0x04).
    Ports8 {
        /// Destination port.
        dst: u8,
        /// Originator port.
        src: u8,
    },
    /// Application port addressing, 16-bit ports (IEI 0x05).
    Ports16 {
        /// Destination port.
        dst: u16,
        /// Originator port.
        src: u16,
    },
    /// Any other element, kept as it came.
    Other {
        /// The element identifier.
        iei: u8,
        /// Its data.
        data: Vec<u8>,
    },
}

impl Ie {
    fn encoded_len(&self) -> usize {
        2 + match self {
            Ie::Concat8 { .. } => 3,
            Ie::Concat16 { .. } => 4,
            Ie::Ports8 { .. } => 2,
            Ie::Ports16 { .. } => 4,
            Ie::Other { data, .. } => data.len(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ie::Concat8 {
                reference,
                total,
                seq,
            } => out.extend_from_slice(&[0x00, 3, *reference, *total, *seq]),
            Ie::Concat16 {
                reference,
                total,
                seq,
            } => {
                let r = reference.to_be_bytes();
                out.extend_from_slice(&[0x08, 4, r[0], r[1], *total, *seq]);
            }
            Ie::Ports8 { dst, src } => out.extend_from_slice(&[0x04, 2, *dst, *src]),
            Ie::Ports16 { dst, src } => {
                let (d, s) = (dst.to_be_bytes(), src.to_be_bytes());
                out.extend_from_slice(&[0x05, 4, d[0], d[1], s[0], s[1]]);
            }
            Ie::Other { iei, data } => {
                out.push(*iei);
                out.push(data.len() as u8);
                out.extend_from_slice(data);
            }
        }
    }

    fn decode(iei: u8, d: &[u8]) -> Result<Ie, PduError> {
        let want = match iei {
            0x00 => 3,
            0x04 => 2,
            0x05 | 0x08 => 4,
            _ => {
                return Ok(Ie::Other {
                    iei,
                    data: d.to_vec(),
                })
            }
        };
        if d.len() != want {
            return Err(PduError::IeLength {
                iei,
                len: d.len(),
                want,
            });
        }
        Ok(match iei {
            0x00 => Ie::Concat8 {
                reference: d[0],
                total: d[1],
                seq: d[2],
            },
            0x04 => Ie::Ports8 {
                dst: d[0],
                src: d[1],
            },
            0x05 => Ie::Ports16 {
                dst: u16::from_be_bytes([d[0], d[1]]),
                src: u16::from_be_bytes([d[2], d[3]]),
            },
            _ => Ie::Concat16 {
                reference: u16::from_be_bytes([d[0], d[1]]),
                total: d[2],
                seq: d[3],
            },
        })
    }
}

/// A user-data header: its elements in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Udh {
    /// The elements, in the order they are encoded.
    pub ies: Vec<Ie>,
}

/// Concatenation details of a part: reference (8- or 16-bit, widened), total, sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConcatInfo {
    /// The reference shared by every part.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

impl Udh {
    /// Octets the header takes, the UDHL octet included.
    pub fn len(&self) -> usize {
        1 + self.ies.iter().map(Ie::encoded_len).sum::<usize>()
    }

    /// Whether the header has no elements (it still takes its UDHL octet).
    pub fn is_empty(&self) -> bool {
        self.ies.is_empty()
    }

    /// Fill bits between the header and the first GSM-7 septet.
    pub fn fill_bits(&self) -> u8 {
        ((7 - (self.len() * 8) % 7) % 7) as u8
    }

    /// Septets TP-UDL counts for the header and its fill bits (GSM-7 user data).
    pub fn septets(&self) -> usize {
        (self.len() * 8).div_ceil(7)
    }

    /// Append the header, UDHL first. The caller checks [`Udh::len`] against the user-data bound.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push((self.len() - 1) as u8);
        for ie in &self.ies {
            ie.encode(out);
        }
    }

    /// Decode the header at the start of `ud`; returns it and the octets it took.
    pub fn decode(ud: &[u8]) -> Result<(Udh, usize), PduError> {
        let (&udhl, rest) = ud
            .split_first()
            .ok_or(PduError::Truncated("user-data header length"))?;
        let body = rest.get(..udhl as usize).ok_or(PduError::UdhOverrun {
            udhl: udhl as usize,
            available: rest.len(),
        })?;
        let mut ies = Vec::new();
        let mut i = 0;
        while i < body.len() {
            let iei = body[i];
            let len = *body
                .get(i + 1)
                .ok_or(PduError::Truncated("information element length"))?
                as usize;
            let data = body.get(i + 2..i + 2 + len).ok_or(PduError::IeOverrun {
                iei,
                len,
                available: body.len() - (i + 2),
            })?;
            ies.push(Ie::decode(iei, data)?);
            i += 2 + len;
        }
        Ok((Udh { ies }, 1 + udhl as usize))
    }

    /// The concatenation element, if any (the first one).
    pub fn concat(&self) -> Option<ConcatInfo> {
        self.ies.iter().find_map(|ie| match *ie {
            Ie::Concat8 {
                reference,
                total,
                seq,
            } => Some(ConcatInfo {
                reference: reference.into(),
                total,
                seq,
            }),
            Ie::Concat16 {
                reference,
                total,
                seq,
            } => Some(ConcatInfo {
                reference,
                total,
                seq,
            }),
            _ => None,
        })
    }

    /// The application ports `(destination, originator)`, if any (8-bit ports widened).
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.ies.iter().find_map(|ie| match *ie {
            Ie::Ports8 { dst, src } => Some((dst.into(), src.into())),
            Ie::Ports16 { dst, src } => Some((dst, src)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn concat_and_ports() {
        let h = Udh {
            ies: vec![
                Ie::Ports16 {
                    dst: 0x1234,
                    src: 0x0100,
                },
                Ie::Concat8 {
                    reference: 7,
                    total: 3,
                    seq: 2,
                },
                Ie::Other {
                    iei: 0x24,
                    data: vec![1],
                },
            ],
        };
        let mut o = vec![];
        h.encode(&mut o);
        assert_eq!(o, [14, 5, 4, 0x12, 0x34, 1, 0, 0, 3, 7, 3, 2, 0x24, 1, 1]);
        assert_eq!(Udh::decode(&o).unwrap(), (h.clone(), 15));
        assert_eq!(h.ports(), Some((0x1234, 0x100)));
        assert_eq!(
            h.concat(),
            Some(ConcatInfo {
                reference: 7,
                total: 3,
                seq: 2
            })
        );
    }

    #[test]
    fn fill_bits() {
        // 6 octets (8-bit concat): 1 fill bit, 7 septets; 7 octets (16-bit concat): none, 8
        let c8 = Udh {
            ies: vec![Ie::Concat8 {
                reference: 1,
                total: 2,
                seq: 1,
            }],
        };
        assert_eq!((c8.len(), c8.fill_bits(), c8.septets()), (6, 1, 7));
        let c16 = Udh {
            ies: vec![Ie::Concat16 {
                reference: 1,
                total: 2,
                seq: 1,
            }],
        };
        assert_eq!((c16.len(), c16.fill_bits(), c16.septets()), (7, 0, 8));
        let p = Udh {
            ies: vec![Ie::Ports16 { dst: 1, src: 2 }],
        };
        assert_eq!((p.len(), p.fill_bits(), p.septets()), (7, 0, 8));
    }

    #[test]
    fn overruns_are_errors() {
        assert!(matches!(
            Udh::decode(&[5, 0, 3, 1]),
            Err(PduError::UdhOverrun { .. })
        ));
        assert!(matches!(
            Udh::decode(&[3, 0x24, 5, 1]),
            Err(PduError::IeOverrun { iei: 0x24, .. })
        ));
        assert!(matches!(
            Udh::decode(&[4, 0, 2, 1, 1]),
            Err(PduError::IeLength {
                iei: 0,
                len: 2,
                want: 3
            })
        ));
        assert!(matches!(Udh::decode(&[1, 0]), Err(PduError::Truncated(_))));
    }
}
