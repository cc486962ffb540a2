//! Document-level checks beyond what the types already enforce.
//!
//! Each check has a rule id (`Diagnostic::rule`) listed in `docs/td.md`.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;

use crate::MAX_DEPTH;
use crate::model::{
    AffordanceKind, DataSchema, DataType, Form, Operation, TD_CONTEXT_1_0, TD_CONTEXT_1_1, Thing,
};
use crate::one_or_many::OneOrMany;
use crate::parse::{Document, ThingModel, push_key};
use crate::pattern::{PatternErrorKind, ValidationLimits};
use crate::security::SecurityScheme;
use crate::value_check::{Checker, short};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

/// One finding of a validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// JSON path of the problem, e.g. `properties.temp.forms[0].op` (empty: the root).
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// A short, stable rule id such as `security-undefined`.
    #[serde(skip)]
    pub rule: &'static str,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn error(
        rule: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            message: clip(message.into()),
            rule,
        }
    }

    pub(crate) fn warning(
        rule: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            message: clip(message.into()),
            rule,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(
            f,
            "{} at {}: {} [{}]",
            self.severity, path, self.message, self.rule
        )
    }
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

fn join(path: &str, key: &str) -> String {
    let mut p = path.to_owned();
    push_key(&mut p, key);
    p
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A JSON path as a chain of steps on the stack, rendered only when a diagnostic is
/// reported, so that checking a valid document builds no path strings.
#[derive(Clone, Copy)]
enum At<'a> {
    /// The document root (renders as the empty path).
    Root,
    /// A key of the object at the parent path.
    Key(&'a At<'a>, &'a str),
    /// An index of the array at the parent path.
    Index(&'a At<'a>, usize),
}

impl<'a> At<'a> {
    /// A key of the root object.
    fn top(key: &'a str) -> At<'a> {
        At::Key(&At::Root, key)
    }

    /// The path of `key` inside this one.
    fn key<'b>(&'b self, key: &'b str) -> At<'b> {
        At::Key(self, key)
    }

    /// The path of item `i` inside this one.
    fn index(&self, i: usize) -> At<'_> {
        At::Index(self, i)
    }

    /// The path as text, e.g. `properties.temp.forms[0].op` (empty for the root).
    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut at = self;
        while let At::Key(parent, _) | At::Index(parent, _) = at {
            steps.push(at);
            at = parent;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                At::Key(_, key) => push_key(&mut out, key),
                At::Index(_, i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                At::Root => {}
            }
        }
        out
    }
}

const KNOWN_SCHEMES: [&str; 9] = [
    "nosec", "auto", "combo", "basic", "digest", "apikey", "bearer", "psk", "oauth2",
];

impl Document {
    /// Validates the document: a TD with [`Thing::validate`], a TM with
    /// [`ThingModel::validate`]. With the `json-schema` feature a TD is also checked
    /// against the official TD 1.1 JSON Schema (rule `json-schema`).
    pub fn validate(&self) -> Vec<Diagnostic> {
        self.validate_with_limits(&ValidationLimits::DEFAULT)
    }

    /// [`Document::validate`] with other limits on the work of checking data schemas
    /// (pattern sizes, the compile budget, check steps).
    pub fn validate_with_limits(&self, limits: &ValidationLimits) -> Vec<Diagnostic> {
        match self {
            Document::Td(thing, _) => {
                #[allow(unused_mut)]
                let mut out = thing.validate_with_limits(limits);
                #[cfg(feature = "json-schema")]
                if let Ok(json) = self.to_value() {
                    out.extend(crate::json_schema::validate_td_json(&json));
                }
                out
            }
            Document::Tm(model) => model.validate(),
        }
    }
}

