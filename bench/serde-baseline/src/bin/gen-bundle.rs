//! Writes deterministic STIX 2.1 bundles of realistic indicators for bench/validate.sh.
//!
//! Usage: gen-bundle [--seed S] OUT:COUNT [OUT:COUNT ...]
//!
//! Every file holds the first COUNT objects of the same sequence (so a 100,000-object file is a
//! slice of the 1,000,000-object one), pretty-printed with a 2-space indent as exporters write.
//! Indicators: uuid v4 ids, RFC 3339 timestamps with milliseconds (created ≤ modified,
//! valid_from ≤ valid_until, all valid_until in the future), single-comparison patterns over a
//! mix of observable types (IPv4 and CIDR, IPv6, domain, URL, e-mail, MD5/SHA-1/SHA-256, file
//! name), indicator_types, labels, confidence, TLP marking, created_by_ref, and on some
//! records kill_chain_phases and external_references. Every record is valid for ti-ingest
//! and for OASIS stix2.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// splitmix64: fast, deterministic, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn uuid4(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
    fn word(&mut self) -> String {
        const SYL: &[&str] = &[
            "al", "be", "cor", "da", "ex", "fin", "go", "hub", "in", "jet", "ko", "lux", "mar",
            "net", "or", "pay", "qu", "ra", "sec", "tor", "up", "vo", "web", "xy", "zen",
        ];
        let n = 2 + self.below(3);
        (0..n).map(|_| self.pick(SYL)).collect()
    }
}

/// Milliseconds since the Unix epoch → `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

const TLDS: &[&str] = &[
    "com", "net", "org", "info", "io", "ru", "xyz", "top", "cn", "de",
];
const LABELS: &[&str] = &[
    "phishing",
    "c2",
    "botnet",
    "ransomware",
    "emotet",
    "qakbot",
    "cobalt-strike",
    "apt29",
    "lazarus",
    "scanner",
    "spam",
    "malware-distribution",
    "credential-theft",
    "tor-exit",
    "cryptomining",
    "loader",
    "infostealer",
    "brute-force",
    "exploit-kit",
    "watchlist",
];
const INDICATOR_TYPES: &[&str] = &[
    "malicious-activity",
    "anomalous-activity",
    "attribution",
    "compromised",
    "benign",
    "unknown",
];
const PHASES: &[&str] = &[
    "reconnaissance",
    "initial-access",
    "execution",
    "persistence",
    "command-and-control",
    "exfiltration",
    "impact",
];
const TLP: &[&str] = &[
    // TLP:WHITE/CLEAR, GREEN, AMBER, RED (STIX 2.1 predefined marking definitions).
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
];
const IDENTITY: &str = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01";

/// (observable description, object path, value) for one indicator.
fn observable(r: &mut Rng) -> (&'static str, &'static str, String) {
    let domain = |r: &mut Rng| format!("{}.{}", r.word(), r.pick(TLDS));
    match r.below(100) {
        0..=21 => {
            let ip = format!(
                "{}.{}.{}.{}",
                1 + r.below(223),
                r.below(256),
                r.below(256),
                1 + r.below(254)
            );
            ("IPv4 address", "ipv4-addr:value", ip)
        }
        22..=24 => {
            let net = format!(
                "{}.{}.{}.0/24",
                1 + r.below(223),
                r.below(256),
                r.below(256)
            );
            ("IPv4 range", "ipv4-addr:value", net)
        }
        25..=29 => {
            let ip = format!(
                "2001:db8:{:x}:{:x}::{:x}",
                r.below(0x10000),
                r.below(0x10000),
                1 + r.below(0xFFFF)
            );
            ("IPv6 address", "ipv6-addr:value", ip)
        }
        30..=49 => ("domain", "domain-name:value", domain(r)),
        50..=64 => {
            let scheme = if r.below(3) == 0 { "http" } else { "https" };
            let url = format!(
                "{scheme}://{}/{}/{}.php?id={}",
                domain(r),
                r.word(),
                r.word(),
                r.below(100_000)
            );
            ("URL", "url:value", url)
        }
        65..=69 => {
            let email = format!("{}.{}@{}", r.word(), r.word(), domain(r));
            ("e-mail address", "email-addr:value", email)
        }
        70..=81 => ("SHA-256 hash", "file:hashes.'SHA-256'", r.hex(64)),
        82..=89 => ("MD5 hash", "file:hashes.MD5", r.hex(32)),
        90..=94 => ("SHA-1 hash", "file:hashes.'SHA-1'", r.hex(40)),
        _ => {
            let ext = r.pick(&["exe", "dll", "js", "docm", "lnk", "ps1"]);
            let name = format!("{}_{}.{ext}", r.word(), r.below(10_000));
            ("file name", "file:name", name)
        }
    }
}

fn list(out: &mut String, key: &str, items: &[&str], last: bool) {
    out.push_str(&format!("      \"{key}\": [\n"));
    for (i, it) in items.iter().enumerate() {
        let comma = if i + 1 < items.len() { "," } else { "" };
        out.push_str(&format!("        \"{it}\"{comma}\n"));
    }
    out.push_str(if last { "      ]\n" } else { "      ],\n" });
}

