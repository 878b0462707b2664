//! Decoder tests for what the fixture tables cannot express: chunking, compression, encodings,
//! bounds and format switching. Per-format valid/invalid cases live in `tests/fixtures/<format>/`.

use super::json::without_trailing_commas;
use super::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use time::format_description::well_known::Rfc3339;

fn opts() -> InputOptions {
    InputOptions::new(OffsetDateTime::parse("2025-01-01T00:00:00Z", &Rfc3339).unwrap())
}

/// Decodes `input` fed in chunks of `size` bytes.
fn decode_with(
    input: &[u8],
    size: usize,
    o: InputOptions,
) -> (Vec<Decoded>, Result<InputFormat, FrameError>) {
    let mut d = Decoder::new(o);
    let mut out = Vec::new();
    for chunk in input.chunks(size.max(1)) {
        if let Err(e) = d.push(chunk, &mut out) {
            return (out, Err(e));
        }
    }
    let f = d.finish(&mut out);
    (out, f)
}

/// Decodes `input` in several chunkings and checks they all agree.
fn decode(input: &[u8]) -> (Vec<Decoded>, Result<InputFormat, FrameError>) {
    let whole = decode_with(input, input.len(), opts());
    for size in [1, 2, 3, 7, 64] {
        let (out, f) = decode_with(input, size, opts());
        assert_eq!(out, whole.0, "chunk size {size}");
        assert_eq!(f, whole.1, "chunk size {size}");
    }
    whole
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn utf16(s: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = if bom { Some(0xFEFF) } else { None }
        .into_iter()
        .chain(s.encode_utf16());
    for u in units {
        out.extend_from_slice(&if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

fn indicator(i: u32) -> String {
    format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--6f1b5b7e-0000-4000-8000-{i:012x}","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","pattern":"[domain-name:value = 'ex{i}.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}}"#
    )
}

fn ids(out: &[Decoded]) -> Vec<String> {
    out.iter()
        .map(|d| match &d.object {
            Ok(o) => o["id"].as_str().unwrap_or("?").to_string(),
            Err(p) => format!("{:?}", p.code),
        })
        .collect()
}

#[test]
fn bundle_is_framed_and_kept_whole() {
    let text = format!(
        "{{\"type\":\"bundle\",\"id\":\"bundle--6f1b5b7e-0000-4000-8000-000000000000\",\"objects\":[\n{},\n{}\n]}}",
        indicator(1),
        indicator(2)
    );
    let (out, f) = decode(text.as_bytes());
    assert_eq!(f, Ok(InputFormat::StixBundle));
    assert_eq!(out.len(), 2);
    assert_eq!((out[1].index, out[1].line), (1, 3));
    assert_eq!(out[1].original.as_deref(), Some(indicator(2).as_str()));
}

#[test]
fn gzip_of_any_format_is_decoded_the_same() {
    let inputs: Vec<Vec<u8>> = vec![
        format!("[{},{}]", indicator(1), indicator(2)).into_bytes(),
        format!("{}\n{}\n", indicator(1), indicator(2)).into_bytes(),
        b"type,value\nip,198.51.100.7\n".to_vec(),
        b"example.com\n# c\n198.51.100.7".to_vec(),
    ];
    for input in inputs {
        let (plain, pf) = decode(&input);
        let (zipped, zf) = decode(&gzip(&input));
        assert_eq!(zipped, plain);
        assert_eq!(zf, pf);
        let mut d = Decoder::new(opts());
        d.push(&gzip(&input), &mut Vec::new()).unwrap();
        assert!(d.gzipped());
    }
    // Two gzip members back to back (`cat a.gz b.gz`) are one input.
    let mut two = gzip(b"example.com\n");
    two.extend(gzip(b"example.org\n"));
    let (out, _) = decode(&two);
    assert_eq!(out.len(), 2);
}

#[test]
fn gzip_bounds_and_corruption_stop_the_input() {
    let big = vec![b' '; 40 << 20];
    let mut body = b"[".to_vec();
    body.extend_from_slice(&big);
    body.extend_from_slice(b"]");
    let z = gzip(&body);
    let (_, f) = decode_with(&z, 1 << 16, opts());
    let e = f.unwrap_err();
    assert!(e.message.contains("compression-ratio bound"), "{e}");

    let o = InputOptions {
        max_decompressed_bytes: 1000,
        ..opts()
    };
    let (_, f) = decode_with(&gzip(&vec![b' '; 5000]), 1 << 16, o);
    assert!(f.unwrap_err().message.contains("more than 1000 bytes"));

    let z = gzip(format!("[{}]", indicator(1)).as_bytes());
    let (_, f) = decode_with(&z[..z.len() - 6], 16, opts());
    assert!(f.unwrap_err().message.contains("gzip"));
    let mut bad = z.clone();
    bad[12] ^= 0xFF;
    let (_, f) = decode_with(&bad, 16, opts());
    assert!(f.unwrap_err().message.contains("gzip"));
}

#[test]
fn utf16_from_powershell_is_decoded() {
    let text = format!("[\r\n{},\r\n{}\r\n]\r\n", indicator(1), indicator(2))
        .replace("ex1.example", "exé😀.example");
    let (want, wf) = decode(text.as_bytes());
    for (be, bom) in [(false, true), (true, true), (false, false), (true, false)] {
        let bytes = utf16(&text, be, bom);
        let (out, f) = decode(&bytes);
        assert_eq!(out, want, "be {be} bom {bom}");
        assert_eq!(f, wf);
        let mut d = Decoder::new(opts());
        d.push(&bytes, &mut Vec::new()).unwrap();
        assert_eq!(
            d.transcoded_from(),
            Some(if be { "UTF-16BE" } else { "UTF-16LE" })
        );
    }
    // A UTF-16 text list (PowerShell `Get-Content x | Out-File list.txt`).
    let (out, f) = decode(&utf16("example.com\r\n198.51.100.7\r\n", false, true));
    assert_eq!(f, Ok(InputFormat::Text));
    assert_eq!(out.len(), 2);

    let mut broken = utf16("[]", false, true);
    broken.extend_from_slice(&0xD800u16.to_le_bytes());
    broken.extend_from_slice(&0x0041u16.to_le_bytes());
    let e = decode(&broken).1.unwrap_err();
    assert!(
        e.message.contains("UTF-16LE") && e.message.contains("surrogate"),
        "{e}"
    );
    let e = decode(&utf16("[]", false, true)[..5]).1.unwrap_err();
    assert!(e.message.contains("UTF-16LE"), "{e}");
}

#[test]
fn utf32_and_bom_handling() {
    let e = decode(&[0xFF, 0xFE, 0, 0, b'[', 0, 0, 0]).1.unwrap_err();
    assert!(e.message.contains("UTF-32LE"), "{e}");
    let mut with_bom = vec![0xEF, 0xBB, 0xBF];
    with_bom.extend_from_slice(b"type,value\r\nip,198.51.100.7\r\n");
    let (out, f) = decode(&with_bom);
    assert_eq!(f, Ok(InputFormat::Csv));
    assert_eq!(out[0].line, 2);
    assert!(out[0].object.is_ok());
}

#[test]
fn empty_inputs_are_frame_errors() {
    for input in [&b""[..], b"  \n\n", b"\xEF\xBB\xBF"] {
        assert!(decode(input).1.is_err(), "{input:?}");
    }
    // A list whose entries are all commented out, or a CSV with only its header, is a valid
    // input with no records (a feed that is empty today).
    assert_eq!(
        decode(b"# only a comment\n"),
        (vec![], Ok(InputFormat::Text))
    );
    assert_eq!(decode(b"type,value\n"), (vec![], Ok(InputFormat::Csv)));
}

#[test]
fn ndjson_is_told_from_one_object_and_from_bundles() {
    let text = format!(
        "{}\n\n{}\r\n  {{\"type\": tru}}\n{}",
        indicator(1),
        indicator(2),
        indicator(3)
    );
    let (out, f) = decode(text.as_bytes());
    assert_eq!(f, Ok(InputFormat::Ndjson));
    assert_eq!(
        out.iter().map(|d| (d.index, d.line)).collect::<Vec<_>>(),
        [(0, 1), (1, 3), (2, 4), (3, 5)]
    );
    assert_eq!(out[2].object.as_ref().unwrap_err().code, Code::JsonInvalid);
    assert_eq!(
        ids(&out)[3],
        "indicator--6f1b5b7e-0000-4000-8000-000000000003"
    );

    // One object (pretty-printed or not) is stix-json.
    let (out, f) = decode(format!("{}\n", indicator(1)).as_bytes());
    assert_eq!((out.len(), f), (1, Ok(InputFormat::StixJson)));
    // A one-line bundle followed by more is a frame error, not NDJSON.
    let text = format!(
        "{{\"type\":\"bundle\",\"objects\":[{}]}}\n{}\n",
        indicator(1),
        indicator(2)
    );
    let (out, f) = decode(text.as_bytes());
    assert_eq!(out.len(), 1);
    assert!(f.unwrap_err().message.contains("nothing after the end"));
    // A pretty-printed object followed by another is not NDJSON either.
    let text = format!("{{\n\"a\": 1}}\n{}\n", indicator(2));
    assert!(decode(text.as_bytes()).1.is_err());
}

#[test]
fn oversize_records_are_reported_in_every_format() {
    let o = InputOptions {
        limits: FrameLimits {
            max_record_bytes: 300,
            ..FrameLimits::default()
        },
        ..opts()
    };
    let long = "a".repeat(400);
    let inputs = [
        format!("{}\n{{\"x\":\"{long}\"}}\n{}\n", indicator(1), indicator(2)),
        format!("example.com\n{long}.example\nexample.org\n"),
        format!("type,value\ndomain,example.com\ndomain,{long}.example\ndomain,example.org\n"),
    ];
    for input in inputs {
        let (out, f) = decode_with(input.as_bytes(), 5, o.clone());
        f.unwrap();
        assert_eq!(out.len(), 3, "{input}");
        assert_eq!(
            out[1].object.as_ref().unwrap_err().code,
            Code::RecordTooLarge
        );
        assert_eq!(out[1].original, None);
        assert!(out[2].object.is_ok());
    }
}

#[test]
fn graph_seed_example_is_graph() {
    let text = include_str!("../../tests/fixtures/graph/seed-example.json");
    let (out, f) = decode(text.as_bytes());
    assert_eq!(f, Ok(InputFormat::Graph));
    assert_eq!(out.len(), 2);
    // 2019 expiry: rejected now, with the reason.
    let e = out[0].object.as_ref().unwrap_err();
    assert_eq!(e.code, Code::InvalidValidity);
    let early = InputOptions {
        now: OffsetDateTime::parse("2019-02-01T00:00:00Z", &Rfc3339).unwrap(),
        ..opts()
    };
    let (out, _) = decode_with(text.as_bytes(), 100, early);
    let o = out[1].object.as_ref().unwrap();
    assert_eq!(
        o["pattern"],
        "[file:hashes.'SHA-256' = '1796b433950990b28d6a22456c9d2b58ced1bdfcdf5f16f7e39d6b9bdca4213b']"
    );
    assert_eq!(out[1].warnings[0].code, Code::Normalised);
    assert!(out[1].warnings[0].message.contains("trailing commas"));
}

#[test]
fn forced_formats_and_names() {
    for f in InputFormat::ALL {
        assert_eq!(f.name().parse::<InputFormat>(), Ok(f));
        assert_eq!(f.to_string(), f.name());
    }
    assert_eq!("CSV".parse::<InputFormat>(), Ok(InputFormat::Csv));
    assert!("xml"
        .parse::<InputFormat>()
        .unwrap_err()
        .contains("accepted: auto"));

    // A CSV-looking file forced to text: each line is an observable (the header is rejected).
    let o = InputOptions {
        format: Some(InputFormat::Text),
        ..opts()
    };
    let (out, f) = decode_with(b"type,value\nexample.com\n", 4, o);
    assert_eq!(f, Ok(InputFormat::Text));
    assert_eq!(out.len(), 2);
    // Forced CSV without a header it can place is a frame error naming the columns.
    let o = InputOptions {
        format: Some(InputFormat::Csv),
        ..opts()
    };
    let e = decode_with(b"a,b\n1,2\n", 4, o).1.unwrap_err();
    assert!(
        e.message
            .contains("the CSV header has no column to take an indicator from (columns: `a`, `b`)"),
        "{e}"
    );
    let o = InputOptions {
        format: Some(InputFormat::Ndjson),
        ..opts()
    };
    let (out, f) = decode_with(format!("{}\n", indicator(1)).as_bytes(), 4, o);
    assert_eq!((out.len(), f), (1, Ok(InputFormat::Ndjson)));
}

#[test]
fn errors_stick_and_finish_is_final() {
    let mut d = Decoder::new(opts());
    let mut out = Vec::new();
    d.push(b"[1 2", &mut out).unwrap_err();
    assert!(d.push(b"]", &mut out).is_err());
    assert!(d.finish(&mut out).is_err());

    let mut d = Decoder::new(opts());
    d.push(b"example.com", &mut out).unwrap();
    assert_eq!(d.finish(&mut out), Ok(InputFormat::Text));
    assert_eq!(d.finish(&mut out), Ok(InputFormat::Text));
    assert!(d.push(b"x", &mut out).is_err());
}

#[test]
fn trailing_commas_only_outside_strings() {
    assert_eq!(
        without_trailing_commas("{\"a\": \",}\", \"b\": [1, 2, ],\n}").as_deref(),
        Some("{\"a\": \",}\", \"b\": [1, 2 ]\n}")
    );
    assert_eq!(without_trailing_commas("{\"a\": 1}"), None);
}

#[test]
fn invalid_utf8_lines_are_records_not_frame_errors() {
    let (out, f) = decode(b"example.com\nexa\xE9mple.com\n# caf\xE9\nexample.org\n");
    f.unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[1].object.as_ref().unwrap_err().code,
        Code::InvalidEncoding
    );
    assert_eq!(out[1].line, 2);
}

/// Options with a small record bound, so the bound is within reach of short inputs.
fn small(max: usize) -> InputOptions {
    let mut o = opts();
    o.limits.max_record_bytes = max;
    o
}

/// Decodes `input` with `o` whole and in several chunkings, checks they all agree.
fn decode_opts(input: &[u8], o: &InputOptions) -> (Vec<Decoded>, Result<InputFormat, FrameError>) {
    let whole = decode_with(input, input.len(), o.clone());
    for size in [1, 2, 3, 7, 64] {
        let (out, f) = decode_with(input, size, o.clone());
        assert_eq!(out, whole.0, "chunk size {size}");
        assert_eq!(f, whole.1, "chunk size {size}");
    }
    whole
}

#[test]
fn an_input_error_late_in_a_chunk_keeps_the_records_before_it() {
    // F1, gzip: a member with a bad CRC after its records.
    let mut z = gzip(b"198.51.100.7\nexample.com\n");
    let n = z.len();
    z[n - 8] ^= 0xFF;
    let (out, f) = decode(&z);
    assert_eq!(out.len(), 2);
    assert!(f.unwrap_err().message.contains("gzip"));

    // The decompressed-size bound: the records within the bound count, however it is cut.
    let o = InputOptions {
        max_decompressed_bytes: 1000,
        ..opts()
    };
    let z = gzip("198.51.100.7\n".repeat(200).as_bytes());
    let (out, f) = decode_opts(&z, &o);
    assert_eq!(out.len(), 1000 / 13);
    assert!(f.unwrap_err().message.contains("more than 1000 bytes"));

    // F1, UTF-16: an unpaired low surrogate after a record.
    let mut input = utf16("[{\"a\":1},", true, true);
    input.extend_from_slice(&[0xDC, 0x00, 0x00, b'1']);
    let (out, f) = decode(&input);
    assert_eq!(out.len(), 1);
    assert!(f.unwrap_err().message.contains("unpaired surrogate"));
}

#[test]
fn invalid_utf8_originals_stay_within_the_record_bound() {
    let o = small(16);
    let (out, f) = decode_opts(
        b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\nexample.com\n",
        &o,
    );
    f.unwrap();
    let original = out[0].original.as_deref().unwrap();
    assert!(original.len() <= 16, "{original:?}");
    assert!(original.starts_with('\u{FFFD}') && original.ends_with('…'));
    let p = out[0].object.as_ref().unwrap_err();
    assert_eq!(p.code, Code::InvalidEncoding);
    assert!(
        p.message.contains("cut to the 16-byte record bound"),
        "{}",
        p.message
    );
    // A short one is kept whole, without the note.
    let (out, _) = decode_opts(b"exa\xE9mple.com\n", &o);
    assert_eq!(out[0].original.as_deref(), Some("exa\u{FFFD}mple.com"));
    assert!(!out[0].object.as_ref().unwrap_err().message.contains("cut"));
    // An unterminated quoted CSV field, too.
    let (out, _) = decode_opts(
        b"type,value\nip,\"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
        &o,
    );
    let original = out[0].original.as_deref().unwrap();
    assert!(original.len() <= 16, "{original:?}");
    assert_eq!(out[0].object.as_ref().unwrap_err().code, Code::CsvInvalid);
}

#[test]
fn detection_skips_comments_and_does_not_depend_on_the_chunking() {
    let o = small(32);
    let comment = format!("# {}\n", "x".repeat(100));
    // A long comment before a CSV header: CSV, the comment skipped.
    let input = format!("{comment}type,value\nipv4,198.51.100.7\n");
    let (out, f) = decode_opts(input.as_bytes(), &o);
    assert_eq!(f, Ok(InputFormat::Csv));
    assert_eq!((out.len(), out[0].line), (1, 3));
    assert!(out[0].object.is_ok());
    // Before text lines, and after them (a long comment is a comment, not an oversize record).
    let input = format!("  {comment}\n198.51.100.7\n{comment}example.com\n");
    let (out, f) = decode_opts(input.as_bytes(), &o);
    assert_eq!(f, Ok(InputFormat::Text));
    assert_eq!(out.iter().map(|d| d.line).collect::<Vec<_>>(), [3, 5]);
    assert!(out.iter().all(|d| d.object.is_ok()));
    // A quote in a comment does not open a CSV field.
    let input = "type,value\n# it's \"quoted\n1.2.3.4,x\nipv4,198.51.100.7\n";
    let (out, f) = decode_opts(input.as_bytes(), &o);
    assert_eq!(f, Ok(InputFormat::Csv));
    assert_eq!(out.iter().map(|d| d.line).collect::<Vec<_>>(), [3, 4]);
    // A first data line over the bound is text (an oversize record), complete or not.
    let header = "type,value,description,confidence,tags\nipv4,198.51.100.7,x,1,y\n";
    let (out, f) = decode_opts(header.as_bytes(), &o);
    assert_eq!(f, Ok(InputFormat::Text));
    assert_eq!(
        out[0].object.as_ref().unwrap_err().code,
        Code::RecordTooLarge
    );
    // Whitespace before JSON, however long, is still JSON; before a line it counts in the line.
    let input = format!("{}\n   {{\"type\":\"x\"}}", " ".repeat(100));
    let (out, f) = decode_opts(input.as_bytes(), &o);
    assert_eq!((out.len(), out[0].line), (1, 2));
    assert!(f.is_ok());
    let input = format!("{}x\n198.51.100.7\n", " ".repeat(100));
    let (out, f) = decode_opts(input.as_bytes(), &o);
    assert_eq!(f, Ok(InputFormat::Text));
    assert!(out[0]
        .object
        .as_ref()
        .unwrap_err()
        .message
        .contains("101 bytes"));
    assert_eq!(out[1].line, 2);
    // Only whitespace is empty, however long; only comments is a text input with no records.
    assert!(decode_opts(" \n".repeat(100).as_bytes(), &o).1.is_err());
    assert_eq!(
        decode_opts(comment.repeat(3).as_bytes(), &o),
        (vec![], Ok(InputFormat::Text))
    );
}

#[test]
fn forced_text_and_csv_skip_long_comments() {
    let comment = format!("# {}\n", "x".repeat(100));
    for format in [InputFormat::Text, InputFormat::Csv] {
        let mut o = small(32);
        o.format = Some(format);
        let input = format!("{comment}type,value\n{comment}ipv4,198.51.100.7\n");
        let (out, f) = decode_opts(input.as_bytes(), &o);
        assert_eq!(f, Ok(format));
        assert!(
            out.iter()
                .all(|d| d.object.as_ref().err().map(|p| p.code) != Some(Code::RecordTooLarge)),
            "{format}: {out:?}"
        );
    }
}

#[test]
fn a_csv_header_with_a_duplicate_column_is_refused() {
    let (out, f) = decode(b"type,type,value\nipv4,domain,1.2.3.4\n");
    assert!(out.is_empty());
    let e = f.unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("'type' twice (columns 1 and 2)"), "{e}");
    let (_, f) = decode(b"observableType,value,Type\nipv4,1.2.3.4,ip\n");
    let e = f.unwrap_err();
    assert!(
        e.message
            .contains("'observableType' (column 1) and 'Type' (column 3)"),
        "{e}"
    );
    // Columns that are ignored anyway may repeat.
    let (out, f) = decode(b"type,value,remark,remark\nipv4,1.2.3.4,a,b\n");
    assert_eq!(f, Ok(InputFormat::Csv));
    assert!(out[0].object.is_ok());
}

/// Every kind of JSON record a chunk can hold, many of them: one whole-input push queues all but
/// the first for [`Chunk::decode`], while the small chunkings of [`decode`] decode each record in
/// a chunk of its own; both must give the same records in the same order.
fn mixed_records(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| match i % 6 {
            0 | 1 => indicator(i),
            2 => format!(r#"{{"id": "broken {i}", "#),
            3 => indicator(i).replace(r#""valid_from""#, r#""x":[1,2,],"valid_from""#),
            4 => format!("[{i}]"),
            _ => format!(
                r#"{{"action":"alert","targetProduct":"Azure Sentinel","threatType":"Botnet","tlpLevel":"green","expirationDateTime":"2027-01-01T00:00:00Z","domainName":"ti{i}.example","description":"d{i}"}}"#
            ),
        })
        .collect()
}

#[test]
fn queued_records_decode_like_records_decoded_one_at_a_time_in_order() {
    let records = mixed_records(300);
    let ndjson = records.join("\n");
    let array = format!("[\n{}\n]", records.join(",\n"));
    for input in [ndjson, array] {
        // `decode` compares the whole input in one chunk with chunk sizes 1 to 64.
        let (out, _) = decode(input.as_bytes());
        // In the array the unterminated record 2 swallows what follows it, so only the order
        // is checked for both; the NDJSON records are checked one by one below.
        let indexes: Vec<u64> = out.iter().map(|d| d.index).collect();
        assert_eq!(indexes, (0..out.len() as u64).collect::<Vec<_>>());
        assert!(out.windows(2).all(|w| w[0].line < w[1].line));
    }
    let (out, f) = decode(records.join("\n").as_bytes());
    assert_eq!(f, Ok(InputFormat::Ndjson));
    assert_eq!(out.len(), 300);
    for (i, d) in out.iter().enumerate() {
        assert_eq!(d.line, i as u64 + 1);
        assert_eq!(d.original.as_deref(), Some(records[i].as_str()));
        match i % 6 {
            0 | 1 => assert_eq!(
                d.object.as_ref().unwrap()["id"],
                format!("indicator--6f1b5b7e-0000-4000-8000-{i:012x}")
            ),
            2 => assert_eq!(d.object.as_ref().unwrap_err().code, Code::JsonInvalid),
            3 => {
                assert!(d.object.is_ok(), "record {i}: {:?}", d.object);
                assert_eq!(d.warnings[0].code, Code::Normalised);
            }
            4 => assert_eq!(d.object.as_ref().unwrap_err().code, Code::NotAnObject),
            _ => {
                let o = d.object.as_ref().unwrap();
                assert_eq!(
                    o["type"], "indicator",
                    "record {i}: a converted tiIndicator"
                );
                assert_eq!(
                    o["pattern"],
                    format!("[domain-name:value = 'ti{i}.example']")
                );
            }
        }
    }
}

#[test]
fn a_chunk_keeps_only_its_range_and_says_where_the_range_ended() {
    let input = mixed_records(100).join("\n");
    let mut d = Decoder::new(opts());
    let (mut chunk, r) = d.push_chunk(input.as_bytes());
    assert_eq!(r, Ok(()));
    // The last line is held back until the input ends.
    assert_eq!(chunk.len(), 99);
    assert_eq!(chunk.keep_range(&(10..40)), Some(40));
    let kept = chunk.decode();
    assert_eq!(
        kept.iter().map(|r| r.index).collect::<Vec<_>>(),
        (10..40).collect::<Vec<_>>()
    );
    assert_eq!(ids(&kept), ids(&decode(input.as_bytes()).0[10..40]));
    let (mut last, f) = d.finish_chunk();
    assert_eq!(f, Ok(InputFormat::Ndjson));
    assert_eq!(last.keep_range(&(10..40)), Some(99));
    assert!(last.is_empty());
}

/// A whole input that is one JSON object of no known shape is an input error naming the shapes
/// ti-ingest reads, not one record missing `created`; the same object as an NDJSON line is a
/// record like any other.
#[test]
fn one_json_object_of_no_known_shape_is_an_input_error() {
    for input in [
        &b"{\"hello\":\"world\"}"[..],
        b"\n  {\"hello\": \"world\"}\n\n",
    ] {
        let (out, r) = decode(input);
        assert!(out.is_empty(), "{out:?}");
        let e = r.unwrap_err();
        assert!(e.message.starts_with("the input is one JSON object (properties 'hello') of no shape ti-ingest reads. Accepted JSON inputs: a STIX object (with \"type\"), a STIX bundle"), "{}", e.message);
        assert!(
            e.message.contains("Sentinel upload request"),
            "{}",
            e.message
        );
        assert!(e.message.contains("Graph tiIndicator"), "{}", e.message);
    }
    // Broken after the object anyway: that input error, and the object counts as a record.
    let (out, r) = decode(b"{\"hello\":\"world\"} \xC3");
    assert!(r.unwrap_err().message.contains("multi-byte"));
    assert_eq!(out.len(), 1);
    let (out, r) = decode(b"{\"hello\":\"world\"}\n{\"hello\":\"again\"}\n");
    assert_eq!(r, Ok(InputFormat::Ndjson));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].original.as_deref(), Some("{\"hello\":\"world\"}"));
    // Known shapes are unaffected: a STIX object, a tiIndicator, a bundle.
    let (out, r) = decode(b"{\"type\":\"indicator\"}");
    assert_eq!((out.len(), r), (1, Ok(InputFormat::StixJson)));
    let (out, r) = decode(b"{\"domainName\":\"evil.example.com\",\"action\":\"alert\"}");
    assert_eq!((out.len(), r), (1, Ok(InputFormat::Graph)));
    let (out, r) = decode(b"{\"type\":\"bundle\",\"objects\":[]}");
    assert_eq!((out.len(), r), (0, Ok(InputFormat::StixBundle)));
}

/// A record nested deeper than the bound (64) is that record's `record_too_deep`, in a JSON
/// array, a bundle and NDJSON alike; the records around it are read and counted.
#[test]
fn a_record_nested_too_deep_is_its_own_error_between_good_records() {
    let good = |i: u32| {
        format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--6f1b5b7e-0000-4000-8000-{i:012x}","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","pattern":"[domain-name:value = 'example.com']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}}"#
        )
    };
    let deep = format!(
        r#"{{"type":"indicator","x":{}1{}}}"#,
        "[".repeat(99),
        "]".repeat(99)
    );
    for (input, format) in [
        (
            format!("[{},\n{deep},\n{}]", good(1), good(2)),
            InputFormat::StixJson,
        ),
        (
            format!(
                r#"{{"type":"bundle","id":"bundle--6f1b5b7e-0000-4000-8000-000000000000","objects":[{},{deep},{}]}}"#,
                good(1),
                good(2)
            ),
            InputFormat::StixBundle,
        ),
        (
            format!("{}\n{deep}\n{}\n", good(1), good(2)),
            InputFormat::Ndjson,
        ),
    ] {
        let (out, f) = decode(input.as_bytes());
        assert_eq!(f, Ok(format), "{input:.60}");
        assert_eq!(out.len(), 3);
        assert!(out[0].object.is_ok() && out[2].object.is_ok());
        let p = out[1].object.as_ref().unwrap_err();
        assert_eq!(p.code, Code::RecordTooDeep);
        assert_eq!(
            p.message,
            "the record nests arrays and objects deeper than 64 levels, the nesting bound"
        );
        assert_eq!(out[1].original.as_deref(), Some(deep.as_str()));
        assert_eq!((out[1].index, out[2].index), (1, 2));
    }
}

