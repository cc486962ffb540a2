//! Event data as a `serde_json::Value`, built without serde's generic visitor for the usual
//! shapes of notification data.
//!
//! [`parse`] gives the same value as `serde_json::from_str::<Value>` (and the same error, which
//! it takes from serde_json). Text in the common subset of JSON (strings without escapes,
//! integers and decimals that convert exactly, nesting to [`MAX_FAST_DEPTH`]) is read by a
//! direct scanner that sizes each top-level object from a hint; anything else (an escape, an
//! exponent, a long number, an error) is handed to serde_json whole.

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

/// `text` as a JSON value, exactly as `serde_json::from_str::<Value>(text)` reads it.
/// `object_hint` is the number of members to reserve for a top-level object (the size of the
/// previous value of the same property, say).
pub(crate) fn parse(text: &str, object_hint: usize) -> Result<Value, serde_json::Error> {
    if fast_path_agrees()
        && let Some(value) = Scanner::new(text).document(object_hint)
    {
        return Ok(value);
    }
    serde_json::from_str(text)
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
                .zip(Scanner::new(probe).document(0))
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
    fn document(mut self, object_hint: usize) -> Option<Value> {
        self.skip_whitespace();
        let value = match self.peek()? {
            b'{' => self.object(object_hint, 0)?,
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
            b'{' => self.object(0, depth),
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
        let len = self.bytes.get(start..)?.iter().position(|&b| {
            // serde_json refuses control characters in strings; an escape is left to it.
            b == b'"' || b == b'\\' || b < 0x20
        })?;
        let end = start + len;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end)
    }

    fn object(&mut self, capacity: usize, depth: usize) -> Option<Value> {
        if depth >= MAX_FAST_DEPTH {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        let mut map = Map::with_capacity(capacity);
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Object(map));
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            // serde_json gives keys of its own (`raw_value`, `arbitrary_precision`) a meaning.
            if map.is_empty() && key.starts_with("$serde_json::private::") {
                return None;
            }
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            map.insert(key.to_owned(), value);
            self.skip_whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.skip_whitespace();
                }
                b'}' => {
                    self.at += 1;
                    return Some(Value::Object(map));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        if depth >= MAX_FAST_DEPTH {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.skip_whitespace();
                }
                b']' => {
                    self.at += 1;
                    return Some(Value::Array(items));
                }
                _ => return None,
            }
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
        let ours = parse(text, 3);
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
    fn reserves_the_hinted_members_for_a_top_level_object() {
        let Ok(Value::Object(map)) = parse(r#"{"a":1}"#, 8) else {
            panic!("an object");
        };
        assert_eq!(map.len(), 1);
        assert_eq!(
            Scanner::new("[1]").document(8),
            Some(serde_json::json!([1]))
        );
    }
}
