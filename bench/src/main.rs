//! `statescope-bench`: the load generator and the report table that
//! `bench/run.sh` drives. Each measuring subcommand prints one JSON object.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use statescope_bench::client::Target;
use statescope_bench::floor;
use statescope_bench::frames::Fleet;
use statescope_bench::load::{self, IngestPlan};
use statescope_bench::report;

/// Where the panel benchmark's hour of data ends (a fixed instant, so runs compare).
const FRAMES_END_MS: u64 = 1_800_000_000_000;

#[derive(Parser)]
#[command(about = "Statescope's load generator and benchmark report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Server {
    /// The server, as http://IP:PORT.
    #[arg(long)]
    url: String,
    /// Bearer token for POST /api/v1/events (also from STATESCOPE_TOKEN).
    #[arg(long, env = "STATESCOPE_TOKEN")]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the benchmark fleet of circuit breakers over HTTP.
    Seed {
        #[command(flatten)]
        server: Server,
        #[arg(long)]
        machines: usize,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// Times sequential scrapes of /metrics on one keep-alive connection.
    Scrape {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 20)]
        count: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Recorded with the figures (the fleet size the caller seeded).
        #[arg(long)]
        machines: Option<usize>,
        #[arg(long, default_value = load::METRICS_PATH)]
        path: String,
    },
    /// Serves a body saved from /metrics pre-encoded, through the exporter's HTTP stack
    /// (the transfer floor: see `floor`), on 127.0.0.1 until stopped.
    ServeBody {
        #[arg(long)]
        body: PathBuf,
        /// Written with the port once listening.
        #[arg(long)]
        port_file: PathBuf,
    },
    /// Posts events over many connections for a bounded time while scraping.
    Ingest {
        #[command(flatten)]
        server: Server,
        /// The fleet seeded beforehand; events go to these machines.
        #[arg(long)]
        machines: usize,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Pause between scrapes; 0 scrapes continuously.
        #[arg(long, default_value_t = 1000)]
        scrape_every_ms: u64,
        /// Send at this many events per second in all (each connection on a fixed
        /// schedule), instead of as fast as the server answers.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Writes Grafana frames for the panel benchmark (an hour of 15 s samples, and the
    /// same after each of `--refreshes` refreshes, each one step later than the one
    /// before) for each fleet size, and prints their manifest.
    Frames {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        machines: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        refreshes: usize,
    },
    /// Prints the table from the run's records and criterion's estimates, and writes it to --out.
    Table {
        /// JSON-lines records: {"name": ..., "data": {...}}.
        #[arg(long)]
        results: PathBuf,
        /// criterion's output directory (CARGO_TARGET_DIR/criterion).
        #[arg(long)]
        criterion: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Words for the heading, e.g. the date and the mode.
        #[arg(long, default_value = "")]
        title: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One thread for the load: the server under test keeps the other core.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let target = |s: Server| Target::parse(&s.url, s.token);
    let json = match cli.command {
        Command::Seed {
            server,
            machines,
            batch,
            connections,
        } => serde_json::to_value(rt.block_on(load::seed(&target(server)?, machines, batch, connections))?)?,
        Command::Scrape {
            server,
            count,
            warmup,
            machines,
            path,
        } => {
            let mut v = serde_json::to_value(rt.block_on(load::scrape(&target(server)?, &path, count, warmup))?)?;
            v["machines"] = machines.into();
            v
        }
        Command::Ingest {
            server,
            machines,
            connections,
            batch,
            seconds,
            scrape_every_ms,
            rate,
        } => {
            let plan = IngestPlan {
                fleet: machines,
                connections,
                batch,
                duration: Duration::from_secs_f64(seconds),
                scrape_every: Duration::from_millis(scrape_every_ms),
                rate,
            };
            let v = rt.block_on(load::ingest(&target(server)?, plan))?;
            if v.events == 0 {
                anyhow::bail!(
                    "no event was acknowledged: {}",
                    v.first_error.as_deref().unwrap_or("no error seen")
                );
            }
            serde_json::to_value(v)?
        }
        Command::ServeBody { body, port_file } => {
            // Served as the exporter serves: on a multi-threaded runtime, one worker per CPU.
            drop(rt);
            return tokio::runtime::Runtime::new()?.block_on(floor::serve(&body, &port_file));
        }
        Command::Frames {
            dir,
            machines,
            refreshes,
        } => {
            std::fs::create_dir_all(&dir)?;
            let mut manifest = Vec::new();
            for n in machines {
                let first = Fleet::hour(n, FRAMES_END_MS);
                let name = format!("frames-{n}.json");
                std::fs::write(dir.join(&name), first.frames_json())?;
                let [from, to] = first.range_ms();
                // What a dashboard refresh hands the panel: the range slid forward, never back.
                let mut slid = Vec::new();
                let mut fleet = first;
                for r in 1..=refreshes.max(1) {
                    fleet = fleet.next_refresh();
                    let name = if r == 1 {
                        format!("frames-{n}-next.json")
                    } else {
                        format!("frames-{n}-next{r}.json")
                    };
                    std::fs::write(dir.join(&name), fleet.frames_json())?;
                    let [from, to] = fleet.range_ms();
                    slid.push(serde_json::json!({ "name": name, "from": from, "to": to }));
                }
                manifest.push(serde_json::json!({
                    "machines": n, "first": name, "from": from, "to": to,
                    "next": slid[0]["name"], "next_from": slid[0]["from"], "next_to": slid[0]["to"],
                    "refreshes": slid,
                }));
            }
            serde_json::Value::from(manifest)
        }
        Command::Table {
            results,
            criterion,
            out,
            title,
        } => {
            let r = report::Results::load(&results, criterion)?;
            let heading = format!(
                "Statescope benchmarks {title}\n\nMachine: {}",
                report::machine_description()
            );
            let table = report::markdown(&report::rows(&r), &heading);
            print!("{table}");
            if let Some(out) = out {
                std::fs::write(&out, &table)?;
            }
            return Ok(());
        }
    };
    println!("{json}");
    Ok(())
}
