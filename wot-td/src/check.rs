//! Checking a document that may be broken: every problem of every stage in one pass.
//!
//! [`Document::from_slice`] stops at the first problem, because it must return a model
//! or an error. [`Document::check`] instead reads the JSON leniently: each structural
//! problem (a term of the wrong type, a missing term) is reported, the offending member is
//! taken out or a neutral stand-in put in, and reading goes on; the model that results is
//! then validated like any other, leaving out findings about the members it repaired.

use serde_json::{Map, Value, json};

use crate::diagnostic::{Diagnostic, Rule, sort};
use crate::model::{TD_CONTEXT_1_1, Thing};
use crate::parse::{
    Document, DocumentKind, Inner, KeyOrder, PathSeg, ThingModel, has_duplicate_keys,
    is_thing_model, not_an_object, parse_value, read_thing, segments_to_string, strip_bom,
};
use crate::pattern::ValidationLimits;

/// At most this many structural problems are reported for one document (each costs a
/// pass over the document).
pub const MAX_STRUCTURE_PROBLEMS: usize = 64;

/// Everything [`Document::check`] found in one document.
///
/// ```
/// use wot_td::{Document, Rule};
/// // No `security`, a TD 0.x `@context`, and an unknown operation: all three are found.
/// let report = Document::check(br#"{
///   "@context": "https://w3c.github.io/wot/w3c-wot-td-context.jsonld",
///   "title": "Lamp",
///   "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
///   "actions": {"toggle": {"forms": [{"href": "http://lamp/toggle", "op": "readaction"}]}}
/// }"#);
/// assert!(!report.is_valid());
/// assert!(report.document.is_none());
/// let rules: Vec<Rule> = report.diagnostics.iter().map(|d| d.rule).collect();
/// assert!(rules.contains(&Rule::TermMissing)); // security
/// assert!(rules.contains(&Rule::TermValue)); // readaction
/// assert!(rules.contains(&Rule::Context));
/// assert!(report.diagnostics.iter().all(|d| d.position.is_some()));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// TD or TM, or `None` when the input is not a JSON object.
    pub kind: Option<DocumentKind>,
    /// The parsed document, when it parses (it may still have validation errors): the
    /// same result as [`Document::from_slice`] gives.
    pub document: Option<Document>,
    /// Every finding, errors first, each in the order of its place in the text.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// True when no diagnostic is an error.
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl Document {
    /// Parses and validates `input` and reports every problem at once: invalid JSON,
    /// repeated keys, terms of the wrong type or missing, and everything
    /// [`Document::validate`] checks, each with its JSON path, line and column.
    ///
    /// Where [`Document::from_slice`] stops at the first problem of reading,
    /// this reads on past it. The `json-schema` feature adds the official JSON Schema's
    /// findings for a TD.
    pub fn check(input: &[u8]) -> Report {
        Self::check_with_limits(input, &ValidationLimits::DEFAULT)
    }

    /// [`Document::check`] with other limits on checking data schemas.
    pub fn check_with_limits(input: &[u8], limits: &ValidationLimits) -> Report {
        let (text, bom) = strip_bom(input);
        // The common case, a well-formed TD, reads in one pass; the rest takes the
        // lenient path below.
        if let Some(doc) = Document::from_slice_fast(text, bom.clone()) {
            let mut diagnostics = doc.validate_with_limits(limits);
            sort(&mut diagnostics);
            return Report {
                kind: Some(DocumentKind::Td),
                document: Some(doc),
                diagnostics,
            };
        }
        let mut report = Report {
            kind: None,
            document: None,
            diagnostics: bom.into_iter().collect(),
        };
        let value = match parse_value(text) {
            Ok(value) => value,
            Err(e) => {
                report.diagnostics.push(e.to_diagnostic());
                return report;
            }
        };
        if has_duplicate_keys(text) {
            report.diagnostics.extend(crate::source::duplicates(text));
        }
        let mut broken = !report.is_valid();
        let Value::Object(map) = value else {
            report.diagnostics.push(not_an_object().to_diagnostic());
            return report;
        };
        if is_thing_model(&map) {
            report.kind = Some(DocumentKind::Tm);
            let model = ThingModel { json: map };
            report.diagnostics.extend(model.validate());
            if !broken {
                report.document = Some(Document(Inner::Tm(model)));
            }
        } else {
            report.kind = Some(DocumentKind::Td);
            let notes = report.diagnostics.clone();
            #[cfg(feature = "json-schema")]
            report
                .diagnostics
                .extend(crate::json_schema::validate_td_json(&Value::Object(
                    map.clone(),
                )));
            let lenient = read_leniently(map);
            broken |= !lenient.problems.is_empty();
            report.diagnostics.extend(lenient.problems);
            if let Some(thing) = lenient.thing {
                let mut found = thing.validate_with_limits(limits);
                found.retain(|d| !lenient.repaired.iter().any(|r| is_within(&d.path, r)));
                report.diagnostics.extend(found);
                if !broken {
                    report.document = Some(Document(Inner::Td(
                        Box::new(thing),
                        KeyOrder::text(text, notes),
                    )));
                }
            }
        }
        crate::source::locate_all(text, &mut report.diagnostics);
        sort(&mut report.diagnostics);
        report
    }
}

