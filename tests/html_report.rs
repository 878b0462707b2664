//! The report page (`<stem>.report.html`) as a real browser renders it: Debian's Chromium, headless
//! (installed by scripts/setup-chromium.sh, which scripts/test.sh runs), loads each page the CLI
//! wrote and dumps the DOM it built; the tests assert on that DOM with `scraper` and compare it
//! with the JSON report beside it. Each page's phone-sized screenshot is kept under
//! `target/html-report-screenshots/` for review.
//!
//! Safety is checked with controls, so the checks can fail: a script in a page without our CSP
//! does change the DOM and an `<img>` does reach a local listener, while in our pages neither
//! happens, neither from hostile input values nor from markup injected into the page itself.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scraper::{ElementRef, Html, Selector};
use serde_json::{json, Value};

fn ti_ingest() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ti-ingest"));
    c.env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("TI_TARGET")
        .env("TI_LOG", "warn");
    c
}

/// `target/html-report-screenshots/`, beside the test binaries' profile folder.
fn screenshot_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ti-ingest"));
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("html-report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `page` in headless Chromium and returns the DOM it built (after scripts, if any ran,
/// and after the load event); saves a phone-sized (412 px wide) screenshot as `shot` when given.
fn render(page: &Path, shot: Option<&Path>) -> Html {
    let profile = tempfile::tempdir().unwrap();
    let mut c = Command::new("timeout");
    c.args(["60", "chromium"]).args([
        "--headless",
        // Root in a container has no user namespace for the sandbox; the pages are our own.
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--window-size=412,1400",
    ]);
    c.arg(format!("--user-data-dir={}", profile.path().display()));
    if let Some(shot) = shot {
        c.arg(format!("--screenshot={}", shot.display()));
    }
    c.arg("--dump-dom")
        .arg(format!("file://{}", page.display()));
    let out = c.output().unwrap_or_else(|e| {
        panic!("running chromium ({e}): install it with scripts/setup-chromium.sh")
    });
    assert!(
        out.status.success(),
        "chromium failed ({:?}): {} (install it with scripts/setup-chromium.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(dom.contains("</html>"), "no DOM dumped: {dom}");
    if let Some(shot) = shot {
        let png = std::fs::read(shot).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", shot.display());
    }
    Html::parse_document(&dom)
}

/// A TCP listener on a free local port counting the connections it gets (each closed at once).
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
    marks: std::sync::mpsc::Receiver<()>,
}

/// What [`Listener::settled_hits`] sends to tell its own connection from a counted one.
const MARK: &[u8] = b"ti-ingest-test-mark";

impl Listener {
    /// The connections made before this call, all counted: its own marker connection is
    /// accepted after every earlier one (one accept queue, one thread), so once the spy has seen
    /// the marker it has counted everything before it. Call it after the browser has exited.
    fn settled_hits(&self) -> usize {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        c.write_all(MARK).unwrap();
        self.marks
            .recv_timeout(Duration::from_secs(60))
            .expect("the spy saw its marker");
        self.hits.load(Ordering::SeqCst)
    }
}

fn listener() -> Listener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let (mark, marks) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let mut buf = [0u8; 1024];
            let n = match conn {
                Ok(mut c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    c.read(&mut buf).unwrap_or(0)
                }
                Err(_) => 0,
            };
            if &buf[..n] == MARK {
                let _ = mark.send(());
            } else {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    Listener { port, hits, marks }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn all<'a>(doc: &'a Html, s: &str) -> Vec<ElementRef<'a>> {
    doc.select(&sel(s)).collect()
}

fn one<'a>(doc: &'a Html, s: &str) -> ElementRef<'a> {
    let found = all(doc, s);
    assert_eq!(found.len(), 1, "{s}");
    found[0]
}

fn text(e: ElementRef) -> String {
    e.text().collect()
}

/// Runs `ti-ingest validate` on `input` (written as `file_name` in a fresh folder) with
/// `--report`; returns the folder, the report, the page's path and the rejected file's lines.
struct Run {
    _dir: tempfile::TempDir,
    report: Value,
    page: PathBuf,
    rejected: Vec<String>,
}

