//! A Statescope exporter's circuit breakers, scraped by Prometheus and read
//! back through a Grafana range query, simulated closely enough that a test
//! knows exactly what the exporter counted.
//!
//! The exporter side follows the metric contract: a machine's
//! `statescope_state` series (one per state) and its normal-flow transition
//! counters exist from the moment it is created (the counters at 0); a
//! counter of another move (an operator's `close()` on an open breaker) is
//! created by its first increment. Each counter carries its OpenMetrics
//! `_created` time; the since gauge holds when the current state was
//! entered. Labels added to a machine later (its first event carried none)
//! give all its series a new label set from then on.
//!
//! The Prometheus side: each target is scraped every `SCRAPE` from its first
//! scrape; a series missing from a scrape is stale from that scrape on. A
//! range query's sample at instant `q` is the series' value in the latest
//! scrape at or before `q`, if that scrape had the series. Frames are what
//! Grafana's Prometheus datasource hands a panel: one per series, only the
//! instants with a value.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{BREAKER, STEP, T0, prom_frame};

/// Scrape interval, offset from the query's step grid.
pub const SCRAPE: f64 = 15_000.0;
const SCRAPE_OFFSET: f64 = 4_000.0;

/// The moves a breaker makes by itself; counters for these exist from creation.
pub const NORMAL_FLOW: [(&str, &str); 4] = [
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
];

pub type Edge = (&'static str, &'static str);

#[derive(Clone, Debug)]
pub struct Machine {
    pub instance: &'static str,
    pub id: String,
    /// Epoch ms.
    pub created: f64,
    /// From when (epoch ms) the machine carries these extra labels.
    pub labels_added: Option<(f64, Vec<(&'static str, String)>)>,
    /// (time, from, to), in time order.
    pub moves: Vec<(f64, &'static str, &'static str)>,
}

impl Machine {
    fn state_at(&self, t: f64) -> &'static str {
        self.moves
            .iter()
            .take_while(|m| m.0 <= t)
            .last()
            .map_or("closed", |m| m.2)
    }

    fn since_at(&self, t: f64) -> f64 {
        self.moves
            .iter()
            .take_while(|m| m.0 <= t)
            .last()
            .map_or(self.created, |m| m.0)
    }

    /// The counters the exporter serves at `t`: edge, value, created (epoch ms).
    fn counters_at(&self, t: f64) -> Vec<(Edge, u64, f64)> {
        let mut out: Vec<(Edge, u64, f64)> = NORMAL_FLOW.iter().map(|e| (*e, 0, self.created)).collect();
        for m in self.moves.iter().take_while(|m| m.0 <= t) {
            match out.iter_mut().find(|c| c.0 == (m.1, m.2)) {
                Some(c) => c.1 += 1,
                None => out.push(((m.1, m.2), 1, m.0)),
            }
        }
        out
    }

    fn labels_at(&self, t: f64) -> Vec<(&'static str, String)> {
        let mut labels = vec![
            ("instance", self.instance.to_owned()),
            ("job", "statescope".to_owned()),
            ("kind", "circuit_breaker".to_owned()),
            ("machine", self.id.clone()),
        ];
        if let Some((from, extra)) = &self.labels_added
            && t >= *from
        {
            labels.extend(extra.iter().cloned());
        }
        labels
    }
}

/// The `_created` time served with each counter, if the query has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    No,
    /// When the machine was created, for each of its counters, including
    /// those only served from their first increment (the Statescope exporter).
    Machine,
    /// When the counter itself was, at its first increment for a counter of
    /// a manual move (the OpenMetrics definition, as client libraries serve it).
    Counter,
}

/// Which auxiliary series the panel's query asks for besides the states and counters.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub created: Created,
    pub since: bool,
}

#[derive(Clone, Debug)]
pub struct Fleet {
    pub machines: Vec<Machine>,
    /// First scrape of each target (epoch ms); a target not listed is never scraped.
    pub first_scrape: Vec<(&'static str, f64)>,
    /// Query steps: the range is `T0 ..= T0 + steps * STEP`.
    pub steps: usize,
}

impl Fleet {
    pub fn to(&self) -> f64 {
        T0 + self.steps as f64 * STEP
    }

    fn first_scrape_of(&self, instance: &str) -> Option<f64> {
        self.first_scrape.iter().find(|(i, _)| *i == instance).map(|(_, t)| *t)
    }

    /// The latest scrape of `instance` at or before `t`.
    fn scrape_before(&self, instance: &str, t: f64) -> Option<f64> {
        let first = self.first_scrape_of(instance)?;
        (t >= first).then(|| first + ((t - first) / SCRAPE).floor() * SCRAPE)
    }

