//! Loading rule files (YAML, TOML, JSON) into a [`RuleSet`], with errors that name the file, the
//! rule and the field.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};

use crate::limits::Limits;
use crate::rule::{ActionSpec, Condition, Rule, Scalar};

/// The syntax of a rule or test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    line: Option<usize>,
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
            line: None,
            rule,
            field,
            message: message.into(),
        }
    }

    /// A rule error of a rule set loaded from `file`.
    pub(crate) fn from_rule_error(file: impl Into<String>, e: &crate::Error) -> Self {
        LoadError::new(
            file,
            e.rule().map(str::to_owned),
            e.field().map(str::to_owned),
            e.message(),
        )
    }

    /// The same error, at `line` (1-based) when it had no line yet.
    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        if self.line.is_none() {
            self.line = line;
        }
        self
    }

    /// The file (or the origin name given to [`RuleSet::from_str`]).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line (1-based) of the problem, when the parser gave it or the loader could find it.
    pub fn line(&self) -> Option<usize> {
        self.line
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
        f.write_str(&self.message)?;
        if let Some(line) = self.line
            && !self.message.contains(" line ")
        {
            write!(f, " at line {line}")?;
        }
        Ok(())
    }
}

/// The line number a parser message ends with (`... at line 5 column 20`, `... at line 1,
/// column 5`): the last `line N` in it, as quoted file text may come before.
fn line_in_message(message: &str) -> Option<usize> {
    let (_, rest) = message.rsplit_once("line ")?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_at(text: &[u8], offset: usize) -> usize {
    text.get(..offset)
        .unwrap_or(text)
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// Best effort: the line of the first occurrence of `needle` at or after line `from` (1-based).
pub(crate) fn find_line(text: &str, from: usize, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let start = match from.checked_sub(2) {
        None => 0,
        Some(n) => text.match_indices('\n').nth(n)?.0 + 1,
    };
    let found = text.get(start..)?.find(needle)?;
    Some(line_at(text.as_bytes(), start + found))
}

/// Reads a regular file of at most `limits.max_file_bytes` as UTF-8. The size is checked before
/// reading and enforced while reading (a file that grows, or a device that reports no size,
/// cannot make it read more).
pub(crate) fn read_file(path: &Path, limits: &Limits) -> Result<String, LoadError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| LoadError::new(&name, None, None, format!("cannot read: {e}"));
    let max = limits.max_file_bytes;
    let too_big = |len: u64| {
        LoadError::new(
            &name,
            None,
            None,
            format!("file is {len} bytes; at most {max} are accepted (Limits::max_file_bytes)"),
        )
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(LoadError::new(&name, None, None, "not a regular file"));
    }
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        LoadError::new(
            &name,
            None,
            None,
            format!("stream did not contain valid UTF-8 (byte {at})"),
        )
        .at_line(Some(line_at(e.as_bytes(), at)))
    })
}

/// Checks the size of text handed in as a string.
pub(crate) fn check_text_len(text: &str, origin: &str, limits: &Limits) -> Result<(), LoadError> {
    let max = limits.max_file_bytes;
    if text.len() as u64 > max {
        return Err(LoadError::new(
            origin,
            None,
            None,
            format!(
                "text is {} bytes; at most {max} are accepted (Limits::max_file_bytes)",
                text.len()
            ),
        ));
    }
    Ok(())
}

