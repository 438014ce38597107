//! Calls through circuit breakers, by outcome, and their current failures:
//! every breaker from its creation, any other machine once it reports a call.

use statescope_model::contract::{self as c, CallOutcome};

use super::Snapshot;
use super::writer::{Type, Writer, tail};
use crate::telemetry::Telemetry;

pub(super) fn collect(scrape: &Snapshot, _: &Telemetry, out: &mut Writer<'_>) {
    out.family(
        c::BREAKER_CALLS_TOTAL,
        Type::Counter,
        "Calls through the breaker, by outcome",
    );
    let outcomes = CallOutcome::ALL.map(|o| tail(&[(c::LABEL_OUTCOME, o.as_str())]));
    for row in scrape.rows.iter().filter(|r| r.calls_series) {
        out.group(c::BREAKER_CALLS_TOTAL, scrape.labels(row));
        for (o, n) in outcomes.iter().zip(row.calls) {
            out.group_counter(o, n, row.created);
        }
    }
    out.family(
        c::BREAKER_FAILURES,
        Type::Gauge,
        "Failures in the breaker's current window",
    );
    for row in scrape.rows.iter().filter(|r| r.calls_series) {
        out.sample(c::BREAKER_FAILURES, scrape.labels(row), "", row.failures as f64);
    }
}
