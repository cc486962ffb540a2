//! `td-check [--json] FILE...` says for each file whether it is a Thing Description or a
//! Thing Model, valid or invalid, with every problem at once (errors first), each with its
//! rule code, JSON path, line and column.
//!
//! `td-check [--json] --tm FILE [--set NAME=VALUE]... [--keep-optional POINTER | --keep-all-optional]`
//! makes a TD from the Thing Model in FILE (models it extends or refers to are read from
//! files relative to it) and prints the TD and what checking it found.
//!
//! Exit status: 0 when every file is valid, 1 when any is invalid, 2 when a file cannot
//! be read or is not JSON, a Thing Model cannot be instantiated, or the command line is
//! wrong. When its output is closed early (`td-check --json FILE... | head -1`) it stops
//! at once, quietly, with status 0.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use wot_td::{
    Diagnostic, Document, DocumentKind, Instantiation, LoadError, MAX_DOCUMENT_BYTES, Report, Rule,
    Severity, Url,
};

const USAGE: &str = "usage: td-check [--json] FILE...
       td-check [--json] --tm FILE [--set NAME=VALUE]... [--keep-optional POINTER]... [--keep-all-optional]";

const HELP: &str = "Checks Thing Descriptions and Thing Models: each file is a TD or a TM, valid or
invalid, with every problem found (errors first), each with its rule, JSON path, line and
column.

Options:
  --json                    one JSON object per file instead of text
  --tm FILE                 make a TD from the Thing Model in FILE and check it
  --set NAME=VALUE          a placeholder value for --tm (JSON, or else text); repeatable
  --keep-optional POINTER   keep this optional affordance (e.g. /properties/x); repeatable
  --keep-all-optional       keep every optional affordance
  -h, --help                print this help
  -V, --version             print the version

Exit status: 0 all valid, 1 any invalid, 2 unreadable or not JSON, or a bad command line.";

/// What checking one file found.
struct Outcome {
    /// TD or TM; `None` when the file could not be read or is not a JSON object.
    kind: Option<DocumentKind>,
    diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    fn valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// 2 for a file that is not JSON (or unreadable), 1 for an invalid one, 0 otherwise.
    fn exit_code(&self) -> u8 {
        let unreadable = self
            .diagnostics
            .iter()
            .any(|d| matches!(d.rule, Rule::Read | Rule::JsonSyntax));
        if unreadable {
            2
        } else if self.valid() {
            0
        } else {
            1
        }
    }
}

impl From<Report> for Outcome {
    fn from(report: Report) -> Self {
        Outcome {
            kind: report.kind,
            diagnostics: report.diagnostics,
        }
    }
}

/// Reads at most the document limit of `path`.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the file is larger than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

fn check(file: &str) -> Outcome {
    match read(Path::new(file)) {
        Ok(bytes) => Document::check(&bytes).into(),
        Err(why) => Outcome {
            kind: None,
            diagnostics: vec![unreadable(why)],
        },
    }
}

fn unreadable(why: String) -> Diagnostic {
    Diagnostic::new(Severity::Error, Rule::Read, "", why)
}

/// Models for `--tm`: files below the directory of the model given, and nothing else
/// (no absolute paths, no `..`, no URLs but `file:` ones inside that directory).
fn file_loader(root: PathBuf) -> impl Fn(&str, u64) -> Result<Vec<u8>, LoadError> {
    move |href: &str, max_bytes: u64| {
        let root_url = Url::from_directory_path(&root)
            .map_err(|()| format!("`{}` is not a directory", root.display()))?;
        let url = root_url.join(href)?;
        let path = url
            .to_file_path()
            .map_err(|()| format!("`{href}` is not a file"))?;
        if url.scheme() != "file" || !path.starts_with(&root) || href.contains("..") {
            return Err(format!("`{href}` is outside `{}`", root.display()).into());
        }
        let bytes = read(&path)?;
        if bytes.len() as u64 > max_bytes {
            return Err(format!("`{href}` is larger than {max_bytes} bytes").into());
        }
        Ok(bytes)
    }
}

