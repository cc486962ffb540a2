//! Parsing: bytes → typed [`Document`], with a careful path for everything unusual.
//!
//! The common case, a well-formed TD, is read in one pass: `serde_json` deserializes the
//! model straight from the text (with its nesting limit of 128, so hostile input cannot
//! overflow the stack), and a byte scan then makes sure no object repeats a key (serde
//! would silently merge those). The key order for writing the document back is kept as the
//! source text and only parsed again by [`Document::to_value`].
//!
//! Anything else (invalid JSON, a repeated key, a type error, a Thing Model) takes the
//! careful path, which decides the result and produces every error: the text is first read
//! into a `serde_json::Value` that rejects repeated keys, then the model is deserialized
//! from that value while tracking the JSON path; the line and column of a type error are
//! found by walking the source text along that path. Tracking paths costs about as much as
//! parsing, so the one-pass reading skips it and errors pay for it instead.

use std::fmt;
use std::io::Read;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::Thing;

/// Largest document [`Document::from_reader`] accepts: 16 MiB.
pub const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// What went wrong while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Reading the input failed, or it was larger than the limit.
    Io,
    /// The input is not JSON (or nests deeper than 128 levels).
    Syntax,
    /// An object has the same key twice.
    DuplicateKey,
    /// The JSON is not a TD: a term has the wrong type or a required term is missing.
    Structure,
}

/// A parse error with the JSON path and, where known, the line and column (1-based).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    kind: ParseErrorKind,
    path: String,
    line: usize,
    column: usize,
    message: String,
}

impl ParseError {
    fn render(&self) -> String {
        let mut s = String::new();
        if !self.path.is_empty() {
            s.push_str(&self.path);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        if self.line > 0 {
            s.push_str(&format!(" (line {}, column {})", self.line, self.column));
        }
        s
    }

    /// The kind of error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// True when the input is not JSON at all (or could not be read).
    pub fn is_syntax(&self) -> bool {
        matches!(self.kind, ParseErrorKind::Syntax | ParseErrorKind::Io)
    }

    /// The JSON path of the problem, e.g. `properties.temp.forms[0].op` (empty for the
    /// document root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The 1-based line, or 0 when unknown.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column, or 0 when unknown.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The message without path and position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Whether a document is a Thing Description or a Thing Model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A Thing Description.
    Td,
    /// A Thing Model (`@type` contains `tm:ThingModel`).
    Tm,
}

impl DocumentKind {
    /// `"td"` or `"tm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Td => "td",
            DocumentKind::Tm => "tm",
        }
    }
}

/// A Thing Model, kept as its JSON object.
///
/// Thing Models may put placeholders (`"{{MAXIMUM}}"`) where a TD has numbers or
/// booleans, and may leave out required terms, so they are not forced into [`Thing`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ThingModel {
    /// The document, in document order.
    pub json: Map<String, Value>,
}

impl ThingModel {
    /// The `title`, if it is a string.
    pub fn title(&self) -> Option<&str> {
        self.json.get("title")?.as_str()
    }

    /// Names of the affordances of `kind` (`"properties"`, `"actions"` or `"events"`).
    pub fn affordance_names<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a str> {
        self.json
            .get(kind)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }
}

/// A parsed document: a Thing Description or a Thing Model.
///
/// ```
/// use wot_td::Document;
/// let doc = Document::from_str(r#"{
///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
///     "title": "Lamp",
///     "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
///     "security": "nosec_sc",
///     "properties": {"on": {"type": "boolean", "forms": [{"href": "http://lamp/on"}]}}
/// }"#).unwrap();
/// let thing = doc.as_thing().unwrap();
/// assert_eq!(thing.title, "Lamp");
/// assert!(doc.validate().iter().all(|d| !d.is_error()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A Thing Description, with the key order of its source text (empty for a Thing
    /// built in code: use `Document::from(thing)`).
    Td(Box<Thing>, KeyOrder),
    /// A Thing Model.
    Tm(ThingModel),
}

/// The key order of the source document, used to write a parsed TD back in its own order.
/// Always compares equal, so it never makes two models differ.
#[derive(Clone, Default)]
pub struct KeyOrder(Option<Box<OrderSource>>);

/// Where [`KeyOrder`] finds the source order.
#[derive(Clone)]
enum OrderSource {
    /// The source text (valid JSON without repeated keys), read again only when the
    /// document is written back.
    Text(Box<[u8]>),
    /// The source value, for documents built with [`Document::from_value`] or parsed on
    /// the careful path.
    Value(Value),
}