fn validate(file_name: &str, input: &str, expect_exit: i32) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(file_name);
    std::fs::write(&file, input).unwrap();
    let report_path = dir.path().join("out.report.json");
    let out = ti_ingest()
        .arg("validate")
        .arg(&file)
        .arg("--report")
        .arg(&report_path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(expect_exit),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    // The whole report: the entries past those report.json lists are in the NDJSON files it
    // names; its counts per code are those of every entry.
    for (key, more, stated) in [
        ("errors", "moreErrorsIn", "errorCounts"),
        ("warnings", "moreWarningsIn", "warningCounts"),
    ] {
        if let Some(file) = report[more].as_str() {
            let rest = std::fs::read_to_string(file).unwrap();
            let list = report[key].as_array_mut().unwrap();
            list.extend(
                rest.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
        let stated: BTreeMap<String, u64> =
            serde_json::from_value(report.get(stated).cloned().unwrap_or(json!({}))).unwrap();
        assert_eq!(stated, counts(&report[key]), "{key}");
    }
    let rejected = std::fs::read_to_string(dir.path().join("out.rejected.ndjson"))
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let page = dir.path().join("out.report.html");
    assert!(page.is_file(), "the page is written beside the report");
    Run {
        _dir: dir,
        report,
        page,
        rejected,
    }
}

/// Counts per code of a report's `errors` or `warnings`.
fn counts(entries: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in entries.as_array().unwrap() {
        *m.entry(e["code"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

/// The page says what the report says: the summary, a bar and a group per code with the same
/// counts, and each shown entry's line, id, messages and original text equal to the report's.
fn assert_page_matches_report(doc: &Html, report: &Value, originals: &BTreeMap<u64, String>) {
    let s = &report["summary"];
    let num = |id: &str| text(one(doc, &format!("#{id}"))).replace(',', "");
    assert_eq!(num("records"), s["records"].to_string());
    assert_eq!(num("uploaded"), s["uploaded"].to_string());
    assert_eq!(num("rejected"), s["rejected"].to_string());
    assert_eq!(
        text(one(doc, "#target")),
        report["target"].as_str().unwrap()
    );
    assert_eq!(
        text(one(doc, "#source")),
        report["source"]["name"].as_str().unwrap()
    );

    for (section, groups, key) in [
        ("#codes", "#errors > .group", "errors"),
        ("#warning-codes", "#warnings > .group", "warnings"),
    ] {
        let want = counts(&report[key]);
        let bars: BTreeMap<String, u64> = all(doc, &format!("{section} .bar"))
            .into_iter()
            .map(|b| {
                let code = b.attr("data-code").unwrap().to_string();
                let count = text(b.select(&sel(".count")).next().unwrap());
                assert_eq!(count.replace(',', ""), b.attr("data-count").unwrap());
                // Each bar says what to do, in words.
                assert!(
                    text(b.select(&sel(".fix")).next().unwrap()).len() > 10,
                    "{code}"
                );
                (code, count.replace(',', "").parse().unwrap())
            })
            .collect();
        assert_eq!(bars, want, "{section}");
        let groups_found = all(doc, groups);
        assert_eq!(groups_found.len(), want.len(), "{groups}");
        for g in groups_found {
            let code = g.attr("data-code").unwrap();
            let count: u64 = g.attr("data-count").unwrap().parse().unwrap();
            assert_eq!(want[code], count);
            let of_code: Vec<&Value> = report[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["code"] == code)
                .collect();
            let entries: Vec<ElementRef> = g.select(&sel(".entry")).collect();
            assert_eq!(entries.len() as u64, count.min(20), "{code}");
            let not_shown: u64 = g
                .select(&sel(".more"))
                .next()
                .map(|m| m.attr("data-not-shown").unwrap().parse().unwrap())
                .unwrap_or(0);
            assert_eq!(not_shown, count - entries.len() as u64, "{code}");
            for (entry, e) in entries.iter().zip(&of_code) {
                let index = e["recordIndex"].as_u64().unwrap();
                assert_eq!(entry.attr("data-index").unwrap(), index.to_string());
                assert_eq!(
                    entry.attr("data-line"),
                    e["line"].as_u64().map(|l| l.to_string()).as_deref()
                );
                let messages: Vec<String> =
                    entry.select(&sel(".messages > li")).map(text).collect();
                let want: Vec<&str> = e["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap())
                    .collect();
                assert_eq!(messages, want, "{code} record {index}");
                if let Some(id) = e["id"].as_str() {
                    assert_eq!(text(entry.select(&sel(".id")).next().unwrap()), id);
                }
                if key == "errors" {
                    let shown = entry.select(&sel(".original")).next().map(text);
                    assert_eq!(
                        shown.as_ref(),
                        originals.get(&index),
                        "{code} record {index}"
                    );
                }
            }
        }
    }
}

/// Original texts by record index: the CLI's rejected file holds them in index order (after a
/// CSV header, not used here).
fn originals(report: &Value, rejected: &[String]) -> BTreeMap<u64, String> {
    let indexes: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recordIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes.len(), rejected.len());
    indexes.into_iter().zip(rejected.iter().cloned()).collect()
}

#[test]
fn a_clean_run_says_so_in_one_sentence() {
    let run = validate("clean.json", &common::bundle(&common::corpus(12, &[])), 0);
    let doc = render(&run.page, Some(&screenshot_dir().join("clean-run.png")));
    assert_eq!(
        text(one(&doc, "#outcome")),
        "12 of 12 would be uploaded; 0 rejected; nothing to retry."
    );
    assert!(all(&doc, "#input-error").is_empty());
    assert!(all(&doc, ".bar").is_empty());
    assert!(all(&doc, ".entry").is_empty());
    assert_page_matches_report(&doc, &run.report, &BTreeMap::new());
}

#[test]
fn several_codes_get_a_bar_each_and_their_records_grouped() {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |v: Value| lines.push(v.to_string());
    for i in 0..10 {
        push(common::indicator(i));
    }
    for i in 10..35 {
        push(common::invalid_indicator(i, 0)); // pattern
    }
    for i in 35..38 {
        push(common::invalid_indicator(i, 1)); // no valid_from
    }
    for i in 38..40 {
        push(common::invalid_indicator(i, 2)); // id
    }
    push(common::invalid_indicator(40, 3)); // confidence
    for i in 41..43 {
        let mut v = common::indicator(i);
        v["valid_from"] = json!("2019-01-01T00:00:00Z");
        v["valid_until"] = json!("2020-01-01T00:00:00Z");
        push(v);
    }
    lines.push("this is not JSON".into());
    lines.push("[1, 2, 3]".into());
    let input = lines.join("\n") + "\n";
    let run = validate("mixed.ndjson", &input, 1);
    let want: BTreeMap<String, u64> = [
        ("pattern_invalid", 25),
        ("missing_property", 3),
        ("invalid_id", 2),
        ("confidence_out_of_range", 1),
        ("json_invalid", 1),
        ("not_an_object", 1),
    ]
    .into_iter()
    .map(|(c, n)| (c.to_string(), n))
    .collect();
    assert_eq!(counts(&run.report["errors"]), want);
    assert_eq!(
        counts(&run.report["warnings"]),
        BTreeMap::from([("expired".to_string(), 2)])
    );

    let doc = render(&run.page, Some(&screenshot_dir().join("several-codes.png")));
    assert_eq!(
        text(one(&doc, "#outcome")),
        "12 of 45 would be uploaded; 33 rejected; nothing to retry; 2 warnings."
    );
    // The largest group first, in the bars and below.
    let bar_codes: Vec<&str> = all(&doc, "#codes .bar")
        .into_iter()
        .map(|b| b.attr("data-code").unwrap())
        .collect();
    assert_eq!(
        bar_codes,
        [
            "pattern_invalid",
            "missing_property",
            "invalid_id",
            "json_invalid",
            "not_an_object",
            "confidence_out_of_range"
        ]
    );
    let more = one(&doc, "#e-pattern_invalid .more");
    assert_eq!(
        text(more),
        "5 more not shown here; all 25 are in out.report.json, their original text in \
         out.rejected.ndjson."
    );
    // An original as written: the NDJSON line itself.
    let first = one(&doc, "#e-json_invalid .entry");
    assert_eq!(first.attr("data-line"), Some("44"));
    assert_eq!(
        text(first.select(&sel(".original")).next().unwrap()),
        "this is not JSON"
    );
    let originals = originals(&run.report, &run.rejected);
    assert_eq!(originals[&43], "this is not JSON");
    assert_page_matches_report(&doc, &run.report, &originals);
}

#[test]
fn an_input_error_comes_first_and_in_words() {
    let full = common::bundle(&common::corpus(3, &[]));
    // Cut inside the third object: two records read, then a broken frame.
    let cut = &full[..full.rfind("\"pattern\"").unwrap()];
    let run = validate("cut.json", cut, 2);
    assert_eq!(run.report["inputError"]["code"], "input_invalid");
    let doc = render(&run.page, Some(&screenshot_dir().join("input-error.png")));
    let error = one(&doc, "#input-error");
    assert_eq!(
        text(one(&doc, "#outcome")),
        "2 of 2 would be uploaded; 0 rejected; nothing to retry. Reading stopped at the input error."
    );
    assert_eq!(
        text(one(&doc, "#input-error-code")),
        run.report["inputError"]["code"].as_str().unwrap()
    );
    assert_eq!(
        text(one(&doc, "#input-error-message")),
        run.report["inputError"]["message"].as_str().unwrap()
    );
    assert!(text(error.select(&sel(".words")).next().unwrap()).starts_with("The input's structure"));
    // First: before the outcome and everything else in the body but the title.
    let order: Vec<String> = all(&doc, "h1, #input-error, #outcome, .facts")
        .into_iter()
        .map(|e| e.value().name().to_string() + e.attr("id").unwrap_or(""))
        .collect();
    assert_eq!(order, ["h1", "sectioninput-error", "poutcome", "dl"]);
    assert_page_matches_report(&doc, &run.report, &BTreeMap::new());
}

/// Markup and script in the input's values, and in its file name, show as text: no element of
/// theirs exists in the DOM, no script ran, and nothing was fetched (a local listener named in
/// `<img>`, stylesheet, `@import`, frame and refresh values gets no connection).
#[test]
fn hostile_values_show_as_text_and_run_nothing() {
    let spy = listener();
    let url = format!("http://127.0.0.1:{}", spy.port);
    let hostile = [
        "<script>document.body.innerHTML='PWNED'</script>".to_string(),
        format!("</textarea></pre><img src=\"{url}/img.png\" onerror=\"document.title='PWNED'\">"),
        format!("<link rel=\"stylesheet\" href=\"{url}/x.css\"><style>@import url({url}/i.css);</style>"),
        format!("<iframe src=\"{url}/frame\"></iframe><meta http-equiv=\"refresh\" content=\"0;url={url}/go\">"),
        "\"'><svg onload=alert(1)>&lt;&amp;".to_string(),
    ];
    let mut lines = Vec::new();
    for (i, h) in hostile.iter().enumerate() {
        let mut v = common::indicator(i);
        v["name"] = json!(h);
        v["pattern"] = json!(format!("[ipv4-addr:value = '{}']", h.replace('\'', "''")));
        v["id"] = json!(format!("indicator--{h}"));
        lines.push(v.to_string());
    }
    lines.push(hostile[1].clone());
    let run = validate(
        "<b onmouseover=alert(1)>x.ndjson",
        &(lines.join("\n") + "\n"),
        1,
    );
    assert_eq!(run.report["summary"]["rejected"], 6);
    let shot = screenshot_dir().join("hostile-input.png");
    let doc = render(&run.page, Some(&shot));

    // Only the page's own elements: one stylesheet, four meta tags, no script or embedded
    // content of any kind.
    assert_eq!(all(&doc, "style").len(), 1);
    assert_eq!(all(&doc, "meta").len(), 4);
    for tag in [
        "script", "img", "iframe", "link", "svg", "textarea", "b", "object", "embed",
    ] {
        assert!(all(&doc, tag).is_empty(), "a <{tag}> element in the page");
    }
    // No script ran: the title and body are the page's own.
    let name = run.report["source"]["name"].as_str().unwrap();
    assert!(name.ends_with("/<b onmouseover=alert(1)>x.ndjson"));
    assert_eq!(
        text(one(&doc, "title")),
        format!("ti-ingest report: {name}")
    );
    assert_eq!(text(one(&doc, "h1")), format!("Report for {name}"));
    // Each value is shown as written, as text.
    let originals = originals(&run.report, &run.rejected);
    let shown: Vec<String> = all(&doc, ".original").into_iter().map(text).collect();
    assert_eq!(shown.len(), 6);
    for h in &hostile {
        // As written in the JSON record: quotes escaped the JSON way, nothing else changed.
        let in_json = serde_json::to_string(h).unwrap();
        let in_json = &in_json[1..in_json.len() - 1];
        assert!(
            shown.iter().any(|s| s.contains(in_json)),
            "{in_json} not shown as text"
        );
    }
    assert!(
        shown.contains(&hostile[1]),
        "the bare line is shown as written"
    );
    assert_page_matches_report(&doc, &run.report, &originals);
    assert_eq!(spy.settled_hits(), 0, "the page made a request");
}

/// The page's Content-Security-Policy holds even if markup got into the page itself: a script
/// and an image injected into a real page do nothing, while the same page without the policy
/// runs the script and fetches the image (so this test can tell).
#[test]
fn the_content_security_policy_blocks_injected_script_and_requests() {
    let run = validate("feed.json", &common::bundle(&common::corpus(4, &[1])), 1);
    let page = std::fs::read_to_string(&run.page).unwrap();
    let csp_start = page
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + page[csp_start..].find('>').unwrap() + 1;
    let dir = tempfile::tempdir().unwrap();
    let spy = listener();
    let injected = format!(
        "<script>document.getElementById('outcome').textContent='PWNED'</script>\
         <img src=\"http://127.0.0.1:{}/beacon.png\">",
        spy.port
    );
    let with_csp = dir.path().join("with-csp.html");
    std::fs::write(
        &with_csp,
        page.replace("</body>", &format!("{injected}</body>")),
    )
    .unwrap();
    let doc = render(&with_csp, None);
    assert_eq!(
        text(one(&doc, "#outcome")),
        "3 of 4 would be uploaded; 1 rejected; nothing to retry."
    );
    assert_eq!(spy.settled_hits(), 0);

    // The control: no policy, same injection.
    let without = dir.path().join("without-csp.html");
    let bare = format!("{}{}", &page[..csp_start], &page[csp_end..]);
    std::fs::write(
        &without,
        bare.replace("</body>", &format!("{injected}</body>")),
    )
    .unwrap();
    let doc = render(&without, None);
    assert_eq!(text(one(&doc, "#outcome")), "PWNED");
    assert_eq!(spy.settled_hits(), 1, "the control fetches the image once");
}

/// A report past the 10,000 entries report.json lists: the page counts every entry, shows the
/// first of each code (also those only in errors.ndjson) and names the files with the rest.
#[test]
fn a_report_past_its_listed_entries_names_the_files_with_the_rest() {
    let mut input = String::new();
    for i in 0..10_010 {
        input += &format!("not an indicator {i}\n");
    }
    for i in 0..3 {
        input += &format!("999.1.1.{i}\n");
    }
    let run = validate("big.txt", &input, 1);
    assert!(run.report["moreErrorsIn"]
        .as_str()
        .unwrap()
        .ends_with("/out.errors.ndjson"));
    let doc = render(&run.page, Some(&screenshot_dir().join("overflow.png")));
    assert_eq!(
        text(one(&doc, "#outcome")),
        "0 of 10,013 would be uploaded; 10,013 rejected; nothing to retry."
    );
    assert_eq!(
        text(one(&doc, "#e-not_an_indicator .more")),
        "9,990 more not shown here; all 10,010 are in out.report.json and out.errors.ndjson, \
         their original text in out.rejected.ndjson."
    );
    // The three invalid addresses are only in errors.ndjson, and shown.
    let shown: Vec<&str> = all(&doc, "#e-invalid_observable .entry")
        .into_iter()
        .map(|e| e.attr("data-index").unwrap())
        .collect();
    assert_eq!(shown, ["10010", "10011", "10012"]);
    let originals = originals(&run.report, &run.rejected);
    assert_page_matches_report(&doc, &run.report, &originals);
}

/// Readable on a phone: in a frame 360 CSS pixels wide (a small phone's viewport; headless
/// Chromium's own window is at least 500 wide) the page never scrolls sideways, even with long
/// unbroken values (a 1,500-character name, a 300-character id, a long file name). A script of
/// the framing page measures the framed page, which keeps its policy and runs nothing itself;
/// the control, the same page with a 2,000-pixel-wide element added, is measured as such.
#[test]
fn the_page_fits_a_phone_without_sideways_scrolling() {
    let mut v = common::invalid_indicator(0, 0);
    v["name"] = json!("N".repeat(1_500));
    v["id"] = json!(format!("indicator--{}", "f".repeat(300)));
    let run = validate(
        &format!("{}.ndjson", "long-file-name-".repeat(12)),
        &format!("{v}\n"),
        1,
    );
    let page = std::fs::read_to_string(&run.page).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let width = |extra: &str, name: &str| {
        let framed = page.replace("</body>", &format!("{extra}</body>"));
        let srcdoc = framed
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        let frame = format!(
            "<!DOCTYPE html><html><body style=\"margin:0\">\
             <iframe id=\"f\" style=\"width:360px;height:1200px;border:0\" srcdoc=\"{srcdoc}\"></iframe>\
             <script>document.getElementById('f').addEventListener('load', () => {{\
               const d = document.getElementById('f').contentDocument.documentElement;\
               document.body.setAttribute('data-client-width', d.clientWidth);\
               document.body.setAttribute('data-scroll-width', d.scrollWidth);\
             }});</script></body></html>"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, frame).unwrap();
        let doc = render(
            &path,
            Some(&screenshot_dir().join(name.replace(".html", ".png"))),
        );
        let attr = |a: &str| {
            one(&doc, "body")
                .attr(a)
                .unwrap_or_else(|| panic!("{a} not measured"))
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(attr("data-client-width"), 360);
        attr("data-scroll-width")
    };
    assert_eq!(width("", "phone-width.html"), 360);
    assert!(
        width(
            "<div style=\"width:2000px\">wide</div>",
            "phone-width-control.html"
        ) >= 2000
    );
}
