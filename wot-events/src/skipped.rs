//! Affordances left out of a whole-Thing subscription or observation because this client
//! cannot use any of their forms.

use std::borrow::Cow;
use std::fmt::Write as _;

use wot_td::AffordanceKind;

use crate::error::Error;
use crate::thing::ConsumedThing;

/// An affordance that [`EventSubscriber::subscribe_all`](crate::EventSubscriber::subscribe_all)
/// or [`EventSubscriber::observe_all_properties`](crate::EventSubscriber::observe_all_properties)
/// left out, and why; the other affordances of the Thing are watched.
///
/// An affordance is skipped when none of its forms can be used by this client
/// ([`Error::is_unusable_form`]): only `file:`, `javascript:`, `data:`, `coap:`... hrefs, no
/// subprotocol or content type this crate speaks, or an `href` that does not resolve. Each
/// skip is also logged through `tracing` at `warn` level, with the Thing id and affordance
/// name (control characters escaped).
#[derive(Debug)]
#[non_exhaustive]
pub struct SkippedAffordance {
    /// The Thing's id (its title when it has none).
    pub thing_id: String,
    /// [`AffordanceKind::Property`] or [`AffordanceKind::Event`].
    pub kind: AffordanceKind,
    /// The affordance's name, as in the TD.
    pub name: String,
    /// Why it was skipped: [`ErrorKind::NoUsableForm`](crate::ErrorKind::NoUsableForm) (naming the
    /// schemes of its forms when none is served) or an [`ErrorKind::Form`](crate::ErrorKind::Form)
    /// naming an unresolvable `href`.
    pub error: Error,
}

impl SkippedAffordance {
    /// Records and logs a skipped affordance.
    fn new(thing: &ConsumedThing, kind: AffordanceKind, name: &str, error: Error) -> Self {
        tracing::warn!(
            thing = %escape_controls(thing.id()),
            affordance = %escape_controls(name),
            kind = kind.as_str(),
            error = %escape_controls(&error.to_string()),
            "skipping an affordance that has no usable form; the rest of the Thing is watched"
        );
        SkippedAffordance {
            thing_id: thing.id().to_owned(),
            kind,
            name: name.to_owned(),
            error,
        }
    }
}

/// What opening one affordance of a whole-Thing subscription or observation gave:
/// `Ok(Some(_))` when it opened; `Ok(None)` when this client cannot use its forms
/// ([`Error::is_unusable_form`]), after recording it in `skipped` and logging it; any other
/// error as it is.
pub(crate) fn unless_unusable<T>(
    opened: Result<T, Error>,
    skipped: &mut Vec<SkippedAffordance>,
    thing: &ConsumedThing,
    kind: AffordanceKind,
    name: &str,
) -> Result<Option<T>, Error> {
    match opened {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_unusable_form() => {
            skipped.push(SkippedAffordance::new(thing, kind, name, error));
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

impl std::fmt::Display for SkippedAffordance {
    /// `property `name` skipped: reason`; the text is as the Thing sent it (escape it before
    /// it reaches a terminal).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}` skipped: {}", self.kind, self.name, self.error)
    }
}

/// `text` with control characters (C0, DEL, C1) and Unicode bidirectional formatting
/// characters replaced by visible escapes (`\n`, `\x1b`, `\u{202e}`), for log lines that
/// quote text a Thing controls. Borrows when there is nothing to replace.
// NOTE (issue 16): `wot_alerts::escape_controls` repeats this rule with another escape format
// (`\u{1b}`) and without the bidirectional characters. It should have one home that both
// crates use (wot-td is the dependency they share); left as is until then.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert!(matches!(escape_controls("plain"), Cow::Borrowed("plain")));
        assert_eq!(
            escape_controls("a\u{1b}[2J\nb\u{9b}c\u{202e}d\u{7f}"),
            "a\\x1b[2J\\nb\\x9bc\\u{202e}d\\x7f"
        );
    }
}
