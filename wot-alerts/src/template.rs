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
    Label(String),
}

/// A parsed summary template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Part>);

/// Longest accepted template source, in bytes.
const MAX_TEMPLATE_LEN: usize = 4096;

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
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                format!(
                    "unclosed `{{{{` at byte {}",
                    text.len() - rest.len() + start
                )
            })?;
            let name = after[..end].trim();
            parts.push(match name {
                "rule" => Part::Rule,
                "thing" => Part::Thing,
                "property" => Part::Property,
                "value" => Part::Value,
                "unit" => Part::Unit,
                "severity" => Part::Severity,
                _ => match name.strip_prefix("labels.") {
                    Some(label) if !label.is_empty() => Part::Label(label.to_owned()),
                    _ => {
                        return Err(format!(
                            "unknown placeholder `{{{{{name}}}}}`; use rule, thing, property, \
                             value, unit, severity or labels.NAME"
                        ));
                    }
                },
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    /// Renders the template; a missing value or unit renders as nothing, and trailing
    /// whitespace left by that is trimmed.
    pub(crate) fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Rule => out.push_str(vars.rule),
                Part::Thing => out.push_str(vars.thing),
                Part::Property => out.push_str(vars.property),
                Part::Value => match vars.value {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(v) => out.push_str(&v.to_string()),
                    None => {}
                },
                Part::Unit => out.push_str(vars.unit.unwrap_or("")),
                Part::Severity => out.push_str(vars.severity),
                Part::Label(name) => {
                    out.push_str(vars.labels.get(name).map(String::as_str).unwrap_or(""))
                }
            }
        }
        out.truncate(out.trim_end().len());
        out
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
}
