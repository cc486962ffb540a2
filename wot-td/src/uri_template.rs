//! RFC 6570 URI templates, as TD forms use them (`/things/{id}`, `/weather{?lat,lon}`).
//!
//! All four levels are supported: the operators `+ # . / ; ? &`, prefixes (`{var:3}`) and
//! explode (`{list*}`). Values are JSON: strings, numbers and booleans expand as text,
//! arrays as lists, objects as key/value pairs, `null` as undefined (left out).

use std::fmt::Write as _;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::DataSchema;
use crate::value_check::ValueError;

/// A template that cannot be parsed, or a variable whose value does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriTemplateError {
    /// The template is malformed (unclosed `{`, stray `}`, bad variable name, ...).
    #[error("malformed URI template at byte {position}: {reason}")]
    Syntax {
        /// Byte offset in the template.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A value does not satisfy the variable's schema in `uriVariables`.
    #[error("URI variable `{name}` is invalid: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidValue {
        /// The variable.
        name: String,
        /// The violations.
        errors: Vec<ValueError>,
    },
    /// The expanded reference cannot be resolved to an absolute URL.
    #[error("cannot resolve `{reference}`: {reason}")]
    Unresolvable {
        /// The expanded reference.
        reference: String,
        /// What failed.
        reason: String,
    },
}

#[derive(Debug)]
pub(crate) enum Part<'a> {
    Literal(&'a str),
    Expr {
        op: Option<char>,
        vars: Vec<VarSpec<'a>>,
    },
}

#[derive(Debug)]
pub(crate) struct VarSpec<'a> {
    name: &'a str,
    prefix: Option<usize>,
    explode: bool,
}

/// Parses a template into literal and expression parts.
pub(crate) fn parse_template(template: &str) -> Result<Vec<Part<'_>>, UriTemplateError> {
    let syntax = |position: usize, reason: &str| UriTemplateError::Syntax {
        position,
        reason: reason.to_owned(),
    };
    let mut parts = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                parts.push(Part::Literal(rest));
                break;
            }
            Some(i) if rest.as_bytes().get(i) == Some(&b'}') => {
                return Err(syntax(offset + i, "`}` without `{`"));
            }
            Some(i) => {
                // `i` is the position of an ASCII `{`, so both splits are on boundaries.
                let (literal, open) = rest.split_at_checked(i).unwrap_or((rest, ""));
                if !literal.is_empty() {
                    parts.push(Part::Literal(literal));
                }
                let after = open.strip_prefix('{').unwrap_or(open);
                let (body, tail) = after
                    .split_once('}')
                    .ok_or_else(|| syntax(offset + i, "`{` is never closed"))?;
                if body.contains('{') {
                    return Err(syntax(offset + i, "nested `{`"));
                }
                let (op, list) = match body.chars().next() {
                    Some(c @ ('+' | '#' | '.' | '/' | ';' | '?' | '&')) => {
                        (Some(c), body.strip_prefix(c).unwrap_or(body))
                    }
                    Some('=' | ',' | '!' | '@' | '|') => {
                        return Err(syntax(offset + i + 1, "reserved operator"));
                    }
                    _ => (None, body),
                };
                let mut vars = Vec::new();
                for spec in list.split(',') {
                    let (name, explode, prefix) = if let Some(n) = spec.strip_suffix('*') {
                        (n, true, None)
                    } else if let Some((n, len)) = spec.split_once(':') {
                        let len: usize = len
                            .parse()
                            .ok()
                            .filter(|l| (1..10_000).contains(l))
                            .ok_or_else(|| syntax(offset + i, "bad prefix length"))?;
                        (n, false, Some(len))
                    } else {
                        (spec, false, None)
                    };
                    // `-` is outside RFC 6570's variable names, but producers use it
                    // (Eclipse Ditto's `response-required`): accepted and matched
                    // literally; validation warns (`nonstandard_names`).
                    let valid_name = !name.is_empty()
                        && name.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '%' | '-')
                        });
                    if !valid_name {
                        return Err(syntax(offset + i, &format!("bad variable name `{name}`")));
                    }
                    vars.push(VarSpec {
                        name,
                        prefix,
                        explode,
                    });
                }
                parts.push(Part::Expr { op, vars });
                offset += rest.len() - tail.len();
                rest = tail;
            }
        }
    }
    Ok(parts)
}

/// The names of the variables a template uses, in order.
///
/// # Errors
/// [`UriTemplateError::Syntax`] for a malformed template.
pub fn uri_template_variables(template: &str) -> Result<Vec<&str>, UriTemplateError> {
    Ok(parse_template(template)?
        .into_iter()
        .flat_map(|p| match p {
            Part::Literal(_) => Vec::new(),
            Part::Expr { vars, .. } => vars.into_iter().map(|v| v.name).collect(),
        })
        .collect())
}

/// Expands an RFC 6570 template with JSON values; variables without a value (or with
/// `null`) are left out, as the RFC says.
///
/// ```
/// use wot_td::expand_uri_template;
/// let vars = serde_json::json!({"id": "sensor 1", "unit": "C", "lat": 52.5});
/// let vars = vars.as_object().unwrap();
/// assert_eq!(
///     expand_uri_template("/things/{id}/temp{?unit,lat,missing}", vars).unwrap(),
///     "/things/sensor%201/temp?unit=C&lat=52.5"
/// );
/// ```
///
/// # Errors
/// [`UriTemplateError::Syntax`] for a malformed template.
pub fn expand_uri_template(
    template: &str,
    variables: &Map<String, Value>,
) -> Result<String, UriTemplateError> {
    let mut out = String::with_capacity(template.len());
    for part in parse_template(template)? {
        match part {
            Part::Literal(text) => encode(&mut out, text, true),
            Part::Expr { op, vars } => expand_expr(&mut out, op, &vars, variables),
        }
    }
    Ok(out)
}

