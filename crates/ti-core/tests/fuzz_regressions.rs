//! Replays the inputs the fuzzers found (`tests/fixtures/fuzz-regressions/`, see FUZZING.md)
//! through the Decoder, the framer and the STIX pattern parser, so a fixed finding stays fixed.
//!
//! File names are `<target>-<finding>-<what>.bin` (`.txt` for patterns). `decoder-*` and `framer-*` files start with
//! the fuzz targets' 3-byte header (`fuzz/src/lib.rs`: format selector, limits selector,
//! chunk-split seed) followed by the input; `pattern-*` files are the pattern text. Every file
//! is replayed through every entry point, not only the one that found it: an input that broke
//! one layer is a good probe for the others.
//!
//! Besides "no panic" for every file, the Decoder's stronger contract (chunking changes nothing,
//! originals within the record bound) and the pattern round trip are asserted on the files of
//! the findings that broke them (F1–F4, fixed in ti-core).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ti_core::frame::{FrameError, FrameItem, FrameLimits, Framer};
use ti_core::input::{Decoded, Decoder, InputFormat, InputOptions};
use ti_core::stix::{self, pattern, ValidationContext};
use time::OffsetDateTime;

const HEADER: usize = 3;

/// The same table as `fuzz/src/lib.rs::limits`, so a fixture replays with the bounds that found it.
fn limits(sel: u8) -> FrameLimits {
    const RECORD: [usize; 5] = [16, 64, 256, 4096, 1 << 20];
    const DEPTH: [usize; 4] = [1, 3, 8, 64];
    FrameLimits {
        max_record_bytes: RECORD[usize::from(sel) % RECORD.len()],
        max_depth: DEPTH[(usize::from(sel) / RECORD.len()) % DEPTH.len()],
    }
}

/// The same chunking as `fuzz/src/lib.rs::chunks`.
fn chunks(input: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = 1usize << (seed % 8);
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

struct Fixture {
    name: String,
    /// `[selector, limits, split]` for decoder/framer files.
    header: Option<[u8; HEADER]>,
    input: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let mut out: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap();
            let headed = name.starts_with("decoder-") || name.starts_with("framer-");
            match data.split_first_chunk::<HEADER>() {
                Some((h, rest)) if headed => Fixture {
                    name,
                    header: Some(*h),
                    input: rest.to_vec(),
                },
                _ => Fixture {
                    name,
                    header: None,
                    input: data,
                },
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        !out.is_empty(),
        "no regression fixtures in {}",
        dir.display()
    );
    out
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
}

/// Decoder options as the decoder fuzz target derives them from the header.
fn header_options(h: [u8; HEADER]) -> InputOptions {
    let mut opts = InputOptions::new(now());
    opts.format = match usize::from(h[0]) % (InputFormat::ALL.len() + 1) {
        0 => None,
        k => Some(InputFormat::ALL[k - 1]),
    };
    opts.limits = limits(h[1]);
    opts.max_decompressed_bytes = if h[0] & 0x80 != 0 { 64 << 10 } else { 4 << 20 };
    opts
}

fn decode(
    opts: &InputOptions,
    pieces: &[&[u8]],
) -> (Vec<Decoded>, Result<InputFormat, FrameError>) {
    let mut d = Decoder::new(opts.clone());
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(e) = d.push(piece, &mut out) {
            return (out, Err(e));
        }
    }
    let r = d.finish(&mut out);
    (out, r)
}

fn frame(limits: FrameLimits, pieces: &[&[u8]]) -> Vec<FrameItem> {
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    for piece in pieces {
        if f.push(piece, &mut out).is_err() {
            return out;
        }
    }
    let _ = f.finish(&mut out);
    out
}

fn validate_all(records: Vec<Decoded>) {
    let ctx = ValidationContext {
        now: now(),
        accepted_types: ti_core::stix::STIX_OBJECTS_API_TYPES,
    };
    for r in records {
        if let Ok(o) = r.object {
            let _ = stix::validate(o, &ctx);
        }
    }
}

/// Every way of reading `f`: its own header's options (whole, its split, 1-byte chunks), then
/// auto-detection and each forced format with the default bounds; the framer; the pattern parser.
fn replay(f: &Fixture) {
    let input = f.input.as_slice();
    let mut option_sets = Vec::new();
    if let Some(h) = f.header {
        option_sets.push((header_options(h), h[2]));
    }
    for format in std::iter::once(None).chain(InputFormat::ALL.map(Some)) {
        let mut opts = InputOptions::new(now());
        opts.format = format;
        option_sets.push((opts, 3));
    }
    for (opts, split) in &option_sets {
        for pieces in [
            vec![input],
            chunks(input, *split),
            input.chunks(1).collect(),
        ] {
            let (records, _) = decode(opts, &pieces);
            validate_all(records);
        }
        frame(opts.limits, &[input]);
        frame(opts.limits, &input.chunks(1).collect::<Vec<_>>());
    }
    let text = String::from_utf8_lossy(input);
    let _ = pattern::check(&text);
    let _ = pattern::single_comparison(&text);
    let _ = pattern::single_comparison(&pattern::build_single("ipv4-addr:value", &text));
}

#[test]
fn every_regression_input_replays_without_a_panic() {
    let failed: Vec<String> = fixtures()
        .iter()
        .filter(|f| catch_unwind(AssertUnwindSafe(|| replay(f))).is_err())
        .map(|f| f.name.clone())
        .collect();
    assert!(failed.is_empty(), "panicked on: {failed:?}");
}

/// The decoder fixtures with the options their header selects.
fn decoder_fixtures() -> Vec<(Fixture, InputOptions)> {
    fixtures()
        .into_iter()
        .filter_map(|f| {
            let opts = header_options(f.header?);
            f.name.starts_with("decoder-").then_some((f, opts))
        })
        .collect()
}

#[test]
fn chunking_does_not_change_what_is_decoded() {
    for (f, opts) in decoder_fixtures() {
        let input = f.input.as_slice();
        let whole = decode(&opts, &[input]);
        for pieces in [
            chunks(input, f.header.unwrap()[2]),
            input.chunks(1).collect(),
        ] {
            let split = decode(&opts, &pieces);
            assert_eq!(whole.0, split.0, "{}: records differ", f.name);
            assert_eq!(whole.1, split.1, "{}: outcome differs", f.name);
        }
    }
}

#[test]
fn originals_stay_within_the_record_bound() {
    for (f, opts) in decoder_fixtures() {
        let (records, _) = decode(&opts, &[f.input.as_slice()]);
        for r in records {
            let len = r.original.as_ref().map_or(0, String::len);
            assert!(
                len <= opts.limits.max_record_bytes,
                "{}: record {} keeps {len} bytes, over the {}-byte bound",
                f.name,
                r.index,
                opts.limits.max_record_bytes
            );
        }
    }
}

#[test]
fn canonical_paths_rebuild_into_the_same_comparison() {
    for f in fixtures().iter().filter(|f| f.name.starts_with("pattern-")) {
        let text = String::from_utf8_lossy(&f.input);
        if let Some((path, value)) = pattern::single_comparison(&text) {
            let rebuilt = pattern::build_single(&path, &value);
            assert_eq!(
                pattern::single_comparison(&rebuilt),
                Some((path, value)),
                "{}: {rebuilt:?}",
                f.name
            );
        }
    }
}
