//! Compiling the `pattern` regular expressions of data schemas, within limits.
//!
//! A hostile document can hold thousands of patterns, each cheap to write and expensive
//! to compile (`\w{50}` compiles to megabytes, `(?i)\p{Any}` folds a million code points).
//! Every compilation is therefore charged to a budget shared by one document (or one
//! [`CompiledSchema`](crate::CompiledSchema)), and each pattern has its own limits; see
//! [`ValidationLimits`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use regex_automata::MatchKind;
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::ast::{self, Ast, ClassSetItem, Flag};

/// Default largest compiled size of one `pattern` (256 KiB): the limit for each of the
/// regular expression's automata ([`ValidationLimits::regex_size`]).
pub const PATTERN_SIZE_LIMIT: usize = 256 << 10;

/// Limits on the work that checking data schemas may do. The defaults suit any
/// reasonable Thing Description; raise them for unusual trusted documents, lower them
/// where memory is scarce.
///
/// ```
/// use wot_td::ValidationLimits;
/// let strict = ValidationLimits { regex_budget: 4 << 20, ..ValidationLimits::default() };
/// assert!(strict.regex_budget < ValidationLimits::default().regex_budget);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Longest `pattern`, in bytes of its source text (default 8 KiB). A longer one is
    /// not parsed.
    pub pattern_bytes: usize,
    /// Largest compiled size of one pattern, in bytes (default [`PATTERN_SIZE_LIMIT`],
    /// 256 KiB): the limit for each automaton the regex engine builds, and for the
    /// estimated cost of expanding its character classes.
    pub regex_size: usize,
    /// Capacity of the lazy DFA cache of one pattern, in bytes (default 1 MiB). The
    /// cache grows while strings are matched; when full it is cleared or the engine
    /// falls back to a slower one, so matching stays correct.
    pub regex_cache: usize,
    /// Total compile cost of all the patterns of one document or one
    /// [`CompiledSchema`](crate::CompiledSchema), in bytes (default 32 MiB). Each
    /// distinct pattern is compiled once and charged its source length, its compiled
    /// size (the size it reached when it failed) and an estimate of the work of
    /// expanding its character classes. Patterns past the budget are not compiled.
    pub regex_budget: usize,
    /// Schema steps that checking `enum`, `const` and `default` values against their
    /// schemas may take in one document validation (default 1,000,000); the rest is
    /// skipped with the warning `check-budget`.
    pub check_steps: usize,
}

impl ValidationLimits {
    /// The default limits (also [`Default::default`]).
    pub const DEFAULT: ValidationLimits = ValidationLimits {
        pattern_bytes: 8 << 10,
        regex_size: PATTERN_SIZE_LIMIT,
        regex_cache: 1 << 20,
        regex_budget: 32 << 20,
        check_steps: 1_000_000,
    };
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits::DEFAULT
    }
}

/// Why a `pattern` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternErrorKind {
    /// The source text is longer than [`ValidationLimits::pattern_bytes`].
    #[error("the pattern is {len} bytes long, more than the limit of {limit}")]
    TooLong {
        /// Length of the pattern in bytes.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Compiled, it would be larger (or its classes costlier to expand) than
    /// [`ValidationLimits::regex_size`].
    #[error("the compiled regular expression would exceed the size limit of {limit} bytes")]
    TooBig {
        /// The limit in force.
        limit: usize,
    },
    /// The patterns compiled before this one used up [`ValidationLimits::regex_budget`].
    #[error(
        "the patterns before this one used up the compile budget of {budget} bytes, so it was not compiled"
    )]
    OverBudget {
        /// The budget in force.
        budget: usize,
    },
    /// Not a regular expression in Rust `regex` syntax (for example ECMA-262
    /// look-around or back-references), with the parser's explanation.
    #[error("{0}")]
    Invalid(String),
}

/// A `pattern` that cannot be used, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PatternError {
    /// JSON path of the `pattern` term, e.g. `properties.id.pattern` (relative to the
    /// schema it was found in, or to the document for [`Thing`](crate::Thing) checks).
    pub path: String,
    /// What is wrong.
    pub kind: PatternErrorKind,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.path, self.kind)
    }
}