#[test]
fn csv_headers_are_detected_by_form_not_by_knowing_the_columns() {
    let format = |input: &str| decode(input.as_bytes()).1;
    // Headers: a known column, or only plain column names (then an input error if none can be
    // placed), quoted, after a BOM and a banner.
    assert_eq!(
        format("value,entity_type,description\n"),
        Ok(InputFormat::Csv)
    );
    assert_eq!(
        format("\u{feff}# banner\n#\n\"first_seen_utc\",\"dst_ip\"\n"),
        Ok(InputFormat::Csv)
    );
    let e = format("first_seen_utc,dst_port,malware\n2026-07-01,443,x\n").unwrap_err();
    assert!(
        e.message
            .contains("(columns: `first_seen_utc`, `dst_port`, `malware`)"),
        "{e}"
    );
    // A header row in a comment, with as many fields as the first row.
    assert_eq!(
        format("# ip, comment\n198.51.100.7, c2\n"),
        Ok(InputFormat::Csv)
    );
    assert_eq!(
        format("# ip, comment\n198.51.100.7\n"),
        Ok(InputFormat::Text)
    );
    // Text: a first line with an observable, a heading with spaces, a file name with a dot.
    assert_eq!(format("198.51.100.7,c2\n"), Ok(InputFormat::Text));
    assert_eq!(
        format("hxxp://evil[.]example/a, c2\n"),
        Ok(InputFormat::Text)
    );
    assert_eq!(
        format("Network indicators, C2\nevil.example\n"),
        Ok(InputFormat::Text)
    );
    assert_eq!(format("Setup2.exe, loader\n"), Ok(InputFormat::Text));
    assert_eq!(format("evil.example\n"), Ok(InputFormat::Text));
}