/// `--tm`: instantiate, then check the TD as text (so its diagnostics have positions in
/// what is printed).
fn instantiate(file: &str, how: Instantiation) -> Result<(String, Outcome), String> {
    let path = std::fs::canonicalize(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let bytes = read(&path)?;
    let doc = Document::from_slice(&bytes).map_err(|e| e.to_string())?;
    let model = doc
        .as_thing_model()
        .ok_or("not a Thing Model (`@type` has no `tm:ThingModel`)")?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let how = how.location(name);
    let json = model
        .instantiate_value(&how, &file_loader(dir))
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    let outcome = Document::check(text.as_bytes()).into();
    Ok((text, outcome))
}

/// `text` with control characters escaped (`\u{1b}`), so that names and quotes from a
/// document cannot drive the terminal.
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

fn print_human(out: &mut impl Write, file: &str, outcome: &Outcome) -> io::Result<()> {
    let kind = match outcome.kind {
        Some(DocumentKind::Tm) => "Thing Model",
        Some(DocumentKind::Td) => "Thing Description",
        None => "",
    };
    let verdict = if outcome.valid() { "valid" } else { "INVALID" };
    match kind {
        "" => writeln!(out, "{}: {verdict}", shown(file))?,
        _ => writeln!(out, "{}: {kind}, {verdict}", shown(file))?,
    }
    for d in &outcome.diagnostics {
        writeln!(out, "  {}", shown(&d.to_string()))?;
    }
    Ok(())
}

/// `{"file", "kind": "td"|"tm"|null, "valid", "diagnostics": [{"severity", "rule",
/// "path", "line", "column", "message"}]}`.
fn print_json(out: &mut impl Write, file: &str, outcome: &Outcome) -> io::Result<()> {
    let line = json!({
        "file": file,
        "kind": outcome.kind.map(DocumentKind::as_str),
        "valid": outcome.valid(),
        "diagnostics": outcome.diagnostics,
    });
    writeln!(out, "{line}")
}

/// `NAME=VALUE`: the value as JSON when it is JSON (`21`, `true`, `"x"`), else as text.
fn placeholder(arg: &str) -> Option<(String, Value)> {
    let (name, value) = arg.split_once('=')?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Some((name.to_owned(), value))
}

fn main() -> ExitCode {
    match run() {
        Ok(status) => status,
        // The reader went away (`| head`): stop, without a word.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "td-check: writing the output failed: {error}");
            ExitCode::from(2)
        }
    }
}

/// Checks what the command line asks for; an error only when writing the output failed.
fn run() -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let mut json_output = false;
    let mut files = Vec::new();
    let mut tm = None;
    let mut how = Instantiation::new();
    let mut args = std::env::args().skip(1);
    let usage = |problem: &str| {
        let _ = writeln!(io::stderr(), "td-check: {problem}\n{USAGE}");
        ExitCode::from(2)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json_output = true,
            "-h" | "--help" => {
                writeln!(out, "{USAGE}\n\n{HELP}")?;
                return Ok(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                writeln!(out, "td-check {}", env!("CARGO_PKG_VERSION"))?;
                return Ok(ExitCode::SUCCESS);
            }
            "--tm" => match args.next() {
                Some(file) => tm = Some(file),
                None => return Ok(usage("`--tm` needs a file")),
            },
            "--set" => match args.next().as_deref().and_then(placeholder) {
                Some((name, value)) => how = how.set(name, value),
                None => return Ok(usage("`--set` needs NAME=VALUE")),
            },
            "--keep-optional" => match args.next() {
                Some(pointer) => how = how.keep_optional(pointer),
                None => {
                    return Ok(usage(
                        "`--keep-optional` needs a pointer such as /properties/x",
                    ));
                }
            },
            "--keep-all-optional" => how = how.keep_all_optional(),
            s if s.starts_with('-') && s != "-" => {
                return Ok(usage(&format!("unknown option `{s}`")));
            }
            _ => files.push(arg),
        }
    }
    if let Some(file) = tm {
        if !files.is_empty() {
            return Ok(usage("`--tm` takes one model and no other files"));
        }
        return match instantiate(&file, how) {
            Ok((text, outcome)) => {
                if json_output {
                    let td: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    writeln!(
                        out,
                        "{}",
                        json!({"file": file, "td": td, "valid": outcome.valid(), "diagnostics": outcome.diagnostics})
                    )?;
                } else {
                    writeln!(out, "{text}")?;
                    print_human(&mut out, &format!("{file} (as a TD)"), &outcome)?;
                }
                Ok(ExitCode::from(outcome.exit_code()))
            }
            Err(why) => {
                let _ = writeln!(io::stderr(), "td-check: {}: {}", shown(&file), shown(&why));
                Ok(ExitCode::from(2))
            }
        };
    }
    if files.is_empty() {
        return Ok(usage("no file given"));
    }
    let mut status = 0u8;
    for file in &files {
        let outcome = check(file);
        if json_output {
            print_json(&mut out, file, &outcome)?;
        } else {
            print_human(&mut out, file, &outcome)?;
        }
        status = status.max(outcome.exit_code());
    }
    out.flush()?;
    Ok(ExitCode::from(status))
}
