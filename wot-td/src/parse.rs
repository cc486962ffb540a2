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
//! into a `serde_json::Value` and scanned for repeated keys (see [`crate::source`]), then
//! the model is deserialized from that value while tracking the JSON path; the line and
//! column of a problem are found by walking the source text along that path. Tracking
//! paths costs about as much as parsing, so the one-pass reading skips it and errors pay
//! for it instead.

use std::fmt;
use std::io::Read;

use serde::de::Deserialize;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Rule};
use crate::model::{AffordanceKind, Operation, Thing};

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
    /// The rule of a structure error.
    rule: Option<Rule>,
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

    /// The error as a [`Diagnostic`] (with its position when known).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let rule = match self.kind {
            ParseErrorKind::Io => Rule::Read,
            ParseErrorKind::Syntax => Rule::JsonSyntax,
            ParseErrorKind::DuplicateKey => Rule::DuplicateKey,
            ParseErrorKind::Structure => self.rule.unwrap_or(Rule::TermType),
        };
        let position = (self.line > 0).then_some(crate::Position {
            line: self.line,
            column: self.column,
        });
        Diagnostic::error(rule, self.path.clone(), self.message.clone()).at(position)
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
/// let doc = r#"{
///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
///     "title": "Lamp",
///     "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
///     "security": "nosec_sc",
///     "properties": {"on": {"type": "boolean", "forms": [{"href": "http://lamp/on"}]}}
/// }"#.parse::<Document>().unwrap();
/// let thing = doc.as_thing().unwrap();
/// assert_eq!(thing.title, "Lamp");
/// assert!(doc.validate().iter().all(|d| !d.is_error()));
/// ```
///
/// [`Document::kind`] says which; [`Document::as_thing`] and [`Document::as_thing_model`]
/// give it. A `Document` is made by parsing, or from a [`Thing`] or [`ThingModel`] with
/// `Document::from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document(pub(crate) Inner);

/// What a [`Document`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inner {
    /// A Thing Description, with what it keeps of its source text (nothing for a Thing
    /// built in code).
    Td(Box<Thing>, KeyOrder),
    /// A Thing Model.
    Tm(ThingModel),
}

/// What a parsed TD keeps of its source: the key order, used to write the TD back in its
/// own order, the text, used to give diagnostics a line and column, and the warnings of
/// reading it (a byte-order mark, a repeated identical term), which
/// [`Document::validate`] reports. Always compares equal, so it never makes two models
/// differ.
#[derive(Clone, Default)]
pub(crate) struct KeyOrder(Option<Box<Source>>);

#[derive(Clone)]
struct Source {
    order: OrderSource,
    notes: Vec<Diagnostic>,
}

/// Where [`KeyOrder`] finds the source order.
#[derive(Clone)]
enum OrderSource {
    /// The source text (valid JSON), read again only when the document is written back
    /// or a diagnostic needs a position.
    Text(Box<[u8]>),
    /// The source value, for documents built with [`Document::from_value`].
    Value(Value),
}

impl KeyOrder {
    pub(crate) fn text(text: &[u8], notes: Vec<Diagnostic>) -> Self {
        KeyOrder(Some(Box::new(Source {
            order: OrderSource::Text(text.into()),
            notes,
        })))
    }

    /// The source text, when the document was parsed from text.
    pub(crate) fn source_text(&self) -> Option<&[u8]> {
        match self.0.as_deref() {
            Some(Source {
                order: OrderSource::Text(text),
                ..
            }) => Some(text),
            _ => None,
        }
    }