/// What reading past structural problems gave.
struct Lenient {
    /// The model, once every problem was repaired (`None` when one could not be).
    thing: Option<Thing>,
    problems: Vec<Diagnostic>,
    /// The paths taken out or stood in for: later findings there are not real.
    repaired: Vec<String>,
}

/// Reads a [`Thing`] from `map`, reporting each structural problem and repairing it
/// until the model reads.
fn read_leniently(map: Map<String, Value>) -> Lenient {
    let mut value = Value::Object(map);
    let mut out = Lenient {
        thing: None,
        problems: Vec::new(),
        repaired: Vec::new(),
    };
    // A removed required term comes back as "missing" and is stood in for without a
    // second report, so the rounds can outnumber the problems.
    for _ in 0..MAX_STRUCTURE_PROBLEMS * 2 {
        let problem = match read_thing(&value) {
            Ok(thing) => {
                out.thing = Some(thing);
                return out;
            }
            Err(problem) => problem,
        };
        if out.problems.len() >= MAX_STRUCTURE_PROBLEMS {
            break;
        }
        let repaired = match &problem.missing {
            Some(term) => {
                let path = problem.path();
                if !out.repaired.iter().any(|r| is_within(&path, r)) {
                    out.problems.push(problem.to_diagnostic());
                }
                let inserted = stand_in(term).and_then(|v| {
                    lookup_mut(&mut value, &problem.segments)?
                        .as_object_mut()?
                        .insert(term.clone(), v);
                    Some(())
                });
                inserted.map(|()| path)
            }
            None => {
                out.problems.push(problem.to_diagnostic());
                take_out(&mut value, &problem.segments)
            }
        };
        match repaired {
            Some(path) => out.repaired.push(path),
            None => return out,
        }
    }
    out.problems.push(Diagnostic::error(
        Rule::TooManyProblems,
        "",
        format!(
            "more than {MAX_STRUCTURE_PROBLEMS} structural problems; the rest of the document was not checked"
        ),
    ));
    out
}

/// Takes the member that holds the value at `segments` out of its object (a broken
/// security scheme is replaced by a `nosec` one, so that the names using it stay
/// defined); returns its path.
fn take_out(value: &mut Value, segments: &[PathSeg]) -> Option<String> {
    let cut = segments
        .iter()
        .rposition(|s| matches!(s, PathSeg::Key(_)))?;
    let mut target = segments.get(..=cut)?;
    if let [PathSeg::Key(first), _, ..] = target
        && first == "securityDefinitions"
    {
        target = segments.get(..2)?;
        *lookup_mut(value, target)? = json!({"scheme": "nosec"});
        return Some(segments_to_string(target));
    }
    let (PathSeg::Key(key), parent) = target.split_last()? else {
        return None;
    };
    lookup_mut(value, parent)?
        .as_object_mut()?
        .shift_remove(key)?;
    Some(segments_to_string(target))
}

/// A neutral value for a missing required term, so reading can go on.
fn stand_in(term: &str) -> Option<Value> {
    Some(match term {
        "@context" => json!(TD_CONTEXT_1_1),
        "title" | "href" => json!(""),
        "security" | "forms" => json!([]),
        "securityDefinitions" => json!({}),
        "scheme" => json!("nosec"),
        "contentType" => json!("application/json"),
        _ => return None,
    })
}

fn lookup_mut<'a>(value: &'a mut Value, segments: &[PathSeg]) -> Option<&'a mut Value> {
    segments.iter().try_fold(value, |v, s| match s {
        PathSeg::Key(k) => v.get_mut(k),
        PathSeg::Index(i) => v.get_mut(i),
    })
}

/// True when `path` is `ancestor` or inside it.
fn is_within(path: &str, ancestor: &str) -> bool {
    match path.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || ancestor.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_means_at_or_below() {
        assert!(is_within("a.b", "a"));
        assert!(is_within("a[0]", "a"));
        assert!(is_within("a", "a"));
        assert!(!is_within("ab", "a"));
        assert!(is_within("anything", ""));
    }
}
