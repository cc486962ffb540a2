//! Runs rule-test files: `cargo run -p wot-alerts --example alert-test -- TEST_FILE...`
//!
//! Exit status: 0 when every test passes, 1 when any fails, 2 when a file cannot be read or is
//! malformed (the error names the file, the field and, where known, the line).
//!
//! Test names, failure texts and errors come from the files: control characters in them are
//! printed escaped (`\u{1b}`), never raw.

use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: alert-test TEST_FILE...");
        return ExitCode::from(2);
    }
    let (mut failed, mut broken, mut passed, mut total) = (false, 0, 0, 0);
    for file in &files {
        match wot_alerts::testing::run_file(file) {
            Ok(report) => {
                print!("{report}");
                total += report.tests.len();
                passed += report.tests.iter().filter(|t| t.passed()).count();
                failed |= !report.passed();
            }
            Err(e) => {
                eprintln!("ERROR {}", wot_alerts::escape_controls(&e.to_string()));
                broken += 1;
            }
        }
    }
    println!("{passed} of {total} tests passed");
    if broken > 0 {
        eprintln!("{broken} file(s) could not be run");
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