impl PartialEq for KeyOrder {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for KeyOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyOrder")
    }
}

impl Document {
    /// Parses a TD or TM from a string.
    ///
    /// # Errors
    /// [`ParseError`] for invalid JSON, duplicate keys, or a TD whose terms have the
    /// wrong types or that lacks `@context`, `title`, `security`, `securityDefinitions`,
    /// an affordance's `forms` or a form's `href`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(input: &str) -> Result<Self, ParseError> {
        Self::from_slice(input.as_bytes())
    }

    /// Parses a TD or TM from bytes (UTF-8 JSON).
    ///
    /// # Errors
    /// As [`Document::from_str`].
    pub fn from_slice(input: &[u8]) -> Result<Self, ParseError> {
        if let Some(doc) = Self::from_slice_fast(input) {
            return Ok(doc);
        }
        let value = parse_strict_value(input)?;
        Self::from_value_with_source(value, Some(input))
    }

    /// The common case in one pass: a well-formed TD without repeated keys, read
    /// straight from the text into the model. `None` sends the input down the careful
    /// path (strict value, then the model with path tracking), which decides about Thing
    /// Models and produces every error with its path, line and column. A document this
    /// accepts gives the same model as the careful path: both read the same JSON with the
    /// same `Deserialize` impls, only without the intermediate `Value`.
    fn from_slice_fast(input: &[u8]) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(input);
        let thing = Thing::deserialize(&mut de).ok()?;
        de.end().ok()?;
        let is_tm = thing
            .ld_type
            .as_ref()
            .is_some_and(|t| t.iter().any(|s| s == "tm:ThingModel"));
        if is_tm || has_duplicate_keys(input) {
            return None;
        }
        Some(Document::Td(
            Box::new(thing),
            KeyOrder(Some(Box::new(OrderSource::Text(input.into())))),
        ))
    }

    /// Parses a TD or TM from a reader, reading at most [`MAX_DOCUMENT_BYTES`].
    ///
    /// # Errors
    /// As [`Document::from_str`], plus [`ParseErrorKind::Io`] when reading fails or the
    /// input is too large.
    pub fn from_reader(reader: impl Read) -> Result<Self, ParseError> {
        let mut buf = Vec::new();
        let io_err = |message: String| ParseError {
            kind: ParseErrorKind::Io,
            path: String::new(),
            line: 0,
            column: 0,
            message,
        };
        reader
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| io_err(format!("cannot read the document: {e}")))?;
        if buf.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(io_err(format!(
                "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        Self::from_slice(&buf)
    }

    /// Builds a document from an already parsed JSON value (no duplicate-key check is
    /// possible here, and errors carry no line numbers).
    ///
    /// # Errors
    /// As [`Document::from_str`].
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        if nesting_depth(&value) > MAX_JSON_NESTING {
            return Err(ParseError {
                kind: ParseErrorKind::Syntax,
                path: String::new(),
                line: 0,
                column: 0,
                message: format!("the document nests deeper than {MAX_JSON_NESTING} levels"),
            });
        }
        Self::from_value_with_source(value, None)
    }

    fn from_value_with_source(value: Value, source: Option<&[u8]>) -> Result<Self, ParseError> {
        let Value::Object(map) = value else {
            return Err(ParseError {
                kind: ParseErrorKind::Structure,
                path: String::new(),
                line: 1,
                column: 1,
                message: "a Thing Description must be a JSON object".into(),
            });
        };
        if is_thing_model(&map) {
            return Ok(Document::Tm(ThingModel { json: map }));
        }
        let value = Value::Object(map);
        let thing = deserialize_tracked::<Thing>(&value, source)?;
        Ok(Document::Td(
            Box::new(thing),
            KeyOrder(Some(Box::new(OrderSource::Value(value)))),
        ))
    }

    /// Whether this is a TD or a TM.
    pub fn kind(&self) -> DocumentKind {
        match self {
            Document::Td(..) => DocumentKind::Td,
            Document::Tm(_) => DocumentKind::Tm,
        }
    }

    /// The `title` of the TD, or of the TM when it is a string there.
    ///
    /// ```
    /// use wot_td::Document;
    /// let tm = Document::from_str(r#"{"@type": "tm:ThingModel", "title": "Lamp model"}"#)?;
    /// assert_eq!(tm.title(), Some("Lamp model"));
    /// # Ok::<(), wot_td::ParseError>(())
    /// ```
    pub fn title(&self) -> Option<&str> {
        match self {
            Document::Td(t, _) => Some(&t.title),
            Document::Tm(m) => m.title(),
        }
    }

    /// The Thing Description, if this is one.
    pub fn as_thing(&self) -> Option<&Thing> {
        match self {
            Document::Td(t, _) => Some(t),
            Document::Tm(_) => None,
        }
    }

    /// The Thing Description, if this is one.
    pub fn into_thing(self) -> Option<Thing> {
        match self {
            Document::Td(t, _) => Some(*t),
            Document::Tm(_) => None,
        }
    }

    /// The Thing Model, if this is one.
    pub fn as_thing_model(&self) -> Option<&ThingModel> {
        match self {
            Document::Tm(m) => Some(m),
            Document::Td(..) => None,
        }
    }

    /// The document as JSON, with keys in the order of the source document (new keys
    /// follow the known ones).
    ///
    /// # Errors
    /// Only if a value cannot be represented in JSON (never for parsed documents).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Document::Td(thing, order) => {
                let mut v = serde_json::to_value(thing)?;
                match order.0.as_deref() {
                    Some(OrderSource::Value(source)) => reorder_like(&mut v, source, 0),
                    Some(OrderSource::Text(text)) => {
                        // The text parsed before, so this cannot fail; if it somehow
                        // did, the keys would keep the model's order.
                        if let Ok(source) = serde_json::from_slice::<Value>(text) {
                            reorder_like(&mut v, &source, 0);
                        }
                    }
                    None => {}
                }
                Ok(v)
            }
            Document::Tm(m) => Ok(Value::Object(m.json.clone())),
        }
    }

    /// The document as pretty-printed JSON in source key order.
    ///
    /// # Errors
    /// As [`Document::to_value`].
    pub fn to_json_string_pretty(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&self.to_value()?)
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        self.to_value()
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl std::str::FromStr for Document {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Document::from_slice(s.as_bytes())
    }
}

