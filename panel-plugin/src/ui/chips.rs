//! The header: a search box, then one chip per state with its exact count in
//! the state's colour (a click filters the tiles to that state), then notes
//! (flapping, unknown, hidden). Chips get fixed widths and places computed
//! here, sized for the largest count the fleet can reach, so nothing moves
//! sideways when the counts change, and the header's height is known before
//! it renders.

use crate::ui::safe_color;
use crate::view::PanelView;

/// Width of a 12 px character in the header, taken generously so the text
/// fits the chip it was measured for (Inter and DejaVu Sans are narrower).
pub const CHAR_WIDTH: f64 = 7.2;
/// Padding, dot and gaps inside a chip, around its text.
const CHIP_CHROME: f64 = 8.0 + 8.0 + 5.0 + 6.0 + 8.0;
const CHIP_GAP: f64 = 6.0;
pub const CHIP_HEIGHT: f64 = 22.0;
pub const LINE_HEIGHT: f64 = 28.0;
pub const SEARCH_WIDTH: f64 = 150.0;

#[derive(Clone, Debug, PartialEq)]
pub enum ChipRole {
    /// Clears the state filter.
    All,
    /// Filters to this state (by name, across kinds).
    State(String),
    /// Not clickable: flapping, unknown, hidden.
    Note,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chip {
    pub role: ChipRole,
    pub name: String,
    pub count: usize,
    /// CSS colours of the dot and of the text; `None` is the theme's.
    pub color: Option<String>,
    pub text_color: Option<String>,
    pub title: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
}

impl Chip {
    /// Whether the chip shows as pressed under the state `filter`.
    pub fn pressed(&self, filter: Option<&str>) -> bool {
        match &self.role {
            ChipRole::All => filter.is_none(),
            ChipRole::State(s) => filter == Some(s.as_str()),
            ChipRole::Note => false,
        }
    }

    pub fn class(&self, pressed: bool) -> &'static str {
        match (&self.role, pressed) {
            (ChipRole::Note, _) => "ss-chip ss-note",
            (_, true) => "ss-chip ss-pressed",
            _ => "ss-chip",
        }
    }