    /// The warnings of reading the source.
    pub(crate) fn notes(&self) -> &[Diagnostic] {
        self.0.as_deref().map_or(&[], |s| &s.notes)
    }
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

/// The UTF-8 byte-order mark. RFC 8259 forbids sending it and allows parsers to ignore
/// it; producers on Windows still do.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The text without a leading byte-order mark, and the warning when there was one.
pub(crate) fn strip_bom(input: &[u8]) -> (&[u8], Option<Diagnostic>) {
    match input.strip_prefix(BOM) {
        Some(rest) => (
            rest,
            Some(
                Diagnostic::warning(
                    Rule::ByteOrderMark,
                    "",
                    "the document starts with a UTF-8 byte-order mark; it was skipped, but JSON text should not have one (RFC 8259 §8.1)",
                )
                .at(Some(crate::Position { line: 1, column: 1 })),
            ),
        ),
        None => (input, None),
    }
}

impl Document {
    /// Parses a TD or TM from bytes (UTF-8 JSON; a leading byte-order mark is skipped
    /// with a warning). `text.parse::<Document>()` does the same for a string.
    ///
    /// # Errors
    /// [`ParseError`] for invalid JSON, keys repeated with different values or names
    /// defined twice, or a TD whose terms have the wrong types or that lacks `@context`,
    /// `title`, `security`, `securityDefinitions`, an affordance's `forms`, a form's
    /// `href` or a `response`'s `contentType`. Only the first problem is returned: use
    /// [`Document::check`] to see them all.
    pub fn from_slice(input: &[u8]) -> Result<Self, ParseError> {
        let (text, bom) = strip_bom(input);
        if let Some(doc) = Self::from_slice_fast(text, bom.clone()) {
            return Ok(doc);
        }
        let value = parse_value(text)?;
        let mut notes: Vec<Diagnostic> = bom.into_iter().collect();
        if has_duplicate_keys(text) {
            for d in crate::source::duplicates(text) {
                if d.is_error() {
                    return Err(ParseError::from_diagnostic(ParseErrorKind::DuplicateKey, d));
                }
                notes.push(d);
            }
        }
        let Value::Object(map) = value else {
            return Err(not_an_object());
        };
        if is_thing_model(&map) {
            return Ok(Document(Inner::Tm(ThingModel { json: map })));
        }
        let thing = read_thing(&Value::Object(map)).map_err(|p| p.into_error(Some(text)))?;
        Ok(Document(Inner::Td(
            Box::new(thing),
            KeyOrder::text(text, notes),
        )))
    }

    /// The common case in one pass: a well-formed TD without repeated keys, read
    /// straight from the text into the model. `None` sends the input down the careful
    /// path (value, repeated keys, then the model with path tracking), which decides
    /// about Thing Models and produces every error with its path, line and column. A
    /// document this accepts gives the same model as the careful path: both read the
    /// same JSON with the same `Deserialize` impls, only without the intermediate `Value`.
    pub(crate) fn from_slice_fast(text: &[u8], bom: Option<Diagnostic>) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let thing = Thing::deserialize(&mut de).ok()?;
        de.end().ok()?;
        let is_tm = thing
            .ld_type
            .as_ref()
            .is_some_and(|t| t.iter().any(|s| s == "tm:ThingModel"));
        if is_tm || has_duplicate_keys(text) {
            return None;
        }
        Some(Document(Inner::Td(
            Box::new(thing),
            KeyOrder::text(text, bom.into_iter().collect()),
        )))
    }

    /// Parses a TD or TM from a reader, reading at most [`MAX_DOCUMENT_BYTES`].
    ///
    /// # Errors
    /// As [`Document::from_slice`], plus [`ParseErrorKind::Io`] when reading fails or the
    /// input is too large.
    pub fn from_reader(reader: impl Read) -> Result<Self, ParseError> {
        Self::from_slice(&read_limited(reader)?)
    }

