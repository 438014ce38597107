//! The exporter's store filled with the load test's fleet (`statescope_bench::events`),
//! shared by the exporter benches. Events go through the same decoding as
//! `POST /api/v1/events`, so the store holds exactly what the HTTP run builds.

// Each bench binary includes this module and uses a part of it.
#![allow(dead_code)]

use statescope_bench::events::{CYCLE, Stream, seed_bodies};
use statescope_exporter::events::{Body, Event, RawEvent};
use statescope_exporter::store::{Catalog, Limits, Store};
use statescope_model::builtin;
use statescope_model::contract::DEFAULT_IDENTITY_LABELS;

/// Events per request, as the load generator sends them.
pub const BATCH: usize = 100;

/// A fixed instant (unix seconds), so runs compare; read off a clock as the
/// exporter stamps events, to the last bit rather than a whole millisecond,
/// so the encode benches write timestamps as a server's scrape does.
pub const NOW: f64 = 1_800_000_000.123_456_7;

/// Decodes a request body as the API does: `{"events": [...]}`, each event checked.
pub fn decode(body: &str) -> Vec<Event> {
    let values = match serde_json::from_str::<Body>(body).expect("the benchmark body is JSON") {
        Body::Batch { events } => events,
        Body::One(value) => vec![value],
    };
    let identity: Vec<String> = DEFAULT_IDENTITY_LABELS.iter().map(|l| (*l).to_owned()).collect();
    values
        .into_iter()
        .map(|v| RawEvent::parse_with(v.get(), &identity).expect("the benchmark events are well formed"))
        .collect()
}

/// An empty store with the built-in kinds, its caps raised to fit `machines`
/// (the 100k fleet is past the default 50k machine cap, and every breaker has
/// its own `key_id`).
pub fn empty_store(machines: usize) -> Store {
    let defaults = Limits::default();
    let limits = Limits {
        max_machines: defaults.max_machines.max(machines + 1),
        max_label_values: defaults.max_label_values.max(machines + 1),
    };
    Store::new(
        Catalog::new(builtin::all()).expect("the built-in kinds are distinct"),
        limits,
    )
}

/// The load test's fleet of `machines` breakers, seeded as `statescope-bench seed` does.
pub fn seeded_store(machines: usize) -> Store {
    let mut store = empty_store(machines);
    for body in seed_bodies(0..machines, BATCH) {
        store.apply(&decode(&body), NOW).expect("the seed events apply");
    }
    store
}

/// Bodies of the load test's event stream over a seeded fleet (one connection),
/// exactly one period long: applied in order and then again from the start,
/// every transition stays legal. A period is whole batches (a multiple of
/// [`BATCH`]), whole passes over the fleet (a multiple of `machines`), and
/// four times that, since a breaker's transitions cycle through four states.
pub fn stream_period(machines: usize) -> Vec<String> {
    let steps = CYCLE.len() * lcm(machines, BATCH);
    let mut stream = Stream::new(machines, 0, 1);
    (0..steps / BATCH).map(|_| stream.next_body(BATCH)).collect()
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}
