//! Acknowledged means exactly acknowledged, with a log that fails on demand
//! (a disk that fills up partway through a write, a panic in the applier):
//! what was answered 503 is in neither memory nor the log, writes come back
//! by themselves once space is freed, a failed snapshot leaves no partial
//! file, and a crash of the applier is visible everywhere. A snapshot is
//! written beside the applier, which goes on taking batches into a new log
//! segment; a crash at any point of it loses nothing and replays nothing twice.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use statescope_exporter::config::Config;
use statescope_exporter::events::{Action, Event};
use statescope_exporter::ingest::SnapshotPolicy;
use statescope_exporter::store::Store;
use statescope_exporter::wal::{MAX_SEALED_SEGMENTS, PROBE_BYTES, Record, Snapshot, StoreCopy, Wal};
use support::{App, FlakyDisk, app_on, app_with, transition};

fn empty() -> Store {
    let config = Config::default();
    Store::new(config.catalog.clone(), config.limits.store())
}

fn opened(machine: &str) -> Record {
    let e = Event::new("circuit_breaker", machine, Action::Transition { to: "open".into() });
    Record::batch(1.0, vec![e])
}

fn log_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("events.jsonl")).unwrap().len()
}

/// The sealed log segments in `dir` (`events.<n>.jsonl`), by name.
fn segments(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("events.") && n.ends_with(".jsonl") && n != "events.jsonl")
        .collect();
    names.sort();
    names
}

/// What a crash leaves: the files of `dir` as they are now, in a new directory.
fn crash_copy(dir: &std::path::Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    copy
}

fn calls(store: &Store, machine: &str) -> u64 {
    store.get("circuit_breaker", machine).unwrap().calls[0]
}

fn call(machine: &str) -> Event {
    let success = statescope_model::contract::CallOutcome::Success;
    Event::new(
        "circuit_breaker",
        machine,
        Action::Call {
            outcome: success,
            failure_count: None,
        },
    )
}

/// A call on `machine` at `at`, applied to `store` and logged, as the applier does.
fn call_logged(wal: &mut Wal, store: &mut Store, machine: &str, at: f64) {
    store.apply(&[call(machine)], at).unwrap();
    wal.append(vec![Record::batch(at, vec![call(machine)])]).unwrap();
}

/// A checkpoint of `store` on its own thread, waited for; it must succeed.
fn checkpointed(wal: &mut Wal, store: &Store) {
    wal.start_checkpoint(StoreCopy::of(store)).unwrap();
    wal.finish_checkpoint().expect("one was started").unwrap();
}

/// A log in a new directory, on a disk that fails when the test says.
fn on_flaky_disk() -> (tempfile::TempDir, Arc<FlakyDisk>, Wal, Store) {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let (wal, store) = Wal::open_on(disk.clone(), dir.path().into(), empty()).unwrap();
    (dir, disk, wal, store)
}

fn machine_names(store: &Store) -> Vec<String> {
    store.machines().keys().map(|k| k.machine.clone()).collect()
}

#[test]
fn a_group_cut_short_by_a_full_disk_leaves_nothing_of_itself_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let (mut wal, _) = Wal::open_on(disk.clone(), dir.path().into(), empty()).unwrap();
    wal.append(vec![opened("acknowledged")]).unwrap();
    let acknowledged = log_len(dir.path());
    // Room for one more whole record and a bit: the group's first record is
    // written completely, the second one partly.
    disk.fill_after(acknowledged + 10);
    assert!(wal.append(vec![opened("refused-1"), opened("refused-2")]).is_err());
    assert_eq!(log_len(dir.path()), acknowledged, "the failed group was cut back off");
    // What the running exporter reads back agrees with what a restart replays.
    let live = wal.reload(empty()).unwrap();
    drop(wal);
    disk.free();
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    for store in [&live, &restarted] {
        let names: Vec<_> = store.machines().keys().map(|k| k.machine.clone()).collect();
        assert_eq!(names, ["acknowledged"]);
    }
}

