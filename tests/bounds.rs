//! Bounded memory under hostile input (issue 12 items 2, 3 and 6), through the real handler
//! process driven as the Functions host drives it (Azurite, the identity stand-in, the
//! simulator), with the handler's peak RSS read from `/proc/<pid>/status` (`VmHWM`, the
//! high-water mark of its resident set: Linux `proc(5)`).

mod common;

use std::io::Write;
use std::time::Duration;

use devkit::stack::{BLOB_EVENTS_QUEUE, INBOX_CONTAINER, REPORTS_CONTAINER};
use devkit::{Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};

const HANDLER: &str = env!("CARGO_BIN_EXE_ti-ingest");

/// Bounds of issue 12: one hostile input, and four at once.
const SINGLE_INPUT_MAX_RSS: u64 = 256 << 20;
const FOUR_INPUTS_MAX_RSS: u64 = 512 << 20;

async fn stack(extra_env: &[(&str, &str)]) -> Stack {
    // A quota the million-record inputs never reach.
    let sim = SimConfig {
        requests_per_window: 10_000,
        window: Duration::from_secs(1),
        ..Default::default()
    };
    Stack::for_test(StackConfig::with(sim, extra_env)).await
}

/// The handler's CPU seconds so far (utime + stime, `/proc/<pid>/stat` fields 14 and 15, in
/// clock ticks of 100 Hz, the Linux default `USER_HZ`).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// The handler's peak resident set so far (`VmHWM` in `/proc/<pid>/status`, in kB).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb * 1024
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// How many bad lines: a million in CI; `TI_BOUNDS_LINES` scales it for a manual run.
fn bad_lines() -> u64 {
    std::env::var("TI_BOUNDS_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A ~2 KB gzip of a million lines that are no observable: every record is rejected, through
/// the blob path in work items, and the report is assembled from their checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_bad_lines_in_a_tiny_gzip_stay_within_the_memory_bound() {
    let n = bad_lines();
    // Work items as long as the record count allows: they end at the handler's bound on held
    // report entries (16 MiB, about 70,000 such records), not at a record count.
    let stack = stack(&[
        ("TI_MAX_REQUESTS_PER_MINUTE", "100000"),
        ("TI_WORK_ITEM_RECORDS", "10000000"),
    ])
    .await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let body = gzip(&b"x\n".repeat(n as usize));
    eprintln!("{n} lines, {} bytes of gzip", body.len());
    let name = "hostile/million-bad-lines.txt.gz";
    let len = stack.upload_inbox(name, body).await.unwrap();
    let event = devkit::host::event_grid_message(&devkit::host::blob_created_event(
        &stack.blob_url(),
        INBOX_CONTAINER,
        name,
        len,
    ));
    stack
        .storage()
        .put_message(BLOB_EVENTS_QUEUE, &event)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let deliveries = handler
        .driver()
        .pump_queues(
            stack.storage(),
            &Stack::default_routes(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let peak = peak_rss(handler.pid());
    eprintln!(
        "{} invocations in {:.1} s (handler CPU {:.1} s), handler peak RSS {} MiB",
        deliveries.len(),
        started.elapsed().as_secs_f64(),
        cpu_secs(handler.pid()),
        peak >> 20
    );
    let checked = std::time::Instant::now();
    assert!(deliveries.iter().all(|(_, d)| d.final_status == 200));
    if n == 1_000_000 {
        // The event and the work items, each ended by the held-entries bound (16 MiB), not by
        // the record count: with today's messages about 47,000 records each. How many exactly
        // depends on the length of each rejection's message; more than one proves the bound
        // ended the items, and the record count alone (TI_WORK_ITEM_RECORDS raised above)
        // would have made it one.
        assert!(
            (2..=40).contains(&deliveries.len()),
            "{} invocations",
            deliveries.len()
        );
    }
    let report = stack.report(name).await.unwrap().expect("the final report");
    assert_eq!(
        report["summary"],
        json!({"records": n, "uploaded": 0, "rejected": n})
    );
    // report.json lists the first 10,000 errors, counts them all, and names the file with the
    // rest; every rejected line is in rejected.ndjson.
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 10_000.min(n as usize));
    assert_eq!(errors[0]["recordIndex"], 0);
    assert_eq!(errors[0]["code"], "not_an_indicator");
    assert_eq!(report["errorCounts"], json!({"not_an_indicator": n}));
    let stack = &stack;
    let read = |suffix: &str| {
        let name = format!("{name}{suffix}");
        async move {
            String::from_utf8(
                stack
                    .storage()
                    .read_blob(REPORTS_CONTAINER, &name)
                    .await
                    .unwrap(),
            )
            .unwrap()
        }
    };
    if n > 10_000 {
        assert_eq!(
            report["moreErrorsIn"],
            format!("{name}.errors.ndjson"),
            "{:?}",
            report.get("moreErrorsIn")
        );
        let more = read(".errors.ndjson").await;
        let mut count = 0u64;
        for (i, line) in more.lines().enumerate() {
            if i == 0 || i as u64 == n - 10_001 {
                let e: Value = serde_json::from_str(line).unwrap();
                assert_eq!(e["recordIndex"], 10_000 + i as u64);
                assert_eq!(e["line"], 10_001 + i as u64);
                assert_eq!(e["code"], "not_an_indicator");
            }
            count += 1;
        }
        assert_eq!(count, n - 10_000);
    }
    let rejected = read(".rejected.ndjson").await;
    assert_eq!(rejected.len() as u64, 2 * n);
    assert!(rejected.lines().all(|l| l == "x"));
    eprintln!(
        "report files checked in {:.1} s",
        checked.elapsed().as_secs_f64()
    );
    assert!(peak <= SINGLE_INPUT_MAX_RSS, "peak RSS {} MiB", peak >> 20);
}

/// Four 40 MiB bodies posted to `Ingest` at once: each is refused 413 through the HTTP output
/// binding `res` (the handler's own answer is 200: the host turns any other into a 500), and
/// the envelopes are read through without being kept, so the handler stays within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_40_mib_bodies_get_413_through_res_within_the_memory_bound() {
    let stack = stack(&[]).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let body = vec![0x1f_u8; 40 << 20];
    let request =
        devkit::host::HttpTriggerRequest::post("indicators", "application/octet-stream", body);
    let envelope = devkit::host::http_invocation("Ingest", "req", &request);
    drop(request);
    let driver = handler.driver();
    let answers =
        futures::future::join_all((0..4).map(|_| driver.invoke("Ingest", &envelope))).await;
    let peak = peak_rss(handler.pid());
    eprintln!("handler peak RSS {} MiB", peak >> 20);
    assert_eq!(answers.len(), 4);
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
        let res = answer
            .http_output("res")
            .expect("the answer goes through res");
        assert_eq!(res.status, 413, "{:?}", res.body);
        assert_eq!(res.body["inputError"]["code"], "input_too_large");
        assert!(
            res.body["inputError"]["message"]
                .as_str()
                .unwrap()
                .contains("more than a body of at most 4194304 bytes"),
            "{:?}",
            res.body
        );
        assert_eq!(
            res.body["summary"],
            json!({"records": 0, "uploaded": 0, "rejected": 0})
        );
    }
    assert!(peak <= FOUR_INPUTS_MAX_RSS, "peak RSS {} MiB", peak >> 20);
    // A body just over the limit is decoded and measured exactly; also 413 through res.
    let request = devkit::host::HttpTriggerRequest::post(
        "indicators",
        "application/octet-stream",
        vec![b' '; (4 << 20) + 1],
    );
    let answer = driver.invoke_http("Ingest", "req", &request).await.unwrap();
    assert_eq!(answer.status, 200);
    let res = answer.http_output("res").unwrap();
    assert_eq!(res.status, 413);
    assert_eq!(
        res.body["inputError"]["message"],
        "the body is 4194305 bytes; this function accepts at most 4194304 (TI_MAX_HTTP_BYTES): drop larger files into the inbox container instead"
    );
}

