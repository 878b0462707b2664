//! Framer tests: every input shape, every error, and the chunking property (the same bytes give
//! the same items and result however they are split).

use super::*;

/// Frames `input` cut at `cuts` (sorted offsets); stops at the first error like a caller would.
fn frame_cut(
    input: &[u8],
    limits: FrameLimits,
    cuts: &[usize],
) -> (Vec<FrameItem>, Result<InputFormat, FrameError>) {
    let mut framer = Framer::new(limits);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        if let Err(e) = framer.push(&input[start..cut], &mut out) {
            return (out, Err(e));
        }
        start = cut;
    }
    let result = framer.finish(&mut out);
    (out, result)
}

fn frame(input: &[u8]) -> (Vec<FrameItem>, Result<InputFormat, FrameError>) {
    frame_cut(input, FrameLimits::default(), &[])
}

/// (line, text) of each record; panics on oversize items.
fn records(items: &[FrameItem]) -> Vec<(u64, &str)> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            FrameItem::Record(r) => {
                assert_eq!(r.index, i as u64, "indices are dense and in order");
                (r.line, r.text.as_str())
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn texts(items: &[FrameItem]) -> Vec<&str> {
    records(items).into_iter().map(|(_, t)| t).collect()
}

fn ok(input: &str) -> (Vec<FrameItem>, InputFormat) {
    let (items, result) = frame(input.as_bytes());
    let format = result.unwrap_or_else(|e| panic!("{input:?}: {e}"));
    (items, format)
}

fn err(input: &[u8]) -> (Vec<FrameItem>, FrameError) {
    let (items, result) = frame(input);
    match result {
        Ok(f) => panic!(
            "{:?} should fail, got {f:?}",
            String::from_utf8_lossy(input)
        ),
        Err(e) => (items, e),
    }
}

// --- shapes -----------------------------------------------------------------------------------

#[test]
fn array_elements_are_records_with_their_exact_text() {
    let input = r#"[{"a":1}, {"b":"x\"y\\"} ,{"c":[1,2,{"d":"]}"}]},{}]"#;
    let (items, format) = ok(input);
    assert_eq!(format, InputFormat::StixJson);
    assert_eq!(
        texts(&items),
        [
            r#"{"a":1}"#,
            r#"{"b":"x\"y\\"}"#,
            r#"{"c":[1,2,{"d":"]}"}]}"#,
            "{}"
        ]
    );
}

#[test]
fn empty_array_has_no_records() {
    let (items, format) = ok(" [ \n ] \n");
    assert!(items.is_empty());
    assert_eq!(format, InputFormat::StixJson);
}

#[test]
fn non_object_and_malformed_elements_are_still_records() {
    // Boundaries only: deciding what a record is worth is parse_record's job.
    let (items, _) = ok(r#"[1, "x" ,tru,null, -2.5e3 , [], {"a": tru}, {"a" "b"}]"#);
    assert_eq!(
        texts(&items),
        [
            "1",
            r#""x""#,
            "tru",
            "null",
            "-2.5e3",
            "[]",
            r#"{"a": tru}"#,
            r#"{"a" "b"}"#
        ]
    );
}

#[test]
fn bundle_objects_are_records() {
    let input = "{\n \"type\": \"bundle\",\n \"id\": \"bundle--1\",\n \"objects\": [\n  {\"type\":\"indicator\",\"name\":\"ünï ☃ 😀\"},\n  {\"x\":\"\\u00e9\"}\n ]\n}\n";
    let (items, format) = ok(input);
    assert_eq!(format, InputFormat::StixBundle);
    assert_eq!(
        records(&items),
        [
            (5, "{\"type\":\"indicator\",\"name\":\"ünï ☃ 😀\"}"),
            (6, "{\"x\":\"\\u00e9\"}")
        ]
    );
}

#[test]
fn bundle_whose_type_comes_after_its_objects() {
    let (items, format) = ok(r#"{"objects":[{"a":1},{"b":2}],"id":"bundle--1","type":"bundle"}"#);
    assert_eq!(format, InputFormat::StixBundle);
    assert_eq!(texts(&items), [r#"{"a":1}"#, r#"{"b":2}"#]);
    // `type: bundle` wins over a Sentinel key.
    let (_, format) = ok(r#"{"stixobjects":[],"type":"bundle"}"#);
    assert_eq!(format, InputFormat::StixBundle);
    // `objects` without a type is still a bundle (STIX 2.0 producers sometimes omit it).
    let (_, format) = ok(r#"{"objects":[{}]}"#);
    assert_eq!(format, InputFormat::StixBundle);
}

#[test]
fn sentinel_requests_are_recognised() {
    for key in ["stixobjects", "indicators", "value"] {
        let input = format!(r#"{{"sourcesystem":"feed","{key}":[{{"id":1}},{{"id":2}}]}}"#);
        let (items, format) = ok(&input);
        assert_eq!(format, InputFormat::SentinelRequest, "{key}");
        assert_eq!(texts(&items), [r#"{"id":1}"#, r#"{"id":2}"#]);
    }
}

#[test]
fn graph_style_trailing_commas_are_tolerated_in_the_outer_structure() {
    // The Graph documentation's example has trailing commas inside and after each element.
    let input = "{\n  \"value\": [\n    {\n      \"a\": 1,\n    },\n    {\n      \"b\": 2,\n    },\n  ],\n}";
    let (items, format) = ok(input);
    assert_eq!(format, InputFormat::SentinelRequest);
    assert_eq!(
        records(&items),
        [
            (3, "{\n      \"a\": 1,\n    }"),
            (6, "{\n      \"b\": 2,\n    }")
        ]
    );
    assert_eq!(texts(&ok("[1,2,]").0), ["1", "2"]);
}

#[test]
fn single_object_is_one_record() {
    // `objects` holding an object (STIX 2.0 observed-data) does not make a bundle, nor does a
    // record array nested deeper than the top level.
    let input = "\n {\"type\":\"observed-data\",\"objects\":{\"0\":{\"type\":\"file\"}},\"x\":[1,{\"y\":\"}\"}],\"value\":\"v\"} \n";
    let (items, format) = ok(input);
    assert_eq!(format, InputFormat::StixJson);
    assert_eq!(records(&items), [(2, input.trim())]);
    let (items, _) = ok("{}");
    assert_eq!(texts(&items), ["{}"]);
    // An escaped key is not one of the container keys.
    let (items, format) = ok(r#"{"obj\u0065cts":[1]}"#);
    assert_eq!(
        (texts(&items), format),
        (vec![r#"{"obj\u0065cts":[1]}"#], InputFormat::StixJson)
    );
}

#[test]
fn nested_container_keys_inside_other_members_are_not_record_arrays() {
    let (items, format) =
        ok(r#"{"x":{"objects":[1,2]},"type":"bundle","y":[{"objects":[3]}],"objects":[{"a":1}]}"#);
    assert_eq!(format, InputFormat::StixBundle);
    assert_eq!(texts(&items), [r#"{"a":1}"#]);
}

#[test]
fn records_are_emitted_before_the_top_level_value_ends() {
    let mut framer = Framer::new(FrameLimits::default());
    let mut out = Vec::new();
    framer
        .push(
            br#"{"type":"bundle","objects":[{"a":1},{"b":2},{"c""#,
            &mut out,
        )
        .unwrap();
    assert_eq!(texts(&out), [r#"{"a":1}"#, r#"{"b":2}"#]);
    framer.push(br#":3}]}"#, &mut out).unwrap();
    assert_eq!(framer.finish(&mut out).unwrap(), InputFormat::StixBundle);
    assert_eq!(out.len(), 3);
}

#[test]
fn byte_order_mark_is_skipped() {
    let (items, format) = ok("\u{feff}[{\"a\":1}]");
    assert_eq!(
        (texts(&items), format),
        (vec![r#"{"a":1}"#], InputFormat::StixJson)
    );
    let (items, _) = ok("\u{feff}\n{\"a\":1}");
    assert_eq!(records(&items), [(2, r#"{"a":1}"#)]);
}

#[test]
fn line_numbers_are_where_each_record_starts() {
    let input = "[\n  {\"a\":1},\n\n  {\"b\":\n2},   {\"c\":\"x\\ny\"}\r\n,{\"d\":4}\n,\n\n\n5]";
    let (items, _) = ok(input);
    assert_eq!(
        records(&items),
        [
            (2, "{\"a\":1}"),
            (4, "{\"b\":\n2}"),
            (5, "{\"c\":\"x\\ny\"}"),
            (6, "{\"d\":4}"),
            (10, "5"),
        ]
    );
}

// --- oversize and memory ------------------------------------------------------------------------

fn small(max_record_bytes: usize) -> FrameLimits {
    FrameLimits {
        max_record_bytes,
        max_depth: 64,
    }
}

#[test]
fn oversize_records_are_skipped_and_counted() {
    let input =
        "[{\"a\":\"0123456789abcdef\"},\n{\"b\":1}, \"0123456789abcdefgh\", 12345678901234567]";
    let (items, result) = frame_cut(input.as_bytes(), small(16), &[]);
    assert_eq!(result.unwrap(), InputFormat::StixJson);
    assert_eq!(
        items,
        [
            FrameItem::Oversize {
                index: 0,
                line: 1,
                bytes: 24
            },
            FrameItem::Record(RawRecord {
                index: 1,
                line: 2,
                text: "{\"b\":1}".into()
            }),
            FrameItem::Oversize {
                index: 2,
                line: 2,
                bytes: 20
            },
            FrameItem::Oversize {
                index: 3,
                line: 2,
                bytes: 17
            },
        ]
    );
    // Exactly at the limit is fine.
    let (items, _) = frame_cut(b"[\"0123456789abcd\"]", small(16), &[]);
    assert_eq!(texts(&items), ["\"0123456789abcd\""]);
}

#[test]
fn oversize_single_object() {
    let input = br#"{"type":"indicator","description":"far too long for the limit"}"#;
    let (items, result) = frame_cut(input, small(32), &[]);
    assert_eq!(result.unwrap(), InputFormat::StixJson);
    assert_eq!(
        items,
        [FrameItem::Oversize {
            index: 0,
            line: 1,
            bytes: input.len() as u64
        }]
    );
    // A bundle's own size does not count, only its objects'.
    let input = br#"{"type":"bundle","x_padding":"0123456789012345678901234567890123456789","objects":[{"a":1}]}"#;
    let (items, result) = frame_cut(input, small(32), &[]);
    assert_eq!(result.unwrap(), InputFormat::StixBundle);
    assert_eq!(texts(&items), [r#"{"a":1}"#]);
}

#[test]
fn memory_stays_bounded_for_huge_records_and_inputs() {
    let limit = 4096;
    let mut framer = Framer::new(small(limit));
    let mut out = Vec::new();
    framer
        .push(b"{\"type\":\"bundle\",\"objects\":[", &mut out)
        .unwrap();
    // A 64 MiB record fed in 64 KiB chunks, then many small ones.
    framer.push(b"{\"description\":\"", &mut out).unwrap();
    let filler = vec![b'x'; 64 * 1024];
    for _ in 0..1024 {
        framer.push(&filler, &mut out).unwrap();
        assert!(framer.record.buf.capacity() <= 2 * limit);
    }
    framer.push(b"\"}", &mut out).unwrap();
    for _ in 0..10_000 {
        framer.push(b",{\"a\":1}", &mut out).unwrap();
        assert!(framer.record.buf.capacity() <= 2 * limit);
    }
    framer.push(b"]}", &mut out).unwrap();
    assert_eq!(framer.finish(&mut out).unwrap(), InputFormat::StixBundle);
    assert_eq!(out.len(), 10_001);
    assert_eq!(
        out[0],
        FrameItem::Oversize {
            index: 0,
            line: 1,
            bytes: 64 * 1024 * 1024 + 18
        }
    );
}

/// A record nested past the bound is that record's problem: its end is still found (the
/// brackets past the bound are counted, not kept), and the records around it are read.
#[test]
fn a_record_nested_too_deep_is_its_own_item_and_the_rest_is_read() {
    let deep = FrameLimits {
        max_record_bytes: 1 << 20,
        max_depth: 3,
    };
    for (input, format) in [
        (
            &b"[{\"a\":1},[[[1,{}],[2]]],\n{\"b\":2}]"[..],
            InputFormat::StixJson,
        ),
        (
            &b"{\"objects\":[{\"a\":1},{\"a\":[{\"x\":\"]]\"}]},\n{\"b\":2}]}"[..],
            InputFormat::StixBundle,
        ),
    ] {
        let (items, result) = frame_cut(input, deep, &[]);
        assert_eq!(result, Ok(format));
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(&items[0], FrameItem::Record(r) if r.index == 0));
        match &items[1] {
            FrameItem::TooDeep(r) => {
                assert_eq!(r.index, 1);
                assert!(input.windows(r.text.len()).any(|w| w == r.text.as_bytes()));
            }
            other => panic!("expected TooDeep, got {other:?}"),
        }
        assert!(matches!(&items[2], FrameItem::Record(r) if r.index == 2 && r.line == 2));
        // Chunked byte by byte, the same.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(frame_cut(input, deep, &cuts), (items, Ok(format)));
    }
    // 100 levels between two good records, with the default bound of 64.
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let input = format!("[{{\"a\":1}},{nested},{{\"b\":2}}]");
    let (items, result) = frame(input.as_bytes());
    assert_eq!(result, Ok(InputFormat::StixJson));
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[1],
        FrameItem::TooDeep(RawRecord {
            index: 1,
            line: 1,
            text: nested
        })
    );
}

// --- errors -------------------------------------------------------------------------------------

#[test]
fn frame_errors() {
    let deep = FrameLimits {
        max_record_bytes: 1 << 20,
        max_depth: 3,
    };
    let cases: &[(&[u8], FrameLimits, u64, &str)] = &[
        (b"", FrameLimits::default(), 1, "empty input"),
        (b"  \n\t \r\n ", FrameLimits::default(), 3, "empty input"),
        (b"\xEF\xBB\xBF", FrameLimits::default(), 1, "empty input"),
        (b"\xEF\xBB[]", FrameLimits::default(), 1, "invalid UTF-8"),
        (
            b"42",
            FrameLimits::default(),
            1,
            "expected a JSON array '[' or object '{' at the start of the input, found '4'",
        ),
        (b"\n\"x\"", FrameLimits::default(), 2, "found '\"'"),
        (b"null", FrameLimits::default(), 1, "found 'n'"),
        (
            b"[{]",
            FrameLimits::default(),
            1,
            "unbalanced brackets: found ']' where '}' was expected",
        ),
        (
            b"[{\"a\":[1}]",
            FrameLimits::default(),
            1,
            "unbalanced brackets: found '}' where ']' was expected",
        ),
        (
            b"[}",
            FrameLimits::default(),
            1,
            "expected record 0 or ']', found '}'",
        ),
        (
            b"{\"objects\":[1]]",
            FrameLimits::default(),
            1,
            "expected ',' or '}' after a value, found ']'",
        ),
        (
            b"[]\n]",
            FrameLimits::default(),
            2,
            "expected nothing after the end of the top-level value, found ']'",
        ),
        (
            b"[] x",
            FrameLimits::default(),
            1,
            "nothing after the end of the top-level value, found 'x'",
        ),
        (b"[][]", FrameLimits::default(), 1, "nothing after the end"),
        (
            b"{}\n{}",
            FrameLimits::default(),
            2,
            "nothing after the end",
        ),
        (
            b"[{\"a\":1}",
            FrameLimits::default(),
            1,
            "the top-level array is not closed",
        ),
        (
            b"[\n{\"a\":\"x",
            FrameLimits::default(),
            2,
            "end of input inside record 0 (which starts on line 2)",
        ),
        (b"[1", FrameLimits::default(), 1, "inside record 0"),
        (
            b"{\"objects\":[",
            FrameLimits::default(),
            1,
            "the top-level object is not closed",
        ),
        (
            b"{\"a\":{\"b\":1}",
            FrameLimits::default(),
            1,
            "the top-level object is not closed",
        ),
        (
            b"{\"objects\":[{}]",
            FrameLimits::default(),
            1,
            "the top-level object is not closed",
        ),
        (
            b"{\"ke",
            FrameLimits::default(),
            1,
            "the top-level object is not closed",
        ),
        (b"{\"a\":[[[1]]]}", deep, 1, "nesting deeper than 3 levels"),
        (b"[[[[1]]]", deep, 1, "the top-level array is not closed"),
        (
            b"[\n\"\xFF\"]",
            FrameLimits::default(),
            2,
            "invalid UTF-8 at byte offset 3",
        ),
        (
            b"[{\"a\":\"\xE2\x28\"}]",
            FrameLimits::default(),
            1,
            "invalid UTF-8 at byte offset 7",
        ),
        (
            b"[\"\xE2\x82",
            FrameLimits::default(),
            1,
            "ends inside a multi-byte character",
        ),
        (
            b"[{} {}]",
            FrameLimits::default(),
            1,
            "expected ',' or ']' after record 0, found '{'",
        ),
        (
            b"[1,,2]",
            FrameLimits::default(),
            1,
            "expected record 1 or ']', found ','",
        ),
        (
            b"[,]",
            FrameLimits::default(),
            1,
            "expected record 0 or ']', found ','",
        ),
        (
            b"{\"a\" 1}",
            FrameLimits::default(),
            1,
            "expected ':' after a property name, found '1'",
        ),
        (
            b"{\"a\":}",
            FrameLimits::default(),
            1,
            "expected a value after ':', found '}'",
        ),
        (
            b"{\"a\":1 \"b\":2}",
            FrameLimits::default(),
            1,
            "expected ',' or '}' after a value, found '\"'",
        ),
        (
            b"{a:1}",
            FrameLimits::default(),
            1,
            "expected a property name or '}', found 'a'",
        ),
        (
            b"{,}",
            FrameLimits::default(),
            1,
            "expected a property name or '}', found ','",
        ),
    ];
    for (input, limits, line, message) in cases {
        let (_, result) = frame_cut(input, *limits, &[]);
        let e = result.expect_err(&String::from_utf8_lossy(input));
        assert!(
            e.message.contains(message) && e.line == *line,
            "{:?}: got line {} {:?}, want line {line} containing {message:?}",
            String::from_utf8_lossy(input),
            e.line,
            e.message
        );
    }
    let (_, result) = frame_cut(b"[[[1]]]", deep, &[]);
    assert!(result.is_ok());
}

#[test]
fn records_before_an_error_stay_emitted_and_the_error_sticks() {
    let (items, e) = err(b"[{\"a\":1},\n{\"b\":2} x");
    assert_eq!(texts(&items), [r#"{"a":1}"#, r#"{"b":2}"#]);
    assert_eq!(e.line, 2);
    assert_eq!(e.to_string(), format!("line 2: {}", e.message));

    let mut framer = Framer::new(FrameLimits::default());
    let mut out = Vec::new();
    let first = framer.push(b"[1] x", &mut out).unwrap_err();
    assert_eq!(framer.push(b"[]", &mut out).unwrap_err(), first);
    assert_eq!(framer.finish(&mut out).unwrap_err(), first);
}

#[test]
fn input_after_finish_is_an_error() {
    let mut framer = Framer::new(FrameLimits::default());
    let mut out = Vec::new();
    framer.push(b"[]", &mut out).unwrap();
    assert_eq!(framer.finish(&mut out).unwrap(), InputFormat::StixJson);
    assert_eq!(framer.finish(&mut out).unwrap(), InputFormat::StixJson);
    assert!(framer.push(b" ", &mut out).is_err());
}

// --- chunking property --------------------------------------------------------------------------

/// Inputs exercising strings, escapes (also `\\` before a quote), multi-byte UTF-8, BOMs, every
/// shape and a selection of errors.
fn corpus() -> Vec<(Vec<u8>, FrameLimits)> {
    let d = FrameLimits::default();
    let mut v: Vec<(Vec<u8>, FrameLimits)> = [
        "[{\"a\":1}, {\"b\":\"x\\\"y\\\\\"} ,{\"c\":[1,2,{\"d\":\"]}\"}]},{}]",
        "\u{feff}{\n \"type\": \"bundle\",\n \"objects\": [\n  {\"n\":\"ünï ☃ 😀\"},\n  {\"x\":\"\\u00e9\\\\\"}\n ]\n}\n",
        "{\"objects\":[{\"a\":\"\\\\\"},{\"b\":2}],\"type\":\"bundle\"}",
        "{\"sourcesystem\":\"é\",\"indicators\":[{\"id\":1},\n{\"id\":\"😀\"},],}",
        " {\"type\":\"observed-data\",\"objects\":{\"0\":{}},\"x\":[1,{\"y\":\"}\"}]} ",
        "[1, \"x\" ,tru,null, -2.5e3 , [], {\"a\": tru}]",
        "[\n  {\"a\":1},\n\n  {\"b\":\n2},   {\"c\":\"x\\ny\"}\r\n,{\"d\":4}\n,\n\n\n5]",
        "[{\"a\":1},{\"b\":2} x",
        "[{\"a\":[1}]",
        "[{\"a\":\"x",
        "{\"a\":1 \"b\":2}",
        "[] []",
    ]
    .iter()
    .map(|s| (s.as_bytes().to_vec(), d))
    .collect();
    v.push((b"[\"\xE2\x82\xAC\", \"\xE2\x28\"]".to_vec(), d));
    v.push((b"[\"\xF0\x9F\x98".to_vec(), d));
    v.push((b"\xEF\xBB\xBF\xEF\xBB\xBF[]".to_vec(), d));
    v.push((
        b"[{\"a\":\"0123456789abcdef\"},{\"b\":1},\"0123456789abcdefgh\",{\"c\":\"\xC3\xA9\"}]"
            .to_vec(),
        small(16),
    ));
    v.push((
        b"{\"x\":\"0123456789012345678901234567890123\",\"y\":{\"z\":[1,2,3]}}".to_vec(),
        small(16),
    ));
    v.push((
        b"[[[1]],[[[2]]]]".to_vec(),
        FrameLimits {
            max_record_bytes: 100,
            max_depth: 3,
        },
    ));
    v
}

/// A small deterministic generator, so the test needs no extra dependency and never flakes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn any_chunking_gives_the_same_items_and_result() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (input, limits) in corpus() {
        let expected = frame_cut(&input, limits, &[]);
        let name = String::from_utf8_lossy(&input).into_owned();
        // Every single cut, and every pair of cuts.
        for a in 0..=input.len() {
            assert_eq!(
                frame_cut(&input, limits, &[a]),
                expected,
                "{name:?} cut at {a}"
            );
            for b in a..=input.len() {
                assert_eq!(
                    frame_cut(&input, limits, &[a, b]),
                    expected,
                    "{name:?} cut at {a},{b}"
                );
            }
        }
        // One byte at a time, and with empty chunks in between.
        let ones: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            frame_cut(&input, limits, &ones),
            expected,
            "{name:?} 1-byte chunks"
        );
        let doubled: Vec<usize> = (1..input.len()).flat_map(|i| [i, i]).collect();
        assert_eq!(
            frame_cut(&input, limits, &doubled),
            expected,
            "{name:?} with empty chunks"
        );
        // Random cuts.
        for _ in 0..200 {
            let k = (rng.next() % 8) as usize;
            let mut cuts: Vec<usize> = (0..k)
                .map(|_| (rng.next() % (input.len() as u64 + 1)) as usize)
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                frame_cut(&input, limits, &cuts),
                expected,
                "{name:?} cuts {cuts:?}"
            );
        }
    }
}

#[test]
fn generated_arrays_round_trip_through_random_chunks() {
    // Random records made of the awkward bytes (quotes, backslashes, brackets inside strings,
    // multi-byte characters), random whitespace, random chunking: the records come back exact.
    let pieces = [
        "\\\\", "\\\"", "]", "}", "[", "{", "é", "😀", "a", " ", ",", ":", "\\n",
    ];
    let mut rng = XorShift(42);
    for _ in 0..300 {
        let mut expected = Vec::new();
        let mut input = String::from("[");
        let count = rng.next() % 6;
        for r in 0..count {
            let mut s = String::from("{\"k\":\"");
            for _ in 0..rng.next() % 12 {
                s.push_str(pieces[(rng.next() % pieces.len() as u64) as usize]);
            }
            s.push_str("\",\"n\":[1,{\"m\":[]}]}");
            if r > 0 {
                input.push(',');
            }
            for _ in 0..rng.next() % 3 {
                input.push_str([" ", "\n", "\t", "\r\n"][(rng.next() % 4) as usize]);
            }
            input.push_str(&s);
            expected.push(s);
        }
        input.push(']');
        let bytes = input.as_bytes();
        let k = (rng.next() % 10) as usize;
        let mut cuts: Vec<usize> = (0..k)
            .map(|_| (rng.next() % (bytes.len() as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        let (items, result) = frame_cut(bytes, FrameLimits::default(), &cuts);
        assert_eq!(result, Ok(InputFormat::StixJson), "{input}");
        assert_eq!(texts(&items), expected, "{input}");
    }
}

// --- throughput ---------------------------------------------------------------------------------

/// `cargo test -p ti-core --release frame::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run in release mode"]
fn throughput() {
    let object = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"Malicious site hosting downloader","description":"This organized threat actor group operates to create profit from all types of crime, including \"quoted\" text and a path C:\\Windows\\x.exe","indicator_types":["malicious-activity"],"pattern":"[url:value = 'http://x4z9arb.cn/4712/']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","labels":["a","b"],"confidence":80}"#;
    let mut input = String::from("{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[\n");
    let count = 400_000;
    for i in 0..count {
        if i > 0 {
            input.push_str(",\n");
        }
        input.push_str(object);
    }
    input.push_str("\n]}\n");
    let bytes = input.as_bytes();
    let start = std::time::Instant::now();
    let mut framer = Framer::new(FrameLimits::default());
    let mut out = Vec::with_capacity(1024);
    let mut n = 0;
    for chunk in bytes.chunks(64 * 1024) {
        framer.push(chunk, &mut out).unwrap();
        n += out.len();
        out.clear();
    }
    framer.finish(&mut out).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, count);
    println!(
        "framed {} MB, {count} records in {secs:.3} s: {:.0} MB/s",
        bytes.len() / 1_000_000,
        bytes.len() as f64 / 1e6 / secs
    );
}
