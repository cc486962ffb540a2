//! [`Data`]: a JSON value that a property or an event carries, kept as the text it arrived in
//! and parsed on first use.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::json_text::{self, Scanner};
use crate::value_check::{CompiledSchema, ValueError};

/// A JSON value shared by everyone who holds it: a property's value or an event's data.
///
/// Values arrive as JSON text. `Data` keeps that text and builds the
/// [`serde_json::Value`] only when someone asks for it (through [`Data::value`] or `Deref`),
/// once, for every clone. Passing data on, keeping it in a log and dropping it cost a
/// reference count, not a copy of the value; checking it against a schema
/// ([`Data::parse_with`]) and reading one member ([`Data::get_path`]) read the text without
/// building the value when it is in the common shape of notification data.
///
/// Clones share the text and the value. Equality compares values (`1.0` equals `1.0`, key
/// order does not matter), as `serde_json::Value` does.
///
/// ```
/// use serde_json::json;
/// use wot_td::Data;
///
/// let data = Data::parse(r#"{"value": 21.5, "unit": "cel"}"#)?;
/// assert_eq!(data.as_text(), r#"{"value": 21.5, "unit": "cel"}"#);
/// assert_eq!(data.get_path(&["value"]).as_deref(), Some(&json!(21.5)));
/// // `Deref` gives the `serde_json::Value`, built on first use.
/// assert_eq!(data["unit"], "cel");
/// assert_eq!(data, json!({"unit": "cel", "value": 21.5}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Data(Arc<Inner>);

/// At least one of the two is set from the start; the other is derived on first use.
struct Inner {
    text: OnceLock<Box<str>>,
    value: OnceLock<Value>,
    /// The text is an object whose member names all differ, so a member's first occurrence
    /// is the one (serde_json keeps the last of repeated names).
    distinct_keys: bool,
    /// [`Data::size_estimate`], fixed when the data is made: text and value counted whether
    /// or not the other has been derived yet, so the estimate does not grow when someone
    /// reads the data.
    size: usize,
}

/// The longest text [`Data::get_path`] reads without building the value: a longer one is
/// parsed once and kept, so that many reads of a large value do not scan it each time.
const MAX_SCANNED_TEXT: usize = 4096;

/// Bytes counted per token of text not parsed yet (a scalar, a member name, an array or an
/// object): about what each takes in the value built from it.
const BYTES_PER_TOKEN: usize = 32;

impl Data {
    /// `text` as JSON data.
    ///
    /// # Errors
    ///
    /// serde_json's error when `text` is not one JSON value.
    pub fn parse(text: impl Into<Box<str>>) -> Result<Data, serde_json::Error> {
        let text = text.into();
        if json_text::agrees_with_serde_json() {
            let mut scanner = Scanner::new(&text);
            if scanner.document().is_some() {
                let tokens = scanner.tokens;
                return Ok(Data::from_checked_text(text, false, tokens));
            }
        }
        let value = serde_json::from_str(&text)?;
        Ok(Data::from_parts(text, value))
    }

