//! Calls through circuit breakers, by outcome, and their current failures:
//! every breaker from its creation, any other machine once it reports a call.

use statescope_model::builtin::CIRCUIT_BREAKER;
use statescope_model::contract::{self as c, CallOutcome};

use super::writer::{Type, Writer, extra};
use super::{Row, Scrape};

fn has_calls(row: &Row<'_>) -> bool {
    row.machine.has_calls() || row.key.kind == CIRCUIT_BREAKER
}

pub(super) fn collect(scrape: &Scrape<'_>, out: &mut Writer<'_>) {
    out.family(
        c::BREAKER_CALLS_TOTAL,
        Type::Counter,
        "Calls through the breaker, by outcome",
    );
    let outcomes = CallOutcome::ALL.map(|o| extra(&[(c::LABEL_OUTCOME, o.as_str())]));
    for row in scrape.machines.iter().filter(|r| has_calls(r)) {
        for (o, n) in outcomes.iter().zip(row.machine.calls) {
            out.counter(c::BREAKER_CALLS_TOTAL, &row.labels, o, n, row.machine.created);
        }
    }
    out.family(
        c::BREAKER_FAILURES,
        Type::Gauge,
        "Failures in the breaker's current window",
    );
    for row in scrape.machines.iter().filter(|r| has_calls(r)) {
        out.sample(c::BREAKER_FAILURES, &row.labels, "", row.machine.failures as f64);
    }
}
