//! The real binary: durability across SIGKILL, graceful SIGTERM, promtool on
//! real output, heartbeat expiry, the demo fleet, the command line's checks,
//! polled machines (states, proof of life, first observation).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_statescope-exporter");

struct Exporter {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Exporter {
    /// Starts the exporter on a free loopback port with `args`, waiting (at
    /// most 30 s) until it answers /healthz.
    fn start(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Exporter {
        Exporter::start_with(data_dir, args, envs, |_| {})
    }

    /// [`Exporter::start`], with `configure` setting up the command further.
    fn start_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)], configure: impl Fn(&mut Command)) -> Exporter {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = data_dir.with_extension(format!("{port}.log"));
            let mut cmd = Command::new(BIN);
            cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
                .arg(data_dir)
                .args(args);
            cmd.env_remove("STATESCOPE_TOKEN").envs(envs.iter().copied());
            cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
            configure(&mut cmd);
            let mut child = cmd.spawn().unwrap();
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if ureq_get(&format!("{url}/healthz")).is_some() {
                    return Exporter { child, url, log };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the exporter did not start; log:\n{}",
            std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default()
        );
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on unix
        self.child.wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking HTTP client over std, so these tests need no runtime.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn ureq_get(url: &str) -> Option<String> {
    match http("GET", url, &[], "") {
        Some((200, body)) => Some(body),
        _ => None,
    }
}

fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    http("POST", &format!("{url}/api/v1/events"), &headers, &body.to_string()).expect("POST answered")
}

fn machines(url: &str) -> Vec<Value> {
    let text = ureq_get(&format!("{url}/api/v1/machines")).expect("GET /api/v1/machines");
    serde_json::from_str::<Value>(&text).unwrap()["machines"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_acknowledged_event_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Strict, so that a refused transition's count must survive too.
    let config = dir.path().join("strict.toml");
    std::fs::write(&config, "strict_transitions = true\n").unwrap();
    let strict = ["--config", config.to_str().unwrap()];
    let exporter = Exporter::start(&data, &strict, &[]);
    // 40 breakers walk closed -> open -> half_open -> closed -> open with calls in between,
    // 20 events per request, plus retries that must not count twice.
    let cycle = ["open", "half_open", "closed", "open"];
    let mut acked = 0;
    for (round, to) in cycle.iter().enumerate() {
        for chunk in 0..4 {
            let mut events = Vec::new();
            for i in chunk * 10..chunk * 10 + 10 {
                let m = format!("p{}/key-{i}", i % 3);
                events.push(
                    json!({"type": "transition", "kind": "circuit_breaker", "machine": m, "to": to,
                    "labels": {"provider": format!("p{}", i % 3), "key_id": format!("key-{i}")}}),
                );
                events.push(
                    json!({"type": "call", "kind": "circuit_breaker", "machine": m, "outcome": "failure",
                    "id": format!("{m}-{round}")}),
                );
            }
            let body = json!({ "events": events });
            let (status, reply) = post(&exporter.url, &body, None);
            assert_eq!(status, 200, "{reply}");
            acked += 20;
            // A client that lost the answer resends: nothing counts twice.
            let (status, reply) = post(&exporter.url, &body, None);
            assert_eq!(status, 200, "{reply}");
            let reply: Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(reply, json!({"applied": 0, "duplicates": 10, "unchanged": 10}));
        }
    }
    assert_eq!(acked, 320);
    // A worker's starting -> draining is unexpected, and refused under strict_transitions.
    let worker = json!({"type": "heartbeat", "kind": "worker", "machine": "w-0"});
    assert_eq!(post(&exporter.url, &worker, None).0, 200);
    let unexpected = json!({"type": "transition", "kind": "worker", "machine": "w-0", "to": "draining"});
    assert_eq!(post(&exporter.url, &unexpected, None).0, 409);
    let before = machines(&exporter.url);
    let metrics_before = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
    exporter.kill9();

    let exporter = Exporter::start(&data, &strict, &[]);
    let after = machines(&exporter.url);
    assert_eq!(after, before);
    assert_eq!(after.len(), 41);
    for m in after.iter().filter(|m| m["kind"] == "circuit_breaker") {
        assert_eq!(m["state"], "open", "{m}");
        assert_eq!(m["transitions"], 4, "{m}");
        assert_eq!(m["calls"]["failure"], 4, "{m}");
        assert_eq!(m["unexpected_transitions"], 0, "{m}");
    }
    let w = after.iter().find(|m| m["machine"] == "w-0").unwrap();
    assert_eq!(
        (&w["state"], &w["unexpected_transitions"]),
        (&json!("starting"), &json!(1)),
        "{w}"
    );
    let metrics_after = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
    let series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("statescope_transitions_total") || l.starts_with("statescope_state{"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(series(&metrics_after), series(&metrics_before));
    // A retried call id from before the crash is still recognised.
    let retry = json!({"type": "call", "kind": "circuit_breaker", "machine": "p0/key-0", "outcome": "failure", "id": "p0/key-0-3"});
    let (status, reply) = post(&exporter.url, &retry, None);
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&reply).unwrap()["duplicates"].clone()
        ),
        (200, json!(1))
    );
}