impl From<Thing> for Document {
    fn from(thing: Thing) -> Self {
        Document::Td(Box::new(thing), KeyOrder::default())
    }
}

/// The nesting limit of `serde_json`'s parser, applied to values given directly too.
const MAX_JSON_NESTING: usize = 128;

/// Depth of the deepest array or object, computed without recursion.
pub(crate) fn nesting_depth(value: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        max = max.max(depth);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    max
}

/// True when `@type` contains `tm:ThingModel`.
pub(crate) fn is_thing_model(map: &Map<String, Value>) -> bool {
    match map.get("@type") {
        Some(Value::String(s)) => s == "tm:ThingModel",
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("tm:ThingModel")),
        _ => false,
    }
}

/// Puts the keys of every object of `value` in the order of the object at the same place
/// in `source`; keys unknown to `source` keep their relative order after the known ones.
fn reorder_like(value: &mut Value, source: &Value, depth: usize) {
    if depth > crate::MAX_DEPTH {
        return;
    }
    match (value, source) {
        (Value::Object(map), Value::Object(src)) => {
            let rank: std::collections::HashMap<&str, usize> = src
                .keys()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect();
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            // Stable: keys unknown to `source` keep their relative order at the end.
            entries.sort_by_key(|(k, _)| rank.get(k.as_str()).copied().unwrap_or(usize::MAX));
            for (k, mut v) in entries {
                if let Some(s) = src.get(&k) {
                    reorder_like(&mut v, s, depth + 1);
                }
                map.insert(k, v);
            }
        }
        (Value::Array(items), Value::Array(src)) => {
            for (v, s) in items.iter_mut().zip(src) {
                reorder_like(v, s, depth + 1);
            }
        }
        _ => {}
    }
}