thread_local! {
    /// The most elements a top-level `rules` or `tests` list may have while one document is
    /// deserialized on this thread (set by [`parse_document`]'s callers).
    static LIST_CAP: Cell<(usize, &'static str)> = const { Cell::new((usize::MAX, "")) };
}

/// Restores the previous list cap when dropped.
pub(crate) struct ListCap((usize, &'static str));

impl ListCap {
    /// Caps top-level lists at `cap` entries; `setting` names the [`Limits`] field in errors.
    pub(crate) fn set(cap: usize, setting: &'static str) -> Self {
        ListCap(LIST_CAP.with(|c| c.replace((cap, setting))))
    }
}

impl Drop for ListCap {
    fn drop(&mut self) {
        LIST_CAP.with(|c| c.set(self.0));
    }
}

/// Deserializes a list, stopping with an error past the thread's [`ListCap`] instead of
/// allocating for the rest.
pub(crate) fn de_capped_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Capped<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Capped<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let (cap, setting) = LIST_CAP.with(Cell::get);
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                if out.len() >= cap {
                    return Err(de::Error::custom(format_args!(
                        "more than {cap} entries ({setting})"
                    )));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Capped(std::marker::PhantomData))
}

/// Deserializes `text` as `T`, reporting the field path and, for rule lists, the rule id.
pub(crate) fn parse_document<T: DeserializeOwned>(
    text: &str,
    format: Format,
    origin: &str,
    limits: &Limits,
) -> Result<T, LoadError> {
    check_text_len(text, origin, limits)?;
    if format == Format::Yaml {
        check_yaml_nesting(text, limits.max_nesting).map_err(|m| {
            let line = line_in_message(&m);
            LoadError::new(origin, None, None, m).at_line(line)
        })?;
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
        let line = line_in_message(&message);
        LoadError::new(origin, rule, field, message).at_line(line)
    })
}

/// Widest accepted YAML indentation.
const MAX_YAML_INDENT: usize = 512;

/// Rejects YAML nested so deeply that the YAML scanner would take quadratic time on it (it scans
/// all of a flow collection before the parser's own depth limit applies). A rough scan that
/// skips quoted text and comments; real rule files are nowhere near these limits.
fn check_yaml_nesting(text: &str, max_nesting: usize) -> Result<(), String> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let indent = block_indent(line);
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
                        if depth > max_nesting {
                            return Err(format!(
                                "line {}: nested deeper than {max_nesting} levels \
                                 (Limits::max_nesting)",
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

/// The columns before a line's content, counting block indicators (`- `, `? `, `: `) as
/// indentation: `- - - x` nests three sequences, as deep as six more columns of spaces would.
fn block_indent(line: &str) -> usize {
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        match c {
            b' ' | b'\t' => i += 1,
            b'-' | b'?' | b':' if matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) => i += 1,
            _ => break,
        }
    }
    i
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

/// Best effort: the line of the rule with this id: the first line holding `id` followed by the
/// id (or, for ids the file spells with escapes, by its first printable characters).
fn find_rule_line(text: &str, id: &str) -> Option<usize> {
    let printable: String = id
        .chars()
        .take_while(|c| !c.is_control() && !matches!(c, '"' | '\\' | '\''))
        .take(64)
        .collect();
    let after_id = |needle: &str| {
        text.lines()
            .position(|line| {
                line.match_indices("id")
                    .any(|(at, _)| line.get(at + 2..).is_some_and(|rest| rest.contains(needle)))
            })
            .map(|i| i + 1)
    };
    after_id(prefix(id))
        .or_else(|| after_id(&printable))
        .or_else(|| find_line(text, 1, prefix(id)))
}

/// At most the first 64 bytes of `text` (cut at a character boundary), to look for in a file.
pub(crate) fn prefix(text: &str) -> &str {
    text.get(..text.floor_char_boundary(64)).unwrap_or_default()
}

/// Checks one string from a file against the length budget.
pub(crate) fn check_string(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "is {} bytes long; at most {max} are accepted (Limits::max_string_bytes)",
            text.len()
        ));
    }
    Ok(())
}