/// The lines of the per-machine series (not the exporter's own metrics,
/// whose request counts differ between two processes by design).
fn machine_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("statescope_") && !l.starts_with("statescope_exporter_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn workers_survive_sigkill_from_a_snapshot_and_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut exporter = Exporter::start(&data, &[], &[]);
    // Six workers: state, heartbeats and jobs (durations and queue waits go
    // into histograms), each event numbered per machine with seq.
    let mut seq = 0;
    let mut round = |url: &str, to: &str, result: &str, duration: f64| {
        seq += 1;
        let events: Vec<Value> = (0..6)
            .flat_map(|i| {
                let (m, labels) = (format!("w{i}"), json!({"worker_type": if i % 2 == 0 { "gpu" } else { "cpu" }}));
                [
                    json!({"type": "transition", "kind": "worker", "machine": m, "to": to, "labels": labels, "seq": seq * 3}),
                    json!({"type": "heartbeat", "kind": "worker", "machine": m, "seq": seq * 3 + 1}),
                    json!({"type": "job", "kind": "worker", "machine": m, "result": result,
                           "duration_seconds": duration * (i + 1) as f64, "queue_seconds": 0.5, "seq": seq * 3 + 2}),
                ]
            })
            .collect();
        let body = json!({ "events": events });
        let (status, reply) = post(url, &body, None);
        assert_eq!(status, 200, "{reply}");
        body
    };
    round(&exporter.url, "idle", "succeeded", 1.5);
    round(&exporter.url, "busy", "failed", 30.0);
    let pid = exporter.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    exporter.child.wait().unwrap();
    assert!(data.join("snapshot.json").exists(), "SIGTERM wrote a snapshot");

    // Restarted from the snapshot; more goes to the log only, then SIGKILL.
    let exporter = Exporter::start(&data, &[], &[]);
    round(&exporter.url, "idle", "succeeded", 700.0);
    let last = round(&exporter.url, "busy", "succeeded", 2.0);
    // A retry of the last batch (same seq) applies nothing.
    let (status, reply) = post(&exporter.url, &last, None);
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&reply).unwrap()["applied"].clone()
        ),
        (200, json!(0))
    );
    let before = machines(&exporter.url);
    let metrics_before = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
    assert!(
        std::fs::metadata(data.join("events.jsonl")).unwrap().len() > 0,
        "the last rounds are in the log"
    );
    exporter.kill9();

    let exporter = Exporter::start(&data, &[], &[]);
    let after = machines(&exporter.url);
    assert_eq!(after, before);
    assert_eq!(after.len(), 6);
    let series = machine_series(&ureq_get(&format!("{}/metrics", exporter.url)).unwrap());
    assert_eq!(series, machine_series(&metrics_before));
    let w5_jobs: Vec<_> = series
        .iter()
        .filter(|l| l.starts_with("statescope_worker_jobs_total{") && l.contains(r#"machine="w5""#))
        .collect();
    assert_eq!(w5_jobs.len(), 2, "{w5_jobs:?}");
    assert!(
        w5_jobs
            .iter()
            .any(|l| l.contains(r#"result="succeeded""#) && l.ends_with(" 3")),
        "{w5_jobs:?}"
    );
    assert!(
        w5_jobs
            .iter()
            .any(|l| l.contains(r#"result="failed""#) && l.ends_with(" 1")),
        "{w5_jobs:?}"
    );
    // Durations go into histograms per worker type: the cpu workers w1, w3,
    // w5 ran jobs of 2, 4 and 6 times each round's base duration.
    let sum = series
        .iter()
        .find(|l| l.starts_with("statescope_worker_job_duration_seconds_sum{") && l.contains(r#"worker_type="cpu""#))
        .unwrap();
    assert!(sum.ends_with(" 8802"), "(1.5 + 30 + 700 + 2) x 12 = 8802: {sum}");
}

#[test]
fn sigterm_stops_cleanly_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut exporter = Exporter::start(&data, &[], &[]);
    let event = json!({"type": "transition", "kind": "worker", "machine": "w1", "to": "idle"});
    assert_eq!(post(&exporter.url, &event, None).0, 200);
    let pid = exporter.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = exporter.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}; log:\n{}", exporter.log());
    let snapshot = std::fs::read_to_string(data.join("snapshot.json")).unwrap();
    assert!(snapshot.contains("\"w1\""), "{snapshot}");
    assert_eq!(
        std::fs::metadata(data.join("events.jsonl")).unwrap().len(),
        0,
        "the snapshot took over the log"
    );
    let exporter = Exporter::start(&data, &[], &[]);
    assert_eq!(machines(&exporter.url)[0]["state"], "idle");
}

/// Limits the size of every file the exporter writes (`RLIMIT_FSIZE`), as a
/// full disk does: a write that crosses the limit writes what fits and fails
/// (EFBIG; SIGXFSZ is ignored, and an ignored signal stays ignored across
/// exec). Any Linux, any user, no root or special file system needed.
#[cfg(target_os = "linux")]
fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lifts the file size limit of a running process: space is freed.
#[cfg(target_os = "linux")]
fn lift_file_size_limit(pid: u32) {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system call on a process this test started.
    let done = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &unlimited, std::ptr::null_mut()) };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The real binary on a disk that fills up under concurrent writers: every
/// batch answered 503 is gone from memory and from the log (a group cut short
/// once left its first records to be replayed), writes come back without a
/// restart once space is freed, and a kill -9 and restart hold exactly the
/// batches answered 200.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_load_keeps_exactly_what_was_acknowledged_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exporter = Exporter::start_with(&data, &[], &[], |cmd| limit_file_size(cmd, 8192));
    let to = |machine: &str| json!({"type": "transition", "kind": "circuit_breaker", "machine": machine, "to": "open"});
    // 8 writers race until each has been refused: records of a group cut short
    // by the limit are on disk when the group fails.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = exporter.url.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for i in 0..400 {
                    let machine = format!("w{w}-m{i:03}");
                    let (status, reply) = post(&url, &to(&machine), None);
                    match status {
                        200 => acknowledged.push(machine),
                        503 => {
                            assert!(reply.contains("could not write its log"), "{reply}");
                            return acknowledged;
                        }
                        other => panic!("{other}: {reply}"),
                    }
                }
                panic!("writer {w}: 400 writes fitted under the file size limit");
            })
        })
        .collect();
    let mut acknowledged: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    acknowledged.sort();
    let names = |url: &str| {
        let mut names: Vec<String> = machines(url)
            .iter()
            .map(|m| m["machine"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&exporter.url), acknowledged, "memory holds what was refused");
    assert_eq!(
        http("GET", &format!("{}/readyz", exporter.url), &[], "").unwrap().0,
        503
    );

    lift_file_size_limit(exporter.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while http("GET", &format!("{}/readyz", exporter.url), &[], "").unwrap().0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready 10 s after space was freed; log:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        post(&exporter.url, &to("after"), None).0,
        200,
        "writable again without a restart"
    );
    acknowledged.push("after".into());
    acknowledged.sort();

    exporter.kill9();
    let exporter = Exporter::start(&data, &[], &[]);
    assert_eq!(names(&exporter.url), acknowledged, "a restart holds what was refused");
}

