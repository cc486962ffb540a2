//! Filters on event data: declarative (serde, for config files) and closures.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::EventRecord;

/// Longest regex pattern accepted by [`FilterExpr::Matches`], in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Limit on the compiled size of one regex (bytes), so a pathological pattern is refused.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Deepest nesting of `all`/`any`/`not` accepted by [`FilterExpr::compile`].
pub const MAX_FILTER_DEPTH: usize = 64;

/// A declarative filter on the JSON data of an event, as written in a config file.
///
/// Each test names a [JSON pointer](https://www.rfc-editor.org/rfc/rfc6901) into the data
/// (`""` is the whole value, `/severity`, `/readings/0/value`) and a comparison. Tests
/// combine with `all`, `any` and `not`. In JSON:
///
/// ```json
/// {"all": [
///   {"eq": {"pointer": "/severity", "value": "critical"}},
///   {"not": {"lt": {"pointer": "/temperature", "value": 80}}}
/// ]}
/// ```
///
/// Semantics: `eq`/`ne` compare JSON values (numbers by value, so `1` equals `1.0`);
/// `gt`/`ge`/`lt`/`le` compare two numbers or two strings (a missing value or mixed types
/// never match, `ne` included: a missing value matches only `not` and `exists: false`);
/// `contains` is substring for strings and element membership for arrays; `matches` runs a
/// regex on a string; `exists` checks that the pointer resolves.
///
/// Compile it once with [`FilterExpr::compile`] (or deserialize a [`Filter`] directly).
///
/// # Examples
///
/// ```
/// use wot_events::FilterExpr;
/// use serde_json::json;
///
/// let expr: FilterExpr = serde_json::from_value(json!(
///     {"any": [{"eq": {"pointer": "/level", "value": "alarm"}},
///              {"gt": {"pointer": "/temp", "value": 80}}]}
/// )).unwrap();
/// let filter = expr.compile().unwrap();
/// assert!(filter.matches_data(&json!({"level": "info", "temp": 81.5})));
/// assert!(!filter.matches_data(&json!({"level": "info", "temp": 20})));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FilterExpr {
    /// Every inner filter matches (an empty list matches everything).
    All(Vec<FilterExpr>),
    /// At least one inner filter matches (an empty list matches nothing).
    Any(Vec<FilterExpr>),
    /// The inner filter does not match.
    Not(Box<FilterExpr>),
    /// The value at `pointer` equals `value`.
    Eq(Compare),
    /// The value at `pointer` exists and differs from `value`.
    Ne(Compare),
    /// The value at `pointer` is greater than `value`.
    Gt(Compare),
    /// The value at `pointer` is greater than or equal to `value`.
    Ge(Compare),
    /// The value at `pointer` is less than `value`.
    Lt(Compare),
    /// The value at `pointer` is less than or equal to `value`.
    Le(Compare),
    /// The string at `pointer` contains the string `value`, or the array there has an element
    /// equal to `value`.
    Contains(Compare),
    /// The string at `pointer` matches the regular expression `regex` (`regex` crate syntax,
    /// unanchored; at most [`MAX_REGEX_LEN`] bytes).
    Matches(RegexTest),
    /// The pointer resolves (or, with `"exists": false`, does not).
    Exists(ExistsTest),
}

/// A comparison of the value at a JSON pointer with a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// JSON pointer into the event data (`""` for the whole value).
    pub pointer: String,
    /// The constant to compare with.
    pub value: Value,
}

/// A regular expression test on the string at a JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexTest {
    /// JSON pointer into the event data.
    pub pointer: String,
    /// The pattern.
    pub regex: String,
}

/// An existence test for a JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistsTest {
    /// JSON pointer into the event data.
    pub pointer: String,
    /// `true` (the default) to require the value, `false` to require its absence.
    #[serde(default = "default_true")]
    pub exists: bool,
}

fn default_true() -> bool {
    true
}

/// Why a [`FilterExpr`] could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A pointer is neither empty nor starts with `/`.
    #[error("filter at {path}: JSON pointer {pointer:?} must be empty or start with '/'")]
    BadPointer {
        /// Where in the filter (e.g. `all[1].not.eq`).
        path: String,
        /// The pointer as written.
        pointer: String,
    },
    /// A regex is too long, too big once compiled, or invalid.
    #[error("filter at {path}: regex rejected: {reason}")]
    BadRegex {
        /// Where in the filter.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `all`/`any`/`not` nest deeper than [`MAX_FILTER_DEPTH`].
    #[error("filter at {path}: nested deeper than {MAX_FILTER_DEPTH} levels")]
    TooDeep {
        /// Where in the filter.
        path: String,
    },
}

