//! Writes the same deterministic observables as an IOC text list and as a `type,value` CSV, for
//! bench/validate.sh's list inputs.
//!
//! Usage: gen-lists [--seed S] COUNT TEXT_OUT CSV_OUT
//!
//! Record i is the same observable in both files (line i+1 of the text list, row i+2 of the
//! CSV, after its `type,value` header): a mix of IPv4 addresses and CIDR ranges, IPv6, domains,
//! URLs, e-mail addresses and MD5/SHA-1/SHA-256 hashes, every one distinct (no `duplicate` in
//! the report) and valid, so a run validates COUNT records with none rejected.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// splitmix64, as gen-bundle uses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo",
    "juniper", "krypton", "lumen", "meadow", "nimbus", "onyx", "prairie",
];
const TLDS: &[&str] = &["com", "net", "org", "info", "io", "co.uk"];

/// Record `i`: its CSV type name and its value.
fn record(i: u64, rng: &mut Rng) -> (&'static str, String) {
    let word = WORDS[(i % WORDS.len() as u64) as usize];
    let tld = TLDS[((i / 7) % TLDS.len() as u64) as usize];
    // Distinct per i: the index is in every value (or the hash is random, 128+ bits).
    let (a, b, c) = ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF);
    match i % 10 {
        0 | 1 => ("ipv4-addr", format!("{}.{a}.{b}.{c}", 11 + (i >> 24) % 200)),
        2 => (
            "ipv4-addr",
            format!("{}.{a}.{b}.{c}/32", 111 + (i >> 24) % 100),
        ),
        3 => (
            "ipv6-addr",
            format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xFFFF),
        ),
        4 => ("domain-name", format!("{word}-{i}.{tld}")),
        5 => (
            "url",
            format!("https://{word}-{i}.{tld}/gate.php?id={}", rng.next() % 1000),
        ),
        6 => ("email-addr", format!("{word}.{i}@{word}-mail.{tld}")),
        7 => ("md5", rng.hex(32)),
        8 => ("sha1", rng.hex(40)),
        _ => ("sha256", rng.hex(64)),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut seed = 42u64;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seed" {
            seed = it
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seed needs a number")?;
        } else {
            rest.push(a.clone());
        }
    }
    let [count, text, csv] = rest.as_slice() else {
        return Err("usage: gen-lists [--seed S] COUNT TEXT_OUT CSV_OUT".into());
    };
    let count: u64 = count.parse().map_err(|_| format!("bad COUNT {count}"))?;
    let open = |p: &str| {
        File::create(p)
            .map(|f| BufWriter::with_capacity(1 << 20, f))
            .map_err(|e| format!("{p}: {e}"))
    };
    let (mut t, mut c) = (open(text)?, open(csv)?);
    let mut rng = Rng(seed);
    let io = |e: std::io::Error| e.to_string();
    writeln!(c, "type,value").map_err(io)?;
    for i in 0..count {
        let (ty, value) = record(i, &mut rng);
        writeln!(t, "{value}").map_err(io)?;
        writeln!(c, "{ty},{value}").map_err(io)?;
    }
    t.flush().map_err(io)?;
    c.flush().map_err(io)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-lists: {e}");
            ExitCode::from(2)
        }
    }
}
