use super::*;
use crate::report::{InputError, Source, Stage, Summary};

fn report(errors: Vec<RecordError>, warnings: Vec<RecordWarning>, records: u64) -> Report {
    let rejected = errors.len() as u64;
    Report {
        source: Source {
            kind: "blob".into(),
            name: "indicator-inbox/feeds/a.json".into(),
            format: Some("stix-bundle".into()),
        },
        target: "sentinel-stix".into(),
        started_at: "2026-11-22T10:00:00Z".into(),
        finished_at: "2026-11-22T10:00:04.5Z".into(),
        summary: Summary {
            records,
            uploaded: records - rejected,
            rejected,
        },
        input_error: None,
        errors,
        warnings,
        error_counts: Default::default(),
        warning_counts: Default::default(),
        more_errors_in: None,
        more_warnings_in: None,
        lifecycle: None,
    }
}

fn error(index: u64, code: Code, message: &str) -> RecordError {
    RecordError {
        record_index: index,
        line: Some(index + 2),
        id: Some(format!("indicator--{index:08}-0000-4000-8000-000000000000")),
        stage: code.stage(),
        code,
        messages: vec![message.to_string()],
    }
}

fn files() -> PageFiles {
    PageFiles {
        report: "indicator-reports/feeds/a.json.report.json".into(),
        rejected: Some("indicator-reports/feeds/a.json.rejected.ndjson".into()),
        ..Default::default()
    }
}

fn render(r: &Report, originals: &[(u64, String)]) -> String {
    let mut out = Vec::new();
    write_page(
        &mut out,
        r,
        |i| {
            originals
                .binary_search_by_key(&i, |(k, _)| *k)
                .ok()
                .map(|at| originals[at].1.as_str())
        },
        files(),
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_outcome_is_one_sentence_with_thousands_separators() {
    let mut errors: Vec<_> = (0..86)
        .map(|i| error(i, Code::PatternInvalid, "bad pattern"))
        .collect();
    errors.push(error(86, Code::RetriesExhausted, "503 eight times"));
    errors.push(error(87, Code::RetriesExhausted, "503 eight times"));
    let r = report(errors, vec![], 3000);
    let page = Page::new(&r, files());
    assert_eq!(
        page.outcome(),
        "2,912 of 3,000 uploaded; 88 rejected; nothing to retry.",
        "a page not fed its entries knows no transient failure"
    );
    let html = render(&r, &[]);
    assert!(html.contains(
        "<p id=\"outcome\" class=\"outcome\">2,912 of 3,000 uploaded; 88 rejected; \
         2 failed on transient errors: drop the input again to retry them.</p>"
    ));
    assert!(html.contains("2026-11-22 10:00:00 UTC, for 5 s"), "{html}");

    let mut clean = report(vec![], vec![], 1_234_567);
    clean.target = "validate".into();
    assert_eq!(
        Page::new(&clean, files()).outcome(),
        "1,234,567 of 1,234,567 would be uploaded; 0 rejected; nothing to retry."
    );
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1000), "1,000");
    assert_eq!(thousands(12_345_678), "12,345,678");
}

#[test]
fn groups_show_their_first_entries_and_count_the_rest() {
    let mut errors: Vec<_> = (0..25)
        .map(|i| error(i, Code::InvalidObservable, "not an IPv4 address"))
        .collect();
    errors.push(error(25, Code::MissingProperty, "pattern is required"));
    let originals: Vec<(u64, String)> = (0..26).map(|i| (i, format!("{{\"n\":{i}}}"))).collect();
    let html = render(&report(errors, vec![], 30), &originals);
    // The larger group first, in the bars and in the groups.
    let bar_a = html.find("<li class=\"bar\" data-code=\"invalid_observable\" data-count=\"25\">");
    let bar_b = html.find("<li class=\"bar\" data-code=\"missing_property\" data-count=\"1\">");
    assert!(bar_a.unwrap() < bar_b.unwrap());
    assert_eq!(html.matches("<li class=\"entry\"").count(), 21);
    assert!(html.contains(
        "<p class=\"more\" data-not-shown=\"5\">5 more not shown here; all 25 are in \
         <code>a.json.report.json</code>, their original text in \
         <code>a.json.rejected.ndjson</code>.</p>"
    ));
    // The 20th entry is shown, the 21st not.
    assert!(html.contains("data-index=\"19\""));
    assert!(!html.contains("data-index=\"20\""));
    assert!(html.contains("<pre class=\"original\">{&quot;n&quot;:25}</pre>"));
    // The fix of each code, with its code spans.
    assert!(html.contains(
        "<p class=\"fix\">Correct the IP address, hash, domain, URL or e-mail address the message names.</p>"
    ));
}