impl Thing {
    /// Checks the rules of TD 1.1 that the types cannot express and returns every
    /// finding (an empty list means valid without warnings). Rules: the TD context is
    /// present; `security` and `securityDefinitions` are not empty and every name used
    /// is defined; schemes are known or prefixed extensions; `combo` is well formed;
    /// every affordance has forms; every `op` fits its affordance; at most one
    /// `rel: "type"` link; `version` has `instance`; data schemas are consistent (see
    /// [`DataSchema`] rules in `docs/td.md`).
    ///
    /// ```
    /// use wot_td::Document;
    /// let doc = Document::from_str(r#"{
    ///   "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
    ///   "securityDefinitions": {"basic_sc": {"scheme": "basic"}}, "security": "basic_sc",
    ///   "actions": {"toggle": {"forms": [{"href": "http://t/toggle", "security": "nope"}]}}
    /// }"#).unwrap();
    /// let diags = doc.validate();
    /// assert_eq!(diags[0].path, "actions.toggle.forms[0].security");
    /// ```
    pub fn validate(&self) -> Vec<Diagnostic> {
        self.validate_with_limits(&ValidationLimits::DEFAULT)
    }

    /// [`Thing::validate`] with other limits on the work of checking data schemas. The
    /// limits keep validation close to linear in the size of the TD: each distinct
    /// `pattern` is compiled once, within [`ValidationLimits::regex_size`], and all of
    /// them within [`ValidationLimits::regex_budget`]; checking `enum`, `const` and
    /// `default` values against their schemas (a hostile `enum` × `oneOf` would be
    /// quadratic) stops after [`ValidationLimits::check_steps`].
    pub fn validate_with_limits(&self, limits: &ValidationLimits) -> Vec<Diagnostic> {
        let mut v = Validator {
            out: Vec::new(),
            checker: Checker::with_limits(*limits),
            good_hrefs: HashSet::new(),
            over_budget: None,
        };
        v.thing(self);
        if v.checker.exhausted() {
            v.warn(
                "check-budget",
                &At::Root,
                format!(
                    "the data schemas are too large to check every `enum`, `const` and `default` value against them (more than {} steps); the rest was skipped",
                    limits.check_steps
                ),
            );
        }
        if let Some((path, count)) = v.over_budget.take() {
            let later = match count {
                1 => String::new(),
                n => format!(", nor {} later ones", n - 1),
            };
            v.out.push(Diagnostic::error(
                "pattern-budget",
                path,
                format!(
                    "the `pattern`s before this one used up the compile budget of {} bytes, so it was not compiled{later}",
                    limits.regex_budget
                ),
            ));
        }
        v.out
    }
}

struct Validator<'t> {
    out: Vec<Diagnostic>,
    /// Shared by all schemas, so each `pattern` is compiled once and the budget is global.
    checker: Checker<'t>,
    /// `href`s already found to be well-formed URI templates and URI references (forms
    /// often repeat one), so each is parsed once.
    good_hrefs: HashSet<&'t str>,
    /// The path of the first `pattern` not compiled for lack of budget, and how many
    /// patterns were not.
    over_budget: Option<(String, usize)>,
}

impl<'t> Validator<'t> {
    fn err(&mut self, rule: &'static str, at: &At<'_>, msg: impl Into<String>) {
        self.out.push(Diagnostic::error(rule, at.render(), msg));
    }

    fn warn(&mut self, rule: &'static str, at: &At<'_>, msg: impl Into<String>) {
        self.out.push(Diagnostic::warning(rule, at.render(), msg));
    }

    /// An `enum` or `const` value must fit the rest of its schema.
    fn literal_fits(
        &mut self,
        s: &'t DataSchema,
        value: &Value,
        rule: &'static str,
        at: &At<'_>,
        what: &str,
    ) {
        if let Some(e) = self.checker.check(s, value, false).first() {
            self.err(
                rule,
                at,
                format!("{what} value {} does not fit the schema: {e}", short(value)),
            );
        }
    }

