//! Puts the parts together: recovers the store, starts the applier and the
//! background tasks (demo fleet, pollers, heartbeat expiry), serves HTTP, and
//! shuts down cleanly (final snapshot) on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::{Router, middleware};
use tokio::task::JoinHandle;

use crate::api::{self, Api};
use crate::auth::{self, BasicAuth};
use crate::config::Compat;
use crate::config::Config;
use crate::demo::Fleet;
use crate::ingest::{Applier, Ingest, SnapshotPolicy, unix_now};
use crate::poll;
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::web::{self, Limits};
use crate::web_config::WebConfig;

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
    /// TLS and basic-auth users (`--web.config.file`, or `--tls-cert`/`--tls-key`).
    pub web: WebConfig,
    pub limits: Limits,
    pub heartbeat_ttl: Duration,
    pub compat: Compat,
}

impl Settings {
    /// The safety rule: a write endpoint reachable from other hosts needs a
    /// token (or basic-auth users, which then protect writes too).
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback()
            && self.token.is_none()
            && self.web.users.is_empty()
            && !self.allow_unauthenticated_remote
        {
            bail!(
                "refusing to listen on {} without a token: anyone who can reach it could write states. \
                 Give a token (--token-file FILE or STATESCOPE_TOKEN) or basic_auth_users in --web.config.file, \
                 listen on 127.0.0.1, or pass --allow-unauthenticated-remote if a proxy in front authenticates",
                self.listen
            );
        }
        Ok(())
    }
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings.check()?;
    let telemetry = Arc::new(Telemetry::default());
    let (ingest, applier) = recover(&settings, telemetry.clone())?;
    let tasks = start_sources(&settings, &ingest)?;
    let app = app(&settings, ingest, telemetry);
    let result = serve(&settings, app).await;
    let applier = stop(tasks, applier).await?;
    tracing::info!("stopped");
    result?;
    applier.map_err(anyhow::Error::msg)
}

/// The store as the data directory holds it, and the applier over it.
fn recover(settings: &Settings, telemetry: Arc<Telemetry>) -> anyhow::Result<(Ingest, Applier)> {
    let empty = Store::new(settings.config.catalog.clone(), settings.config.limits.store());
    let (ingest, applier) = Ingest::open(settings.data_dir.clone(), empty, SnapshotPolicy::default(), telemetry)
        .with_context(|| format!("opening data directory {}", settings.data_dir.display()))?;
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        machines = ingest.read().machines().len(),
        "state recovered"
    );
    Ok((ingest, applier))
}

/// The events that do not come over HTTP: heartbeat expiry, the demo fleet, pollers.
fn start_sources(settings: &Settings, ingest: &Ingest) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = vec![tokio::spawn(expire_heartbeats(ingest.clone(), settings.heartbeat_ttl))];
    if settings.demo {
        tasks.push(tokio::spawn(run_demo(ingest.clone())));
    }
    if !settings.config.poll.is_empty() {
        let client = reqwest::Client::builder().user_agent("statescope-exporter").build()?;
        for target in settings.config.poll.clone() {
            tasks.push(tokio::spawn(run_poll(ingest.clone(), client.clone(), target)));
        }
    }
    Ok(tasks)
}

/// The API, behind the basic-auth users and the response headers of the web config.
fn app(settings: &Settings, ingest: Ingest, telemetry: Arc<Telemetry>) -> Router {
    let api = Arc::new(Api {
        ingest,
        telemetry,
        token: settings.token.clone(),
        compat: settings.compat,
        max_events: settings.config.limits.max_events_per_request,
        max_body_bytes: settings.config.limits.max_body_bytes,
    });
    let mut app = api::router_with(api, &settings.limits);
    if !settings.web.users.is_empty() {
        let users = Arc::new(BasicAuth::new(settings.web.users.clone(), settings.token.clone()));
        app = app.layer(middleware::from_fn_with_state(users, auth::require_basic_auth));
    }
    for (name, value) in settings.web.headers.clone() {
        app = app.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(name, value));
    }
    app
}

/// Serves `app` until SIGTERM or Ctrl-C.
async fn serve(settings: &Settings, app: Router) -> anyhow::Result<()> {
    web::check_open_files(settings.limits.max_connections);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        tls = settings.web.tls.is_some(),
        basic_auth = !settings.web.users.is_empty(),
        demo = settings.demo,
        "serving"
    );
    web::serve(
        listener,
        settings.web.tls.clone(),
        app,
        settings.limits,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Stops the tasks so the last handles to the applier go; it then drains
/// its queue and writes a final snapshot. Its verdict: a crashed applier
/// makes the exit status non-zero, not a quiet "stopped".
async fn stop(tasks: Vec<JoinHandle<()>>, applier: Applier) -> anyhow::Result<Result<(), String>> {
    for task in tasks {
        task.abort();
        let _ = task.await;
    }
    Ok(tokio::task::spawn_blocking(move || applier.join()).await?)
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