    /// `text` as JSON data, with every violation of `schema` (empty: the value fits).
    ///
    /// A value in the common shape of notification data (see [`Data`]) that fits is checked
    /// on its text, without building the value; anything else is parsed and checked as
    /// [`CompiledSchema::validate`] does, which also gives the violations' messages.
    ///
    /// # Errors
    ///
    /// serde_json's error when `text` is not one JSON value.
    ///
    /// ```
    /// use wot_td::{CompiledSchema, Data, DataSchema};
    /// let schema: DataSchema = serde_json::from_str(
    ///     r#"{"type": "object", "properties": {"value": {"type": "number", "maximum": 100}}}"#,
    /// )?;
    /// let schema = CompiledSchema::from(schema);
    /// let (_, errors) = Data::parse_with(r#"{"value": 21.5}"#, &schema)?;
    /// assert!(errors.is_empty());
    /// let (_, errors) = Data::parse_with(r#"{"value": 150}"#, &schema)?;
    /// assert_eq!(errors[0].path, "value");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn parse_with(
        text: impl Into<Box<str>>,
        schema: &CompiledSchema,
    ) -> Result<(Data, Vec<ValueError>), serde_json::Error> {
        let text = text.into();
        if json_text::agrees_with_serde_json()
            && let Some(fit) = schema.fits_text(&text)
        {
            let data = Data::from_checked_text(text, fit.distinct_keys, fit.tokens);
            return Ok((data, Vec::new()));
        }
        let value = serde_json::from_str(&text)?;
        let errors = schema.validate(&value);
        Ok((Data::from_parts(text, value), errors))
    }

    /// Text the scanner read whole as JSON, with `tokens` tokens.
    fn from_checked_text(text: Box<str>, distinct_keys: bool, tokens: usize) -> Data {
        // The value to come: its tokens, and at most the text's bytes in strings.
        let value = tokens
            .saturating_mul(BYTES_PER_TOKEN)
            .saturating_add(text.len());
        Data(Arc::new(Inner {
            size: own_size().saturating_add(text.len()).saturating_add(value),
            text: OnceLock::from(text),
            value: OnceLock::new(),
            distinct_keys,
        }))
    }

    fn from_parts(text: Box<str>, value: Value) -> Data {
        Data(Arc::new(Inner {
            size: own_size()
                .saturating_add(text.len())
                .saturating_add(value_size(&value)),
            text: OnceLock::from(text),
            value: OnceLock::from(value),
            distinct_keys: false,
        }))
    }

    /// The JSON text: as received, or written from the value when the data was made from
    /// one.
    pub fn as_text(&self) -> &str {
        self.0
            .text
            .get_or_init(|| self.value().to_string().into_boxed_str())
    }

    /// The value, built from the text on first use.
    pub fn value(&self) -> &Value {
        self.0.value.get_or_init(|| {
            let text = self.0.text.get().map_or("null", |t| t);
            let parsed = serde_json::from_str(text);
            debug_assert!(parsed.is_ok(), "text is checked when the data is made");
            parsed.unwrap_or(Value::Null)
        })
    }

    /// The value, without a copy when this is its only holder.
    pub fn into_value(self) -> Value {
        self.value();
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.value.into_inner().unwrap_or(Value::Null),
            Err(shared) => shared.value.get().cloned().unwrap_or(Value::Null),
        }
    }

    /// An estimate of the bytes this data holds or will hold: its own size, the text and the
    /// value, each counted whether or not it has been derived from the other yet (a value
    /// not built yet is estimated from the text's tokens). Fixed when the data is made, so a
    /// byte budget that counted it once stays right however the data is read later.
    pub fn size_estimate(&self) -> usize {
        self.0.size
    }

    /// What the path of unescaped reference `tokens` leads to (a JSON pointer's tokens:
    /// member names, and array indices without a sign or leading zero), as
    /// [`serde_json::Value::pointer`] finds it; the whole value for no tokens. Read from the
    /// text, without building the rest of the value, when the value was not built yet and
    /// the text is at most 4 KiB (a longer one is parsed once, then read).
    ///
    /// ```
    /// use serde_json::json;
    /// let data = wot_td::Data::parse(r#"{"readings": [{"c": 20.5}, {"c": 21}]}"#)?;
    /// assert_eq!(data.get_path(&["readings", "1", "c"]).as_deref(), Some(&json!(21)));
    /// assert_eq!(data.get_path(&["readings", "2"]), None);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn get_path<S: AsRef<str>>(&self, tokens: &[S]) -> Option<Cow<'_, Value>> {
        if self.0.value.get().is_none()
            && let Some(text) = self.0.text.get()
            && text.len() <= MAX_SCANNED_TEXT
        {
            match find_in_text(text, tokens, self.0.distinct_keys) {
                Found::Value(v) => return Some(Cow::Owned(v)),
                Found::Nothing => return None,
                Found::Unsure => {}
            }
        }
        lookup(self.value(), tokens).map(Cow::Borrowed)
    }
}

/// What [`find_in_text`] found.
enum Found {
    Value(Value),
    Nothing,
    /// The text left the scanner's subset: look in the value.
    Unsure,
}

