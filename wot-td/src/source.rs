//! Reading JSON source text again: positions of JSON paths, and repeated keys.
//!
//! Both run only on text that `serde_json` already parsed, so the scanner can be simple:
//! it never has to report a syntax error, only to give up (`None`) if the text is not
//! what it expects.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Position, Rule};
use crate::parse::push_key;

/// Fills in the [`Position`] of every diagnostic that has none, from its path, in one
/// pass over `source`. A path that does not fully exist (a missing term) gets the
/// position of its deepest existing ancestor; the last of repeated keys is the one found,
/// as it is the one a parser keeps.
pub(crate) fn locate_all(source: &[u8], diagnostics: &mut [Diagnostic]) {
    let mut wanted = HashSet::new();
    for d in diagnostics.iter().filter(|d| d.position.is_none()) {
        wanted.extend(prefixes(&d.path));
    }
    if wanted.is_empty() {
        return;
    }
    let mut found = HashMap::new();
    let mut sc = Scanner::new(source);
    let mut path = String::new();
    // The text parsed as JSON before; if the scanner still gives up, what it found so
    // far is used.
    let _ = sc.find_paths(&mut path, &wanted, &mut found);
    let positions = positions_of(source, found.values().copied());
    for d in diagnostics.iter_mut().filter(|d| d.position.is_none()) {
        d.position = prefixes(&d.path)
            .rev()
            .find_map(|p| found.get(p))
            .and_then(|offset| positions.get(offset).copied());
    }
}

/// The position of one path (or of its deepest existing ancestor) in `source`.
pub(crate) fn locate(source: &[u8], path: &str) -> Option<Position> {
    let mut d = [Diagnostic::error(Rule::TermType, path, "")];
    locate_all(source, &mut d);
    d.first().and_then(|d| d.position)
}

/// Line and column of each byte offset, in one sweep over the text.
fn positions_of(
    source: &[u8],
    offsets: impl IntoIterator<Item = usize>,
) -> HashMap<usize, Position> {
    let mut offsets: Vec<usize> = offsets.into_iter().collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut out = HashMap::with_capacity(offsets.len());
    let (mut at, mut line, mut column) = (0usize, 1usize, 1usize);
    for offset in offsets {
        for &b in source.get(at..offset).unwrap_or_default() {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Count characters, not bytes: skip UTF-8 continuation bytes.
                column += 1;
            }
        }
        at = at.max(offset);
        out.insert(offset, Position { line, column });
    }
    out
}

/// The path itself and every ancestor path, root (`""`) first: `a.b[0]` gives `""`,
/// `a`, `a.b`, `a.b[0]`. Keys quoted as `["..."]` may contain `.` and `[`.
fn prefixes(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    let mut cuts = vec![0];
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in path.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '.' | '[' if i > 0 => cuts.push(i),
            _ => {}
        }
    }
    if !path.is_empty() {
        cuts.push(path.len());
    }
    cuts.into_iter().filter_map(move |i| path.get(..i))
}

/// Objects whose keys are names chosen by the author (of affordances, definitions,
/// variables, schema members) rather than terms of the vocabulary.
const NAME_MAPS: [&str; 6] = [
    "properties",
    "actions",
    "events",
    "securityDefinitions",
    "schemaDefinitions",
    "uriVariables",
];

/// At most this many repeated keys are reported for one document.
const MAX_DUPLICATES: usize = 100;

/// Values larger than this are compared as text only: equal text is identical, anything
/// else conflicting (parsing both to compare them would make nested repeats quadratic).
const MAX_COMPARED_BYTES: usize = 1 << 20;

/// Every repeated key of `source`, with its position.
///
/// - A name repeated in a map of names (`properties`, `actions`, `events`,
///   `securityDefinitions`, `schemaDefinitions`, `uriVariables`, a schema's
///   `properties`) is an error, even with the same definition: names identify
///   affordances and definitions and must be unique.
/// - A term repeated with a different value is an error: which one holds is undefined
///   (most parsers keep the last, some the first, some refuse the document).
/// - A term repeated with the same value is a warning.
pub(crate) fn duplicates(source: &[u8]) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut sc = Scanner::new(source);
    let mut path = String::new();
    let _ = sc.find_duplicates(&mut path, false, &mut found);
    let positions = positions_of(source, found.iter().map(|(_, offset)| *offset));
    found
        .into_iter()
        .map(|(d, offset)| d.at(positions.get(&offset).copied()))
        .collect()
}

