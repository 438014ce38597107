//! Transition counts on screen equal what the exporter counted, per machine
//! and per edge: for machines created inside the range (whose first moves
//! come before their first scrape), counters first seen mid-range, machines
//! whose labels changed, and without counting what a Prometheus (or a scrape
//! target) that started mid-range found already counted.
mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;
use statescope_panel::PanelView;
use support::scrape::*;
use support::*;

const EXPORTER: &str = "exporter:9733";
const MINUTE: f64 = 60_000.0;

/// `count` breakers each created at a random time inside the range, making
/// moves from creation to the end (flaps between scrapes, manual moves);
/// every fourth gets `provider`/`key_id` labels some time after creation.
/// Prometheus scrapes the exporter since long before the range.
fn churn(seed: u64, count: usize) -> Fleet {
    let mut rng = Xorshift::new(seed);
    let steps = 240;
    let end = T0 + steps as f64 * STEP;
    let machines = (0..count)
        .map(|i| {
            let created = rng.between(T0 + 1_000.0, T0 + 50.0 * MINUTE);
            let labels_added = (i % 4 == 0).then(|| {
                (
                    rng.between(created, end),
                    vec![("key_id", format!("key-{i}")), ("provider", format!("p{}", i % 3))],
                )
            });
            Machine {
                instance: EXPORTER,
                id: format!("breaker-{i:02}"),
                created,
                labels_added,
                moves: random_moves(&mut rng, "closed", created, end - 20_000.0),
            }
        })
        .collect();
    Fleet {
        machines,
        first_scrape: vec![scraped_all_along(EXPORTER)],
        steps,
    }
}

fn panel(fleet: &Fleet, query: Query) -> PanelView {
    view(&input(fleet.frames(query), json!({}), fleet.steps + 1))
}

/// Every machine's count and state, and every edge's count, equal the
/// exporter's; no machine is split or repeated.
fn assert_panel_counts(fleet: &Fleet, view: &PanelView) -> Result<(), TestCaseError> {
    prop_assert!(view.warnings.is_empty(), "warnings: {:?}", view.warnings);
    prop_assert_eq!(view.machines.len(), fleet.machines.len());
    let kind = &view.kinds[0];
    let name = |i: usize| kind.nodes[i].state.clone();
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in &fleet.machines {
        let counted = fleet.counted(m);
        let shown = machine(view, &m.id);
        prop_assert_eq!(
            shown.transitions_in_range,
            counted.values().sum::<u64>(),
            "{} counted {:?}",
            m.id,
            counted
        );
        prop_assert_eq!(shown.state.as_deref(), fleet.last_state(m), "{}", m.id);
        for ((from, to), n) in counted {
            *expected.entry((from.to_owned(), to.to_owned())).or_default() += n;
        }
    }
    let shown: BTreeMap<(String, String), u64> = kind
        .edges
        .iter()
        .filter(|e| e.taken_in_range > 0)
        .map(|e| ((name(e.from), name(e.to)), e.taken_in_range))
        .collect();
    prop_assert_eq!(shown, expected);
    Ok(())
}

