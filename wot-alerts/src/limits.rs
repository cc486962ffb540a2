//! Budgets for rule and test files: what one file may make the loader read, allocate and run.

/// Budgets applied when loading rule files and running rule-test files.
///
/// Every field has a default (see [`Limits::default`]) that real files stay far below. Past a
/// budget the loader stops with a [`crate::LoadError`] that names the file, the line where it
/// is known, the test or rule, and the setting to raise. Nothing is allocated for the part of
/// the input past a budget: counts are checked before a series is expanded.
///
/// ```
/// use wot_alerts::Limits;
///
/// let mut limits = Limits::default();
/// limits.max_samples_per_test = 10_000;
/// assert_eq!(limits.max_file_bytes, 4 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest rule or test file read, in bytes (also applies to text given to
    /// [`crate::RuleSet::from_str_with`]). Default 4 MiB. The YAML parser builds the whole
    /// document before it is checked, taking about 40 times the file's size in transient
    /// allocations; JSON and TOML stream, and the count budgets stop them early.
    pub max_file_bytes: u64,
    /// Deepest YAML flow nesting (`[`, `{`) accepted. Default 64.
    pub max_nesting: usize,
    /// Most rules in one rule file, and in all rule files of one test file together.
    /// Default 50,000.
    pub max_rules: usize,
    /// Most tests in one test file. Default 10,000.
    pub max_tests: usize,
    /// Longest name, label, pointer or string value in a rule or test file, in bytes
    /// (summaries have their own limit of 4096 bytes). Default 64 KiB.
    pub max_string_bytes: usize,
    /// Most intervals one `values` series may span, `_` included. Default 1,000,000.
    pub max_series_len: usize,
    /// Most samples (values that are not `_`) all series of one test expand to.
    /// Default 100,000.
    pub max_samples_per_test: usize,
    /// Most samples all tests of one file expand to together. Default 1,000,000.
    pub max_samples_per_file: usize,
    /// Most bytes the expanded samples of one test may take (about 64 bytes per sample plus
    /// the length of string values). Default 16 MiB.
    pub max_sample_bytes_per_test: usize,
    /// Most timer ticks one test may run (a 1 s repeat over years would never end
    /// otherwise). Default 100,000.
    pub max_ticks_per_test: usize,
    /// Most rules started over all tests of one file (tests × rules). Default 2,000,000.
    pub max_rule_starts_per_file: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 << 20,
            max_nesting: 64,
            max_rules: 50_000,
            max_tests: 10_000,
            max_string_bytes: 64 << 10,
            max_series_len: 1_000_000,
            max_samples_per_test: 100_000,
            max_samples_per_file: 1_000_000,
            max_sample_bytes_per_test: 16 << 20,
            max_ticks_per_test: 100_000,
            max_rule_starts_per_file: 2_000_000,
        }
    }
}

/// Whether `c` is a C0 or C1 control character (ESC, BEL, DEL, CSI, ...).
pub(crate) fn is_control(c: char) -> bool {
    c.is_control()
}

/// `text` with C0/C1 control characters (ESC, BEL, CR, DEL, CSI, ...) escaped as `\e`-style
/// Rust escapes (`\u{1b}`, `\r`, `\n`), so that file or remote text cannot move the cursor,
/// change colours or retitle a terminal. Other characters, including non-ASCII letters, are kept.
///
/// ```
/// assert_eq!(wot_alerts::escape_controls("ok \u{1b}[2J°C\n"), "ok \\u{1b}[2J°C\\n");
/// assert_eq!(wot_alerts::escape_controls("Küche"), "Küche");
/// ```
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
