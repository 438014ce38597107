//! The panel's user interface. The Leptos components (wasm32 only) draw a
//! [`crate::view::PanelView`]; the geometry, formatting and stylesheet they
//! use are plain functions here, compiled and tested natively.

pub mod chips;
pub mod format;
pub mod geometry;
pub mod grid;
pub mod panes;
pub mod strip;
pub mod style;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
mod diagram;
#[cfg(target_arch = "wasm32")]
mod header;
#[cfg(target_arch = "wasm32")]
mod machines;
#[cfg(target_arch = "wasm32")]
pub mod state;
#[cfg(target_arch = "wasm32")]
mod tooltip;

/// A colour from the view model, or the theme's weak text colour when it
/// could break out of a `style` attribute.
pub fn safe_color(color: &str) -> &str {
    if style::is_safe_css_value(color) {
        color
    } else {
        "var(--ss-text-weak)"
    }
}

/// Whether a data link may become an `href`: web and mail links and relative
/// paths, never `javascript:` or `data:`.
pub fn safe_href(url: &str) -> bool {
    let url = url.trim_start();
    let lower = url.to_ascii_lowercase();
    match lower.split_once(':') {
        // A colon before any `/`, `?` or `#` starts a scheme.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => !url.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harmless_links_become_hrefs() {
        assert!(safe_href("https://runbooks.example/breaker?key=1"));
        assert!(safe_href("/d/abc/machines?var-machine=openai%2Fkey-1"));
        assert!(safe_href("d/abc?time=12:30"), "a colon after a slash is not a scheme");
        assert!(safe_href("mailto:oncall@example.com"));
        assert!(!safe_href("javascript:alert(1)"));
        assert!(!safe_href("  JavaScript:alert(1)"));
        assert!(!safe_href("data:text/html,hi"));
        assert!(!safe_href(""));
    }

    #[test]
    fn unsafe_colours_fall_back() {
        assert_eq!(safe_color("#ff0000"), "#ff0000");
        assert_eq!(safe_color("red;x:y"), "var(--ss-text-weak)");
    }
}
