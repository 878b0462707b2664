//! The plain `serde_json` baseline of bench/validate.sh (issue 3, "Benchmark"): how fast does
//! serde_json alone turn the same bytes into `serde_json::Value`?
//!
//! Usage: serde-baseline whole|stream FILE
//! - `whole`: reads the file into memory and `serde_json::from_slice::<Value>` the whole document
//!   (the plainest use of serde_json; memory grows with the file).
//! - `stream`: `serde_json::Deserializer::from_reader` over a buffered file, each element of the
//!   bundle's `objects` array deserialised into its own `Value` and dropped (bounded memory, the
//!   constraint ti-ingest works under).
//!
//! Prints `records=N` (objects in the bundle's `objects` array) and the in-process seconds to
//! stdout; the caller measures wall time and peak RSS from outside.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;
use std::time::Instant;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (mode, path) = match args.as_slice() {
        [_, m, p] => (m.as_str(), p.as_str()),
        _ => {
            eprintln!("usage: serde-baseline whole|stream FILE");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = match mode {
        "whole" => whole(path),
        "stream" => stream(path),
        _ => Err(format!("unknown mode {mode}")),
    };
    match result {
        Ok(n) => {
            println!("records={n} seconds={:.3}", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("serde-baseline: {e}");
            ExitCode::from(2)
        }
    }
}

fn whole(path: &str) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let n = value
        .get("objects")
        .and_then(Value::as_array)
        .map(|a| a.len() as u64)
        .ok_or("no objects array")?;
    // Freeing a million-object tree is part of using it; keep it in the measurement.
    drop(value);
    Ok(n)
}

fn stream(path: &str) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, file));
    let n = de
        .deserialize_map(BundleVisitor)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(n)
}

/// Visits the bundle's keys; `objects` is streamed, everything else skipped.
struct BundleVisitor;

impl<'de> Visitor<'de> for BundleVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a STIX bundle")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(key) = map.next_key::<String>()? {
            if key == "objects" {
                n += map.next_value_seed(ObjectsSeed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(n)
    }
}

struct ObjectsSeed;

impl<'de> DeserializeSeed<'de> for ObjectsSeed {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ObjectsSeed {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(v) = seq.next_element::<Value>()? {
            std::hint::black_box(&v);
            n += 1;
        }
        Ok(n)
    }
}