/// `tokens` followed through `text`, as [`lookup`] follows them through its value;
/// `distinct_keys`: the top-level object's member names all differ.
fn find_in_text<S: AsRef<str>>(text: &str, tokens: &[S], distinct_keys: bool) -> Found {
    let mut s = Scanner::new(text);
    s.skip_whitespace();
    for (depth, token) in tokens.iter().enumerate() {
        let token = token.as_ref();
        let found = match s.peek() {
            Some(b'{') => member_start(&mut s, token, depth, distinct_keys && depth == 0),
            Some(b'[') => item_start(&mut s, token, depth),
            Some(_) => Some(None),
            None => None,
        };
        match found {
            Some(Some(start)) => s.at = start,
            Some(None) => return Found::Nothing,
            None => return Found::Unsure,
        }
    }
    let start = s.at;
    let value = match s.peek() {
        Some(b'{' | b'[') => s
            .skip_value(0)
            .and_then(|()| s.since(start))
            .and_then(|slice| serde_json::from_str(slice).ok()),
        _ => s.scalar(),
    };
    value.map_or(Found::Unsure, Found::Value)
}

/// Where the value of the object's member `name` starts (the last one of that name, as
/// serde_json keeps the last, or the first when the names are known to be `distinct`);
/// `Some(None)` when there is none, `None` outside the subset.
fn member_start(
    s: &mut Scanner<'_>,
    name: &str,
    depth: usize,
    distinct: bool,
) -> Option<Option<usize>> {
    let mut found = None;
    let mut more = s.open(b'}', depth)?;
    while more {
        let member = s.member_name()?;
        if json_text::same_text(member, name) {
            if distinct {
                return Some(Some(s.at));
            }
            found = Some(s.at);
        }
        s.skip_value(depth + 1)?;
        more = s.more(b'}')?;
    }
    Some(found)
}

/// Where item `index` of the array starts; `Some(None)` when there is none.
fn item_start(s: &mut Scanner<'_>, index: &str, depth: usize) -> Option<Option<usize>> {
    let Some(index) = array_index(index) else {
        return Some(None);
    };
    let mut more = s.open(b']', depth)?;
    let mut i = 0;
    while more {
        if i == index {
            return Some(Some(s.at));
        }
        s.skip_value(depth + 1)?;
        i += 1;
        more = s.more(b']')?;
    }
    Some(None)
}

/// Bytes a JSON value owns beyond its own inline size (an estimate).
fn json_heap_bytes(v: &Value) -> usize {
    let inline = std::mem::size_of::<Value>();
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items
            .iter()
            .map(|i| inline.saturating_add(json_heap_bytes(i)))
            .sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                k.len()
                    .saturating_add(std::mem::size_of::<String>())
                    .saturating_add(inline)
                    .saturating_add(json_heap_bytes(v))
            })
            .sum(),
        _ => 0,
    }
}

/// What `tokens` lead to in `value`, as [`serde_json::Value::pointer`] finds it.
fn lookup<'v, S: AsRef<str>>(value: &'v Value, tokens: &[S]) -> Option<&'v Value> {
    tokens.iter().try_fold(value, |target, token| {
        let token = token.as_ref();
        match target {
            // A Thing's objects are small: comparing a few keys is cheaper than hashing one.
            Value::Object(map) if map.len() <= 8 => map
                .iter()
                .find_map(|(k, v)| (k.as_str() == token).then_some(v)),
            Value::Object(map) => map.get(token),
            Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
            _ => None,
        }
    })
}

/// An array index token: decimal digits without a sign or a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

impl From<Value> for Data {
    fn from(value: Value) -> Self {
        // The text to come is counted as large as the value: no larger for the usual values.
        let value_size = value_size(&value);
        Data(Arc::new(Inner {
            size: own_size().saturating_add(value_size.saturating_mul(2)),
            text: OnceLock::new(),
            value: OnceLock::from(value),
            distinct_keys: false,
        }))
    }
}

/// Bytes of a `Data` and its shared part.
fn own_size() -> usize {
    std::mem::size_of::<Data>() + std::mem::size_of::<Inner>()
}

/// Bytes of a value: its own and what it owns.
fn value_size(value: &Value) -> usize {
    std::mem::size_of::<Value>().saturating_add(json_heap_bytes(value))
}

impl From<Data> for Value {
    fn from(data: Data) -> Self {
        data.into_value()
    }
}

impl Default for Data {
    /// `null`.
    fn default() -> Self {
        Data::from(Value::Null)
    }
}

impl Deref for Data {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.value() == other.value()
    }
}

