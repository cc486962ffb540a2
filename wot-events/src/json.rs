//! Event data as a `serde_json::Value`, built without serde's generic visitor for the usual
//! shapes of notification data.
//!
//! [`parse`] gives the same value as `serde_json::from_str::<Value>` (and the same error, which
//! it takes from serde_json). Text in the common subset of JSON (strings without escapes,
//! integers and decimals that convert exactly, nesting to [`MAX_FAST_DEPTH`]) is read by a
//! direct scanner; anything else (an escape, an exponent, a long number, an error) is handed to
//! serde_json whole.
//!
//! Notifications of one property usually repeat one object shape. A [`Shape`] remembers the
//! member names of the previous top-level object; when the next one has the same names in the
//! same order, its map is a copy of the remembered one (the names' hash table copied, not
//! rebuilt) with the new values put in place.

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{Map, Number, Value};

/// Deepest nesting the scanner reads itself; deeper text goes to serde_json (whose limit, 128,
/// then applies).
const MAX_FAST_DEPTH: usize = 32;

/// Exact powers of ten as `f64` (10²² is the last one an `f64` holds exactly).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Largest significand converted here: every integer up to 2⁵³ is an exact `f64`, so
/// `significand / 10^k` (k ≤ 22) is one correctly rounded division, the value serde_json gives
/// with or without its `float_roundtrip` feature.
const MAX_EXACT_SIGNIFICAND: u64 = 1 << 53;

/// The most members a [`Shape`] remembers; a larger object is built member by member.
const MAX_SHAPE_MEMBERS: usize = 32;
/// The most bytes of member names a [`Shape`] remembers.
const MAX_SHAPE_NAME_BYTES: usize = 1024;

/// The member names of the previous top-level object of a series of values (a property's
/// notifications), and room to read the next one's members. Bounded: at most
/// [`MAX_SHAPE_MEMBERS`] names of at most [`MAX_SHAPE_NAME_BYTES`] in all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    /// The names, each with `null`, in order.
    names: Option<Map<String, Value>>,
    /// The members being read: where each name is in the text, and its value.
    members: Vec<(usize, usize, Value)>,
}

/// `text` as a JSON value, exactly as `serde_json::from_str::<Value>(text)` reads it.
/// `shape` is what the previous value of the same series left (see [`Shape`]).
pub(crate) fn parse(text: &str, shape: &mut Shape) -> Result<Value, serde_json::Error> {
    if fast_path_agrees() {
        let value = Scanner::new(text).document(shape);
        shape.members.clear();
        if shape.members.capacity() > MAX_SHAPE_MEMBERS {
            shape.members = Vec::new();
        }
        if let Some(value) = value {
            return Ok(value);
        }
    }
    serde_json::from_str(text)
}

/// Not part of the API: a series of texts read as one property's notifications are (each with
/// the shape the previous one left), for the fuzz targets and benches that compare it with
/// serde_json.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct JsonSeries(Shape);

impl JsonSeries {
    /// `text` as [`parse`] reads it after the texts given before.
    ///
    /// # Errors
    ///
    /// serde_json's error when `text` is not JSON.
    pub fn parse(&mut self, text: &str) -> Result<Value, serde_json::Error> {
        parse(text, &mut self.0)
    }
}

/// Whether numbers read here are the numbers serde_json builds in this program: not when
/// feature unification turned on serde_json's `arbitrary_precision` (numbers kept as their
/// text), which this scanner does not reproduce. Checked once.
fn fast_path_agrees() -> bool {
    static AGREES: AtomicU8 = AtomicU8::new(0);
    match AGREES.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let probe = "[1.50,-0,7]";
            let agrees = serde_json::from_str::<Value>(probe)
                .ok()
                .zip(Scanner::new(probe).document(&mut Shape::default()))
                .is_some_and(|(theirs, ours)| theirs == ours);
            AGREES.store(if agrees { 1 } else { 2 }, Ordering::Relaxed);
            agrees
        }
    }
}