/// One indicator as pretty JSON, indented for a bundle's `objects` array (no trailing newline
/// or comma).
fn indicator(r: &mut Rng, i: u64) -> String {
    // 2026-01-01T00:00:00Z .. +300 days.
    let created = 1_767_225_600_000i64 + (r.below(300 * 86_400_000)) as i64;
    let modified = created + (r.below(20 * 86_400_000)) as i64;
    let valid_until = created + ((365 + r.below(730)) * 86_400_000) as i64;
    let (what, path, value) = observable(r);
    let pattern = format!("[{path} = '{value}']");
    let campaign = r.word();
    let mut o = String::with_capacity(1400);
    o.push_str("    {\n");
    o.push_str("      \"type\": \"indicator\",\n");
    o.push_str("      \"spec_version\": \"2.1\",\n");
    o.push_str(&format!("      \"id\": \"indicator--{}\",\n", r.uuid4()));
    o.push_str(&format!("      \"created_by_ref\": \"{IDENTITY}\",\n"));
    o.push_str(&format!("      \"created\": \"{}\",\n", rfc3339(created)));
    o.push_str(&format!("      \"modified\": \"{}\",\n", rfc3339(modified)));
    o.push_str(&format!("      \"name\": \"Malicious {what} #{i}\",\n"));
    o.push_str(&format!(
        "      \"description\": \"{what} seen in the {campaign} campaign; block at the perimeter.\",\n"
    ));
    let t1 = r.pick(INDICATOR_TYPES);
    let t2 = r.pick(INDICATOR_TYPES);
    if t1 != t2 && r.below(4) == 0 {
        list(&mut o, "indicator_types", &[t1, t2], false);
    } else {
        list(&mut o, "indicator_types", &[t1], false);
    }
    o.push_str(&format!("      \"pattern\": \"{pattern}\",\n"));
    o.push_str("      \"pattern_type\": \"stix\",\n");
    o.push_str("      \"pattern_version\": \"2.1\",\n");
    o.push_str(&format!(
        "      \"valid_from\": \"{}\",\n",
        rfc3339(created)
    ));
    if r.below(10) < 7 {
        o.push_str(&format!(
            "      \"valid_until\": \"{}\",\n",
            rfc3339(valid_until)
        ));
    }
    if r.below(10) < 3 {
        o.push_str("      \"kill_chain_phases\": [\n        {\n");
        o.push_str("          \"kill_chain_name\": \"lockheed-martin-cyber-kill-chain\",\n");
        o.push_str(&format!(
            "          \"phase_name\": \"{}\"\n",
            r.pick(PHASES)
        ));
        o.push_str("        }\n      ],\n");
    }
    let n = 1 + r.below(3) as usize;
    let mut labels: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        let l = r.pick(LABELS);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    list(&mut o, "labels", &labels, false);
    o.push_str(&format!("      \"confidence\": {},\n", r.below(101)));
    if r.below(10) < 2 {
        o.push_str("      \"external_references\": [\n        {\n");
        o.push_str("          \"source_name\": \"vendor-report\",\n");
        o.push_str(&format!(
            "          \"url\": \"https://intel.example.com/reports/{}\"\n",
            r.uuid4()
        ));
        o.push_str("        }\n      ],\n");
    }
    let tlp = TLP[r.below(TLP.len() as u64) as usize];
    list(&mut o, "object_marking_refs", &[tlp], true);
    o.push_str("    }");
    o
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut seed = 0x7469_2d69_6e67_6573u64;
    if args.first().map(String::as_str) == Some("--seed") && args.len() > 1 {
        seed = match args[1].parse() {
            Ok(s) => s,
            Err(_) => {
                eprintln!("gen-bundle: --seed takes an integer");
                return ExitCode::from(2);
            }
        };
        args.drain(..2);
    }
    let mut outs = Vec::new();
    for a in &args {
        let Some((path, n)) = a.rsplit_once(':') else {
            eprintln!("usage: gen-bundle [--seed S] OUT:COUNT [OUT:COUNT ...]");
            return ExitCode::from(2);
        };
        let Ok(n) = n.parse::<u64>() else {
            eprintln!("gen-bundle: bad count in {a}");
            return ExitCode::from(2);
        };
        let f = match File::create(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("gen-bundle: creating {path}: {e}");
                return ExitCode::from(2);
            }
        };
        outs.push((BufWriter::with_capacity(1 << 20, f), n));
    }
    if outs.is_empty() {
        eprintln!("usage: gen-bundle [--seed S] OUT:COUNT [OUT:COUNT ...]");
        return ExitCode::from(2);
    }
    let mut r = Rng(seed);
    let bundle_id = r.uuid4();
    let max = outs.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let result = (|| -> std::io::Result<()> {
        for (w, _) in outs.iter_mut() {
            write!(
                w,
                "{{\n  \"type\": \"bundle\",\n  \"id\": \"bundle--{bundle_id}\",\n  \"objects\": [\n"
            )?;
        }
        for i in 0..max {
            let o = indicator(&mut r, i);
            for (w, n) in outs.iter_mut() {
                if i < *n {
                    w.write_all(o.as_bytes())?;
                    w.write_all(if i + 1 < *n { b",\n" } else { b"\n" })?;
                }
            }
        }
        for (w, _) in outs.iter_mut() {
            w.write_all(b"  ]\n}\n")?;
            w.flush()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-bundle: {e}");
            ExitCode::from(2)
        }
    }
}