impl PartialEq<Value> for Data {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl PartialEq<Data> for Value {
    fn eq(&self, other: &Data) -> bool {
        self == other.value()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Data").field(&self.as_text()).finish()
    }
}

impl fmt::Display for Data {
    /// The JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text())
    }
}

impl Serialize for Data {
    /// As the value.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Data::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_kept_and_the_value_built_once_for_every_clone() {
        let data = Data::parse(" {\"a\": [1, 2.5, \"x\"], \"b\": null} ").unwrap();
        let copy = data.clone();
        assert!(data.0.value.get().is_none());
        assert_eq!(*copy, json!({"a": [1, 2.5, "x"], "b": null}));
        assert!(data.0.value.get().is_some(), "clones share the value");
        assert_eq!(data.as_text(), " {\"a\": [1, 2.5, \"x\"], \"b\": null} ");
    }

    #[test]
    fn text_outside_the_subset_is_read_by_serde_json() {
        for text in [r#""esc\"aped""#, "1e3", "18446744073709551616", "[[[[1]]]]"] {
            let data = Data::parse(text).unwrap();
            assert_eq!(*data, serde_json::from_str::<Value>(text).unwrap());
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            *Data::parse(deep.as_str()).unwrap(),
            serde_json::from_str::<Value>(&deep).unwrap()
        );
        for bad in ["", "{", "[1,]", "nul", "1 2", "\"a", "{\"a\" 1}"] {
            let ours = Data::parse(bad).unwrap_err().to_string();
            let theirs = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
            assert_eq!(ours, theirs, "{bad}");
        }
    }

    #[test]
    fn get_path_finds_what_value_pointer_finds_from_text_and_from_value() {
        let text = r#"{"a/b": {"m~n": [10, {"x": 1}]}, "list": [1, 2], "": 7, "0": "zero", "d": 1, "d": 2, "e": "\u0041"}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        for p in [
            "",
            "/a~1b",
            "/a~1b/m~0n",
            "/a~1b/m~0n/1/x",
            "/list/1",
            "/list/01",
            "/list/+1",
            "/list/2",
            "/",
            "/0",
            "/d",
            "/e",
            "/missing",
            "/list/x",
            "/d/x",
        ] {
            let tokens: Vec<String> = match p.strip_prefix('/') {
                None => Vec::new(),
                Some(rest) => rest
                    .split('/')
                    .map(|t| t.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            };
            let expected = value.pointer(p);
            let from_text = Data::parse(text).unwrap();
            assert_eq!(
                from_text.get_path(&tokens).as_deref(),
                expected,
                "{p} from text"
            );
            let from_value = Data::from(value.clone());
            assert_eq!(
                from_value.get_path(&tokens).as_deref(),
                expected,
                "{p} from value"
            );
        }
    }

    #[test]
    fn a_large_text_is_parsed_once_for_paths_and_sizes_do_not_move() {
        let text = format!(
            r#"{{"pad": "{}", "v": [1, 2]}}"#,
            "x".repeat(MAX_SCANNED_TEXT)
        );
        let data = Data::parse(text.as_str()).unwrap();
        let size = data.size_estimate();
        assert!(data.0.value.get().is_none());
        assert_eq!(data.get_path(&["v", "1"]).as_deref(), Some(&json!(2)));
        assert!(data.0.value.get().is_some(), "kept for the next read");
        assert_eq!(data.size_estimate(), size);
        let from_value = Data::from(json!({"a": [1, 2, 3]}));
        let size = from_value.size_estimate();
        from_value.as_text();
        assert_eq!(from_value.size_estimate(), size);
    }

    #[test]
    fn data_made_from_a_value_writes_its_text_and_compares_by_value() {
        let data = Data::from(json!({"b": 1, "a": [true]}));
        assert_eq!(data.as_text(), r#"{"b":1,"a":[true]}"#);
        assert_eq!(data, Data::parse(r#"{"a":[true],"b":1}"#).unwrap());
        assert_ne!(data, Data::parse(r#"{"a":[true],"b":1.0}"#).unwrap());
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"b":1,"a":[true]}"#
        );
        let back: Data = serde_json::from_str(r#"{"x": 1}"#).unwrap();
        assert_eq!(back, json!({"x": 1}));
        assert_eq!(Data::default(), Value::Null);
    }
}