#[test]
fn a_failed_snapshot_removes_its_partial_file_and_the_log_keeps_everything() {
    let (dir, disk, mut wal, mut store) = on_flaky_disk();
    let e = Event::new("circuit_breaker", "b1", Action::Transition { to: "open".into() });
    store.apply(std::slice::from_ref(&e), 1.0).unwrap();
    wal.append(vec![Record::batch(1.0, vec![e])]).unwrap();
    disk.fill_after(20);
    assert!(wal.checkpoint(&Snapshot::of(&store)).is_err());
    assert!(
        !dir.path().join("snapshot.json.tmp").exists(),
        "a partial snapshot was left to hold the disk's space"
    );
    disk.free();
    drop(wal);
    // One a crash left behind is removed at the start, and the log still has it all.
    std::fs::write(dir.path().join("snapshot.json.tmp"), "{\"last_rec").unwrap();
    let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
    assert!(!dir.path().join("snapshot.json.tmp").exists());
    assert_eq!(store.state_name("circuit_breaker", "b1"), Some("open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_was_answered_is_what_memory_and_a_restart_hold_when_the_disk_fills() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let app = app_on(disk.clone(), dir.path(), None);
    assert_eq!(
        app.post(transition("first", "open").to_string()).await.status,
        StatusCode::OK
    );
    // Room for about two and a half more records; 40 requests race for it.
    let record = log_len(dir.path());
    disk.fill_after(record * 5 / 2);
    let posts = (0..40).map(|i| {
        let client = app.client.clone();
        tokio::spawn(async move {
            let name = format!("m{i:02}");
            (name.clone(), client.post(transition(&name, "open").to_string()).await)
        })
    });
    let mut acknowledged = vec!["first".to_owned()];
    let mut refused = 0;
    for post in posts.collect::<Vec<_>>() {
        let (name, answer) = post.await.unwrap();
        match answer.status {
            StatusCode::OK => acknowledged.push(name),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                let error = answer.json()["error"].as_str().unwrap().to_owned();
                assert!(error.contains("could not write its log"), "{error}");
                assert!(error.contains("nothing of this request was kept"), "{error}");
                assert_eq!(answer.headers["retry-after"], "1");
            }
            other => panic!("{name}: {other} {}", answer.text),
        }
    }
    assert!(refused > 0, "the disk never filled up");
    acknowledged.sort();
    let names = |machines: Vec<(String, String)>| {
        let mut names: Vec<_> = machines.into_iter().map(|(m, _)| m).collect();
        names.sort();
        names
    };
    assert_eq!(names(app.machines().await), acknowledged, "memory after the refusals");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.text);
    assert!(ready.json()["error"].as_str().unwrap().contains("cannot be written"));

    // A stop (no final snapshot: the disk is still full), space freed, a restart.
    app.stop().unwrap();
    disk.free();
    let restarted = app_on(disk.clone(), dir.path(), None);
    assert_eq!(names(restarted.machines().await), acknowledged, "a restart");
}

#[tokio::test]
async fn writes_come_back_without_a_restart_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let app = app_on(disk.clone(), dir.path(), None);
    disk.fill_after(0);
    assert_eq!(
        app.post(transition("a", "open").to_string()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
    // Still full: still refused, quickly, and still not ready.
    assert_eq!(
        app.post(transition("a", "open").to_string()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    disk.free();
    // With no write coming, the applier's own probe finds the space.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.get("/readyz").await;
        if ready.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not ready 10 s after space was freed: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = app.post(transition("a", "open").to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(app.machines().await, [("a".to_owned(), "open".to_owned())]);
}

#[tokio::test]
async fn a_panic_in_the_applier_is_answered_500_with_its_reason_and_fails_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let app = app_on(disk.clone(), dir.path(), None);
    assert_eq!(
        app.post(transition("a", "open").to_string()).await.status,
        StatusCode::OK
    );
    disk.panic_on_next_append();
    for attempt in ["the batch in hand", "a later batch"] {
        let answer = app.post(transition("b", "open").to_string()).await;
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{attempt}: {}",
            answer.text
        );
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("the applier thread panicked: injected panic while appending"),
            "{attempt}: {error}"
        );
    }
    for path in ["/healthz", "/readyz"] {
        let answer = app.get(path).await;
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {}",
            answer.text
        );
        assert!(answer.json()["error"].as_str().unwrap().contains("panicked"), "{path}");
    }
    // Reads keep serving what was acknowledged.
    assert_eq!(app.machines().await, [("a".to_owned(), "open".to_owned())]);
    let verdict = app.stop();
    assert!(
        verdict.as_ref().is_err_and(|why| why.contains("injected panic")),
        "the applier's end must carry the panic (the process exits non-zero on it): {verdict:?}"
    );
}