/// A scanner over the common subset of JSON; `None` means "not in the subset, ask serde_json"
/// (which may also mean the text is not JSON at all).
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    /// One value and nothing after it but whitespace.
    fn document(mut self, shape: &mut Shape) -> Option<Value> {
        self.skip_whitespace();
        let value = match self.peek()? {
            b'{' => self.top_object(shape)?,
            _ => self.value(0)?,
        };
        self.skip_whitespace();
        (self.at == self.bytes.len()).then_some(value)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `literal` if the text goes on with it.
    fn keyword(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.at.checked_add(literal.len())?;
        (self.bytes.get(self.at..end)? == literal).then(|| self.at = end)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(|s| Value::String(s.to_owned())),
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b't' => self.keyword(b"true").map(|()| Value::Bool(true)),
            b'f' => self.keyword(b"false").map(|()| Value::Bool(false)),
            b'n' => self.keyword(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A string without escapes or control characters, without its quotes.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        // serde_json refuses control characters in strings; an escape is left to it.
        let len = self
            .bytes
            .get(start..)?
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | 0x00..=0x1f))?;
        let end = start + len;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end)
    }

    /// The top-level object: its members read into `shape.members` first, then its map made
    /// as a copy of the remembered names when they are the same, else built.
    fn top_object(&mut self, shape: &mut Shape) -> Option<Value> {
        if !self.open(b'}', 0)? {
            return Some(Value::Object(Map::new()));
        }
        // The remembered names, in order: while the members match them, a name is checked by
        // comparing its bytes (it has no escapes, quotes or control characters, as it was read
        // here before) instead of scanning for its end.
        let mut expected = shape.names.as_ref().map(|names| names.keys());
        let mut same = expected.is_some();
        let mut more = true;
        while more {
            if self.peek()? != b'"' {
                return None;
            }
            let start = self.at + 1;
            let known = expected.as_mut().and_then(Iterator::next).filter(|k| {
                let end = start + k.len();
                self.bytes.get(start..end) == Some(k.as_bytes())
                    && self.bytes.get(end) == Some(&b'"')
            });
            let end = match known {
                Some(k) => {
                    self.at = start + k.len() + 1;
                    start + k.len()
                }
                None => {
                    same = false;
                    let key = self.string()?;
                    if shape.members.is_empty() && key.starts_with("$serde_json::private::") {
                        return None;
                    }
                    start + key.len()
                }
            };
            self.colon()?;
            let value = self.value(1)?;
            shape.members.push((start, end, value));
            more = self.more(b'}')?;
        }
        let text = self.text;
        if same
            && let Some(names) = &shape.names
            && names.len() == shape.members.len()
        {
            let mut map = names.clone();
            for (slot, (_, _, value)) in map.values_mut().zip(shape.members.drain(..)) {
                *slot = value;
            }
            return Some(Value::Object(map));
        }
        let read = shape.members.len();
        let mut map = Map::with_capacity(read);
        let mut name_bytes = 0;
        for (start, end, value) in shape.members.drain(..) {
            name_bytes += end - start;
            map.insert(text.get(start..end)?.to_owned(), value);
        }
        // Remembered only without repeated names (each then appears once in the map).
        shape.names =
            (map.len() == read && read <= MAX_SHAPE_MEMBERS && name_bytes <= MAX_SHAPE_NAME_BYTES)
                .then(|| map.keys().map(|k| (k.clone(), Value::Null)).collect());
        Some(Value::Object(map))
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        let mut more = self.open(b'}', depth)?;
        while more {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            // serde_json gives keys of its own (`raw_value`, `arbitrary_precision`) a meaning.
            if map.is_empty() && key.starts_with("$serde_json::private::") {
                return None;
            }
            self.colon()?;
            let value = self.value(depth + 1)?;
            map.insert(key.to_owned(), value);
            more = self.more(b'}')?;
        }
        Some(Value::Object(map))
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        let mut more = self.open(b']', depth)?;
        while more {
            items.push(self.value(depth + 1)?);
            more = self.more(b']')?;
        }
        Some(Value::Array(items))
    }

    /// Steps over the `{` or `[` at the cursor, at nesting `depth`, and the whitespace after
    /// it: `false` when `close` follows at once (the value is empty; `close` is stepped over
    /// too), `true` when a member or element follows. `None` from [`MAX_FAST_DEPTH`] on.
    #[inline]
    fn open(&mut self, close: u8, depth: usize) -> Option<bool> {
        if depth >= MAX_FAST_DEPTH {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        let empty = self.peek()? == close;
        if empty {
            self.at += 1;
        }
        Some(!empty)
    }

    /// The `:` after a member name, and the whitespace around it.
    #[inline]
    fn colon(&mut self) -> Option<()> {
        self.skip_whitespace();
        if self.peek()? != b':' {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        Some(())
    }

    /// After a member or element: `true` at a `,` (another one follows), `false` at `close`
    /// (the value ends); each is stepped over, with the whitespace around a `,`.
    #[inline]
    fn more(&mut self, close: u8) -> Option<bool> {
        self.skip_whitespace();
        let next = self.peek()?;
        if next == b',' {
            self.at += 1;
            self.skip_whitespace();
            Some(true)
        } else if next == close {
            self.at += 1;
            Some(false)
        } else {
            None
        }
    }

    /// An integer, or a decimal without exponent whose digits fit in 2⁵³ and whose fraction
    /// has at most 22 digits: the numbers serde_json converts exactly the same way with or
    /// without `float_roundtrip`.
    fn number(&mut self) -> Option<Value> {
        let negative = self.peek()? == b'-';
        if negative {
            self.at += 1;
        }
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        self.at += 1;
        let mut significand = u64::from(first - b'0');
        if first == b'0' {
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return None;
            }
        } else {
            while let Some(b @ b'0'..=b'9') = self.peek() {
                significand = significand
                    .checked_mul(10)?
                    .checked_add(u64::from(b - b'0'))?;
                self.at += 1;
            }
        }
        match self.peek() {
            Some(b'.') => {}
            Some(b'e' | b'E') => return None,
            _ => return Some(integer(negative, significand)),
        }
        self.at += 1;
        let mut fraction_digits = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            significand = significand
                .checked_mul(10)?
                .checked_add(u64::from(b - b'0'))?;
            fraction_digits += 1;
            self.at += 1;
        }
        if fraction_digits == 0
            || matches!(self.peek(), Some(b'e' | b'E'))
            || significand > MAX_EXACT_SIGNIFICAND
        {
            return None;
        }
        let magnitude = significand as f64 / *POW10.get(fraction_digits)?;
        let f = if negative { -magnitude } else { magnitude };
        Some(Number::from_f64(f).map_or(Value::Null, Value::Number))
    }
}

