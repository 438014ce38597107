//! The benchmark fleet: `n` circuit breakers named `p<i % 50>/key-<i>`, and the
//! events that seed them and then keep them busy.
//!
//! Everything is a pure function of the machine index, so the exporter and the
//! Python baseline (bench/python/baseline.py, `seed_events`, kept in step by
//! hand) end with the same machines in the same states and the same series.

use std::fmt::Write as _;

use statescope_model::contract::CallOutcome::{Failure, Success, Timeout};

/// Providers the fleet's breakers are spread over.
const PROVIDERS: usize = 50;

/// The cycle a busy breaker runs through; each transition is allowed by the
/// built-in `circuit_breaker` kind, and four steps bring it back to the start.
/// It begins with `forced_open`, which any state may go to: a stream does not
/// know where an earlier one (the previous ingest round, another process)
/// left a machine, and an exporter refuses a whole batch over one illegal
/// transition.
pub const CYCLE: [&str; 4] = ["forced_open", "closed", "open", "half_open"];

/// Machine `i`'s name, provider and key id.
pub fn machine(i: usize) -> (String, String, String) {
    let provider = format!("p{}", i % PROVIDERS);
    let key = format!("key-{i}");
    (format!("{provider}/{key}"), provider, key)
}

/// Events that create machine `i` with its identity labels: every machine
/// trips open and records one successful call; odd machines then go half-open,
/// so both one-hot positions and several transition counters show up.
pub fn seed_events(i: usize, out: &mut String) -> usize {
    let (name, provider, key) = machine(i);
    push_event(
        out,
        format_args!(
            r#"{{"type":"transition","kind":"circuit_breaker","machine":"{name}","to":"open","labels":{{"provider":"{provider}","key_id":"{key}"}}}}"#
        ),
    );
    push_event(
        out,
        format_args!(r#"{{"type":"call","kind":"circuit_breaker","machine":"{name}","outcome":"success"}}"#),
    );
    if i % 2 == 1 {
        push_event(
            out,
            format_args!(r#"{{"type":"transition","kind":"circuit_breaker","machine":"{name}","to":"half_open"}}"#),
        );
        return 3;
    }
    2
}

/// JSON bodies `{"events":[...]}` for seeding machines `range`, at most
/// `batch` events each.
pub fn seed_bodies(range: std::ops::Range<usize>, batch: usize) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut body = String::new();
    let mut count = 0;
    for i in range {
        count += seed_events(i, &mut body);
        if count >= batch {
            bodies.push(wrap(&body));
            body.clear();
            count = 0;
        }
    }
    if count > 0 {
        bodies.push(wrap(&body));
    }
    bodies
}

fn wrap(events: &str) -> String {
    format!(r#"{{"events":[{events}]}}"#)
}

fn push_event(out: &mut String, event: std::fmt::Arguments<'_>) {
    if !out.is_empty() {
        out.push(',');
    }
    out.write_fmt(event).expect("writing to a String cannot fail");
}

/// The steady event stream one connection sends, over the machines it owns
/// (those with `i % connections == connection`), so that each machine's
/// transitions arrive in order and stay legal. Four events in five are call
/// outcomes, one in five a transition along [`CYCLE`].
pub struct Stream {
    machines: Vec<(String, usize)>,
    next: usize,
    step: u64,
}

impl Stream {
    /// The stream of `connection` (0-based) out of `connections`, over a fleet
    /// of `fleet` machines seeded with [`seed_events`].
    pub fn new(fleet: usize, connection: usize, connections: usize) -> Stream {
        let machines = (connection..fleet)
            .step_by(connections.max(1))
            // Whatever state a machine is in, its next transition is the cycle's first.
            .map(|i| (machine(i).0, CYCLE.len() - 1))
            .collect();
        Stream {
            machines,
            next: 0,
            step: 0,
        }
    }

    /// The next body of `batch` events; empty when the stream owns no machine.
    pub fn next_body(&mut self, batch: usize) -> String {
        let mut events = String::new();
        if self.machines.is_empty() {
            return events;
        }
        for _ in 0..batch {
            let (name, position) = &mut self.machines[self.next];
            if self.step % 5 == 4 {
                *position = (*position + 1) % CYCLE.len();
                let to = CYCLE[*position];
                push_event(
                    &mut events,
                    format_args!(r#"{{"type":"transition","kind":"circuit_breaker","machine":"{name}","to":"{to}"}}"#),
                );
            } else {
                let outcome = [Success, Success, Failure, Timeout][(self.step % 4) as usize].as_str();
                push_event(
                    &mut events,
                    format_args!(
                        r#"{{"type":"call","kind":"circuit_breaker","machine":"{name}","outcome":"{outcome}"}}"#
                    ),
                );
            }
            self.step += 1;
            self.next = (self.next + 1) % self.machines.len();
        }
        wrap(&events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn seed_bodies_cover_every_machine_once_in_valid_json() {
        let bodies = seed_bodies(0..25, 10);
        let mut transitions_to_open = Vec::new();
        let mut total = 0;
        for body in &bodies {
            let doc: Value = serde_json::from_str(body).expect("valid JSON");
            let events = doc["events"].as_array().unwrap();
            assert!(events.len() <= 12, "a batch holds at most batch + 2 events");
            total += events.len();
            for e in events {
                if e["to"] == "open" {
                    assert_eq!(
                        e["labels"]["key_id"],
                        e["machine"].as_str().unwrap().split('/').nth(1).unwrap()
                    );
                    transitions_to_open.push(e["machine"].as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(total, 25 * 2 + 12, "two events per machine, three for odd ones");
        let expected: Vec<_> = (0..25).map(|i| machine(i).0).collect();
        assert_eq!(transitions_to_open, expected);
    }

    #[test]
    fn stream_transitions_follow_the_breaker_graph_per_machine_across_rounds() {
        let kind = statescope_model::builtin::circuit_breaker();
        let fleet = 7;
        let mut state: Vec<_> = (0..fleet)
            .map(|i| if i % 2 == 1 { "half_open" } else { "open" })
            .collect();
        let mut seen = 0;
        // Rounds of different lengths leave machines at different points of the cycle;
        // each round is a fresh stream, as each ingest round is a new process.
        for rounds in [13, 20, 7] {
            for connection in 0..3 {
                let mut stream = Stream::new(fleet, connection, 3);
                for _ in 0..rounds {
                    let doc: Value = serde_json::from_str(&stream.next_body(9)).unwrap();
                    for e in doc["events"].as_array().unwrap() {
                        let name = e["machine"].as_str().unwrap();
                        let i: usize = name.rsplit('-').next().unwrap().parse().unwrap();
                        assert_eq!(i % 3, connection, "{name} belongs to another connection");
                        if e["type"] == "transition" {
                            let to = e["to"].as_str().unwrap();
                            let (a, b) = (kind.state_id(state[i]).unwrap(), kind.state_id(to).unwrap());
                            assert!(a == b || kind.is_allowed(a, b), "{name}: {} -> {to}", state[i]);
                            state[i] = CYCLE.iter().find(|s| **s == to).unwrap();
                            seen += 1;
                        }
                    }
                }
            }
        }
        assert!(seen > 50, "transitions are part of the stream ({seen})");
    }
}
