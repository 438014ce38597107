//! Medians and percentiles of measured samples.

use std::time::Duration;

/// Summary of a set of durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub count: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Latency> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Some(Latency {
            count: ms.len(),
            min_ms: *ms.first()?,
            p50_ms: percentile(&ms, 0.50)?,
            p99_ms: percentile(&ms, 0.99)?,
            max_ms: *ms.last()?,
        })
    }
}

/// Nearest-rank percentile of sorted samples (`q` in 0..=1): the smallest
/// sample with at least `q` of all samples at or below it.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median of unsorted samples.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn latency_summary_in_milliseconds() {
        let d: Vec<_> = [5, 1, 3].into_iter().map(Duration::from_millis).collect();
        let l = Latency::of(&d).unwrap();
        assert_eq!((l.count, l.min_ms, l.p50_ms, l.max_ms), (3, 1.0, 3.0, 5.0));
        assert!(Latency::of(&[]).is_none());
    }
}
