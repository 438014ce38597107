//! Text the tiles and tooltips show: durations, counts and shares, kept short
//! because a tile is ~250 px wide.

/// A duration in milliseconds as at most two units: `45s`, `3m 12s`, `2h 5m`,
/// `4d 3h`. Negative durations (a clock a little ahead of the browser's) read
/// as `0s`.
pub fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 1000.0 {
        return "0s".to_owned();
    }
    let secs = (ms / 1000.0).floor() as u64;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) if m == 0 => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        _ if h == 0 => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// How long a machine has been in its state, `≥` marking a lower bound (the
/// state began before the data did).
pub fn time_in_state(now_ms: f64, start_ms: f64, lower_bound: bool) -> String {
    let text = duration(now_ms - start_ms);
    if lower_bound { format!("≥ {text}") } else { text }
}

/// How long ago `t_ms` was, for tooltips: `just now`, `45 s ago`,
/// `12 min ago`, `3 h ago`, `2 d ago` (the full date goes beside it).
pub fn ago(now_ms: f64, t_ms: f64) -> String {
    let s = ((now_ms - t_ms) / 1000.0).max(0.0);
    if !s.is_finite() {
        return String::new();
    }
    match s as u64 {
        0..5 => "just now".to_owned(),
        n @ 5..60 => format!("{n} s ago"),
        n @ 60..3600 => format!("{} min ago", n / 60),
        n @ 3600..86_400 => format!("{} h ago", n / 3600),
        n => format!("{} d ago", n / 86_400),
    }
}

/// A fraction as a percentage for tooltips: `42%`, `0.4%`, `<0.1%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p <= 0.0 {
        "0%".to_owned()
    } else if p < 0.1 {
        "<0.1%".to_owned()
    } else if p < 10.0 && (p - p.round()).abs() >= 0.05 {
        format!("{p:.1}%")
    } else {
        format!("{}%", p.round())
    }
}

/// Counts in the header: `987`, `1.2k`, `12k`, `1.5M`.
pub fn count(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..10_000 => trim_zero(format!("{:.1}k", n as f64 / 1e3)),
        10_000..1_000_000 => format!("{}k", n / 1000),
        _ => trim_zero(format!("{:.1}M", n as f64 / 1e6)),
    }
}

fn trim_zero(s: String) -> String {
    s.replace(".0k", "k").replace(".0M", "M")
}

/// Appends `text` as the value of a double-quoted HTML attribute: a
/// machine's name is the data's, never markup.
pub fn html_attribute(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_two_units_at_most() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(-5000.0), "0s");
        assert_eq!(duration(f64::NAN), "0s");
        assert_eq!(duration(45_900.0), "45s");
        assert_eq!(duration(120_000.0), "2m");
        assert_eq!(duration(192_000.0), "3m 12s");
        assert_eq!(duration(3_600_000.0), "1h");
        assert_eq!(duration(7_500_000.0), "2h 5m");
        assert_eq!(duration(86_400_000.0 * 4.0 + 3_600_000.0 * 3.0 + 59_000.0), "4d 3h");
        assert_eq!(duration(86_400_000.0 * 2.0), "2d");
    }

    #[test]
    fn lower_bounds_are_marked() {
        assert_eq!(time_in_state(10_000.0, 4_000.0, false), "6s");
        assert_eq!(time_in_state(10_000.0, 4_000.0, true), "≥ 6s");
    }

    #[test]
    fn times_read_as_how_long_ago() {
        let now = 10_000_000.0;
        assert_eq!(ago(now, now + 500.0), "just now", "a clock slightly ahead");
        assert_eq!(ago(now, now - 45_000.0), "45 s ago");
        assert_eq!(ago(now, now - 12.5 * 60_000.0), "12 min ago");
        assert_eq!(ago(now, now - 3.0 * 3_600_000.0), "3 h ago");
        assert_eq!(ago(1e12, 1e12 - 2.0 * 86_400_000.0), "2 d ago");
    }

    #[test]
    fn percentages_keep_small_shares_visible() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0004), "<0.1%");
        assert_eq!(percent(0.004), "0.4%");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.4213), "42%");
        assert_eq!(percent(1.0), "100%");
    }

    #[test]
    fn counts_are_compact() {
        assert_eq!(count(987), "987");
        assert_eq!(count(1000), "1k");
        assert_eq!(count(1234), "1.2k");
        assert_eq!(count(12_345), "12k");
        assert_eq!(count(1_500_000), "1.5M");
    }

    #[test]
    fn attribute_values_cannot_close_the_attribute_or_open_a_tag() {
        let mut out = String::new();
        html_attribute(&mut out, r#"m1" onmouseover="x()"><img src=x>&amp;"#);
        assert_eq!(
            out,
            "m1&quot; onmouseover=&quot;x()&quot;&gt;&lt;img src=x&gt;&amp;amp;"
        );
    }
}
