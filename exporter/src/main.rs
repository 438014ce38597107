//! The `statescope-exporter` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use statescope_exporter::config::Compat;
use statescope_exporter::config::Config;
use statescope_exporter::server::{self, Settings};
use statescope_exporter::web::Limits;
use statescope_exporter::web_config::WebConfig;

/// Keeps the state of circuit breakers, workers and custom state machines
/// that services report, and serves them to Prometheus on /metrics.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config: custom kinds, poll targets, limits.
    #[arg(long, env = "STATESCOPE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on. Anything but loopback needs a token.
    #[arg(
        long = "web.listen-address",
        visible_alias = "listen",
        default_value = "127.0.0.1:9733"
    )]
    listen: SocketAddr,
    /// exporter-toolkit web config (YAML): TLS (tls_server_config) and basic auth (basic_auth_users).
    #[arg(long = "web.config.file")]
    web_config: Option<PathBuf>,
    /// Connections served at once; more wait to be accepted.
    #[arg(long = "web.max-connections", default_value_t = Limits::default().max_connections, value_parser = positive_count)]
    max_connections: usize,
    /// Time to send a request's headers (and the TLS handshake), counted from the connection's start or its previous answer: also closes idle keep-alive connections.
    #[arg(long = "web.header-read-timeout", default_value = "30s", value_parser = positive_duration)]
    header_read_timeout: Duration,
    /// Time to send a request body once its headers are in; past it 408.
    #[arg(long = "web.body-read-timeout", default_value = "30s", value_parser = positive_duration)]
    body_read_timeout: Duration,
    /// A client that takes nothing of an answer for this long is disconnected.
    #[arg(long = "web.write-timeout", default_value = "30s", value_parser = positive_duration)]
    write_timeout: Duration,
    /// /metrics answers in progress at once; past it 503 with Retry-After.
    #[arg(long = "web.max-requests", default_value_t = Limits::default().max_scrapes, value_parser = positive_count)]
    max_scrapes: usize,
    /// POST /api/v1/events requests in progress at once; past it 503 with Retry-After.
    #[arg(long = "web.max-write-requests", default_value_t = Limits::default().max_writes, value_parser = positive_count)]
    max_writes: usize,
    /// Where machine states are kept across restarts.
    #[arg(long, default_value = "./statescope-data")]
    data_dir: PathBuf,
    /// Run a simulated fleet (9 breakers, 12 workers) so dashboards show life.
    #[arg(long)]
    demo: bool,
    /// File holding the bearer token POST /api/v1/events requires (or set STATESCOPE_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without a token (when a proxy authenticates).
    #[arg(long)]
    allow_unauthenticated_remote: bool,
    /// PEM certificate chain: serve HTTPS (or tls_server_config in --web.config.file).
    #[arg(long, requires = "tls_key", conflicts_with = "web_config")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Move a machine to its kind's heartbeat-lost state (worker: offline) after this long without a heartbeat [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    heartbeat_ttl: Option<Duration>,
    /// Seed-compatible circuit_breaker_* series [default: on].
    #[arg(long, value_enum)]
    compat_metrics: Option<Compat>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file and exit 0 (valid) or 1 (with what is wrong).
    CheckConfig { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match Config::load(file) {
            Ok(config) => {
                println!(
                    "{}: ok ({} kinds: {}; {} poll targets)",
                    file.display(),
                    config.catalog.all().len(),
                    config.catalog.names().join(", "),
                    config.poll.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match settings(cli).and_then(|s| {
        let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
        runtime.block_on(server::run(s))
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

fn settings(cli: Cli) -> anyhow::Result<Settings> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let token = match (&cli.token_file, std::env::var("STATESCOPE_TOKEN")) {
        (Some(file), _) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("reading token file {}", file.display()))?;
            Some(text.trim().to_owned())
        }
        (None, Ok(env)) => Some(env.trim().to_owned()),
        (None, Err(_)) => None,
    };
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        anyhow::bail!("the token is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)");
    }
    let mut web = match &cli.web_config {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::default(),
    };
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        web.tls = Some(WebConfig::tls_from_files(cert, key).map_err(anyhow::Error::msg)?);
    }
    Ok(Settings {
        heartbeat_ttl: cli
            .heartbeat_ttl
            .or(config.heartbeat_ttl)
            .unwrap_or(server::DEFAULT_HEARTBEAT_TTL),
        compat: cli.compat_metrics.or(config.compat_metrics).unwrap_or_default(),
        config,
        listen: cli.listen,
        data_dir: cli.data_dir,
        demo: cli.demo,
        token,
        allow_unauthenticated_remote: cli.allow_unauthenticated_remote,
        web,
        limits: Limits {
            max_connections: cli.max_connections,
            header_read_timeout: cli.header_read_timeout,
            body_read_timeout: cli.body_read_timeout,
            write_timeout: cli.write_timeout,
            max_scrapes: cli.max_scrapes,
            max_writes: cli.max_writes,
        },
    })
}