#[test]
fn input_values_are_escaped() {
    let hostile = "</textarea></pre><script>document.body.innerHTML='x'</script><img src=x onerror=alert(1)>&amp;\"'";
    let mut e = error(0, Code::JsonInvalid, hostile);
    e.id = Some(hostile.into());
    let mut r = report(vec![e], vec![], 1);
    r.source.name = hostile.into();
    r.target = hostile.into();
    r.input_error = Some(InputError {
        code: hostile.into(),
        message: hostile.into(),
    });
    let html = render(&r, &[(0, hostile.to_string())]);
    // Nothing of the value is markup: no tag it holds appears, in any position.
    for tag in ["<script", "</textarea", "<img", "</pre></pre>"] {
        assert!(!html.contains(tag), "{tag} in {html}");
    }
    assert_eq!(html.matches("</pre>").count(), 1);
    // Shown as text, every character escaped (id, source twice + title, target, input error
    // code and message, original, message).
    let escaped =
        "&lt;/textarea&gt;&lt;/pre&gt;&lt;script&gt;document.body.innerHTML=&#x27;x&#x27;\
                   &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;&quot;&#x27;";
    assert_eq!(html.matches(escaped).count(), 9, "{html}");
}

#[test]
fn long_values_are_cut_and_say_how_much() {
    let long = "a".repeat(ORIGINAL_CHARS + 123);
    let e = error(0, Code::RecordTooLarge, &"m".repeat(MESSAGE_CHARS + 7));
    let html = render(&report(vec![e], vec![], 1), &[(0, long)]);
    assert!(html.contains(&format!(
        "{}<span class=\"cut\">&hellip; 123 more characters</span></pre>",
        "a".repeat(ORIGINAL_CHARS)
    )));
    assert!(html.contains("<span class=\"cut\">&hellip; 7 more characters</span></li>"));
}

#[test]
fn warnings_are_apart_from_errors() {
    let w = RecordWarning {
        record_index: 3,
        line: Some(5),
        id: None,
        code: Code::Expired,
        messages: vec!["valid_until is in the past".into()],
    };
    let html = render(&report(vec![], vec![w], 10), &[]);
    assert!(!html.contains("id=\"errors\""));
    assert!(!html.contains("id=\"codes\""));
    assert!(html.contains("<section id=\"warning-codes\">"));
    assert!(html.contains(
        "<section class=\"group\" id=\"w-expired\" data-code=\"expired\" data-count=\"1\">"
    ));
    assert!(html.contains("10 of 10 uploaded; 0 rejected; nothing to retry; 1 warning."));
    // A warning's record was uploaded: no original text is offered for it.
    assert!(!html.contains("<pre class=\"original\""));
}