/// One compiled pattern (cheap to clone: clones share the program and its match caches).
#[derive(Clone, Debug)]
pub(crate) struct Pattern(Arc<meta::Regex>);

impl Pattern {
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// The result of compiling one pattern.
pub(crate) type Compiled = Result<Pattern, PatternErrorKind>;

/// Compiles patterns under [`ValidationLimits`], each distinct source once, charging
/// every compilation to one budget.
pub(crate) struct PatternCompiler<'s> {
    limits: ValidationLimits,
    spent: usize,
    compiled: HashMap<&'s str, Compiled>,
}

impl Default for PatternCompiler<'_> {
    fn default() -> Self {
        PatternCompiler::new(ValidationLimits::DEFAULT)
    }
}

impl<'s> PatternCompiler<'s> {
    pub(crate) fn new(limits: ValidationLimits) -> Self {
        PatternCompiler {
            limits,
            spent: 0,
            compiled: HashMap::new(),
        }
    }

    /// Budget used so far, in bytes.
    #[cfg(test)]
    pub(crate) fn spent(&self) -> usize {
        self.spent
    }

    /// The compiled form of `source`, compiling it on first use.
    pub(crate) fn get(&mut self, source: &'s str) -> &Compiled {
        let PatternCompiler {
            limits,
            spent,
            compiled,
        } = self;
        compiled.entry(source).or_insert_with(|| {
            let mut budget = Budget {
                limits: *limits,
                spent: *spent,
            };
            let result = budget.compile(source);
            *spent = budget.spent;
            result
        })
    }
}

/// The limits and the budget spent, while compiling one pattern.
struct Budget {
    limits: ValidationLimits,
    spent: usize,
}

impl Budget {
    fn charge(&mut self, cost: usize) {
        self.spent = self.spent.saturating_add(cost);
    }

    fn compile(&mut self, source: &str) -> Compiled {
        let limits = self.limits;
        if source.len() > limits.pattern_bytes {
            return Err(PatternErrorKind::TooLong {
                len: source.len(),
                limit: limits.pattern_bytes,
            });
        }
        let over_budget = PatternErrorKind::OverBudget {
            budget: limits.regex_budget,
        };
        if self.spent >= limits.regex_budget {
            return Err(over_budget);
        }
        // Parsing is linear in the (bounded) source length.
        self.charge(source.len());
        let parsed = ast::parse::ParserBuilder::new()
            .nest_limit(NEST_LIMIT)
            .build()
            .parse(source);
        let ast = match parsed {
            Ok(ast) => ast,
            Err(e) => return Err(PatternErrorKind::Invalid(e.to_string())),
        };
        // Expanding Unicode classes (and case-folding them) is the one part of the work
        // that the regex engine's size limits do not bound: estimate it first.
        let class_cost = class_cost(&ast);
        if class_cost > limits.regex_size {
            return Err(PatternErrorKind::TooBig {
                limit: limits.regex_size,
            });
        }
        let left = limits.regex_budget.saturating_sub(self.spent);
        if class_cost > left {
            self.charge(class_cost);
            return Err(over_budget);
        }
        self.charge(class_cost);
        let left = limits.regex_budget.saturating_sub(self.spent);
        let key = SharedKey {
            source: source.into(),
            regex_size: limits.regex_size,
            regex_cache: limits.regex_cache,
        };
        // The full size limit applies, so the result depends only on the key: another
        // schema's compilation can stand in (charged as if compiled here).
        let shareable = left >= limits.regex_size;
        if shareable && let Some(regex) = shared_get(&key) {
            self.charge(regex.memory_usage());
            return Ok(Pattern(regex));
        }
        let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
            .utf8(true)
            .build()
            .translate(source, &ast);
        let hir = match hir {
            Ok(hir) => hir,
            Err(e) => return Err(PatternErrorKind::Invalid(e.to_string())),
        };
        let size_limit = limits.regex_size.min(left);
        let config = meta::Config::new()
            .match_kind(MatchKind::LeftmostFirst)
            .utf8_empty(true)
            .which_captures(WhichCaptures::None)
            .nfa_size_limit(Some(size_limit))
            .onepass_size_limit(Some(size_limit))
            .dfa_size_limit(Some(size_limit))
            .hybrid_cache_capacity(limits.regex_cache);
        match meta::Builder::new().configure(config).build_from_hir(&hir) {
            Ok(regex) => {
                self.charge(regex.memory_usage());
                let regex = Arc::new(regex);
                if shareable {
                    shared_put(key, &regex);
                }
                Ok(Pattern(regex))
            }
            Err(e) if e.size_limit().is_some() => {
                self.charge(size_limit);
                if size_limit < limits.regex_size {
                    Err(over_budget)
                } else {
                    Err(PatternErrorKind::TooBig {
                        limit: limits.regex_size,
                    })
                }
            }
            Err(e) => Err(PatternErrorKind::Invalid(e.to_string())),
        }
    }
}

