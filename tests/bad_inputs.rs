//! The bad-input corpus (issue 5, "Proof"): a few hundred malformed inputs — truncated JSON at
//! many offsets, deep nesting, huge strings, random binary, wrong encodings, decompression bombs,
//! broken gzip, hostile CSV and text, NUL bytes, hostile names — through both front doors:
//!
//! - the CLI (`ti-ingest validate FILE --report OUT`), every case as a real process with a
//!   timeout: it must exit 1 (records rejected) or 2 (unusable input), never die by a signal or
//!   a panic (101), never hang, and explain itself: a report whose summary adds up and whose
//!   every error has a code and a message, or a `ti-ingest:` message on stderr. Each case's
//!   exact outcome (exit code, `inputError.code`, summary and rejections per code) is stated in
//!   `tests/fixtures/bad-inputs.json`, so a case that starts refusing a file whole, or stops
//!   rejecting a record, fails; `UPDATE_BAD_INPUTS=1` rewrites that file (review the diff);
//! - the handler (`ti-ingest serve` against Azurite and the simulator, as in tests/e2e.rs): a
//!   sample of the same inputs dropped into the inbox, plus blob names built to escape the
//!   reports container, each BlobCreated event answered 2xx on the first attempt with a report
//!   (or an acknowledged refusal), nothing written outside the reports container, and the
//!   handler still alive at the end.
//!
//! Inputs are generated here, deterministically (a fixed-seed xorshift, hand-built gzip), so the
//! corpus needs no fixture files and no extra dependencies. Gzip is written by hand: stored
//! blocks for ordinary files, and a fixed-Huffman stream of length-258 matches for bombs (13 bits
//! per 258 zero bytes, so 200 MB of zeros is 1.3 MB on disk and in memory).

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use devkit::host::{blob_created_event, event_grid_message, INGEST_BLOB_EVENT, QUEUE_BINDING};
use devkit::stack::{INBOX_CONTAINER, REPORTS_CONTAINER, WORK_QUEUE};
use devkit::{QueueRoute, Stack, StackConfig};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ti-ingest");
/// One CLI run taking longer than this is a hang.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// The default record bound (`FrameLimits::default().max_record_bytes`).
const MAX_RECORD: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Generators

