//! Indicator lifecycle (issue 15, part 2; README "Indicator lifecycle", docs/PULL.md) against
//! the devkit stack (Azurite, the identity endpoint, the Sentinel simulator) and a list feed
//! served on loopback: which ids are retired, refreshed and re-sent, checked on the objects
//! the simulator holds (the latest version of each id, as the service keeps them).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::feeds::FeedServer;
use devkit::stack::{CONFIG_CONTAINER, REPORTS_CONTAINER};
use devkit::{Stack, StackConfig};
use sentinel_sim::SimConfig;
use serde_json::{json, Value};
use ti_ingest::pull::{FeedOutcome, FeedStatus};
use ti_ingest::settings::Env;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

async fn pull(stack: &Stack) -> FeedOutcome {
    // The Defender target's host is the simulator too (feeds that name `defender`).
    let mut env = stack.handler_env();
    env.push(("TI_DEFENDER_BASE_URL".into(), stack.sim().url()));
    let app = ti_ingest::startup::AppState::build(&Env::from_pairs(env)).unwrap();
    let mut outcomes = app.puller.run(None).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

async fn report(stack: &Stack, o: &FeedOutcome) -> Value {
    let bytes = stack
        .storage()
        .read_blob(REPORTS_CONTAINER, o.report.as_ref().unwrap())
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn id(i: usize) -> String {
    format!("indicator--{}", common::uuid_for(i))
}

fn ids(list: &[usize]) -> BTreeSet<String> {
    list.iter().map(|&i| id(i)).collect()
}

fn ts(t: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(t.as_str().unwrap(), &Rfc3339).unwrap()
}

/// The simulator's objects by id.
fn held(stack: &Stack) -> BTreeMap<String, Value> {
    stack
        .sim()
        .accepted()
        .into_iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o))
        .collect()
}

