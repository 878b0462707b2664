//! The outside oracles for prose extraction (issue 11): ti-ingest's `--format prose` against
//! ioc-finder and iocextract, the Python extractors analysts use, on the same reports
//! (`tests/fixtures/prose/`, run through `scripts/prose-oracle.sh`).
//!
//! Every indicator one of them finds that ti-ingest does not, and every one ti-ingest finds that
//! it does not, must be listed in `tests/fixtures/prose/expected-differences.json` with its
//! reason; an unlisted difference fails the test, and so does a listed one that no longer occurs.
//! `ORACLE.md` beside it is generated from the same data and must match too.
//!
//! `UPDATE_PROSE_ORACLE=1 cargo test -p ti-core --test prose_oracle` rewrites both files: reasons
//! already given are kept, new differences get a reason when a rule below explains them and
//! `UNEXPLAINED` otherwise (which the normal run rejects until someone writes the reason).
//!
//! Not skipped when `python3` is missing: the test fails and says what is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use ti_core::input::{Decoder, InputFormat, InputOptions};
use ti_core::stix::observable::Observable;
use ti_core::stix::pattern;
use time::OffsetDateTime;

const FIXTURES: [&str; 3] = ["advisory.txt", "blog-post.md", "vendor-blog.html"];
const ORACLES: [&str; 2] = ["ioc-finder", "iocextract"];
const UNEXPLAINED: &str = "UNEXPLAINED";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prose")
}

/// type → values, per oracle, per fixture, as the script prints them.
type Extraction = BTreeMap<String, BTreeSet<String>>;

fn run_oracles() -> BTreeMap<String, BTreeMap<String, Extraction>> {
    let script = root().join("scripts/prose-oracle.sh");
    let paths: Vec<PathBuf> = FIXTURES.iter().map(|f| fixture_dir().join(f)).collect();
    let out = Command::new("bash")
        .arg(&script)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (bash is needed)", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}); it needs python3 with venv and pip, and PyPI reachable the first time \
         (it installs the pinned ioc-finder and iocextract into .venv-prose). Its stderr:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no valid JSON ({e}):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn type_name(o: Observable) -> &'static str {
    match o {
        Observable::Ipv4 => "ipv4",
        Observable::Ipv6 => "ipv6",
        Observable::Domain => "domain",
        Observable::Url => "url",
        Observable::Email => "email",
        Observable::Md5 => "md5",
        Observable::Sha1 => "sha1",
        Observable::Sha256 => "sha256",
        Observable::Sha512 => "sha512",
        Observable::FileName => "file-name",
    }
}

/// What ti-ingest extracts from a fixture: type → values.
fn ours(fixture: &str) -> Extraction {
    let bytes = std::fs::read(fixture_dir().join(fixture)).unwrap();
    let mut opts = InputOptions::new(OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap());
    opts.format = Some(InputFormat::Prose);
    let mut d = Decoder::new(opts);
    let mut out = Vec::new();
    d.push(&bytes, &mut out).unwrap();
    assert_eq!(d.finish(&mut out), Ok(InputFormat::Prose));
    let mut ex = Extraction::new();
    for r in out {
        let o = r
            .object
            .unwrap_or_else(|p| panic!("{fixture} line {}: {p:?}", r.line));
        let p = o["pattern"].as_str().unwrap();
        let (path, value) = pattern::single_comparison(p).expect("one comparison per record");
        let t = type_name(Observable::from_pattern_path(&path).unwrap());
        ex.entry(t.to_string())
            .or_default()
            .insert(normalise(t, &value));
    }
    ex
}

