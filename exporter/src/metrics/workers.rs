//! Jobs workers finished, by result; job duration and queue wait histograms
//! per kind and worker type; and machines' last heartbeats (what expires a
//! silent worker).

use statescope_model::contract::{self as c, JobResult};

use super::Snapshot;
use super::writer::{Type, Writer, labels, tail};
use crate::store::{Histogram, JobHistograms};
use crate::telemetry::Telemetry;

pub(super) fn collect(scrape: &Snapshot, _: &Telemetry, out: &mut Writer<'_>) {
    out.family(
        c::WORKER_JOBS_TOTAL,
        Type::Counter,
        "Jobs the worker finished, by result",
    );
    let results = JobResult::ALL.map(|r| tail(&[(c::LABEL_RESULT, r.as_str())]));
    // A worker, or a machine that finished a job.
    for row in scrape.with_jobs.iter().map(|&i| &scrape.rows[i]) {
        out.group(c::WORKER_JOBS_TOTAL, scrape.labels(row));
        for (r, n) in results.iter().zip(row.jobs) {
            out.group_counter(r, n, row.created);
        }
    }
    histograms(
        scrape,
        out,
        c::WORKER_JOB_DURATION_SECONDS,
        "How long jobs ran, by kind and worker type",
        |h| &h.duration,
    );
    histograms(
        scrape,
        out,
        c::WORKER_QUEUE_WAIT_SECONDS,
        "How long jobs waited before starting, by kind and worker type",
        |h| &h.queue_wait,
    );
    out.family(
        c::LAST_HEARTBEAT_TIMESTAMP_SECONDS,
        Type::Gauge,
        "Unix time of the machine's last heartbeat",
    );
    for row in scrape.with_heartbeat.iter().map(|&i| &scrape.rows[i]) {
        if let Some(t) = row.last_heartbeat {
            out.sample(c::LAST_HEARTBEAT_TIMESTAMP_SECONDS, scrape.labels(row), "", t);
        }
    }
}

/// One histogram family over the store's (kind, worker type) pairs that observed something.
fn histograms(
    scrape: &Snapshot,
    out: &mut Writer<'_>,
    name: &str,
    help: &str,
    which: fn(&JobHistograms) -> &Histogram,
) {
    out.family(name, Type::Histogram, help);
    for ((kind, worker_type), h) in &scrape.jobs {
        let h = which(h);
        if h.count > 0 {
            let l = labels(
                [
                    (c::LABEL_KIND, kind.as_str()),
                    (c::LABEL_WORKER_TYPE, worker_type.as_str()),
                ]
                .into_iter(),
            );
            out.histogram(name, &l, h);
        }
    }
}
