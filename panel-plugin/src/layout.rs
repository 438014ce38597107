//! Where a kind's states sit in its diagram: x, y in a unit box (y down).
//!
//! The built-in kinds have hand-placed layouts that read the way people talk
//! about them (a breaker trips left to right and recovers through half_open
//! below). Other kinds are laid out in layers by distance from the initial
//! state, so the diagram reads from left to right in the order machines
//! move. Both are deterministic: the same kind always looks the same.

use std::collections::VecDeque;

use statescope_model::builtin;

/// Hand-placed positions of the built-in kinds' states.
fn hand_placed(kind: &str, state: &str) -> Option<(f64, f64)> {
    let p = match (kind, state) {
        (builtin::CIRCUIT_BREAKER, "closed") => (0.15, 0.45),
        (builtin::CIRCUIT_BREAKER, "open") => (0.85, 0.45),
        (builtin::CIRCUIT_BREAKER, "half_open") => (0.5, 0.85),
        (builtin::CIRCUIT_BREAKER, "forced_open") => (0.65, 0.12),
        (builtin::CIRCUIT_BREAKER, "disabled") => (0.35, 0.12),
        (builtin::WORKER, "starting") => (0.1, 0.5),
        (builtin::WORKER, "idle") => (0.4, 0.3),
        (builtin::WORKER, "busy") => (0.75, 0.3),
        (builtin::WORKER, "draining") => (0.6, 0.75),
        (builtin::WORKER, "offline") => (0.9, 0.8),
        _ => return None,
    };
    Some(p)
}

/// Positions for `states` (in kind order) given the edges to draw (indices).
pub fn positions(kind: &str, states: &[&str], initial: usize, edges: &[(usize, usize)]) -> Vec<(f64, f64)> {
    let placed: Vec<Option<(f64, f64)>> = states.iter().map(|s| hand_placed(kind, s)).collect();
    if placed.iter().all(Option::is_some) {
        return placed.into_iter().flatten().collect();
    }
    if placed.iter().any(Option::is_some) {
        // A built-in kind with extra states from the data: keep the familiar
        // places, and line the extra states up along the bottom edge.
        let extra = placed.iter().filter(|p| p.is_none()).count();
        let mut k = 0;
        return placed
            .into_iter()
            .map(|p| {
                p.unwrap_or_else(|| {
                    k += 1;
                    (k as f64 / (extra + 1) as f64, 0.97)
                })
            })
            .collect();
    }
    layered(states.len(), initial, edges)
}

/// Layer = shortest distance from the initial state; states nothing reaches
/// go in a last layer. Within a layer, states keep kind order, spread evenly.
fn layered(n: usize, initial: usize, edges: &[(usize, usize)]) -> Vec<(f64, f64)> {
    if n == 0 {
        return Vec::new();
    }
    let mut layer = vec![usize::MAX; n];
    let mut queue = VecDeque::new();
    let start = initial.min(n - 1);
    layer[start] = 0;
    queue.push_back(start);
    while let Some(s) = queue.pop_front() {
        for &(from, to) in edges {
            if from == s && to < n && layer[to] == usize::MAX {
                layer[to] = layer[s] + 1;
                queue.push_back(to);
            }
        }
    }
    let reached_max = layer.iter().filter(|l| **l != usize::MAX).max().copied().unwrap_or(0);
    for l in layer.iter_mut().filter(|l| **l == usize::MAX) {
        *l = reached_max + 1;
    }
    let layers = layer.iter().max().copied().unwrap_or(0) + 1;
    let mut out = vec![(0.0, 0.0); n];
    for l in 0..layers {
        let members: Vec<usize> = (0..n).filter(|&s| layer[s] == l).collect();
        for (j, &s) in members.iter().enumerate() {
            let x = if layers == 1 {
                0.5
            } else {
                0.1 + 0.8 * l as f64 / (layers - 1) as f64
            };
            let y = (j + 1) as f64 / (members.len() + 1) as f64;
            out[s] = (x, y);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_reads_closed_left_open_right_half_open_below() {
        let states = ["closed", "open", "half_open", "forced_open", "disabled"];
        let p = positions(builtin::CIRCUIT_BREAKER, &states, 0, &[]);
        assert!(p[0].0 < p[1].0, "closed left of open");
        assert!(p[2].1 > p[0].1, "half_open below");
        let mut with_extra = states.to_vec();
        with_extra.push("metrics_only");
        let q = positions(builtin::CIRCUIT_BREAKER, &with_extra, 0, &[]);
        assert_eq!(&q[..5], &p[..]);
        assert!(q[5].1 > 0.9);
    }

    #[test]
    fn custom_kinds_are_layered_from_the_initial_state() {
        // queued -> running -> done, running -> failed, and an unreachable state.
        let p = positions(
            "payment_job",
            &["failed", "queued", "running", "done", "lost"],
            1,
            &[(1, 2), (2, 3), (2, 0)],
        );
        assert_eq!(p[1].0, 0.1, "initial state in the first layer");
        assert!(p[2].0 > p[1].0 && p[3].0 > p[2].0);
        assert_eq!(p[0].0, p[3].0, "failed and done are both two steps away");
        assert_ne!(p[0].1, p[3].1);
        assert!((p[4].0 - 0.9).abs() < 1e-9, "unreachable states go last");
        assert_eq!(
            p,
            positions(
                "payment_job",
                &["failed", "queued", "running", "done", "lost"],
                1,
                &[(1, 2), (2, 3), (2, 0)]
            )
        );
        for (x, y) in p {
            assert!((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y));
        }
    }
}
