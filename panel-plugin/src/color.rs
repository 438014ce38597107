//! Colour names to CSS colours, through the Grafana theme's palette.
//!
//! Kinds and mappings name colours the Grafana way (`"green"`,
//! `"semi-dark-red"`, `"text"`); `module.ts` sends the theme's palette so the
//! panel matches dark and light themes. Names the palette lacks fall back to
//! Grafana's classic palette; CSS colours pass through; anything else (which
//! could inject CSS) is refused.

use statescope_model::Severity;

use crate::input::Theme;

/// Grafana's classic visualization colours (dark theme values), for palettes
/// that lack a name.
const FALLBACK: [(&str, &str); 26] = [
    ("green", "#73BF69"),
    ("dark-green", "#37872D"),
    ("semi-dark-green", "#56A64B"),
    ("light-green", "#96D98D"),
    ("red", "#F2495C"),
    ("dark-red", "#C4162A"),
    ("semi-dark-red", "#E02F44"),
    ("light-red", "#FF7383"),
    ("orange", "#FF9830"),
    ("dark-orange", "#FA6400"),
    ("semi-dark-orange", "#FF780A"),
    ("light-orange", "#FFB357"),
    ("yellow", "#FADE2A"),
    ("dark-yellow", "#E0B400"),
    ("semi-dark-yellow", "#F2CC0C"),
    ("light-yellow", "#FFEE52"),
    ("blue", "#5794F2"),
    ("dark-blue", "#1F60C4"),
    ("semi-dark-blue", "#3274D9"),
    ("light-blue", "#8AB8FF"),
    ("purple", "#B877D9"),
    ("dark-purple", "#8F3BB8"),
    ("semi-dark-purple", "#A352CC"),
    ("light-purple", "#CA95E5"),
    ("transparent", "transparent"),
    ("primary", "#3D71D9"),
];

/// A colour name or CSS colour to CSS, `None` when it is neither.
pub fn resolve(name: &str, theme: &Theme) -> Option<String> {
    let name = name.trim();
    if let Some(css) = theme.palette.get(name) {
        return Some(css.clone());
    }
    if is_css_color(name) {
        return Some(name.to_owned());
    }
    if name == "text" {
        return Some(text_color(theme));
    }
    FALLBACK.iter().find(|(n, _)| *n == name).map(|(_, c)| (*c).to_owned())
}

/// The theme's colour for a severity (palette `ok`/`info`/`warning`/`critical`).
pub fn severity_color(severity: Severity, theme: &Theme) -> String {
    let fallback = match severity {
        Severity::Ok => "green",
        Severity::Info => "blue",
        Severity::Warning => "orange",
        Severity::Critical => "red",
    };
    resolve(severity.as_str(), theme)
        .or_else(|| resolve(fallback, theme))
        .unwrap_or_else(|| text_color(theme))
}

/// The colour for "no state known".
pub fn text_color(theme: &Theme) -> String {
    match theme.palette.get("text") {
        Some(c) => c.clone(),
        None if theme.is_dark => "#CCCCDC".to_owned(),
        None => "#24292E".to_owned(),
    }
}

/// `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, or `rgb(…)`/`rgba(…)`/`hsl(…)`/`hsla(…)`
/// with only numbers, separators and `%` inside.
pub fn is_css_color(text: &str) -> bool {
    if let Some(hex) = text.strip_prefix('#') {
        return matches!(hex.len(), 3 | 4 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    for func in ["rgb(", "rgba(", "hsl(", "hsla("] {
        if let Some(inner) = text.strip_prefix(func).and_then(|r| r.strip_suffix(')')) {
            return inner
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '%' | '/'));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theme(pairs: &[(&str, &str)]) -> Theme {
        Theme {
            is_dark: true,
            palette: pairs.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
        }
    }

    #[test]
    fn palette_first_then_css_then_grafana_defaults() {
        let t = theme(&[("green", "#00ff00"), ("text", "#eee")]);
        assert_eq!(resolve("green", &t).as_deref(), Some("#00ff00"));
        assert_eq!(resolve("#abc", &t).as_deref(), Some("#abc"));
        assert_eq!(resolve("rgba(1, 2, 3, 0.5)", &t).as_deref(), Some("rgba(1, 2, 3, 0.5)"));
        assert_eq!(resolve("dark-red", &t).as_deref(), Some("#C4162A"));
        assert_eq!(resolve("text", &t).as_deref(), Some("#eee"));
        assert_eq!(resolve("red; background: url(x)", &t), None);
        assert_eq!(resolve("rgb(1,2,3);x", &t), None);
    }

    #[test]
    fn severities_use_the_palette_roles() {
        let t = theme(&[("critical", "#d00")]);
        assert_eq!(severity_color(Severity::Critical, &t), "#d00");
        assert_eq!(severity_color(Severity::Ok, &t), "#73BF69");
        assert_eq!(text_color(&Theme::default()), "#24292E");
    }
}
