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

/// How the input's lines end, decided by its first line end: LF or CRLF (handed on as they are),
/// or a lone CR (classic Mac OS text; Excel's "CSV (Macintosh)" save format, listed beside
/// "CSV (MS-DOS)" in Excel for Windows' Save As, and the "Comma Separated Values" of Excel for Mac,
/// whose rows end with a lone CR: seeblog.seenet.ca, "CSV Support in Excel for Mac 2016 is a
/// Travesty", "Saving"; strata.uga.edu/8370/rtips/textFiles.html, "Line endings"), handed on with
/// every CR turned into LF so that each format's line splitting sees its lines. A CR cannot
/// stand unescaped inside a JSON string, so JSON is unchanged but for its line numbers.
#[derive(Debug, Default)]
pub(super) enum LineEnds {
    /// No line end seen yet.
    #[default]
    Undecided,
    /// The first line end was a CR, the last byte so far: held back until the next byte says
    /// whether an LF follows it.
    HeldCr,
    Lf,
    CrOnly(Vec<u8>),
}

impl LineEnds {
    /// Hands `text` on to `next`, its CRs turned into LFs if the lines end with a lone CR.
    pub(super) fn push<E>(
        &mut self,
        text: &[u8],
        mut next: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            match self {
                LineEnds::Lf => return next(text),
                LineEnds::CrOnly(buf) => {
                    buf.clear();
                    buf.extend(text.iter().map(|&b| if b == b'\r' { b'\n' } else { b }));
                    return next(buf);
                }
                LineEnds::HeldCr => {
                    if text.is_empty() {
                        return Ok(());
                    }
                    if text[0] == b'\n' {
                        *self = LineEnds::Lf;
                        next(b"\r")?;
                    } else {
                        *self = LineEnds::CrOnly(Vec::new());
                        next(b"\n")?;
                    }
                }
                LineEnds::Undecided => {
                    let Some(at) = text.iter().position(|&b| b == b'\n' || b == b'\r') else {
                        return next(text);
                    };
                    if text[at] == b'\n' || text.get(at + 1) == Some(&b'\n') {
                        *self = LineEnds::Lf;
                        return next(text);
                    }
                    next(&text[..at])?;
                    if at + 1 == text.len() {
                        *self = LineEnds::HeldCr;
                        return Ok(());
                    }
                    *self = LineEnds::CrOnly(Vec::new());
                    return self.push(&text[at..], next);
                }
            }
        }
    }

    /// The end of the input: a CR still held back was a line end of its own.
    pub(super) fn finish<E>(&mut self, next: impl FnOnce(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if let LineEnds::HeldCr = self {
            *self = LineEnds::CrOnly(Vec::new());
            return next(b"\n");
        }
        Ok(())
    }
}

#[cfg(test)]
mod line_end_tests {
    use super::LineEnds;

    /// `input` pushed in pieces of `size` bytes: what the next stage sees.
    fn through(input: &[u8], size: usize) -> Vec<u8> {
        let mut ends = LineEnds::default();
        let mut seen = Vec::new();
        for piece in input.chunks(size) {
            ends.push(piece, |t| {
                seen.extend_from_slice(t);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        ends.finish(|t| {
            seen.extend_from_slice(t);
            Ok::<(), ()>(())
        })
        .unwrap();
        seen
    }

    #[test]
    fn lone_crs_become_lfs_and_lf_or_crlf_text_is_unchanged_whatever_the_pieces() {
        for size in 1..=12 {
            assert_eq!(
                through(b"type,value\ripv4,1.2.3.4\r", size),
                b"type,value\nipv4,1.2.3.4\n"
            );
            assert_eq!(
                through(b"a\r\nb\rc\r\n", size),
                b"a\r\nb\rc\r\n",
                "CRLF decides"
            );
            assert_eq!(through(b"a\nb\rc", size), b"a\nb\rc", "LF decides");
            assert_eq!(through(b"no line end", size), b"no line end");
            assert_eq!(through(b"a\r", size), b"a\n");
        }
    }
}