impl FilterExpr {
    /// Checks the pointers and compiles the regexes.
    ///
    /// # Errors
    ///
    /// [`FilterError`] naming the place in the filter: a pointer that does not start with
    /// `/`, a regex that is invalid, longer than [`MAX_REGEX_LEN`] or too big once compiled,
    /// or nesting deeper than [`MAX_FILTER_DEPTH`].
    pub fn compile(&self) -> Result<Filter, FilterError> {
        let node = compile_node(self, "", 0)?;
        Ok(Filter {
            kind: FilterKind::Expr {
                node: Arc::new(node),
                expr: Arc::new(self.clone()),
            },
        })
    }
}

#[derive(Debug)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Cmp(String, CmpOp, Value),
    Matches(String, Regex),
    Exists(String, bool),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

fn check_pointer(pointer: &str, path: &str) -> Result<String, FilterError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(pointer.to_owned())
    } else {
        Err(FilterError::BadPointer {
            path: path.to_owned(),
            pointer: pointer.to_owned(),
        })
    }
}

fn compile_node(expr: &FilterExpr, path: &str, depth: usize) -> Result<Node, FilterError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(FilterError::TooDeep {
            path: path.to_owned(),
        });
    }
    let list = |items: &[FilterExpr], name: &str| -> Result<Vec<Node>, FilterError> {
        items
            .iter()
            .enumerate()
            .map(|(i, e)| compile_node(e, &join(path, &format!("{name}[{i}]")), depth + 1))
            .collect()
    };
    let cmp = |c: &Compare, op: CmpOp, name: &str| -> Result<Node, FilterError> {
        let p = check_pointer(&c.pointer, &join(path, name))?;
        Ok(Node::Cmp(p, op, c.value.clone()))
    };
    Ok(match expr {
        FilterExpr::All(v) => Node::All(list(v, "all")?),
        FilterExpr::Any(v) => Node::Any(list(v, "any")?),
        FilterExpr::Not(inner) => Node::Not(Box::new(compile_node(
            inner,
            &join(path, "not"),
            depth + 1,
        )?)),
        FilterExpr::Eq(c) => cmp(c, CmpOp::Eq, "eq")?,
        FilterExpr::Ne(c) => cmp(c, CmpOp::Ne, "ne")?,
        FilterExpr::Gt(c) => cmp(c, CmpOp::Gt, "gt")?,
        FilterExpr::Ge(c) => cmp(c, CmpOp::Ge, "ge")?,
        FilterExpr::Lt(c) => cmp(c, CmpOp::Lt, "lt")?,
        FilterExpr::Le(c) => cmp(c, CmpOp::Le, "le")?,
        FilterExpr::Contains(c) => cmp(c, CmpOp::Contains, "contains")?,
        FilterExpr::Matches(r) => {
            let here = join(path, "matches");
            let p = check_pointer(&r.pointer, &here)?;
            if r.regex.len() > MAX_REGEX_LEN {
                return Err(FilterError::BadRegex {
                    path: here,
                    reason: format!(
                        "pattern is {} bytes, the limit is {MAX_REGEX_LEN}",
                        r.regex.len()
                    ),
                });
            }
            let re = regex::RegexBuilder::new(&r.regex)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| FilterError::BadRegex {
                    path: here,
                    reason: e.to_string(),
                })?;
            Node::Matches(p, re)
        }
        FilterExpr::Exists(e) => {
            Node::Exists(check_pointer(&e.pointer, &join(path, "exists"))?, e.exists)
        }
    })
}

