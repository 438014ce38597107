//! How the panel's area is shared between the header, the diagrams and the
//! machine grid. Computed from the size Grafana reports rather than measured
//! in the DOM, so the virtualised grid knows its viewport before it renders.

use crate::layout;
use crate::options::ViewMode;
use crate::ui::geometry::Area;
use crate::view::KindView;

/// Height of one line of header chips (and of the search box line).
pub const HEADER_LINE: f64 = 28.0;
/// Height of the warnings line, when there are warnings.
pub const WARNINGS_HEIGHT: f64 = 18.0;
/// Gap between the diagram and machine panes.
pub const PANE_GAP: f64 = 8.0;
/// Width kept for the grid's vertical scrollbar (`scrollbar-gutter: stable`).
pub const SCROLLBAR: f64 = 12.0;
/// From this width on, "both" puts the diagram left of the grid, else above.
pub const SIDE_BY_SIDE_MIN_WIDTH: f64 = 720.0;
/// Stacked above the tiles, the diagram only shows in a body at least this
/// tall; below it would leave a strip too thin to read and under two rows of
/// tiles, so the header's chips carry the counts instead.
pub const STACKED_MIN_BODY: f64 = 420.0;
/// Space above each diagram for its kind's name.
pub const KIND_TITLE: f64 = 14.0;

/// Where the diagram and the machine grid go, in panel pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Panes {
    pub diagram: Option<Area>,
    pub machines: Option<Area>,
    /// Diagram left of the grid (else above it).
    pub side_by_side: bool,
    /// The diagram was asked for but the pane is too small to draw it without
    /// overlaps: the header's chips carry the counts instead.
    pub chips_only: bool,
}

/// Shares the panel below a header `top` pixels tall. `diagram_fits` says
/// whether a diagram pane of some size can be drawn; when not, the machines
/// get the space and the header's chips stand in for the diagram.
pub fn split(mode: ViewMode, width: f64, height: f64, top: f64, diagram_fits: impl Fn(Area) -> bool) -> Panes {
    let (width, height) = (finite(width), finite(height));
    let body = Area {
        x: 0.0,
        y: top,
        w: width,
        h: (height - top).max(0.0),
    };
    let chips_only = |machines: Option<Area>| Panes {
        diagram: None,
        machines,
        side_by_side: false,
        chips_only: true,
    };
    match mode {
        ViewMode::Diagram if !diagram_fits(body) => chips_only(None),
        ViewMode::Diagram => Panes {
            diagram: Some(body),
            machines: None,
            side_by_side: false,
            chips_only: false,
        },
        ViewMode::Machines => Panes {
            diagram: None,
            machines: Some(body),
            side_by_side: false,
            chips_only: false,
        },
        ViewMode::Both => {
            let side_by_side = width >= SIDE_BY_SIDE_MIN_WIDTH;
            let (diagram, machines) = if side_by_side {
                // A few numbers: a narrow column is enough, the tiles need the width.
                let dw = (width * 0.3).clamp(240.0, 420.0);
                (
                    Area { w: dw, ..body },
                    Area {
                        x: dw + PANE_GAP,
                        w: (width - dw - PANE_GAP).max(0.0),
                        ..body
                    },
                )
            } else {
                let dh = (body.h * 0.45).clamp(120.0, 320.0).min(body.h);
                (
                    Area { h: dh, ..body },
                    Area {
                        y: body.y + dh + PANE_GAP,
                        h: (body.h - dh - PANE_GAP).max(0.0),
                        ..body
                    },
                )
            };
            if (side_by_side || body.h >= STACKED_MIN_BODY) && diagram_fits(diagram) {
                Panes {
                    diagram: Some(diagram),
                    machines: Some(machines),
                    side_by_side,
                    chips_only: false,
                }
            } else {
                chips_only(Some(body))
            }
        }
    }
}

/// The area a kind's nodes get inside its part of the diagram pane (below
/// its name), in the part's own coordinates.
pub fn kind_area(part: Area) -> Area {
    Area {
        x: 0.0,
        y: KIND_TITLE,
        w: part.w,
        h: (part.h - KIND_TITLE).max(0.0),
    }
}

