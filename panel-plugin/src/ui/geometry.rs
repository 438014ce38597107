//! Pixel geometry of a state diagram's edges: path, width and label place.
//! (Nodes are placed by [`crate::layout::place`].)

/// A rectangle in CSS pixels.
pub use crate::layout::Rect as Area;

/// Stroke width of an edge taken `taken` times when the busiest edge of the
/// diagram was taken `max_taken` times: 1.5 px untaken, up to 8 px, by square
/// root so one very busy edge does not flatten the rest.
pub fn edge_width(taken: u64, max_taken: u64) -> f64 {
    if taken == 0 || max_taken == 0 {
        return 1.5;
    }
    2.5 + 5.5 * (taken as f64 / max_taken as f64).sqrt()
}

/// An edge's SVG path and where its count label goes.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeShape {
    pub d: String,
    pub label: (f64, f64),
}

/// The edge from node `a` to node `b` (centres, both of radius `r`), ending
/// `gap` pixels outside `b` so the arrowhead stays visible. When the reverse
/// edge also exists (`curved`), both bend, each to its own side, so the two
/// do not draw over each other.
pub fn edge(a: (f64, f64), b: (f64, f64), r: f64, gap: f64, curved: bool) -> EdgeShape {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = dx.hypot(dy).max(1e-6);
    // Unit normal, to the right of the direction a -> b.
    let (nx, ny) = (-dy / len, dx / len);
    let bend = if curved { (len * 0.18).min(40.0) } else { 0.0 };
    let mid = ((a.0 + b.0) / 2.0 + nx * bend, (a.1 + b.1) / 2.0 + ny * bend);
    // Trim both ends along the direction toward the control point.
    let toward = |from: (f64, f64), to: (f64, f64), by: f64| {
        let (vx, vy) = (to.0 - from.0, to.1 - from.1);
        let l = vx.hypot(vy).max(1e-6);
        (from.0 + vx / l * by, from.1 + vy / l * by)
    };
    let start = toward(a, mid, r);
    let end = toward(b, mid, r + gap);
    let d = if curved {
        format!(
            "M{:.1} {:.1}Q{:.1} {:.1} {:.1} {:.1}",
            start.0, start.1, mid.0, mid.1, end.0, end.1
        )
    } else {
        format!("M{:.1} {:.1}L{:.1} {:.1}", start.0, start.1, end.0, end.1)
    };
    // The quadratic curve passes through the midpoint of its control polygon's
    // midpoints: halfway to `mid`.
    let label = if curved {
        (
            (start.0 + end.0) / 4.0 + mid.0 / 2.0 + nx * 8.0,
            (start.1 + end.1) / 4.0 + mid.1 / 2.0 + ny * 8.0,
        )
    } else {
        (mid.0 + nx * 9.0, mid.1 + ny * 9.0)
    };
    EdgeShape { d, label }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busier_edges_are_wider() {
        assert_eq!(edge_width(0, 10), 1.5);
        assert_eq!(edge_width(0, 0), 1.5);
        assert!(edge_width(1, 100) > edge_width(0, 100));
        assert!(edge_width(50, 100) < edge_width(100, 100));
        assert_eq!(edge_width(100, 100), 8.0);
    }

    #[test]
    fn edges_end_outside_the_nodes() {
        let e = edge((0.0, 0.0), (100.0, 0.0), 10.0, 4.0, false);
        assert_eq!(e.d, "M10.0 0.0L86.0 0.0");
        // The label sits beside the line, not on it.
        assert_eq!(e.label, (50.0, 9.0));
    }

    #[test]
    fn reverse_edges_bend_to_opposite_sides() {
        let ab = edge((0.0, 0.0), (100.0, 0.0), 10.0, 4.0, true);
        let ba = edge((100.0, 0.0), (0.0, 0.0), 10.0, 4.0, true);
        assert!(ab.d.contains('Q') && ba.d.contains('Q'));
        assert!(ab.label.1 > 0.0 && ba.label.1 < 0.0, "{:?} {:?}", ab.label, ba.label);
    }
}