/// True when an object of `src`, which must be valid JSON, has a key twice (or when
/// `src` turns out not to be valid JSON after all). Keys are compared after decoding
/// escapes, as `serde_json` would. A string is a key when `:` follows it. When an object
/// closes its keys are compared pairwise if there are at most 16, else sorted, so a
/// hostile object with many keys costs `n log n`, not `n²`.
fn has_duplicate_keys(src: &[u8]) -> bool {
    use std::borrow::Cow;
    // Key bytes of the open objects, innermost last. Arrays need no tracking: the keys of
    // an object inside an array belong to that object.
    let mut keys: Vec<Cow<'_, [u8]>> = Vec::with_capacity(64);
    // For each open object: where its keys start in `keys`.
    let mut open: Vec<usize> = Vec::with_capacity(16);
    let mut pos = 0;
    loop {
        // Jump to the next quote or brace outside strings.
        let Some(rest) = src.get(pos..) else {
            return true;
        };
        let Some(skip) = memchr::memchr3(b'"', b'{', b'}', rest) else {
            break;
        };
        pos += skip;
        match src.get(pos).copied() {
            Some(b'"') => {
                // Find the closing quote, stepping over escapes.
                let start = pos + 1;
                let mut end = start;
                let mut escaped = false;
                loop {
                    let Some(rest) = src.get(end..) else {
                        return true;
                    };
                    let Some(i) = find_quote_or_backslash(rest) else {
                        return true;
                    };
                    end += i;
                    if src.get(end) == Some(&b'"') {
                        break;
                    }
                    escaped = true;
                    end += 2;
                }
                pos = end + 1;
                // A string followed by `:` is a key.
                let after = src.get(pos..).unwrap_or_default();
                let is_key = after
                    .iter()
                    .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                    == Some(&b':');
                if is_key {
                    let key = if escaped {
                        let Some(quoted) = src.get(start - 1..=end) else {
                            return true;
                        };
                        match serde_json::from_slice::<String>(quoted) {
                            Ok(k) => Cow::Owned(k.into_bytes()),
                            Err(_) => return true,
                        }
                    } else {
                        match src.get(start..end) {
                            Some(raw) => Cow::Borrowed(raw),
                            None => return true,
                        }
                    };
                    keys.push(key);
                }
                continue;
            }
            Some(b'{') => open.push(keys.len()),
            Some(b'}') => {
                let Some(first) = open.pop() else {
                    return true;
                };
                let Some(own) = keys.get_mut(first..) else {
                    return true;
                };
                let repeated = if own.len() <= 16 {
                    own.iter()
                        .enumerate()
                        .any(|(i, k)| own.get(i + 1..).is_some_and(|later| later.contains(k)))
                } else {
                    own.sort_unstable();
                    own.windows(2).any(|w| w.first() == w.last())
                };
                if repeated {
                    return true;
                }
                keys.truncate(first);
            }
            _ => return true,
        }
        pos += 1;
    }
    !open.is_empty()
}

/// The position of the first `"` or `\\` in `s`, eight bytes at a time.
fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let mut at = 0;
    while let Some(chunk) = s.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte of `x` is zero where `word` has the byte searched for; the lowest flagged
        // byte is always a true match (the trick can only over-flag above one).
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let found = zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = s.get(at..)?;
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|i| at + i)
}

/// Parses JSON text into a value, rejecting duplicate object keys.
pub(crate) fn parse_strict_value(input: &[u8]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let result = serde_path_to_error::deserialize::<_, StrictValue>(&mut de);
    match result {
        Ok(StrictValue(v)) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(ParseError {
                kind: ParseErrorKind::Syntax,
                path: String::new(),
                line: e.line(),
                column: e.column(),
                message: strip_position(&e.to_string()),
            }),
        },
        Err(e) => {
            let mut path = render_path(e.path());
            let inner = e.into_inner();
            let message = strip_position(&inner.to_string());
            let kind = if let Some(rest) = message.strip_prefix(DUPLICATE_PREFIX) {
                // The error is raised at the object; name the repeated key in the path.
                if let Some(key) = rest.split('`').nth(1) {
                    push_key(&mut path, key);
                }
                ParseErrorKind::DuplicateKey
            } else {
                ParseErrorKind::Syntax
            };
            Err(ParseError {
                kind,
                path,
                line: inner.line(),
                column: inner.column(),
                message: crate::validate::clip(message),
            })
        }
    }
}

/// `serde_json` appends " at line L column C"; we report position separately.
fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_owned()
}

const DUPLICATE_PREFIX: &str = "duplicate key";

/// Renders a `serde_path_to_error` path as `a.b[0].c` (empty for the root).
pub(crate) fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

/// Appends `key` to a JSON path, quoting keys that are not plain names.
pub(crate) fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | ':' | '$'));
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        out.push('[');
        out.push_str(&Value::String(key.to_owned()).to_string());
        out.push(']');
    }
}

