//! The three things the load generator does to a server: seed the fleet,
//! time scrapes, and push events while scrapes run.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client::{Conn, Target};
use crate::events::{Stream, seed_bodies};
use crate::stats::Latency;

pub const EVENTS_PATH: &str = "/api/v1/events";
pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, Serialize, Deserialize)]
pub struct Seeded {
    pub machines: usize,
    pub posts: usize,
    pub secs: f64,
}

/// Creates machines `0..machines` (see [`crate::events::seed_events`]) over
/// `connections` connections. Fails on the first refused batch: a benchmark
/// over a half-seeded fleet would measure the wrong thing.
pub async fn seed(target: &Target, machines: usize, batch: usize, connections: usize) -> Result<Seeded> {
    let start = Instant::now();
    let bodies = seed_bodies(0..machines, batch);
    let posts = bodies.len();
    let mut shares: Vec<Vec<String>> = (0..connections.max(1)).map(|_| Vec::new()).collect();
    for (i, body) in bodies.into_iter().enumerate() {
        shares[i % connections.max(1)].push(body);
    }
    let mut tasks = Vec::new();
    for share in shares {
        let mut conn = Conn::new(target.clone());
        tasks.push(tokio::spawn(async move {
            for body in share {
                let (status, reply) = conn.post_json(EVENTS_PATH, Bytes::from(body)).await?;
                if !status.is_success() {
                    bail!(
                        "seeding: POST {EVENTS_PATH}: {status}: {}",
                        String::from_utf8_lossy(&reply)
                    );
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(Seeded {
        machines,
        posts,
        secs: start.elapsed().as_secs_f64(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Scraped {
    pub latency: Latency,
    /// Size of the last response body.
    pub bytes: usize,
    /// Samples (non-comment lines) in the last response body.
    pub series: usize,
}

/// `count` sequential scrapes of `path` (`/metrics`) on one keep-alive connection,
/// after `warmup` untimed ones, as Prometheus does it (without gzip).
pub async fn scrape(target: &Target, path: &str, count: usize, warmup: usize) -> Result<Scraped> {
    let mut conn = Conn::new(target.clone());
    let mut last = Vec::new();
    for _ in 0..warmup {
        conn.get_into(path, &mut last).await?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        conn.get_into(path, &mut last).await?;
        samples.push(start.elapsed());
    }
    let Some(latency) = Latency::of(&samples) else {
        bail!("no scrape was timed (count 0)")
    };
    Ok(Scraped {
        latency,
        bytes: last.len(),
        series: count_series(&last),
    })
}

/// Samples in a Prometheus or OpenMetrics text body.
pub fn count_series(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty() && line[0] != b'#')
        .count()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Ingested {
    pub connections: usize,
    /// The rate asked for, if paced.
    pub rate: Option<f64>,
    pub batch: usize,
    pub secs: f64,
    /// Events in batches the server acknowledged with a 2xx.
    pub events: u64,
    pub events_per_sec: f64,
    pub posts: u64,
    pub failed_posts: u64,
    pub first_error: Option<String>,
    pub post_latency: Option<Latency>,
    /// Scrapes that ran during the load.
    pub scrape_latency: Option<Latency>,
}

/// The ingest test's shape.
#[derive(Clone, Copy, Debug)]
pub struct IngestPlan {
    pub fleet: usize,
    pub connections: usize,
    pub batch: usize,
    pub duration: Duration,
    /// Pause between the end of a scrape and the start of the next; zero scrapes continuously.
    pub scrape_every: Duration,
    /// Events per second over all connections, each posting on a fixed schedule
    /// (a late post does not delay the next ones); `None`: as fast as answered.
    pub rate: Option<f64>,
}

/// Pushes the event stream over `plan.connections` connections for
/// `plan.duration` while a separate thread scrapes `/metrics`, and reports
/// acknowledged events per second and both latencies.
///
/// The scraper runs on its own thread and runtime so its timings do not
/// include waits behind the posting tasks.
pub async fn ingest(target: &Target, plan: IngestPlan) -> Result<Ingested> {
    let deadline = Instant::now() + plan.duration;
    let scraper = {
        let target = target.clone();
        std::thread::spawn(move || -> Result<Vec<Duration>> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut conn = Conn::new(target);
                let (mut samples, mut body) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    let start = Instant::now();
                    conn.get_into(METRICS_PATH, &mut body).await?;
                    samples.push(start.elapsed());
                    tokio::time::sleep(
                        plan.scrape_every
                            .min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                Ok(samples)
            })
        })
    };

    let start = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..plan.connections {
        let mut conn = Conn::new(target.clone());
        let mut stream = Stream::new(plan.fleet, connection, plan.connections);
        let every = plan
            .rate
            .map(|rate| Duration::from_secs_f64((plan.batch * plan.connections) as f64 / rate));
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut next_post = tokio::time::Instant::now();
            while Instant::now() < deadline {
                if let Some(every) = every {
                    if next_post.into_std() >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(next_post).await;
                    next_post += every;
                }
                let body = stream.next_body(plan.batch);
                if body.is_empty() {
                    break;
                }
                let sent = Instant::now();
                match conn.post_json(EVENTS_PATH, Bytes::from(body)).await {
                    Ok((status, _)) if status.is_success() => {
                        tally.events += plan.batch as u64;
                        tally.latencies.push(sent.elapsed());
                    }
                    Ok((status, reply)) => {
                        tally.fail(format!("{status}: {}", String::from_utf8_lossy(&reply)));
                    }
                    Err(e) => tally.fail(format!("{e:#}")),
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await?;
        total.events += t.events;
        total.failed += t.failed;
        total.latencies.extend(t.latencies);
        total.first_error = total.first_error.or(t.first_error);
    }
    let secs = start.elapsed().as_secs_f64();
    let scrapes = scraper
        .join()
        .map_err(|_| anyhow::anyhow!("the scraper thread panicked"))??;
    Ok(Ingested {
        connections: plan.connections,
        rate: plan.rate,
        batch: plan.batch,
        secs,
        events: total.events,
        events_per_sec: total.events as f64 / secs,
        posts: total.latencies.len() as u64 + total.failed,
        failed_posts: total.failed,
        first_error: total.first_error,
        post_latency: Latency::of(&total.latencies),
        scrape_latency: Latency::of(&scrapes),
    })
}

#[derive(Default)]
struct Tally {
    events: u64,
    failed: u64,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_non_comment_lines() {
        let body = b"# HELP a x\n# TYPE a gauge\na{b=\"1\"} 1\na{b=\"2\"} 0\n# EOF\n";
        assert_eq!(count_series(body), 2);
    }
}