/// A minimal JSON scanner over text that already parsed.
struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a [u8]) -> Self {
        Scanner { src, pos: 0 }
    }

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
        let mut plain = true;
        loop {
            match self.peek()? {
                b'\\' => {
                    plain = false;
                    self.pos += 2;
                }
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        let token = self.src.get(start..self.pos)?;
        if plain {
            let inner = token.get(1..token.len() - 1)?;
            return std::str::from_utf8(inner).ok().map(str::to_owned);
        }
        serde_json::from_slice(token).ok()
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

    /// Calls `member(self, key or index)` for each member of the object or array at the
    /// current position, with the scanner at the member's value; `member` must consume
    /// the value. Anything else is skipped.
    fn members(&mut self, mut member: impl FnMut(&mut Self, Member) -> Option<()>) -> Option<()> {
        self.skip_ws();
        let close = match self.peek()? {
            b'{' => b'}',
            b'[' => b']',
            _ => return self.skip_value(),
        };
        self.pos += 1;
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.peek()? {
                c if c == close => {
                    self.pos += 1;
                    return Some(());
                }
                b',' => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            if close == b'}' {
                let key_at = self.pos;
                let key = self.string()?;
                self.skip_ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                self.skip_ws();
                member(self, Member::Key(key, key_at))?;
            } else {
                member(self, Member::Index(index))?;
                index += 1;
            }
        }
    }

    /// Records the offset of the value at each path of `wanted` (the last one for a
    /// repeated key), descending only into wanted paths.
    fn find_paths(
        &mut self,
        path: &mut String,
        wanted: &HashSet<&str>,
        found: &mut HashMap<String, usize>,
    ) -> Option<()> {
        self.skip_ws();
        if !wanted.contains(path.as_str()) {
            return self.skip_value();
        }
        found.insert(path.clone(), self.pos);
        self.members(|sc, member| {
            let len = path.len();
            member.push_to(path);
            let result = sc.find_paths(path, wanted, found);
            path.truncate(len);
            result
        })
    }

    /// Reports repeated keys below the current value (see [`duplicates`]).
    fn find_duplicates(
        &mut self,
        path: &mut String,
        names: bool,
        out: &mut Vec<(Diagnostic, usize)>,
    ) -> Option<()> {
        let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
        let src = self.src;
        self.members(|sc, member| {
            let len = path.len();
            member.push_to(path);
            let start = sc.pos;
            let child_names = match &member {
                Member::Key(key, _) => !names && NAME_MAPS.contains(&key.as_str()),
                Member::Index(_) => false,
            };
            let result = sc.find_duplicates(path, child_names, out);
            if let (Member::Key(key, key_at), Some(())) = (&member, result) {
                let span = (start, sc.pos);
                match seen.get(key) {
                    Some(&earlier) if out.len() < MAX_DUPLICATES => {
                        out.push((repeated(src, path, key, names, earlier, span), *key_at));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(key.clone(), span);
                    }
                }
            }
            path.truncate(len);
            result
        })
    }
}

/// One member of an object (its key and the key's offset) or array (its index).
enum Member {
    Key(String, usize),
    Index(usize),
}

impl Member {
    fn push_to(&self, path: &mut String) {
        match self {
            Member::Key(key, _) => push_key(path, key),
            Member::Index(i) => {
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
            }
        }
    }
}

/// The diagnostic for `key` repeated at `path`, with the value spans of both.
fn repeated(
    src: &[u8],
    path: &str,
    key: &str,
    names: bool,
    first: (usize, usize),
    second: (usize, usize),
) -> Diagnostic {
    let text = |(a, b): (usize, usize)| src.get(a..b).unwrap_or_default();
    if names {
        return Diagnostic::error(
            Rule::DuplicateKey,
            path,
            format!(
                "`{key}` is defined twice; the names of affordances and definitions must be unique in their map"
            ),
        );
    }
    let (a, b) = (text(first), text(second));
    let identical = a == b
        || (a.len() <= MAX_COMPARED_BYTES
            && b.len() <= MAX_COMPARED_BYTES
            && matches!(
                (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)),
                (Ok(x), Ok(y)) if x == y
            ));
    if identical {
        Diagnostic::warning(
            Rule::DuplicateIdentical,
            path,
            format!("`{key}` is given twice with the same value; keep one"),
        )
    } else {
        Diagnostic::error(
            Rule::DuplicateKey,
            path,
            format!("`{key}` is given twice with different values; which one holds is undefined"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_at_keys_and_indexes_but_not_inside_quotes() {
        let all: Vec<_> = prefixes(r#"a.b[0]["x.y[1]"].c"#).collect();
        assert_eq!(
            all,
            [
                "",
                "a",
                "a.b",
                "a.b[0]",
                r#"a.b[0]["x.y[1]"]"#,
                r#"a.b[0]["x.y[1]"].c"#
            ]
        );
        assert_eq!(prefixes("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn positions_count_characters() {
        let src = "{\"é\": 1,\n \"b\": [true, \"x\"]}".as_bytes();
        let mut d = vec![
            Diagnostic::error(Rule::TermType, "b[1]", ""),
            Diagnostic::error(Rule::TermType, "é", ""),
            Diagnostic::error(Rule::TermType, "b.missing", ""),
        ];
        locate_all(src, &mut d);
        let p: Vec<_> = d
            .iter()
            .map(|d| d.position.map(|p| (p.line, p.column)))
            .collect();
        assert_eq!(p, [Some((2, 14)), Some((1, 7)), Some((2, 7))]);
    }

    #[test]
    fn repeated_keys_are_classified() {
        let src = br#"{"title": "a", "title": "a", "type": 1, "type": 2,
            "properties": {"p": {"x": 1}, "p": {"x": 1}}}"#;
        let d = duplicates(src);
        let summary: Vec<_> = d.iter().map(|d| (d.rule, d.path.as_str())).collect();
        assert_eq!(
            summary,
            [
                (Rule::DuplicateIdentical, "title"),
                (Rule::DuplicateKey, "type"),
                (Rule::DuplicateKey, "properties.p"),
            ]
        );
        assert_eq!(
            d[1].position,
            Some(Position {
                line: 1,
                column: 41
            })
        );
    }
}