    /// Moves of `m` the panel must count: in the range, seen by a scrape (a
    /// move after the last scrape in range has not reached Prometheus yet),
    /// and not already in the counter when Prometheus first saw it, if the
    /// machine existed before its target's first scrape (that count is a
    /// baseline, whenever it was made).
    pub fn counted(&self, m: &Machine) -> BTreeMap<Edge, u64> {
        let last = self.scrape_before(m.instance, self.to()).unwrap_or(f64::NEG_INFINITY);
        let first = self.first_scrape_of(m.instance).unwrap_or(f64::INFINITY);
        let from = if m.created <= first { first.max(T0) } else { T0 };
        let mut out = BTreeMap::new();
        for mv in m.moves.iter().filter(|mv| mv.0 >= from && mv.0 <= last) {
            *out.entry((mv.1, mv.2)).or_insert(0) += 1;
        }
        out
    }

    /// The state the exporter served at the last scrape in range.
    pub fn last_state(&self, m: &Machine) -> Option<&'static str> {
        let last = self.scrape_before(m.instance, self.to())?;
        (m.created <= last).then(|| m.state_at(last))
    }

    /// The frames of a range query over `T0 ..= to()` with the query's series.
    pub fn frames(&self, query: Query) -> Vec<Value> {
        type Key = (&'static str, Vec<(&'static str, String)>);
        let mut series: BTreeMap<Key, (Vec<f64>, Vec<Value>)> = BTreeMap::new();
        let mut push = |metric: &'static str, labels: Vec<(&'static str, String)>, q: f64, v: Value| {
            let entry = series.entry((metric, labels)).or_default();
            entry.0.push(q);
            entry.1.push(v);
        };
        for step in 0..=self.steps {
            let q = T0 + step as f64 * STEP;
            for m in &self.machines {
                let Some(s) = self.scrape_before(m.instance, q) else {
                    continue;
                };
                if m.created > s {
                    continue;
                }
                let labels = m.labels_at(s);
                let state = m.state_at(s);
                for st in BREAKER {
                    let mut l = labels.clone();
                    l.push(("state", st.to_owned()));
                    push("statescope_state", l, q, json!(u8::from(st == state)));
                }
                for ((from, to), n, created) in m.counters_at(s) {
                    let mut l = labels.clone();
                    l.push(("from", from.to_owned()));
                    l.push(("to", to.to_owned()));
                    let created = match query.created {
                        Created::No => None,
                        Created::Machine => Some(m.created),
                        Created::Counter => Some(created),
                    };
                    if let Some(created) = created {
                        push("statescope_transitions_created", l.clone(), q, json!(created / 1000.0));
                    }
                    push("statescope_transitions_total", l, q, json!(n));
                }
                if query.since {
                    push(
                        "statescope_state_since_timestamp_seconds",
                        labels.clone(),
                        q,
                        json!(m.since_at(s) / 1000.0),
                    );
                }
            }
        }
        series
            .into_iter()
            .map(|((metric, mut labels), (times, values))| {
                labels.push(("__name__", metric.to_owned()));
                labels.sort();
                let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let ref_id = match metric {
                    "statescope_state" => "A",
                    "statescope_transitions_total" => "B",
                    _ => "C",
                };
                prom_frame(ref_id, &labels, &times, values)
            })
            .collect()
    }
}

/// A scrape schedule for a target scraped since long before the range.
pub fn scraped_all_along(instance: &'static str) -> (&'static str, f64) {
    (instance, T0 - 3_600_000.0 + SCRAPE_OFFSET)
}

/// A scrape schedule whose first scrape is at `after` ms into the range.
pub fn first_scraped_at(instance: &'static str, after: f64) -> (&'static str, f64) {
    (instance, T0 + after + SCRAPE_OFFSET)
}

/// xorshift64*: a fixed, dependency-free random sequence per seed.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)`.
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.between(0.0, 1.0) < p
    }
}

/// A breaker's moves from `start` to `end`, in `state` at `start`: mostly the normal flow, with
/// dwell times from a fraction of a second (flaps between two scrapes) to
/// a minute, and now and then an operator's manual move (`close()` on an
/// open breaker, `half_open()` on a closed one), which the normal flow has
/// no counter for until it happens.
pub fn random_moves(
    rng: &mut Xorshift,
    mut state: &'static str,
    start: f64,
    end: f64,
) -> Vec<(f64, &'static str, &'static str)> {
    let mut moves = Vec::new();
    let mut t = start;
    loop {
        t += if rng.chance(0.5) {
            rng.between(100.0, 5_000.0)
        } else {
            rng.between(5_000.0, 60_000.0)
        };
        if t >= end {
            return moves;
        }
        let to = match state {
            "closed" if rng.chance(0.1) => "half_open",
            "closed" => "open",
            "open" if rng.chance(0.1) => "closed",
            "open" => "half_open",
            _ if rng.chance(0.5) => "closed",
            _ => "open",
        };
        moves.push((t, state, to));
        state = to;
    }
}