/// A few KiB of gzip expand to hundreds of thousands of tiny lines: fed with a record budget,
/// the decoder hands them out a bounded slice at a time, consuming only part of the chunk, and
/// the slices together are exactly the records of an unlimited decode.
#[test]
fn a_record_budget_bounds_the_records_of_each_push_however_much_a_chunk_expands() {
    let lines = 200_000;
    let text = "x\n".repeat(lines);
    for input in [gzip(text.as_bytes()), text.clone().into_bytes()] {
        assert!(input.len() < 4096 || input.len() == text.len());
        let mut d = Decoder::new(opts());
        let mut rest = &input[..];
        let (mut total, mut calls, mut last_index) = (0usize, 0, None);
        while !rest.is_empty() {
            let (chunk, consumed, r) = d.push_chunk_limited(rest, 4096);
            r.unwrap();
            assert!(consumed > 0 || chunk.len() >= 4096);
            assert!(chunk.len() <= 4096 + 16 * 1024, "{} records", chunk.len());
            for item in chunk.decode() {
                assert_eq!(
                    Some(item.index),
                    last_index.map_or(Some(0), |i: u64| Some(i + 1))
                );
                last_index = Some(item.index);
                assert_eq!(item.object.unwrap_err().code, Code::NotAnIndicator);
                total += 1;
            }
            rest = &rest[consumed..];
            calls += 1;
        }
        let (chunk, f) = d.finish_chunk();
        total += chunk.len();
        assert_eq!(f, Ok(InputFormat::Text));
        assert_eq!(total, lines);
        assert!(calls >= lines / (4096 + 16 * 1024), "{calls} calls");
    }
}

