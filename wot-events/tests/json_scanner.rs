//! The reader of event and property data gives exactly what `serde_json::from_str::<Value>`
//! gives, on generated JSON texts and near-JSON texts: numbers at the edges of the direct
//! conversion (`-0`, `i64`/`u64` bounds, 2⁵³, long fractions, leading zeros, `1.`, `.5`,
//! `-`, exponents), strings with control characters, escapes and lone surrogates, duplicate
//! and reordered member names (several texts read in a row, as one property's
//! notifications are, so that the remembered object shape is tried on each), every kind of
//! whitespace and some that is not, deep nesting, trailing garbage, cut texts.

use proptest::prelude::*;
use serde_json::Value;
use wot_events::JsonSeries;

/// Reads `texts` in order through one series and checks each against serde_json: the same
/// value with the same text form (number kinds, member order), or both an error, the same.
fn check_series(texts: &[String]) -> Result<(), TestCaseError> {
    let mut series = JsonSeries::default();
    for text in texts {
        let ours = series.parse(text);
        let theirs = serde_json::from_str::<Value>(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b, "{:?}", text);
                prop_assert_eq!(a.to_string(), b.to_string(), "{:?}", text);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string(), "{:?}", text),
            _ => prop_assert!(
                false,
                "{:?}: ours {:?}, serde_json {:?}",
                text,
                ours,
                theirs
            ),
        }
    }
    Ok(())
}

/// Number texts at the edges, valid or not.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "0.0",
    "0.1",
    "0.30000000000000004",
    "1.0",
    "1.5",
    "-1.5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551615",
    "-18446744073709551616",
    "9007199254740992",
    "9007199254740993",
    "9007199254740992.0",
    "9007199254740993.0",
    "900719925474099.3",
    "900719925474099.31",
    "0.1234567890123456789012",
    "0.12345678901234567890123",
    "0.0000000000000000000001",
    "0.00000000000000000000001",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "1e400",
    "-1e400",
    "4.9e-324",
    "1e-400",
    "1e3",
    "1E-3",
    "2.5e+2",
    "1e",
    "1e+",
    "01",
    "-01",
    "00",
    "0x10",
    "-",
    "--1",
    "+1",
    "1.",
    "-1.",
    ".5",
    "-.5",
    "1..2",
    "1.2.3",
    "NaN",
    "Infinity",
    "-Infinity",
];

/// Whitespace: JSON's four kinds, or (when not `valid`) sometimes a character JSON does not
/// allow.
fn whitespace(valid: bool) -> impl Strategy<Value = String> {
    let invalid = if valid { 0 } else { 1 };
    prop::collection::vec(
        prop_oneof![
            8 => Just(""),
            4 => Just(" "),
            2 => Just("\n"),
            2 => Just("\t"),
            2 => Just("\r"),
            invalid => Just("\u{c}"),
            invalid => Just("\u{b}"),
            invalid => Just("\u{a0}"),
            invalid => Just("\u{feff}"),
        ],
        0..3,
    )
    .prop_map(|parts| parts.concat())
}

/// `digits` as text.
fn text(digits: Vec<u8>) -> String {
    digits.into_iter().map(|d| char::from(b'0' + d)).collect()
}