    /// Builds a document from an already parsed JSON value (no duplicate-key check is
    /// possible here, and errors carry no line numbers).
    ///
    /// # Errors
    /// As [`Document::from_slice`].
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        if nesting_depth(&value) > MAX_JSON_NESTING {
            return Err(ParseError::new(
                ParseErrorKind::Syntax,
                "",
                format!("the document nests deeper than {MAX_JSON_NESTING} levels"),
            ));
        }
        let Value::Object(map) = value else {
            return Err(not_an_object());
        };
        if is_thing_model(&map) {
            return Ok(Document(Inner::Tm(ThingModel { json: map })));
        }
        let value = Value::Object(map);
        let thing = read_thing(&value).map_err(|p| p.into_error(None))?;
        Ok(Document(Inner::Td(
            Box::new(thing),
            KeyOrder(Some(Box::new(Source {
                order: OrderSource::Value(value),
                notes: Vec::new(),
            }))),
        )))
    }

    /// Whether this is a TD or a TM.
    pub fn kind(&self) -> DocumentKind {
        match self {
            Document(Inner::Td(..)) => DocumentKind::Td,
            Document(Inner::Tm(_)) => DocumentKind::Tm,
        }
    }

    /// The `title` of the TD, or of the TM when it is a string there.
    ///
    /// ```
    /// use wot_td::Document;
    /// let tm = r#"{"@type": "tm:ThingModel", "title": "Lamp model"}"#.parse::<Document>()?;
    /// assert_eq!(tm.title(), Some("Lamp model"));
    /// # Ok::<(), wot_td::ParseError>(())
    /// ```
    pub fn title(&self) -> Option<&str> {
        match self {
            Document(Inner::Td(t, _)) => Some(&t.title),
            Document(Inner::Tm(m)) => m.title(),
        }
    }

    /// The Thing Description, if this is one.
    pub fn as_thing(&self) -> Option<&Thing> {
        match self {
            Document(Inner::Td(t, _)) => Some(t),
            Document(Inner::Tm(_)) => None,
        }
    }

    /// The Thing Description, if this is one.
    pub fn into_thing(self) -> Option<Thing> {
        match self {
            Document(Inner::Td(t, _)) => Some(*t),
            Document(Inner::Tm(_)) => None,
        }
    }

    /// The Thing Model, if this is one.
    pub fn into_thing_model(self) -> Option<ThingModel> {
        match self {
            Document(Inner::Tm(m)) => Some(m),
            Document(Inner::Td(..)) => None,
        }
    }

    /// The Thing Model, if this is one.
    pub fn as_thing_model(&self) -> Option<&ThingModel> {
        match self {
            Document(Inner::Tm(m)) => Some(m),
            Document(Inner::Td(..)) => None,
        }
    }

    /// The document as JSON, with keys in the order of the source document (new keys
    /// follow the known ones).
    ///
    /// # Errors
    /// Only if a value cannot be represented in JSON (never for parsed documents).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Document(Inner::Td(thing, order)) => {
                let mut v = serde_json::to_value(thing)?;
                match order.0.as_deref().map(|s| &s.order) {
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
            Document(Inner::Tm(m)) => Ok(Value::Object(m.json.clone())),
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

/// Parses a TD or TM from a string: `text.parse::<Document>()`.
///
/// # Errors
/// [`ParseError`] for invalid JSON, keys repeated with different values or names defined
/// twice, or a TD whose terms have the wrong types or that lacks `@context`, `title`,
/// `security`, `securityDefinitions`, an affordance's `forms`, a form's `href` or a
/// `response`'s `contentType`. Only the first problem is returned: use
/// [`Document::check`] to see them all.
impl std::str::FromStr for Document {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Document::from_slice(s.as_bytes())
    }
}

impl From<ThingModel> for Document {
    fn from(model: ThingModel) -> Self {
        Document(Inner::Tm(model))
    }
}

