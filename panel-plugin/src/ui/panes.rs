//! How the panel's area is shared between the header, the diagrams and the
//! machine grid. Computed from the size Grafana reports rather than measured
//! in the DOM, so the virtualised grid knows its viewport before it renders.

use crate::options::ViewMode;
use crate::ui::geometry::Area;

/// Height of the header line (totals, search, filter).
pub const HEADER_HEIGHT: f64 = 34.0;
/// Height of the warnings line, when there are warnings.
pub const WARNINGS_HEIGHT: f64 = 18.0;
/// Gap between the diagram and machine panes.
pub const PANE_GAP: f64 = 8.0;
/// Width kept for the grid's vertical scrollbar (`scrollbar-gutter: stable`).
pub const SCROLLBAR: f64 = 12.0;
/// From this width on, "both" puts the diagram left of the grid, else above.
pub const SIDE_BY_SIDE_MIN_WIDTH: f64 = 720.0;

/// Where the diagram and the machine grid go, in panel pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Panes {
    pub diagram: Option<Area>,
    pub machines: Option<Area>,
    /// Diagram left of the grid (else above it).
    pub side_by_side: bool,
}

pub fn split(mode: ViewMode, width: f64, height: f64, warnings: bool) -> Panes {
    let (width, height) = (finite(width), finite(height));
    let top = HEADER_HEIGHT + if warnings { WARNINGS_HEIGHT } else { 0.0 };
    let body = Area {
        x: 0.0,
        y: top,
        w: width,
        h: (height - top).max(0.0),
    };
    match mode {
        ViewMode::Diagram => Panes {
            diagram: Some(body),
            machines: None,
            side_by_side: false,
        },
        ViewMode::Machines => Panes {
            diagram: None,
            machines: Some(body),
            side_by_side: false,
        },
        ViewMode::Both if width >= SIDE_BY_SIDE_MIN_WIDTH => {
            let dw = (width * 0.38).clamp(260.0, 520.0);
            Panes {
                diagram: Some(Area { w: dw, ..body }),
                machines: Some(Area {
                    x: dw + PANE_GAP,
                    w: (width - dw - PANE_GAP).max(0.0),
                    ..body
                }),
                side_by_side: true,
            }
        }
        ViewMode::Both => {
            let dh = (body.h * 0.42).clamp(120.0, 320.0).min(body.h);
            Panes {
                diagram: Some(Area { h: dh, ..body }),
                machines: Some(Area {
                    y: body.y + dh + PANE_GAP,
                    h: (body.h - dh - PANE_GAP).max(0.0),
                    ..body
                }),
                side_by_side: false,
            }
        }
    }
}

/// Splits a diagram pane between `kinds` diagrams: side by side in a wide
/// pane, stacked in a tall one.
pub fn per_kind(area: Area, kinds: usize) -> Vec<Area> {
    let n = kinds.max(1) as f64;
    let stack = area.h > area.w;
    (0..kinds)
        .map(|i| {
            let i = i as f64;
            if stack {
                let h = (area.h - PANE_GAP * (n - 1.0)) / n;
                Area {
                    y: area.y + i * (h + PANE_GAP),
                    h: h.max(0.0),
                    ..area
                }
            } else {
                let w = (area.w - PANE_GAP * (n - 1.0)) / n;
                Area {
                    x: area.x + i * (w + PANE_GAP),
                    w: w.max(0.0),
                    ..area
                }
            }
        })
        .collect()
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_views_take_the_whole_body() {
        let p = split(ViewMode::Machines, 800.0, 400.0, false);
        assert!(p.diagram.is_none());
        assert_eq!(p.machines.unwrap().h, 400.0 - HEADER_HEIGHT);
        let p = split(ViewMode::Diagram, 800.0, 400.0, true);
        assert!(p.machines.is_none());
        assert_eq!(p.diagram.unwrap().h, 400.0 - HEADER_HEIGHT - WARNINGS_HEIGHT);
    }

    #[test]
    fn both_views_sit_side_by_side_when_wide_and_stacked_when_narrow() {
        let wide = split(ViewMode::Both, 1200.0, 500.0, false);
        assert!(wide.side_by_side);
        let (d, m) = (wide.diagram.unwrap(), wide.machines.unwrap());
        assert_eq!(d.x + d.w + PANE_GAP, m.x);
        assert_eq!(m.x + m.w, 1200.0);
        assert_eq!(d.h, m.h);

        let narrow = split(ViewMode::Both, 500.0, 600.0, false);
        assert!(!narrow.side_by_side);
        let (d, m) = (narrow.diagram.unwrap(), narrow.machines.unwrap());
        assert_eq!(d.w, 500.0);
        assert_eq!(d.y + d.h + PANE_GAP, m.y);
        assert_eq!(m.y + m.h, 600.0);
    }

    #[test]
    fn a_tiny_panel_gets_no_negative_sizes() {
        for mode in [ViewMode::Both, ViewMode::Diagram, ViewMode::Machines] {
            let p = split(mode, 0.0, 10.0, true);
            for a in [p.diagram, p.machines].into_iter().flatten() {
                assert!(a.w >= 0.0 && a.h >= 0.0, "{mode:?}: {a:?}");
            }
        }
        let p = split(ViewMode::Both, f64::NAN, f64::INFINITY, false);
        assert!(p.machines.unwrap().h >= 0.0);
    }

    #[test]
    fn kinds_share_the_diagram_pane() {
        let wide = Area {
            x: 0.0,
            y: 34.0,
            w: 808.0,
            h: 300.0,
        };
        let parts = per_kind(wide, 2);
        assert_eq!(parts[0].w, 400.0);
        assert_eq!(parts[1].x, 408.0);
        let tall = Area {
            w: 300.0,
            h: 808.0,
            ..wide
        };
        let parts = per_kind(tall, 2);
        assert_eq!(parts[1].y, 34.0 + 408.0);
        assert!(per_kind(wide, 0).is_empty());
    }
}