#[test]
fn csv_rows_are_split_as_rfc_4180_reads_them() {
    let mut s = RowSplitter::default();
    assert_eq!(s.fields("type,value"), ["type", "value"]);
    assert_eq!(
        s.fields("\"a,b\",\"say \"\"hi\"\"\",,\"multi\nline\","),
        ["a,b", "say \"hi\"", "", "multi\nline", ""]
    );
    // A stray quote inside a field is kept, as the csv crate does.
    assert_eq!(
        s.fields("domain,ev\"il.example"),
        ["domain", "ev\"il.example"]
    );
    assert_eq!(s.fields("é,ü"), ["é", "ü"]);
    assert_eq!(s.fields("one"), ["one"]);
    assert!(s.fields("").is_empty());
    // ThreatFox puts a space after each comma, before the opening quote.
    assert_eq!(
        s.fields(
            "\"2026-07-01 10:00:00\", \"1\", \"198.51.100.41:443\", \"a, b\",\t\"x\"\"y\" , z"
        ),
        [
            "2026-07-01 10:00:00",
            "1",
            "198.51.100.41:443",
            "a, b",
            "x\"y ",
            " z"
        ]
    );
    // The reader is reused: the next row starts clean.
    assert_eq!(s.fields("x,y,z"), ["x", "y", "z"]);
}

