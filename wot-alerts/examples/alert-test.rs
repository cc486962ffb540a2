//! Runs rule-test files: `cargo run -p wot-alerts --example alert-test -- TEST_FILE...`
//!
//! Exit status: 0 when every test passes, 1 when any fails, 2 when a file cannot be read or is
//! malformed (the error names the file, the field and, where known, the line) or the command
//! line is wrong. When its output is closed early (`alert-test FILE... | head -1`) it stops at
//! once, quietly, with status 0.
//!
//! Test names, failure texts and errors come from the files: control characters in them are
//! printed escaped (`\u{1b}`), never raw.

use std::io::{self, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: alert-test TEST_FILE...";

const HELP: &str =
    "Runs the unit tests of alert rules: each TEST_FILE (YAML or TOML) names its rule
files, feeds them property values over time, and says which alerts must be firing when.

Options:
  -h, --help      print this help
  -V, --version   print the version
  --              every argument after this is a file, even one starting with '-'

Exit status: 0 all tests pass, 1 a test fails, 2 a file cannot be read or is malformed, or a
bad command line.";

fn main() -> ExitCode {
    match run() {
        Ok(status) => status,
        // The reader went away (`| head`): stop, without a word.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(
                io::stderr(),
                "alert-test: writing the output failed: {error}"
            );
            ExitCode::from(2)
        }
    }
}

/// Runs what the command line asks for; an error only when writing the output failed.
fn run() -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                writeln!(out, "{USAGE}\n\n{HELP}")?;
                return Ok(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                writeln!(out, "alert-test {}", env!("CARGO_PKG_VERSION"))?;
                return Ok(ExitCode::SUCCESS);
            }
            "--" => files.extend(args.by_ref()),
            s if s.starts_with('-') && s != "-" => {
                let _ = writeln!(
                    io::stderr(),
                    "alert-test: unknown option `{}`\n{USAGE}",
                    wot_alerts::escape_controls(s)
                );
                return Ok(ExitCode::from(2));
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        let _ = writeln!(io::stderr(), "{USAGE}");
        return Ok(ExitCode::from(2));
    }
    let (mut failed, mut broken, mut passed, mut total) = (false, 0, 0, 0);
    for file in &files {
        match wot_alerts::testing::run_file(file) {
            Ok(report) => {
                write!(out, "{report}")?;
                total += report.tests.len();
                passed += report.tests.iter().filter(|t| t.passed()).count();
                failed |= !report.passed();
            }
            Err(e) => {
                // Flushed first, so that the error follows the reports before it.
                out.flush()?;
                let _ = writeln!(
                    io::stderr(),
                    "ERROR {}",
                    wot_alerts::escape_controls(&e.to_string())
                );
                broken += 1;
            }
        }
    }
    writeln!(out, "{passed} of {total} tests passed")?;
    out.flush()?;
    if broken > 0 {
        let _ = writeln!(io::stderr(), "{broken} file(s) could not be run");
        Ok(ExitCode::from(2))
    } else if failed {
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
