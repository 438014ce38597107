//! Data links: Grafana's `${__field.labels.X}`, `${__field.name}`,
//! `${__value.text}` and `${__value.raw}` filled in per machine.
//!
//! As in Grafana, values go in as they are unless the variable asks for
//! `:percentencode`. Other variables (dashboard variables, `${__from}`) are
//! left untouched for `module.ts` to pass through Grafana's `replaceVariables`.

use crate::view_model::LinkView;

/// What a link's variables refer to for one machine.
pub struct LinkContext<'a> {
    pub labels: &'a [(&'a str, &'a str)],
    pub field_name: &'a str,
    /// The current state's name.
    pub value_text: &'a str,
    /// The current state's enum value (its position in the kind).
    pub value_raw: &'a str,
}

pub fn interpolate(template: &str, ctx: &LinkContext) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = &after[..end];
        let (var, format) = expr.split_once(':').unwrap_or((expr, ""));
        match lookup(var, ctx) {
            Some(value) if format == "percentencode" => out.push_str(&percent_encode(value)),
            Some(value) if format.is_empty() || format == "raw" => out.push_str(value),
            _ => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn lookup<'a>(var: &str, ctx: &LinkContext<'a>) -> Option<&'a str> {
    if let Some(label) = var.strip_prefix("__field.labels.") {
        let label = label.trim_matches('"');
        return Some(ctx.labels.iter().find(|(k, _)| *k == label).map_or("", |(_, v)| v));
    }
    match var {
        "__field.name" | "__field.displayName" => Some(ctx.field_name),
        "__value.text" => Some(ctx.value_text),
        "__value.raw" | "__value.numeric" => Some(ctx.value_raw),
        _ => None,
    }
}

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn build(links: &[crate::input::DataLink], ctx: &LinkContext) -> Vec<LinkView> {
    links
        .iter()
        .filter(|l| !l.url.trim().is_empty())
        .map(|l| LinkView {
            title: interpolate(&l.title, ctx),
            url: interpolate(&l.url, ctx),
            target_blank: l.target_blank,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_labels_and_value_and_keeps_other_variables() {
        let labels = [("provider", "open ai"), ("key_id", "key-1")];
        let ctx = LinkContext {
            labels: &labels,
            field_name: "Value",
            value_text: "half_open",
            value_raw: "2",
        };
        assert_eq!(
            interpolate(
                "https://x/d?var-p=${__field.labels.provider:percentencode}&k=${__field.labels.key_id}&s=${__value.text}&v=${__value.raw}&${__url_time_range}&m=${__field.labels.nope}",
                &ctx
            ),
            "https://x/d?var-p=open%20ai&k=key-1&s=half_open&v=2&${__url_time_range}&m="
        );
        assert_eq!(interpolate("broken ${__value.text", &ctx), "broken ${__value.text");
        assert_eq!(
            interpolate("${__field.name} is ${__value.text}", &ctx),
            "Value is half_open"
        );
    }
}