/// What a compiled pattern depends on when the full per-pattern size limit applies.
#[derive(PartialEq, Eq, Hash)]
struct SharedKey {
    source: Box<str>,
    regex_size: usize,
    regex_cache: usize,
}

/// Patterns compiled anywhere in the process and still in use. Every property and event of
/// a Thing gets its own [`CompiledSchema`](crate::CompiledSchema); a TD that repeats one
/// pattern in thousands of affordances (validation counts it once) must not make each of
/// them compile and keep its own copy. Entries hold no pattern alive: a pattern is freed
/// with the last schema that uses it.
static SHARED: LazyLock<Mutex<SharedPatterns>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct SharedPatterns {
    map: HashMap<SharedKey, Weak<meta::Regex>>,
    /// Entries after the last sweep of dead ones; the next sweep runs at twice as many.
    swept: usize,
}

fn shared_get(key: &SharedKey) -> Option<Arc<meta::Regex>> {
    let shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    shared.map.get(key).and_then(Weak::upgrade)
}

fn shared_put(key: SharedKey, regex: &Arc<meta::Regex>) {
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    shared.map.insert(key, Arc::downgrade(regex));
    if shared.map.len() > 2 * shared.swept.max(64) {
        shared.map.retain(|_, weak| weak.strong_count() > 0);
        shared.swept = shared.map.len();
    }
}

/// How deep groups and classes of a pattern may nest (the regex crate's default).
const NEST_LIMIT: u32 = 250;

/// Charge for expanding one Unicode or Perl class, or one class set operation, in
/// bytes of budget (measured: a few microseconds each, like compiling a kilobyte).
const CLASS_CHARGE: usize = 1 << 10;

/// Code points assumed for a Unicode class under case-insensitive matching: folding
/// walks every code point of the class, and `\p{Any}` has all of them.
const ALL_CODE_POINTS: usize = 0x11_0000;

/// Code points assumed for a Perl class inside brackets (`\w` has about 140,000).
const PERL_CODE_POINTS: usize = 150_000;

