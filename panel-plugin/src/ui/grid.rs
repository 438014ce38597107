//! Geometry of the virtualised tile grid. Only the rows in (or near) the
//! scrolled-to window are put in the DOM: with 10,000 machines a full grid is
//! ~300,000 elements and takes seconds to build, a window is a few dozen tiles.

use std::ops::Range;

use crate::options::TileSize;

/// Narrowest a tile gets before the grid drops a column.
pub const MIN_TILE_WIDTH: f64 = 230.0;
/// Height of one tile (padding 5+5, name and state lines 16 each, gaps 3,
/// strip 14, border 2: nothing left empty), and the gap between tiles.
pub const TILE_HEIGHT: f64 = 64.0;
pub const GAP: f64 = 6.0;
/// A dense cell: one small square per machine.
pub const CELL: f64 = 14.0;
pub const CELL_GAP: f64 = 2.0;
/// Auto switches to cells when full tiles would take more screens than this.
pub const DENSE_AFTER_SCREENS: f64 = 3.0;
/// Rows rendered beyond each edge of the viewport, so a quick scroll does not
/// show blank space before the next frame.
pub const OVERSCAN_ROWS: usize = 2;

/// Columns and tile size for a grid `width` pixels wide.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    pub cols: usize,
    pub tile_width: f64,
    pub tile_height: f64,
    pub gap: f64,
    /// Distance from one row's top to the next one's.
    pub row_pitch: f64,
}

impl Grid {
    pub fn new(width: f64) -> Grid {
        let width = if width.is_finite() { width.max(0.0) } else { 0.0 };
        let cols = (((width + GAP) / (MIN_TILE_WIDTH + GAP)).floor() as usize).max(1);
        let tile_width = ((width - GAP * (cols - 1) as f64) / cols as f64).max(0.0);
        Grid {
            cols,
            tile_width,
            tile_height: TILE_HEIGHT,
            gap: GAP,
            row_pitch: TILE_HEIGHT + GAP,
        }
    }

    /// Small square cells, as many across as fit.
    pub fn dense(width: f64) -> Grid {
        let width = if width.is_finite() { width.max(0.0) } else { 0.0 };
        let cols = (((width + CELL_GAP) / (CELL + CELL_GAP)).floor() as usize).max(1);
        Grid {
            cols,
            tile_width: CELL,
            tile_height: CELL,
            gap: CELL_GAP,
            row_pitch: CELL + CELL_GAP,
        }
    }

    /// The grid for `tiles` machines in a `width` x `height` pane.
    pub fn for_pane(size: TileSize, tiles: usize, width: f64, height: f64) -> Grid {
        let full = Grid::new(width);
        let per_screen = full.cols as f64 * (height / full.row_pitch).floor().max(1.0);
        let dense = match size {
            TileSize::Full => false,
            TileSize::Dense => true,
            TileSize::Auto => tiles as f64 > DENSE_AFTER_SCREENS * per_screen,
        };
        if dense { Grid::dense(width) } else { full }
    }

    pub fn is_dense(&self) -> bool {
        self.tile_height == CELL
    }

    pub fn rows(&self, tiles: usize) -> usize {
        tiles.div_ceil(self.cols)
    }

    /// Height of the scrollable content for `tiles` tiles.
    pub fn content_height(&self, tiles: usize) -> f64 {
        let rows = self.rows(tiles);
        if rows == 0 {
            0.0
        } else {
            rows as f64 * self.row_pitch - self.gap
        }
    }