/// Lines ended by a lone CR (Excel for Mac's "CSV (Macintosh)", classic Mac OS text) are read as
/// lines, with their line numbers, in every format that reads lines; whatever the chunking.
#[test]
fn lone_cr_line_endings_are_lines() {
    let (out, f) = decode(b"type,value\ripv4,198.51.100.7\rdomain,evil.example\r");
    assert_eq!(f, Ok(InputFormat::Csv));
    assert_eq!(out.len(), 2);
    assert_eq!(out.iter().map(|d| d.line).collect::<Vec<_>>(), [2, 3]);
    assert!(out.iter().all(|d| d.object.is_ok()), "{out:?}");

    let (out, f) = decode(b"# a list\r198.51.100.7\revil.example\r");
    assert_eq!(f, Ok(InputFormat::Text));
    assert_eq!(out.iter().map(|d| d.line).collect::<Vec<_>>(), [2, 3]);

    let ndjson = format!("{}\r{}\r", indicator(1), indicator(2));
    let (out, f) = decode(ndjson.as_bytes());
    assert_eq!(f, Ok(InputFormat::Ndjson));
    assert_eq!(ids(&out).len(), 2);
    assert_eq!(out[1].line, 2);

    // CRLF and LF inputs are handed on unchanged: a CR inside a CRLF file's CSV field stays.
    let (out, _) = decode(b"type,value,description\r\nipv4,198.51.100.7,\"a\rb\"\r\n");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].object.as_ref().unwrap()["description"], "a\rb");
}