/// Deserializes `T` from `value`, reporting the JSON path (and position in `source`).
fn deserialize_tracked<T: de::DeserializeOwned>(
    value: &Value,
    source: Option<&[u8]>,
) -> Result<T, ParseError> {
    let err = match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut segments: Vec<PathSeg> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(PathSeg::Key(key.clone())),
            _ => None,
        })
        .collect();
    let mut message = err.into_inner().to_string();
    // A property's data schema terms are read through `#[serde(flatten)]`, which hides
    // their path; re-read the property's schema alone to find the exact term.
    if let [PathSeg::Key(first), PathSeg::Key(_)] = segments.as_slice()
        && first == "properties"
        && let Some(Value::Object(prop)) = lookup(value, &segments)
    {
        let mut schema = prop.clone();
        for k in ["observable", "uriVariables", "forms"] {
            schema.shift_remove(k);
        }
        if let Err(inner) =
            serde_path_to_error::deserialize::<_, crate::DataSchema>(&Value::Object(schema))
        {
            for s in inner.path().iter() {
                match s {
                    serde_path_to_error::Segment::Seq { index } => {
                        segments.push(PathSeg::Index(*index))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        segments.push(PathSeg::Key(key.clone()))
                    }
                    _ => {}
                }
            }
            message = inner.into_inner().to_string();
        }
    }
    let (line, column) = source.and_then(|s| locate(s, &segments)).unwrap_or((0, 0));
    Err(ParseError {
        kind: ParseErrorKind::Structure,
        path: segments_to_string(&segments),
        line,
        column,
        message: crate::validate::clip(message),
    })
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathSeg {
    Key(String),
    Index(usize),
}

pub(crate) fn segments_to_string(segments: &[PathSeg]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            PathSeg::Key(k) => push_key(&mut out, k),
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn lookup<'a>(value: &'a Value, segments: &[PathSeg]) -> Option<&'a Value> {
    segments.iter().try_fold(value, |v, s| match s {
        PathSeg::Key(k) => v.get(k),
        PathSeg::Index(i) => v.get(i),
    })
}

/// Finds the 1-based line and column of the value at `segments` in JSON `source` text.
/// Returns the deepest position reached when the path does not fully exist (e.g. a
/// missing key reports its object).
pub(crate) fn locate(source: &[u8], segments: &[PathSeg]) -> Option<(usize, usize)> {
    let mut sc = Scanner {
        src: source,
        pos: 0,
    };
    sc.skip_ws();
    for seg in segments {
        let start = sc.pos;
        let found = match seg {
            PathSeg::Key(key) => sc.enter_key(key),
            PathSeg::Index(index) => sc.enter_index(*index),
        };
        if found.is_none() {
            sc.pos = start;
            break;
        }
    }
    Some(line_col(source, sc.pos))
}

fn line_col(source: &[u8], pos: usize) -> (usize, usize) {
    let before = source.get(..pos).unwrap_or(source);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A minimal JSON scanner used only to find positions in text that already parsed.
struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Reads a string token; returns its decoded text.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        serde_json::from_slice(self.src.get(start..self.pos)?).ok()
    }

    /// Skips one value (iteratively, so depth does not matter).
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.skip_ws();
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                }
                b',' | b':' => {
                    self.pos += 1;
                    continue;
                }
                _ => {
                    while !matches!(
                        self.peek(),
                        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                    ) {
                        self.pos += 1;
                    }
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }

    /// At an object, moves to the value of `key` (the last one if repeated).
    fn enter_key(&mut self, key: &str) -> Option<()> {
        self.skip_ws();
        if self.peek()? != b'{' {
            return None;
        }
        self.pos += 1;
        let mut found = None;
        loop {
            self.skip_ws();
            match self.peek()? {
                b'}' => break,
                b',' => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let k = self.string()?;
            self.skip_ws();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_ws();
            if k == key {
                found = Some(self.pos);
            }
            self.skip_value()?;
        }
        self.pos = found?;
        Some(())
    }

    /// At an array, moves to element `index`.
    fn enter_index(&mut self, index: usize) -> Option<()> {
        self.skip_ws();
        if self.peek()? != b'[' {
            return None;
        }
        self.pos += 1;
        for _ in 0..index {
            self.skip_ws();
            self.skip_value()?;
            self.skip_ws();
            if self.peek()? != b',' {
                return None;
            }
            self.pos += 1;
        }
        self.skip_ws();
        Some(())
    }
}

/// A `serde_json::Value` whose deserialization rejects duplicate object keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictValue(Value::Array(out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE_PREFIX} `{key}`: each name may appear only once in an object"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(StrictValue(Value::Object(out)))
    }
}