/// A 1,000,000-record report of hostile, long entries in every code, errors and warnings, with
/// the longest escapes everywhere (names, input error, files): the page stays under 1 MB, and
/// its counts are the report's. Entries are fed one at a time, as a streamed report is.
#[test]
fn a_million_record_report_gives_a_page_under_one_megabyte() {
    // U+0001 is written as `⟨U+0001⟩` (12 bytes), the longest a character gets.
    let worst = |n: usize| "\u{1}".repeat(n);
    let mut r = report(vec![], vec![], 2_000_000);
    r.summary = Summary {
        records: 2_000_000,
        uploaded: 1_000_000,
        rejected: 1_000_000,
    };
    r.source.name = worst(5_000);
    r.input_error = Some(InputError {
        code: "input_invalid".into(),
        message: worst(10_000),
    });
    let mut page = Page::new(
        &r,
        PageFiles {
            report: worst(1_100),
            rejected: Some(worst(1_100)),
            more_errors: Some(worst(1_100)),
            more_warnings: Some(worst(1_100)),
        },
    );
    let original = worst(5 * ORIGINAL_CHARS);
    let mut e = RecordError {
        record_index: 0,
        line: Some(1),
        id: Some(worst(5_000)),
        stage: Stage::Parse,
        code: Code::JsonInvalid,
        messages: vec![worst(5_000); 9],
    };
    let mut w = RecordWarning {
        record_index: 0,
        line: None,
        id: Some(worst(5_000)),
        code: Code::Normalised,
        messages: vec![worst(5_000); 9],
    };
    let n_codes = Code::ALL.len() as u64;
    for i in 0..1_000_000u64 {
        let code = Code::ALL[(i % n_codes) as usize];
        e.record_index = i;
        e.line = Some(i + 1);
        e.code = code;
        page.add_error(&e, Some(&original));
        w.record_index = i;
        w.code = code;
        page.add_warning(&w);
    }
    let mut out = Vec::new();
    page.write_to(&mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    assert!(
        html.len() > 800_000,
        "the worst case is near the bound: {} bytes",
        html.len()
    );
    // Every code's count, and every record either shown or counted as not shown.
    for (i, code) in Code::ALL.into_iter().enumerate() {
        let count = 1_000_000 / n_codes + u64::from((i as u64) < 1_000_000 % n_codes);
        for prefix in ["e", "w"] {
            assert!(html.contains(&format!(
                "<section class=\"group\" id=\"{prefix}-{}\" data-code=\"{}\" data-count=\"{count}\">",
                code.name(),
                code.name()
            )));
        }
    }
    let shown = html.matches("<li class=\"entry\"").count() as u64;
    assert!(shown >= 5, "{shown}");
    let not_shown: u64 = html
        .split("data-not-shown=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse::<u64>().unwrap())
        .sum();
    assert_eq!(shown + not_shown, 2_000_000);
    assert!(html.ends_with("</html>\n"));
}

/// The usual case: short entries fill every group's 20 shown within the budget.
#[test]
fn ordinary_entries_are_all_shown_up_to_twenty_per_code() {
    let mut page = Page::new(&report(vec![], vec![], 1_000_000), files());
    let mut e = error(
        0,
        Code::JsonInvalid,
        "expected ',' or '}' after an object member at column 40",
    );
    let original = format!(
        "{{\"type\":\"indicator\",\"name\":\"{}\"}}",
        "x".repeat(250)
    );
    for i in 0..1_000_000u64 {
        e.record_index = i;
        e.code = Code::ALL[(i % Code::ALL.len() as u64) as usize];
        page.add_error(&e, Some(&original));
    }
    let mut out = Vec::new();
    page.write_to(&mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert_eq!(
        html.matches("<li class=\"entry\"").count(),
        20 * Code::ALL.len()
    );
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
}

#[test]
fn entries_only_counted_are_counted_and_not_shown() {
    let r = report(
        vec![error(0, Code::Duplicate, "a later record has this id")],
        vec![],
        5,
    );
    let mut page = Page::new(&r, files());
    page.add_error(&r.errors[0], None);
    page.add_error_count(Code::Duplicate, 41);
    let mut out = Vec::new();
    page.write_to(&mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.contains("<li class=\"bar\" data-code=\"duplicate\" data-count=\"42\">"));
    assert_eq!(html.matches("<li class=\"entry\"").count(), 1);
    assert!(html
        .contains("<p class=\"more\" data-not-shown=\"41\">41 more not shown here; all 42 are in"));
    assert!(html.contains("<p class=\"note\">The original text was not kept.</p>"));
}

#[test]
fn invisible_and_direction_changing_characters_are_shown() {
    let name = "invoice\u{202E}fdp.exe\u{0}\u{7}";
    let e = error(0, Code::InvalidObservable, "bad\u{2066}x\u{2069}");
    let mut r = report(vec![e], vec![], 1);
    r.source.name = name.into();
    let html = render(&r, &[(0, "a\tb\u{200F}\r\nc".to_string())]);
    assert!(html.contains(
        "invoice\u{27e8}U+202E\u{27e9}fdp.exe\u{27e8}U+0000\u{27e9}\u{27e8}U+0007\u{27e9}"
    ));
    assert!(html.contains("bad\u{27e8}U+2066\u{27e9}x\u{27e8}U+2069\u{27e9}"));
    assert!(html.contains("<pre class=\"original\">a\tb\u{27e8}U+200F\u{27e9}\r\nc</pre>"));
    assert!(!html.contains(['\u{202E}', '\u{0}', '\u{7}', '\u{2066}', '\u{200F}']));
}

#[test]
fn entries_past_the_json_reports_list_are_found_in_its_overflow_files() {
    let errors: Vec<_> = (0..30)
        .map(|i| error(i, Code::InvalidId, "not a uuid"))
        .collect();
    let w = RecordWarning {
        record_index: 40,
        line: Some(41),
        id: None,
        code: Code::Expired,
        messages: vec!["past".into()],
    };
    let r = report(errors, vec![w; 25], 60);
    let mut out = Vec::new();
    let files = PageFiles {
        more_errors: Some("indicator-reports/feeds/a.json.errors.ndjson".into()),
        more_warnings: Some("indicator-reports/feeds/a.json.warnings.ndjson".into()),
        ..files()
    };
    write_page(&mut out, &r, |_| None, files).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.contains(
        "10 more not shown here; all 30 are in <code>a.json.report.json</code> and \
         <code>a.json.errors.ndjson</code>, their original text in <code>a.json.rejected.ndjson</code>."
    ));
    assert!(html.contains(
        "5 more not shown here; all 25 are in <code>a.json.report.json</code> and \
         <code>a.json.warnings.ndjson</code>."
    ));
    assert!(html.contains(
        "Every entry is in <code>indicator-reports/feeds/a.json.report.json</code> and \
         <code>indicator-reports/feeds/a.json.errors.ndjson</code> and \
         <code>indicator-reports/feeds/a.json.warnings.ndjson</code>; the original text"
    ));
}
