//! Checking a JSON value against a [`DataSchema`], and [`CompiledSchema`], a schema with
//! its patterns compiled once.

use std::fmt;

use serde_json::{Number, Value};

use crate::MAX_DEPTH;
use crate::json_text::{self, Scanner};
use crate::model::{DataSchema, DataType};
use crate::one_or_many::OneOrMany;
use crate::parse::push_key;
use crate::pattern::{Compiled, PatternCompiler, PatternError, ValidationLimits};

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

/// A data schema with every `pattern` compiled, built once and used for many values
/// (each update of a property, each event). [`CompiledSchema::validate`] finds the same
/// violations as [`DataSchema::validate_value`] without compiling anything.
///
/// Compiling is bounded by [`ValidationLimits`]: each distinct pattern is compiled once,
/// a pattern that is too long, too big once compiled, or past the total budget is
/// listed in [`CompiledSchema::problems`] (with its path in the schema), and every
/// string it should check is reported as a violation.
///
/// ```
/// use wot_td::{CompiledSchema, DataSchema};
/// let schema: DataSchema = serde_json::from_str(r#"{
///   "type": "object",
///   "properties": {"serial": {"type": "string", "pattern": "^[A-Z]{2}-\\d+$"}}
/// }"#).unwrap();
/// let compiled = CompiledSchema::from(schema);
/// assert!(compiled.problems().is_empty());
/// assert!(compiled.accepts(&serde_json::json!({"serial": "AB-12"})));
/// let errors = compiled.validate(&serde_json::json!({"serial": "ab"}));
/// assert_eq!(errors[0].path, "serial");
/// ```
#[derive(Clone)]
pub struct CompiledSchema {
    schema: DataSchema,
    root: Node,
    problems: Vec<PatternError>,
}

impl CompiledSchema {
    /// Compiles a copy of `schema` with the default [`ValidationLimits`]. Use
    /// [`CompiledSchema::from`] to avoid the copy.
    pub fn new(schema: &DataSchema) -> Self {
        Self::with_limits(schema.clone(), &ValidationLimits::DEFAULT)
    }

