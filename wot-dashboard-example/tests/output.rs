//! `--output FILE`: refused without `--headless` or a state directory; a restart cuts the file
//! back to what the state directory committed and writes the last batch's lines again; a file
//! that does not match the state directory stops the start with an error naming it. (Many
//! kills in a row are tested in `restart.rs`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");
/// A TD URL nothing answers at.
const DEAD_TD: &str = "http://127.0.0.1:9/td";

/// A fresh directory under the target's temporary directory.
fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("output-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

fn dash(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the dashboard runs")
}

/// A simulator run for `duration`, headless, with the state in `state` and the lines in `file`.
fn simulated(state: &Path, file: &Path, duration: &str) -> Output {
    let (state, file) = (state.display().to_string(), file.display().to_string());
    dash(&[
        "--headless",
        "--sim-tick",
        "20ms",
        "--duration",
        duration,
        "--state",
        &state,
        "--output",
        &file,
    ])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn output_is_refused_without_headless_or_a_state_directory() {
    let dir = fresh("refused");
    let file = dir.join("out.jsonl");
    let (file_arg, state_arg) = (
        file.display().to_string(),
        dir.join("state").display().to_string(),
    );
    for (args, named) in [
        (
            vec!["--state", &state_arg, "--output", &file_arg],
            "--headless",
        ),
        // The simulator keeps no state unless --state is given.
        (vec!["--headless", "--output", &file_arg], "--state"),
        (
            vec![
                "--headless",
                "--thing",
                DEAD_TD,
                "--no-state",
                "--output",
                &file_arg,
            ],
            "--no-state",
        ),
    ] {
        let output = dash(&args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains("--output") && text.contains(named),
            "{args:?}: {text}"
        );
    }
    assert!(!file.exists(), "a refused run made the file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The property and event lines, each as written, with how many times.
fn record_lines(text: &str) -> BTreeMap<&str, usize> {
    let mut lines = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("{\"type\":\"property\"") || line.starts_with("{\"type\":\"event\"") {
            *lines.entry(line).or_default() += 1;
        }
    }
    lines
}

#[test]
fn a_restart_cuts_the_file_back_and_writes_the_last_batch_again() {
    let dir = fresh("restart");
    let (state, file) = (dir.join("state"), dir.join("out.jsonl"));
    let first = simulated(&state, &file, "1500ms");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(first.stdout.is_empty(), "the lines go to the file only");
    let before = std::fs::read_to_string(&file).expect("the file");
    let records = record_lines(&before);
    assert!(records.len() > 10, "{before}");
    assert!(records.values().all(|n| *n == 1), "{before}");
    // As a kill would leave it: a line cut in the middle after the last commit.
    std::fs::write(&file, format!("{before}{{\"type\":\"property\",\"thi")).expect("written");

    let second = simulated(&state, &file, "300ms");
    assert!(second.status.success(), "{}", stderr(&second));
    let after = std::fs::read_to_string(&file).expect("the file");
    for line in after.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
    }
    // Up to the second run's `restored` line: the first run's record lines, each once and
    // byte for byte (those of its last batch written again), and nothing of the cut line.
    let second_start = after
        .match_indices("{\"type\":\"restored\"")
        .nth(1)
        .map(|(at, _)| at)
        .expect("the second run's restored line");
    assert_eq!(record_lines(&after[..second_start]), records);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_does_not_match_the_state_directory_stops_the_start() {
    let dir = fresh("mismatch");
    let (state, file) = (dir.join("state"), dir.join("out.jsonl"));
    let first = simulated(&state, &file, "600ms");
    assert!(first.status.success(), "{}", stderr(&first));

    // Shorter than the state directory says: refused, the file left as it is.
    std::fs::write(&file, "{}\n").expect("written");
    let output = simulated(&state, &file, "300ms");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("--output") && text.contains(&file.display().to_string()),
        "{text}"
    );
    assert!(text.contains("says it holds"), "{text}");
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), "{}\n");

    // Missing: refused, not made again.
    std::fs::remove_file(&file).expect("removed");
    let output = simulated(&state, &file, "300ms");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("missing"), "{text}");
    assert!(!file.exists());

    // Not a regular file.
    let output = simulated(&state, &dir, "300ms");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("not a regular file"), "{text}");

    // A new path starts a new file.
    let other = dir.join("other.jsonl");
    let output = simulated(&state, &other, "300ms");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(std::fs::read_to_string(&other).is_ok_and(|t| t.contains("\"restored\"")));
    let _ = std::fs::remove_dir_all(&dir);
}