/// A record nested 100 deep between two good ones (the bound is 64) is that record's
/// `record_too_deep`; the records around it are read, counted and uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_nested_100_deep_is_its_own_error_between_two_good_ones() {
    let stack = stack(&[]).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let deep = format!(
        r#"{{"type":"indicator","x":{}1{}}}"#,
        "[".repeat(99),
        "]".repeat(99)
    );
    let body = format!(
        "[{},\n{deep},\n{}]",
        common::indicator(1),
        common::indicator(2)
    );
    let name = "hostile/deep.json";
    let delivery = stack
        .ingest_blob(handler.driver(), name, body)
        .await
        .unwrap();
    assert_eq!(delivery.final_status, 200);
    let report = stack.report(name).await.unwrap().unwrap();
    assert_eq!(
        report["summary"],
        json!({"records": 3, "uploaded": 2, "rejected": 1})
    );
    assert!(report.get("inputError").is_none(), "{report}");
    let e = &report["errors"][0];
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&e["recordIndex"], &e["line"], &e["code"], &e["stage"]),
        (
            &json!(1),
            &json!(2),
            &json!("record_too_deep"),
            &json!("parse")
        )
    );
    assert_eq!(
        e["messages"][0],
        "the record nests arrays and objects deeper than 64 levels, the nesting bound"
    );
    assert_eq!(report["errorCounts"], json!({"record_too_deep": 1}));
    assert!(report.get("moreErrorsIn").is_none());
    let rejected = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, &format!("{name}.rejected.ndjson"))
        .await
        .unwrap();
    assert_eq!(String::from_utf8(rejected).unwrap(), format!("{deep}\n"));
    let expected: std::collections::BTreeSet<String> = [1, 2]
        .iter()
        .map(|i| format!("indicator--{}", common::uuid_for(*i)))
        .collect();
    assert_eq!(stack.sim().accepted_ids(), expected);
}

