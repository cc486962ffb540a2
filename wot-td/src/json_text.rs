//! A scanner over the common subset of JSON text, for reading values without building them.
//!
//! The subset: strings without escapes or control characters, `true`, `false`, `null`,
//! integers that fit 64 bits, decimals without an exponent whose digits fit in 2⁵³ (with at
//! most 22 after the point), arrays and objects nested at most [`MAX_DEPTH`] deep. serde_json
//! reads every text of the subset, to the same values. Everything else (an escape, an
//! exponent, a long number, deeper nesting, text that is not JSON) makes a method return
//! `None`: "not in the subset, ask serde_json", which then gives the value or the error.

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{Number, Value};

/// Deepest nesting read here; deeper text goes to serde_json (whose limit, 128, then applies).
pub(crate) const MAX_DEPTH: usize = 32;

/// Exact powers of ten as `f64` (10²² is the last one an `f64` holds exactly).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Largest significand converted here: every integer up to 2⁵³ is an exact `f64`, so
/// `significand / 10^k` (k ≤ 22) is one correctly rounded division, the value serde_json gives
/// with or without its `float_roundtrip` feature.
const MAX_EXACT_SIGNIFICAND: u64 = 1 << 53;

/// Whether numbers read here are the numbers serde_json builds in this program: not when
/// feature unification turned on serde_json's `arbitrary_precision` (numbers kept as their
/// text), which this scanner does not reproduce. Checked once.
pub(crate) fn agrees_with_serde_json() -> bool {
    static AGREES: AtomicU8 = AtomicU8::new(0);
    match AGREES.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let probe = "[1.50,-0,7]";
            let ours: Option<Vec<Value>> = {
                let mut s = Scanner::new(probe);
                s.open(b']', 0).and_then(|_| {
                    let mut items = Vec::new();
                    loop {
                        items.push(s.scalar()?);
                        if !s.more(b']')? {
                            break Some(items);
                        }
                    }
                })
            };
            let agrees = serde_json::from_str::<Value>(probe)
                .ok()
                .zip(ours)
                .is_some_and(|(theirs, ours)| theirs == Value::Array(ours));
            AGREES.store(if agrees { 1 } else { 2 }, Ordering::Relaxed);
            agrees
        }
    }
}

