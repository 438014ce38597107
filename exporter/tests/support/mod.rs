//! What the tests share: the API over a data directory (on a log that can be
//! made to fail on demand) and a client for it, in process; the real binary
//! on a free loopback port.

#![allow(dead_code)] // each test file uses its own part

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use statescope_exporter::api::{self, Api};
use statescope_exporter::config::Compat;
use statescope_exporter::config::Config;
use statescope_exporter::ingest::{Applier, Ingest, SnapshotPolicy};
use statescope_exporter::store::Store;
use statescope_exporter::telemetry::Telemetry;
use statescope_exporter::wal::{Disk, RealDisk, WalError};
use tower::ServiceExt;

/// A disk that fills up, or panics, when a test says so. Writes past the room
/// left write what fits and then fail, as a full disk does.
#[derive(Default)]
pub struct FlakyDisk {
    /// Bytes that still fit; `None`: unlimited.
    room: Mutex<Option<u64>>,
    panic_next: AtomicBool,
    fail_open: AtomicBool,
    /// Snapshot writes fail (a disk that takes appends but not a whole snapshot).
    fail_snapshots: AtomicBool,
    panic_next_snapshot: AtomicBool,
    /// Snapshot writes wait while held; and how many are waiting.
    gate: Mutex<(bool, usize)>,
    gate_moved: Condvar,
    /// Snapshot writes begun.
    snapshot_writes: AtomicUsize,
}

impl FlakyDisk {
    /// From now on only `bytes` more fit.
    pub fn fill_after(&self, bytes: u64) {
        *self.room.lock().unwrap() = Some(bytes);
    }

    /// Space is freed: everything fits again.
    pub fn free(&self) {
        *self.room.lock().unwrap() = None;
    }

    /// The next append panics (a bug in the applier's path).
    pub fn panic_on_next_append(&self) {
        self.panic_next.store(true, Ordering::SeqCst);
    }

    /// The next log the exporter opens cannot be created.
    pub fn fail_next_log_open(&self) {
        self.fail_open.store(true, Ordering::SeqCst);
    }

    /// From now on snapshot writes fail, or no longer fail.
    pub fn fail_snapshots(&self, fail: bool) {
        self.fail_snapshots.store(fail, Ordering::SeqCst);
    }

    /// The next snapshot write panics halfway (a bug in writing it).
    pub fn panic_on_next_snapshot(&self) {
        self.panic_next_snapshot.store(true, Ordering::SeqCst);
    }

    /// From now on snapshot writes wait (a slow disk) until [`FlakyDisk::release_snapshots`].
    pub fn hold_snapshots(&self) {
        self.gate.lock().unwrap().0 = true;
    }

    pub fn release_snapshots(&self) {
        self.gate.lock().unwrap().0 = false;
        self.gate_moved.notify_all();
    }

    /// How many snapshot writes have begun.
    pub fn snapshot_writes(&self) -> usize {
        self.snapshot_writes.load(Ordering::SeqCst)
    }

    /// Waits until a snapshot write is held; fails the test after 10 s.
    pub fn wait_for_held_snapshot(&self) {
        let gate = self.gate.lock().unwrap();
        let (_gate, timeout) = self
            .gate_moved
            .wait_timeout_while(gate, Duration::from_secs(10), |(_, waiting)| *waiting == 0)
            .unwrap();
        assert!(!timeout.timed_out(), "no snapshot write started within 10 s");
    }

    fn write_what_fits(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        let mut room = self.room.lock().unwrap();
        let fits = room.map_or(bytes.len(), |left| bytes.len().min(left as usize));
        file.write_all(&bytes[..fits])?;
        if let Some(left) = room.as_mut() {
            *left -= fits as u64;
        }
        if fits < bytes.len() {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }
}

impl Disk for FlakyDisk {
    fn open_log(&self, path: &Path) -> io::Result<File> {
        if self.fail_open.swap(false, Ordering::SeqCst) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
    }

    fn append(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("injected panic while appending");
        }
        self.write_what_fits(file, bytes)
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.snapshot_writes.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.gate.lock().unwrap();
        gate.1 += 1;
        self.gate_moved.notify_all();
        let mut gate = self.gate_moved.wait_while(gate, |(held, _)| *held).unwrap();
        gate.1 -= 1;
        drop(gate);
        let mut f = File::create(path)?;
        if self.panic_next_snapshot.swap(false, Ordering::SeqCst) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            panic!("injected panic while writing a snapshot");
        }
        if self.fail_snapshots.load(Ordering::SeqCst) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        self.write_what_fits(&mut f, bytes)?;
        f.sync_all()
    }
}