/// Values compared case-insensitively where case does not matter.
fn normalise(t: &str, v: &str) -> String {
    match t {
        "url" => v.to_string(),
        _ => v.to_lowercase(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Difference {
    fixture: String,
    oracle: String,
    /// `oracle-only` (the oracle finds it, ti-ingest does not) or `ours-only`.
    side: String,
    #[serde(rename = "type")]
    kind: String,
    value: String,
    /// A key of `reasons`.
    reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Expected {
    reasons: BTreeMap<String, String>,
    differences: Vec<Difference>,
}

struct Comparison {
    /// (fixture, oracle) → (agreed, oracle-only, ours-only) counts.
    figures: BTreeMap<(String, String), (usize, usize, usize)>,
    differences: Vec<Difference>,
}

fn compare(oracles: &BTreeMap<String, BTreeMap<String, Extraction>>) -> Comparison {
    let mut figures = BTreeMap::new();
    let mut differences = Vec::new();
    for fixture in FIXTURES {
        let ours = ours(fixture);
        let by_oracle = oracles
            .get(fixture)
            .unwrap_or_else(|| panic!("the oracle script printed nothing for {fixture}"));
        for oracle in ORACLES {
            let theirs = &by_oracle[oracle];
            let (mut agreed, mut only_theirs, mut only_ours) = (0, 0, 0);
            // Only the types the oracle extracts at all (iocextract has no domains).
            for (t, values) in theirs {
                let theirs: BTreeSet<String> = values.iter().map(|v| normalise(t, v)).collect();
                let empty = BTreeSet::new();
                let mine = ours.get(t).unwrap_or(&empty);
                agreed += theirs.intersection(mine).count();
                for (side, set, n) in [
                    ("oracle-only", theirs.difference(mine), &mut only_theirs),
                    ("ours-only", mine.difference(&theirs), &mut only_ours),
                ] {
                    for v in set {
                        *n += 1;
                        differences.push(Difference {
                            fixture: fixture.into(),
                            oracle: oracle.into(),
                            side: side.into(),
                            kind: t.clone(),
                            value: v.clone(),
                            reason: String::new(),
                        });
                    }
                }
            }
            figures.insert(
                (fixture.to_string(), oracle.to_string()),
                (agreed, only_theirs, only_ours),
            );
        }
    }
    differences.sort();
    Comparison {
        figures,
        differences,
    }
}

/// Cuts an oracle's value at markup it ran into (`</td>`, a closing backtick, `**`, a quote)
/// and at the punctuation that ended the sentence.
fn without_markup(v: &str) -> &str {
    let cut = v.find(['<', '"', '`', '*', '>']).map_or(v, |i| &v[..i]);
    cut.trim_end_matches(['.', ',', ';', ':', ')'])
}

/// The host of a URL, if it has a scheme.
fn url_host(u: &str) -> Option<&str> {
    let (_, rest) = u.split_once("://")?;
    Some(rest.split(['/', ':', '?', '#']).next().unwrap_or(""))
}

/// A reason for a new difference when a rule explains it; `ours` and `theirs` are the two
/// extractions of the fixture.
fn auto_reason(d: &Difference, ours: &Extraction, theirs: &Extraction) -> Option<&'static str> {
    let v = d.value.as_str();
    let t = d.kind.as_str();
    if d.side == "ours-only" {
        // The oracle found the same indicator with something stuck to it.
        let same = |f: &dyn Fn(&str) -> bool| theirs.get(t).into_iter().flatten().any(|o| f(o));
        if t == "url" && same(&|o| o != v && without_markup(o) == v) {
            let plain = same(&|o| o.trim_end_matches(['.', ',', ';', ':', ')']) == v);
            return Some(if plain {
                "trailing-punctuation"
            } else {
                "markup-in-value"
            });
        }
        if t == "email" && same(&|o| o != v && o.trim_start_matches('-').ends_with(v)) {
            return Some("email-glued-to-word");
        }
        return None;
    }
    let has = |t: &str, v: &str| ours.get(t).is_some_and(|s| s.contains(v));
    match t {
        "domain" | "ipv4" => {
            let in_url = ours
                .get("url")
                .into_iter()
                .flatten()
                .any(|u| url_host(u).is_some_and(|h| h.eq_ignore_ascii_case(v)));
            let in_email = ours
                .get("email")
                .into_iter()
                .flatten()
                .any(|e| e.rsplit_once('@').is_some_and(|(_, h)| h == v));
            (in_url || in_email).then_some("part-of-indicator")
        }
        "url" => {
            let trimmed = v.trim_end_matches(['.', ',', ';', ':', ')']);
            if trimmed != v && has("url", trimmed) {
                return Some("trailing-punctuation");
            }
            let cut = without_markup(v);
            if cut != v && has("url", cut) {
                return Some("markup-in-value");
            }
            // `http://host` made of a defanged domain or address the text gives without a scheme.
            if let Some(h) = cut.strip_prefix("http://").filter(|h| !h.contains('/')) {
                let email_domain = ours
                    .get("email")
                    .into_iter()
                    .flatten()
                    .any(|e| e.rsplit_once('@').is_some_and(|(_, d)| d == h));
                if has("domain", &h.to_lowercase()) || has("ipv4", h) || email_domain {
                    return Some("defanged-host-as-url");
                }
            }
            if !v.contains("://") {
                let host = v.split(['/', ':']).next().unwrap_or("");
                if has("domain", &host.to_lowercase()) || has("ipv4", host) {
                    return Some("schemeless-url");
                }
            }
            None
        }
        "email" => {
            let fixed = v.trim_start_matches('-');
            ["from", "to", ""]
                .iter()
                .filter_map(|p| fixed.strip_prefix(p))
                .any(|rest| rest != v && has("email", rest))
                .then_some("email-glued-to-word")
        }
        _ => None,
    }
}

fn render_markdown(c: &Comparison, expected: &Expected) -> String {
    let mut s = String::from(ORACLE_MD_HEAD);
    s.push_str("\n## Agreement per fixture\n\n");
    s.push_str("Indicators both find / only the oracle finds / only ti-ingest finds (over the types the oracle extracts).\n\n");
    s.push_str(
        "| fixture | oracle | both | oracle only | ti-ingest only |\n|---|---|---|---|---|\n",
    );
    for ((f, o), (a, t, m)) in &c.figures {
        s.push_str(&format!("| {f} | {o} | {a} | {t} | {m} |\n"));
    }
    s.push_str("\n## Reasons\n\n");
    for (k, r) in &expected.reasons {
        let n = expected
            .differences
            .iter()
            .filter(|d| &d.reason == k)
            .count();
        s.push_str(&format!("- **{k}** ({n}): {r}\n"));
    }
    s.push_str("\n## Differences\n\n| fixture | oracle | side | type | value | reason |\n|---|---|---|---|---|---|\n");
    for d in &expected.differences {
        s.push_str(&format!(
            "| {} | {} | {} | {} | `{}` | {} |\n",
            d.fixture,
            d.oracle,
            d.side,
            d.kind,
            d.value.replace('|', "\\|"),
            d.reason
        ));
    }
    s
}

const ORACLE_MD_HEAD: &str = "# Prose extraction against ioc-finder and iocextract

Generated by `UPDATE_PROSE_ORACLE=1 cargo test -p ti-core --test prose_oracle` from
`expected-differences.json` (edit the reasons there, then regenerate); the normal test run checks
that both files match what the three tools extract now.

The fixtures are written for ti-ingest's tests (reserved example names, made-up hashes):
- `advisory.txt`: a plain-text advisory as national CERTs and ISACs mail them (summary,
  narrative, numbered indicator lists, advice);
- `blog-post.md`: the Markdown source of a DFIR / vendor research post (front matter, narrative,
  an IOC table with code spans, a fenced block of indicators);
- `vendor-blog.html`: a vendor threat-research blog page (navigation, scripts, styles, an
  article with links and character references, an IOC table, a footer).

The oracles run on the files as they are (`scripts/prose-oracle.sh`: ioc-finder 9.4.1's
`find_iocs` with its defaults, iocextract 1.16.1's `extract_*` with `refang=True`), as an analyst
would run them on a saved report; ti-ingest runs `--format prose`.
";

#[test]
fn prose_extraction_matches_the_oracles_but_for_the_listed_differences() {
    let oracles = run_oracles();
    let c = compare(&oracles);
    let json_path = fixture_dir().join("expected-differences.json");
    let md_path = fixture_dir().join("ORACLE.md");
    let old: Expected = std::fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Expected {
            reasons: BTreeMap::new(),
            differences: Vec::new(),
        });
    let key = |d: &Difference| {
        (
            d.fixture.clone(),
            d.oracle.clone(),
            d.side.clone(),
            d.kind.clone(),
            d.value.clone(),
        )
    };

    if std::env::var_os("UPDATE_PROSE_ORACLE").is_some() {
        let given: BTreeMap<_, _> = old
            .differences
            .iter()
            .map(|d| (key(d), d.reason.clone()))
            .collect();
        let extractions: BTreeMap<&str, Extraction> =
            FIXTURES.iter().map(|f| (*f, ours(f))).collect();
        let differences: Vec<Difference> = c
            .differences
            .iter()
            .map(|d| {
                let reason = given
                    .get(&key(d))
                    .cloned()
                    .or_else(|| {
                        let theirs = &oracles[&d.fixture][&d.oracle];
                        auto_reason(d, &extractions[d.fixture.as_str()], theirs).map(str::to_owned)
                    })
                    .unwrap_or_else(|| UNEXPLAINED.to_string());
                Difference {
                    reason,
                    ..d.clone()
                }
            })
            .collect();
        let mut reasons = old.reasons;
        for (k, r) in AUTO_REASONS {
            // The rules' own reasons are kept in step with their code.
            reasons.insert(k.to_string(), r.to_string());
        }
        reasons.retain(|k, _| differences.iter().any(|d| &d.reason == k));
        if differences.iter().any(|d| d.reason == UNEXPLAINED) {
            reasons.insert(
                UNEXPLAINED.into(),
                "to be written: replace this key in each difference by a reason".into(),
            );
        }
        let expected = Expected {
            reasons,
            differences,
        };
        let mut json = serde_json::to_string_pretty(&expected).unwrap();
        json.push('\n');
        std::fs::write(&json_path, json).unwrap();
        std::fs::write(&md_path, render_markdown(&c, &expected)).unwrap();
        eprintln!("rewrote {} and {}", json_path.display(), md_path.display());
        return;
    }

    let listed: BTreeSet<_> = old.differences.iter().map(key).collect();
    let actual: BTreeSet<_> = c.differences.iter().map(key).collect();
    let unlisted: Vec<_> = actual.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&actual).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "prose extraction vs the oracles changed.\nNew differences (fixture, oracle, side, type, value):\n{unlisted:#?}\nListed differences that no longer occur:\n{gone:#?}\nIf intended, run UPDATE_PROSE_ORACLE=1 cargo test -p ti-core --test prose_oracle and write the reasons of the new ones"
    );
    let unexplained: Vec<_> = old
        .differences
        .iter()
        .filter(|d| d.reason == UNEXPLAINED || !old.reasons.contains_key(&d.reason))
        .map(key)
        .collect();
    assert!(
        unexplained.is_empty(),
        "differences without a reason in expected-differences.json: {unexplained:#?}"
    );
    let md = std::fs::read_to_string(&md_path).unwrap_or_default();
    assert_eq!(
        md,
        render_markdown(&c, &old),
        "ORACLE.md is out of date: run UPDATE_PROSE_ORACLE=1 cargo test -p ti-core --test prose_oracle"
    );
}

/// Reasons that [`auto_reason`] gives.
const AUTO_REASONS: [(&str, &str); 6] = [
    (
        "part-of-indicator",
        "the oracles also list the host of each URL (and ioc-finder the domain of each e-mail \
         address) as a domain or address of its own; ti-ingest's record is the URL or the e-mail address the \
         report named (the bare host would match far more than the report says)",
    ),
    (
        "trailing-punctuation",
        "the oracle kept the punctuation that ends the sentence or a clause as part of the URL; \
         ti-ingest's value is the URL without it",
    ),
    (
        "markup-in-value",
        "the oracle kept the markup around the indicator (`</td>`, a closing backtick, `**`, \
         an attribute's quote) as part of it; ti-ingest strips the markup first",
    ),
    (
        "defanged-host-as-url",
        "iocextract turns every defanged domain or address into an `http://` URL; the report \
         gave a domain or address, which ti-ingest records as such",
    ),
    (
        "schemeless-url",
        "the oracle's URL has no scheme (`host/path`); a STIX url needs one, so ti-ingest \
         records the host, which it has too",
    ),
    (
        "email-glued-to-word",
        "iocextract joined the word or list dash before a defanged address to it; ti-ingest's \
         value is the address alone",
    ),
];
