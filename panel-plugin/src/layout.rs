//! Where a kind's states sit in its diagram.
//!
//! Two steps. [`grid`] gives every state its own cell in a small grid, from
//! the kind alone: the built-in kinds have hand-placed cells that read the way
//! people talk about them (a breaker trips left to right and recovers through
//! half_open below; the states an operator sets by hand sit apart in a band of
//! their own), other kinds are laid out in layers by distance from the initial
//! state. [`place`] turns the grid into pixels for a pane: a node and its name
//! stay inside their own cell, so no two nodes or names can overlap, and when
//! the pane is too small for that it says so (`None`) and the panel shows
//! chips instead of a diagram. Both are deterministic: the same kind in the
//! same pane always looks the same.

use std::collections::VecDeque;

use serde::Serialize;
use statescope_model::builtin;

/// A rectangle in CSS pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x - 1e-9
            && o.y >= self.y - 1e-9
            && o.right() <= self.right() + 1e-9
            && o.bottom() <= self.bottom() + 1e-9
    }
}

/// A state's cell: column and row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub col: usize,
    pub row: usize,
}

/// Cells of a kind's states, in kind order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Grid {
    pub cols: usize,
    pub rows: usize,
    pub cells: Vec<Cell>,
    /// First row of the band of states set by hand (a breaker's forced_open,
    /// disabled, metrics_only): reached "from any state", drawn apart.
    pub manual_row: Option<usize>,
}

/// States an operator sets by hand rather than the breaker reaching them by
/// itself (Resilience4j's `transitionToForcedOpenState`, `...DisabledState`,
/// `...MetricsOnlyState`; pybreaker's and Polly's isolate). They can be
/// entered from any state, so their edges are drawn as one, apart.
pub fn is_manual(kind: &str, state: &str) -> bool {
    use builtin::breaker_state::{DISABLED, FORCED_OPEN, METRICS_ONLY};
    kind == builtin::CIRCUIT_BREAKER && matches!(state, FORCED_OPEN | DISABLED | METRICS_ONLY)
}

/// Hand-placed cells of the built-in kinds' ordinary states.
fn hand_placed(kind: &str, state: &str) -> Option<Cell> {
    use builtin::{breaker_state, worker_state};
    let (col, row) = match (kind, state) {
        (builtin::CIRCUIT_BREAKER, breaker_state::CLOSED) => (0, 0),
        (builtin::CIRCUIT_BREAKER, breaker_state::OPEN) => (2, 0),
        (builtin::CIRCUIT_BREAKER, breaker_state::HALF_OPEN) => (1, 1),
        (builtin::WORKER, worker_state::STARTING) => (0, 0),
        (builtin::WORKER, worker_state::IDLE) => (1, 0),
        (builtin::WORKER, worker_state::BUSY) => (2, 0),
        (builtin::WORKER, worker_state::DRAINING) => (2, 1),
        (builtin::WORKER, worker_state::OFFLINE) => (1, 1),
        _ => return None,
    };
    Some(Cell { col, row })
}

/// Cells for `states` (in kind order) given the edges to draw (indices).
pub fn grid(kind: &str, states: &[&str], initial: usize, edges: &[(usize, usize)]) -> Grid {
    let placed: Vec<Option<Cell>> = states
        .iter()
        .map(|s| if is_manual(kind, s) { None } else { hand_placed(kind, s) })
        .collect();
    if !placed.iter().any(Option::is_some) {
        return layered(states.len(), initial, edges);
    }
    // A built-in kind: the familiar cells, then states from the data that the
    // kind does not name in rows below, then the manual band.
    let cols = 3usize.max(placed.iter().flatten().map(|c| c.col + 1).max().unwrap_or(0));
    let mut rows = placed.iter().flatten().map(|c| c.row + 1).max().unwrap_or(0);
    let mut cells: Vec<Cell> = placed.iter().map(|p| p.unwrap_or_default()).collect();
    let mut fill = |which: &dyn Fn(usize) -> bool, rows: &mut usize| {
        let members: Vec<usize> = (0..states.len()).filter(|&i| placed[i].is_none() && which(i)).collect();
        for (j, &i) in members.iter().enumerate() {
            cells[i] = Cell {
                col: j % cols,
                row: *rows + j / cols,
            };
        }
        *rows += members.len().div_ceil(cols);
        !members.is_empty()
    };
    fill(&|i| !is_manual(kind, states[i]), &mut rows);
    let band = rows;
    let manual_row = fill(&|i| is_manual(kind, states[i]), &mut rows).then_some(band);
    Grid {
        cols,
        rows,
        cells,
        manual_row,
    }
}