    /// Tile indices to render for a viewport `viewport_height` tall scrolled to
    /// `scroll_top`, including [`OVERSCAN_ROWS`] on each side.
    pub fn visible(&self, tiles: usize, scroll_top: f64, viewport_height: f64) -> Range<usize> {
        let rows = self.rows(tiles);
        if rows == 0 {
            return 0..0;
        }
        let top = if scroll_top.is_finite() {
            scroll_top.max(0.0)
        } else {
            0.0
        };
        let height = if viewport_height.is_finite() {
            viewport_height.max(0.0)
        } else {
            0.0
        };
        let first = ((top / self.row_pitch).floor() as usize).saturating_sub(OVERSCAN_ROWS);
        let last = (((top + height) / self.row_pitch).ceil() as usize + OVERSCAN_ROWS).min(rows);
        // Scrolled past the end (the list just shrank): keep the last row.
        let first = first.min(rows - 1).min(last);
        first * self.cols..(last * self.cols).min(tiles)
    }

    /// Top-left corner of tile `index`.
    pub fn position(&self, index: usize) -> (f64, f64) {
        let (row, col) = (index / self.cols, index % self.cols);
        (col as f64 * (self.tile_width + self.gap), row as f64 * self.row_pitch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_width() {
        assert_eq!(Grid::new(100.0).cols, 1, "a narrow panel still shows one column");
        assert_eq!(Grid::new(0.0).cols, 1);
        assert_eq!(Grid::new(f64::NAN).cols, 1);
        let g = Grid::new(1000.0);
        assert_eq!(g.cols, 4);
        assert!(g.tile_width >= MIN_TILE_WIDTH);
        // The columns and gaps fill the width exactly.
        assert!((g.tile_width * 4.0 + GAP * 3.0 - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_window_and_overscan_are_rendered() {
        let g = Grid::new(1000.0); // 4 columns, rows 70 px apart
        let tiles = 10_000;
        assert_eq!(g.rows(tiles), 2500);
        // At the top, 400 px tall: rows 0..=5 are visible (5.7 rows), plus 2 overscan rows below.
        assert_eq!(g.visible(tiles, 0.0, 400.0), 0..(6 + OVERSCAN_ROWS) * 4);
        // Scrolled to row 1000: two rows of overscan above too.
        let r = g.visible(tiles, 1000.0 * g.row_pitch, 400.0);
        assert_eq!(r.start, (1000 - OVERSCAN_ROWS) * 4);
        assert_eq!(r.end, (1000 + 6 + OVERSCAN_ROWS) * 4);
        assert!(r.len() <= 40, "a window of 10,000 tiles renders {} tiles", r.len());
    }

    #[test]
    fn the_window_stays_inside_the_list() {
        let g = Grid::new(1000.0);
        // Last row partly filled: 10 tiles in 3 rows.
        assert_eq!(g.visible(10, 0.0, 5000.0), 0..10);
        // Scrolled past the end (the list shrank under a filter).
        assert_eq!(g.visible(10, 1e6, 400.0), 8..10);
        assert_eq!(g.visible(0, 0.0, 400.0), 0..0);
        // A negative scroll offset counts as the top, an unknown height as zero.
        assert_eq!(g.visible(10, -50.0, f64::NAN), 0..8);
    }

    #[test]
    fn a_large_fleet_gets_cells_that_fit_on_one_screen() {
        // The machines pane of a 1200x800 panel, 1,000 machines.
        let g = Grid::for_pane(TileSize::Auto, 1000, 800.0, 700.0);
        assert!(g.is_dense());
        assert!(g.content_height(1000) <= 700.0, "{}", g.content_height(1000));
        // A few machines keep their full tiles, unless dense is asked for.
        assert!(!Grid::for_pane(TileSize::Auto, 20, 800.0, 700.0).is_dense());
        assert!(Grid::for_pane(TileSize::Dense, 20, 800.0, 700.0).is_dense());
        assert!(!Grid::for_pane(TileSize::Full, 1000, 800.0, 700.0).is_dense());
    }

    #[test]
    fn positions_and_heights_match_rows() {
        let g = Grid::new(1000.0);
        assert_eq!(g.position(0), (0.0, 0.0));
        assert_eq!(g.position(5), (g.tile_width + GAP, g.row_pitch));
        assert_eq!(g.content_height(0), 0.0);
        assert_eq!(g.content_height(5), 2.0 * g.row_pitch - GAP);
    }
}