/// Checks each given variable against its schema in `schemas` (variables not listed
/// there are not checked), then expands the template.
///
/// # Errors
/// [`UriTemplateError::InvalidValue`] for the first variable whose value does not fit,
/// or [`UriTemplateError::Syntax`].
pub fn expand_uri_template_checked(
    template: &str,
    variables: &Map<String, Value>,
    schemas: &IndexMap<&str, &DataSchema>,
) -> Result<String, UriTemplateError> {
    for (name, value) in variables {
        if let Some(schema) = schemas.get(name.as_str()) {
            let errors = schema.validate_value(value);
            if !errors.is_empty() {
                return Err(UriTemplateError::InvalidValue {
                    name: name.clone(),
                    errors,
                });
            }
        }
    }
    expand_uri_template(template, variables)
}

struct OpSpec {
    first: &'static str,
    sep: &'static str,
    named: bool,
    if_empty: &'static str,
    reserved: bool,
}

fn op_spec(op: Option<char>) -> OpSpec {
    let (first, sep, named, if_empty, reserved) = match op {
        Some('+') => ("", ",", false, "", true),
        Some('#') => ("#", ",", false, "", true),
        Some('.') => (".", ".", false, "", false),
        Some('/') => ("/", "/", false, "", false),
        Some(';') => (";", ";", true, "", false),
        Some('?') => ("?", "&", true, "=", false),
        Some('&') => ("&", "&", true, "=", false),
        _ => ("", ",", false, "", false),
    };
    OpSpec {
        first,
        sep,
        named,
        if_empty,
        reserved,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn expand_expr(
    out: &mut String,
    op: Option<char>,
    vars: &[VarSpec<'_>],
    values: &Map<String, Value>,
) {
    let spec = op_spec(op);
    let mut first = true;
    for var in vars {
        let Some(value) = values.get(var.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let mut piece = String::new();
        match value {
            Value::Array(items) => {
                let items: Vec<String> = items.iter().filter_map(scalar).collect();
                if items.is_empty() {
                    continue;
                }
                if var.explode {
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            piece.push_str(spec.sep);
                        }
                        named_value(&mut piece, &spec, var.name, item);
                    }
                } else {
                    if spec.named {
                        piece.push_str(var.name);
                        piece.push('=');
                    }
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            piece.push(',');
                        }
                        encode(&mut piece, item, spec.reserved);
                    }
                }
            }
            Value::Object(map) => {
                let pairs: Vec<(&String, String)> = map
                    .iter()
                    .filter_map(|(k, v)| scalar(v).map(|s| (k, s)))
                    .collect();
                if pairs.is_empty() {
                    continue;
                }
                if var.explode {
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            piece.push_str(spec.sep);
                        }
                        encode(&mut piece, k, spec.reserved);
                        piece.push('=');
                        encode(&mut piece, v, spec.reserved);
                    }
                } else {
                    if spec.named {
                        piece.push_str(var.name);
                        piece.push('=');
                    }
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            piece.push(',');
                        }
                        encode(&mut piece, k, spec.reserved);
                        piece.push(',');
                        encode(&mut piece, v, spec.reserved);
                    }
                }
            }
            other => {
                let Some(text) = scalar(other) else { continue };
                let text = match var.prefix {
                    Some(n) => text.chars().take(n).collect(),
                    None => text,
                };
                named_value(&mut piece, &spec, var.name, &text);
            }
        }
        out.push_str(if first { spec.first } else { spec.sep });
        first = false;
        out.push_str(&piece);
    }
}

fn named_value(out: &mut String, spec: &OpSpec, name: &str, value: &str) {
    if spec.named {
        out.push_str(name);
        if value.is_empty() {
            out.push_str(spec.if_empty);
            return;
        }
        out.push('=');
    }
    encode(out, value, spec.reserved);
}

/// Percent-encodes `text`; `reserved` keeps reserved characters and existing
/// `%XX` triplets (the `+` and `#` operators, and literals).
fn encode(out: &mut String, text: &str, reserved: bool) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let is_reserved = matches!(
            b,
            b':' | b'/'
                | b'?'
                | b'#'
                | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        );
        let triplet = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if unreserved || (reserved && (is_reserved || triplet)) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        i += 1;
    }
}

/// The variables of `template` whose names RFC 6570 does not allow but this crate
/// accepts (those with `-`), each with the character offset of its name in `template`.
pub(crate) fn nonstandard_names(template: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut in_expression = false;
    let mut name_start = None;
    for (chars, (i, c)) in template.char_indices().enumerate() {
        match c {
            '{' => {
                in_expression = true;
                name_start = Some((i + 1, chars + 1));
            }
            _ if !in_expression => {}
            '+' | '#' | '.' | '/' | ';' | '?' | '&' if name_start == Some((i, chars)) => {
                name_start = Some((i + 1, chars + 1));
            }
            ',' | '}' | '*' | ':' => {
                if let Some((start, at)) = name_start.take()
                    && let Some(name) = template.get(start..i)
                    && name.contains('-')
                {
                    out.push((at, name));
                }
                in_expression = c != '}';
                if c == ',' {
                    name_start = Some((i + 1, chars + 1));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_a_dash_are_found_with_their_offset() {
        let t = "http://d/things{?channel,timeout,response-required}{/a-b*}";
        assert_eq!(
            nonstandard_names(t),
            [(33, "response-required"), (53, "a-b")]
        );
        assert!(nonstandard_names("http://d/a-b/{x}").is_empty());
    }
}
