//! What a check found: [`Diagnostic`], its [`Severity`], [`Rule`] and [`Position`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How serious a [`Diagnostic`] is. Errors sort before warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document breaks a rule of TD 1.1: it is invalid.
    Error,
    /// Allowed, but likely a mistake or not supported by every consumer.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Where a problem is in the source text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// The rule a [`Diagnostic`] enforces. Each has a short, stable code
        /// ([`Rule::as_str`], also its serialized form) that `docs/td.md` lists with the
        /// section of TD 1.1 it comes from.
        ///
        /// ```
        /// use wot_td::Rule;
        /// assert_eq!(Rule::SecurityUndefined.as_str(), "security-undefined");
        /// assert_eq!("security-undefined".parse::<Rule>(), Ok(Rule::SecurityUndefined));
        /// assert_eq!(Rule::SecurityUndefined, "security-undefined");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule, in the order of `docs/td.md`.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The rule's code, e.g. `security-undefined`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Rule::$variant => $code,)*
                }
            }
        }

        impl std::str::FromStr for Rule {
            type Err = UnknownRule;
            fn from_str(s: &str) -> Result<Rule, UnknownRule> {
                match s {
                    $($code => Ok(Rule::$variant),)*
                    _ => Err(UnknownRule),
                }
            }
        }
    };
}

rules! {
    // Reading the document.
    /// The input could not be read (or is larger than the limit).
    Read = "read",
    /// The input is not JSON, or nests deeper than 128 levels.
    JsonSyntax = "json-syntax",
    /// The text starts with a UTF-8 byte-order mark (accepted, but RFC 8259 says not to
    /// send one).
    ByteOrderMark = "byte-order-mark",
    /// An object repeats a key with a different value, or repeats the name of an
    /// affordance or definition.
    DuplicateKey = "duplicate-key",
    /// An object repeats a term with the same value.
    DuplicateIdentical = "duplicate-identical",
    /// A term TD 1.1 requires is missing.
    TermMissing = "term-missing",
    /// A term has the wrong JSON type.
    TermType = "term-type",
    /// A term has a value outside its allowed set (an unknown `op`, `in`, ...).
    TermValue = "term-value",
    /// More structural problems than are reported for one document.
    TooManyProblems = "too-many-problems",
    // The Thing.
    /// `@context` holds the TD 1.1 or 1.0 context URI.
    Context = "context",
    /// `id` is an absolute URI.
    IdUri = "id-uri",
    /// `base` is an absolute URI.
    BaseUri = "base-uri",
    /// `version` has `instance`.
    VersionInstance = "version-instance",
    // Security.
    /// `securityDefinitions` defines a scheme.
    SecurityDefinitionsEmpty = "security-definitions-empty",
    /// `security` names a scheme.
    SecurityEmpty = "security-empty",
    /// Every scheme named is defined.
    SecurityUndefined = "security-undefined",
    /// `scheme` is a TD 1.1 scheme or a prefixed extension.
    SchemeUnknown = "scheme-unknown",
    /// A `combo` scheme is well formed.
    Combo = "combo",
    /// An OAuth 2.0 flow outside TD 1.1's.
    Oauth2Flow = "oauth2-flow",
    // Links.
    /// At most one `rel: "type"` link.
    LinkRelType = "link-rel-type",
    /// `sizes` only on icons, and well formed.
    LinkSizes = "link-sizes",
    /// No `tm:extends` link in a TD.
    LinkTmExtends = "link-tm-extends",
    /// The linked Thing Model was not checked.
    TmUnchecked = "tm-unchecked",
    /// The linked Thing Model is not available.
    TmUnavailable = "tm-unavailable",
    /// The TD does not conform to its Thing Model.
    TmConformance = "tm-conformance",
    // Affordances and forms.
    /// `forms` is not empty.
    FormsEmpty = "forms-empty",
    /// A Thing-level form has `op`.
    OpRequired = "op-required",
    /// `op` is not an empty array.
    OpEmpty = "op-empty",
    /// `op` fits its affordance.
    OpKind = "op-kind",
    /// `observeproperty` on a property that is not observable.
    ObserveNotObservable = "observe-not-observable",
    /// `href` is empty and there is no `base`.
    HrefEmpty = "href-empty",
    /// `href` is a valid URI template.
    HrefTemplate = "href-template",
    /// A URI template variable name outside RFC 6570 (accepted, matched literally).
    HrefTemplateName = "href-template-name",
    /// `href` is a valid URI reference.
    HrefUri = "href-uri",
    /// `href` uses a scheme a network client must not follow (`file:`, `javascript:`,
    /// `data:`).
    HrefScheme = "href-scheme",
    /// A form's `response` has `contentType`.
    ResponseContentType = "response-content-type",
    /// An additional response says something.
    AdditionalResponseEmpty = "additional-response-empty",
    /// A `schema` reference names a `schemaDefinitions` entry.
    SchemaUndefined = "schema-undefined",
    /// `schemaDefinitions` is not empty.
    SchemaDefinitionsEmpty = "schema-definitions-empty",
    /// URI variables are simple values.
    UriVariableType = "uri-variable-type",
    // Data schemas.
    /// Not both `readOnly` and `writeOnly`.
    ReadWriteOnly = "read-write-only",
    /// A schema built in code nests too deep.
    SchemaDepth = "schema-depth",
    /// `enum` lists a value.
    EnumEmpty = "enum-empty",
    /// `enum` values are unique.
    EnumDuplicate = "enum-duplicate",
    /// `enum` values fit the schema.
    EnumType = "enum-type",
    /// `const` fits the schema.
    ConstType = "const-type",
    /// `default` fits the schema.
    DefaultType = "default-type",
    /// The minimum is not above the maximum.
    Range = "range",
    /// `minLength` ≤ `maxLength`.
    LengthRange = "length-range",
    /// `minItems` ≤ `maxItems`.
    ItemsRange = "items-range",
    /// `multipleOf` > 0.
    MultipleOf = "multiple-of",
    /// `pattern` compiles within the limits.
    Pattern = "pattern",
    /// The patterns of a TD fit the compile budget.
    PatternBudget = "pattern-budget",
    /// Checking literals against schemas ran out of steps.
    CheckBudget = "check-budget",
    /// An array schema without `items`.
    ArrayNoItems = "array-no-items",
    /// An object schema without `properties`.
    ObjectNoProperties = "object-no-properties",
    /// `required` names are unique.
    RequiredDuplicate = "required-duplicate",
    /// `required` names are among `properties`.
    RequiredUnknown = "required-unknown",
    /// `oneOf` lists a schema.
    OneOfEmpty = "one-of-empty",
    // Thing Models.
    /// A Thing Model's `@type` has `tm:ThingModel`.
    TmType = "tm-type",
    /// `tm:optional` points at affordances.
    TmOptional = "tm-optional",
    /// A Thing Model has no `version.instance`.
    TmVersionInstance = "tm-version-instance",
    /// A `tm:extends` parent was not checked.
    TmExtendsUnchecked = "tm-extends-unchecked",
    /// A `tm:extends` parent is available, valid and not a cycle.
    TmExtends = "tm-extends",
    // Optional.
    /// (feature `json-schema`) the official TD 1.1 JSON Schema.
    JsonSchema = "json-schema",
}

