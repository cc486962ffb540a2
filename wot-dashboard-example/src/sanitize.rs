//! Making remote text safe for a terminal.
//!
//! A Thing controls its TD (titles, ids, property and event names, units), its event data and
//! the text of the errors its server causes. Written to a terminal as they are, control
//! characters in them would move the cursor, change colours, set the window title or worse
//! (`ESC ]`, `ESC [`, C1 `CSI`). Everything the dashboard draws or prints that came from
//! outside goes through [`text`] (or [`clip`], which also shortens it) first.
//!
//! The rule: every character for which [`char::is_control`] holds (C0, DEL and C1) and every
//! Unicode bidirectional formatting character (which reorders what follows it on screen) is
//! replaced by a visible escape: `\n`, `\r`, `\t`, `\e` for ESC, `\xHH` for the other C0, DEL
//! and C1 characters, `\u{HHHH}` for the bidi ones. A backslash itself is left alone, so text
//! without such characters comes back unchanged (and unallocated).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The Unicode bidirectional formatting characters (embeddings, overrides and isolates, and
/// the implicit marks), which reorder the text that follows them.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every unsafe character (see the [module docs](self)) replaced by a visible
/// escape. Borrows when there is nothing to replace.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{1b}' => out.push_str("\\e"),
        c if c.is_control() => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if is_bidi_control(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// [`text`], cut to at most `max` characters (escapes count as what they show): a cut text
/// ends in `…`. Reads at most about `max` characters of the input, however long it is.
pub fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut shown = 0usize;
    for c in text.chars() {
        let start = out.len();
        push_escaped(&mut out, c);
        shown += out[start..].chars().count();
        if shown > max {
            // Too long: keep max - 1 characters and the ellipsis.
            out.truncate(start);
            let keep = max.saturating_sub(1);
            let mut kept = out.chars().count();
            while kept > keep {
                out.pop();
                kept -= 1;
            }
            if max > 0 {
                out.push('…');
            }
            return out;
        }
    }
    out
}

/// A JSON line with the DEL and C1 control characters (which JSON allows raw inside strings,
/// and which `serde_json` writes raw) escaped as `\u00XX`. Outside strings JSON has only
/// ASCII structure, so the result is the same JSON value.
pub fn json_line(line: &str) -> Cow<'_, str> {
    if !line.chars().any(char::is_control) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 12);
    for c in line.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for plain in ["", "Water pump", "4.2 bar", "°C µS/cm 温度", r"C:\path"] {
            assert!(matches!(text(plain), Cow::Borrowed(t) if t == plain));
        }
    }

    #[test]
    fn terminal_escapes_become_visible() {
        let title = "Pump\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nX\u{9b}31m\u{7f}\u{202e}evil";
        let safe = text(title);
        assert_eq!(
            safe,
            "Pump\\e]0;pwned\\x07\\e[2J\\r\\nX\\x9b31m\\x7f\\u{202e}evil"
        );
        assert!(!safe.chars().any(is_unsafe));
    }

    #[test]
    fn clip_counts_what_is_shown_and_stops_early() {
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdefg", 6), "abcde…");
        assert_eq!(clip("ab\u{1b}cd", 4), "ab\\…");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(clip("abc", 1), "…");
        let huge = "x".repeat(10_000_000);
        assert_eq!(clip(&huge, 3).chars().count(), 3);
        for max in 0..12 {
            let cut = clip("a\u{1b}b\u{202e}c\td", max);
            assert!(cut.chars().count() <= max, "{max}: {cut}");
            assert!(!cut.chars().any(is_unsafe));
        }
    }

    #[test]
    fn json_lines_escape_del_and_c1_and_stay_json() {
        let value = serde_json::json!({"title": "a\u{7f}b\u{9b}c\u{1b}d"});
        let raw = value.to_string();
        let line = json_line(&raw);
        assert!(!line.chars().any(char::is_control), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).expect("still JSON");
        assert_eq!(back, value);
        assert!(matches!(json_line("{\"a\":1}"), Cow::Borrowed(_)));
    }
}