impl From<Thing> for Document {
    fn from(thing: Thing) -> Self {
        Document(Inner::Td(Box::new(thing), KeyOrder::default()))
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
pub(crate) fn has_duplicate_keys(src: &[u8]) -> bool {
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

/// Parses JSON text into a value (repeated keys keep the last value; they are found by
/// [`crate::source::duplicates`]).
pub(crate) fn parse_value(text: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(text).map_err(|e| ParseError {
        kind: ParseErrorKind::Syntax,
        rule: None,
        path: String::new(),
        line: e.line(),
        column: e.column(),
        message: crate::diagnostic::clip(format!("not JSON: {}", strip_position(&e.to_string()))),
    })
}

/// Reads at most [`MAX_DOCUMENT_BYTES`] from `reader`.
pub(crate) fn read_limited(reader: impl Read) -> Result<Vec<u8>, ParseError> {
    let mut buf = Vec::new();
    reader
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| {
            ParseError::new(
                ParseErrorKind::Io,
                "",
                format!("cannot read the document: {e}"),
            )
        })?;
    if buf.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ParseError::new(
            ParseErrorKind::Io,
            "",
            format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    Ok(buf)
}

pub(crate) fn not_an_object() -> ParseError {
    ParseError {
        kind: ParseErrorKind::Structure,
        rule: Some(Rule::TermType),
        path: String::new(),
        line: 1,
        column: 1,
        message: "a Thing Description must be a JSON object".into(),
    }
}

impl ParseError {
    fn new(kind: ParseErrorKind, path: &str, message: String) -> Self {
        ParseError {
            kind,
            rule: None,
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
        }
    }

    fn from_diagnostic(kind: ParseErrorKind, d: Diagnostic) -> Self {
        let (line, column) = d.position.map_or((0, 0), |p| (p.line, p.column));
        ParseError {
            kind,
            rule: Some(d.rule),
            path: d.path,
            line,
            column,
            message: d.message,
        }
    }
}

/// `serde_json` appends " at line L column C"; we report position separately.
pub(crate) fn strip_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_owned()
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

/// Why a JSON value is not a [`Thing`]: the first problem `serde` met, where it is, and
/// what kind it is.
#[derive(Debug)]
pub(crate) struct Problem {
    /// Where: the offending value, or for a missing term the object that lacks it.
    pub(crate) segments: Vec<PathSeg>,
    /// The name of a missing required term.
    pub(crate) missing: Option<String>,
    pub(crate) rule: Rule,
    pub(crate) message: String,
}

impl Problem {
    /// The path of the offending value, or of the missing term.
    pub(crate) fn path(&self) -> String {
        let mut path = segments_to_string(&self.segments);
        if let Some(term) = &self.missing {
            push_key(&mut path, term);
        }
        path
    }

    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::error(self.rule, self.path(), self.message.clone())
    }

    fn into_error(self, source: Option<&[u8]>) -> ParseError {
        let path = self.path();
        let position = source.and_then(|s| crate::source::locate(s, &path));
        ParseError {
            kind: ParseErrorKind::Structure,
            rule: Some(self.rule),
            line: position.map_or(0, |p| p.line),
            column: position.map_or(0, |p| p.column),
            path,
            message: crate::diagnostic::clip(self.message),
        }
    }
}

/// Deserializes a [`Thing`] from `value`, with the exact path and a clear message for
/// the first problem.
pub(crate) fn read_thing(value: &Value) -> Result<Thing, Problem> {
    let err = match serde_path_to_error::deserialize::<_, Thing>(value) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut segments = segments_of(err.path());
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
            segments.extend(segments_of(inner.path()));
            message = inner.into_inner().to_string();
        }
    }
    Err(explain(segments, &strip_position(&message)))
}

fn segments_of(path: &serde_path_to_error::Path) -> Vec<PathSeg> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(PathSeg::Key(key.clone())),
            _ => None,
        })
        .collect()
}

