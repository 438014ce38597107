//! The seed-compatible `circuit_breaker_*` series, with the names many
//! existing dashboards and alert rules use (see [`Compat`]). Their labels
//! (`provider`, `key_id`, `machine`) are rendered with the snapshot.

use statescope_model::contract as c;

use super::Snapshot;
use super::writer::{Type, Writer};
use crate::config::Compat;
use crate::telemetry::Telemetry;

pub(super) fn collect(scrape: &Snapshot, _: &Telemetry, out: &mut Writer<'_>) {
    if scrape.compat == Compat::Off {
        return;
    }
    let breakers = || scrape.rows.iter().filter(|r| r.compat_series);
    let mut labels = String::new();
    out.family(
        c::COMPAT_BREAKER_STATE,
        Type::Gauge,
        "Breaker state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled",
    );
    for row in breakers() {
        let machine = scrape.compat_labels(row, &mut labels);
        out.sample(c::COMPAT_BREAKER_STATE, &labels, machine, row.state.index() as f64);
    }
    out.family(c::COMPAT_BREAKER_TRIPS_TOTAL, Type::Counter, "Times the breaker opened");
    for row in breakers() {
        let machine = scrape.compat_labels(row, &mut labels);
        out.counter(c::COMPAT_BREAKER_TRIPS_TOTAL, &labels, machine, row.trips, row.created);
    }
    if scrape.compat == Compat::Full {
        out.family(
            c::COMPAT_BREAKER_FAILURE_COUNT,
            Type::Gauge,
            "Failures in the breaker's current window",
        );
        for row in breakers() {
            let machine = scrape.compat_labels(row, &mut labels);
            out.sample(c::COMPAT_BREAKER_FAILURE_COUNT, &labels, machine, row.failures as f64);
        }
    }
}