/// A kind's diagram in its part of the pane (coordinates inside the part).
pub fn place_kind(kind: &KindView, part: Area) -> Option<layout::Placed> {
    let names: Vec<&str> = kind.nodes.iter().map(|n| n.state.as_str()).collect();
    let counts: Vec<usize> = kind.nodes.iter().map(|n| n.count_now).collect();
    layout::place(&kind.grid, &names, &counts, &band_text(kind), kind_area(part))
}

/// What the line above a kind's manual band says: how often machines were
/// moved there by hand in the time range.
pub fn band_text(kind: &KindView) -> String {
    let moved: u64 = kind
        .edges
        .iter()
        .filter(|e| kind.nodes.get(e.to).is_some_and(|n| n.manual))
        .map(|e| e.taken_in_range)
        .sum();
    format!("set by hand, from any state: {moved}×")
}

/// Whether every kind's diagram can be drawn in `area` without overlaps.
pub fn diagram_fits(kinds: &[KindView], area: Area) -> bool {
    !kinds.is_empty()
        && per_kind(area, kinds.len())
            .iter()
            .zip(kinds)
            .all(|(part, kind)| place_kind(kind, *part).is_some())
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

    const TOP: f64 = 34.0;
    fn always(_: Area) -> bool {
        true
    }

    #[test]
    fn single_views_take_the_whole_body() {
        let p = split(ViewMode::Machines, 800.0, 400.0, TOP, always);
        assert!(p.diagram.is_none());
        assert_eq!(p.machines.unwrap().h, 400.0 - TOP);
        let p = split(ViewMode::Diagram, 800.0, 400.0, TOP + WARNINGS_HEIGHT, always);
        assert!(p.machines.is_none());
        assert_eq!(p.diagram.unwrap().h, 400.0 - TOP - WARNINGS_HEIGHT);
    }

    #[test]
    fn both_views_sit_side_by_side_when_wide_and_stacked_when_narrow() {
        let wide = split(ViewMode::Both, 1200.0, 500.0, TOP, always);
        assert!(wide.side_by_side);
        let (d, m) = (wide.diagram.unwrap(), wide.machines.unwrap());
        assert_eq!(d.x + d.w + PANE_GAP, m.x);
        assert_eq!(m.x + m.w, 1200.0);
        assert_eq!(d.h, m.h);
        assert!(d.w <= 0.3 * 1200.0, "the diagram leaves the width to the tiles");

        let narrow = split(ViewMode::Both, 500.0, 600.0, TOP, always);
        assert!(
            split(ViewMode::Both, 600.0, 400.0, TOP, always).chips_only,
            "600x400: chips, not a thin strip"
        );
        assert!(!narrow.side_by_side);
        let (d, m) = (narrow.diagram.unwrap(), narrow.machines.unwrap());
        assert_eq!(d.w, 500.0);
        assert_eq!(d.y + d.h + PANE_GAP, m.y);
        assert_eq!(m.y + m.h, 600.0);
    }

    #[test]
    fn a_pane_too_small_for_the_diagram_gives_its_space_to_the_tiles() {
        let p = split(ViewMode::Both, 600.0, 400.0, TOP, |a| a.h >= 200.0);
        assert!(p.chips_only && p.diagram.is_none());
        assert_eq!(p.machines.unwrap().h, 400.0 - TOP);
        let p = split(ViewMode::Diagram, 600.0, 100.0, TOP, |a| a.h >= 200.0);
        assert!(p.chips_only && p.diagram.is_none() && p.machines.is_none());
    }

    #[test]
    fn a_tiny_panel_gets_no_negative_sizes() {
        for mode in [ViewMode::Both, ViewMode::Diagram, ViewMode::Machines] {
            let p = split(mode, 0.0, 10.0, TOP + WARNINGS_HEIGHT, always);
            for a in [p.diagram, p.machines].into_iter().flatten() {
                assert!(a.w >= 0.0 && a.h >= 0.0, "{mode:?}: {a:?}");
            }
        }
        let p = split(ViewMode::Both, f64::NAN, f64::INFINITY, TOP, always);
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