/// promtool is installed by the test command (scripts/setup.sh). Without it
/// these tests fail, saying so, wherever they run: a check that skips
/// itself unless `CI` is set passed silently in the suite, which sets no `CI`.
fn promtool(text: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("promtool cannot be run ({e}); scripts/setup.sh installs it (Prometheus's tools)"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn promtool_accepts_the_demo_fleets_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("data"), &["--demo"], &[]);
    // Wait for the fleet to have breakers, workers and jobs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
        if text.contains("statescope_worker_jobs_total{") && text.contains("statescope_breaker_calls_total{") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the demo fleet produced no jobs or calls in 20 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (ok, report) = promtool(&text);
    assert!(ok, "promtool check metrics failed:\n{report}");
    for family in [
        "statescope_state{",
        "statescope_transition_allowed{",
        "circuit_breaker_state{",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(family), "{family} missing");
    }
    let list = machines(&exporter.url);
    let count = |kind: &str| list.iter().filter(|m| m["kind"] == kind).count();
    assert_eq!((count("circuit_breaker"), count("worker")), (9, 12));
    assert!(
        list.iter()
            .any(|m| m["labels"]["provider"] == "anthropic" && m["labels"]["key_id"] == "key-2")
    );
    assert!(list.iter().any(|m| m["labels"]["worker_type"] == "training"));
}