#[test]
fn a_snapshot_whose_histograms_have_the_wrong_bucket_count_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = json!({"last_record": 0, "store": {"machines": [], "recent_ids": [], "jobs": [
        ["worker", "gpu", {
            "duration": {"buckets": [1, 2], "sum": 1.0, "count": 3},
            "queue_wait": {"buckets": [], "sum": 0.0, "count": 0}}]]}});
    std::fs::write(dir.path().join("snapshot.json"), snapshot.to_string()).unwrap();
    let err = Wal::open(dir.path().into(), empty())
        .err()
        .expect("a damaged snapshot opened");
    let text = err.to_string();
    assert!(
        text.contains(r#"job duration histogram of kind "worker", worker_type "gpu" has 2 buckets"#),
        "{text}"
    );
}

#[test]
fn a_probe_needs_real_room_and_replays_as_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FlakyDisk::default());
    let (mut wal, _) = Wal::open_on(disk.clone(), dir.path().into(), empty()).unwrap();
    wal.append(vec![opened("a")]).unwrap();
    let before = log_len(dir.path());
    // A few hundred bytes free is not a disk that takes writes again.
    disk.fill_after(500);
    assert!(wal.probe(2.0).is_err());
    assert_eq!(log_len(dir.path()), before);
    disk.free();
    wal.probe(2.0).unwrap();
    assert_eq!(log_len(dir.path()), before + PROBE_BYTES as u64);
    wal.append(vec![opened("b")]).unwrap();
    drop(wal);
    let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
    let names: Vec<_> = store.machines().keys().map(|k| k.machine.clone()).collect();
    assert_eq!(names, ["a", "b"]);
}