/// An integer as serde_json keeps it: `u64` when positive, `i64` when negative, `f64` for
/// `-0` and below `i64::MIN`.
fn integer(negative: bool, significand: u64) -> Value {
    if !negative {
        return Value::Number(significand.into());
    }
    let neg = (significand as i64).wrapping_neg();
    if neg >= 0 {
        Number::from_f64(-(significand as f64)).map_or(Value::Null, Value::Number)
    } else {
        Value::Number(neg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our value and serde_json's for `text`: equal, with equal text forms (so `1.0` is not
    /// taken for `1`, nor `-0.0` for `0`), and keys in the same order.
    fn same_as_serde(text: &str) {
        let theirs = serde_json::from_str::<Value>(text);
        let ours = parse(text, &mut Shape::default());
        match (theirs, ours) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{text}");
                assert_eq!(a.to_string(), b.to_string(), "{text}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            (a, b) => panic!("{text}: serde_json {a:?}, ours {b:?}"),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_chosen_texts() {
        for text in [
            r#"{"value":21.37,"unit":"cel","ts":"2026-11-27T01:00:00.000Z","ok":true}"#,
            " { \"a\" : [ 1 , -2 , 3.5 , null , false , true , { } , [ ] ] } ",
            r#"{"a":1,"a":2,"b":3}"#,
            r#"{"b":1,"a":2}"#,
            r#""plain""#,
            r#""esc\"aped\n""#,
            "\"tab\there\"",
            r#""ünïcødé ✓""#,
            "0",
            "-0",
            "-0.0",
            "0.1",
            "1.0",
            "-1.5",
            "123456789",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "9007199254740993.5",
            "0.1234567890123456789012",
            "0.12345678901234567890123",
            "1e3",
            "1E-3",
            "2.5e+2",
            "01",
            "-",
            "1.",
            ".5",
            "+1",
            "1.5x",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "",
            "   ",
            "{",
            "[",
            "\"open",
            "{} {}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            r#"{"$serde_json::private::RawValue":"1"}"#,
            r#"{"$serde_json::private::Number":"1.50"}"#,
        ] {
            same_as_serde(text);
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        same_as_serde(&deep);
    }

    #[test]
    fn agrees_with_serde_json_on_generated_numbers_and_objects() {
        // A small deterministic generator: decimals of every length and scale around the
        // limits of the exact conversion, signs, and objects of several sizes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let digits = (next() % 20) as usize + 1;
            let mut text = String::new();
            if next() % 2 == 0 {
                text.push('-');
            }
            let int: String = (0..digits)
                .map(|i| {
                    let d = (next() % 10) as u8;
                    char::from(b'0' + if i == 0 { d.max(1) } else { d })
                })
                .collect();
            text.push_str(&int);
            if next() % 3 != 0 {
                let cut = (next() % digits as u64) as usize;
                text.insert(text.len() - cut.max(1).min(int.len()), '.');
                if text.ends_with('.') || text.starts_with('.') || text.starts_with("-.") {
                    text.push('0');
                }
            }
            same_as_serde(&text);
            let object = format!(
                r#"{{"n":{text},"s":"x{}","k{}":[{text},true]}}"#,
                next() % 100,
                next() % 3
            );
            same_as_serde(&object);
        }
    }

    #[test]
    fn a_repeated_shape_gives_the_same_values_as_serde_json() {
        let mut shape = Shape::default();
        for text in [
            r#"{"value":21.5,"unit":"cel","ok":true}"#,
            r#"{"value":22,"unit":"fah","ok":false}"#,
            r#"{"value":{"x":[1,2]},"unit":null,"ok":"yes"}"#,
            r#"{"unit":"cel","value":21.5,"ok":true}"#,
            r#"{"value":1,"unit":"cel"}"#,
            r#"{"value":1,"unit":"cel","ok":true,"extra":1}"#,
            r#"{"value":1,"value":2,"unit":"cel"}"#,
            r#"{"value":1,"value":2,"unit":"cel"}"#,
            r#"{"value":1,"unit":"c\u00e9l"}"#,
            r#"{"value":1,"units":"cel"}"#,
            r#"{"value":1,"unit":"cel"}"#,
            r#"{"value":1,"unit\u0073":"cel"}"#,
            r#"{"value":1,"unit":"cel"}"#,
            r#"{"value":1,"uni":"cel"}"#,
            r#"{"value":1,"unit":"cel"}"#,
            r#"{}"#,
            "[1]",
            r#"{"value":1,"unit":"cel"}"#,
        ] {
            let ours = parse(text, &mut shape).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
    }

    #[test]
    fn a_shape_stays_bounded() {
        let mut shape = Shape::default();
        let big: Map<String, Value> = (0..1000)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        let text = Value::Object(big).to_string();
        assert_eq!(
            parse(&text, &mut shape).unwrap().as_object().map(Map::len),
            Some(1000)
        );
        assert!(shape.names.is_none());
        assert!(shape.members.capacity() <= MAX_SHAPE_MEMBERS);
        let long = format!(r#"{{"{}":1}}"#, "n".repeat(2000));
        parse(&long, &mut shape).unwrap();
        assert!(shape.names.is_none());
        parse(r#"{"a":1}"#, &mut shape).unwrap();
        assert_eq!(shape.names.as_ref().map(Map::len), Some(1));
    }
}
