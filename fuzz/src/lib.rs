//! Helpers shared by the ti-core fuzz targets (see FUZZING.md).
//!
//! A fuzz input starts with a small header that chooses the options and how the input is cut
//! into chunks, so libFuzzer mutates those together with the bytes themselves and a crash file
//! replays exactly. The same header layout is written by the seed generator (`fuzz/seeds.py`).

use ti_core::frame::FrameLimits;

/// Header bytes before the input proper: `[selector, limits, split]`.
pub const HEADER: usize = 3;

/// Splits a fuzz input into its header and the input bytes.
pub fn header(data: &[u8]) -> Option<([u8; HEADER], &[u8])> {
    let (h, rest) = data.split_first_chunk::<HEADER>()?;
    Some((*h, rest))
}

/// Record bounds chosen by a header byte. Tiny bounds are included on purpose: they put the
/// oversize and depth paths within reach of small fuzz inputs; the default is one of them too.
pub fn limits(sel: u8) -> FrameLimits {
    const RECORD: [usize; 5] = [16, 64, 256, 4096, 1 << 20];
    const DEPTH: [usize; 4] = [1, 3, 8, 64];
    FrameLimits {
        max_record_bytes: RECORD[usize::from(sel) % RECORD.len()],
        max_depth: DEPTH[(usize::from(sel) / RECORD.len()) % DEPTH.len()],
    }
}

/// Cuts `input` into chunks of 1..=2^(seed % 8) bytes with a deterministic pseudo-random
/// sequence, with an occasional empty chunk (pushing nothing must change nothing).
pub fn chunks(input: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = 1usize << (seed % 8);
    // xorshift32; any non-zero start works.
    let mut state = 0x9E37_79B9u32 ^ u32::from(seed).wrapping_mul(0x0101_0101) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize
    };
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let r = next();
        if r % 13 == 0 {
            out.push(&rest[..0]);
        }
        let n = (r % max + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// The index of the first element where two sequences differ (or the shorter length), for
/// assertion messages that do not print megabytes.
pub fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}
