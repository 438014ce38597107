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

/// Text needs this contrast against its background (WCAG AA, normal text).
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// A theme role's colour (`text`, `background`, `warning`...): the palette's,
/// or Grafana's own default for the theme when the palette lacks it.
pub fn role(theme: &Theme, key: &str) -> String {
    if let Some(v) = theme.palette.get(key).filter(|v| parse(v).is_some()) {
        return v.clone();
    }
    let (dark, light) = match key {
        "text" => ("#ccccdc", "#24292e"),
        "textSecondary" => ("rgba(204,204,220,0.65)", "rgba(36,41,46,0.75)"),
        "background" => ("#181b1f", "#ffffff"),
        "backgroundSecondary" => ("#22252b", "#f4f5f5"),
        "border" => ("rgba(204,204,220,0.2)", "rgba(36,41,46,0.25)"),
        "borderWeak" => ("rgba(204,204,220,0.12)", "rgba(36,41,46,0.12)"),
        "primary" | "info" => ("#3d71d9", "#3871dc"),
        "ok" => ("#1a7f4b", "#1b855e"),
        "warning" => ("#ff9900", "#ff9900"),
        "critical" => ("#d10e5c", "#e0226e"),
        _ => ("#ccccdc", "#24292e"),
    };
    (if theme.is_dark { dark } else { light }).to_owned()
}

/// `color` as text on the panel's backgrounds: itself when it reads at
/// [`MIN_TEXT_CONTRAST`] on both, else mixed toward the theme's text colour
/// just enough that it does (a light-theme orange becomes a brown, a dark
/// red a lighter red), so the text keeps its state's hue.
pub fn readable(color: &str, theme: &Theme) -> String {
    let backgrounds = [role(theme, "background"), role(theme, "backgroundSecondary")];
    let bgs: Vec<[f64; 3]> = backgrounds
        .iter()
        .filter_map(|b| parse(b))
        .map(|b| over(b, [0.0; 3]))
        .collect();
    let text = parse(&role(theme, "text")).map_or([0.0; 3], |t| over(t, bgs[0]));
    let Some(c) = parse(color) else {
        return role(theme, "text");
    };
    for step in 0..=20 {
        let f = f64::from(step) / 20.0;
        let mixed: Vec<[f64; 3]> = bgs.iter().map(|&bg| mix(over(c, bg), text, f)).collect();
        if mixed
            .iter()
            .zip(&bgs)
            .all(|(m, bg)| contrast(*m, *bg) >= MIN_TEXT_CONTRAST)
        {
            // Opaque, so the same colour on either background.
            let m = mix(over(c, bgs[0]), text, f);
            return format!(
                "#{:02x}{:02x}{:02x}",
                m[0].round() as u8,
                m[1].round() as u8,
                m[2].round() as u8
            );
        }
    }
    role(theme, "text")
}

/// A CSS colour (`#hex` or `rgb()`/`rgba()`) as r, g, b (0..255) and alpha (0..1).
pub fn parse(css: &str) -> Option<[f64; 4]> {
    let css = css.trim();
    if let Some(hex) = css.strip_prefix('#') {
        let digit = |i: usize, n: usize| u8::from_str_radix(hex.get(i..i + n)?, 16).ok().map(f64::from);
        let short = |i: usize| digit(i, 1).map(|v| v * 17.0);
        return match hex.len() {
            3 => Some([short(0)?, short(1)?, short(2)?, 1.0]),
            4 => Some([short(0)?, short(1)?, short(2)?, short(3)? / 255.0]),
            6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?, 1.0]),
            8 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?, digit(6, 2)? / 255.0]),
            _ => None,
        };
    }
    let inner = css
        .strip_prefix("rgba(")
        .or_else(|| css.strip_prefix("rgb("))?
        .strip_suffix(')')?;
    let parts: Vec<f64> = inner
        .split([',', ' ', '/'])
        .filter(|p| !p.is_empty())
        .map(|p| p.trim().parse::<f64>().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [r, g, b] => Some([r, g, b, 1.0]),
        [r, g, b, a] => Some([r, g, b, a.clamp(0.0, 1.0)]),
        _ => None,
    }
}

/// `fg` (with alpha) painted over the opaque `bg`.
pub fn over(fg: [f64; 4], bg: [f64; 3]) -> [f64; 3] {
    let a = fg[3];
    [0, 1, 2].map(|i| fg[i] * a + bg[i] * (1.0 - a))
}

fn mix(a: [f64; 3], b: [f64; 3], f: f64) -> [f64; 3] {
    [0, 1, 2].map(|i| a[i] * (1.0 - f) + b[i] * f)
}

/// WCAG relative luminance of an opaque sRGB colour.
pub fn luminance(c: [f64; 3]) -> f64 {
    let lin = |v: f64| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

/// WCAG contrast ratio of two opaque colours (1 to 21).
pub fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
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

    #[test]
    fn parses_and_measures_contrast_as_wcag_does() {
        assert_eq!(parse("#fff"), Some([255.0, 255.0, 255.0, 1.0]));
        assert_eq!(parse("rgba(36, 41, 46, 0.75)"), Some([36.0, 41.0, 46.0, 0.75]));
        assert_eq!(parse("red"), None);
        let (white, black) = ([255.0; 3], [0.0; 3]);
        assert!((contrast(white, black) - 21.0).abs() < 1e-9);
        // WCAG's own example: #777 on white is 4.48:1.
        assert!((contrast([119.0; 3], white) - 4.48).abs() < 0.01);
    }

    #[test]
    fn readable_keeps_colours_that_read_and_darkens_those_that_do_not() {
        let light = Theme::default();
        let orange = readable("#ff9900", &light);
        let c = parse(&orange).unwrap();
        assert!(contrast(over(c, [0.0; 3]), [255.0; 3]) >= MIN_TEXT_CONTRAST, "{orange}");
        assert!(c[0] > c[2], "still an orange-brown: {orange}");
        let dark = Theme {
            is_dark: true,
            ..Theme::default()
        };
        assert_eq!(readable("#ffffff", &dark), "#ffffff");
    }
}
