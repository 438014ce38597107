//! The seed-compatible `circuit_breaker_*` series, with the names many
//! existing dashboards and alert rules use (see [`Compat`]).

use statescope_model::builtin::{CIRCUIT_BREAKER, breaker_state};
use statescope_model::contract as c;

use super::Scrape;
use super::writer::{Type, Writer, labels};
use crate::config::Compat;

pub(super) fn collect(scrape: &Scrape<'_>, out: &mut Writer<'_>) {
    if scrape.compat == Compat::Off {
        return;
    }
    // provider/key_id as the seed dashboards use them, plus `machine` so two
    // breakers with the same provider and key id never collide into one series.
    let breakers: Vec<_> = scrape
        .machines
        .iter()
        .filter(|row| row.key.kind == CIRCUIT_BREAKER)
        .map(|row| {
            let m = row.machine;
            let provider = m.labels.get(c::LABEL_PROVIDER).map_or("", String::as_str);
            let key_id = m
                .labels
                .get(c::LABEL_KEY_ID)
                .map_or(row.key.machine.as_str(), String::as_str);
            let l = labels(
                [
                    (c::LABEL_PROVIDER, provider),
                    (c::LABEL_KEY_ID, key_id),
                    (c::LABEL_MACHINE, row.key.machine.as_str()),
                ]
                .into_iter(),
            );
            (row, l)
        })
        .collect();
    out.family(
        c::COMPAT_BREAKER_STATE,
        Type::Gauge,
        "Breaker state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled",
    );
    for (row, l) in &breakers {
        out.sample(c::COMPAT_BREAKER_STATE, l, "", row.machine.state.index() as f64);
    }
    out.family(c::COMPAT_BREAKER_TRIPS_TOTAL, Type::Counter, "Times the breaker opened");
    if let Some((first, _)) = breakers.first() {
        let open = first
            .kind
            .state_id(breaker_state::OPEN)
            .expect("the built-in breaker has an open state");
        for (row, l) in &breakers {
            out.counter(
                c::COMPAT_BREAKER_TRIPS_TOTAL,
                l,
                "",
                row.machine.transitions_into(open),
                row.machine.created,
            );
        }
    }
    if scrape.compat == Compat::Full {
        out.family(
            c::COMPAT_BREAKER_FAILURE_COUNT,
            Type::Gauge,
            "Failures in the breaker's current window",
        );
        for (row, l) in &breakers {
            out.sample(c::COMPAT_BREAKER_FAILURE_COUNT, l, "", row.machine.failures as f64);
        }
    }
}
