//! Loading rule files (YAML, TOML, JSON) into a [`RuleSet`], with errors that name the file, the
//! rule and the field.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::rule::{ActionSpec, Rule};

/// Largest accepted rule or test file, in bytes (16 MiB).
pub(crate) const MAX_FILE_LEN: u64 = 16 << 20;

/// The syntax of a rule or test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format a file name's extension implies; `None` for other extensions.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A rule or test file that could not be loaded: where and why.
///
/// Its text reads like this:
///
/// ```text
/// rules.yaml: rule `fridge-overheat`, field `rules[0].condition.gt`: invalid type: string "x", expected f64 at line 5 column 20
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    file: String,
    rule: Option<String>,
    field: Option<String>,
    message: String,
}

impl LoadError {
    pub(crate) fn new(
        file: impl Into<String>,
        rule: Option<String>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        LoadError {
            file: file.into(),
            rule,
            field,
            message: message.into(),
        }
    }

    /// The file (or the origin name given to [`RuleSet::from_str`]).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The id of the rule concerned, when known.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// The path of the field concerned, e.g. `rules[0].condition`, when known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, including the line and column when the parser gave them.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`, ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Reads a file of at most 16 MiB as UTF-8.
pub(crate) fn read_file(path: &Path) -> Result<String, LoadError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| LoadError::new(&name, None, None, format!("cannot read: {e}"));
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_LEN {
        return Err(LoadError::new(
            &name,
            None,
            None,
            format!("file is {len} bytes; at most {MAX_FILE_LEN} are accepted"),
        ));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Deserializes `text` as `T`, reporting the field path and, for rule lists, the rule id.
pub(crate) fn parse_document<T: DeserializeOwned>(
    text: &str,
    format: Format,
    origin: &str,
) -> Result<T, LoadError> {
    if format == Format::Yaml {
        check_yaml_nesting(text).map_err(|m| LoadError::new(origin, None, None, m))?;
    }
    let result: Result<T, (String, String)> = match format {
        Format::Yaml => {
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| (e.path().to_string(), e.inner().to_string()))
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| (e.path().to_string(), e.inner().to_string()))
        }
        Format::Toml => match toml::Deserializer::parse(text) {
            Ok(de) => serde_path_to_error::deserialize(de).map_err(|e| {
                (
                    e.path().to_string(),
                    e.inner().to_string().trim().to_owned(),
                )
            }),
            Err(e) => Err((".".to_owned(), e.to_string().trim().to_owned())),
        },
    };
    result.map_err(|(path, message)| {
        // serde_norway starts its message with the path (or its parent); we report it apart.
        let message = match message.split_once(": ") {
            Some((head, rest)) if !head.contains(' ') && path.starts_with(head) => rest.to_owned(),
            _ => message,
        };
        let field = (path != ".").then_some(path);
        let rule = field.as_deref().and_then(|p| rule_id_at(text, format, p));
        LoadError::new(origin, rule, field, message)
    })
}

/// Deepest accepted YAML flow nesting (`[` and `{`), and widest accepted indentation.
const MAX_YAML_NESTING: usize = 64;
const MAX_YAML_INDENT: usize = 512;

/// Rejects YAML nested so deeply that the YAML scanner would take quadratic time on it (it scans
/// all of a flow collection before the parser's own depth limit applies). A rough scan that
/// skips quoted text and comments; real rule files are nowhere near these limits.
fn check_yaml_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > MAX_YAML_INDENT {
            return Err(format!(
                "line {}: indented by {indent} columns; at most {MAX_YAML_INDENT} are accepted",
                n + 1
            ));
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for c in line.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if previous == ' ' || previous == '\t' => break,
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_YAML_NESTING {
                            return Err(format!(
                                "line {}: nested deeper than {MAX_YAML_NESTING} levels",
                                n + 1
                            ));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
    }
    Ok(())
}

/// Best effort: the `id` of the rule a field path such as `rules[3].condition` points into.
fn rule_id_at(text: &str, format: Format, path: &str) -> Option<String> {
    let index: usize = path
        .strip_prefix("rules[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    let doc: serde_json::Value = match format {
        Format::Yaml => serde_norway::from_str(text).ok()?,
        Format::Toml => toml::from_str(text).ok()?,
        Format::Json => serde_json::from_str(text).ok()?,
    };
    doc.get("rules")?
        .get(index)?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    actions: BTreeMap<String, ActionSpec>,
}