/// An estimate, in bytes of budget, of the work of expanding the character classes of
/// `ast`: [`CLASS_CHARGE`] per Unicode or Perl class and per set operation, and, when
/// the pattern turns on case-insensitive matching anywhere, half a byte per code point
/// that case folding walks (folding runs again at every level of nested brackets).
fn class_cost(ast: &Ast) -> usize {
    struct Cost {
        classes: usize,
        fold_points: usize,
        case_insensitive: bool,
        bracket_depth: usize,
    }
    impl Cost {
        fn fold(&mut self, points: usize) {
            let points = points.saturating_mul(self.bracket_depth.max(1));
            self.fold_points = self.fold_points.saturating_add(points);
        }
    }
    impl ast::Visitor for Cost {
        type Output = usize;
        type Err = std::convert::Infallible;

        fn finish(self) -> Result<usize, Self::Err> {
            let fold = if self.case_insensitive {
                self.fold_points / 2
            } else {
                0
            };
            Ok(self
                .classes
                .saturating_mul(CLASS_CHARGE)
                .saturating_add(fold))
        }

        fn visit_pre(&mut self, ast: &Ast) -> Result<(), Self::Err> {
            match ast {
                Ast::Flags(set) if set.flags.flag_state(Flag::CaseInsensitive) == Some(true) => {
                    self.case_insensitive = true;
                }
                Ast::Group(group) => {
                    if let ast::GroupKind::NonCapturing(flags) = &group.kind
                        && flags.flag_state(Flag::CaseInsensitive) == Some(true)
                    {
                        self.case_insensitive = true;
                    }
                }
                Ast::ClassUnicode(_) => {
                    self.classes += 1;
                    self.fold(ALL_CODE_POINTS);
                }
                Ast::ClassPerl(_) => self.classes += 1,
                Ast::ClassBracketed(_) => self.bracket_depth += 1,
                _ => {}
            }
            Ok(())
        }

        fn visit_post(&mut self, ast: &Ast) -> Result<(), Self::Err> {
            if let Ast::ClassBracketed(_) = ast {
                self.bracket_depth = self.bracket_depth.saturating_sub(1);
            }
            Ok(())
        }

        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), Self::Err> {
            match item {
                ClassSetItem::Literal(_) => self.fold(1),
                ClassSetItem::Range(r) => {
                    let width = (r.end.c as usize).saturating_sub(r.start.c as usize) + 1;
                    self.fold(width);
                }
                ClassSetItem::Ascii(_) => self.fold(128),
                ClassSetItem::Unicode(_) => {
                    self.classes += 1;
                    self.fold(ALL_CODE_POINTS);
                }
                ClassSetItem::Perl(_) => {
                    self.classes += 1;
                    self.fold(PERL_CODE_POINTS);
                }
                ClassSetItem::Bracketed(_) => self.bracket_depth += 1,
                ClassSetItem::Empty(_) | ClassSetItem::Union(_) => {}
            }
            Ok(())
        }

        fn visit_class_set_item_post(&mut self, item: &ClassSetItem) -> Result<(), Self::Err> {
            if let ClassSetItem::Bracketed(_) = item {
                self.bracket_depth = self.bracket_depth.saturating_sub(1);
            }
            Ok(())
        }

        fn visit_class_set_binary_op_pre(
            &mut self,
            _op: &ast::ClassSetBinaryOp,
        ) -> Result<(), Self::Err> {
            self.classes += 1;
            Ok(())
        }
    }
    let cost = Cost {
        classes: 0,
        fold_points: 0,
        case_insensitive: false,
        bracket_depth: 0,
    };
    match ast::visit(ast, cost) {
        Ok(cost) => cost,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyday_patterns_compile_and_match() {
        let mut c = PatternCompiler::default();
        for (p, yes, no) in [
            (r"^[0-9]+$", "123", "12a"),
            (r"^\w+$", "héllo", "a b"),
            (r"(?i)^[a-z]+$", "AbC", "a1"),
            (r"^\d{4}-\d{2}-\d{2}$", "2024-01-31", "2024-1-31"),
        ] {
            let re = c.get(p).as_ref().expect(p).clone();
            assert!(re.is_match(yes), "{p} {yes}");
            assert!(!re.is_match(no), "{p} {no}");
        }
        assert!(c.spent() < 1 << 20, "{}", c.spent());
    }

    #[test]
    fn bombs_are_too_big() {
        let mut c = PatternCompiler::default();
        for p in [
            r"(a{1000}){1000}",
            r"\w{50}",
            r"((a{100}){100}){100}",
            r"(?i)\p{Any}",
            r"(?i)[\x{0}-\x{10FFFF}]",
        ] {
            assert!(
                matches!(c.get(p), Err(PatternErrorKind::TooBig { .. })),
                "{p}: {:?}",
                c.get(p)
            );
        }
    }

    #[test]
    fn the_budget_runs_out() {
        let limits = ValidationLimits {
            regex_budget: 1 << 20,
            ..ValidationLimits::DEFAULT
        };
        let mut c = PatternCompiler::new(limits);
        let sources: Vec<String> = (0..100).map(|i| format!(r"\w{{{}}}", 40 + i)).collect();
        let over = sources
            .iter()
            .filter(|p| matches!(c.get(p), Err(PatternErrorKind::OverBudget { .. })))
            .count();
        assert!(over > 90, "{over}");
        assert!(
            c.spent() <= (1 << 20) + 2 * PATTERN_SIZE_LIMIT,
            "{}",
            c.spent()
        );
    }
}
