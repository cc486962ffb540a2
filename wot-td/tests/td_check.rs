//! The `td-check` example's command-line contract: output and exit status.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn td_check() -> PathBuf {
    // `cargo test` builds examples next to the test binaries' `deps` folder.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(format!("td-check{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

fn corpus(rel: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ))
    .join(rel)
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn valid_and_edge_exit_zero() {
    let out = Command::new(td_check())
        .args(files("valid"))
        .args(files("edge"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("simple.json: Thing Description, valid"),
        "{text}"
    );
}

#[test]
fn each_invalid_file_exits_one_and_names_a_path() {
    for file in files("invalid") {
        let out = Command::new(td_check())
            .arg("--json")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["valid"], false);
        assert_eq!(report["kind"], "td");
        let diags = report["diagnostics"].as_array().unwrap();
        assert!(
            diags
                .iter()
                .any(|d| d["severity"] == "error" && d["message"].is_string()),
            "{report}"
        );
        assert!(diags.iter().any(|d| d["path"].is_string()), "{report}");
    }
}

#[test]
fn json_output_has_one_object_per_file() {
    let out = Command::new(td_check())
        .arg("--json")
        .arg(corpus("valid/simple.json"))
        .arg(corpus("tm/valid/placeholder.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "td");
    assert_eq!(lines[1]["kind"], "tm");
    assert_eq!(lines[1]["valid"], true);
    assert!(lines[0]["file"].as_str().unwrap().ends_with("simple.json"));
}

/// The exact shape of `--json` lines, including a file with diagnostics of both
/// severities and an unreadable file.
#[test]
fn json_lines_have_exactly_the_documented_keys() {
    let out = Command::new(td_check())
        .arg("--json")
        .arg(corpus("invalid/multipleRelType.json"))
        .arg(corpus("edge/arrayNoItems.json"))
        .arg(corpus("does-not-exist.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let mut severities = Vec::new();
    for line in &lines {
        assert_eq!(
            keys(line),
            ["diagnostics", "file", "kind", "valid"],
            "{line}"
        );
        assert!(
            line["valid"].is_boolean() && line["file"].is_string(),
            "{line}"
        );
        for d in line["diagnostics"].as_array().unwrap() {
            // A file that cannot be read has no positions; every other diagnostic has one.
            let expected: &[&str] = if line["kind"].is_null() {
                &["message", "path", "rule", "severity"]
            } else {
                &["column", "line", "message", "path", "rule", "severity"]
            };
            assert_eq!(keys(d), expected, "{d}");
            assert!(
                d["rule"].as_str().unwrap().parse::<wot_td::Rule>().is_ok(),
                "{d}"
            );
            assert!(d["path"].is_string() && d["message"].is_string(), "{d}");
            severities.push(d["severity"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        (&lines[0]["kind"], &lines[0]["valid"]),
        (&Value::from("td"), &Value::from(false))
    );
    assert_eq!(
        (&lines[1]["kind"], &lines[1]["valid"]),
        (&Value::from("td"), &Value::from(true))
    );
    assert_eq!(
        (&lines[2]["kind"], &lines[2]["valid"]),
        (&Value::Null, &Value::from(false))
    );
    assert!(severities.iter().any(|s| s == "error") && severities.iter().any(|s| s == "warning"));
    assert!(severities.iter().all(|s| s == "error" || s == "warning"));
}

#[test]
fn unreadable_or_non_json_files_exit_two() {
    let dir = std::env::temp_dir().join(format!("td-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"title\": ").unwrap();
    let out = Command::new(td_check())
        .arg(&broken)
        .arg(corpus("invalid/noTitle.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not JSON") && text.contains("[json-syntax]"),
        "{text}"
    );
    assert!(text.contains("(line 1, column 10)"), "{text}");
    let out = Command::new(td_check())
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(td_check()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--tm` instantiates a Thing Model (and the models it extends, read from beside it) and
/// checks the TD it makes.
#[test]
fn a_thing_model_becomes_a_checked_td() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/lamp.tm.json");
    let out = Command::new(td_check())
        .arg("--tm")
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("{{ROOM}}") && stderr.contains("{{MAX_DIM}}"),
        "{stderr}"
    );

    let out = Command::new(td_check())
        .args(["--json", "--tm"])
        .arg(&model)
        .args([
            "--set",
            "NUMBER=3",
            "--set",
            "ROOM=hall",
            "--set",
            "DEVICE_ID=lamp3",
        ])
        .args([
            "--set",
            "HOST=http://127.0.0.1:8080/",
            "--set",
            "OBSERVABLE=true",
        ])
        .args(["--set", "MAX_DIM=100"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["valid"], true);
    let td = &line["td"];
    assert_eq!(td["id"], "urn:example:device:lamp3");
    assert_eq!(td["properties"]["dim"]["maximum"], 100);
    assert_eq!(td["properties"]["onOff"]["observable"], true);
    assert!(!td.to_string().contains("tm:"), "{td}");

    // Models outside the directory of the one given are not read.
    let dir = std::env::temp_dir().join(format!("td-check-tm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let escaping = dir.join("escape.tm.json");
    std::fs::write(
        &escaping,
        r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "@type": "tm:ThingModel",
            "title": "x", "links": [{"rel": "tm:extends", "href": "../../etc/passwd", "type": "application/tm+json"}]}"#,
    )
    .unwrap();
    let out = Command::new(td_check())
        .arg("--tm")
        .arg(&escaping)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root:"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_and_version_print_and_exit_zero() {
    for flag in ["--help", "-h"] {
        let out = Command::new(td_check()).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("usage: td-check"), "{text}");
        assert!(text.contains("--keep-all-optional"), "{text}");
    }
    let out = Command::new(td_check()).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("td-check {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(td_check()).arg("-x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option `-x`"));
}

/// `td-check --json FILE... | head -1`: the reader closes the pipe after one line; td-check
/// stops without a panic or a message. (More output than a pipe holds, so the write after the
/// close really fails.)
#[test]
fn a_closed_stdout_ends_it_quietly() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let file = corpus("invalid/multipleRelType.json");
    let mut child = Command::new(td_check())
        .arg("--json")
        .args(std::iter::repeat_n(&file, 2000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(serde_json::from_str::<Value>(&first).is_ok(), "{first}");
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