/// Checks the length of every free-text field of a rule (the summary has its own limit).
fn check_rule_strings(rule: &Rule, max: usize) -> Result<(), (String, String)> {
    let check = |field: &str, text: &str| check_string(text, max).map_err(|m| (field.into(), m));
    check("id", &rule.id)?;
    check("thing", &rule.thing)?;
    check("property", &rule.property)?;
    if let Some(p) = &rule.pointer {
        check("pointer", p)?;
    }
    for (k, v) in &rule.labels {
        check("labels", k)?;
        check(&format!("labels.{}", prefix(k)), v)?;
    }
    for a in &rule.actions {
        check("actions", a)?;
    }
    for c in rule.conditions() {
        if let Condition::Eq(Scalar::String(s)) | Condition::Ne(Scalar::String(s)) = c {
            check("condition", s)?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default, deserialize_with = "de_capped_list")]
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
    /// The default [`Limits`] apply.
    ///
    /// # Errors
    /// [`LoadError`] when the file cannot be read, is not a regular file, is larger than
    /// 16 MiB, has an unknown extension, does not parse, has unknown fields or wrong types,
    /// fails validation or exceeds a budget of [`Limits`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::from_file_with(path, &Limits::default())
    }

    /// [`RuleSet::from_file`] with other budgets than the default ones.
    ///
    /// # Errors
    /// As [`RuleSet::from_file`]; a budget of `limits` exceeded is an error naming the file
    /// and, where it can be found, the line.
    pub fn from_file_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Self, LoadError> {
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
        let text = read_file(path, limits)?;
        Self::from_str_with(&text, format, &name, limits)
    }

    /// Parses rule-file text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`RuleSet::from_file`], without the file-system ones.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, format: Format, origin: &str) -> Result<Self, LoadError> {
        Self::from_str_with(text, format, origin, &Limits::default())
    }

    /// [`RuleSet::from_str`] with other budgets than the default ones.
    ///
    /// # Errors
    /// As [`RuleSet::from_file_with`], without the file-system ones.
    pub fn from_str_with(
        text: &str,
        format: Format,
        origin: &str,
        limits: &Limits,
    ) -> Result<Self, LoadError> {
        let file: RuleFile = {
            let _cap = ListCap::set(limits.max_rules, "Limits::max_rules");
            parse_document(text, format, origin, limits)?
        };
        let mut set = RuleSet::new();
        for (name, spec) in file.actions {
            check_string(&name, limits.max_string_bytes).map_err(|m| {
                LoadError::new(
                    origin,
                    None,
                    Some("actions".into()),
                    format!("action name {m}"),
                )
                .at_line(find_line(text, 1, prefix(&name)))
            })?;
            set.add_action(name, spec);
        }
        for (i, rule) in file.rules.into_iter().enumerate() {
            let located = |field: String, message: String, id: &str| {
                LoadError::new(
                    origin,
                    Some(id.to_owned()),
                    Some(format!("rules[{i}].{field}")),
                    message,
                )
                .at_line(find_rule_line(text, id))
            };
            check_rule_strings(&rule, limits.max_string_bytes)
                .map_err(|(field, m)| located(field, m, &rule.id))?;
            set.add_rule(rule).map_err(|e| {
                located(
                    e.field().unwrap_or_default().to_owned(),
                    e.message().to_owned(),
                    e.rule().unwrap_or_default(),
                )
            })?;
        }
        set.check_action_names()
            .map_err(|e| LoadError::from_rule_error(origin, &e))?;
        Ok(set)
    }

    /// Adds a rule after [`Rule::validate`] and a check that its id is new.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error naming the field at fault (`id`
    /// for a duplicate).
    pub fn add_rule(&mut self, rule: Rule) -> Result<(), crate::Error> {
        rule.validate()?;
        if !self.ids.insert(rule.id.clone()) {
            return Err(crate::Error::rule_field(
                &rule.id,
                "id",
                "another rule has the same id",
            ));
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
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error when a rule id is already present.
    pub fn merge(&mut self, other: RuleSet) -> Result<(), crate::Error> {
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
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error for the first undefined name.
    pub fn check_action_names(&self) -> Result<(), crate::Error> {
        let defined: HashSet<&str> = self.actions.keys().map(String::as_str).collect();
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, name) in rule.actions.iter().enumerate() {
                if name != "log" && !defined.contains(name.as_str()) {
                    return Err(crate::Error::rule_field(
                        &rule.id,
                        format!("rules[{i}].actions[{j}]"),
                        format!("action `{name}` is not defined under `actions`"),
                    ));
                }
            }
        }
        Ok(())
    }
}