/// An exporter in `dir` that takes a snapshot after every batch, and a first
/// batch (`machine` opened) whose snapshot the disk holds on to until released.
async fn writing_a_held_snapshot(dir: &std::path::Path, machine: &str) -> (App, Arc<FlakyDisk>) {
    let disk = Arc::new(FlakyDisk::default());
    let policy = SnapshotPolicy {
        every: Duration::from_secs(3600),
        log_bytes: 1,
    };
    let app = app_with(disk.clone(), dir, None, policy);
    disk.hold_snapshots();
    assert_eq!(
        app.post(transition(machine, "open").to_string()).await.status,
        StatusCode::OK
    );
    let held = disk.clone();
    tokio::task::spawn_blocking(move || held.wait_for_held_snapshot())
        .await
        .unwrap();
    (app, disk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_acknowledged_while_a_snapshot_is_written_and_a_crash_meanwhile_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let (app, disk) = writing_a_held_snapshot(dir.path(), "m00").await;
    // The disk takes its time over the snapshot; batches go on being acknowledged meanwhile.
    for i in 1..=20 {
        let post = app.post(transition(&format!("m{i:02}"), "open").to_string());
        let answer = tokio::time::timeout(Duration::from_secs(5), post)
            .await
            .unwrap_or_else(|_| panic!("batch {i} waited for the snapshot being written"));
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    assert_eq!(
        segments(dir.path()).len(),
        1,
        "one checkpoint at a time, though one was due after every batch"
    );
    // A crash now: no snapshot yet, the sealed segment and the new log.
    let crashed = crash_copy(dir.path());
    let (_wal, store) = Wal::open(crashed.path().into(), empty()).unwrap();
    assert_eq!(store.machines().len(), 21, "{:?}", machine_names(&store));

    disk.release_snapshots();
    app.stop().unwrap();
    assert_eq!(
        segments(dir.path()),
        Vec::<String>::new(),
        "the snapshots took over the segments"
    );
    assert_eq!(log_len(dir.path()), 0);
    let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(store.machines().len(), 21, "{:?}", machine_names(&store));
}

#[test]
fn a_failed_snapshot_keeps_its_segment_in_the_log_size_and_the_next_one_removes_it() {
    let (dir, disk, mut wal, mut store) = on_flaky_disk();
    call_logged(&mut wal, &mut store, "b", 1.0);
    disk.fill_after(20);
    wal.start_checkpoint(StoreCopy::of(&store)).unwrap();
    assert!(wal.finish_checkpoint().expect("one was started").is_err());
    assert!(
        !dir.path().join("snapshot.json.tmp").exists(),
        "a partial snapshot was left"
    );
    assert_eq!(segments(dir.path()).len(), 1);
    // The segment still counts against the log's size limit, which calls for the next snapshot.
    let sealed = wal.log_bytes();
    assert!(sealed > 0);
    disk.free();
    call_logged(&mut wal, &mut store, "b", 2.0);
    assert!(wal.log_bytes() > sealed);
    let crashed = crash_copy(dir.path());
    let (_wal, restarted) = Wal::open(crashed.path().into(), empty()).unwrap();
    assert_eq!(
        calls(&restarted, "b"),
        2,
        "a crash with the segment and the log after it"
    );

    wal.checkpoint(&Snapshot::of(&store)).unwrap();
    assert_eq!(segments(dir.path()), Vec::<String>::new());
    assert_eq!(wal.log_bytes(), 0);
    drop(wal);
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "b"), 2);
}

/// A disk that takes appends but not snapshots, retried for hours: each
/// failed checkpoint used to seal one more segment, without end.
#[test]
fn snapshots_failing_again_and_again_leave_a_bounded_number_of_segments_and_lose_nothing() {
    let (dir, disk, mut wal, mut store) = on_flaky_disk();
    disk.fail_snapshots(true);
    let tries = 3 * MAX_SEALED_SEGMENTS;
    for i in 0..tries {
        call_logged(&mut wal, &mut store, "e", i as f64 + 1.0);
        wal.start_checkpoint(StoreCopy::of(&store)).unwrap();
        assert!(wal.finish_checkpoint().expect("one was started").is_err());
    }
    assert_eq!(
        segments(dir.path()).len(),
        MAX_SEALED_SEGMENTS,
        "{:?}",
        segments(dir.path())
    );
    let crashed = crash_copy(dir.path());
    let (_wal, restarted) = Wal::open(crashed.path().into(), empty()).unwrap();
    assert_eq!(
        calls(&restarted, "e"),
        tries as u64,
        "a crash with the segments and the log"
    );

    // Once snapshots work again one removes every segment; the log it left
    // unsealed holds records the snapshot has, which a start skips.
    disk.fail_snapshots(false);
    checkpointed(&mut wal, &store);
    assert_eq!(segments(dir.path()), Vec::<String>::new());
    call_logged(&mut wal, &mut store, "e", 100.0);
    let crashed = crash_copy(dir.path());
    let (_wal, restarted) = Wal::open(crashed.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "e"), tries as u64 + 1, "a crash after the snapshot");
    // The next checkpoint seals the log again, and the log starts empty.
    checkpointed(&mut wal, &store);
    assert_eq!(wal.log_bytes(), 0);
    drop(wal);
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "e"), tries as u64 + 1);
}

