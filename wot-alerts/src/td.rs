//! Using Thing Descriptions: checking rules against them, units, and `invoke_action` targets.

use wot_td::{DataSchema, DataType, Thing};

use crate::rule::Rule;

/// A problem found by [`check_rules_against_tds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdFinding {
    /// The rule's id.
    pub rule: String,
    /// The thing's id (for `*` rules with no thing having the property, `*`).
    pub thing: String,
    /// The rule field concerned, e.g. `property` or `condition`.
    pub field: String,
    /// True for errors (the rule cannot work), false for warnings.
    pub is_error: bool,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TdFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.is_error { "error" } else { "warning" };
        write!(
            f,
            "{level}: rule `{}`, field `{}`, thing `{}`: {}",
            self.rule, self.field, self.thing, self.message
        )
    }
}

/// Checks rules against the TDs of the things they watch: the property exists (an error that
/// names the closest property name when one is near, "did you mean `pressure`?"), a
/// numeric condition is on a `number` or `integer` schema (an error), and a threshold outside the
/// schema's minimum/maximum (a warning: it can never or will always hold). Rules on things with
/// no TD given are not checked. A `pointer` is followed through object schemas' `properties`.
///
/// # Examples
/// ```
/// use wot_alerts::{check_rules_against_tds, Condition, Rule};
/// let td = r#"{
///   "@context": "https://www.w3.org/2022/wot/td/v1.1", "id": "urn:fridge-1", "title": "Fridge",
///   "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
///   "properties": {"temperature": {"type": "number", "minimum": -30, "maximum": 10,
///     "forms": [{"href": "http://fridge/temperature"}]}}
/// }"#.parse::<wot_td::Document>().unwrap();
/// let thing = td.as_thing().unwrap().clone();
/// let rule = Rule::new("hot", "urn:fridge-1", "temperature", Condition::Gt(40.0));
/// let findings = check_rules_against_tds(&[rule], &[thing]);
/// assert!(!findings[0].is_error);
/// assert!(findings[0].message.contains("above the maximum 10"));
/// ```
pub fn check_rules_against_tds(rules: &[Rule], things: &[Thing]) -> Vec<TdFinding> {
    let mut findings = Vec::new();
    for rule in rules {
        let targets: Vec<&Thing> = things
            .iter()
            .filter(|t| rule.thing == "*" || t.id.as_deref() == Some(rule.thing.as_str()))
            .collect();
        let mut found_any = false;
        for thing in &targets {
            let thing_id = thing.id.clone().unwrap_or_default();
            let finding = |field: &str, is_error: bool, message: String| TdFinding {
                rule: rule.id.clone(),
                thing: thing_id.clone(),
                field: field.to_owned(),
                is_error,
                message,
            };
            let Some(property) = thing.property(&rule.property) else {
                if rule.thing != "*" {
                    findings.push(finding(
                        "property",
                        true,
                        format!(
                            "the TD has no property `{}`{}",
                            rule.property,
                            did_you_mean(&rule.property, thing.properties().map(|(n, _)| n))
                        ),
                    ));
                }
                continue;
            };
            found_any = true;
            let Some(schema) = follow_pointer(&property.schema, rule.pointer.as_deref()) else {
                findings.push(finding(
                    "pointer",
                    false,
                    "the property's schema does not describe this pointer; not checked".into(),
                ));
                continue;
            };
            let numeric = matches!(schema.data_type, Some(DataType::Number | DataType::Integer));
            for (field, condition) in std::iter::once(("condition", &rule.condition))
                .chain(rule.clear.as_ref().map(|c| ("clear", c)))
                .chain(rule.escalate.iter().map(|e| ("escalate", &e.condition)))
            {
                if condition.is_numeric() && !numeric {
                    let ty = schema.data_type.map_or("untyped", DataType::as_str);
                    findings.push(finding(
                        field,
                        true,
                        format!("a numeric condition on a {ty} property"),
                    ));
                    continue;
                }
                let Some(range) = schema.numeric_range() else {
                    continue;
                };
                for t in condition.thresholds() {
                    if let Some(min) = range.min.filter(|min| t < *min) {
                        findings.push(finding(
                            field,
                            false,
                            format!("threshold {t} is below the minimum {min} of the property"),
                        ));
                    }
                    if let Some(max) = range.max.filter(|max| t > *max) {
                        findings.push(finding(
                            field,
                            false,
                            format!("threshold {t} is above the maximum {max} of the property"),
                        ));
                    }
                }
            }
        }
        if rule.thing == "*" && !found_any && !targets.is_empty() {
            findings.push(TdFinding {
                rule: rule.id.clone(),
                thing: "*".into(),
                field: "property".into(),
                is_error: true,
                message: format!(
                    "no TD given has a property `{}`{}",
                    rule.property,
                    did_you_mean(
                        &rule.property,
                        targets.iter().flat_map(|t| t.properties().map(|(n, _)| n))
                    )
                ),
            });
        }
    }
    findings
}