/// Rules and the actions they name, loaded from files or built in Rust.
///
/// A rule file has two top-level keys, both optional: `rules` (a list of [`Rule`]) and `actions`
/// (a map from action name to [`ActionSpec`]). The action name `log` is always defined.
///
/// # Examples
/// ```
/// use wot_alerts::{Format, RuleSet};
///
/// let rules = RuleSet::from_str(
///     "rules:\n  - { id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 } }\n",
///     Format::Yaml,
///     "inline.yaml",
/// )?;
/// assert_eq!(rules.rules()[0].id, "hot");
///
/// let err = RuleSet::from_str(
///     "rules:\n  - { id: hot, thing: f, property: t, condition: { gt: 8 }, colour: red }\n",
///     Format::Yaml,
///     "bad.yaml",
/// )
/// .unwrap_err();
/// assert_eq!(err.rule(), Some("hot"));
/// assert!(err.to_string().contains("unknown field `colour`"));
/// # Ok::<(), wot_alerts::LoadError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    ids: HashSet<String>,
    actions: BTreeMap<String, ActionSpec>,
}

impl RuleSet {
    /// An empty set.
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Loads a rule file; the format follows the extension (`.yaml`/`.yml`, `.toml`, `.json`).
    ///
    /// # Errors
    /// [`LoadError`] when the file cannot be read, is larger than 16 MiB, has an unknown
    /// extension, does not parse, has unknown fields or wrong types, or fails validation.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let format = Format::from_path(path).ok_or_else(|| {
            LoadError::new(
                &name,
                None,
                None,
                "unknown file extension: use .yaml, .yml, .toml or .json",
            )
        })?;
        let text = read_file(path)?;
        Self::from_str(&text, format, &name)
    }

    /// Parses rule-file text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`RuleSet::from_file`], without the file-system ones.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, format: Format, origin: &str) -> Result<Self, LoadError> {
        let file: RuleFile = parse_document(text, format, origin)?;
        let mut set = RuleSet::new();
        for (name, spec) in file.actions {
            set.add_action(name, spec);
        }
        for (i, rule) in file.rules.into_iter().enumerate() {
            set.add_rule(rule).map_err(|e| {
                LoadError::new(
                    origin,
                    Some(e.rule),
                    Some(format!("rules[{i}].{}", e.field)),
                    e.message,
                )
            })?;
        }
        set.check_action_names()
            .map_err(|e| LoadError::new(origin, Some(e.rule), Some(e.field), e.message))?;
        Ok(set)
    }

    /// Adds a rule after [`Rule::validate`] and a check that its id is new.
    ///
    /// # Errors
    /// [`crate::RuleError`] naming the field at fault (`id` for a duplicate).
    pub fn add_rule(&mut self, rule: Rule) -> Result<(), crate::RuleError> {
        rule.validate()?;
        if !self.ids.insert(rule.id.clone()) {
            return Err(crate::RuleError {
                rule: rule.id.clone(),
                field: "id".into(),
                message: "another rule has the same id".into(),
            });
        }
        self.rules.push(rule);
        Ok(())
    }

    /// Defines (or replaces) an action.
    pub fn add_action(&mut self, name: impl Into<String>, spec: ActionSpec) {
        self.actions.insert(name.into(), spec);
    }

    /// Adds all rules and actions of `other`.
    ///
    /// # Errors
    /// [`crate::RuleError`] when a rule id is already present.
    pub fn merge(&mut self, other: RuleSet) -> Result<(), crate::RuleError> {
        self.actions.extend(other.actions);
        for rule in other.rules {
            self.add_rule(rule)?;
        }
        Ok(())
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The defined actions by name (`log` is implied and not listed unless redefined).
    pub fn actions(&self) -> &BTreeMap<String, ActionSpec> {
        &self.actions
    }

    /// The action named `name`, with `log` defined by default.
    pub fn action(&self, name: &str) -> Option<ActionSpec> {
        self.actions
            .get(name)
            .cloned()
            .or_else(|| (name == "log").then_some(ActionSpec::Log { on: None }))
    }

    /// Checks that every action a rule names is defined.
    ///
    /// # Errors
    /// [`crate::RuleError`] for the first undefined name.
    pub fn check_action_names(&self) -> Result<(), crate::RuleError> {
        let defined: HashSet<&str> = self.actions.keys().map(String::as_str).collect();
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, name) in rule.actions.iter().enumerate() {
                if name != "log" && !defined.contains(name.as_str()) {
                    return Err(crate::RuleError {
                        rule: rule.id.clone(),
                        field: format!("rules[{i}].actions[{j}]"),
                        message: format!("action `{name}` is not defined under `actions`"),
                    });
                }
            }
        }
        Ok(())
    }
}
