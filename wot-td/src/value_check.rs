//! Checking a JSON value against a [`DataSchema`].

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde_json::{Number, Value};

use crate::MAX_DEPTH;
use crate::model::{DataSchema, DataType};
use crate::one_or_many::OneOrMany;
use crate::parse::push_key;

/// Largest compiled size of a `pattern` regular expression (1 MiB), so a hostile TD
/// cannot make pattern checks expensive.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// A value that does not satisfy a data schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValueError {
    /// Path inside the value, e.g. `readings[2].celsius` (empty: the value itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at {}: {}", self.path, self.message)
        }
    }
}

pub(crate) fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    equal_at(a, b, 0)
}

fn equal_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal_at(a, b, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equal_at(v, w, depth + 1)))
        }
        _ => a == b,
    }
}

/// A text form of a value in which values equal under [`json_equal`] are equal
/// (numbers by value, object keys sorted). Used to find duplicates in linear time.
pub(crate) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String, depth: usize) {
        if depth > MAX_DEPTH {
            out.push('…');
            return;
        }
        match v {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => out.push_str(&i.to_string()),
                (None, Some(u), _) => out.push_str(&u.to_string()),
                (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                    out.push_str(&(f as i64).to_string());
                }
                _ => out.push_str(&n.to_string()),
            },
            Value::Array(items) => {
                out.push('[');
                for i in items {
                    write(i, out, depth + 1);
                    out.push(',');
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(v) = map.get(k) {
                        write(v, out, depth + 1);
                    }
                    out.push(',');
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out, 0);
    out
}

/// A value for messages: short, and never a deep recursive rendering.
pub(crate) fn short(v: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = match v {
        Value::Array(_) | Value::Object(_) if crate::parse::nesting_depth(v) > 8 => {
            return format!("{} (deeply nested)", type_name(v));
        }
        _ => v.to_string(),
    };
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn num_equal(x: &Number, y: &Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    x.as_f64() == y.as_f64()
}

fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if is_integer(n) => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl DataSchema {
    /// Checks `value` against this schema: `type`, `enum`, `const`, numeric bounds
    /// (inclusive and exclusive) and `multipleOf`, string length in Unicode code points
    /// and `pattern`, array `items`, `minItems`, `maxItems`, object `properties` and
    /// `required`, and `oneOf`. Returns every violation found (empty: the value fits).
    ///
    /// Each `pattern` is compiled once per call, however many strings it checks. A
    /// `pattern` that cannot be compiled (ECMA-262 features such as look-around, or a
    /// regex larger than [`PATTERN_SIZE_LIMIT`]) is reported as a violation.
    ///
    /// ```
    /// use wot_td::DataSchema;
    /// let schema: DataSchema = serde_json::from_str(r#"{
    ///   "type": "object", "required": ["celsius"],
    ///   "properties": {"celsius": {"type": "number", "minimum": -40, "maximum": 125}}
    /// }"#).unwrap();
    /// let errors = schema.validate_value(&serde_json::json!({"celsius": 300}));
    /// assert_eq!(errors[0].path, "celsius");
    /// assert!(schema.validate_value(&serde_json::json!({"celsius": 21.5})).is_empty());
    /// ```
    pub fn validate_value(&self, value: &Value) -> Vec<ValueError> {
        Checker::default().check(self, value, true)
    }

    /// True when [`DataSchema::validate_value`] finds nothing.
    pub fn accepts(&self, value: &Value) -> bool {
        self.validate_value(value).is_empty()
    }
}

/// Checks values against schemas, compiling each `pattern` only once.
#[derive(Default)]
pub(crate) struct Checker<'s> {
    patterns: HashMap<&'s str, Result<Regex, String>>,
    /// Schema steps left, if limited; at zero the checks stop and find nothing more.
    budget: Option<usize>,
}

impl<'s> Checker<'s> {
    /// A checker that stops after `steps` schema steps in total (see
    /// [`Checker::exhausted`]).
    pub(crate) fn with_budget(steps: usize) -> Self {
        Checker {
            patterns: HashMap::new(),
            budget: Some(steps),
        }
    }

    /// True when the budget ran out, so some checks were skipped.
    pub(crate) fn exhausted(&self) -> bool {
        self.budget == Some(0)
    }

    /// All violations of `value` against `schema`. With `literals == false` the
    /// schema's own `enum` and `const` are not applied (used to check that those
    /// values fit the rest of their schema); nested schemas always apply theirs.
    pub(crate) fn check(
        &mut self,
        schema: &'s DataSchema,
        value: &Value,
        literals: bool,
    ) -> Vec<ValueError> {
        let mut out = Vec::new();
        self.at(schema, value, literals, &mut String::new(), 0, &mut out);
        if self.exhausted() {
            // Cut short, the findings may be wrong (a `oneOf` choice that was not
            // checked looks like a match), so report none.
            out.clear();
        }
        out
    }

    fn at(
        &mut self,
        s: &'s DataSchema,
        v: &Value,
        literals: bool,
        path: &mut String,
        depth: usize,
        out: &mut Vec<ValueError>,
    ) {
        if depth > MAX_DEPTH {
            fail(out, path, format!("nested deeper than {MAX_DEPTH} levels"));
            return;
        }
        if let Some(left) = &mut self.budget {
            if *left == 0 {
                return;
            }
            *left -= 1;
        }
        if let Some(t) = s.data_type {
            let ok = match (t, v) {
                (DataType::Null, Value::Null)
                | (DataType::Boolean, Value::Bool(_))
                | (DataType::Number, Value::Number(_))
                | (DataType::String, Value::String(_))
                | (DataType::Array, Value::Array(_))
                | (DataType::Object, Value::Object(_)) => true,
                (DataType::Integer, Value::Number(n)) => is_integer(n),
                _ => false,
            };
            if !ok {
                fail(
                    out,
                    path,
                    format!("expected {}, found {}", t.as_str(), type_name(v)),
                );
                return;
            }
        }
        if let Some(c) = s.constant.as_ref().filter(|_| literals)
            && !json_equal(c, v)
        {
            fail(
                out,
                path,
                format!("expected the constant {}, found {}", short(c), short(v)),
            );
        }
        if let Some(values) = s.enumeration.as_ref().filter(|_| literals)
            && !values.iter().any(|e| json_equal(e, v))
        {
            let list: Vec<String> = values.iter().take(10).map(short).collect();
            let more = if values.len() > 10 { ", …" } else { "" };
            fail(
                out,
                path,
                format!("{} is not one of {}{more}", short(v), list.join(", ")),
            );
        }
        match v {
            Value::Number(n) => check_number(s, n, path, out),
            Value::String(text) => self.string(s, text, path, out),
            Value::Array(items) => self.array(s, items, path, depth, out),
            Value::Object(map) => {
                for r in s.required.iter().flatten() {
                    if !map.contains_key(r) {
                        fail(out, path, format!("the required member `{r}` is missing"));
                    }
                }
                for (name, sub) in s.properties.iter().flatten() {
                    if let Some(member) = map.get(name) {
                        let len = path.len();
                        push_key(path, name);
                        self.at(sub, member, true, path, depth + 1, out);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
        if let Some(choices) = &s.one_of {
            let mut matching = 0;
            for choice in choices {
                let mut scratch = Vec::new();
                self.at(choice, v, true, &mut path.clone(), depth + 1, &mut scratch);
                matching += usize::from(scratch.is_empty());
            }
            if matching != 1 {
                fail(
                    out,
                    path,
                    format!(
                        "the value must match exactly one schema of `oneOf`, it matches {matching}"
                    ),
                );
            }
        }
    }

    fn string(&mut self, s: &'s DataSchema, text: &str, path: &str, out: &mut Vec<ValueError>) {
        let len = text.chars().count() as u64;
        if let Some(min) = s.min_length
            && len < min
        {
            fail(
                out,
                path,
                format!("the string has {len} characters, fewer than minLength {min}"),
            );
        }
        if let Some(max) = s.max_length
            && len > max
        {
            fail(
                out,
                path,
                format!("the string has {len} characters, more than maxLength {max}"),
            );
        }
        if let Some(p) = &s.pattern {
            let compiled = self
                .patterns
                .entry(p)
                .or_insert_with(|| compile_pattern(p).map_err(|e| e.to_string()));
            match compiled {
                Ok(re) if !re.is_match(text) => fail(
                    out,
                    path,
                    format!("the string does not match the pattern `{p}`"),
                ),
                Ok(_) => {}
                Err(e) => fail(
                    out,
                    path,
                    format!("the schema's pattern `{p}` cannot be used: {e}"),
                ),
            }
        }
    }

    fn array(
        &mut self,
        s: &'s DataSchema,
        items: &[Value],
        path: &mut String,
        depth: usize,
        out: &mut Vec<ValueError>,
    ) {
        let n = items.len() as u64;
        if let Some(min) = s.min_items
            && n < min
        {
            fail(
                out,
                path,
                format!("the array has {n} items, fewer than minItems {min}"),
            );
        }
        if let Some(max) = s.max_items
            && n > max
        {
            fail(
                out,
                path,
                format!("the array has {n} items, more than maxItems {max}"),
            );
        }
        let Some(item_schema) = &s.items else { return };
        for (i, item) in items.iter().enumerate() {
            let sub = match item_schema.as_ref() {
                OneOrMany::One(one) => Some(one),
                OneOrMany::Many(per_position) => per_position.get(i),
            };
            if let Some(sub) = sub {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                self.at(sub, item, true, path, depth + 1, out);
                path.truncate(len);
            }
        }
    }
}

fn fail(out: &mut Vec<ValueError>, path: &str, message: String) {
    out.push(ValueError {
        path: path.to_owned(),
        message,
    });
}

fn check_number(s: &DataSchema, n: &Number, path: &str, out: &mut Vec<ValueError>) {
    let Some(x) = n.as_f64() else { return };
    let bound = |b: &Option<Number>| b.as_ref().and_then(Number::as_f64);
    if let Some(min) = bound(&s.minimum)
        && x < min
    {
        fail(out, path, format!("{n} is less than the minimum {min}"));
    }
    if let Some(min) = bound(&s.exclusive_minimum)
        && x <= min
    {
        fail(
            out,
            path,
            format!("{n} is not greater than the exclusive minimum {min}"),
        );
    }
    if let Some(max) = bound(&s.maximum)
        && x > max
    {
        fail(out, path, format!("{n} is greater than the maximum {max}"));
    }
    if let Some(max) = bound(&s.exclusive_maximum)
        && x >= max
    {
        fail(
            out,
            path,
            format!("{n} is not less than the exclusive maximum {max}"),
        );
    }
    if let Some(m) = bound(&s.multiple_of)
        && m > 0.0
    {
        let q = x / m;
        // Tolerate binary rounding: 0.3 is a multiple of 0.1.
        if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
            fail(out, path, format!("{n} is not a multiple of {m}"));
        }
    }
}