/// A number text; when `valid`, one JSON allows.
fn number(valid: bool) -> impl Strategy<Value = String> {
    let edges: Vec<&'static str> = EDGE_NUMBERS
        .iter()
        .copied()
        .filter(|n| !valid || serde_json::from_str::<Value>(n).is_ok())
        .collect();
    let digits = |max: usize| prop::collection::vec(0u8..10, 1..max);
    let first = if valid { 1u8 } else { 0 };
    let fraction_min = usize::from(valid);
    prop_oneof![
        3 => prop::sample::select(edges).prop_map(str::to_owned),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_map(|f| {
            serde_json::Number::from_f64(f).map_or_else(|| "0".to_owned(), |n| n.to_string())
        }),
        // Sign, integer digits (leading zeros when not valid), fraction, exponent.
        6 => (
            any::<bool>(),
            first..10,
            prop::collection::vec(0u8..10, 0..21),
            prop::option::of(prop::collection::vec(0u8..10, fraction_min..26)),
            prop::option::weighted(0.2, (prop::sample::select(&["e", "E", "e+", "e-"][..]), digits(4))),
        )
            .prop_map(move |(negative, lead, int, fraction, exponent)| {
                let mut s = String::new();
                if negative {
                    s.push('-');
                }
                s.push(char::from(b'0' + lead));
                if lead != 0 || !valid {
                    s.push_str(&text(int));
                }
                if let Some(f) = fraction {
                    s.push('.');
                    s.push_str(&text(f));
                }
                if let Some((e, d)) = exponent {
                    s.push_str(e);
                    s.push_str(&text(d));
                }
                s
            }),
    ]
}

