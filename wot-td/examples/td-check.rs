//! `td-check [--json] FILE...`: says for each file whether it is a Thing Description or a
//! Thing Model, valid or invalid, with every diagnostic and its JSON path.
//!
//! Exit status: 0 when every file is valid, 1 when any is invalid, 2 when a file cannot
//! be read or is not JSON (or the command line is wrong).

use std::process::ExitCode;

use serde_json::json;
use wot_td::{Document, ParseError, Severity};

const USAGE: &str = "usage: td-check [--json] FILE...";

/// The result for one file.
struct Report {
    file: String,
    kind: Option<&'static str>,
    /// `None` when the file could not be read or is not JSON.
    diagnostics: Option<Vec<(Severity, String, String)>>,
    unreadable: Option<String>,
}

impl Report {
    fn valid(&self) -> bool {
        self.diagnostics
            .as_ref()
            .is_some_and(|d| d.iter().all(|(s, ..)| *s != Severity::Error))
    }
}

fn check(file: &str) -> Report {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            return Report {
                file: file.to_owned(),
                kind: None,
                diagnostics: None,
                unreadable: Some(format!("cannot read the file: {e}")),
            };
        }
    };
    match Document::from_slice(&bytes) {
        Ok(doc) => Report {
            file: file.to_owned(),
            kind: Some(doc.kind().as_str()),
            diagnostics: Some(
                doc.validate()
                    .into_iter()
                    .map(|d| {
                        let message = format!("{} [{}]", d.message, d.rule);
                        (d.severity, d.path, message)
                    })
                    .collect(),
            ),
            unreadable: None,
        },
        Err(e) if e.is_syntax() => Report {
            file: file.to_owned(),
            kind: None,
            diagnostics: None,
            unreadable: Some(format!("not JSON: {}", position_message(&e))),
        },
        // JSON, but not a well-formed TD: a TM never fails here, so it is a TD.
        Err(e) => Report {
            file: file.to_owned(),
            kind: Some("td"),
            diagnostics: Some(vec![(
                Severity::Error,
                e.path().to_owned(),
                position_message(&e),
            )]),
            unreadable: None,
        },
    }
}

fn position_message(e: &ParseError) -> String {
    if e.line() > 0 {
        format!("{} (line {}, column {})", e.message(), e.line(), e.column())
    } else {
        e.message().to_owned()
    }
}

fn print_human(r: &Report) {
    match (&r.unreadable, &r.diagnostics) {
        (Some(why), _) => println!("{}: ERROR {why}", r.file),
        (None, Some(diags)) => {
            let kind = if r.kind == Some("tm") {
                "Thing Model"
            } else {
                "Thing Description"
            };
            let verdict = if r.valid() { "valid" } else { "INVALID" };
            println!("{}: {kind}, {verdict}", r.file);
            for (severity, path, message) in diags {
                let path = if path.is_empty() { "(root)" } else { path };
                println!("  {severity} at {path}: {message}");
            }
        }
        (None, None) => {}
    }
}

fn print_json(r: &Report) {
    let diagnostics: Vec<_> = match (&r.unreadable, &r.diagnostics) {
        (Some(why), _) => vec![json!({"severity": "error", "path": "", "message": why})],
        (None, Some(diags)) => diags
            .iter()
            .map(|(s, p, m)| json!({"severity": s, "path": p, "message": m}))
            .collect(),
        (None, None) => Vec::new(),
    };
    let line = json!({
        "file": r.file,
        "kind": r.kind,
        "valid": r.valid(),
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
        let report = check(file);
        if json_output {
            print_json(&report);
        } else {
            print_human(&report);
        }
        let code = if report.unreadable.is_some() {
            2
        } else if !report.valid() {
            1
        } else {
            0
        };
        status = status.max(code);
    }
    ExitCode::from(status)
}