#[test]
fn promtool_flags_only_the_seed_name_with_compat_metrics_full() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("data"), &["--compat-metrics", "full"], &[]);
    post(
        &exporter.url,
        &json!({"type": "transition", "kind": "circuit_breaker", "machine": "a", "to": "open"}),
        None,
    );
    let text = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
    assert!(text.contains("circuit_breaker_failure_count{"));
    let (ok, report) = promtool(&text);
    assert!(!ok);
    let problems: Vec<_> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        problems,
        ["circuit_breaker_failure_count non-histogram and non-summary metrics should not have \"_count\" suffix"]
    );
}

#[test]
fn silent_workers_go_offline_after_the_heartbeat_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("data"), &["--heartbeat-ttl", "1s"], &[]);
    let beat = |m: &str| json!({"type": "heartbeat", "kind": "worker", "machine": m});
    post(
        &exporter.url,
        &json!({"events": [beat("quiet"), beat("chatty"), {"type": "transition", "kind": "worker", "machine": "chatty", "to": "idle"}]}),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(post(&exporter.url, &beat("chatty"), None).0, 200);
        let list = machines(&exporter.url);
        let state = |name: &str| list.iter().find(|m| m["machine"] == name).unwrap()["state"].clone();
        if state("quiet") == "offline" {
            assert_eq!(state("chatty"), "idle");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quiet worker not offline 10 s after a 1 s TTL: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = ureq_get(&format!("{}/metrics", exporter.url)).unwrap();
    assert!(
        text.contains(r#"statescope_transitions_total{kind="worker",machine="quiet",from="starting",to="offline"} 1"#),
        "{text}"
    );
}

#[test]
fn a_token_from_the_environment_guards_writes() {
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cret-token-for-tests-0123";
    let exporter = Exporter::start(&dir.path().join("data"), &[], &[("STATESCOPE_TOKEN", token)]);
    let e = json!({"type": "heartbeat", "kind": "worker", "machine": "w"});
    assert_eq!(post(&exporter.url, &e, None).0, 401);
    assert_eq!(post(&exporter.url, &e, Some(token)).0, 200);
}

#[test]
fn refuses_a_non_loopback_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before binding anything.
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("STATESCOPE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without a token"), "{err}");
    let short = Command::new(BIN)
        .args(["--data-dir"])
        .arg(dir.path())
        .env("STATESCOPE_TOKEN", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&short.stderr).contains("token is too short"));
}

#[test]
fn check_config_accepts_good_files_and_explains_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[[kinds]]\nname = \"job\"\ninitial = \"queued\"\nstates = [{ name = \"queued\" }, { name = \"done\" }]\ntransitions = [[\"queued\", \"done\"]]\n").unwrap();
    let out = Command::new(BIN).arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 kinds: circuit_breaker, worker, job"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[kinds]]\nname = \"job\"\ninitial = \"nope\"\nstates = [{ name = \"queued\" }]\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("nope"), "{err}");
}