    /// Compiles `schema` with the given limits (one budget for all its patterns).
    pub fn with_limits(schema: DataSchema, limits: &ValidationLimits) -> Self {
        let mut problems = Vec::new();
        let root = {
            let mut compiler = PatternCompiler::new(*limits);
            Node::build(&schema, &mut compiler, &mut String::new(), 0, &mut problems)
        };
        CompiledSchema {
            schema,
            root,
            problems,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &DataSchema {
        &self.schema
    }

    /// The patterns that could not be compiled, in schema order. Each string such a
    /// pattern should check is reported by [`CompiledSchema::validate`] as a violation.
    pub fn problems(&self) -> &[PatternError] {
        &self.problems
    }

    /// Every violation of `value` (empty: the value fits); see
    /// [`DataSchema::validate_value`] for what is checked.
    pub fn validate(&self, value: &Value) -> Vec<ValueError> {
        Checker::default().check_compiled(&self.schema, &self.root, value)
    }

    /// True when [`CompiledSchema::validate`] finds nothing.
    pub fn accepts(&self, value: &Value) -> bool {
        self.validate(value).is_empty()
    }

    /// Whether `text` is one JSON value in the scanner's subset (see `json_text`) that fits
    /// the schema. `None` means "parse it and ask [`CompiledSchema::validate`]": the text may
    /// be outside the subset, use a part of the schema not checked here (`oneOf`, an `enum`
    /// or `const` of arrays or objects), or not fit.
    pub(crate) fn fits_text(&self, text: &str) -> Option<TextFit> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let distinct_keys =
            Checker::default().text_fits(&self.schema, Some(&self.root), &mut scanner, 0)?;
        scanner.at_end().then_some(TextFit {
            distinct_keys,
            tokens: scanner.tokens,
        })
    }
}

impl From<DataSchema> for CompiledSchema {
    fn from(schema: DataSchema) -> Self {
        Self::with_limits(schema, &ValidationLimits::DEFAULT)
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("schema", &self.schema)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// What [`CompiledSchema::fits_text`] learned of a text that fits.
pub(crate) struct TextFit {
    /// The text is an object whose member names all differ.
    pub(crate) distinct_keys: bool,
    /// Tokens in the text (see `Scanner::tokens`).
    pub(crate) tokens: usize,
}

/// The compiled patterns of one schema and its children, in the shape of the schema:
/// `properties` in their order, `items` (one, or one per position) and `oneOf`.
#[derive(Clone, Default)]
pub(crate) struct Node {
    pattern: Option<Compiled>,
    /// The schema's `required` names as bits of their places in `properties`, when each is
    /// one of the first 64 properties (else `None`, and names are compared).
    required: Option<u64>,
    properties: Vec<Node>,
    items: Vec<Node>,
    one_of: Vec<Node>,
}

impl Node {
    /// Compiles the patterns of `s` and its children down to the depth that values are
    /// checked to, recording each that cannot be used in `problems` with its `path`.
    pub(crate) fn build<'s>(
        s: &'s DataSchema,
        compiler: &mut PatternCompiler<'s>,
        path: &mut String,
        depth: usize,
        problems: &mut Vec<PatternError>,
    ) -> Node {
        let mut node = Node::default();
        if depth > MAX_DEPTH {
            return node;
        }
        if let Some(p) = &s.pattern {
            let compiled = compiler.get(p).clone();
            if let Err(kind) = &compiled {
                let mut at = path.clone();
                push_key(&mut at, "pattern");
                problems.push(PatternError {
                    path: at,
                    kind: kind.clone(),
                });
            }
            node.pattern = Some(compiled);
        }
        for (name, sub) in s.properties.iter().flatten() {
            let n = Node::child(sub, compiler, path, depth, problems, |p| {
                push_key(p, "properties");
                push_key(p, name);
            });
            node.properties.push(n);
        }
        if let Some(items) = &s.items {
            match items.as_ref() {
                OneOrMany::One(one) => {
                    let n = Node::child(one, compiler, path, depth, problems, |p| {
                        push_key(p, "items");
                    });
                    node.items.push(n);
                }
                OneOrMany::Many(per_position) => {
                    for (i, sub) in per_position.iter().enumerate() {
                        let n = Node::child(sub, compiler, path, depth, problems, |p| {
                            push_key(p, "items");
                            push_index(p, i);
                        });
                        node.items.push(n);
                    }
                }
            }
        }
        for (i, sub) in s.one_of.iter().flatten().enumerate() {
            let n = Node::child(sub, compiler, path, depth, problems, |p| {
                push_key(p, "oneOf");
                push_index(p, i);
            });
            node.one_of.push(n);
        }
        node.required = s.required.as_ref().map_or(Some(0), |names| {
            let props = s.properties.as_ref()?;
            names.iter().try_fold(0u64, |mask, name| {
                let i = props.get_index_of(name.as_str())?;
                Some(mask | 1u64.checked_shl(u32::try_from(i).ok()?)?)
            })
        });
        node
    }

    /// [`Node::build`] for the child schema `sub`, at `path` extended by `step`.
    fn child<'s>(
        sub: &'s DataSchema,
        compiler: &mut PatternCompiler<'s>,
        path: &mut String,
        depth: usize,
        problems: &mut Vec<PatternError>,
        step: impl FnOnce(&mut String),
    ) -> Node {
        let len = path.len();
        step(path);
        let node = Node::build(sub, compiler, path, depth + 1, problems);
        path.truncate(len);
        node
    }
}

fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write as _;
    let _ = write!(path, "[{i}]");
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
    /// This compiles the schema's patterns for this one call (as a [`CompiledSchema`]
    /// would, with the default [`ValidationLimits`], but without copying the schema).
    /// To check many values against one schema, build a [`CompiledSchema`] once. A
    /// `pattern` that cannot be used (ECMA-262 features such as look-around, or past a
    /// limit) is reported as a violation of each string it should check.
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
        let mut compiler = PatternCompiler::default();
        let root = Node::build(self, &mut compiler, &mut String::new(), 0, &mut Vec::new());
        Checker::default().check_compiled(self, &root, value)
    }

    /// True when [`DataSchema::validate_value`] finds nothing.
    pub fn accepts(&self, value: &Value) -> bool {
        self.validate_value(value).is_empty()
    }
}