    /// The `style` attribute: its place, and its state's colours when it has one.
    pub fn style(&self) -> String {
        let mut style = format!("left:{}px;top:{}px;width:{}px;", self.x, self.y, self.w);
        if let Some(color) = &self.color {
            style.push_str(&format!("--ss-state:{};", safe_color(color)));
        }
        if let Some(color) = &self.text_color {
            style.push_str(&format!("--ss-state-text:{};", safe_color(color)));
        }
        style
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub chips: Vec<Chip>,
    pub height: f64,
}

/// Chips for `view` in a header `width` pixels wide.
pub fn header(view: &PanelView, width: f64) -> Header {
    let t = &view.totals;
    // Counts never exceed the machines matching the search: room for that many digits.
    let digits = t.machines.max(1).to_string().len();
    let mut chips = vec![chip(
        ChipRole::All,
        "all",
        t.machines,
        None,
        None,
        "Show every state".into(),
    )];
    for kind in &view.kinds {
        for node in &kind.nodes {
            let existing = chips
                .iter_mut()
                .find(|c| matches!(&c.role, ChipRole::State(s) if *s == node.state));
            match existing {
                Some(c) => c.count += node.count_now,
                None => chips.push(chip(
                    ChipRole::State(node.state.clone()),
                    &node.state,
                    node.count_now,
                    Some(node.color.clone()),
                    Some(node.text_color.clone()),
                    format!("Show only machines {} now", node.state),
                )),
            }
        }
    }
    for c in chips.iter_mut().filter(|c| matches!(c.role, ChipRole::State(_))) {
        let machines = if c.count == 1 { "machine" } else { "machines" };
        c.title = format!("{}: {} {machines} now. Click to show only them.", c.name, c.count);
    }
    let notes = [
        (
            t.flapping,
            "⚡ flapping",
            "Machines that keep tripping (see the flapping options)",
        ),
        (t.unknown, "? unknown", "Machines with no current sample"),
        (view.machines_hidden, "hidden", "Cut by the max tiles option"),
    ];
    for (n, name, title) in notes {
        if n > 0 {
            chips.push(chip(ChipRole::Note, name, n, None, None, title.into()));
        }
    }
    // Lay out after the search box, wrapping to further lines.
    let width = if width.is_finite() { width.max(0.0) } else { 0.0 };
    let (mut x, mut y) = (SEARCH_WIDTH + CHIP_GAP, (LINE_HEIGHT - CHIP_HEIGHT) / 2.0);
    for c in &mut chips {
        c.w = CHIP_CHROME + (c.name.chars().count() + digits) as f64 * CHAR_WIDTH;
        if x > 0.0 && x + c.w > width {
            x = 0.0;
            y += LINE_HEIGHT;
        }
        (c.x, c.y) = (x, y);
        x += c.w + CHIP_GAP;
    }
    let lines = ((y - (LINE_HEIGHT - CHIP_HEIGHT) / 2.0) / LINE_HEIGHT).round() + 1.0;
    Header {
        chips,
        height: lines * LINE_HEIGHT + 4.0,
    }
}

fn chip(
    role: ChipRole,
    name: &str,
    count: usize,
    color: Option<String>,
    text_color: Option<String>,
    title: String,
) -> Chip {
    Chip {
        role,
        name: name.to_owned(),
        count,
        color,
        text_color,
        title,
        x: 0.0,
        y: 0.0,
        w: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{KindView, NodeView, Totals};

    fn view(counts: &[(&str, usize)], machines: usize) -> PanelView {
        PanelView {
            kinds: vec![KindView {
                nodes: counts
                    .iter()
                    .map(|(s, n)| NodeView {
                        state: (*s).into(),
                        count_now: *n,
                        color: "#f00".into(),
                        text_color: "#e00".into(),
                        ..NodeView::default()
                    })
                    .collect(),
                ..KindView::default()
            }],
            totals: Totals {
                machines,
                flapping: 2,
                ..Totals::default()
            },
            ..PanelView::default()
        }
    }

    #[test]
    fn one_chip_per_state_with_its_exact_count_and_colour() {
        let h = header(
            &view(&[("closed", 9586), ("open", 14), ("forced_open", 0)], 9600),
            2000.0,
        );
        let names: Vec<(&str, usize)> = h.chips.iter().map(|c| (c.name.as_str(), c.count)).collect();
        assert_eq!(
            names,
            [
                ("all", 9600),
                ("closed", 9586),
                ("open", 14),
                ("forced_open", 0),
                ("⚡ flapping", 2)
            ]
        );
        assert_eq!(h.chips[1].role, ChipRole::State("closed".into()));
        assert_eq!(h.chips[1].text_color.as_deref(), Some("#e00"));
        assert_eq!(h.height, LINE_HEIGHT + 4.0);
    }

    #[test]
    fn chips_keep_their_places_when_counts_change() {
        let a = header(&view(&[("closed", 990), ("open", 10)], 1000), 1200.0);
        let b = header(&view(&[("closed", 3), ("open", 997)], 1000), 1200.0);
        let places = |h: &Header| h.chips.iter().map(|c| (c.x, c.y, c.w)).collect::<Vec<_>>();
        assert_eq!(places(&a), places(&b));
    }

    #[test]
    fn a_narrow_header_wraps_chips_inside_its_width() {
        let h = header(
            &view(
                &[
                    ("closed", 1),
                    ("open", 1),
                    ("half_open", 1),
                    ("forced_open", 1),
                    ("disabled", 1),
                ],
                1000,
            ),
            400.0,
        );
        assert!(h.height > LINE_HEIGHT * 2.0);
        for c in &h.chips {
            assert!(c.x + c.w <= 400.0, "{c:?}");
            assert!(c.y + CHIP_HEIGHT <= h.height);
        }
    }

    #[test]
    fn the_chip_of_the_filtered_state_is_pressed() {
        let h = header(&view(&[("closed", 9), ("open", 1)], 10), 2000.0);
        let pressed = |filter: Option<&str>| h.chips.iter().map(|c| c.pressed(filter)).collect::<Vec<_>>();
        // all, closed, open, flapping (a note, never pressed)
        assert_eq!(pressed(None), [true, false, false, false]);
        assert_eq!(pressed(Some("open")), [false, false, true, false]);
        assert_eq!(h.chips[2].class(true), "ss-chip ss-pressed");
        assert_eq!(h.chips[3].class(false), "ss-chip ss-note");
        assert!(h.chips[1].style().contains("--ss-state:#f00;--ss-state-text:#e00;"));
    }
}
