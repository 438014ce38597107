//! A machine's identity labels, kept as the text `/metrics` writes for them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// A machine's identity labels as one string, `name="value",...` in name
/// order with values escaped as the text formats require: exactly what
/// `/metrics` writes after a machine's `kind` and `machine`.
///
/// One allocation of a few dozen bytes per machine instead of a B-tree node
/// (about half a kilobyte even for one label) and two strings per label, and a
/// scrape copies it whole instead of chasing and escaping each string (at 10k
/// machines those reads missed the CPU's cache). Labels are fixed when the
/// machine is created, so the text is rendered once. Serialized as a map, as
/// before.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Labels(Box<str>);

impl Labels {
    /// `name="value",...`, escaped; empty without labels.
    pub fn text(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each label's name and its value as written, still escaped.
    pub fn escaped(&self) -> impl Iterator<Item = (&str, &str)> {
        self.escaped_at().map(|(name, value)| (name, &self.0[value]))
    }

    /// Each label's name and where its value, still escaped, lies in [`Labels::text`].
    pub fn escaped_at(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        let mut at = 0;
        std::iter::from_fn(move || {
            let rest = &self.0[at..];
            // Names have no `=`; a value starts with a quote.
            let (name, _) = rest.split_once('=')?;
            let start = at + name.len() + 2;
            // The value ends at the first quote not escaped by a backslash.
            let bytes = self.0.as_bytes();
            let mut end = start;
            while bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            // Past the closing quote and the comma before the next label.
            at = (end + 2).min(self.0.len());
            Some((name, start..end))
        })
    }

    /// Each label's name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.escaped().map(|(name, value)| (name, unescape(value)))
    }

    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect()
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(labels: &BTreeMap<String, String>) -> Labels {
        let mut text = String::new();
        for (name, value) in labels {
            if !text.is_empty() {
                text.push(',');
            }
            push_label(&mut text, name, value);
        }
        Labels(text.into_boxed_str())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(labels: BTreeMap<String, String>) -> Labels {
        Labels::from(&labels)
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(labels: Labels) -> BTreeMap<String, String> {
        labels.to_map()
    }
}

/// A value as written (`\\`, `\"` and `\n` escaped) back to what it was.
fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains('\\') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// Appends `name="value"` with the value escaped as the text formats require.
pub fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    // Nearly every value needs no escaping: copy it whole. Checked without
    // stopping at the first hit, so the compiler checks many bytes at once
    // (values are short; this scan was a tenth of a scrape's snapshot).
    if !value
        .bytes()
        .fold(false, |escape, b| escape | matches!(b, b'\\' | b'"' | b'\n'))
    {
        out.push_str(value);
        out.push('"');
        return;
    }
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever the values (quotes, backslashes, newlines, commas,
        /// `="`), the labels read back as they were given.
        #[test]
        fn labels_read_back_as_given(pairs in proptest::collection::btree_map("[a-z_]{1,8}", "[a-zé\"\\\\\n,=]{0,12}", 0..4)) {
            let labels = Labels::from(&pairs);
            proptest::prop_assert_eq!(labels.to_map(), pairs.clone());
            for (name, value) in &pairs {
                let got = labels.get(name);
                proptest::prop_assert_eq!(got.as_deref(), Some(value.as_str()));
            }
            proptest::prop_assert_eq!(labels.is_empty(), pairs.is_empty());
        }
    }

    #[test]
    fn the_text_is_what_metrics_writes() {
        let map: BTreeMap<String, String> = [("provider", "anth\"ropic"), ("key_id", "k\\2,x=\"y\"")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let labels = Labels::from(&map);
        assert_eq!(labels.text(), r#"key_id="k\\2,x=\"y\"",provider="anth\"ropic""#);
        assert_eq!(labels.escaped().nth(1), Some(("provider", r#"anth\"ropic"#)));
        assert_eq!(labels.get("key_id").as_deref(), Some("k\\2,x=\"y\""));
        assert_eq!(labels.get("service"), None);
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
    }
}