    fn thing(&mut self, t: &'t Thing) {
        let has_td_context = t.context.iter().any(|c| {
            matches!(c, crate::model::ContextEntry::Uri(u) if u == TD_CONTEXT_1_1 || u == TD_CONTEXT_1_0)
        });
        if !has_td_context {
            self.err(
                "context",
                &At::top("@context"),
                format!("`@context` must contain the TD context URI `{TD_CONTEXT_1_1}`"),
            );
        }
        if let Some(id) = &t.id
            && url::Url::parse(id).is_err()
        {
            self.warn(
                "id-uri",
                &At::top("id"),
                format!("`id` should be an absolute URI, found `{id}`"),
            );
        }
        if let Some(base) = &t.base
            && url::Url::parse(base).is_err()
        {
            self.warn(
                "base-uri",
                &At::top("base"),
                format!("`base` is not an absolute URI (`{base}`), so it is resolved against the URL the TD was fetched from"),
            );
        }
        if let Some(version) = &t.version
            && version.instance.is_none()
        {
            self.err(
                "version-instance",
                &At::top("version"),
                "`version` must have an `instance` string",
            );
        }
        self.security(t);
        self.links(t);

        if let Some(defs) = &t.schema_definitions {
            if defs.is_empty() {
                self.err(
                    "schema-definitions-empty",
                    &At::top("schemaDefinitions"),
                    "`schemaDefinitions` must not be empty when present",
                );
            }
            for (name, s) in defs {
                self.schema(s, &At::top("schemaDefinitions").key(name), 0);
            }
        }
        self.uri_variables(t.uri_variables.as_ref(), &At::top("uriVariables"));

        let properties = At::top("properties");
        for (name, p) in t.properties() {
            let path = properties.key(name);
            self.schema(&p.schema, &path, 0);
            if p.schema.is_read_only() && p.schema.is_write_only() {
                self.err(
                    "read-write-only",
                    &path,
                    "a property cannot be both `readOnly` and `writeOnly`",
                );
            }
            self.uri_variables(p.uri_variables.as_ref(), &path.key("uriVariables"));
            self.forms(t, &p.forms, AffordanceKind::Property, &path);
            if !p.is_observable() {
                for (i, f) in p.forms.iter().enumerate() {
                    let ops = p.form_operations(f);
                    if ops.contains(&Operation::ObserveProperty) {
                        self.warn(
                            "observe-not-observable",
                            &path.key("forms").index(i),
                            "the form offers `observeproperty` but the property is not `observable: true`",
                        );
                    }
                }
            }
        }
        let actions = At::top("actions");
        for (name, a) in t.actions() {
            let path = actions.key(name);
            if let Some(s) = &a.input {
                self.schema(s, &path.key("input"), 0);
            }
            if let Some(s) = &a.output {
                self.schema(s, &path.key("output"), 0);
            }
            self.uri_variables(a.uri_variables.as_ref(), &path.key("uriVariables"));
            self.forms(t, &a.forms, AffordanceKind::Action, &path);
        }
        let events = At::top("events");
        for (name, e) in t.events() {
            let path = events.key(name);
            for (key, s) in [
                ("subscription", &e.subscription),
                ("data", &e.data),
                ("dataResponse", &e.data_response),
                ("cancellation", &e.cancellation),
            ] {
                if let Some(s) = s {
                    self.schema(s, &path.key(key), 0);
                }
            }
            self.uri_variables(e.uri_variables.as_ref(), &path.key("uriVariables"));
            self.forms(t, &e.forms, AffordanceKind::Event, &path);
        }
        if let Some(forms) = &t.forms {
            if forms.is_empty() {
                self.err(
                    "forms-empty",
                    &At::top("forms"),
                    "`forms` must not be empty when present",
                );
            }
            for (i, f) in forms.iter().enumerate() {
                if f.op.is_none() {
                    self.err(
                        "op-required",
                        &At::top("forms").index(i),
                        "a Thing-level form must have `op`",
                    );
                }
            }
            self.forms(t, forms, AffordanceKind::Thing, &At::Root);
        }
    }

