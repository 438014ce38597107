//! What the tile (or dense cell) at a place in the grid shows, as plain data
//! computed from the view. The grid keeps a place's DOM across refreshes and
//! compares these values, so only what changed is written: a place whose
//! machine kept its state costs no DOM work at all.

use crate::ui::format;
use crate::ui::grid::Grid;
use crate::ui::strip;
use crate::ui::{safe_color, safe_href};
use crate::view::{CountSource, LinkView, PanelView, Since};

/// A dense cell: a square in the state's colour.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub style: String,
    pub class: &'static str,
    pub label: String,
}

/// A full tile: id, state, time in state, transitions, links, history strip.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    pub id: String,
    pub style: String,
    pub class: &'static str,
    pub state: String,
    pub since: Option<Since>,
    pub flapping: bool,
    pub transitions: String,
    pub transitions_title: String,
    /// Only links that may become an `href`.
    pub links: Vec<LinkView>,
    pub strip: Vec<StripPath>,
    /// The time range the strip spans, epoch ms.
    pub range: (f64, f64),
}

/// The history strip's path for one state.
#[derive(Clone, Debug, PartialEq)]
pub struct StripPath {
    pub state: usize,
    pub color: String,
    pub d: String,
}

/// Position, size and state colours of tile `index`.
fn style(view: &PanelView, index: usize, grid: &Grid) -> String {
    let m = &view.machines[index];
    let node = m
        .state_index
        .and_then(|i| view.kinds.get(m.kind_index).and_then(|k| k.nodes.get(i)));
    let (x, y) = grid.position(index);
    format!(
        "left:{x}px;top:{y}px;width:{}px;height:{}px;--ss-state:{};--ss-state-text:{}",
        grid.tile_width,
        grid.tile_height,
        safe_color(&m.color),
        node.map_or("var(--ss-text)", |n| safe_color(&n.text_color)),
    )
}

pub fn cell(view: &PanelView, index: usize, grid: &Grid) -> Option<Cell> {
    let m = view.machines.get(index)?;
    Some(Cell {
        style: style(view, index, grid),
        class: if m.flapping { "ss-cell ss-flapping" } else { "ss-cell" },
        label: format!("{}: {}", m.id, m.state.as_deref().unwrap_or("unknown")),
    })
}

pub fn tile(view: &PanelView, index: usize, grid: &Grid) -> Option<Tile> {
    let m = view.machines.get(index)?;
    let kind = view.kinds.get(m.kind_index);
    let (from, to) = (view.time_range.from, view.time_range.to);
    let strip = strip::paths(&m.history, from, to)
        .into_iter()
        .map(|(state, d)| StripPath {
            state,
            color: kind
                .and_then(|k| k.nodes.get(state))
                .map_or("var(--ss-text-weak)", |n| safe_color(&n.color))
                .to_owned(),
            d,
        })
        .collect();
    Some(Tile {
        id: m.id.clone(),
        style: style(view, index, grid),
        class: if m.flapping { "ss-tile ss-flapping" } else { "ss-tile" },
        state: m.state.clone().unwrap_or_else(|| "unknown".to_owned()),
        since: m.since,
        flapping: m.flapping,
        transitions: format!("↻ {}", format::count(m.transitions_in_range)),
        transitions_title: format!(
            "{} transition{} in the time range ({})",
            m.transitions_in_range,
            if m.transitions_in_range == 1 { "" } else { "s" },
            match m.transitions_source {
                CountSource::Counter => "counted by the exporter",
                CountSource::Samples => "seen between samples; flaps between samples are missed",
            }
        ),
        links: m.links.iter().filter(|l| safe_href(&l.url)).cloned().collect(),
        strip,
        range: (from, to),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::TimeRange;
    use crate::view::{KindView, MachineView, NodeView, Segment};

    fn machine(id: &str, state: usize) -> MachineView {
        MachineView {
            id: id.into(),
            state_index: Some(state),
            state: Some(["closed", "open"][state].into()),
            color: ["#0a0", "#f00"][state].into(),
            history: vec![Segment {
                start_ms: 0.0,
                end_ms: 1000.0,
                state_index: Some(state),
            }],
            ..MachineView::default()
        }
    }

    fn view(machines: Vec<MachineView>) -> PanelView {
        let node = |state: &str, color: &str| NodeView {
            state: state.into(),
            color: color.into(),
            text_color: color.into(),
            ..NodeView::default()
        };
        PanelView {
            kinds: vec![KindView {
                nodes: vec![node("closed", "#0a0"), node("open", "#f00")],
                ..KindView::default()
            }],
            machines,
            time_range: TimeRange { from: 0.0, to: 1000.0 },
            ..PanelView::default()
        }
    }

    #[test]
    fn a_machine_that_kept_its_state_and_place_shows_the_same() {
        let grid = Grid::new(1000.0);
        let before = view(vec![machine("a", 0), machine("b", 0)]);
        let after = view(vec![machine("a", 1), machine("b", 0)]);
        assert_eq!(tile(&before, 1, &grid), tile(&after, 1, &grid));
        assert_eq!(cell(&before, 1, &grid), cell(&after, 1, &grid));
        assert_ne!(tile(&before, 0, &grid), tile(&after, 0, &grid));
        assert_eq!(cell(&after, 0, &grid).unwrap().label, "a: open");
    }

    #[test]
    fn a_run_of_tiles_in_one_state_shows_the_same_after_a_shift() {
        // "c" went from closed to open and leads the grid now (worst first):
        // the cells after it shifted by one, but each place still shows a
        // closed machine in the same colour; only its label names another.
        let grid = Grid::dense(1000.0);
        let before = view(vec![machine("a", 0), machine("b", 0), machine("c", 0)]);
        let after = view(vec![machine("c", 1), machine("a", 0), machine("b", 0)]);
        let (was, now) = (cell(&before, 1, &grid).unwrap(), cell(&after, 1, &grid).unwrap());
        assert_eq!((was.style, was.class), (now.style, now.class));
        assert_eq!((was.label.as_str(), now.label.as_str()), ("b: closed", "a: closed"));
        assert_ne!(cell(&before, 0, &grid), cell(&after, 0, &grid));
    }

    #[test]
    fn links_that_could_run_script_are_left_out() {
        let mut m = machine("a", 0);
        m.links = vec![
            LinkView {
                title: "runbook".into(),
                url: "https://runbooks.example/a".into(),
                target_blank: false,
            },
            LinkView {
                title: "bad".into(),
                url: "javascript:alert(1)".into(),
                target_blank: false,
            },
        ];
        let t = tile(&view(vec![m]), 0, &Grid::new(1000.0)).unwrap();
        assert_eq!(t.links.len(), 1);
        assert_eq!(t.strip[0].color, "#0a0");
        assert_eq!(t.transitions, "↻ 0");
    }
}