#[test]
fn records_framed_elsewhere_decode_as_the_elements_of_an_array() {
    let limits = FrameLimits {
        max_record_bytes: 400,
        max_depth: 8,
    };
    let o = InputOptions {
        format: Some(InputFormat::StixJson),
        limits,
        ..opts()
    };
    let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let texts = vec![
        indicator(1),
        // Balanced but not JSON: rejected when parsed, like any array element.
        r#"{"a": tru}"#.to_string(),
        // As deep as an array's element may go, then one level more.
        format!(r#"{{"x": {}}}"#, nested(6)),
        format!(r#"{{"x": {}}}"#, nested(7)),
        // Over the size bound.
        format!(r#"{{"x": "{}"}}"#, "a".repeat(500)),
        "5".to_string(),
        indicator(2),
    ];
    let array = format!("[{}]", texts.join(",\n"));
    let (framed, format) = decode_with(array.as_bytes(), array.len(), o.clone());
    assert_eq!(format, Ok(InputFormat::StixJson));
    let records = texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| RawRecord {
            index: i as u64,
            line: i as u64 + 1,
            text,
        })
        .collect();
    let handed = Chunk::of_json_records(records, &o).decode();
    assert_eq!(handed.len(), 7);
    let codes: Vec<Option<Code>> = handed
        .iter()
        .map(|d| d.object.as_ref().err().map(|p| p.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(Code::JsonInvalid),
            None,
            Some(Code::RecordTooDeep),
            Some(Code::RecordTooLarge),
            Some(Code::NotAnObject),
            None
        ]
    );
    assert_eq!(handed, framed);
}