/// Layer = shortest distance from the initial state (the column); states
/// nothing reaches go in a last layer. Within a layer, states keep kind order
/// (the row).
fn layered(n: usize, initial: usize, edges: &[(usize, usize)]) -> Grid {
    if n == 0 {
        return Grid::default();
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
    let mut filled = vec![0; reached_max + 2];
    let cells: Vec<Cell> = layer
        .iter()
        .map(|&l| {
            filled[l] += 1;
            Cell {
                col: l,
                row: filled[l] - 1,
            }
        })
        .collect();
    Grid {
        cols: layer.iter().max().map_or(0, |l| l + 1),
        rows: filled.iter().copied().max().unwrap_or(0),
        cells,
        manual_row: None,
    }
}

/// Height of the state name line under a node.
pub const LABEL_HEIGHT: f64 = 13.0;
/// Widest an 11 px character of a state name is taken to be (DejaVu Sans and
/// Inter average well under it), so the estimated name box holds the real one.
pub const LABEL_CHAR_WIDTH: f64 = 7.0;
/// Same for a digit of the bold count inside a node, per px of font size.
pub const DIGIT_WIDTH_PER_PX: f64 = 0.66;
/// Space kept between a node or name and the edge of its cell.
pub const CELL_PAD: f64 = 4.0;
pub const MIN_RADIUS: f64 = 11.0;
pub const MAX_RADIUS: f64 = 34.0;
/// A name shows at least this many characters (then "…").
const MIN_LABEL_CHARS: usize = 4;
pub const MIN_CELL_WIDTH: f64 = 2.0 * CELL_PAD + (MIN_LABEL_CHARS as f64 + 1.0) * LABEL_CHAR_WIDTH;
pub const MIN_CELL_HEIGHT: f64 = 2.0 * CELL_PAD + 2.0 * MIN_RADIUS + 2.0 + LABEL_HEIGHT;
const COUNT_FONT: f64 = 13.0;
/// Smallest count font drawn; a node too small for its count at this size
/// means the pane is too small for the diagram.
pub const MIN_COUNT_FONT: f64 = 8.0;
/// Height of the line above the manual band that says how it is reached.
pub const BAND_LABEL_HEIGHT: f64 = 14.0;

/// A node in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedNode {
    pub cx: f64,
    pub cy: f64,
    /// The state name, cut to fit its cell ("…" at the end) when too long.
    pub label: String,
    /// Where the name is drawn (its estimated box, centred under the node).
    pub label_box: Rect,
    /// Font size of the count inside the node, so its digits fit the circle.
    pub count_font: f64,
}

/// A kind's diagram in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub radius: f64,
    pub nodes: Vec<PlacedNode>,
    /// Top of the manual band (a line is drawn there), when there is one.
    pub band_top: Option<f64>,
    /// The line saying how the band is reached, cut to fit, and its box.
    pub band_label: Option<(String, Rect)>,
    /// Left/right bounds of the grid actually used.
    pub grid: Rect,
}

