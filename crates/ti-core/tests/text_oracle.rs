//! The outside oracles for text lists (issue 11): ti-ingest's text reader against ioc-finder and
//! iocextract, the Python extractors analysts use, on the genuine vendor lists in
//! `../shared/realworld/` (read in place) and our own `tests/fixtures/text/vendor-shapes.txt`
//! (both tools run by `scripts/prose-oracle.sh`, pinned).
//!
//! Every value one of them finds that ti-ingest does not, and the reverse, must be explained by
//! one of the deliberate differences in [`REASONS`]; an unexplained one fails the test. The figures
//! (agreed / oracle only / ti-ingest only per file and oracle, and how many differences each reason
//! explains) are kept in `tests/fixtures/text/ORACLE.md`, which the test regenerates and compares:
//! `UPDATE_TEXT_ORACLE=1 cargo test -p ti-core --test text_oracle` rewrites it.
//!
//! Not skipped when `python3` is missing: the test fails and says what is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ti_core::input::{Decoder, InputFormat, InputOptions};
use ti_core::stix::observable::Observable;
use ti_core::stix::pattern;
use time::OffsetDateTime;

const REALWORLD: [&str; 6] = [
    "talos-knife-cutting-the-edge.txt",
    "talos-uat-7810.txt",
    "unit42-shade-urls.txt",
    "unit42-advanced-url-filtering.txt",
    "spamhaus-drop.txt",
    "spamhaus-drop-ipv6.txt",
];
const ORACLES: [&str; 2] = ["ioc-finder", "iocextract"];

