//! The lifecycle index at scale (bench/lifecycle.sh, BENCHMARKS.md): one process per run of a
//! list feed of `N` indicators, so `/usr/bin/time -f %M` gives each run's peak RSS.
//!
//! - `first DIR N`: the feed's first run: N accepted indicators go through the run's
//!   [`Snapshot`] (the pipeline's hook) and are merged with an empty index → `DIR/1.idx`.
//! - `changed DIR N`: the next run: 1% of them dropped, 1% new; merged with `DIR/1.idx`,
//!   the dropped ones retired (through the `dry-run` target: the requests are built, not
//!   sent) → `DIR/2.idx`.
//! - `unchanged DIR N`: a 304 run: `DIR/2.idx` read and checked for refreshes (none due) →
//!   `DIR/3.idx`.
//!
//! The objects are shaped like the converter's for a text list (docs/PULL.md: one indicator
//! per line of an IP blocklist), with the feed's labels.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use ti_ingest::lifecycle::{self, store::IndexReader, Snapshot, Step};
use ti_ingest::settings::Env;
use ti_ingest::upload::UploadSettings;
use ti_ingest::upload::Uploader;
use time::OffsetDateTime;

fn indicator(i: u64, now: &str, until: &str) -> Map<String, Value> {
    let uuid = uuid::Uuid::from_u128(0x6f1b_5b7e_0000_4000_8000_0000_0000_0000 | u128::from(i));
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{uuid}"),
        "created": now, "modified": now,
        "name": ip,
        "pattern": format!("[ipv4-addr:value = '{ip}']"),
        "pattern_type": "stix", "indicator_types": ["malicious-activity"],
        "valid_from": now, "valid_until": until,
        "confidence": 60,
        "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
        "labels": ["blocklist"]
    })
    .as_object()
    .expect("an object")
    .clone()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [phase, dir, n] = args.as_slice() else {
        bail!("usage: lifecycle-bench first|changed|unchanged DIR N");
    };
    let dir = std::path::PathBuf::from(dir);
    let n: u64 = n.parse().context("N")?;
    let env = Env::from_pairs(vec![("TI_TARGET".to_string(), "dry-run".to_string())]);
    let uploader = Uploader::new(UploadSettings::from_env(&env)?, None)?;
    let now = OffsetDateTime::now_utc();
    let stamp = ti_core::convert::stix_timestamp(now);
    let until = ti_core::convert::stix_timestamp(now + time::Duration::days(90));
    let step = Step {
        uploader: &uploader,
        deadline: None,
        now,
        valid_days: 90,
    };
    let started = Instant::now();
    let (saved, snapshot, out) = match phase.as_str() {
        "first" => (IndexReader::empty(), Some(0..n), "1.idx"),
        "changed" => (
            IndexReader::open(std::fs::File::open(dir.join("1.idx"))?)?,
            Some(0..n + n / 100),
            "2.idx",
        ),
        "unchanged" => (
            IndexReader::open(std::fs::File::open(dir.join("2.idx"))?)?,
            None,
            "3.idx",
        ),
        other => bail!("unknown phase {other}"),
    };
    let sorted = match snapshot {
        None => None,
        Some(ids) => {
            let s = Snapshot::new(now, lifecycle::SORT_BUDGET_BYTES);
            for i in ids {
                // `changed`: every hundredth indicator is no longer listed.
                if phase == "changed" && i % 100 == 7 && i < n {
                    continue;
                }
                s.accepted(&indicator(i, &stamp, &until));
            }
            Some(s.finish()?)
        }
    };
    let (mut file, summary) = lifecycle::apply(saved, sorted, true, &step).await?;
    let bytes = std::io::copy(&mut file, &mut std::fs::File::create(dir.join(out))?)?;
    println!(
        "{phase}: {:.2} s, index {:.1} MB; listed {}, added {}, retired {}, refreshed {}, failed {}",
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6,
        summary.listed,
        summary.added,
        summary.retired,
        summary.refreshed,
        summary.failed
    );
    Ok(())
}