/// Pixels for `grid` inside `area`, with `names` and the `counts` shown in
/// the nodes, and `band_text` above the manual band. `None` when a cell would
/// be smaller than a node and a short name need: the caller shows chips
/// instead.
pub fn place(grid: &Grid, names: &[&str], counts: &[usize], band_text: &str, area: Rect) -> Option<Placed> {
    let n = grid.cells.len();
    if n == 0 || !(area.w.is_finite() && area.h.is_finite()) {
        return None;
    }
    let band_space = if grid.manual_row.is_some() {
        BAND_LABEL_HEIGHT
    } else {
        0.0
    };
    let fits = |cols: usize, rows: usize, band: f64| {
        let (cw, ch) = (area.w / cols as f64, (area.h - band) / rows as f64);
        (cw >= MIN_CELL_WIDTH && ch >= MIN_CELL_HEIGHT).then_some((cw, ch))
    };
    // The kind's own grid, or, when the pane cannot hold it, the same states in
    // reading order on the grid shape that gives the biggest cells.
    let (cols, rows, cells, band) = match fits(grid.cols, grid.rows, band_space) {
        Some(_) => (grid.cols, grid.rows, grid.cells.clone(), grid.manual_row),
        None => {
            let (cols, rows) = (1..=n)
                .map(|c| (c, n.div_ceil(c)))
                .max_by(|a, b| cell_score(*a, area).total_cmp(&cell_score(*b, area)))?;
            fits(cols, rows, 0.0)?;
            let mut order: Vec<usize> = (0..n).collect();
            let at = |i: usize| (grid.cells[i].row, grid.cells[i].col);
            crate::series::sort_indices(&mut order, &|a, b| at(a).cmp(&at(b)));
            let mut cells = vec![Cell::default(); n];
            for (k, &i) in order.iter().enumerate() {
                cells[i] = Cell {
                    col: k % cols,
                    row: k / cols,
                };
            }
            (cols, rows, cells, None)
        }
    };
    let band_space = if band.is_some() { band_space } else { 0.0 };
    let (cw, ch) = fits(cols, rows, band_space)?;
    // Cells no taller than wide (plus the name), so a tall pane does not
    // stretch the diagram; the grid sits at the top, centred across.
    let ch = ch.min(cw + LABEL_HEIGHT).max(MIN_CELL_HEIGHT);
    let grid_rect = Rect {
        x: area.x,
        y: area.y,
        w: cw * cols as f64,
        h: ch * rows as f64 + band_space,
    };
    let radius = ((cw - 2.0 * CELL_PAD) / 2.0)
        .min((ch - 2.0 * CELL_PAD - 2.0 - LABEL_HEIGHT) / 2.0)
        .clamp(MIN_RADIUS, MAX_RADIUS);
    let max_chars = (((cw - 2.0 * CELL_PAD) / LABEL_CHAR_WIDTH).floor() as usize).max(1);
    let nodes: Vec<PlacedNode> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let below_band = band.is_some_and(|b| c.row >= b);
            let y0 = area.y + c.row as f64 * ch + if below_band { band_space } else { 0.0 };
            let x0 = area.x + c.col as f64 * cw;
            let block = 2.0 * radius + 2.0 + LABEL_HEIGHT;
            let cx = x0 + cw / 2.0;
            let cy = y0 + (ch - block) / 2.0 + radius;
            let label = fit_label(names.get(i).copied().unwrap_or(""), max_chars);
            let lw = label.chars().count() as f64 * LABEL_CHAR_WIDTH;
            let digits = counts.get(i).copied().unwrap_or(0).to_string().len() as f64;
            let count_font = COUNT_FONT.min((2.0 * radius - 6.0) / (digits * DIGIT_WIDTH_PER_PX));
            PlacedNode {
                cx,
                cy,
                label_box: Rect {
                    x: cx - lw / 2.0,
                    y: cy + radius + 2.0,
                    w: lw,
                    h: LABEL_HEIGHT,
                },
                label,
                count_font,
            }
        })
        .collect();
    if nodes.iter().any(|n| n.count_font < MIN_COUNT_FONT) {
        return None;
    }
    let band_top = band.map(|r| area.y + r as f64 * ch);
    let band_label = band_top.map(|top| {
        let text = fit_label(band_text, ((grid_rect.w - 4.0) / LABEL_CHAR_WIDTH).floor() as usize);
        let w = text.chars().count() as f64 * LABEL_CHAR_WIDTH;
        let rect = Rect {
            x: area.x + 2.0,
            y: top + 1.0,
            w,
            h: BAND_LABEL_HEIGHT - 2.0,
        };
        (text, rect)
    });
    Some(Placed {
        radius,
        nodes,
        band_top,
        band_label,
        grid: grid_rect,
    })
}

