//! `parse_corpus MODE [N] [DIR]`: parses every `*.json` TD in `DIR` (default: the shared
//! corpus of valid TDs) `N` times (default 100). A fixed workload for instruction-count
//! profiling, e.g. under `valgrind --tool=callgrind`, where wall-clock benchmarks are too
//! noisy.
//!
//! Modes: `floor` (only `serde_json::from_str::<serde_json::Value>`, the floor of benchmark
//! group 4), `parse` (`str::parse::<Document>`), `validate` (`str::parse::<Document>` then
//! `Document::validate`), `none` (read the files only, to subtract the setup).

use std::hint::black_box;
use std::process::ExitCode;

use wot_td::Document;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/td-corpus/valid");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("validate", String::as_str);
    let rounds: usize = match args.get(1).map(|n| n.parse()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("bad N: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = args.get(2).map_or(CORPUS, String::as_str);
    let mut files: Vec<(String, String)> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                Some((p.display().to_string(), text))
            })
            .collect(),
        Err(e) => {
            eprintln!("{dir}: {e}");
            return ExitCode::from(2);
        }
    };
    files.sort();
    let mut errors = 0usize;
    for _ in 0..rounds {
        for (path, text) in &files {
            match mode {
                "none" => {
                    black_box(text);
                }
                "floor" => match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(v) => {
                        black_box(v);
                    }
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        errors += 1;
                    }
                },
                "parse" | "validate" => match text.parse::<Document>() {
                    Ok(doc) => {
                        if mode == "validate" {
                            black_box(doc.validate());
                        }
                        black_box(doc);
                    }
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        errors += 1;
                    }
                },
                other => {
                    eprintln!("unknown mode `{other}` (floor, parse, validate, none)");
                    return ExitCode::from(2);
                }
            }
        }
    }
    println!("{} files x {rounds} rounds, mode {mode}", files.len());
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
