//! The character layer: a UTF-8 byte-order mark is skipped; UTF-16 LE/BE (what Windows
//! PowerShell 5.1's `Out-File` and `>` write, with or without a BOM) is decoded to UTF-8, safe
//! across chunk boundaries; UTF-32 is refused with a message naming it.

use super::input_error;
use crate::frame::FrameError;

pub(super) enum Encoding {
    /// The first bytes, until four are there to look for a byte-order mark.
    Sniff(Vec<u8>),
    Utf8,
    Utf16(Utf16),
}

/// Streaming UTF-16 → UTF-8, safe across chunk boundaries (an odd byte or a high surrogate is
/// held until the next chunk).
pub(super) struct Utf16 {
    big_endian: bool,
    odd: Option<u8>,
    high: Option<u16>,
    offset: u64,
}

impl Utf16 {
    fn new(big_endian: bool) -> Self {
        Utf16 {
            big_endian,
            odd: None,
            high: None,
            offset: 0,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        if self.big_endian {
            "UTF-16BE"
        } else {
            "UTF-16LE"
        }
    }

    pub(super) fn decode(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut i = 0;
        if let Some(first) = self.odd {
            let Some(&second) = bytes.first() else {
                return Ok(());
            };
            self.odd = None;
            self.unit([first, second], out)?;
            i = 1;
        }
        while i + 1 < bytes.len() {
            self.unit([bytes[i], bytes[i + 1]], out)?;
            i += 2;
        }
        if i < bytes.len() {
            self.odd = Some(bytes[i]);
        }
        Ok(())
    }

    fn unit(&mut self, pair: [u8; 2], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let u = if self.big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        };
        let at = self.offset;
        self.offset += 2;
        let c = match (self.high.take(), u) {
            (Some(h), 0xDC00..=0xDFFF) => {
                0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(u) - 0xDC00)
            }
            (Some(_), _) | (None, 0xDC00..=0xDFFF) => {
                return Err(input_error(format!(
                    "the input is {} but has an unpaired surrogate at byte offset {at}",
                    self.name()
                )))
            }
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(u);
                return Ok(());
            }
            (None, u) => u32::from(u),
        };
        let c = char::from_u32(c).expect("valid scalar values by construction");
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<(), FrameError> {
        if self.odd.is_some() || self.high.is_some() {
            return Err(input_error(format!(
                "the input is {} but ends in the middle of a character",
                self.name()
            )));
        }
        Ok(())
    }
}

/// Looks for a byte-order mark (or the zero bytes of BOM-less UTF-16) in the first four bytes:
/// the encoding, and how many bytes of mark to skip. UTF-32 is refused.
pub(super) fn sniff(held: &[u8]) -> Result<(Encoding, usize), FrameError> {
    let refuse = |name: &str| {
        Err(input_error(format!(
            "the input is {name}, which ti-ingest does not read: save it as UTF-8 (or UTF-16)"
        )))
    };
    Ok(match held {
        [0xEF, 0xBB, 0xBF, ..] => (Encoding::Utf8, 3),
        [0xFF, 0xFE, 0, 0, ..] => return refuse("UTF-32LE"),
        [0, 0, 0xFE, 0xFF, ..] => return refuse("UTF-32BE"),
        [0xFF, 0xFE, ..] => (Encoding::Utf16(Utf16::new(false)), 2),
        [0xFE, 0xFF, ..] => (Encoding::Utf16(Utf16::new(true)), 2),
        [a, 0, 0, 0, ..] if *a != 0 => return refuse("UTF-32LE"),
        [0, 0, 0, a, ..] if *a != 0 => return refuse("UTF-32BE"),
        [a, 0, ..] if *a != 0 && a.is_ascii() => (Encoding::Utf16(Utf16::new(false)), 0),
        [0, a, ..] if *a != 0 && a.is_ascii() => (Encoding::Utf16(Utf16::new(true)), 0),
        _ => (Encoding::Utf8, 0),
    })
}