/// Checks values against schemas. Patterns come from a [`Node`] tree compiled in
/// advance, or, where there is none, from the checker's own [`PatternCompiler`], which
/// compiles each on first use.
#[derive(Default)]
pub(crate) struct Checker<'s> {
    pub(crate) patterns: PatternCompiler<'s>,
    /// Schema steps left, if limited; at zero the checks stop and find nothing more.
    budget: Option<usize>,
}

impl<'s> Checker<'s> {
    /// A checker that compiles patterns within `limits` and stops after
    /// `limits.check_steps` schema steps in total (see [`Checker::exhausted`]).
    pub(crate) fn with_limits(limits: ValidationLimits) -> Self {
        Checker {
            patterns: PatternCompiler::new(limits),
            budget: Some(limits.check_steps),
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
        self.run(schema, None, value, literals)
    }

    /// All violations of `value` against `schema`, whose patterns `root` holds.
    pub(crate) fn check_compiled(
        &mut self,
        schema: &'s DataSchema,
        root: &Node,
        value: &Value,
    ) -> Vec<ValueError> {
        self.run(schema, Some(root), value, true)
    }

    fn run(
        &mut self,
        schema: &'s DataSchema,
        node: Option<&Node>,
        value: &Value,
        literals: bool,
    ) -> Vec<ValueError> {
        let mut out = Vec::new();
        self.at(schema, node, value, literals, &Path::Root, 0, &mut out);
        if self.exhausted() {
            // Cut short, the findings may be wrong (a `oneOf` choice that was not
            // checked looks like a match), so report none.
            out.clear();
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn at(
        &mut self,
        s: &'s DataSchema,
        node: Option<&Node>,
        v: &Value,
        literals: bool,
        path: &Path<'_>,
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
            Value::String(text) => self.string(s, node, text, path, out),
            Value::Array(items) => self.array(s, node, items, path, depth, out),
            Value::Object(map) => {
                // A property update is usually a small object: comparing a few keys costs
                // less than hashing the name.
                let member = |name: &str| {
                    if map.len() <= SCAN_MEMBERS {
                        map.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
                    } else {
                        map.get(name)
                    }
                };
                for r in s.required.iter().flatten() {
                    if member(r).is_none() {
                        fail(out, path, format!("the required member `{r}` is missing"));
                    }
                }
                for (i, (name, sub)) in s.properties.iter().flatten().enumerate() {
                    if let Some(member) = member(name) {
                        let child = node.and_then(|n| n.properties.get(i));
                        let path = Path::Key(path, name);
                        self.at(sub, child, member, true, &path, depth + 1, out);
                    }
                }
            }
            _ => {}
        }
        if let Some(choices) = &s.one_of {
            let mut matching = 0;
            for (i, choice) in choices.iter().enumerate() {
                let mut scratch = Vec::new();
                let child = node.and_then(|n| n.one_of.get(i));
                self.at(choice, child, v, true, path, depth + 1, &mut scratch);
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

    /// [`Checker::text_fits`] for the object at the cursor. `Some(true)` when its member
    /// names are known to differ (each matched another property of the schema).
    fn object_fits(
        &mut self,
        s: &'s DataSchema,
        node: Option<&Node>,
        scanner: &mut Scanner<'_>,
        depth: usize,
    ) -> Option<bool> {
        let properties = s.properties.as_ref();
        let required = s.required.as_deref().unwrap_or_default();
        let mask = node.and_then(|n| n.required);
        if mask.is_none() && required.len() > 64 {
            return None;
        }
        // Members usually come in the schema's order: the one after the last match is
        // compared first.
        let mut next = 0;
        let (mut seen, mut matched, mut distinct) = (0u64, 0u64, true);
        let mut more = scanner.open(b'}', depth)?;
        while more {
            let name = scanner.member_name()?;
            if mask.is_none()
                && let Some(j) = required.iter().position(|r| r == name)
            {
                seen |= 1 << j;
            }
            let member = properties.and_then(|p| match p.get_index(next) {
                Some((k, sub)) if json_text::same_text(k, name) => Some((next, sub)),
                _ if p.len() <= SCAN_MEMBERS => p
                    .iter()
                    .enumerate()
                    .find(|(_, (k, _))| json_text::same_text(k, name))
                    .map(|(i, (_, sub))| (i, sub)),
                _ => p.get_full(name).map(|(i, _, sub)| (i, sub)),
            });
            match member {
                Some((i, sub)) => {
                    next = i + 1;
                    match 1u64.checked_shl(i as u32) {
                        Some(bit) if matched & bit == 0 => matched |= bit,
                        _ => distinct = false,
                    }
                    let child = node.and_then(|n| n.properties.get(i));
                    self.text_fits(sub, child, scanner, depth + 1)?;
                }
                None => {
                    distinct = false;
                    scanner.skip_value(depth + 1)?;
                }
            }
            more = scanner.more(b'}')?;
        }
        let fits = match mask {
            Some(mask) => matched & mask == mask,
            None => {
                seen == u64::MAX
                    .checked_shr(64 - required.len() as u32)
                    .unwrap_or(0)
            }
        };
        fits.then_some(distinct)
    }

    /// Steps over the value at the scanner's cursor, checking it against `s` as
    /// [`Checker::at`] would; `None` when it does not fit, or when the text or the schema
    /// leaves what is checked here (the caller then parses the value and checks that).
    /// `Some(true)` for an object whose member names are known to differ.
    fn text_fits(
        &mut self,
        s: &'s DataSchema,
        node: Option<&Node>,
        scanner: &mut Scanner<'_>,
        depth: usize,
    ) -> Option<bool> {
        if s.one_of.is_some() || depth >= json_text::MAX_DEPTH {
            return None;
        }
        let mut out = Vec::new();
        let literal = |value: &Value| {
            s.constant.as_ref().is_none_or(|c| json_equal(c, value))
                && s.enumeration
                    .as_ref()
                    .is_none_or(|values| values.iter().any(|e| json_equal(e, value)))
        };
        let has_literals = s.constant.is_some() || s.enumeration.is_some();
        match scanner.peek()? {
            b'{' => {
                if has_literals || !matches!(s.data_type, None | Some(DataType::Object)) {
                    return None;
                }
                self.object_fits(s, node, scanner, depth)
            }
            b'[' => {
                if has_literals || !matches!(s.data_type, None | Some(DataType::Array)) {
                    return None;
                }
                let mut n = 0usize;
                let mut more = scanner.open(b']', depth)?;
                while more {
                    let (sub, child) = match s.items.as_deref() {
                        None => (None, None),
                        Some(OneOrMany::One(one)) => {
                            (Some(one), node.and_then(|n| n.items.first()))
                        }
                        Some(OneOrMany::Many(each)) => {
                            (each.get(n), node.and_then(|nd| nd.items.get(n)))
                        }
                    };
                    match sub {
                        Some(sub) => {
                            self.text_fits(sub, child, scanner, depth + 1)?;
                        }
                        None => scanner.skip_value(depth + 1)?,
                    }
                    n += 1;
                    more = scanner.more(b']')?;
                }
                let n = n as u64;
                (s.min_items.is_none_or(|min| n >= min) && s.max_items.is_none_or(|max| n <= max))
                    .then_some(false)
            }
            b'"' => {
                let text = scanner.string()?;
                if !matches!(s.data_type, None | Some(DataType::String)) {
                    return None;
                }
                // A string equals a literal only when that is the same string.
                let same = |v: &Value| v.as_str().is_some_and(|v| json_text::same_text(v, text));
                if !(s.constant.as_ref().is_none_or(same)
                    && s.enumeration
                        .as_ref()
                        .is_none_or(|values| values.iter().any(same)))
                {
                    return None;
                }
                self.string(s, node, text, &Path::Root, &mut out);
                out.is_empty().then_some(false)
            }
            b'-' | b'0'..=b'9' => {
                let n = scanner.number()?;
                let ok = match s.data_type {
                    None | Some(DataType::Number) => true,
                    Some(DataType::Integer) => is_integer(&n),
                    Some(_) => false,
                };
                if !ok {
                    return None;
                }
                check_number(s, &n, &Path::Root, &mut out);
                let value = Value::Number(n);
                (out.is_empty() && (!has_literals || literal(&value))).then_some(false)
            }
            _ => {
                let value = scanner.scalar()?;
                let ok = matches!(
                    (s.data_type, &value),
                    (None, _)
                        | (Some(DataType::Boolean), Value::Bool(_))
                        | (Some(DataType::Null), Value::Null)
                );
                (ok && (!has_literals || literal(&value))).then_some(false)
            }
        }
    }

    fn string(
        &mut self,
        s: &'s DataSchema,
        node: Option<&Node>,
        text: &str,
        path: &Path<'_>,
        out: &mut Vec<ValueError>,
    ) {
        // Counting characters walks the whole string: only when a length is checked.
        let len = || text.chars().count() as u64;
        if let Some(min) = s.min_length
            && let len = len()
            && len < min
        {
            fail(
                out,
                path,
                format!("the string has {len} characters, fewer than minLength {min}"),
            );
        }
        if let Some(max) = s.max_length
            && let len = len()
            && len > max
        {
            fail(
                out,
                path,
                format!("the string has {len} characters, more than maxLength {max}"),
            );
        }
        if let Some(p) = &s.pattern {
            let compiled = match node.and_then(|n| n.pattern.as_ref()) {
                Some(compiled) => compiled,
                None => self.patterns.get(p),
            };
            match compiled {
                Ok(re) if !re.is_match(text) => fail(
                    out,
                    path,
                    format!(
                        "the string does not match the pattern `{}`",
                        clip_pattern(p)
                    ),
                ),
                Ok(_) => {}
                Err(e) => fail(
                    out,
                    path,
                    format!(
                        "the schema's pattern `{}` cannot be used: {e}",
                        clip_pattern(p)
                    ),
                ),
            }
        }
    }

    fn array(
        &mut self,
        s: &'s DataSchema,
        node: Option<&Node>,
        items: &[Value],
        path: &Path<'_>,
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
            let (sub, child) = match item_schema.as_ref() {
                OneOrMany::One(one) => (Some(one), node.and_then(|n| n.items.first())),
                OneOrMany::Many(per_position) => {
                    (per_position.get(i), node.and_then(|n| n.items.get(i)))
                }
            };
            if let Some(sub) = sub {
                let path = Path::Index(path, i);
                self.at(sub, child, item, true, &path, depth + 1, out);
            }
        }
    }
}

/// A pattern for messages: at most 100 characters (a pattern may be kilobytes long).
fn clip_pattern(p: &str) -> std::borrow::Cow<'_, str> {
    const MAX_CHARS: usize = 100;
    match p.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", p.get(..cut).unwrap_or_default()).into(),
        None => p.into(),
    }
}

/// Objects with at most this many members are searched by comparing keys, not hashing.
const SCAN_MEMBERS: usize = 8;

/// Where a checked value sits: the steps from the root, written out as text only when a
/// violation is reported, so a value that fits costs no path building.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The path as [`ValueError::path`] spells it (`readings[2].celsius`).
    fn render(&self) -> String {
        let mut text = String::new();
        self.write(&mut text);
        text
    }

    fn write(&self, text: &mut String) {
        match *self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(text);
                push_key(text, key);
            }
            Path::Index(parent, i) => {
                parent.write(text);
                push_index(text, i);
            }
        }
    }
}

fn fail(out: &mut Vec<ValueError>, path: &Path<'_>, message: String) {
    out.push(ValueError {
        path: path.render(),
        message,
    });
}

fn check_number(s: &DataSchema, n: &Number, path: &Path<'_>, out: &mut Vec<ValueError>) {
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