/// Equality of JSON values where numbers compare by value (`1 == 1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            // Integers beyond f64 precision: fall back to exact comparison.
            (Some(fx), Some(fy)) if x.is_f64() || y.is_f64() => fx == fy,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                Some(i.cmp(&j))
            } else {
                x.as_f64()?.partial_cmp(&y.as_f64()?)
            }
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Node {
    fn eval(&self, data: &Value) -> bool {
        match self {
            Node::All(v) => v.iter().all(|n| n.eval(data)),
            Node::Any(v) => v.iter().any(|n| n.eval(data)),
            Node::Not(n) => !n.eval(data),
            Node::Exists(p, want) => data.pointer(p).is_some() == *want,
            Node::Matches(p, re) => data
                .pointer(p)
                .and_then(Value::as_str)
                .is_some_and(|s| re.is_match(s)),
            Node::Cmp(p, op, want) => {
                let Some(got) = data.pointer(p) else {
                    return false;
                };
                match op {
                    CmpOp::Eq => json_eq(got, want),
                    CmpOp::Ne => !json_eq(got, want),
                    CmpOp::Gt => order(got, want) == Some(Ordering::Greater),
                    CmpOp::Ge => {
                        matches!(order(got, want), Some(Ordering::Greater | Ordering::Equal))
                    }
                    CmpOp::Lt => order(got, want) == Some(Ordering::Less),
                    CmpOp::Le => {
                        matches!(order(got, want), Some(Ordering::Less | Ordering::Equal))
                    }
                    CmpOp::Contains => match (got, want) {
                        (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
                        (Value::Array(items), w) => items.iter().any(|i| json_eq(i, w)),
                        _ => false,
                    },
                }
            }
        }
    }
}

type Predicate = dyn Fn(&EventRecord) -> bool + Send + Sync;

/// A compiled filter on [`EventRecord`]s: a declarative [`FilterExpr`] (applied to the
/// record's data) or a closure (applied to the whole record).
///
/// Cheap to clone. It deserializes from the same text as [`FilterExpr`] (compiling it), so a
/// config struct can hold a `Filter` field directly.
///
/// # Examples
///
/// ```
/// use wot_events::Filter;
///
/// let only_lamp = Filter::from_fn(|r| r.thing_id == "urn:dev:lamp");
/// let hot: Filter = serde_json::from_str(r#"{"ge": {"pointer": "/t", "value": 30}}"#).unwrap();
/// assert!(hot.matches_data(&serde_json::json!({"t": 31})));
/// # let _ = only_lamp;
/// ```
#[derive(Clone)]
pub struct Filter {
    kind: FilterKind,
}

#[derive(Clone)]
enum FilterKind {
    Expr {
        node: Arc<Node>,
        expr: Arc<FilterExpr>,
    },
    Fn(Arc<Predicate>),
}

impl Filter {
    /// A filter from a closure over the whole record.
    pub fn from_fn(f: impl Fn(&EventRecord) -> bool + Send + Sync + 'static) -> Self {
        Filter {
            kind: FilterKind::Fn(Arc::new(f)),
        }
    }

    /// Whether the record passes.
    pub fn matches(&self, record: &EventRecord) -> bool {
        match &self.kind {
            FilterKind::Expr { node, .. } => node.eval(&record.data),
            FilterKind::Fn(f) => f(record),
        }
    }

    /// Whether a bare data value passes a declarative filter. A closure filter has no record
    /// to look at here and answers `true`.
    pub fn matches_data(&self, data: &Value) -> bool {
        match &self.kind {
            FilterKind::Expr { node, .. } => node.eval(data),
            FilterKind::Fn(_) => true,
        }
    }

    /// The declarative expression this filter was compiled from, if any.
    pub fn expr(&self) -> Option<&FilterExpr> {
        match &self.kind {
            FilterKind::Expr { expr, .. } => Some(expr),
            FilterKind::Fn(_) => None,
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FilterKind::Expr { expr, .. } => f.debug_tuple("Filter").field(expr).finish(),
            FilterKind::Fn(_) => f.write_str("Filter(<closure>)"),
        }
    }
}

impl TryFrom<FilterExpr> for Filter {
    type Error = FilterError;
    fn try_from(expr: FilterExpr) -> Result<Self, Self::Error> {
        expr.compile()
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expr = FilterExpr::deserialize(d)?;
        expr.compile().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        serde_json::from_value::<FilterExpr>(v)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn comparisons_on_numbers_and_strings() {
        let d = json!({"t": 21.5, "n": 3, "s": "beta", "tags": ["a", "b"], "nested": {"x": null}});
        let cases = [
            (json!({"eq": {"pointer": "/n", "value": 3.0}}), true),
            (json!({"eq": {"pointer": "/n", "value": 4}}), false),
            (json!({"ne": {"pointer": "/n", "value": 4}}), true),
            (json!({"ne": {"pointer": "/missing", "value": 4}}), false),
            (json!({"gt": {"pointer": "/t", "value": 21}}), true),
            (json!({"gt": {"pointer": "/t", "value": 21.5}}), false),
            (json!({"ge": {"pointer": "/t", "value": 21.5}}), true),
            (json!({"lt": {"pointer": "/n", "value": 3}}), false),
            (json!({"le": {"pointer": "/n", "value": 3}}), true),
            (json!({"gt": {"pointer": "/s", "value": "alpha"}}), true),
            (json!({"lt": {"pointer": "/s", "value": 5}}), false),
            (json!({"contains": {"pointer": "/s", "value": "et"}}), true),
            (
                json!({"contains": {"pointer": "/tags", "value": "b"}}),
                true,
            ),
            (
                json!({"contains": {"pointer": "/tags", "value": "c"}}),
                false,
            ),
            (json!({"matches": {"pointer": "/s", "regex": "^b.t"}}), true),
            (json!({"matches": {"pointer": "/n", "regex": "3"}}), false),
            (json!({"exists": {"pointer": "/nested/x"}}), true),
            (json!({"exists": {"pointer": "/nested/y"}}), false),
            (
                json!({"exists": {"pointer": "/nested/y", "exists": false}}),
                true,
            ),
            (json!({"eq": {"pointer": "", "value": {"n": 3}}}), false),
        ];
        for (expr, want) in cases {
            assert_eq!(f(expr.clone()).matches_data(&d), want, "{expr}");
        }
    }

    #[test]
    fn combinators() {
        let d = json!({"level": "warn", "t": 50});
        assert!(f(json!({"all": []})).matches_data(&d));
        assert!(!f(json!({"any": []})).matches_data(&d));
        let e = json!({"all": [
            {"any": [{"eq": {"pointer": "/level", "value": "warn"}},
                     {"eq": {"pointer": "/level", "value": "error"}}]},
            {"not": {"lt": {"pointer": "/t", "value": 40}}}
        ]});
        assert!(f(e.clone()).matches_data(&d));
        assert!(!f(e).matches_data(&json!({"level": "warn", "t": 39})));
    }

    #[test]
    fn big_integers_compare_exactly() {
        let d = json!({"n": 9007199254740993_u64});
        assert!(
            !f(json!({"eq": {"pointer": "/n", "value": 9007199254740992_u64}})).matches_data(&d)
        );
        assert!(
            f(json!({"gt": {"pointer": "/n", "value": 9007199254740992_u64}})).matches_data(&d)
        );
    }

    #[test]
    fn compile_errors_name_the_place() {
        let e: FilterExpr =
            serde_json::from_value(json!({"all": [{"eq": {"pointer": "/a", "value": 1}}, {"not": {"eq": {"pointer": "a", "value": 1}}}]}))
                .unwrap();
        let err = e.compile().unwrap_err();
        assert_eq!(
            err,
            FilterError::BadPointer {
                path: "all[1].not.eq".into(),
                pointer: "a".into()
            }
        );
        let e: FilterExpr =
            serde_json::from_value(json!({"matches": {"pointer": "/a", "regex": "("}})).unwrap();
        assert!(matches!(e.compile(), Err(FilterError::BadRegex { .. })));
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        let e = FilterExpr::Matches(RegexTest {
            pointer: "/a".into(),
            regex: long,
        });
        assert!(e.compile().unwrap_err().to_string().contains("limit"));
        // A pattern that is short but explodes when compiled.
        let e = FilterExpr::Matches(RegexTest {
            pointer: "/a".into(),
            regex: r"\w{1000}{1000}".into(),
        });
        assert!(matches!(e.compile(), Err(FilterError::BadRegex { .. })));
    }

    #[test]
    fn depth_is_limited() {
        let mut e = FilterExpr::Exists(ExistsTest {
            pointer: "/a".into(),
            exists: true,
        });
        for _ in 0..=MAX_FILTER_DEPTH {
            e = FilterExpr::Not(Box::new(e));
        }
        assert!(matches!(e.compile(), Err(FilterError::TooDeep { .. })));
    }

    #[test]
    fn unknown_fields_and_ops_are_rejected() {
        assert!(
            serde_json::from_value::<FilterExpr>(
                json!({"eq": {"pointer": "/a", "value": 1, "x": 2}})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<FilterExpr>(json!({"like": {"pointer": "/a", "value": 1}}))
                .is_err()
        );
        let err =
            serde_json::from_value::<Filter>(json!({"matches": {"pointer": "/a", "regex": "["}}))
                .unwrap_err();
        assert!(err.to_string().contains("matches"), "{err}");
    }

    #[test]
    fn from_toml_config() {
        #[derive(Deserialize)]
        struct Config {
            filter: Filter,
        }
        let cfg: Config = toml::from_str(
            r#"
            [[filter.any]]
            eq = { pointer = "/severity", value = "critical" }
            [[filter.any]]
            matches = { pointer = "/message", regex = "(?i)overheat" }
            "#,
        )
        .unwrap();
        assert!(
            cfg.filter
                .matches_data(&json!({"severity": "info", "message": "OVERHEAT in bay 2"}))
        );
        assert!(
            !cfg.filter
                .matches_data(&json!({"severity": "info", "message": "ok"}))
        );
        assert!(cfg.filter.expr().is_some());
    }

    #[test]
    fn round_trips_through_serde() {
        let v = json!({"not": {"exists": {"pointer": "/x", "exists": true}}});
        let e: FilterExpr = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }
}
