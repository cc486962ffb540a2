//! Summary templates: text with `{{name}}` placeholders, parsed once when a rule is added.

use std::collections::BTreeMap;

/// The values a summary can refer to.
pub(crate) struct Vars<'a> {
    pub(crate) rule: &'a str,
    pub(crate) thing: &'a str,
    pub(crate) property: &'a str,
    pub(crate) value: Option<&'a serde_json::Value>,
    pub(crate) unit: Option<&'a str>,
    pub(crate) severity: &'a str,
    pub(crate) labels: &'a BTreeMap<String, String>,
    /// The latest gap between updates: from the latest update (or the start of watching) to
    /// now, or, at the instant an update arrives, the gap that it ended.
    pub(crate) no_data_for: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Rule,
    Thing,
    Property,
    Value,
    Unit,
    Severity,
    NoDataFor,
    Label(String),
}

/// A parsed summary template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// The bytes to reserve for a rendering: the text, and room for typical values.
    capacity: usize,
    /// Whether a part is `{{no_data_for}}`.
    uses_no_data_for: bool,
}

/// Longest accepted template source, in bytes.
const MAX_TEMPLATE_LEN: usize = 4096;
/// Longest rendered summary, in bytes; longer ones are cut at a character boundary and end
/// with `…`. Values and labels come from Things and files, so the output needs its own bound.
pub(crate) const MAX_RENDERED_LEN: usize = 16 << 10;

/// Appends `text` to `out` without letting `out` pass [`MAX_RENDERED_LEN`] bytes; returns
/// false once the output is full (and marked with `…`).
#[inline]
fn push_bounded(out: &mut String, text: &str) -> bool {
    let room = MAX_RENDERED_LEN.saturating_sub(out.len());
    if text.len() <= room {
        out.push_str(text);
        return true;
    }
    out.push_str(truncate(text, room.saturating_sub('…'.len_utf8())));
    out.push('…');
    false
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    text.get(..text.floor_char_boundary(max))
        .unwrap_or_default()
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(format!(
                "summary is {} bytes long; at most {MAX_TEMPLATE_LEN} are allowed",
                text.len()
            ));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some((before, after)) = rest.split_once("{{") {
            if !before.is_empty() {
                parts.push(Part::Text(before.to_owned()));
            }
            let (name, tail) = after.split_once("}}").ok_or_else(|| {
                format!(
                    "unclosed `{{{{` at byte {}",
                    text.len() - rest.len() + before.len()
                )
            })?;
            let name = name.trim();
            parts.push(match name {
                "rule" => Part::Rule,
                "thing" => Part::Thing,
                "property" => Part::Property,
                "value" => Part::Value,
                "unit" => Part::Unit,
                "severity" => Part::Severity,
                "no_data_for" => Part::NoDataFor,
                _ => match name.strip_prefix("labels.") {
                    Some(label) if !label.is_empty() => Part::Label(label.to_owned()),
                    _ => {
                        return Err(format!(
                            "unknown placeholder `{{{{{name}}}}}`; use rule, thing, property, \
                             value, unit, severity, no_data_for or labels.NAME"
                        ));
                    }
                },
            });
            rest = tail;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let text_len: usize = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                _ => 24,
            })
            .sum();
        Ok(Template {
            uses_no_data_for: parts.contains(&Part::NoDataFor),
            capacity: text_len.min(MAX_RENDERED_LEN),
            parts,
        })
    }

    /// Whether the template shows `{{no_data_for}}` (the other values cost nothing to pass).
    pub(crate) fn uses_no_data_for(&self) -> bool {
        self.uses_no_data_for
    }

    /// Renders the template; a missing value or unit renders as nothing, and trailing
    /// whitespace left by that is trimmed. The result is at most [`MAX_RENDERED_LEN`] bytes.
    #[cfg(test)]
    pub(crate) fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        self.render_into(vars, &mut out);
        out
    }

    /// Renders the template into `out`, which it clears first (its buffer is reused).
    pub(crate) fn render_into(&self, vars: &Vars<'_>, out: &mut String) {
        out.clear();
        out.reserve(self.capacity);
        for part in &self.parts {
            let more = match part {
                Part::Text(t) => push_bounded(out, t),
                Part::Rule => push_bounded(out, vars.rule),
                Part::Thing => push_bounded(out, vars.thing),
                Part::Property => push_bounded(out, vars.property),
                Part::Value => match vars.value {
                    Some(serde_json::Value::String(s)) => push_bounded(out, s),
                    // Scalars are short: written in place, as JSON writes them.
                    Some(serde_json::Value::Number(n)) => push_number(out, n),
                    Some(serde_json::Value::Bool(b)) => {
                        push_bounded(out, if *b { "true" } else { "false" })
                    }
                    Some(serde_json::Value::Null) => push_bounded(out, "null"),
                    Some(v) => push_bounded(out, &bounded_json(v)),
                    None => true,
                },
                Part::Unit => push_bounded(out, vars.unit.unwrap_or("")),
                Part::Severity => push_bounded(out, vars.severity),
                Part::NoDataFor => {
                    // Whole seconds: `5m`, `1m 30s`, not nanoseconds.
                    let secs = std::time::Duration::from_secs(vars.no_data_for.as_secs());
                    push_bounded(out, &humantime::format_duration(secs).to_string())
                }
                Part::Label(name) => {
                    push_bounded(out, vars.labels.get(name).map(String::as_str).unwrap_or(""))
                }
            };
            if !more {
                return;
            }
        }
        out.truncate(out.trim_end().len());
    }
}