/// ` (did you mean `NAME`?)` for the candidate closest to `wanted`, when it is close: at most
/// a third of the name's characters (and at least one) differ, by edit distance or case.
fn did_you_mean<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let most = (wanted.chars().count() / 3).max(1);
    let wanted = wanted.to_lowercase();
    candidates
        .filter(|c| c.len() <= 256 && wanted.len() <= 256)
        .map(|c| (strsim::levenshtein(&wanted, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn follow_pointer<'a>(schema: &'a DataSchema, pointer: Option<&str>) -> Option<&'a DataSchema> {
    let Some(pointer) = pointer.filter(|p| !p.is_empty()) else {
        return Some(schema);
    };
    let mut current = schema;
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        current = current.properties.as_ref()?.get(&segment)?;
    }
    Some(current)
}

/// Sets the engine's units from a TD's property schemas.
#[cfg(feature = "manager")]
pub(crate) fn set_units(engine: &mut crate::Engine, thing: &Thing) {
    let Some(id) = &thing.id else { return };
    for (name, property) in thing.properties() {
        if let Some(unit) = property.schema.unit() {
            engine.set_unit(id.clone(), name, unit);
        }
    }
}

/// The URL of the best `invokeaction` form of `action` on the thing with id `thing`.
#[cfg(feature = "http-actions")]
pub(crate) fn action_url(
    things: &std::collections::HashMap<String, Thing>,
    thing: &str,
    action: &str,
) -> Result<wot_td::Url, String> {
    use wot_td::{Affordance, FormQuery, Operation};
    let td = things
        .get(thing)
        .ok_or_else(|| format!("no TD was given for thing `{thing}`"))?;
    let forms = td
        .forms_for(
            Affordance::Action(action),
            Operation::InvokeAction,
            &FormQuery::new(),
        )
        .map_err(|e| e.to_string())?;
    let best = forms
        .first()
        .ok_or_else(|| format!("action `{action}` of `{thing}` has no invokeaction form"))?;
    wot_td::Url::parse(best.url.as_str()).map_err(|e| format!("form URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pump() -> Thing {
        r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "id": "urn:pump", "title": "Pump",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
            "properties": {
              "pressure": {"type": "number", "forms": [{"href": "http://pump/pressure"}]},
              "flow": {"type": "number", "forms": [{"href": "http://pump/flow"}]}}}"#
            .parse::<wot_td::Document>()
            .expect("TD")
            .into_thing()
            .expect("a Thing")
    }

    #[test]
    fn a_misspelt_property_gets_the_closest_name() {
        use crate::Condition;
        let rules = [
            Rule::new("typo", "urn:pump", "presure", Condition::Gt(1.0)),
            Rule::new("case", "*", "Flow", Condition::Gt(1.0)),
            Rule::new("far", "urn:pump", "temperature", Condition::Gt(1.0)),
        ];
        let findings = check_rules_against_tds(&rules, &[pump()]);
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the TD has no property `presure` (did you mean `pressure`?)",
                "no TD given has a property `Flow` (did you mean `flow`?)",
                "the TD has no property `temperature`",
            ]
        );
    }
}