/// A service that cannot push, answering every GET with the JSON `body(n)`
/// for its n-th request (from 0).
fn serve(body: impl Fn(usize) -> String + Send + 'static) -> std::net::SocketAddr {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = body(n);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Starts the exporter with `args` and a config file holding `poll` (its
/// `[[poll]]` tables).
fn start_polling(dir: &Path, poll: &str, args: &[&str]) -> Exporter {
    let config = dir.join("statescope.toml");
    std::fs::write(&config, poll).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    Exporter::start(&dir.join("data"), &all, &[])
}

#[test]
fn poll_targets_set_states_from_a_services_json() {
    // A service that cannot push: its breaker reads OPEN on the first polls, then HALF_OPEN.
    let addr = serve(|n| {
        let state = if n < 2 { "OPEN" } else { "HALF_OPEN" };
        format!(r#"{{"resilience4j":{{"payments":{{"state":"{state}"}}}}}}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_polling(
        dir.path(),
        &format!(
            "[[poll]]\nurl = \"http://{addr}/actuator\"\ninterval = \"1s\"\nkind = \"circuit_breaker\"\nmachine = \"payments\"\n\
             state_pointer = \"/resilience4j/payments/state\"\nvalue_map = {{ OPEN = \"open\", HALF_OPEN = \"half_open\", CLOSED = \"closed\" }}\n\
             labels = {{ service = \"payments-api\" }}\n"
        ),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = machines(&exporter.url);
        if list.first().is_some_and(|m| m["state"] == "half_open") {
            assert_eq!(list[0]["labels"]["service"], "payments-api");
            // The first poll creates it open (no transition: none was seen), then open -> half_open.
            assert_eq!(list[0]["transitions"], 1, "open, then -> half_open: {list:?}");
            assert_eq!(list[0]["unexpected_transitions"], 0, "{list:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "polled state not applied within 15 s: {list:?}\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A worker whose state is polled (it cannot push, so it sends no
/// heartbeats) was marked offline every heartbeat TTL and moved back by the
/// next poll: fake transitions and illegal counts, state flapping. A
/// successful poll is proof of life, and the first one creates the worker
/// in the state it saw, so nothing moves at all.
#[test]
fn polled_workers_are_not_flapped_offline_by_the_heartbeat_ttl() {
    let addr = serve(|_| r#"{"up": true}"#.to_owned());
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_polling(
        dir.path(),
        &format!(
            "[[poll]]\nurl = \"http://{addr}/health\"\ninterval = \"1s\"\nkind = \"worker\"\nmachine = \"w1\"\n\
             state_pointer = \"/up\"\nvalue_map = {{ \"true\" = \"idle\", \"false\" = \"offline\" }}\n"
        ),
        &["--heartbeat-ttl", "1s"],
    );
    std::thread::sleep(Duration::from_secs(6));
    let list = machines(&exporter.url);
    let w = list.iter().find(|m| m["machine"] == "w1").expect("w1 polled");
    assert_eq!(
        (w["transitions"].as_u64(), w["unexpected_transitions"].as_u64()),
        (Some(0), Some(0)),
        "the service said idle all along: {w}"
    );
}

/// The first poll of a breaker that is already half_open counted an
/// illegal transition (and a closed -> half_open transition) that never
/// happened: it is created half_open, with no transition.
#[test]
fn a_first_observation_is_not_an_illegal_transition() {
    let addr = serve(|_| r#"{"state": "HALF_OPEN"}"#.to_owned());
    let dir = tempfile::tempdir().unwrap();
    let exporter = start_polling(
        dir.path(),
        &format!(
            "[[poll]]\nurl = \"http://{addr}/cb\"\ninterval = \"1s\"\nkind = \"circuit_breaker\"\nmachine = \"pay\"\n\
             state_pointer = \"/state\"\nvalue_map = {{ HALF_OPEN = \"half_open\" }}\n"
        ),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = machines(&exporter.url).into_iter().find(|m| m["machine"] == "pay") {
            assert_eq!(m["unexpected_transitions"], 0, "{m}");
            assert_eq!(
                (m["state"].as_str(), m["transitions"].as_u64()),
                (Some("half_open"), Some(0)),
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
}