    fn security(&mut self, t: &Thing) {
        if t.security_definitions.is_empty() {
            self.err(
                "security-definitions-empty",
                &At::top("securityDefinitions"),
                "`securityDefinitions` must define at least one security scheme",
            );
        }
        if t.security.is_empty() {
            self.err(
                "security-empty",
                &At::top("security"),
                "`security` must name at least one security scheme",
            );
        }
        self.security_names(t, &t.security, &At::top("security"));
        let definitions = At::top("securityDefinitions");
        for (name, scheme) in &t.security_definitions {
            let path = definitions.key(name);
            match scheme {
                SecurityScheme::Other { scheme, .. } if !scheme.contains(':') => {
                    self.err(
                        "scheme-unknown",
                        &path.key("scheme"),
                        format!(
                            "unknown security scheme `{scheme}`: use one of {} or a prefixed extension scheme such as `ace:ACESecurityScheme`",
                            KNOWN_SCHEMES.join(", ")
                        ),
                    );
                }
                SecurityScheme::Combo(c) => match (&c.one_of, &c.all_of) {
                    (Some(_), Some(_)) | (None, None) => self.err(
                        "combo",
                        &path,
                        "a `combo` scheme must have exactly one of `oneOf` and `allOf`",
                    ),
                    (Some(list), None) | (None, Some(list)) => {
                        let key = if c.one_of.is_some() { "oneOf" } else { "allOf" };
                        if list.len() < 2 {
                            self.err(
                                "combo",
                                &path.key(key),
                                format!("`{key}` must name at least two schemes"),
                            );
                        }
                        for (i, n) in list.iter().enumerate() {
                            if !t.security_definitions.contains_key(n) {
                                self.err(
                                    "security-undefined",
                                    &path.key(key).index(i),
                                    format!("`{n}` is not defined in `securityDefinitions`"),
                                );
                            } else if n == name {
                                self.err(
                                    "combo",
                                    &path.key(key).index(i),
                                    "a `combo` scheme cannot contain itself",
                                );
                            }
                        }
                    }
                },
                SecurityScheme::OAuth2(o) => {
                    if let Some(flow) = &o.flow
                        && flow != "code"
                        && flow != "client"
                    {
                        self.warn(
                            "oauth2-flow",
                            &path.key("flow"),
                            format!("OAuth 2.0 flow `{flow}` is not one of TD 1.1's (`code`, `client`); many clients do not support it"),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn security_names(&mut self, t: &Thing, names: &OneOrMany<String>, path: &At<'_>) {
        for (i, n) in names.iter().enumerate() {
            if !t.security_definitions.contains_key(n) {
                let p = match names {
                    OneOrMany::One(_) => *path,
                    OneOrMany::Many(_) => path.index(i),
                };
                self.err(
                    "security-undefined",
                    &p,
                    format!("security scheme `{n}` is not defined in `securityDefinitions`"),
                );
            }
        }
    }

    fn links(&mut self, t: &Thing) {
        let Some(links) = &t.links else { return };
        let mut type_links = 0;
        let links_at = At::top("links");
        for (i, l) in links.iter().enumerate() {
            let path = links_at.index(i);
            match l.rel.as_deref() {
                Some("type") => {
                    type_links += 1;
                    if type_links > 1 {
                        self.err(
                            "link-rel-type",
                            &path.key("rel"),
                            "a TD may have at most one link with `rel: \"type\"`",
                        );
                    } else {
                        self.warn(
                            "tm-unchecked",
                            &path,
                            format!(
                                "unchecked: conformance to the Thing Model `{}` needs the Thing Model (give one to `Document::validate_with`)",
                                l.href
                            ),
                        );
                    }
                }
                Some("icon") => {
                    if let Some(sizes) = &l.sizes
                        && !sizes.split_whitespace().all(valid_size)
                    {
                        self.err(
                            "link-sizes",
                            &path.key("sizes"),
                            format!("`sizes` must look like `16x16`, found `{sizes}`"),
                        );
                    }
                }
                Some("tm:extends") => {
                    self.err(
                        "link-tm-extends",
                        &path.key("rel"),
                        "`tm:extends` links belong in Thing Models, not in TDs",
                    );
                }
                _ => {
                    if l.sizes.is_some() {
                        self.err(
                            "link-sizes",
                            &path.key("sizes"),
                            "only `rel: \"icon\"` links may have `sizes`",
                        );
                    }
                }
            }
        }
    }

    fn uri_variables(
        &mut self,
        vars: Option<&'t indexmap::IndexMap<String, DataSchema>>,
        path: &At<'_>,
    ) {
        for (name, s) in vars.into_iter().flatten() {
            let p = path.key(name);
            self.schema(s, &p, 0);
            if matches!(s.data_type, Some(DataType::Object | DataType::Array)) {
                self.warn(
                    "uri-variable-type",
                    &p,
                    "URI variables should be simple values, not objects or arrays",
                );
            }
        }
    }

    fn forms(&mut self, t: &Thing, forms: &'t [Form], kind: AffordanceKind, path: &At<'_>) {
        let forms_path = path.key("forms");
        if forms.is_empty() && kind != AffordanceKind::Thing {
            self.err(
                "forms-empty",
                &forms_path,
                "an interaction affordance needs at least one form",
            );
        }
        for (i, f) in forms.iter().enumerate() {
            let fp = forms_path.index(i);
            if let Some(op) = &f.op {
                if op.is_empty() {
                    self.err("op-empty", &fp.key("op"), "`op` must not be an empty array");
                }
                for (j, o) in op.iter().enumerate() {
                    if o.affordance_kind() != kind {
                        let op_at = fp.key("op");
                        let p = match op {
                            OneOrMany::One(_) => op_at,
                            OneOrMany::Many(_) => op_at.index(j),
                        };
                        self.err(
                            "op-kind",
                            &p,
                            format!("operation `{o}` is not allowed in {}", kind_name(kind)),
                        );
                    }
                }
            }
            if f.href.is_empty() && t.base.is_none() {
                self.warn("href-empty", &fp.key("href"), "empty `href` and no `base`");
            }
            if self.good_hrefs.contains(f.href.as_str()) {
                // Checked at an earlier form.
            } else if let Err(e) = crate::uri_template::parse_template(&f.href) {
                self.err(
                    "href-template",
                    &fp.key("href"),
                    format!("`href` is not a valid URI template: {e}"),
                );
            } else if !f.href.contains(['{', '}'])
                && crate::forms::resolve_href(&f.href, Some(placeholder_base())).is_err()
            {
                self.err(
                    "href-uri",
                    &fp.key("href"),
                    format!("`href` `{}` is not a valid URI reference", f.href),
                );
            } else {
                self.good_hrefs.insert(&f.href);
            }
            if let Some(sec) = &f.security {
                self.security_names(t, sec, &fp.key("security"));
            }
            if let Some(resp) = &f.additional_responses {
                for (j, r) in resp.iter().enumerate() {
                    let responses_at = fp.key("additionalResponses");
                    let rp = match resp {
                        OneOrMany::One(_) => responses_at,
                        OneOrMany::Many(_) => responses_at.index(j),
                    };
                    if r.success.is_none() && r.content_type.is_none() && r.schema.is_none() {
                        self.warn("additional-response-empty", &rp, "an additional response without `success`, `contentType` or `schema` says nothing");
                    }
                    if let Some(name) = &r.schema
                        && !t
                            .schema_definitions
                            .as_ref()
                            .is_some_and(|d| d.contains_key(name))
                    {
                        self.err(
                            "schema-undefined",
                            &rp.key("schema"),
                            format!("`{name}` is not defined in `schemaDefinitions`"),
                        );
                    }
                }
            }
        }
    }

    /// Consistency of one data schema and its children (depth-limited).
    fn schema(&mut self, s: &'t DataSchema, path: &At<'_>, depth: usize) {
        if depth > MAX_DEPTH {
            self.err(
                "schema-depth",
                path,
                format!("data schema nested deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        if let Some(values) = &s.enumeration {
            if values.is_empty() {
                self.err(
                    "enum-empty",
                    &path.key("enum"),
                    "`enum` must list at least one value",
                );
            }
            let mut seen = HashSet::new();
            for (i, v) in values.iter().enumerate() {
                if !seen.insert(crate::value_check::canonical(v)) {
                    self.err(
                        "enum-duplicate",
                        &path.key("enum").index(i),
                        format!("`enum` lists {} more than once", short(v)),
                    );
                }
            }
            for (i, v) in values.iter().enumerate() {
                self.literal_fits(s, v, "enum-type", &path.key("enum").index(i), "`enum`");
            }
        }
        if let Some(c) = &s.constant {
            self.literal_fits(s, c, "const-type", &path.key("const"), "`const`");
        }
        if let Some(d) = &s.default {
            let found = self.checker.check(s, d, true);
            if let Some(e) = found.first() {
                self.warn(
                    "default-type",
                    &path.key("default"),
                    format!(
                        "`default` value {} does not fit the schema: {}",
                        short(d),
                        e
                    ),
                );
            }
        }
        let f = |n: &Option<serde_json::Number>| n.as_ref().and_then(serde_json::Number::as_f64);
        if let (Some(lo), Some(hi)) = (
            f(&s.minimum).or(f(&s.exclusive_minimum)),
            f(&s.maximum).or(f(&s.exclusive_maximum)),
        ) && lo > hi
        {
            self.err(
                "range",
                path,
                format!("the minimum ({lo}) is greater than the maximum ({hi})"),
            );
        }
        if let Some(m) = f(&s.multiple_of)
            && m <= 0.0
        {
            self.err(
                "multiple-of",
                &path.key("multipleOf"),
                "`multipleOf` must be greater than 0",
            );
        }
        if let (Some(lo), Some(hi)) = (s.min_length, s.max_length)
            && lo > hi
        {
            self.err(
                "length-range",
                path,
                format!("`minLength` ({lo}) is greater than `maxLength` ({hi})"),
            );
        }
        if let (Some(lo), Some(hi)) = (s.min_items, s.max_items)
            && lo > hi
        {
            self.err(
                "items-range",
                path,
                format!("`minItems` ({lo}) is greater than `maxItems` ({hi})"),
            );
        }
        if let Some(p) = &s.pattern {
            match self.checker.patterns.get(p) {
                Ok(_) => {}
                Err(PatternErrorKind::OverBudget { .. }) => match &mut self.over_budget {
                    Some((_, count)) => *count += 1,
                    None => self.over_budget = Some((path.key("pattern").render(), 1)),
                },
                Err(e) => {
                    let message = format!("`pattern` is not a usable regular expression: {e}");
                    self.err("pattern", &path.key("pattern"), message);
                }
            }
        }
        match s.data_type {
            Some(DataType::Array) if s.items.is_none() => {
                self.warn(
                    "array-no-items",
                    path,
                    "an array schema without `items` says nothing about its elements",
                );
            }
            Some(DataType::Object) if s.properties.is_none() => {
                self.warn(
                    "object-no-properties",
                    path,
                    "an object schema without `properties` says nothing about its members",
                );
            }
            _ => {}
        }
        if let (Some(req), props) = (&s.required, &s.properties) {
            let mut seen = HashSet::new();
            for (i, r) in req.iter().enumerate() {
                if !seen.insert(r) {
                    self.err(
                        "required-duplicate",
                        &path.key("required").index(i),
                        format!("`required` lists `{r}` more than once"),
                    );
                }
                if let Some(props) = props
                    && !props.contains_key(r)
                {
                    self.warn(
                        "required-unknown",
                        &path.key("required").index(i),
                        format!("`{r}` is required but not among `properties`"),
                    );
                }
            }
        }
        if let Some(one_of) = &s.one_of {
            if one_of.is_empty() {
                self.err(
                    "one-of-empty",
                    &path.key("oneOf"),
                    "`oneOf` must list at least one schema",
                );
            }
            for (i, c) in one_of.iter().enumerate() {
                self.schema(c, &path.key("oneOf").index(i), depth + 1);
            }
        }
        if let Some(items) = &s.items {
            match items.as_ref() {
                OneOrMany::One(c) => self.schema(c, &path.key("items"), depth + 1),
                OneOrMany::Many(cs) => {
                    for (i, c) in cs.iter().enumerate() {
                        self.schema(c, &path.key("items").index(i), depth + 1);
                    }
                }
            }
        }
        for (name, c) in s.properties.iter().flatten() {
            self.schema(c, &path.key("properties").key(name), depth + 1);
        }
    }
}

/// Only used to check that relative references are well formed; parsed once.
#[expect(clippy::unreachable, reason = "a constant URL that always parses")]
fn placeholder_base() -> &'static url::Url {
    static BASE: LazyLock<url::Url> = LazyLock::new(|| {
        url::Url::parse("http://base.invalid/").unwrap_or_else(|_| unreachable!("static URL"))
    });
    &BASE
}

fn valid_size(s: &str) -> bool {
    let Some((w, h)) = s.split_once(['x', 'X']) else {
        return s.eq_ignore_ascii_case("any");
    };
    w.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() && h.chars().all(|c| c.is_ascii_digit())
}

fn kind_name(kind: AffordanceKind) -> &'static str {
    match kind {
        AffordanceKind::Property => "a property form",
        AffordanceKind::Action => "an action form",
        AffordanceKind::Event => "an event form",
        AffordanceKind::Thing => "a Thing-level form",
    }
}

impl ThingModel {
    /// Checks the rules for Thing Models: `@context` with the TD context, `@type` with
    /// `tm:ThingModel`, `tm:optional` pointing at affordances, security schemes known,
    /// prefixed or `{{placeholders}}`, no `version.instance`, well-formed placeholders in
    /// names, and a warning for each `tm:extends`/`tm:ref` that cannot be checked
    /// without fetching the referenced model.
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let j = &self.json;
        let has_context = match j.get("@context") {
            Some(Value::String(s)) => s == TD_CONTEXT_1_1 || s == TD_CONTEXT_1_0,
            Some(Value::Array(a)) => a.iter().any(
                |v| matches!(v.as_str(), Some(s) if s == TD_CONTEXT_1_1 || s == TD_CONTEXT_1_0),
            ),
            _ => false,
        };
        if !has_context {
            out.push(Diagnostic::error(
                "context",
                "@context",
                format!("a Thing Model needs `@context` with `{TD_CONTEXT_1_1}`"),
            ));
        }
        if !crate::parse::is_thing_model(j) {
            out.push(Diagnostic::error(
                "tm-type",
                "@type",
                "a Thing Model needs `@type` with `tm:ThingModel`",
            ));
        }
        match j.get("tm:optional") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = index("tm:optional", i);
                    let Some(ptr) = item.as_str() else {
                        out.push(Diagnostic::error(
                            "tm-optional",
                            p,
                            "`tm:optional` entries must be strings",
                        ));
                        continue;
                    };
                    let parts: Vec<&str> = ptr.split('/').collect();
                    let ok = matches!(parts.as_slice(), ["", kind, name] if matches!(*kind, "properties" | "actions" | "events") && !name.is_empty());
                    if !ok {
                        out.push(Diagnostic::error(
                            "tm-optional",
                            p,
                            format!("`{ptr}` must point to an interaction affordance, like `/properties/status`"),
                        ));
                    } else if let ["", kind, name] = parts.as_slice()
                        && j.get(*kind).and_then(|m| m.get(*name)).is_none()
                    {
                        out.push(Diagnostic::warning(
                            "tm-optional",
                            p,
                            format!("`{ptr}` names no affordance of this model"),
                        ));
                    }
                }
            }
            Some(_) => out.push(Diagnostic::error(
                "tm-optional",
                "tm:optional",
                "`tm:optional` must be an array of JSON pointers",
            )),
        }
        if let Some(Value::Object(defs)) = j.get("securityDefinitions") {
            for (name, def) in defs {
                let p = join(&join("securityDefinitions", name), "scheme");
                match def.get("scheme").and_then(Value::as_str) {
                    None => out.push(Diagnostic::error("scheme-unknown", p, "a security scheme needs a `scheme` string")),
                    Some(s) if KNOWN_SCHEMES.contains(&s) || s.contains(':') || is_placeholder(s) => {}
                    Some(s) => out.push(Diagnostic::error(
                        "scheme-unknown",
                        p,
                        format!("unknown security scheme `{s}`: use a TD 1.1 scheme, a prefixed extension scheme, or a `{{{{PLACEHOLDER}}}}`"),
                    )),
                }
            }
        }
        if let Some(Value::Object(v)) = j.get("version")
            && v.contains_key("instance")
        {
            out.push(Diagnostic::error(
                "tm-version-instance",
                "version.instance",
                "a Thing Model must not have `version.instance`",
            ));
        }
        if let Some(Value::Array(links)) = j.get("links") {
            for (i, l) in links.iter().enumerate() {
                if l.get("rel").and_then(Value::as_str) == Some("tm:extends") {
                    let href = l.get("href").and_then(Value::as_str).unwrap_or("");
                    out.push(Diagnostic::warning(
                        "tm-extends-unchecked",
                        index("links", i),
                        format!("unchecked: the parent model `{href}` is not available here (give it to `Document::validate_with`)"),
                    ));
                }
            }
        }
        out
    }
}

/// True when `s` contains a well-formed `{{NAME}}` placeholder.
pub(crate) fn is_placeholder(s: &str) -> bool {
    let Some((_, rest)) = s.split_once("{{") else {
        return false;
    };
    match rest.split_once("}}") {
        Some((name, _)) => !name.is_empty() && name.chars().all(|c| (' '..='~').contains(&c)),
        None => false,
    }
}
