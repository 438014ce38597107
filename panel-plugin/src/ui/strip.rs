//! A machine's history strip as SVG paths: ONE `<path>` per state, made of a
//! rectangle per segment, instead of one `<rect>` per segment. A flapping
//! machine has hundreds of segments; a few hundred tiles of rects made the
//! first render take about a second.

use crate::view::Segment;

/// Width of the strip's SVG `viewBox`; the SVG is stretched to the tile width
/// (`preserveAspectRatio="none"`), and the height is 1.
pub const STRIP_UNITS: f64 = 1000.0;

/// Path data per state index, in order of first appearance. Gaps (no sample)
/// draw nothing so the tile background shows through.
pub fn paths(history: &[Segment], from_ms: f64, to_ms: f64) -> Vec<(usize, String)> {
    let span = to_ms - from_ms;
    let mut out: Vec<(usize, String)> = Vec::new();
    // Also refuses NaN spans.
    if span.is_nan() || span <= 0.0 {
        return out;
    }
    let x = |t: f64| ((t - from_ms) / span * STRIP_UNITS).clamp(0.0, STRIP_UNITS);
    for seg in history {
        let Some(state) = seg.state_index else { continue };
        let (x0, x1) = (x(seg.start_ms), x(seg.end_ms));
        if x1 <= x0 {
            continue;
        }
        let d = match out.iter_mut().find(|(s, _)| *s == state) {
            Some((_, d)) => d,
            None => {
                out.push((state, String::new()));
                &mut out.last_mut().expect("just pushed").1
            }
        };
        // Two decimals of a 1000-unit strip are far below a pixel.
        d.push_str(&format!("M{} 0h{}v1H{}z", round2(x0), round2(x1 - x0), round2(x0)));
    }
    out
}

/// The segment covering time `t`, if any (segments are ordered and touching).
pub fn segment_at(history: &[Segment], t: f64) -> Option<&Segment> {
    let i = history.partition_point(|s| s.end_ms <= t);
    history.get(i).filter(|s| s.start_ms <= t)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: f64, end_ms: f64, state_index: Option<usize>) -> Segment {
        Segment {
            start_ms,
            end_ms,
            state_index,
        }
    }

    #[test]
    fn one_path_per_state_with_a_rectangle_per_segment() {
        let history = [
            seg(0.0, 250.0, Some(0)),
            seg(250.0, 500.0, Some(1)),
            seg(500.0, 600.0, None),
            seg(600.0, 1000.0, Some(0)),
        ];
        let p = paths(&history, 0.0, 1000.0);
        assert_eq!(
            p,
            [
                (0, "M0 0h250v1H0zM600 0h400v1H600z".to_owned()),
                (1, "M250 0h250v1H250z".to_owned())
            ]
        );
    }

    #[test]
    fn segments_are_scaled_and_clipped_to_the_range() {
        let history = [seg(-500.0, 1500.0, Some(2)), seg(1500.0, 4000.0, Some(0))];
        // Range 1000..3000 ms: state 2 covers the first quarter, state 0 the rest.
        let p = paths(&history, 1000.0, 3000.0);
        assert_eq!(p[0], (2, "M0 0h250v1H0z".to_owned()));
        assert_eq!(p[1], (0, "M250 0h750v1H250z".to_owned()));
    }

    #[test]
    fn an_empty_range_draws_nothing() {
        assert!(paths(&[seg(0.0, 10.0, Some(0))], 5.0, 5.0).is_empty());
        assert!(paths(&[seg(0.0, 10.0, Some(0))], f64::NAN, 5.0).is_empty());
    }

    #[test]
    fn finds_the_segment_under_the_pointer() {
        let history = [seg(0.0, 10.0, Some(0)), seg(10.0, 20.0, Some(1))];
        assert_eq!(segment_at(&history, 0.0).unwrap().state_index, Some(0));
        assert_eq!(segment_at(&history, 10.0).unwrap().state_index, Some(1));
        assert_eq!(segment_at(&history, 19.9).unwrap().state_index, Some(1));
        assert!(segment_at(&history, 20.0).is_none());
        assert!(segment_at(&history, -1.0).is_none());
    }
}