/// Ids whose latest version changed between two views of the simulator's store.
fn changed(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> BTreeSet<String> {
    after
        .iter()
        .filter(|(id, o)| before.get(*id) != Some(o))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Indicator `i` as the feed lists it; `days_left`: its own `valid_until` that many days
/// from now (else 2099).
fn listed(i: usize, days_left: Option<i64>) -> Value {
    let mut o = common::indicator(i);
    if let Some(d) = days_left {
        let until = OffsetDateTime::now_utc() + time::Duration::days(d);
        o["valid_until"] = ti_core::convert::stix_timestamp(until).into();
    }
    o
}

fn lifecycle(o: &FeedOutcome) -> (u64, u64, u64, u64, u64) {
    let l = o
        .lifecycle
        .as_ref()
        .expect("a list feed's run has lifecycle counts");
    (l.listed, l.added, l.retired, l.refreshed, l.revoked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_snapshots_retire_the_dropped_refresh_the_expiring_and_resend_the_readded() {
    common::shared_identity();
    let stack = Stack::for_test(StackConfig::default()).await;
    let server = FeedServer::default();
    let base = server.start().await;
    let put = serde_json::to_vec(&json!({"feeds": [{
        "name": "drop-list", "kind": "https", "url": format!("{base}/drop"),
        "format": "ndjson", "defaults": {"validDays": 30}
    }]}))
    .unwrap();
    stack
        .storage()
        .upload_blob(CONFIG_CONTAINER, "feeds.json", put)
        .await
        .unwrap();

    // Snapshot 1: 0, 1, 2 and 3, whose own valid_until is a day away (under half of the
    // feed's 30 days): all sent, 3 refreshed at once.
    server.set_objects(
        "drop",
        "\"1\"",
        &[
            listed(0, None),
            listed(1, None),
            listed(2, None),
            listed(3, Some(1)),
        ],
    );
    let started = OffsetDateTime::now_utc();
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!((o.summary.records, o.summary.uploaded), (4, 4));
    assert_eq!(lifecycle(&o), (4, 4, 0, 1, 0), "{}", o.line());
    let v1 = held(&stack);
    assert_eq!(
        v1.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&[0, 1, 2, 3])
    );
    let refreshed = &v1[&id(3)];
    let until = ts(&refreshed["valid_until"]);
    let now = OffsetDateTime::now_utc();
    assert!(
        until >= started + time::Duration::days(30) && until <= now + time::Duration::days(30),
        "{refreshed}"
    );
    assert!(ts(&refreshed["modified"]) >= started.replace_millisecond(0).unwrap());
    // One request for the feed's 4 records, one for the refresh.
    assert_eq!(stack.sim().requests().len(), 2);
    let r = report(&stack, &o).await;
    assert_eq!(r["lifecycle"]["refreshed"], 1, "{r}");

    // Snapshot 2: 2 dropped, 4 added. 2 is retired (valid_until now, a later modified), the
    // others stay as the feed sends them; 3 is refreshed again (the feed's own expiry is
    // still a day away).
    server.set_objects(
        "drop",
        "\"2\"",
        &[
            listed(0, None),
            listed(1, None),
            listed(3, Some(1)),
            listed(4, None),
        ],
    );
    let before = OffsetDateTime::now_utc().replace_millisecond(0).unwrap();
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!(lifecycle(&o), (4, 1, 1, 1, 0), "{}", o.line());
    let v2 = held(&stack);
    let retired = &v2[&id(2)];
    let after = OffsetDateTime::now_utc();
    let until = ts(&retired["valid_until"]);
    assert!(until >= before && until <= after, "{retired}");
    assert!(
        ts(&retired["modified"]) > ts(&v1[&id(2)]["modified"]),
        "{retired}"
    );
    // The pattern and the rest are as listed: only the validity ended.
    assert_eq!(retired["pattern"], v1[&id(2)]["pattern"]);
    assert_eq!(changed(&v1, &v2), ids(&[2, 3, 4]));
    for i in [0, 1, 4] {
        assert_eq!(v2[&id(i)]["valid_until"], "2099-01-01T00:00:00Z", "{i}");
    }

    // Snapshot 3: 1 dropped, 2 listed again (re-sent as listed, valid until 2099 again).
    server.set_objects(
        "drop",
        "\"3\"",
        &[
            listed(0, None),
            listed(2, None),
            listed(3, Some(1)),
            listed(4, None),
        ],
    );
    let before = OffsetDateTime::now_utc().replace_millisecond(0).unwrap();
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!(lifecycle(&o), (4, 1, 1, 1, 0), "{}", o.line());
    let v3 = held(&stack);
    assert_eq!(v3[&id(2)]["valid_until"], "2099-01-01T00:00:00Z");
    let until = ts(&v3[&id(1)]["valid_until"]);
    assert!(until >= before && until <= OffsetDateTime::now_utc());
    assert_eq!(changed(&v2, &v3), ids(&[1, 2, 3]));

    // Unchanged (304): nothing is read, retired or refreshed (3 was refreshed a moment ago),
    // and nothing is sent.
    let requests = stack.sim().requests().len();
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::NotModified, "{}", o.line());
    assert_eq!(lifecycle(&o), (4, 0, 0, 0, 0), "{}", o.line());
    assert_eq!(stack.sim().requests().len(), requests);
    assert_eq!(held(&stack), v3);

    // Revoked at the source: 4 arrives revoked and is sent as it is, and is no longer
    // tracked, so dropping it later retires nothing.
    let mut revoked = listed(4, None);
    revoked["revoked"] = json!(true);
    revoked["modified"] = json!("2026-06-01T00:00:00.000Z");
    server.set_objects(
        "drop",
        "\"4\"",
        &[listed(0, None), listed(2, None), listed(3, None), revoked],
    );
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (3, 0, 0, 0, 1), "{}", o.line());
    assert_eq!(held(&stack)[&id(4)]["revoked"], true);
    server.set_objects(
        "drop",
        "\"5\"",
        &[listed(0, None), listed(2, None), listed(3, None)],
    );
    let v5 = held(&stack);
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (3, 0, 0, 0, 0), "{}", o.line());
    assert_eq!(changed(&v5, &held(&stack)), BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_retires_nothing_and_the_next_good_run_does() {
    common::shared_identity();
    // Give up quickly on a failing service: what is left is a transient failure.
    let stack = Stack::for_test(StackConfig::with(
        SimConfig::default(),
        &[("TI_MAX_ATTEMPTS", "2"), ("TI_MAX_RETRY_SECS", "2")],
    ))
    .await;
    let server = FeedServer::default();
    let base = server.start().await;
    let put = serde_json::to_vec(&json!({"feeds": [{
        "name": "flaky-list", "kind": "https", "url": format!("{base}/flaky"), "format": "ndjson"
    }]}))
    .unwrap();
    stack
        .storage()
        .upload_blob(CONFIG_CONTAINER, "feeds.json", put)
        .await
        .unwrap();
    server.set_objects(
        "flaky",
        "\"1\"",
        &[listed(0, None), listed(1, None), listed(2, None)],
    );
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (3, 3, 0, 0, 0), "{}", o.line());
    let index = || async {
        stack
            .storage()
            .read_blob(REPORTS_CONTAINER, "pulls/flaky-list/indicators.idx")
            .await
            .unwrap()
    };
    let saved = index().await;
    let v1 = held(&stack);

    // 2 dropped, but the run's uploads fail: nothing is retired, the index stays as it was.
    server.set_objects("flaky", "\"2\"", &[listed(0, None), listed(1, None)]);
    stack.sim().set_faults(0.0, 1.0);
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Failed, "{}", o.line());
    assert_eq!(o.transient, 2);
    assert!(o.lifecycle.is_none(), "{}", o.line());
    assert_eq!(index().await, saved);
    assert_eq!(held(&stack), v1);

    // Recovered: the same snapshot is read again and 2 is retired.
    stack.sim().set_faults(0.0, 0.0);
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!(lifecycle(&o), (2, 0, 1, 0, 0), "{}", o.line());
    let v3 = held(&stack);
    assert_eq!(changed(&v1, &v3), ids(&[2]));
    assert!(ts(&v3[&id(2)]["valid_until"]) <= OffsetDateTime::now_utc());
    assert_ne!(index().await, saved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_files_through_the_handler_and_the_command_line_revoke_what_they_list() {
    common::shared_identity();
    let stack = Stack::for_test(StackConfig::default()).await;
    let handler = common::spawn_app(&stack, &[]).await;
    let driver = handler.driver();
    // A text list: three indicators, ids from their observables (uuidv5), so a later file
    // naming the same observables names the same indicators.
    let d = stack
        .ingest_blob(
            driver,
            "lists/blocklist.txt",
            "203.0.113.7\nevil.example.com\n198.51.100.9\n",
        )
        .await
        .unwrap();
    assert_eq!(d.final_status, 200);
    let v1 = held(&stack);
    assert_eq!(v1.len(), 3);
    let by_pattern = |objects: &BTreeMap<String, Value>, needle: &str| -> String {
        let found: Vec<&String> = objects
            .iter()
            .filter(|(_, o)| o["pattern"].as_str().unwrap().contains(needle))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(found.len(), 1, "{needle}");
        found[0].clone()
    };
    let ip = by_pattern(&v1, "203.0.113.7");
    let domain = by_pattern(&v1, "evil.example.com");
    let other = by_pattern(&v1, "198.51.100.9");

    // Dropped under revoke/: both listed indicators are sent revoked, with a report.
    let d = stack
        .ingest_blob(
            driver,
            "revoke/retract.txt",
            "203.0.113.7\nevil.example.com\n",
        )
        .await
        .unwrap();
    assert_eq!(d.final_status, 200, "{d:?}");
    let r = stack.report("revoke/retract.txt").await.unwrap().unwrap();
    assert_eq!(
        r["summary"],
        json!({"records": 2, "uploaded": 2, "rejected": 0}),
        "{r}"
    );
    let v2 = held(&stack);
    assert_eq!(
        changed(&v1, &v2),
        BTreeSet::from([ip.clone(), domain.clone()])
    );
    for id in [&ip, &domain] {
        assert_eq!(v2[id]["revoked"], true, "{}", v2[id]);
        assert!(ts(&v2[id]["modified"]) >= ts(&v1[id]["modified"]));
    }
    assert!(v2[&other].get("revoked").is_none());

    // `ti-ingest revoke FILE`: the same, from the command line.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retract.txt");
    std::fs::write(&file, "198.51.100.9\n").unwrap();
    let report_path = dir.path().join("retract.report.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ti-ingest"))
        .arg("revoke")
        .arg(&file)
        .arg("--report")
        .arg(&report_path)
        .env_clear()
        .envs(stack.handler_env())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("1 records, 1 revoked, 0 rejected"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["summary"]["uploaded"], 1);
    let v3 = held(&stack);
    assert_eq!(changed(&v2, &v3), BTreeSet::from([other.clone()]));
    assert_eq!(v3[&other]["revoked"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_that_fails_transiently_is_retried_by_the_next_run_even_a_304() {
    common::shared_identity();
    let stack = Stack::for_test(StackConfig::with(
        SimConfig::default(),
        &[("TI_MAX_ATTEMPTS", "2"), ("TI_MAX_RETRY_SECS", "2")],
    ))
    .await;
    let server = FeedServer::default();
    let base = server.start().await;
    let put = serde_json::to_vec(&json!({"feeds": [{
        "name": "emptied", "kind": "https", "url": format!("{base}/emptied"), "format": "ndjson"
    }]}))
    .unwrap();
    stack
        .storage()
        .upload_blob(CONFIG_CONTAINER, "feeds.json", put)
        .await
        .unwrap();
    server.set_objects(
        "emptied",
        "\"1\"",
        &[listed(0, None), listed(1, None), listed(2, None)],
    );
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (3, 3, 0, 0, 0), "{}", o.line());
    let v1 = held(&stack);

    // The feed now lists one invalid record only (rejected before any request: the run
    // settles), so all three are to be retired, but the service fails every request.
    server.set_objects("emptied", "\"2\"", &[common::invalid_indicator(9, 3)]);
    stack.sim().set_faults(0.0, 1.0);
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!((o.summary.records, o.summary.rejected), (1, 1));
    let l = o.lifecycle.clone().unwrap();
    assert_eq!(
        (l.listed, l.retired, l.pending, l.failed),
        (0, 0, 3, 0),
        "{l:?}"
    );
    assert_eq!(held(&stack), v1);

    // Recovered; the feed is unchanged (304), and the pending retirements go out.
    stack.sim().set_faults(0.0, 0.0);
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::NotModified, "{}", o.line());
    let l = o.lifecycle.clone().unwrap();
    assert_eq!((l.listed, l.retired, l.pending), (0, 3, 0), "{l:?}");
    let v3 = held(&stack);
    assert_eq!(changed(&v1, &v3), ids(&[0, 1, 2]));
    for i in 0..3 {
        assert!(ts(&v3[&id(i)]["valid_until"]) <= OffsetDateTime::now_utc());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_feed_to_sentinel_and_defender_expires_what_it_drops_in_both() {
    common::shared_identity();
    let stack = Stack::for_test(StackConfig::default()).await;
    let server = FeedServer::default();
    let base = server.start().await;
    let put = serde_json::to_vec(&json!({"feeds": [{
        "name": "both", "kind": "https", "url": format!("{base}/both"), "format": "ndjson",
        "targets": ["sentinel-stix", "defender"]
    }]}))
    .unwrap();
    stack
        .storage()
        .upload_blob(CONFIG_CONTAINER, "feeds.json", put)
        .await
        .unwrap();
    // Defender's indicators by value (corpus indicator i is 10.0.0.i).
    let defender = |stack: &Stack| -> BTreeMap<String, Value> {
        stack
            .sim()
            .defender_indicators()
            .into_iter()
            .map(|d| (d["indicatorValue"].as_str().unwrap().to_string(), d))
            .collect()
    };
    server.set_objects(
        "both",
        "\"1\"",
        &[listed(0, None), listed(1, None), listed(2, None)],
    );
    let o = pull(&stack).await;
    assert_eq!(o.status, FeedStatus::Pulled, "{}", o.line());
    assert_eq!(lifecycle(&o), (3, 3, 0, 0, 0), "{}", o.line());
    let d1 = defender(&stack);
    assert_eq!(d1.len(), 3);
    assert_eq!(d1["10.0.0.2"]["expirationTime"], "2099-01-01T00:00:00Z");

    // 2 dropped: retired in both targets — in Defender its expirationTime is now (expired).
    server.set_objects("both", "\"2\"", &[listed(0, None), listed(1, None)]);
    let before = OffsetDateTime::now_utc().replace_millisecond(0).unwrap();
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (2, 0, 1, 0, 0), "{}", o.line());
    let d2 = defender(&stack);
    let expires = ts(&d2["10.0.0.2"]["expirationTime"]);
    assert!(
        expires >= before && expires <= OffsetDateTime::now_utc(),
        "{}",
        d2["10.0.0.2"]
    );
    for v in ["10.0.0.0", "10.0.0.1"] {
        assert_eq!(d2[v], d1[v], "{v}");
    }
    assert!(ts(&held(&stack)[&id(2)]["valid_until"]) <= OffsetDateTime::now_utc());

    // Listed again: active again in both.
    server.set_objects(
        "both",
        "\"3\"",
        &[listed(0, None), listed(1, None), listed(2, None)],
    );
    let o = pull(&stack).await;
    assert_eq!(lifecycle(&o), (3, 1, 0, 0, 0), "{}", o.line());
    assert_eq!(
        defender(&stack)["10.0.0.2"]["expirationTime"],
        "2099-01-01T00:00:00Z"
    );
    assert_eq!(held(&stack)[&id(2)]["valid_until"], "2099-01-01T00:00:00Z");
}