/// A bug while writing one snapshot fails that snapshot; it used to be
/// raised again on the applier's thread, refusing every write until a restart.
#[test]
fn a_panic_while_writing_a_snapshot_fails_that_snapshot_and_the_log_goes_on() {
    let (dir, disk, mut wal, mut store) = on_flaky_disk();
    call_logged(&mut wal, &mut store, "f", 1.0);
    disk.panic_on_next_snapshot();
    wal.start_checkpoint(StoreCopy::of(&store)).unwrap();
    let failed = wal.finish_checkpoint().expect("one was started").unwrap_err();
    assert!(
        failed.to_string().contains("injected panic while writing a snapshot"),
        "{failed}"
    );
    assert!(
        !dir.path().join("snapshot.json.tmp").exists(),
        "the half-written snapshot was left"
    );
    call_logged(&mut wal, &mut store, "f", 2.0);
    checkpointed(&mut wal, &store);
    assert_eq!(segments(dir.path()), Vec::<String>::new());
    drop(wal);
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "f"), 2);
}

#[test]
fn a_crash_between_the_snapshot_and_removing_its_segment_replays_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, mut store) = Wal::open(dir.path().into(), empty()).unwrap();
    call_logged(&mut wal, &mut store, "c", 1.0);
    let sealed = std::fs::read(dir.path().join("events.jsonl")).unwrap();
    wal.checkpoint(&Snapshot::of(&store)).unwrap();
    call_logged(&mut wal, &mut store, "c", 2.0);
    drop(wal);
    // The segment the checkpoint sealed (records below 2), as a crash before its removal leaves it.
    let segment = "events.00000000000000000002.jsonl";
    std::fs::write(dir.path().join(segment), sealed).unwrap();
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "c"), 2);
    assert_eq!(
        segments(dir.path()),
        Vec::<String>::new(),
        "the start removed {segment}"
    );
}

#[test]
fn a_checkpoint_that_cannot_start_a_new_log_keeps_writing_the_old_one() {
    let (dir, disk, mut wal, mut store) = on_flaky_disk();
    call_logged(&mut wal, &mut store, "d", 1.0);
    disk.fail_next_log_open();
    assert!(wal.start_checkpoint(StoreCopy::of(&store)).is_err());
    assert!(!wal.checkpointing());
    assert_eq!(segments(dir.path()), Vec::<String>::new(), "the log was renamed back");
    call_logged(&mut wal, &mut store, "d", 2.0);
    let crashed = crash_copy(dir.path());
    let (_wal, restarted) = Wal::open(crashed.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "d"), 2);
    // The next checkpoint works.
    checkpointed(&mut wal, &store);
    assert_eq!(segments(dir.path()), Vec::<String>::new());
    drop(wal);
    let (_wal, restarted) = Wal::open(dir.path().into(), empty()).unwrap();
    assert_eq!(calls(&restarted, "d"), 2);
}

/// A snapshot written while batches go on shares the disk's free space with
/// them. When it fails and an append fails with it, the next snapshot still
/// waits its retry delay: it must not start again as soon as the log takes
/// writes, sealing a segment and taking the space back each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_failed_while_an_append_failed_waits_before_the_next_try() {
    let dir = tempfile::tempdir().unwrap();
    let (app, disk) = writing_a_held_snapshot(dir.path(), "a").await;
    // The disk fills while the snapshot is being written: the next append fails,
    // and so does the snapshot once the disk gets to it.
    disk.fill_after(0);
    let post = tokio::spawn({
        let client = app.client.clone();
        async move { client.post(transition("b", "open").to_string()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    disk.release_snapshots();
    assert_eq!(post.await.unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(disk.snapshot_writes(), 1);
    disk.free();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/readyz").await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "still not ready 10 s after space was freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = app.post(transition("b", "open").to_string()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    // A snapshot would start right after the batch; give it a second to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        disk.snapshot_writes(),
        1,
        "a snapshot started again within the retry delay of the one that failed"
    );
    app.stop().unwrap();
}