#[test]
fn churn_counts_equal_the_exporters_counters() {
    let fleet = churn(11, 40);
    let total: usize = fleet.machines.iter().map(|m| m.moves.len()).sum();
    let before_first_scrape = fleet
        .machines
        .iter()
        .filter(|m| m.moves.first().is_some_and(|mv| mv.0 - m.created < SCRAPE / 2.0))
        .count();
    assert!(total > 1_500, "a busy fleet: {total} moves");
    assert!(
        before_first_scrape > 5,
        "{before_first_scrape} machines move before being scraped"
    );
    // The query as the provisioned dashboard makes it (counters' `_created`
    // and the since gauge), then without `_created` (a Prometheus text-format
    // scrape, or a query that leaves it out): the since gauge tells then.
    for (created, since) in [
        (Created::Machine, true),
        (Created::Counter, true),
        (Created::No, true),
        (Created::Machine, false),
        (Created::Counter, false),
    ] {
        let query = Query { created, since };
        assert_panel_counts(&fleet, &panel(&fleet, query)).unwrap_or_else(|e| panic!("{query:?}: {e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_churn_counts_equal_the_exporters_counters(
        seed in any::<u64>(),
        created in prop_oneof![Just(Created::No), Just(Created::Machine), Just(Created::Counter)],
    ) {
        let fleet = churn(seed, 12);
        assert_panel_counts(&fleet, &panel(&fleet, Query { created, since: true }))?;
    }
}

/// Breakers that existed long before the range, with counts already made,
/// and whose exporter Prometheus only starts scraping 20 minutes into the
/// range; two more are created after that. Only what happens after the
/// first scrape is counted: the counters' first values are a baseline.
fn new_prometheus() -> Fleet {
    let mut rng = Xorshift::new(7);
    let first = 20.0 * MINUTE;
    let end = T0 + 240.0 * STEP;
    let mut machines: Vec<Machine> = (0..6)
        .map(|i| {
            let created = T0 - 120.0 * MINUTE;
            let mut moves = random_moves(&mut rng, "closed", created, T0 - MINUTE);
            let state = moves.last().map_or("closed", |m| m.2);
            moves.extend(random_moves(&mut rng, state, T0 + first + SCRAPE, end - 20_000.0));
            Machine {
                instance: EXPORTER,
                id: format!("old-{i}"),
                created,
                labels_added: None,
                moves,
            }
        })
        .collect();
    for i in 0..2 {
        let created = T0 + first + (10.0 + i as f64 * 7.0) * MINUTE;
        machines.push(Machine {
            instance: EXPORTER,
            id: format!("new-{i}"),
            created,
            labels_added: None,
            moves: random_moves(&mut rng, "closed", created, end - 20_000.0),
        });
    }
    Fleet {
        machines,
        first_scrape: vec![first_scraped_at(EXPORTER, first)],
        steps: 240,
    }
}

#[test]
fn a_prometheus_started_mid_range_does_not_count_the_baseline() {
    let fleet = new_prometheus();
    let baseline: usize = fleet
        .machines
        .iter()
        .map(|m| m.moves.iter().filter(|mv| mv.0 < T0).count())
        .sum();
    assert!(baseline > 100, "{baseline} moves before the range");
    for created in [Created::No, Created::Machine, Created::Counter] {
        for since in [true, false] {
            let query = Query { created, since };
            assert_panel_counts(&fleet, &panel(&fleet, query)).unwrap_or_else(|e| panic!("{query:?}: {e}"));
        }
    }
}

/// A second exporter (a new replica) is first scraped 20 minutes into the
/// range, beside one scraped all along whose breakers are created in range.
/// The replica's breakers existed before: their counters are a baseline,
/// although their series appear mid-range next to machines that are new.
#[test]
fn a_scrape_target_added_mid_range_is_not_created_in_range() {
    let mut fleet = churn(3, 8);
    let mut rng = Xorshift::new(5);
    let end = T0 + 240.0 * STEP;
    for i in 0..4 {
        let created = T0 - 90.0 * MINUTE;
        let mut moves = random_moves(&mut rng, "closed", created, T0 - 30.0 * MINUTE);
        let state = moves.last().map_or("closed", |m| m.2);
        moves.extend(random_moves(&mut rng, state, T0 + 21.0 * MINUTE, end - 20_000.0));
        fleet.machines.push(Machine {
            instance: "replica-2:9733",
            id: format!("replica-{i}"),
            created,
            labels_added: None,
            moves,
        });
    }
    fleet
        .first_scrape
        .push(first_scraped_at("replica-2:9733", 20.0 * MINUTE));
    for created in [Created::No, Created::Machine, Created::Counter] {
        let query = Query { created, since: true };
        assert_panel_counts(&fleet, &panel(&fleet, query)).unwrap_or_else(|e| panic!("{query:?}: {e}"));
    }
}

/// A breaker that existed before the range moved 5 minutes into it, before
/// Prometheus first scraped its exporter at 10 minutes: its since gauge lies
/// in the range, yet its counters are a baseline. `_created` tells.
#[test]
fn created_series_tell_a_baseline_from_a_machine_created_in_range() {
    let mut rng = Xorshift::new(9);
    let end = T0 + 240.0 * STEP;
    let created = T0 - 60.0 * MINUTE;
    let mut moves = vec![
        (T0 - 30.0 * MINUTE, "closed", "open"),
        (T0 + 5.0 * MINUTE, "open", "half_open"),
    ];
    moves.extend(random_moves(&mut rng, "half_open", T0 + 11.0 * MINUTE, end - 20_000.0));
    let fleet = Fleet {
        machines: vec![Machine {
            instance: EXPORTER,
            id: "old".into(),
            created,
            labels_added: None,
            moves,
        }],
        first_scrape: vec![first_scraped_at(EXPORTER, 10.0 * MINUTE)],
        steps: 240,
    };
    let after_first_scrape = fleet.machines[0]
        .moves
        .iter()
        .filter(|m| m.0 > T0 + 10.0 * MINUTE)
        .count();
    for created in [Created::Machine, Created::Counter] {
        let view = panel(&fleet, Query { created, since: true });
        assert_panel_counts(&fleet, &view).unwrap_or_else(|e| panic!("{created:?}: {e}"));
        assert_eq!(machine(&view, "old").transitions_in_range, after_first_scrape as u64);
    }
}