/// Appends `n` as JSON writes it (with the same formatters), without a temporary string.
fn push_number(out: &mut String, n: &serde_json::Number) -> bool {
    if let Some(u) = n.as_u64() {
        push_bounded(out, itoa::Buffer::new().format(u))
    } else if let Some(i) = n.as_i64() {
        push_bounded(out, itoa::Buffer::new().format(i))
    } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
        if f.fract() == 0.0 && f.abs() < 1e15 && !(f == 0.0 && f.is_sign_negative()) {
            // JSON writes an integral float of at most 15 digits as the digits and `.0`.
            // Exact: the float is integral and below 1e15.
            let i = f as i64;
            push_bounded(out, itoa::Buffer::new().format(i)) && push_bounded(out, ".0")
        } else {
            push_bounded(out, zmij::Buffer::new().format_finite(f))
        }
    } else {
        push_bounded(out, &bounded_json(&serde_json::Value::Number(n.clone())))
    }
}

/// `value` as JSON text, written only up to just past [`MAX_RENDERED_LEN`] bytes: a huge object
/// or array from a Thing is not serialized in full to be cut afterwards.
pub(crate) fn bounded_json(value: &serde_json::Value) -> String {
    struct Bounded(Vec<u8>);
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = (MAX_RENDERED_LEN + 4).saturating_sub(self.0.len());
            if room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = buf.len().min(room);
            self.0.extend_from_slice(buf.get(..n).unwrap_or(buf));
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Bounded(Vec::new());
    let _ = serde_json::to_writer(&mut w, value);
    match String::from_utf8(w.0) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_rejects_unknown_ones() {
        let t = Template::parse("{{thing}} {{ value }} {{unit}} ({{labels.team}})").unwrap();
        let labels = BTreeMap::from([("team".to_owned(), "cold".to_owned())]);
        let v = serde_json::json!(12.5);
        let vars = Vars {
            rule: "r",
            thing: "fridge-1",
            property: "temperature",
            value: Some(&v),
            unit: Some("°C"),
            severity: "warning",
            labels: &labels,
            no_data_for: std::time::Duration::ZERO,
        };
        assert_eq!(t.render(&vars), "fridge-1 12.5 °C (cold)");
        assert!(
            Template::parse("{{nope}}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(
            Template::parse("a {{thing")
                .unwrap_err()
                .contains("unclosed")
        );
    }

    #[test]
    fn numbers_render_as_json_writes_them() {
        let t = Template::parse("{{value}}").unwrap();
        let labels = BTreeMap::new();
        for v in [
            serde_json::json!(0),
            serde_json::json!(-5),
            serde_json::json!(12.5),
            serde_json::json!(0.1 + 0.2),
            serde_json::json!(1e20),
            serde_json::json!(-1.5e-7),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(f64::MAX),
            serde_json::json!(9.0),
            serde_json::json!(-12.0),
            serde_json::json!(0.0),
            serde_json::json!(-0.0),
            serde_json::json!(999_999_999_999_999.0),
            serde_json::json!(1e15),
            serde_json::json!(-1e15),
            serde_json::json!(1e16),
            serde_json::json!(123_456_789.5),
        ] {
            let vars = Vars {
                rule: "r",
                thing: "t",
                property: "p",
                value: Some(&v),
                unit: None,
                severity: "warning",
                labels: &labels,
                no_data_for: std::time::Duration::ZERO,
            };
            assert_eq!(t.render(&vars), v.to_string());
        }
    }

    #[test]
    fn rendering_is_bounded() {
        let t = Template::parse("{{value}} {{value}}").unwrap();
        let labels = BTreeMap::new();
        let big = serde_json::json!("é".repeat(MAX_RENDERED_LEN));
        let vars = Vars {
            rule: "r",
            thing: "t",
            property: "p",
            value: Some(&big),
            unit: None,
            severity: "warning",
            labels: &labels,
            no_data_for: std::time::Duration::ZERO,
        };
        let out = t.render(&vars);
        assert!(out.len() <= MAX_RENDERED_LEN, "{}", out.len());
        assert!(out.ends_with('…'));
        let array = serde_json::Value::Array(vec![serde_json::json!(123456); 100_000]);
        let out = t.render(&Vars {
            value: Some(&array),
            ..vars
        });
        assert!(out.len() <= MAX_RENDERED_LEN, "{}", out.len());
    }
}