/// The deliberate differences, by key: why ti-ingest reads a list differently from the oracles.
const REASONS: &[(&str, &str)] = &[
    (
        "part-of-a-url",
        "the oracle also reports a piece of a URL the list gives whole (its host, a hash-like or \
         dotted-number run in its path, or the URL cut at an '@'): a line is one indicator",
    ),
    (
        "url-kept-whole",
        "ti-ingest keeps the whole URL where the oracle cuts it (at an '@' in the path)",
    ),
    (
        "schemeless-url",
        "a scheme-less `host/path` line: ti-ingest adds `http://` (a STIX URL needs a scheme), \
         the oracle reports it as written",
    ),
    (
        "host-line-as-url",
        "iocextract also reports an address or a domain alone on its line (or `ip:port`) as a \
         URL; for ti-ingest it is an IPv4 or domain indicator",
    ),
    (
        "documentation-name",
        "a name under `.example` or `.test` (reserved for documentation by RFC 2606, used in our \
         own fixture): ti-ingest accepts it for examples, ioc-finder's top-level domain list does \
         not have it",
    ),
    (
        "cidr-kept",
        "a CIDR range: ti-ingest keeps the prefix length, the oracle reports only the address (or \
         part of it), or no IPv6 range at all",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn inputs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = REALWORLD
        .iter()
        .map(|f| root().join("../shared/realworld").join(f))
        .collect();
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/vendor-shapes.txt"));
    v
}

/// type → values.
type Extraction = BTreeMap<String, BTreeSet<String>>;

fn run_oracles(paths: &[PathBuf]) -> BTreeMap<String, BTreeMap<String, Extraction>> {
    let script = root().join("scripts/prose-oracle.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(paths)
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
    serde_json::from_slice(&out.stdout).expect("the oracle script prints JSON")
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

/// What ti-ingest reads from a list: type → values (refused lines give nothing).
fn ours(path: &Path) -> Extraction {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = InputOptions::new(OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap());
    let mut d = Decoder::new(opts);
    let mut out = Vec::new();
    d.push(&bytes, &mut out).unwrap();
    assert_eq!(
        d.finish(&mut out),
        Ok(InputFormat::Text),
        "{}",
        path.display()
    );
    let mut ex = Extraction::new();
    for r in out {
        let Ok(o) = r.object else { continue };
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

fn values<'a>(ex: &'a Extraction, t: &str) -> impl Iterator<Item = &'a String> {
    ex.get(t).into_iter().flatten()
}

/// The reason a value only one side found, if a deliberate difference explains it.
fn reason(
    side_ours: bool,
    t: &str,
    v: &str,
    ours: &Extraction,
    theirs: &Extraction,
) -> Option<&'static str> {
    let host_of = |u: &str| -> String {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        rest.split(['/', ':', '?', '#'])
            .next()
            .unwrap_or("")
            .to_lowercase()
    };
    if side_ours {
        let name = match t {
            "url" => host_of(v),
            "email" => v.rsplit_once('@').map_or("", |(_, d)| d).to_string(),
            _ => v.to_string(),
        };
        if name.ends_with(".example") || name.ends_with(".test") {
            return Some("documentation-name");
        }
        if t == "url" {
            let rest = v.strip_prefix("http://").unwrap_or(v);
            if rest != v && values(theirs, "url").any(|o| o == rest) {
                return Some("schemeless-url");
            }
            if values(theirs, "url")
                .any(|o| v.starts_with(o.as_str()) || rest.starts_with(o.as_str()))
            {
                return Some("url-kept-whole");
            }
        }
        if matches!(t, "ipv4" | "ipv6") && v.contains('/') {
            return Some("cidr-kept");
        }
        return None;
    }
    match t {
        "url" => {
            let schemed = format!("http://{v}");
            if values(ours, "url")
                .any(|u| u != v && (u.starts_with(v) || (u != &schemed && u.starts_with(&schemed))))
            {
                return Some("part-of-a-url");
            }
            if !v.contains("://") && values(ours, "url").any(|u| u == &format!("http://{v}")) {
                return Some("schemeless-url");
            }
            let host = host_of(v);
            let rest = v.split_once("://").map_or("", |(_, r)| r);
            let bare = !rest.trim_end_matches('/').contains('/');
            let line_host = values(ours, "ipv4")
                .chain(values(ours, "domain"))
                .any(|h| *h == host);
            (bare && line_host).then_some("host-line-as-url")
        }
        "ipv4" | "ipv6" => {
            if values(ours, t).any(|c| c.contains('/') && c.starts_with(v)) {
                return Some("cidr-kept");
            }
            values(ours, "url")
                .any(|u| u.contains(v))
                .then_some("part-of-a-url")
        }
        _ => values(ours, "url")
            .any(|u| u.to_lowercase().contains(v))
            .then_some("part-of-a-url"),
    }
}

/// Per (file, oracle): agreed, oracle only, ours only, and reason → count; plus unexplained values.
type Figures = BTreeMap<(String, String), (usize, usize, usize, BTreeMap<&'static str, usize>)>;

fn compare(
    paths: &[PathBuf],
    oracles: &BTreeMap<String, BTreeMap<String, Extraction>>,
) -> (Figures, Vec<String>) {
    let mut figures = Figures::new();
    let mut unexplained = Vec::new();
    for path in paths {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let ours = ours(path);
        let by_oracle = oracles
            .get(&file)
            .unwrap_or_else(|| panic!("the oracle script printed nothing for {file}"));
        for oracle in ORACLES {
            let theirs: Extraction = by_oracle[oracle]
                .iter()
                .map(|(t, vs)| (t.clone(), vs.iter().map(|v| normalise(t, v)).collect()))
                .collect();
            let (mut agreed, mut only_theirs, mut only_ours) = (0, 0, 0);
            let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
            // Only the types the oracle extracts at all (iocextract has no domains).
            for (t, their_values) in &theirs {
                let empty = BTreeSet::new();
                let mine = ours.get(t).unwrap_or(&empty);
                agreed += their_values.intersection(mine).count();
                for (side_ours, set) in [
                    (false, their_values.difference(mine)),
                    (true, mine.difference(their_values)),
                ] {
                    for v in set {
                        if side_ours {
                            only_ours += 1;
                        } else {
                            only_theirs += 1;
                        }
                        match reason(side_ours, t, v, &ours, &theirs) {
                            Some(r) => *reasons.entry(r).or_default() += 1,
                            None => unexplained.push(format!(
                                "{file} {oracle} {} {t} {v}",
                                if side_ours {
                                    "ours-only"
                                } else {
                                    "oracle-only"
                                }
                            )),
                        }
                    }
                }
            }
            figures.insert(
                (file.clone(), oracle.to_string()),
                (agreed, only_theirs, only_ours, reasons),
            );
        }
    }
    (figures, unexplained)
}

fn render(figures: &Figures) -> String {
    let mut s = String::from(
        "# Text lists against ioc-finder and iocextract

Generated by `UPDATE_TEXT_ORACLE=1 cargo test -p ti-core --test text_oracle`; the normal run
checks that this file matches what the three tools read now, and fails on any difference no
reason below explains.

The inputs are the genuine vendor lists in `../shared/realworld/` (origins in its README: Cisco
Talos, Unit 42, Spamhaus), read in place, and `vendor-shapes.txt` here (our own, in their shapes).
The oracles run on the files as they are (`scripts/prose-oracle.sh`: ioc-finder 9.4.1's
`find_iocs` with its defaults, iocextract 1.16.1's `extract_*` with `refang=True`); ti-ingest reads
them as text lists. Compared per indicator type, over the types the oracle extracts (iocextract
has no domains; neither reports file names).

## Reasons

",
    );
    for (k, r) in REASONS {
        let n: usize = figures
            .values()
            .map(|f| f.3.get(k).copied().unwrap_or(0))
            .sum();
        s.push_str(&format!("- **{k}** ({n}): {r}\n"));
    }
    s.push_str(
        "\n## Agreement per file\n\n| file | oracle | both | oracle only | ti-ingest only | explained by |\n|---|---|---|---|---|---|\n",
    );
    for ((f, o), (a, t, m, reasons)) in figures {
        let why: Vec<String> = reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!(
            "| {f} | {o} | {a} | {t} | {m} | {} |\n",
            if why.is_empty() {
                "—".to_string()
            } else {
                why.join(", ")
            }
        ));
    }
    s
}

#[test]
fn text_lists_match_the_oracles_but_for_deliberate_differences() {
    let paths = inputs();
    for p in &paths {
        assert!(p.is_file(), "{} is missing", p.display());
    }
    let oracles = run_oracles(&paths);
    let (figures, unexplained) = compare(&paths, &oracles);
    assert!(
        unexplained.is_empty(),
        "{} differences no reason explains:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    let md = render(&figures);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/ORACLE.md");
    if std::env::var_os("UPDATE_TEXT_ORACLE").is_some() {
        std::fs::write(&file, &md).unwrap();
    }
    let kept = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(
        kept, md,
        "tests/fixtures/text/ORACLE.md is out of date: review, then run with UPDATE_TEXT_ORACLE=1"
    );
}
