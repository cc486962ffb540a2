//! End to end: the real binary drawing its terminal UI on a pseudo-terminal (160 × 48, made by
//! util-linux `script`) against its embedded simulator, until `--duration` ends it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The screen text the program wrote, without escape sequences and without spaces (ratatui
/// moves the cursor over unchanged cells, so words of one line can arrive apart).
fn screen_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte; others: ESC and one character.
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_terminal_ui_shows_things_an_alert_firing_and_resolving_then_restores_the_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed (no pseudo-terminal)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_wot-dashboard-example");
    let started = Instant::now();
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!(
            "stty cols 160 rows 48; exec '{binary}' --duration 20s --sim-tick 50ms"
        ))
        .arg("/dev/null")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    assert!(output.status.success(), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let raw = &output.stdout;
    let text = screen_text(raw);
    for needle in [
        "Things",
        "Cold-roomfridge",
        "Waterpump",
        "Events·filter:",
        "Alerts·",
        // The pump's first blockage, in the status line with its kind.
        "FIRED",
        "pump-overpressureonWaterpump:pumpoutletpressure",
        "RESOLVED",
        "notice:n",
        "q quit".replace(' ', "").as_str(),
    ] {
        assert!(text.contains(needle), "{needle:?} never appeared:\n{text}");
    }
    // The terminal is given back: the alternate screen is left at the end.
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).into_owned();
    assert!(tail.contains("\u{1b}[?1049l"), "{tail:?}");
}
