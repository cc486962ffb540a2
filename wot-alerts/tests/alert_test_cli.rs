//! The `alert-test` example as a user runs it: options, and a pipe closed early.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn alert_test() -> Command {
    // `cargo test` builds examples next to the test binaries' `deps` folder.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path: PathBuf = dir.join(format!("alert-test{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    Command::new(path)
}

const PASSING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/rules/issue_example.test.yaml"
);

#[test]
fn help_and_version_are_answered_not_taken_for_files() {
    for flag in ["--help", "-h"] {
        let out = alert_test().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("usage: alert-test TEST_FILE..."), "{text}");
        assert!(text.contains("Exit status"), "{text}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
    let out = alert_test().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("alert-test {}", env!("CARGO_PKG_VERSION"))
    );
    let out = alert_test().arg("--verbose").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option `--verbose`"));
}

#[test]
fn a_passing_file_exits_zero() {
    let out = alert_test().arg(PASSING).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("2 of 2 tests passed\n"), "{text}");
}

/// `alert-test FILE... | head -1`: more output than a pipe holds, so writing after the close
/// really fails; alert-test stops without a panic or a message.
#[test]
fn a_closed_stdout_ends_it_quietly() {
    let mut child = alert_test()
        .args(std::iter::repeat_n(PASSING, 2000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("PASS "), "{first}");
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}
