//! Puts the parts together: recovers the store, starts the applier and the
//! background tasks (demo fleet, pollers, heartbeat expiry), serves HTTP, and
//! shuts down cleanly (final snapshot) on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::serve::ListenerExt as _;
use tokio::task::JoinHandle;

use crate::api::{self, Api};
use crate::config::Config;
use crate::demo::Fleet;
use crate::encode::Compat;
use crate::ingest::{Ingest, SnapshotPolicy, unix_now};
use crate::poll;
use crate::store::Store;
use crate::telemetry::Telemetry;

/// Heartbeat TTL when neither the command line nor the config sets one.
pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(30);

/// Everything the server needs, resolved from the command line and config.
pub struct Settings {
    pub config: Config,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub token: Option<String>,
    pub allow_unauthenticated_remote: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub heartbeat_ttl: Duration,
    pub compat: Compat,
}

impl Settings {
    /// The safety rule: a write endpoint reachable from other hosts needs a token.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() && self.token.is_none() && !self.allow_unauthenticated_remote {
            bail!(
                "refusing to listen on {} without a token: anyone who can reach it could write states. \
                 Give a token (--token-file FILE or STATESCOPE_TOKEN), listen on 127.0.0.1, \
                 or pass --allow-unauthenticated-remote if a proxy in front authenticates",
                self.listen
            );
        }
        Ok(())
    }
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings.check()?;
    let telemetry = Arc::new(Telemetry::default());
    let empty = Store::new(settings.config.catalog.clone(), settings.config.limits.store());
    let (ingest, applier) = Ingest::open(
        settings.data_dir.clone(),
        empty,
        SnapshotPolicy::default(),
        telemetry.clone(),
    )
    .with_context(|| format!("opening data directory {}", settings.data_dir.display()))?;
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        machines = ingest.read().machines().len(),
        "state recovered"
    );

    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    tasks.push(tokio::spawn(expire_heartbeats(ingest.clone(), settings.heartbeat_ttl)));
    if settings.demo {
        tasks.push(tokio::spawn(run_demo(ingest.clone())));
    }
    if !settings.config.poll.is_empty() {
        let client = reqwest::Client::builder().user_agent("statescope-exporter").build()?;
        for target in settings.config.poll.clone() {
            tasks.push(tokio::spawn(run_poll(ingest.clone(), client.clone(), target)));
        }
    }

    let api = Arc::new(Api {
        ingest: ingest.clone(),
        telemetry,
        token: settings.token.clone(),
        compat: settings.compat,
        max_events: settings.config.limits.max_events_per_request,
        max_body_bytes: settings.config.limits.max_body_bytes,
    });
    let app = api::router(api);
    drop(ingest);

    let result = match &settings.tls {
        None => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            tracing::info!(addr = %listener.local_addr()?, tls = false, demo = settings.demo, "serving");
            // TCP_NODELAY: a streamed /metrics body ends with a small write
            // that Nagle's algorithm would hold for the scraper's delayed ACK
            // (40 ms on Linux).
            let listener = listener.tap_io(|stream| {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .map_err(anyhow::Error::from)
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stopper.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            tracing::info!(addr = %settings.listen, tls = true, demo = settings.demo, "serving");
            let acceptor =
                axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(axum_server::accept::NoDelayAcceptor::new());
            axum_server::bind(settings.listen)
                .acceptor(acceptor)
                .handle(handle)
                .serve(app.into_make_service())
                .await
                .map_err(anyhow::Error::from)
        }
    };
    // Stop the tasks so the last handles to the applier go; it then drains
    // its queue and writes a final snapshot.
    for task in tasks {
        task.abort();
        let _ = task.await;
    }
    // A crashed applier makes the exit status non-zero, not a quiet "stopped".
    let applier = tokio::task::spawn_blocking(move || applier.join()).await?;
    tracing::info!("stopped");
    result?;
    applier.map_err(anyhow::Error::msg)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Moves machines whose heartbeats stopped to their kind's heartbeat-lost state.
async fn expire_heartbeats(ingest: Ingest, ttl: Duration) {
    let tick = (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(5));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let expired = ingest.read().heartbeat_expired(unix_now(), ttl.as_secs_f64());
        if expired.is_empty() {
            continue;
        }
        let names: Vec<_> = expired.iter().map(|e| format!("{}/{}", e.kind, e.machine)).collect();
        match ingest.submit(expired).await {
            Ok(_) => tracing::info!(machines = ?names, ttl = ?ttl, "heartbeats stopped; marked as lost"),
            Err(e) => tracing::warn!(error = %e, "marking machines with lost heartbeats failed"),
        }
    }
}

/// The simulated fleet of `--demo`, one step a second.
async fn run_demo(ingest: Ingest) {
    let mut fleet = Fleet::new(unix_now() as u64);
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        let events = fleet.step(unix_now(), &|kind, machine| ingest.current_state(kind, machine));
        if events.is_empty() {
            continue;
        }
        if let Err(e) = ingest.submit(events).await {
            tracing::warn!(error = %e, "demo fleet events refused");
        }
    }
}

async fn run_poll(ingest: Ingest, client: reqwest::Client, target: poll::PollTarget) {
    let mut interval = tokio::time::interval(target.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let events = match poll::fetch(&client, &target)
            .await
            .and_then(|body| poll::extract(&target, &body))
        {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(url = %target.url, error = %e, "poll failed");
                continue;
            }
        };
        if let Err(e) = ingest.submit(events).await {
            tracing::warn!(url = %target.url, error = %e, "polled states refused");
        }
    }
}