/// How much bigger than the minimum the smaller side of a cell is.
fn cell_score((cols, rows): (usize, usize), area: Rect) -> f64 {
    (area.w / cols as f64 / MIN_CELL_WIDTH).min(area.h / rows as f64 / MIN_CELL_HEIGHT)
}

/// `name` cut to `max` characters, the last being "…" when cut.
pub fn fit_label(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_owned();
    }
    let mut out: String = name.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BREAKER: [&str; 6] = ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"];

    #[test]
    fn breaker_reads_closed_left_open_right_half_open_below_and_manual_states_apart() {
        let g = grid(builtin::CIRCUIT_BREAKER, &BREAKER, 0, &[]);
        let c = &g.cells;
        assert!(c[0].col < c[1].col && c[0].row == c[1].row, "closed left of open");
        assert!(c[2].row > c[0].row, "half_open below");
        let band = g.manual_row.expect("a manual band");
        assert!(band > c[2].row);
        assert!(c[3..].iter().all(|m| m.row == band), "{c:?}");
        // The five states without metrics_only keep the same cells.
        let five = grid(builtin::CIRCUIT_BREAKER, &BREAKER[..5], 0, &[]);
        assert_eq!(&five.cells[..], &c[..5]);
    }

    #[test]
    fn custom_kinds_are_layered_from_the_initial_state() {
        // queued -> running -> done, running -> failed, and an unreachable state.
        let states = ["failed", "queued", "running", "done", "lost"];
        let g = grid("payment_job", &states, 1, &[(1, 2), (2, 3), (2, 0)]);
        let c = &g.cells;
        assert_eq!(c[1].col, 0, "initial state in the first layer");
        assert!(c[2].col > c[1].col && c[3].col > c[2].col);
        assert_eq!(c[0].col, c[3].col, "failed and done are both two steps away");
        assert_ne!(c[0].row, c[3].row);
        assert_eq!(c[4].col, 3, "unreachable states go last");
        assert_eq!((g.cols, g.rows), (4, 2));
        assert_eq!(g, grid("payment_job", &states, 1, &[(1, 2), (2, 3), (2, 0)]));
    }

    #[test]
    fn a_pane_too_small_for_the_states_gets_no_diagram() {
        let g = grid(builtin::CIRCUIT_BREAKER, &BREAKER, 0, &[]);
        let area = |w, h| Rect { x: 0.0, y: 0.0, w, h };
        assert!(place(&g, &BREAKER, &[0; 6], "", area(100.0, 60.0)).is_none());
        let p = place(
            &g,
            &BREAKER,
            &[959, 0, 0, 0, 0, 0],
            "from any state",
            area(400.0, 300.0),
        )
        .unwrap();
        assert!(p.nodes[0].count_font <= COUNT_FONT);
        assert!(3.0 * DIGIT_WIDTH_PER_PX * p.nodes[0].count_font <= 2.0 * p.radius - 6.0 + 1e-9);
        // A long name is cut in a narrow cell.
        assert_eq!(fit_label("azure-openai-eastus", 6), "azure…");
        assert_eq!(fit_label("open", 6), "open");
    }
}