/// `a == b`, comparing short texts (member names, enum strings) byte by byte instead of
/// calling `memcmp`, which costs more than the comparison for a few bytes.
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// A cursor over JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub(crate) at: usize,
    /// Tokens read so far (scalars, member names, arrays and objects): what the value
    /// built from the text would hold, for estimating its size before it is built.
    pub(crate) tokens: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            at: 0,
            tokens: 0,
        }
    }

    /// The text from byte `start` to the cursor.
    pub(crate) fn since(&self, start: usize) -> Option<&'a str> {
        self.text.get(start..self.at)
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.bytes.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `literal` if the text goes on with it.
    fn keyword(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.at.checked_add(literal.len())?;
        (self.bytes.get(self.at..end)? == literal).then(|| {
            self.at = end;
            self.tokens += 1;
        })
    }

    /// One whole document: a value and nothing after it but whitespace.
    pub(crate) fn document(&mut self) -> Option<()> {
        self.skip_whitespace();
        self.skip_value(0)?;
        self.at_end().then_some(())
    }

    /// Steps over the value at the cursor, at nesting `depth`.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => {
                let mut more = self.open(b'}', depth)?;
                while more {
                    self.member_name()?;
                    self.skip_value(depth + 1)?;
                    more = self.more(b'}')?;
                }
                Some(())
            }
            b'[' => {
                let mut more = self.open(b']', depth)?;
                while more {
                    self.skip_value(depth + 1)?;
                    more = self.more(b']')?;
                }
                Some(())
            }
            _ => self.skip_scalar(),
        }
    }

    /// Steps over the scalar at the cursor without building it.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.keyword(b"true"),
            b'f' => self.keyword(b"false"),
            b'n' => self.keyword(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => None,
        }
    }

    /// The scalar at the cursor (not an array or object) as serde_json reads it.
    pub(crate) fn scalar(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(|s| Value::String(s.to_owned())),
            b't' => self.keyword(b"true").map(|()| Value::Bool(true)),
            b'f' => self.keyword(b"false").map(|()| Value::Bool(false)),
            b'n' => self.keyword(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => None,
        }
    }

    /// A string without escapes or control characters, without its quotes.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
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
        self.tokens += 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end)
    }

    /// A member's name and the `:` after it. serde_json gives names of its own
    /// (`raw_value`, `arbitrary_precision`) a meaning: those are left to it.
    pub(crate) fn member_name(&mut self) -> Option<&'a str> {
        let name = self.string()?;
        if name.starts_with("$serde_json::private::") {
            return None;
        }
        self.skip_whitespace();
        if self.peek()? != b':' {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        Some(name)
    }

    /// Steps over the `{` or `[` at the cursor, at nesting `depth`, and the whitespace after
    /// it: `false` when `close` follows at once (the value is empty; `close` is stepped over
    /// too), `true` when a member or element follows. `None` from [`MAX_DEPTH`] on.
    #[inline]
    pub(crate) fn open(&mut self, close: u8, depth: usize) -> Option<bool> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.tokens += 1;
        self.skip_whitespace();
        let empty = self.peek()? == close;
        if empty {
            self.at += 1;
        }
        Some(!empty)
    }

    /// After a member or element: `true` at a `,` (another one follows), `false` at `close`
    /// (the value ends); each is stepped over, with the whitespace around a `,`.
    #[inline]
    pub(crate) fn more(&mut self, close: u8) -> Option<bool> {
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
    pub(crate) fn number(&mut self) -> Option<Number> {
        self.tokens += 1;
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
            _ => return integer(negative, significand),
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
        Number::from_f64(if negative { -magnitude } else { magnitude })
    }
}

/// An integer as serde_json keeps it: `u64` when positive, `i64` when negative, `f64` for
/// `-0` and below `i64::MIN`.
fn integer(negative: bool, significand: u64) -> Option<Number> {
    if !negative {
        return Some(significand.into());
    }
    let neg = (significand as i64).wrapping_neg();
    if neg >= 0 {
        Number::from_f64(-(significand as f64))
    } else {
        Some(neg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Option<Value> {
        let mut s = Scanner::new(text);
        let v = s.scalar()?;
        s.at_end().then_some(v)
    }

    #[test]
    fn scalars_read_as_serde_json_reads_them() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "1.50",
            "21.37",
            "-7",
            "18446744073709551615",
            "-9223372036854775808",
            "-9223372036854775809",
            "true",
            "false",
            "null",
            r#""plain""#,
            r#""ünï ✓""#,
            "0.1",
            "123456789.123456",
            "9007199254740992",
        ] {
            let theirs: Value = serde_json::from_str(text).unwrap();
            let ours = scalar(text).unwrap_or_else(|| panic!("{text} is in the subset"));
            assert_eq!(theirs, ours, "{text}");
            assert_eq!(theirs.to_string(), ours.to_string(), "{text}");
        }
    }

    #[test]
    fn outside_the_subset_is_left_to_serde_json() {
        for text in [
            "1e5",
            "1.5E3",
            "01",
            "-",
            "1.",
            ".5",
            "18446744073709551616",
            r#""a\"b""#,
            "\"tab\there\"",
            "tru",
            "nul",
            "+1",
            "9007199254740993.5",
        ] {
            assert_eq!(scalar(text), None, "{text}");
        }
        assert!(Scanner::new(&"[".repeat(40)).document().is_none());
        assert!(
            Scanner::new(r#"{"$serde_json::private::Number":"1"}"#)
                .document()
                .is_none()
        );
        assert!(Scanner::new("[1,2] x").document().is_none());
        assert!(
            Scanner::new(" { \"a\" : [ 1 , { } , [ ] ] } ")
                .document()
                .is_some()
        );
    }
}