pub const TOKEN: &str = "0123456789abcdef-test-token";

/// Requests to the router, in process.
#[derive(Clone)]
pub struct Client(pub Router);

pub struct App {
    pub client: Client,
    pub ingest: Ingest,
    pub applier: Option<Applier>,
}

impl std::ops::Deref for App {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The API's state over the data directory `dir` (recovered from it, as at
/// a start), writing through `disk`, and its applier.
pub fn api_on(
    disk: Arc<dyn Disk>,
    dir: &Path,
    config: &Config,
    token: Option<&str>,
) -> Result<(Arc<Api>, Applier), WalError> {
    api_with(disk, dir, config, token, SnapshotPolicy::default())
}

/// [`api_on`], writing snapshots when `policy` says.
pub fn api_with(
    disk: Arc<dyn Disk>,
    dir: &Path,
    config: &Config,
    token: Option<&str>,
    policy: SnapshotPolicy,
) -> Result<(Arc<Api>, Applier), WalError> {
    let telemetry = Arc::new(Telemetry::default());
    let store = Store::new(config.catalog.clone(), config.limits.store());
    let (ingest, applier) = Ingest::open_on(disk, dir.to_owned(), store, policy, telemetry.clone())?;
    let api = Arc::new(Api {
        ingest,
        telemetry,
        token: token.map(str::to_owned),
        compat: Compat::On,
        max_events: config.limits.max_events_per_request,
        max_body_bytes: config.limits.max_body_bytes,
    });
    Ok((api, applier))
}

/// [`api_on`] on the real disk.
pub fn api_in(dir: &Path, config: &Config, token: Option<&str>) -> Result<(Arc<Api>, Applier), WalError> {
    api_on(Arc::new(RealDisk), dir, config, token)
}

/// An app on the data directory `dir`, writing through `disk`.
pub fn app_on(disk: Arc<dyn Disk>, dir: &Path, token: Option<&str>) -> App {
    app_with(disk, dir, token, SnapshotPolicy::default())
}

/// [`app_on`], writing snapshots when `policy` says.
pub fn app_with(disk: Arc<dyn Disk>, dir: &Path, token: Option<&str>, policy: SnapshotPolicy) -> App {
    let (api, applier) = api_with(disk, dir, &Config::default(), token, policy).unwrap();
    App {
        ingest: api.ingest.clone(),
        client: Client(api::router(api)),
        applier: Some(applier),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON; fails the test if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("{} answered, not JSON: {:?}", self.status, self.text))
    }
}

impl Client {
    pub async fn call(&self, req: Request<Body>) -> Answer {
        let res = self.0.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn post(&self, body: impl Into<String>) -> Answer {
        self.post_as("application/json", body).await
    }

    pub async fn post_as(&self, content_type: &str, body: impl Into<String>) -> Answer {
        let req = Request::post("/api/v1/events")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.into()))
            .unwrap();
        self.call(req).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// Machines as `/api/v1/machines` lists them: (machine, state).
    pub async fn machines(&self) -> Vec<(String, String)> {
        let list = self.get("/api/v1/machines").await.json();
        list["machines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["machine"].as_str().unwrap().to_owned(),
                    m["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl App {
    /// Lets the applier finish, as a shutdown does; its verdict.
    pub fn stop(mut self) -> Result<(), String> {
        let applier = self.applier.take().unwrap();
        drop(self);
        applier.join()
    }
}

pub fn transition(machine: &str, to: &str) -> Value {
    json!({"type": "transition", "kind": "circuit_breaker", "machine": machine, "to": to})
}

pub const BIN: &str = env!("CARGO_BIN_EXE_statescope-exporter");

/// A port no one listens on now (bind port 0, see what the kernel gave).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary listening on `addr` over `data_dir`, quiet, with no token
/// from the environment of whoever runs the tests; add the test's flags.
pub fn exporter_command(addr: &str, data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--web.listen-address", addr, "--data-dir"])
        .arg(data_dir)
        .env_remove("STATESCOPE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}
