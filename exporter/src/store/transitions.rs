//! The transitions a machine took, counted by `(from, to)`.

use smallvec::SmallVec;
use statescope_model::StateId;

/// A `(from, to)` pair of states.
pub type Pair = (StateId, StateId);

/// Pairs a machine stores in itself before its counts move to the heap: a
/// breaker's normal flow is four pairs, a worker's about as many.
const INLINE: usize = 4;

/// Transitions taken, by `(from, to)`, in that order; only pairs taken at
/// least once.
///
/// Kept in the machine itself, sorted, rather than in a B-tree: a tree of
/// even one pair is a heap node of ~140 bytes elsewhere in memory, which a
/// scrape reads for every machine (at 10k machines, the largest wait of the
/// walk that copies the store for `/metrics`). Four pairs fit in 72 bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transitions(SmallVec<[(Pair, u64); INLINE]>);

impl Transitions {
    /// Counts one more `pair`.
    pub fn count(&mut self, pair: Pair) {
        *self.slot(pair) += 1;
    }

    /// Sets `pair`'s count (as a snapshot read back had it).
    pub fn set(&mut self, pair: Pair, n: u64) {
        *self.slot(pair) = n;
    }

    /// `pair`'s count, inserted in order at 0 if it was never taken.
    fn slot(&mut self, pair: Pair) -> &mut u64 {
        let at = self.0.binary_search_by_key(&pair, |&(p, _)| p).unwrap_or_else(|at| {
            self.0.insert(at, (pair, 0));
            at
        });
        &mut self.0[at].1
    }

    /// How often `pair` was taken.
    pub fn get(&self, pair: Pair) -> u64 {
        self.0
            .binary_search_by_key(&pair, |&(p, _)| p)
            .map_or(0, |at| self.0[at].1)
    }

    /// Every pair taken and its count, by source then target.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Pair, u64)> + '_ {
        self.0.iter().copied()
    }

    /// Where the counts lie when not in the machine itself (for a prefetch).
    pub fn heap(&self) -> Option<*const u8> {
        self.0.spilled().then(|| self.0.as_ptr().cast())
    }

    /// How many pairs were taken.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Transitions taken in all.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use statescope_model::builtin;

    use super::*;

    proptest! {
        /// The counts are those a map of pairs would hold, in its order,
        /// whether they fit in the machine or not.
        #[test]
        fn counts_as_a_map_of_pairs_would(taken in prop::collection::vec((0usize..6, 0usize..6), 0..40)) {
            let kind = builtin::circuit_breaker();
            let ids: Vec<StateId> = kind.state_ids().collect();
            let mut transitions = Transitions::default();
            let mut map = BTreeMap::new();
            for (from, to) in taken {
                let pair = (ids[from % ids.len()], ids[to % ids.len()]);
                transitions.count(pair);
                *map.entry(pair).or_insert(0u64) += 1;
            }
            prop_assert_eq!(transitions.iter().collect::<Vec<_>>(), map.iter().map(|(&p, &n)| (p, n)).collect::<Vec<_>>());
            prop_assert_eq!(transitions.total(), map.values().sum::<u64>());
            prop_assert_eq!(transitions.heap().is_some(), map.len() > INLINE);
            for (&pair, &n) in &map {
                prop_assert_eq!(transitions.get(pair), n);
            }
        }
    }

    #[test]
    fn a_count_read_back_replaces_the_one_held() {
        let kind = builtin::circuit_breaker();
        let ids: Vec<StateId> = kind.state_ids().collect();
        let mut transitions = Transitions::default();
        transitions.count((ids[0], ids[1]));
        transitions.set((ids[0], ids[1]), 7);
        transitions.set((ids[1], ids[0]), 2);
        assert_eq!(
            transitions.iter().collect::<Vec<_>>(),
            [((ids[0], ids[1]), 7), ((ids[1], ids[0]), 2)]
        );
        assert_eq!(transitions.get((ids[2], ids[0])), 0);
    }
}
