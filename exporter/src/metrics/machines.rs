//! Every machine's state (one-hot), when it entered it, and the transitions
//! it took: the families every kind has.

use statescope_model::contract as c;
use statescope_model::{Kind, StateId};

use super::Scrape;
use super::writer::{Type, Writer};
use crate::store::Machine;

pub(super) fn collect(scrape: &Scrape<'_>, out: &mut Writer<'_>) {
    out.family(
        c::STATE,
        Type::Gauge,
        "1 for the state the machine is in, 0 for its kind's other states",
    );
    for row in &scrape.machines {
        for id in row.kind.state_ids() {
            out.sample(
                c::STATE,
                &row.labels,
                row.text.state(id),
                f64::from(u8::from(id == row.machine.state)),
            );
        }
    }
    out.family(
        c::STATE_SINCE_TIMESTAMP_SECONDS,
        Type::Gauge,
        "Unix time the machine entered its current state",
    );
    for row in &scrape.machines {
        out.sample(c::STATE_SINCE_TIMESTAMP_SECONDS, &row.labels, "", row.machine.since);
    }
    out.family(
        c::TRANSITIONS_TOTAL,
        Type::Counter,
        "Transitions taken, counted where they happened",
    );
    for row in &scrape.machines {
        for (from, to, n) in transition_counts(row.kind, row.machine) {
            let extra = row.text.pair(from, to);
            out.counter(c::TRANSITIONS_TOTAL, &row.labels, extra, n, row.machine.created);
        }
    }
    out.family(
        c::UNEXPECTED_TRANSITIONS_TOTAL,
        Type::Counter,
        "Reported transitions the machine's kind does not expect (applied, or refused by a strict kind)",
    );
    for row in &scrape.machines {
        out.counter(
            c::UNEXPECTED_TRANSITIONS_TOTAL,
            row.own_labels(),
            "",
            row.machine.unexpected,
            row.machine.created,
        );
    }
}

/// A machine's transition counts: every normal-flow pair of its kind (0 when
/// not taken yet, so the counter exists before its first increment) and every
/// other pair it took, ordered by source then target.
fn transition_counts<'a>(kind: &'a Kind, m: &'a Machine) -> impl Iterator<Item = (StateId, StateId, u64)> + 'a {
    let mut normal = kind.transitions().peekable();
    let mut taken = m.transitions.iter().map(|(&pair, &n)| (pair, n)).peekable();
    std::iter::from_fn(move || match (normal.peek().copied(), taken.peek().copied()) {
        (Some(a), Some((b, n))) if a == b => {
            normal.next();
            taken.next();
            Some((a.0, a.1, n))
        }
        (Some(a), Some((b, _))) if a < b => {
            normal.next();
            Some((a.0, a.1, 0))
        }
        (Some(a), None) => {
            normal.next();
            Some((a.0, a.1, 0))
        }
        (_, Some((b, n))) => {
            taken.next();
            Some((b.0, b.1, n))
        }
        (None, None) => None,
    })
}
