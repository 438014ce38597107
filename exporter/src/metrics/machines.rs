//! Every machine's state (one-hot), when it entered it, and the transitions
//! it took: the families every kind has.

use statescope_model::StateId;
use statescope_model::contract as c;

use super::Snapshot;
use super::writer::{Type, Writer};
use crate::telemetry::Telemetry;

pub(super) fn collect(scrape: &Snapshot, _: &Telemetry, out: &mut Writer<'_>) {
    out.family(
        c::STATE,
        Type::Gauge,
        "1 for the state the machine is in, 0 for its kind's other states",
    );
    for row in &scrape.rows {
        out.group(c::STATE, scrape.labels(row));
        for (i, state) in scrape.texts[row.kind].states.iter().enumerate() {
            out.group_count(state, u64::from(i == row.state.index()));
        }
    }
    out.family(
        c::STATE_SINCE_TIMESTAMP_SECONDS,
        Type::Gauge,
        "Unix time the machine entered its current state",
    );
    for row in &scrape.rows {
        out.sample(c::STATE_SINCE_TIMESTAMP_SECONDS, scrape.labels(row), "", row.since);
    }
    out.family(
        c::TRANSITIONS_TOTAL,
        Type::Counter,
        "Transitions taken, counted where they happened",
    );
    for row in &scrape.rows {
        let text = &scrape.texts[row.kind];
        out.group(c::TRANSITIONS_TOTAL, scrape.labels(row));
        for (from, to, n) in transition_counts(&text.normal, scrape.taken(row)) {
            out.group_counter(text.pair(from, to), n, row.created);
        }
    }
    out.family(
        c::UNEXPECTED_TRANSITIONS_TOTAL,
        Type::Counter,
        "Reported transitions the machine's kind does not expect (applied, or refused by a strict kind)",
    );
    for row in &scrape.rows {
        out.counter(
            c::UNEXPECTED_TRANSITIONS_TOTAL,
            scrape.own_labels(row),
            "",
            row.unexpected,
            row.created,
        );
    }
}

/// A machine's transition counts: every normal-flow pair of its kind (0 when
/// not taken yet, so the counter exists before its first increment) and every
/// other pair it took, ordered by source then target.
fn transition_counts<'a>(
    normal: &'a [(StateId, StateId)],
    taken: &'a [((StateId, StateId), u64)],
) -> impl Iterator<Item = (StateId, StateId, u64)> + 'a {
    let mut normal = normal.iter().copied().peekable();
    let mut taken = taken.iter().copied().peekable();
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