/// Turns a `serde` message into a [`Problem`] with a rule and a message that says what
/// TD 1.1 expects.
fn explain(segments: Vec<PathSeg>, message: &str) -> Problem {
    let quoted = |rest: &str| rest.split('`').nth(1).map(str::to_owned);
    if let Some(field) = message.strip_prefix("missing field ").and_then(quoted) {
        let in_response = matches!(segments.last(), Some(PathSeg::Key(k)) if k == "response");
        let (rule, message) = if in_response && field == "contentType" {
            (
                Rule::ResponseContentType,
                "a form's `response` must have `contentType` (TD 1.1 §5.3.4.3: it has no default)"
                    .to_owned(),
            )
        } else {
            (
                Rule::TermMissing,
                format!("`{field}` is required but missing"),
            )
        };
        return Problem {
            segments,
            missing: Some(field),
            rule,
            message,
        };
    }
    if let Some(found) = message.strip_prefix("unknown variant ").and_then(quoted) {
        if let Some(kind) = op_kind(&segments) {
            return Problem {
                message: unknown_op(&found, kind),
                segments,
                missing: None,
                rule: Rule::TermValue,
            };
        }
        return Problem {
            segments,
            missing: None,
            rule: Rule::TermValue,
            message: message.to_owned(),
        };
    }
    // Terms that take "a string or an array of strings": serde names only the first.
    let one_or_many = matches!(
        segments.last(),
        Some(PathSeg::Key(k)) if ["@type", "security", "scopes", "hreflang", "profile"].contains(&k.as_str())
    );
    let message = match message.strip_suffix("expected a string") {
        Some(head) if one_or_many && message.starts_with("invalid type") => {
            format!("{head}expected a string or an array of strings")
        }
        _ => message.to_owned(),
    };
    Problem {
        segments,
        missing: None,
        rule: Rule::TermType,
        message,
    }
}

/// For a path inside a form's `op`, the kind of affordance the form belongs to.
fn op_kind(segments: &[PathSeg]) -> Option<AffordanceKind> {
    let is_key = |s: Option<&PathSeg>, k: &str| matches!(s, Some(PathSeg::Key(x)) if x == k);
    let op_at = segments.iter().rposition(|s| is_key(Some(s), "op"))?;
    let forms_at = op_at.checked_sub(2)?;
    if !is_key(segments.get(forms_at), "forms") {
        return None;
    }
    Some(match segments.first() {
        _ if forms_at == 0 => AffordanceKind::Thing,
        Some(PathSeg::Key(k)) if k == "properties" => AffordanceKind::Property,
        Some(PathSeg::Key(k)) if k == "actions" => AffordanceKind::Action,
        Some(PathSeg::Key(k)) if k == "events" => AffordanceKind::Event,
        _ => return None,
    })
}

/// "unknown operation `readaction`: an action form allows `invokeaction`, ...".
fn unknown_op(found: &str, kind: AffordanceKind) -> String {
    let allowed: Vec<Operation> = Operation::ALL
        .into_iter()
        .filter(|o| o.affordance_kind() == kind)
        .collect();
    let names: Vec<String> = allowed.iter().map(|o| format!("`{o}`")).collect();
    let place = match kind {
        AffordanceKind::Property => "a property form",
        AffordanceKind::Action => "an action form",
        AffordanceKind::Event => "an event form",
        AffordanceKind::Thing => "a Thing-level form",
    };
    let nearest = allowed
        .iter()
        .filter(|_| found.len() <= 64)
        .map(|o| (strsim::levenshtein(found, o.as_str()), o))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= found.chars().count().div_ceil(2))
        .map(|(_, o)| format!(" (did you mean `{o}`?)"))
        .unwrap_or_default();
    format!(
        "unknown operation `{found}`: {place} allows {}{nearest}",
        names.join(", ")
    )
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

pub(crate) fn lookup<'a>(value: &'a Value, segments: &[PathSeg]) -> Option<&'a Value> {
    segments.iter().try_fold(value, |v, s| match s {
        PathSeg::Key(k) => v.get(k),
        PathSeg::Index(i) => v.get(i),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ops_name_the_allowed_ones_and_the_nearest() {
        let m = unknown_op("invokeactoin", AffordanceKind::Action);
        assert!(
            m.contains("`invokeaction`, `queryaction`, `cancelaction`"),
            "{m}"
        );
        assert!(m.ends_with("(did you mean `invokeaction`?)"), "{m}");
        let m = unknown_op("zzzzzzzzzzzzzz", AffordanceKind::Action);
        assert!(!m.contains("did you mean"), "{m}");
    }
}