/// The error of parsing a [`Rule`] from a code that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a wot-td rule code")]
pub struct UnknownRule;

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        code.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown rule code `{code}`")))
    }
}

impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Rule {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// One finding of a check.
///
/// Serialized (as `td-check --json` prints it) as
/// `{"severity", "rule", "path", "line", "column", "message"}`; `line` and `column` are
/// left out when the position is unknown (a document built in code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The rule, with a stable code.
    pub rule: Rule,
    /// JSON path of the problem, e.g. `properties.temp.forms[0].op` (empty: the root).
    pub path: String,
    /// Where the path is in the source text, when the document was parsed from text.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// What is wrong, in words.
    pub message: String,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn error(rule: Rule, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, rule, path, message)
    }

    pub(crate) fn warning(rule: Rule, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, rule, path, message)
    }

    /// A diagnostic without a position, for tools that report problems of their own
    /// beside the crate's (the message is cut to 500 characters).
    ///
    /// ```
    /// use wot_td::{Diagnostic, Rule, Severity};
    /// let d = Diagnostic::new(Severity::Error, Rule::Read, "", "cannot read the file");
    /// assert_eq!(d.to_string(), "error at (root): cannot read the file [read]");
    /// ```
    pub fn new(
        severity: Severity,
        rule: Rule,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            rule,
            path: path.into(),
            position: None,
            message: clip(message.into()),
        }
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `error at properties.temp.forms[0].op (line 12, column 17): message [op-kind]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, "{} at {path}", self.severity)?;
        if let Some(p) = self.position {
            write!(f, " (line {}, column {})", p.line, p.column)?;
        }
        write!(f, ": {} [{}]", self.message, self.rule)
    }
}

/// Puts errors first, then warnings, each in the order of their place in the text
/// (diagnostics without a position keep their relative order, after those with one).
pub(crate) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.severity, d.position.is_none(), d.position));
}

/// Longest message kept, in characters: a message quotes parts of the document, and
/// those can be megabytes long in a hostile one.
const MAX_MESSAGE_CHARS: usize = 500;

/// Cuts the middle out of a `message` longer than [`MAX_MESSAGE_CHARS`], marking the cut
/// with `…`. Head and tail are kept: the tail often holds the cause (for example at the
/// end of a chain of `tm:extends` parents).
pub(crate) fn clip(message: String) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message;
    }
    let keep = (MAX_MESSAGE_CHARS - 3) / 2;
    let head: String = message.chars().take(keep).collect();
    let tail: String = message.chars().skip(count - keep).collect();
    format!("{head} … {tail}")
}