/// A small body that expands into more rejected records than one invocation may hold (a
/// 1 KB gzip of 200,000 bad lines): the records up to the bound are reported and the caller
/// gets 413 `input_too_large` through `res`, pointing at the inbox container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_body_whose_rejections_outgrow_an_invocation_gets_413_through_res() {
    let stack = stack(&[]).await;
    let handler = stack.spawn_handler(HANDLER).await.unwrap();
    let body = gzip(&b"x\n".repeat(200_000));
    assert!(body.len() < 2048, "{} bytes", body.len());
    let request =
        devkit::host::HttpTriggerRequest::post("indicators", "application/octet-stream", body);
    let answer = handler
        .driver()
        .invoke_http("Ingest", "req", &request)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    let res = answer.http_output("res").unwrap();
    assert_eq!(res.status, 413, "{:?}", res.body["inputError"]);
    let e = &res.body["inputError"];
    assert_eq!(e["code"], "input_too_large");
    // The same bound as a work item's (tests above): how many records it holds depends on the
    // length of each rejection's message, so the count is read from the message and checked
    // against the report.
    let message = e["message"].as_str().unwrap();
    let prefix = "the input's rejected records and warnings outgrow what one invocation may hold: the first ";
    assert!(message.starts_with(prefix), "{e}");
    let reported: u64 = message[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|err| panic!("{e}: {err}"));
    assert!(
        (10_000..200_000).contains(&reported),
        "{reported} records reported"
    );
    assert!(
        message.ends_with(
            "drop the file into the inbox container instead, where it is processed in work items"
        ),
        "{e}"
    );
    assert_eq!(
        res.body["summary"],
        json!({"records": reported, "uploaded": 0, "rejected": reported})
    );
    assert_eq!(res.body["errors"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        res.body["errorCounts"],
        json!({ "not_an_indicator": reported })
    );
    assert!(peak_rss(handler.pid()) <= SINGLE_INPUT_MAX_RSS);
}
