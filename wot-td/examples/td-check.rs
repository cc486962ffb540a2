//! `td-check [--json] FILE...`: says for each file whether it is a Thing Description or a
//! Thing Model, valid or invalid, with every diagnostic and its JSON path.
//!
//! Exit status: 0 when every file is valid, 1 when any is invalid, 2 when a file cannot
//! be read or is not JSON (or the command line is wrong).

use std::process::ExitCode;

use serde_json::json;
use wot_td::{Document, ParseError, Severity};

const USAGE: &str = "usage: td-check [--json] FILE...";

/// What checking one file found.
enum Outcome {
    /// The file could not be read or is not JSON.
    Unreadable(String),
    /// The file is JSON: a TD or TM (a document that is not a TM counts as a TD) and
    /// its diagnostics as (severity, path, message).
    Checked {
        kind: &'static str,
        diagnostics: Vec<(Severity, String, String)>,
    },
}

impl Outcome {
    fn valid(&self) -> bool {
        match self {
            Outcome::Unreadable(_) => false,
            Outcome::Checked { diagnostics, .. } => {
                diagnostics.iter().all(|(s, ..)| *s != Severity::Error)
            }
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Outcome::Unreadable(_) => 2,
            _ if !self.valid() => 1,
            _ => 0,
        }
    }
}

fn check(file: &str) -> Outcome {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return Outcome::Unreadable(format!("cannot read the file: {e}")),
    };
    match Document::from_slice(&bytes) {
        Ok(doc) => Outcome::Checked {
            kind: doc.kind().as_str(),
            diagnostics: doc
                .validate()
                .into_iter()
                .map(|d| (d.severity, d.path, format!("{} [{}]", d.message, d.rule)))
                .collect(),
        },
        Err(e) if e.is_syntax() => Outcome::Unreadable(format!("not JSON: {}", message(&e))),
        // JSON, but not a well-formed TD: a TM never fails here, so it is a TD.
        Err(e) => Outcome::Checked {
            kind: "td",
            diagnostics: vec![(Severity::Error, e.path().to_owned(), message(&e))],
        },
    }
}

/// The parse error without its path (printed separately), with its position.
fn message(e: &ParseError) -> String {
    if e.line() > 0 {
        format!("{} (line {}, column {})", e.message(), e.line(), e.column())
    } else {
        e.message().to_owned()
    }
}

/// `text` with control characters escaped (`\u{1b}`), so that names and quotes from a document
/// cannot drive the terminal.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn print_human(file: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Unreadable(why) => println!("{}: ERROR {}", shown(file), shown(why)),
        Outcome::Checked { kind, diagnostics } => {
            let kind = if *kind == "tm" {
                "Thing Model"
            } else {
                "Thing Description"
            };
            let verdict = if outcome.valid() { "valid" } else { "INVALID" };
            println!("{}: {kind}, {verdict}", shown(file));
            for (severity, path, message) in diagnostics {
                let path = if path.is_empty() { "(root)" } else { path };
                println!("  {severity} at {}: {}", shown(path), shown(message));
            }
        }
    }
}

/// `{"file", "kind": "td"|"tm"|null, "valid", "diagnostics": [{"severity", "path", "message"}]}`
/// (`kind` is null when the file could not be read or is not JSON).
fn print_json(file: &str, outcome: &Outcome) {
    let (kind, diagnostics) = match outcome {
        Outcome::Unreadable(why) => (
            None,
            vec![json!({"severity": "error", "path": "", "message": why})],
        ),
        Outcome::Checked { kind, diagnostics } => (
            Some(*kind),
            diagnostics
                .iter()
                .map(|(s, p, m)| json!({"severity": s, "path": p, "message": m}))
                .collect(),
        ),
    };
    let line = json!({
        "file": file,
        "kind": kind,
        "valid": outcome.valid(),
        "diagnostics": diagnostics,
    });
    println!("{line}");
}

fn main() -> ExitCode {
    let mut json_output = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json_output = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with("--") => {
                eprintln!("td-check: unknown option `{s}`\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut status = 0u8;
    for file in &files {
        let outcome = check(file);
        if json_output {
            print_json(file, &outcome);
        } else {
            print_human(file, &outcome);
        }
        status = status.max(outcome.exit_code());
    }
    ExitCode::from(status)
}