/// Deterministic pseudo-random bytes (xorshift64*), so a failing case replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A valid gzip member holding `data` in stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = GZIP_HEADER.to_vec();
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// LSB-first bit packing, as deflate wants.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate stores most-significant bit first.
    fn code(&mut self, code: u64, bits: u32) {
        let reversed = (0..bits).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
        self.put(reversed, bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A gzip member of `n` zero bytes (n ≥ 1), compressed ~159×: one literal, then fixed-Huffman
/// matches of length 258 at distance 1. The trailer's CRC is left 0: the decoder's bounds must
/// stop it long before the end, and if they did not, the bad CRC still makes it an error, so
/// the test also checks that the error names the bound.
fn gzip_zeros(n: u64) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(1, 1); // BFINAL
    b.put(1, 2); // BTYPE = 01, fixed Huffman
    b.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        b.code(0b1100_0101, 8); // length code 285 = 258
        b.code(0, 5); // distance code 0 = 1
        left -= 258;
    }
    for _ in 0..left {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    let mut out = GZIP_HEADER.to_vec();
    out.extend(b.finish());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out
}

fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn utf32(s: &str, big_endian: bool) -> Vec<u8> {
    s.chars()
        .flat_map(|c| {
            let u = c as u32;
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

/// A bundle of `n` indicators of which the ones at `invalid` are broken.
fn bundle(n: usize, invalid: &[usize]) -> String {
    common::bundle(&common::corpus(n, invalid))
}

fn indicator_with(key: &str, value: Value) -> String {
    let mut v = common::indicator(7);
    v[key] = value;
    v.to_string()
}

// ---------------------------------------------------------------------------------------------
// The corpus

#[derive(Clone)]
struct Case {
    name: String,
    /// The input file's name (hostile names are cases too).
    file_name: String,
    bytes: Vec<u8>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// A substring the report's `inputError.message` must contain (bounds must name themselves).
    input_error_contains: Option<&'static str>,
    /// Also dropped into the handler's inbox.
    handler: bool,
}

#[derive(Default)]
struct Corpus(Vec<Case>);

impl Corpus {
    fn add(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> &mut Case {
        let name = name.into();
        let file_name = format!("case-{:03}.in", self.0.len());
        self.0.push(Case {
            name,
            file_name,
            bytes: bytes.into(),
            args: Vec::new(),
            env: Vec::new(),
            input_error_contains: None,
            handler: false,
        });
        self.0.last_mut().unwrap()
    }
}

impl Case {
    fn format(&mut self, f: &str) -> &mut Self {
        self.args.extend(["--format".to_string(), f.to_string()]);
        self
    }

    fn handler(&mut self) -> &mut Self {
        self.handler = true;
        self
    }

    fn named(&mut self, file_name: &str) -> &mut Self {
        self.file_name = file_name.to_string();
        self
    }

    fn env(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    fn input_error(&mut self, contains: &'static str) -> &mut Self {
        self.input_error_contains = Some(contains);
        self
    }
}

fn corpus() -> Vec<Case> {
    let mut c = Corpus::default();
    let mut rng = Rng(0x005E_ED0F_BAD1_9957);

    // Truncated JSON at many offsets: a bundle, an array, a Sentinel request, a Graph body. Every
    // cut lies before the final bracket, so no cut is accidentally a complete input.
    let b = bundle(6, &[2]);
    let end = b.rfind('}').unwrap();
    for k in 0..40 {
        let at = k * end / 40;
        let case = c.add(
            format!("bundle truncated at byte {at}"),
            &b.as_bytes()[..at],
        );
        if k % 8 == 3 {
            case.handler();
        }
    }
    let arr = serde_json::to_string_pretty(&common::corpus(5, &[])).unwrap();
    let end = arr.rfind(']').unwrap();
    for k in 1..12 {
        let at = k * end / 12;
        c.add(
            format!("stix-json array truncated at byte {at}"),
            &arr.as_bytes()[..at],
        );
    }
    let req =
        json!({"sourcesystem": "bad-inputs", "stixobjects": common::corpus(4, &[])}).to_string();
    let end = req.rfind('}').unwrap();
    for k in 1..8 {
        let at = k * end / 8;
        c.add(
            format!("sentinel request truncated at byte {at}"),
            &req.as_bytes()[..at],
        );
    }
    let graph = r#"{"value": [{"action": "alert", "targetProduct": "Azure Sentinel", "expirationDateTime": "2099-01-01T00:00:00Z", "description": "x", "threatType": "Malware", "tlpLevel": "green", "networkIPv4": "198.51.100.7",}, {"action": "alert",}]}"#;
    let end = graph.rfind('}').unwrap();
    for k in 1..6 {
        let at = k * end / 6;
        c.add(
            format!("graph body truncated at byte {at}"),
            &graph.as_bytes()[..at],
        );
    }
    let ndjson: String = common::corpus(4, &[])
        .iter()
        .map(|v| v.to_string() + "\n")
        .collect();
    for at in [
        ndjson.len() - 40,
        ndjson.len() / 2 + 7,
        ndjson.len() / 4 + 3,
    ] {
        c.add(
            format!("ndjson truncated mid-line at byte {at}"),
            &ndjson.as_bytes()[..at],
        );
    }

    // Deep nesting: far past the frame depth bound, and past serde_json's recursion limit on
    // the NDJSON path (which the framer's depth bound does not cover).
    let deep = |open: &str, n: usize| open.repeat(n);
    c.add("100k '['", deep("[", 100_000)).handler();
    c.add("100k '[' closed", deep("[", 100_000) + &deep("]", 100_000));
    c.add("100k '{\"a\":'", deep("{\"a\":", 100_000)).handler();
    c.add(
        "bundle whose first object nests 100k arrays",
        format!(
            r#"{{"type":"bundle","objects":[{{"x":{}}}]}}"#,
            deep("[", 100_000)
        ),
    );
    c.add(
        "bundle nesting 70 levels inside a record, then a valid record",
        format!(
            r#"{{"type":"bundle","objects":[{{"x":{}1{}}}, {}]}}"#,
            deep("[", 70),
            deep("]", 70),
            common::indicator(1)
        ),
    );
    c.add(
        "ndjson: a valid line, then a line nesting 100k arrays",
        format!("{}\n{{\"a\":{}\n", common::indicator(1), deep("[", 100_000)),
    );
    c.add(
        "ndjson: a line nesting 200 arrays (over serde_json's recursion limit, under the record bound)",
        format!(
            "{}\n{{\"a\":{}1{}}}\n",
            common::indicator(1),
            deep("[", 200),
            deep("]", 200)
        ),
    )
    .handler();
    c.add(
        "indicator whose pattern nests 50k parentheses",
        format!(
            "[{}]",
            indicator_with(
                "pattern",
                json!(format!(
                    "[{}ipv4-addr:value = '1.2.3.4'{}]",
                    deep("(", 50_000),
                    deep(")", 50_000)
                ))
            )
        ),
    );
    c.add(
        "indicator whose pattern nests 50k observation groups",
        format!(
            "[{}]",
            indicator_with(
                "pattern",
                json!(format!(
                    "{}[a:b = 1]{}",
                    deep("(", 50_000),
                    deep(")", 50_000)
                ))
            )
        ),
    );
    c.add(
        "indicator whose pattern is 100k OR terms",
        format!(
            "[{}]",
            indicator_with(
                "pattern",
                json!(format!(
                    "[{} OR ]",
                    vec!["ipv4-addr:value = '1.2.3.4'"; 30_000].join(" OR ")
                ))
            )
        ),
    );

    // Huge strings: over the record bound everywhere a string can be.
    let ten_mb = "A".repeat(10 << 20);
    c.add(
        "10 MB description in a bundle record, between valid records",
        format!(
            r#"{{"type":"bundle","objects":[{},{},{}]}}"#,
            common::indicator(1),
            indicator_with("description", json!(ten_mb)),
            common::indicator(2)
        ),
    )
    .handler();
    c.add("10 MB JSON string at top level", format!("\"{ten_mb}\""));
    c.add("10 MB object key", format!("[{{\"{ten_mb}\": 1}}]"));
    c.add(
        "10 MB top-level member before the objects",
        format!(
            r#"{{"type":"bundle","x":"{ten_mb}","objects":[{}]}}"#,
            common::invalid_indicator(1, 0)
        ),
    );
    c.add("10 MB single text line", ten_mb.clone()).handler();
    c.add(
        "10 MB ndjson line between valid lines",
        format!(
            "{}\n{{\"a\":\"{ten_mb}\"}}\n{}\n",
            common::indicator(1),
            common::invalid_indicator(2, 1)
        ),
    );
    c.add(
        "10 MB CSV field",
        format!("type,value\nipv4,198.51.100.7\ndomain,\"{ten_mb}\"\n"),
    );
    c.add(
        "10 MB of backslash escapes in a string",
        format!("[{{\"a\":\"{}\"}}]", "\\\\".repeat(5 << 20)),
    );
    c.add(
        "2 MB of \\u0000 escapes in an id",
        format!("[{}]", indicator_with("id", json!("\0".repeat(2 << 20)))),
    );
    c.add(
        "a record of exactly the bound plus one byte",
        format!("[{{\"a\":\"{}\"}}]", "b".repeat(MAX_RECORD - 8 + 1)),
    );

    // Random binary, from a byte to a megabyte, and binary after a valid start.
    for (i, n) in [1, 2, 3, 4, 5, 7, 16, 100, 511, 4096, 65_537, 1 << 20]
        .into_iter()
        .enumerate()
    {
        let case = c.add(format!("{n} random bytes"), rng.bytes(n));
        if i % 4 == 1 {
            case.handler();
        }
    }
    for prefix in [
        "{",
        "[",
        "[{",
        "{\"type\":\"bundle\",\"objects\":[",
        "type,value\n",
        "1.2.3.4\n",
    ] {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.extend(rng.bytes(3000));
        c.add(format!("{prefix:?} then 3000 random bytes"), bytes);
    }
    for i in 0..6 {
        // Random printable-ish soup of JSON punctuation: reaches deeper into the framer.
        let soup: String = (0..5000)
            .map(|_| b"{}[]\",:\\ \nab01-"[rng.below(15)] as char)
            .collect();
        c.add(format!("JSON punctuation soup #{i}"), soup);
    }

    // Wrong encodings.
    let bad_bundle = bundle(3, &[1]);
    for (label, big_endian, bom) in [
        ("UTF-16LE without BOM", false, false),
        ("UTF-16BE without BOM", true, false),
        ("UTF-16LE with BOM", false, true),
        ("UTF-16BE with BOM", true, true),
    ] {
        let mut bytes = if bom {
            if big_endian {
                vec![0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE]
            }
        } else {
            Vec::new()
        };
        bytes.extend(utf16(&bad_bundle, big_endian));
        let case = c.add(
            format!("bundle with an invalid record in {label}"),
            bytes.clone(),
        );
        if !bom {
            case.handler();
        }
        bytes.pop();
        c.add(format!("{label}, odd length"), bytes.clone());
        let mut s = bytes.clone();
        s.truncate(40);
        s.extend(if big_endian {
            [0xD8, 0x00, 0, b'x']
        } else {
            [0x00, 0xD8, b'x', 0]
        });
        c.add(format!("{label}, unpaired high surrogate"), s);
        let mut s = bytes[..40].to_vec();
        s.extend(if big_endian {
            [0xDC, 0x00]
        } else {
            [0x00, 0xDC]
        });
        c.add(format!("{label}, lone low surrogate"), s);
    }
    for (label, big_endian, bom) in [
        ("UTF-32LE with BOM", false, true),
        ("UTF-32BE with BOM", true, true),
        ("UTF-32LE without BOM", false, false),
        ("UTF-32BE without BOM", true, false),
    ] {
        let mut bytes = if bom {
            if big_endian {
                vec![0, 0, 0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE, 0, 0]
            }
        } else {
            Vec::new()
        };
        bytes.extend(utf32(&bad_bundle, big_endian));
        let case = c.add(format!("bundle in {label}"), bytes);
        if bom && !big_endian {
            case.handler();
        }
    }
    let latin1 = |s: &str| -> Vec<u8> { s.chars().map(|ch| ch as u32 as u8).collect() };
    c.add(
        "Latin-1 é inside a JSON string",
        latin1(&format!("[{}]", indicator_with("name", json!("café")))),
    )
    .handler();
    c.add(
        "Latin-1 text lines",
        latin1("évil.example\n198.51.100.7\nnaïve.example\n"),
    );
    c.add(
        "Latin-1 CSV row",
        latin1("type,value,description\nipv4,198.51.100.7,déjà vu\n"),
    );
    for (label, seq) in [
        ("overlong NUL", &[0xC0u8, 0x80][..]),
        ("overlong slash", &[0xE0, 0x80, 0xAF]),
        ("UTF-16 surrogate in UTF-8", &[0xED, 0xA0, 0x80]),
        ("byte over F4", &[0xF5, 0x80, 0x80, 0x80]),
        ("lone continuation byte", &[0x80]),
        ("truncated 3-byte sequence", &[0xE2, 0x82]),
    ] {
        let mut json_bytes = b"[{\"type\":\"indicator\",\"name\":\"".to_vec();
        json_bytes.extend_from_slice(seq);
        json_bytes.extend_from_slice(b"\"}]");
        c.add(format!("invalid UTF-8 ({label}) inside JSON"), json_bytes);
        let mut text = b"198.51.100.7\nevil".to_vec();
        text.extend_from_slice(seq);
        text.extend_from_slice(b".example\n");
        c.add(format!("invalid UTF-8 ({label}) in a text line"), text);
        let mut nd = format!("{}\n", common::indicator(1)).into_bytes();
        nd.extend_from_slice(b"{\"a\":\"");
        nd.extend_from_slice(seq);
        nd.extend_from_slice(b"\"}\n");
        c.add(format!("invalid UTF-8 ({label}) in an NDJSON line"), nd);
    }
    let mut t = b"[{\"a\":1},{\"b\":\"".to_vec();
    t.push(0xE2);
    c.add("JSON ending inside a multi-byte character", t);
    c.add("UTF-8 BOM only", vec![0xEF, 0xBB, 0xBF]);
    c.add("UTF-16 BOM only", vec![0xFF, 0xFE]);
    c.add(
        "two UTF-8 BOMs, then a bundle",
        [
            &[0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF][..],
            bad_bundle.as_bytes(),
        ]
        .concat(),
    );
    c.add(
        "UTF-8 BOM then UTF-16LE",
        [&[0xEF, 0xBB, 0xBF][..], &utf16(&bad_bundle, false)].concat(),
    );
    // (A line of invalid UTF-8 at the record bound is in its own test below: its kept text was
    // 3× the bound, finding F2.)

    // Decompression bombs and broken gzip.
    c.add(
        "gzip of 200 MB of zeros (ratio bound)",
        gzip_zeros(200 << 20),
    )
    .input_error("compression-ratio bound")
    .handler();
    c.add(
        "gzip of 12 MB of zeros with TI_MAX_INPUT_BYTES=4 MiB (size bound)",
        gzip_zeros(12 << 20),
    )
    .env("TI_MAX_INPUT_BYTES", "4194304")
    .input_error("decompressed-size bound");
    c.add("gzip of a gzip bomb", gzip_stored(&gzip_zeros(50 << 20)));
    let gz = gzip_stored(bundle(5, &[3]).as_bytes());
    for k in 1..10 {
        let at = k * (gz.len() - 8) / 10;
        let case = c.add(format!("gzip truncated at byte {at}"), &gz[..at]);
        if k == 5 {
            case.handler();
        }
    }
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xFF;
    c.add("gzip with a bad CRC", bad_crc.clone());
    c.add(
        "gzip with a bad CRC, then a second member",
        [bad_crc.clone(), gzip_stored(b"198.51.100.7\n")].concat(),
    );
    let mut bad_len = gz.clone();
    bad_len[n - 1] ^= 0xFF;
    c.add("gzip with a bad length trailer", bad_len);
    c.add("gzip magic only", vec![0x1f, 0x8b]);
    c.add("gzip header only", GZIP_HEADER.to_vec());
    c.add(
        "gzip with an unknown compression method",
        [&[0x1f, 0x8b, 7][..], &gz[3..]].concat(),
    );
    let mut bad_block = gz.clone();
    bad_block[10] = 0x07; // BTYPE = 11, reserved
    c.add("gzip with a reserved block type", bad_block);
    c.add(
        "gzip, then garbage",
        [gz.clone(), b"garbage after the member".to_vec()].concat(),
    );
    c.add("gzip of nothing", gzip_stored(b""));
    c.add("gzip of random bytes", gzip_stored(&rng.bytes(10_000)));
    c.add(
        "gzip of 100k '['",
        gzip_stored("[".repeat(100_000).as_bytes()),
    );
    c.add("gzip of UTF-32", gzip_stored(&utf32(&bad_bundle, false)));

    // CSV.
    c.add(
        "CSV with an unbalanced quote to the end",
        format!(
            "type,value\nipv4,198.51.100.7\ndomain,\"evil.example\n{}",
            "ipv4,1.2.3.4\n".repeat(1000)
        ),
    )
    .handler();
    c.add(
        "CSV with an unbalanced quote over the record bound",
        format!("type,value\ndomain,\"{}", "x,\n".repeat(500_000)),
    );
    c.add(
        "CSV with a quote inside a field",
        "type,value\ndomain,ev\"il.example\nipv4,1.2.3.4.5\n",
    );
    let cols = (0..100_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    c.add(
        "CSV header with 100k columns",
        format!("type,value,{cols}\nipv4,999.1.1.1\n"),
    )
    .handler();
    c.add(
        "CSV row with 100k columns",
        format!("type,value\nipv4,198.51.100.7{}\n", ",x".repeat(100_000)),
    );
    c.add(
        "CSV header only",
        "observableType,observableValue,validFrom\n",
    );
    // (CR-only line endings are not bad input: crates/ti-core/src/input/tests.rs,
    // `lone_cr_line_endings_are_lines`.)
    // (A header naming `type` twice is in its own test below: it was accepted silently.)
    c.add(
        "CSV with empty header fields",
        ",,type,,value\n,,ipv4,,not-an-ip\n",
    );
    c.add(
        "CSV with NULs in fields",
        "type,value\nipv4,198.51.100.7\0\ndomain,\0\n",
    );
    c.add(
        // 20k, not 100k: every row is a report entry, and the debug build is slow at that.
        "CSV with 20k rows of garbage",
        format!("type,value\n{}", "nonsense,???\n".repeat(20_000)),
    );
    c.add("CSV forced on JSON", bad_bundle.clone())
        .format("csv");
    c.add("portal CSV with wrong types", "threatTypes,tags,name,description,confidence,revoked,validFrom,validUntil,tlpLevel,severity,observableType,observableValue\nmalware,,x,,banana,maybe,yesterday,,purple,,ipv4-addr,300.1.1.1\n");

    // Text.
    c.add(
        "text with lines of exactly 1 MiB and 1 MiB + 1",
        format!(
            "{}\n{}\n198.51.100.7\n",
            "a".repeat(MAX_RECORD),
            "b".repeat(MAX_RECORD + 1)
        ),
    )
    .handler();
    c.add("text line of 3 MiB without a newline", "c".repeat(3 << 20));
    c.add(
        "text with NUL bytes in lines",
        "198.51.100.7\0\n\0evil.example\nfoo\0bar\n",
    );
    c.add("1 MiB of NUL bytes", vec![0u8; MAX_RECORD]).handler();
    c.add("3 NUL bytes", vec![0u8; 3]);
    c.add(
        "NUL then JSON",
        [&[0u8][..], bad_bundle.as_bytes()].concat(),
    );
    c.add("10 MB of newlines", "\n".repeat(10 << 20));
    c.add("only comments", "# a\n# b\n#c\n");
    c.add("empty file", "").handler();
    c.add("whitespace only", " \t\r\n \n");
    c.add(
        "20k lines of garbage",
        "not an indicator ???\n".repeat(20_000),
    );
    c.add(
        "text with control and bidi characters",
        "evil\u{202E}elpmaxe.com\n\u{1b}[31mred.example\n\u{7f}\u{85}.example\n",
    );
    c.add(
        "text with a 300-character label",
        format!("{}.example\n", "a".repeat(300)),
    );
    c.add(
        "text with a URL of 100k characters, then a bad line",
        format!("http://evil.example/{}\n???\n", "a".repeat(100_000)),
    );
    c.add(
        "text with hostile defanging",
        "hxxp[:]//[.][.]/\n1[.]2[.]3\n[@]\nhxxps://\n???\n",
    );
    c.add("text forced on JSON", bad_bundle.clone())
        .format("text");

    // JSON edge cases.
    for (label, text) in [
        ("a bare number", "5".to_string()),
        ("a bare string", "\"indicator\"".to_string()),
        ("null", "null".to_string()),
        ("true", "true".to_string()),
        ("an empty array", "[]".to_string()),
        ("an empty object", "{}".to_string()),
        ("an array of arrays", "[[],[[]],[1]]".to_string()),
        ("an array of scalars", "[1, \"x\", null, true]".to_string()),
        (
            "a bundle without objects",
            r#"{"type":"bundle","id":"bundle--1"}"#.to_string(),
        ),
        (
            "objects that is a number",
            r#"{"type":"bundle","objects":5}"#.to_string(),
        ),
        (
            "objects that is a string",
            r#"{"type":"bundle","objects":"[{}]"}"#.to_string(),
        ),
        (
            "objects twice",
            format!(
                r#"{{"type":"bundle","objects":[{}],"objects":[{}]}}"#,
                common::invalid_indicator(1, 1),
                common::indicator(2)
            ),
        ),
        (
            "two bundles back to back",
            format!("{bad_bundle}{bad_bundle}"),
        ),
        ("garbage after a bundle", format!("{bad_bundle} trailing")),
        (
            "a bundle with JS comments",
            format!("// comment\n{bad_bundle}"),
        ),
        ("single quotes", "[{'type': 'indicator'}]".to_string()),
        (
            "NaN and Infinity",
            "[{\"confidence\": NaN}, {\"confidence\": Infinity}]".to_string(),
        ),
        (
            "a number of 10k digits",
            format!("[{{\"confidence\": {}}}]", "9".repeat(10_000)),
        ),
        (
            "a number with a huge exponent",
            format!(
                "[{}]",
                indicator_with("confidence", json!(1))
                    .replace("\"confidence\":1", "\"confidence\":1e999999")
            ),
        ),
        (
            "a lone surrogate escape",
            "[{\"type\":\"indicator\",\"name\":\"\\ud800\"}]".to_string(),
        ),
        (
            "a raw NUL inside a string",
            "[{\"type\":\"indicator\",\"name\":\"a\0b\"}]".to_string(),
        ),
        (
            "a raw newline inside a string",
            "[{\"type\":\"indicator\",\"name\":\"a\nb\"}]".to_string(),
        ),
        (
            "an unterminated string",
            "[{\"type\":\"indicator".to_string(),
        ),
        (
            "an unterminated escape",
            "[{\"type\":\"indicator\\".to_string(),
        ),
        ("unbalanced closers", "[{}]]]]}}}".to_string()),
        (
            "a missing comma between records",
            format!("[{} {}]", common::indicator(1), common::indicator(2)),
        ),
        (
            "records separated by semicolons",
            format!("[{};{}]", common::indicator(1), common::indicator(2)),
        ),
        ("a trailing comma only", "[,]".to_string()),
        ("leading commas", "[,,{}]".to_string()),
        ("a duplicate key in a record, the last one bad", {
            let t = common::indicator(1).to_string();
            format!("[{},\"type\":\"banana\"}}]", &t[..t.len() - 1])
        }),
        (
            "ndjson with a broken middle line",
            format!(
                "{}\n{{\"a\":\n{}\n",
                common::indicator(1),
                common::indicator(2)
            ),
        ),
        ("ndjson of scalars", "1\n2\n3\n".to_string()),
    ] {
        c.add(format!("JSON: {label}"), text);
    }

    // STIX-level nonsense: parses, then each record is rejected on its own.
    for (label, key, value) in [
        ("type as array", "type", json!(["indicator"])),
        ("type empty", "type", json!("")),
        ("id with unicode", "id", json!("indicator--ünï-cödé")),
        (
            "id of 100k chars",
            "id",
            json!(format!("indicator--{}", "a".repeat(100_000))),
        ),
        ("created as number", "created", json!(17)),
        (
            "created in year 0",
            "created",
            json!("0000-01-01T00:00:00Z"),
        ),
        (
            "valid_from with a leap second",
            "valid_from",
            json!("2016-12-31T23:59:60Z"),
        ),
        (
            "valid_from 10000 years away",
            "valid_from",
            json!("+10000-01-01T00:00:00Z"),
        ),
        (
            "confidence 2^70",
            "confidence",
            json!(1180591620717411303424u128 as f64),
        ),
        ("confidence -0", "confidence", json!(-0.0)),
        ("10k labels", "labels", json!(vec!["x"; 10_000])),
        (
            "10k external references",
            "external_references",
            json!(vec![json!({"source_name": ""}); 10_000]),
        ),
        ("pattern empty", "pattern", json!("")),
        (
            "pattern of 1 MB",
            "pattern",
            json!(format!("[a:b = '{}']", "x".repeat(900_000))),
        ),
        ("pattern_type unknown", "pattern_type", json!("yara")),
        (
            "object_marking_refs hostile",
            "object_marking_refs",
            json!(["../../x", "marking-definition--\u{0}"]),
        ),
    ] {
        c.add(
            format!("STIX: {label}"),
            format!(
                "[{}, {}]",
                indicator_with(key, value),
                common::invalid_indicator(3, 2)
            ),
        );
    }

    // Hostile file names (the CLI side of "hostile names"; blob names are in the handler test).
    let hostile = bundle(2, &[0]);
    for name in [
        "..json",
        " leading space.json",
        "ünïcödé ☃ 名前.json",
        "-dash-first.json",
        "new\nline.json",
        "tab\there.json",
        "%2e%2e%2fx.json",
        "x.report.json",
        "x.rejected.ndjson",
        &"long".repeat(60),
        "semi;colon$(id)`id`.json",
        "back\\slash.json",
    ] {
        c.add(format!("file named {name:?}"), hostile.clone())
            .named(name);
    }
    c.0
}

// ---------------------------------------------------------------------------------------------
// CLI

struct CliRun {
    status: std::process::ExitStatus,
    stderr: String,
    report: Option<Value>,
    rejected_lines: Option<usize>,
    /// Bytes of the longest line of `rejected.ndjson` (each is one record's original text).
    longest_rejected: usize,
    elapsed: Duration,
}

fn run_cli(dir: &Path, i: usize, case: &Case) -> Result<CliRun, String> {
    let case_dir = dir.join(format!("c{i:03}"));
    std::fs::create_dir_all(&case_dir).unwrap();
    let input = case_dir.join(&case.file_name);
    std::fs::write(&input, &case.bytes).map_err(|e| format!("writing the input: {e}"))?;
    let report = case_dir.join("out.report.json");
    // Output to files, not pipes: a chatty child cannot block on a full pipe.
    let stderr_path = case_dir.join("stderr");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("validate")
        .arg(&input)
        .arg("--report")
        .arg(&report)
        .args(&case.args)
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("TI_TARGET")
        .env_remove("TI_FORMAT")
        .env_remove("TI_MAX_INPUT_BYTES")
        .env("TI_LOG", "warn")
        .envs(case.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .map_err(|e| format!("spawning: {e}"))?;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > CLI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("HANG: no exit within {CLI_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let report_value = match std::fs::read(&report) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| format!("the report is not JSON: {e}"))?,
        ),
        Err(_) => None,
    };
    let rejected = case_dir.join("out.rejected.ndjson");
    let rejected_bytes = std::fs::read(&rejected).ok();
    let rejected_lines = rejected_bytes
        .as_ref()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count());
    let longest_rejected = rejected_bytes
        .as_ref()
        .and_then(|b| b.split(|&c| c == b'\n').map(<[u8]>::len).max())
        .unwrap_or(0);
    // The big inputs are gone as soon as they are judged: the disk is shared.
    let _ = std::fs::remove_file(&input);
    Ok(CliRun {
        status,
        stderr,
        report: report_value,
        rejected_lines,
        longest_rejected,
        elapsed,
    })
}

/// The report's own invariants (docs/REPORTS.md) and that it explains the failure.
fn check_report(report: &Value, expect_input_error: Option<&str>) -> Result<(), String> {
    let s = &report["summary"];
    let (records, uploaded, rejected) = (
        s["records"].as_u64().ok_or("no summary.records")?,
        s["uploaded"].as_u64().ok_or("no summary.uploaded")?,
        s["rejected"].as_u64().ok_or("no summary.rejected")?,
    );
    if records != uploaded + rejected {
        return Err(format!(
            "records {records} != uploaded {uploaded} + rejected {rejected}"
        ));
    }
    let listed = report["errors"].as_array().ok_or("no errors array")?;
    // Past 10,000 entries the rest are in the file `moreErrorsIn` names, one per line
    // (README, "Reports"); `errorCounts` counts them all.
    let mut errors = listed.clone();
    if let Some(more) = report.get("moreErrorsIn").and_then(Value::as_str) {
        if listed.len() != 10_000 {
            return Err(format!("{} entries listed with moreErrorsIn", listed.len()));
        }
        let text = std::fs::read_to_string(more).map_err(|e| format!("{more}: {e}"))?;
        for line in text.lines() {
            errors.push(serde_json::from_str(line).map_err(|e| format!("{more}: {e}"))?);
        }
    }
    let counted: u64 = report["errorCounts"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    if counted != rejected {
        return Err(format!(
            "errorCounts add up to {counted} for {rejected} rejected"
        ));
    }
    if errors.len() as u64 != rejected {
        return Err(format!(
            "{} error entries for {rejected} rejected",
            errors.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for e in &errors {
        let index = e["recordIndex"]
            .as_u64()
            .ok_or("an error without recordIndex")?;
        if index >= records || !seen.insert(index) {
            return Err(format!(
                "error recordIndex {index} out of range or repeated"
            ));
        }
        let code = e["code"].as_str().unwrap_or_default();
        let message = e["messages"][0].as_str().unwrap_or_default();
        if code.is_empty() || message.trim().is_empty() {
            return Err(format!("an error without a code or message: {e}"));
        }
    }
    let input_error = report.get("inputError").filter(|v| !v.is_null());
    if let Some(ie) = input_error {
        let code = ie["code"].as_str().unwrap_or_default();
        let message = ie["message"].as_str().unwrap_or_default();
        if code.is_empty() || message.trim().is_empty() {
            return Err(format!("an inputError without a code or message: {ie}"));
        }
    }
    if let Some(want) = expect_input_error {
        let message = input_error
            .and_then(|ie| ie["message"].as_str())
            .unwrap_or_default();
        if !message.contains(want) {
            return Err(format!(
                "expected an inputError naming {want:?}, got {input_error:?}"
            ));
        }
    }
    if rejected == 0 && input_error.is_none() && records > 0 {
        return Err("nothing rejected and no inputError: the bad input was accepted".into());
    }
    Ok(())
}

/// A run's outcome as `tests/fixtures/bad-inputs.json` states it.
fn outcome(case: &Case, run: &CliRun) -> Value {
    let report = run.report.as_ref();
    let summary = report.map(|r| {
        let s = &r["summary"];
        json!([s["records"], s["uploaded"], s["rejected"]])
    });
    json!({
        "name": case.name,
        "exit": run.status.code(),
        "inputError": report.and_then(|r| r.get("inputError")).and_then(|e| e.get("code")),
        "summary": summary,
        "errorCounts": report.and_then(|r| r.get("errorCounts")),
    })
}

fn expected_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-inputs.json")
}

fn judge_cli(case: &Case, run: &CliRun) -> Result<(), String> {
    if let Some(sig) = run.status.signal() {
        return Err(format!("killed by signal {sig}"));
    }
    let code = run.status.code().unwrap_or(-1);
    if run.stderr.contains("panicked") || code == 101 {
        return Err(format!("PANIC (exit {code}): {}", tail(&run.stderr)));
    }
    if !matches!(code, 1 | 2) {
        return Err(format!(
            "exit {code}, expected 1 or 2: {}",
            tail(&run.stderr)
        ));
    }
    if run.stderr.trim().is_empty() {
        return Err(format!("exit {code} with nothing on stderr"));
    }
    match &run.report {
        Some(report) => {
            check_report(report, case.input_error_contains)?;
            let rejected = report["summary"]["rejected"].as_u64().unwrap_or(0) as usize;
            let has_input_error = report.get("inputError").is_some_and(|v| !v.is_null());
            if code == 1 && (rejected == 0 || has_input_error) {
                return Err(format!(
                    "exit 1 but rejected={rejected}, inputError={has_input_error}"
                ));
            }
            if code == 2 && !has_input_error && !run.stderr.contains("ti-ingest:") {
                return Err("exit 2 without an inputError or a ti-ingest: message".into());
            }
            // The per-record bound holds for what is kept, too (README.md, How it works: limits).
            if run.longest_rejected > MAX_RECORD {
                return Err(format!(
                    "rejected.ndjson keeps a record of {} bytes, over the {MAX_RECORD}-byte bound",
                    run.longest_rejected
                ));
            }
            if let Some(lines) = run.rejected_lines {
                // A CSV input's rejected rows follow its header row.
                let header = usize::from(report["source"]["format"] == "csv" && rejected > 0);
                if lines > rejected + header {
                    return Err(format!(
                        "rejected.ndjson has {lines} lines for {rejected} rejected records"
                    ));
                }
            }
        }
        None if code == 2 && run.stderr.contains("ti-ingest:") => {}
        None => return Err(format!("exit {code} and no report: {}", tail(&run.stderr))),
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let start = s.len().saturating_sub(600);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_string()
}

#[test]
fn the_cli_answers_every_bad_input_with_a_clear_error() {
    let cases = corpus();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let update = std::env::var_os("UPDATE_BAD_INPUTS").is_some();
    let expected: Vec<Value> = if update {
        Vec::new()
    } else {
        let file: Value = serde_json::from_slice(&std::fs::read(expected_path()).unwrap())
            .expect("tests/fixtures/bad-inputs.json is JSON");
        file["cases"].as_array().unwrap().clone()
    };
    if !update {
        let listed: Vec<&str> = expected
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        let corpus_names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            listed, corpus_names,
            "tests/fixtures/bad-inputs.json lists other cases than the corpus: run with UPDATE_BAD_INPUTS=1 and review"
        );
    }
    let outcomes: Mutex<Vec<Option<Value>>> = Mutex::new(vec![None; cases.len()]);
    let dir = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    let started = Instant::now();
    // Three workers on two cores: a worker waiting on a child's exit does not need a core.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let verdict = run_cli(dir.path(), i, case).and_then(|run| {
                    if run.elapsed > Duration::from_secs(5) {
                        eprintln!("slow: #{i} {} took {:?}", case.name, run.elapsed);
                    }
                    let mut slow = slowest.lock().unwrap();
                    if run.elapsed > slow.0 {
                        *slow = (run.elapsed, case.name.clone());
                    }
                    drop(slow);
                    judge_cli(case, &run)?;
                    let got = outcome(case, &run);
                    outcomes.lock().unwrap()[i] = Some(got.clone());
                    match expected.get(i) {
                        Some(want) if *want != got => Err(format!("expected {want}, got {got}")),
                        _ => Ok(()),
                    }
                });
                if let Err(why) = verdict {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("#{i} {}: {why}", case.name));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    if update && failures.is_empty() {
        let outcomes: Vec<Value> = outcomes
            .into_inner()
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let file = json!({
            "_doc": "The exact outcome of every case of tests/bad_inputs.rs's corpus through `ti-ingest validate` (in corpus order): exit code, inputError.code (the input refused whole), summary [records, valid, rejected] and errorCounts (rejected records per code); null summary: refused before a report, with a ti-ingest: message. Rewritten by UPDATE_BAD_INPUTS=1; review the diff.",
            "cases": outcomes,
        });
        let mut text = serde_json::to_string_pretty(&file).unwrap();
        text.push('\n');
        std::fs::write(expected_path(), text).unwrap();
    }
    let (slow, slow_name) = slowest.into_inner().unwrap();
    eprintln!(
        "{} bad inputs through the CLI in {:?} (slowest: {slow_name}, {slow:?})",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Handler

/// Blob names and event URLs built to escape the inbox or the reports container. `None` as
/// content: the event is delivered for a blob that is never uploaded (the name cannot be, or
/// need not be, stored).
fn hostile_events(blob_url: &str) -> Vec<(String, String)> {
    let inbox = format!("{blob_url}/{INBOX_CONTAINER}");
    vec![
        ("dot-dot segments".into(), format!("{inbox}/../../x.json")),
        (
            "percent-encoded dot-dot segments".into(),
            format!("{inbox}/a/%2e%2e/%2E%2E/b.json"),
        ),
        (
            "encoded slashes around dot-dot".into(),
            format!("{inbox}/..%2F..%2Fx.json"),
        ),
        (
            "encoded path into the reports container".into(),
            format!("{inbox}/a%2F..%2F..%2F{REPORTS_CONTAINER}%2Fevil.json"),
        ),
        (
            "the reports container itself".into(),
            format!("{blob_url}/{REPORTS_CONTAINER}/x.json"),
        ),
        ("a NUL in the name".into(), format!("{inbox}/x%00.json")),
        ("a newline in the name".into(), format!("{inbox}/x%0A.json")),
        ("backslashes".into(), format!("{inbox}/..%5C..%5Cx.json")),
        (
            "a 2000-character name".into(),
            format!("{inbox}/{}.json", "n".repeat(2000)),
        ),
        ("a query string".into(), format!("{inbox}/x.json?comp=list")),
        ("bad percent-encoding".into(), format!("{inbox}/%ZZ.json")),
        (
            "overlong UTF-8 dots".into(),
            format!("{inbox}/%C0%AE%C0%AE/x.json"),
        ),
        (
            "another account".into(),
            format!("https://evil.example/devstoreaccount1/{INBOX_CONTAINER}/x.json"),
        ),
        ("an empty name".into(), format!("{inbox}/")),
    ]
}

/// Hostile but storable blob names: dropped for real, with bad content.
const HOSTILE_BLOB_NAMES: &[&str] = &[
    "ünïcödé/☃ 名前.json",
    "spaces, #hash and ?question.json",
    "a%2Fb%2e%2e.json",
    "x.json.report.json",
    "\u{202E}nosj.exe",
    "deep/er/and/deeper/still/x.json",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_answers_every_bad_blob_and_survives() {
    let cases: Vec<Case> = corpus().into_iter().filter(|c| c.handler).collect();
    assert!(cases.len() >= 20, "only {} handler cases", cases.len());
    let stack = Stack::start(StackConfig::default())
        .await
        .expect("the stack starts (run scripts/setup-azurite.sh first)");
    let mut handler = stack.spawn_handler(BIN).await.unwrap();
    let driver = handler.driver().clone();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut names = Vec::new();

    let long_name = format!("long/{}.json", "l".repeat(900));
    let mut drops: Vec<(String, Case)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("bad/{i:02}-{}.in", c.file_name), c.clone()))
        .collect();
    let hostile_content = cases
        .iter()
        .find(|c| c.name.starts_with("bundle truncated"))
        .unwrap();
    for (i, name) in HOSTILE_BLOB_NAMES
        .iter()
        .copied()
        .chain([long_name.as_str()])
        .enumerate()
    {
        let mut c = hostile_content.clone();
        c.name = format!("hostile blob name #{i}");
        drops.push((name.to_string(), c));
    }

    for (name, case) in &drops {
        let verdict = async {
            let delivery = stack
                .ingest_blob(&driver, name, case.bytes.clone())
                .await
                .map_err(|e| format!("delivery failed: {e:#}"))?;
            if delivery.attempts != 1 || !delivery.last().is_success() {
                return Err(format!(
                    "answered {} after {} attempt(s): {}",
                    delivery.final_status,
                    delivery.attempts,
                    delivery.last().text
                ));
            }
            let mut report = stack.report(name).await.map_err(|e| format!("{e:#}"))?;
            if report.is_none() {
                // A large input may continue as work items: run them as the host would.
                driver
                    .pump_queues(
                        stack.storage(),
                        &[QueueRoute::new(WORK_QUEUE, "IngestWorkItem")],
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|e| format!("pumping work items: {e:#}"))?;
                report = stack.report(name).await.map_err(|e| format!("{e:#}"))?;
            }
            let report = report.ok_or("no report written")?;
            check_report(&report, case.input_error_contains)?;
            let source = report["source"]["name"].as_str().unwrap_or_default();
            if source != format!("{INBOX_CONTAINER}/{name}") {
                return Err(format!("the report names source {source:?}"));
            }
            Ok(())
        }
        .await;
        if let Err(why) = verdict {
            failures.push(format!("{} as blob {name:?}: {why}", case.name));
        }
        names.push(name.clone());
    }

    // Events whose blob URL tries to leave the inbox: refused, acknowledged, explained.
    for (label, url) in hostile_events(&stack.blob_url()) {
        let mut event =
            blob_created_event(&stack.blob_url(), INBOX_CONTAINER, "placeholder.json", 10);
        event["data"]["url"] = json!(url);
        let verdict = async {
            let delivery = driver
                .deliver_with_retries(
                    INGEST_BLOB_EVENT,
                    QUEUE_BINDING,
                    &event_grid_message(&event),
                )
                .await
                .map_err(|e| format!("delivery failed: {e:#}"))?;
            let last = delivery.last();
            if delivery.attempts != 1 || !last.is_success() {
                return Err(format!(
                    "answered {} after {} attempt(s): {}",
                    delivery.final_status, delivery.attempts, last.text
                ));
            }
            let rv = last.return_value().cloned().unwrap_or(Value::Null);
            // Either refused, with a report saying why, or resolved to a harmless inbox name
            // (whose blob does not exist: a blob_not_found report under that name).
            match rv["report"].as_str() {
                Some(path) if rv["inputError"].is_string() => {
                    let bytes = stack
                        .storage()
                        .try_read_blob(REPORTS_CONTAINER, path)
                        .await
                        .map_err(|e| format!("{e:#}"))?
                        .ok_or_else(|| format!("the refusal's report {path} does not exist"))?;
                    let report: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("the refusal's report is not JSON: {e}"))?;
                    check_report(&report, None)?;
                    if report["inputError"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .is_empty()
                    {
                        return Err(format!("the refusal's report does not say why: {report}"));
                    }
                }
                _ if rv["source"].is_string() => {}
                _ => return Err(format!("neither a refusal nor a report: {}", last.text)),
            }
            Ok(())
        }
        .await;
        if let Err(why) = verdict {
            failures.push(format!("hostile event URL ({label}) {url:?}: {why}"));
        }
    }

    // Nothing was written outside the reports container's own layout.
    let written = stack
        .storage()
        .list_blobs(REPORTS_CONTAINER, None)
        .await
        .unwrap();
    for blob in &written {
        if blob.split('/').any(|seg| seg == ".." || seg == ".")
            || blob.starts_with('/')
            || blob.contains('\\')
        {
            failures.push(format!("a report blob escapes its path: {blob:?}"));
        }
    }
    // And every dropped blob is where it was dropped (a hostile name did not move it).
    let inbox = stack
        .storage()
        .list_blobs(INBOX_CONTAINER, None)
        .await
        .unwrap();
    for name in &names {
        if !inbox.contains(name) {
            failures.push(format!(
                "blob {name:?} is not in the inbox under its name: {inbox:?}"
            ));
        }
    }

    // The handler is alive and still works.
    if let Some(status) = handler.try_exit_status() {
        failures.push(format!(
            "the handler exited: {status}\n{}",
            tail(&handler.output())
        ));
    } else {
        driver.wait_ready(Duration::from_secs(5)).await.unwrap();
        let delivery = stack
            .ingest_blob(&driver, "after-the-storm.json", bundle(3, &[]))
            .await
            .unwrap();
        assert_eq!(delivery.final_status, 200);
        let report = stack.report("after-the-storm.json").await.unwrap().unwrap();
        assert_eq!(report["summary"]["uploaded"], 3, "{report}");
    }
    let output = handler.output();
    if output.contains("panicked") {
        failures.push(format!("the handler panicked:\n{}", tail(&output)));
    }
    eprintln!(
        "{} blobs and {} hostile events through the handler in {:?}",
        drops.len(),
        hostile_events(&stack.blob_url()).len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The hand-made gzip must be real gzip, or the gzip cases would test nothing: a stored-block
/// file of valid indicators validates clean, and a small zero bomb decodes to text lines.
#[test]
fn the_generators_make_what_they_claim() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(utf16("a", true), vec![0, b'a']);
    assert_eq!(utf32("a", false), vec![b'a', 0, 0, 0]);
    let bomb = gzip_zeros(1 << 20);
    assert!(bomb.len() < (1 << 20) / 100, "{} bytes", bomb.len());

    let dir = tempfile::tempdir().unwrap();
    let mut good = Corpus::default();
    good.add(
        "valid bundle in stored gzip",
        gzip_stored(bundle(3, &[]).as_bytes()),
    );
    let run = run_cli(dir.path(), 0, &good.0[0]).unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.report.unwrap()["summary"]["uploaded"], 3);

    // The bomb's deflate stream is valid if it decodes to its end and only the trailer's
    // (deliberately wrong) CRC is refused, not the stream.
    let mut zeros = Corpus::default();
    zeros.add("small zero bomb", gzip_zeros(1 << 20));
    let run = run_cli(dir.path(), 1, &zeros.0[0]).unwrap();
    let report = run.report.expect("a report");
    let message = report["inputError"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("checksum") || message.contains("corrupt"),
        "{report}"
    );
    assert!(
        !message.contains("deflate"),
        "the deflate stream itself is broken: {report}"
    );
}

/// A CSV header naming a column twice is ambiguous: `type,type,value` with the row
/// `ipv4,domain,1.2.3.4` uploaded an IPv4 indicator (the first `type` won) with no error or
/// warning, while `domain,ipv4,…` rejected the row. The user is told, not guessed for: the
/// input error names the duplicated column.
#[test]
fn csv_with_duplicate_columns_is_not_silently_accepted() {
    let mut c = Corpus::default();
    c.add(
        "CSV with duplicate columns",
        "type,type,value\nipv4,domain,1.2.3.4\n",
    )
    .input_error("'type' twice");
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(dir.path(), 0, &c.0[0]).unwrap();
    judge_cli(&c.0[0], &run).unwrap();
}

/// A text line of 1 MiB of bytes that are not UTF-8 is within the record bound, but its lossy
/// text (every bad byte a 3-byte U+FFFD) is 3 MiB: the decoder used to keep it all, in memory
/// and in the rejected file. It now cuts it to the bound. Fuzzing finding F2 (FUZZING.md).
#[test]
fn a_line_of_invalid_utf8_keeps_its_text_within_the_record_bound() {
    let mut c = Corpus::default();
    c.add(
        "a line of 1 MiB of invalid UTF-8 bytes (its lossy text is 3 MiB)",
        [&vec![0xFFu8; MAX_RECORD][..], b"\n198.51.100.7\n"].concat(),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(dir.path(), 0, &c.0[0]).unwrap();
    judge_cli(&c.0[0], &run).unwrap();
}
