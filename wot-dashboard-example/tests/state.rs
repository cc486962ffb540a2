//! `--state`: which runs keep state and where, and a state directory this build cannot read.
//! (Restarts over a state directory are tested in `restart.rs`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");
/// A TD URL nothing answers at: the runs below stop before or at loading it.
const DEAD_TD: &str = "http://127.0.0.1:9/td";

/// A fresh directory under the target's temporary directory.
fn fresh(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("state-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    dir
}

/// Runs the dashboard with `args`, `XDG_STATE_HOME` at `xdg` and `HOME` at `home`.
fn run(args: &[&str], xdg: &Path, home: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_STATE_HOME", xdg)
        .env("HOME", home)
        .output()
        .expect("the dashboard runs")
}

fn store_file(dir: &Path) -> PathBuf {
    dir.join(wot_store::FILE_NAME)
}

#[test]
fn real_things_keep_state_in_the_platform_directory_and_the_simulator_none() {
    let root = fresh("default");
    let (xdg, home) = (root.join("xdg"), root.join("home"));
    // Real Things: the state directory is opened before the TDs are fetched.
    let args = ["--headless", "--thing", DEAD_TD, "--td-timeout", "200ms"];
    let output = run(&args, &xdg, &home);
    assert!(!output.status.success(), "nothing answers at {DEAD_TD}");
    assert!(store_file(&xdg.join("wot-dashboard")).exists());

    // Without XDG_STATE_HOME (a relative value does not count): ~/.local/state.
    let output = Command::new(BIN)
        .args(args)
        .env("XDG_STATE_HOME", "relative/path")
        .env("HOME", &home)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(store_file(&home.join(".local/state/wot-dashboard")).exists());

    // --no-state, and the simulator: nothing written.
    let bare = root.join("bare");
    run(&[&args[..], &["--no-state"]].concat(), &bare, &bare);
    let output = run(&["--headless", "--duration", "1s"], &bare, &bare);
    assert!(output.status.success(), "{output:?}");
    assert!(!bare.exists(), "the simulator or --no-state wrote state");

    // The simulator with --state keeps it there.
    let given = root.join("given");
    let given_arg = given.display().to_string();
    let output = run(
        &["--headless", "--duration", "1s", "--state", &given_arg],
        &bare,
        &bare,
    );
    assert!(output.status.success(), "{output:?}");
    assert!(store_file(&given).exists());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let restored = stdout
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("a first line");
    assert_eq!(restored["type"], "restored", "{stdout}");
    assert_eq!(restored["events"], 0, "{restored}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Sets the format version the store in `dir` claims, as another build would have written.
fn set_version(dir: &Path, version: u64) {
    let db = redb::Database::open(store_file(dir)).expect("the store file opens");
    let txn = db.begin_write().expect("a write");
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .expect("the meta table");
        meta.insert("format_version", version).expect("insert");
    }
    txn.commit().expect("commit");
}

#[test]
fn a_state_directory_of_another_format_version_is_refused_naming_both() {
    let root = fresh("version");
    let dir = root.join("state");
    wot_store::Store::open(&dir)
        .expect("a store")
        .close()
        .expect("closed");
    let other = wot_store::FORMAT_VERSION + 1;
    set_version(&dir, other);
    let dir_arg = dir.display().to_string();
    let output = run(
        &["--headless", "--thing", DEAD_TD, "--state", &dir_arg],
        &root,
        &root,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "state directory (--state)".to_owned(),
        format!("format version {other}"),
        format!("version {}", wot_store::FORMAT_VERSION),
        "--no-state".to_owned(),
        dir.display().to_string(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} not in {stderr}");
    }
    // It was refused before anything else: no TD was fetched (that error would name it).
    assert!(!stderr.contains(DEAD_TD), "{stderr}");
    assert!(output.stdout.is_empty());

    // A file that is not a store at all is refused the same way.
    let junk = root.join("junk");
    std::fs::create_dir_all(&junk).expect("dir");
    std::fs::write(store_file(&junk), b"not a database").expect("write");
    let junk_arg = junk.display().to_string();
    let output = run(
        &["--headless", "--thing", DEAD_TD, "--state", &junk_arg],
        &root,
        &root,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("state directory (--state)"), "{stderr}");
    assert!(stderr.contains("--no-state"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A clean stop (`--duration`) prints the line of every item whose batch was saved: each
/// event and property value in the store after the run has its headless line (a batch on its
/// way at the stop is waited for and printed, not saved unseen).
#[test]
fn a_clean_stop_prints_every_saved_item() {
    let root = fresh("clean-stop");
    let dir = root.join("state");
    let dir_arg = dir.display().to_string();
    let output = run(
        &[
            "--headless",
            "--duration",
            "2s",
            "--sim-tick",
            "5ms",
            "--state",
            &dir_arg,
        ],
        &root,
        &root,
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed: std::collections::HashSet<(String, String, String)> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["type"] == "event" || l["type"] == "property")
        .map(|l| {
            let name = if l["type"] == "event" {
                &l["event"]
            } else {
                &l["property"]
            };
            (
                l["thing"].as_str().unwrap_or_default().to_owned(),
                name.as_str().unwrap_or_default().to_owned(),
                l["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let store = wot_store::Store::open(&dir).expect("the store opens after the run");
    let limits = wot_store::RestoreLimits::new()
        .since(std::time::Duration::from_secs(3600))
        .events(1_000_000)
        .properties(10_000)
        .per_property(1_000_000);
    let history = store.restore_history(&limits).expect("reads");
    let mut saved = 0;
    for record in &history.events {
        let key = (
            record.thing_id.to_string(),
            record.event.to_string(),
            record.event_id.as_deref().unwrap_or_default().to_owned(),
        );
        assert!(printed.contains(&key), "saved but not printed: {key:?}");
        saved += 1;
    }
    for update in history.properties.iter().flat_map(|p| &p.updates) {
        let key = (
            update.thing_id.to_string(),
            update.property.to_string(),
            update.event_id.as_deref().unwrap_or_default().to_owned(),
        );
        assert!(printed.contains(&key), "saved but not printed: {key:?}");
        saved += 1;
    }
    assert!(saved > 0, "the run saved nothing");
    drop(store);
    let _ = std::fs::remove_dir_all(&root);
}