/// A string literal: plain text, escapes, non-ASCII characters; when not `valid`, also raw
/// control characters, bad escapes, lone surrogates, and sometimes no closing quote.
fn string(valid: bool) -> impl Strategy<Value = String> {
    let invalid = if valid { 0 } else { 1 };
    let piece = prop_oneof![
        12 => "[a-z0-9 ]{0,6}",
        2 => Just("ünïcødé ✓ 😀".to_owned()),
        1 => Just("\u{7f}".to_owned()),
        1 => prop::sample::select(&[r#"\""#, r"\\", r"\/", r"\n", r"\t", r"\u00e9", r"\ud83d\ude00"][..])
            .prop_map(str::to_owned),
        invalid => (0u8..0x20).prop_map(|b| char::from(b).to_string()),
        invalid => prop::sample::select(&[r"\ud800", r"\udc00x", r"\x", r"\u12"][..])
            .prop_map(str::to_owned),
    ];
    let closed = if valid { 1.0 } else { 0.97 };
    (
        prop::collection::vec(piece, 0..4),
        prop::bool::weighted(closed),
    )
        .prop_map(|(pieces, closed)| {
            format!("\"{}{}", pieces.concat(), if closed { "\"" } else { "" })
        })
}

/// Member names: a few common ones (so that texts share shapes, repeat and reorder names),
/// an escaped one, serde_json's private ones, or any string literal.
fn key(valid: bool) -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(&["a", "b", "value", "unit", "", "ts"][..])
            .prop_map(|k| format!("\"{k}\"")),
        1 => prop::sample::select(
            &["$serde_json::private::Number", "$serde_json::private::RawValue"][..]
        )
        .prop_map(|k| format!("\"{k}\"")),
        1 => Just(r#""v\u0061lue""#.to_owned()),
        3 => string(valid),
    ]
}

fn leaf(valid: bool) -> impl Strategy<Value = String> {
    let keywords: &[&str] = if valid {
        &["true", "false", "null"]
    } else {
        &["true", "false", "null", "tru", "nul", "True", "nulll"]
    };
    prop_oneof![
        4 => number(valid),
        3 => string(valid),
        1 => prop::sample::select(keywords).prop_map(str::to_owned),
    ]
}

/// A value text at most `depth` deep with about `size` parts, with whitespace around its
/// parts; when not `valid`, sometimes broken (a trailing comma, a missing colon).
fn value(valid: bool, depth: u32, size: u32) -> impl Strategy<Value = String> {
    leaf(valid).prop_recursive(depth, size, 6, move |inner| {
        let item =
            (whitespace(valid), inner.clone(), whitespace(valid)).prop_map(|(a, v, b)| a + &v + &b);
        let colon = if valid { 1.0 } else { 0.98 };
        let member = (
            key(valid),
            whitespace(valid),
            prop::bool::weighted(colon),
            inner,
            whitespace(valid),
        )
            .prop_map(|(k, a, colon, v, b)| {
                format!("{k}{a}{}{v}{b}", if colon { ":" } else { "" })
            });
        let comma = if valid { 0.0 } else { 0.03 };
        let trailing = move || prop::bool::weighted(comma).prop_map(|t| if t { "," } else { "" });
        prop_oneof![
            (
                prop::collection::vec(item, 0..6),
                trailing(),
                whitespace(valid)
            )
                .prop_map(|(items, t, w)| format!("[{w}{}{t}]", items.join(","))),
            (
                prop::collection::vec(member, 0..6),
                trailing(),
                whitespace(valid)
            )
                .prop_map(|(members, t, w)| format!("{{{w}{}{t}}}", members.join(","))),
        ]
    })
}

/// A document: whitespace, a value, whitespace; when not `valid`, sometimes trailing
/// garbage or cut anywhere.
fn document(valid: bool) -> impl Strategy<Value = String> {
    let garbage: &[&str] = if valid {
        &[""]
    } else {
        &["", "", "", "", "x", "]", "}", ",", "1", "{}", "\"", "\0"]
    };
    let cut = if valid { 0.0 } else { 0.05 };
    (
        whitespace(valid),
        value(valid, 6, 48),
        whitespace(valid),
        prop::sample::select(garbage),
        any::<prop::sample::Index>(),
        prop::bool::weighted(cut),
    )
        .prop_map(|(a, v, b, garbage, at, cut)| {
            let text = format!("{a}{v}{b}{garbage}");
            if cut {
                let mut end = at.index(text.len() + 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_owned()
            } else {
                text
            }
        })
}

/// Objects of one set of member names with changing values, as a property's notifications
/// are, sometimes with the names reordered, one left out, one added, or one repeated, and
/// now and then a text that is not JSON.
fn notifications() -> impl Strategy<Value = Vec<String>> {
    (
        prop::collection::vec(key(true), 1..5),
        prop::collection::vec(
            (
                prop::collection::vec(value(true, 2, 8), 5),
                0u8..10,
                any::<prop::sample::Index>(),
                whitespace(true),
                document(false),
            ),
            1..8,
        ),
    )
        .prop_map(|(keys, texts)| {
            texts
                .into_iter()
                .map(|(values, change, at, w, other)| {
                    let mut names = keys.clone();
                    let i = at.index(names.len());
                    match change {
                        0 => names.reverse(),
                        1 => {
                            names.remove(i);
                        }
                        2 => names.push("\"extra\"".to_owned()),
                        3 => names.push(names[i].clone()),
                        4 => names.swap(0, i),
                        5 => return other,
                        _ => {}
                    }
                    let members: Vec<String> = names
                        .iter()
                        .zip(values.iter().cycle())
                        .map(|(k, v)| format!("{k}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn documents_read_as_serde_json_reads_them(
        texts in prop::collection::vec(prop_oneof![document(true), document(false)], 1..4)
    ) {
        check_series(&texts)?;
    }

    #[test]
    fn repeated_object_shapes_read_as_serde_json_reads_them(texts in notifications()) {
        check_series(&texts)?;
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them(
        n in prop_oneof![number(true), number(false)],
        w in whitespace(false)
    ) {
        check_series(&[n.clone(), format!("{w}[{n}]{w}"), format!("{{\"v\":{n}}}")])?;
    }
}

/// Every edge number alone, in an array, and as a member, with the same series.
#[test]
fn edge_numbers_read_as_serde_json_reads_them() {
    let texts: Vec<String> = EDGE_NUMBERS
        .iter()
        .flat_map(|n| {
            [
                (*n).to_owned(),
                format!("[{n},{n}]"),
                format!("{{\"v\":{n}}}"),
            ]
        })
        .collect();
    check_series(&texts).unwrap();
}

/// Nesting at and around the scanner's own limit (32) and serde_json's (128).
#[test]
fn deep_nesting_reads_as_serde_json_reads_it() {
    let mut texts = Vec::new();
    for depth in [1, 31, 32, 33, 127, 128, 129, 10_000] {
        texts.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        texts.push(format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
        texts.push(format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth)));
        texts.push(format!(
            "{}null{}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        ));
    }
    check_series(&texts).unwrap();
}
