//! Document-level checks beyond what the types already enforce.
//!
//! Each check has a rule id (`Diagnostic::rule`) listed in `docs/td.md`.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::Value;

use crate::MAX_DEPTH;
use crate::diagnostic::{Diagnostic, Rule};
use crate::model::{
    AffordanceKind, DataSchema, DataType, Form, Operation, TD_CONTEXT_1_0, TD_CONTEXT_1_1, Thing,
};
use crate::one_or_many::OneOrMany;
use crate::parse::{Document, Inner, ThingModel, push_key};
use crate::pattern::{PatternErrorKind, ValidationLimits};
use crate::security::SecurityScheme;
use crate::value_check::{Checker, short};

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
    /// against the official TD 1.1 JSON Schema (rule `json-schema`). A TD parsed from
    /// text also reports the warnings of reading it (a byte-order mark, a term repeated
    /// with the same value), and every diagnostic carries its line and column.
    ///
    /// To check text that may not even parse, and see every problem at once, use
    /// [`Document::check`].
    pub fn validate(&self) -> Vec<Diagnostic> {
        self.validate_with_limits(&ValidationLimits::DEFAULT)
    }

    /// [`Document::validate`] with other limits on the work of checking data schemas
    /// (pattern sizes, the compile budget, check steps).
    pub fn validate_with_limits(&self, limits: &ValidationLimits) -> Vec<Diagnostic> {
        match self {
            Document(Inner::Td(thing, source)) => {
                let mut out = source.notes().to_vec();
                out.extend(thing.validate_with_limits(limits));
                #[cfg(feature = "json-schema")]
                if let Ok(json) = self.to_value() {
                    out.extend(crate::json_schema::validate_td_json(&json));
                }
                self.locate(&mut out);
                out
            }
            Document(Inner::Tm(model)) => model.validate(),
        }
    }

    /// Gives each diagnostic without a position the line and column of its path, when
    /// the document was parsed from text.
    pub(crate) fn locate(&self, diagnostics: &mut [Diagnostic]) {
        if let Document(Inner::Td(_, source)) = self
            && let Some(text) = source.source_text()
        {
            crate::source::locate_all(text, diagnostics);
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
    /// let doc = r#"{
    ///   "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
    ///   "securityDefinitions": {"basic_sc": {"scheme": "basic"}}, "security": "basic_sc",
    ///   "actions": {"toggle": {"forms": [{"href": "http://t/toggle", "security": "nope"}]}}
    /// }"#.parse::<Document>().unwrap();
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
                Rule::CheckBudget,
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
                Rule::PatternBudget,
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
    fn err(&mut self, rule: Rule, at: &At<'_>, msg: impl Into<String>) {
        self.out.push(Diagnostic::error(rule, at.render(), msg));
    }

    fn warn(&mut self, rule: Rule, at: &At<'_>, msg: impl Into<String>) {
        self.out.push(Diagnostic::warning(rule, at.render(), msg));
    }

    /// An `enum` or `const` value must fit the rest of its schema.
    fn literal_fits(
        &mut self,
        s: &'t DataSchema,
        value: &Value,
        rule: Rule,
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
                Rule::Context,
                &At::top("@context"),
                format!("`@context` must contain a TD context URI: `{TD_CONTEXT_1_1}` (TD 1.1) or `{TD_CONTEXT_1_0}` (TD 1.0)"),
            );
        }
        if let Some(id) = &t.id
            && url::Url::parse(id).is_err()
        {
            self.warn(
                Rule::IdUri,
                &At::top("id"),
                format!("`id` should be an absolute URI, found `{id}`"),
            );
        }
        if let Some(base) = &t.base
            && url::Url::parse(base).is_err()
        {
            self.warn(
                Rule::BaseUri,
                &At::top("base"),
                format!("`base` is not an absolute URI (`{base}`), so it is resolved against the URL the TD was fetched from"),
            );
        }
        if let Some(version) = &t.version
            && version.instance.is_none()
        {
            self.err(
                Rule::VersionInstance,
                &At::top("version"),
                "`version` must have an `instance` string",
            );
        }
        self.security(t);
        self.links(t);

        if let Some(defs) = &t.schema_definitions {
            if defs.is_empty() {
                self.err(
                    Rule::SchemaDefinitionsEmpty,
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
                    Rule::ReadWriteOnly,
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
                            Rule::ObserveNotObservable,
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
                    Rule::FormsEmpty,
                    &At::top("forms"),
                    "`forms` must not be empty when present",
                );
            }
            for (i, f) in forms.iter().enumerate() {
                if f.op.is_none() {
                    self.err(
                        Rule::OpRequired,
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
                Rule::SecurityDefinitionsEmpty,
                &At::top("securityDefinitions"),
                "`securityDefinitions` must define at least one security scheme",
            );
        }
        if t.security.is_empty() {
            self.err(
                Rule::SecurityEmpty,
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
                        Rule::SchemeUnknown,
                        &path.key("scheme"),
                        format!(
                            "unknown security scheme `{scheme}`: use one of {} or a prefixed extension scheme such as `ace:ACESecurityScheme`",
                            KNOWN_SCHEMES.join(", ")
                        ),
                    );
                }
                SecurityScheme::Combo(c) => match (&c.one_of, &c.all_of) {
                    (Some(_), Some(_)) | (None, None) => self.err(
                        Rule::Combo,
                        &path,
                        "a `combo` scheme must have exactly one of `oneOf` and `allOf`",
                    ),
                    (Some(list), None) | (None, Some(list)) => {
                        let key = if c.one_of.is_some() { "oneOf" } else { "allOf" };
                        if list.len() < 2 {
                            self.err(
                                Rule::Combo,
                                &path.key(key),
                                format!("`{key}` must name at least two schemes"),
                            );
                        }
                        for (i, n) in list.iter().enumerate() {
                            if !t.security_definitions.contains_key(n) {
                                self.err(
                                    Rule::SecurityUndefined,
                                    &path.key(key).index(i),
                                    format!("`{n}` is not defined in `securityDefinitions`"),
                                );
                            } else if n == name {
                                self.err(
                                    Rule::Combo,
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
                            Rule::Oauth2Flow,
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
                    Rule::SecurityUndefined,
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
                            Rule::LinkRelType,
                            &path.key("rel"),
                            "a TD may have at most one link with `rel: \"type\"`",
                        );
                    } else {
                        self.warn(
                            Rule::TmUnchecked,
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
                            Rule::LinkSizes,
                            &path.key("sizes"),
                            format!("`sizes` must look like `16x16`, found `{sizes}`"),
                        );
                    }
                }
                Some("tm:extends") => {
                    self.err(
                        Rule::LinkTmExtends,
                        &path.key("rel"),
                        "`tm:extends` links belong in Thing Models, not in TDs",
                    );
                }
                _ => {
                    if l.sizes.is_some() {
                        self.err(
                            Rule::LinkSizes,
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
                    Rule::UriVariableType,
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
                Rule::FormsEmpty,
                &forms_path,
                "an interaction affordance needs at least one form",
            );
        }
        for (i, f) in forms.iter().enumerate() {
            let fp = forms_path.index(i);
            if let Some(op) = &f.op {
                if op.is_empty() {
                    self.err(
                        Rule::OpEmpty,
                        &fp.key("op"),
                        "`op` must not be an empty array",
                    );
                }
                for (j, o) in op.iter().enumerate() {
                    if o.affordance_kind() != kind {
                        let op_at = fp.key("op");
                        let p = match op {
                            OneOrMany::One(_) => op_at,
                            OneOrMany::Many(_) => op_at.index(j),
                        };
                        self.err(
                            Rule::OpKind,
                            &p,
                            format!("operation `{o}` is not allowed in {}", kind_name(kind)),
                        );
                    }
                }
            }
            if f.href.is_empty() && t.base.is_none() {
                self.warn(
                    Rule::HrefEmpty,
                    &fp.key("href"),
                    "empty `href` and no `base`",
                );
            }
            if self.good_hrefs.contains(f.href.as_str()) {
                // Checked at an earlier form.
            } else if let Err(e) = crate::uri_template::parse_template(&f.href) {
                self.err(
                    Rule::HrefTemplate,
                    &fp.key("href"),
                    format!("`href` is not a valid URI template: {e}"),
                );
            } else if !f.href.contains(['{', '}'])
                && crate::forms::resolve_href(&f.href, Some(placeholder_base())).is_err()
            {
                self.err(
                    Rule::HrefUri,
                    &fp.key("href"),
                    format!("`href` `{}` is not a valid URI reference", f.href),
                );
            } else {
                self.good_hrefs.insert(&f.href);
            }
            if f.href.contains('{') {
                for (offset, name) in crate::uri_template::nonstandard_names(&f.href) {
                    self.warn(
                        Rule::HrefTemplateName,
                        &fp.key("href"),
                        format!("URI template variable `{name}` (at character {offset} of `href`) has `-`, which RFC 6570 does not allow in names; it is accepted and matched literally"),
                    );
                }
            }
            if let Some(scheme) = unsafe_scheme(&f.href) {
                self.warn(
                    Rule::HrefScheme,
                    &fp.key("href"),
                    format!("`href` uses the `{scheme}:` scheme, which a network client must refuse; consumers skip this form"),
                );
            }
            if let Some(sec) = &f.security {
                self.security_names(t, sec, &fp.key("security"));
            }
            if let Some(resp) = &f.additional_responses {
                if let OneOrMany::One(_) = resp {
                    self.err(
                        Rule::TermType,
                        &fp.key("additionalResponses"),
                        "`additionalResponses` must be an array (TD 1.1 §6.3.9.4 and its JSON Schema), even of one response",
                    );
                }
                for (j, r) in resp.iter().enumerate() {
                    let responses_at = fp.key("additionalResponses");
                    let rp = match resp {
                        OneOrMany::One(_) => responses_at,
                        OneOrMany::Many(_) => responses_at.index(j),
                    };
                    // Terms such as `htv:statusCodeValue` tell responses apart too.
                    if r.success.is_none()
                        && r.content_type.is_none()
                        && r.schema.is_none()
                        && r.extensions.is_empty()
                    {
                        self.warn(Rule::AdditionalResponseEmpty, &rp, "an additional response without `success`, `contentType`, `schema` or a protocol term such as `htv:statusCodeValue` says nothing");
                    }
                    if let Some(name) = &r.schema
                        && !t
                            .schema_definitions
                            .as_ref()
                            .is_some_and(|d| d.contains_key(name))
                    {
                        self.err(
                            Rule::SchemaUndefined,
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
                Rule::SchemaDepth,
                path,
                format!("data schema nested deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        if let Some(values) = &s.enumeration {
            if values.is_empty() {
                self.err(
                    Rule::EnumEmpty,
                    &path.key("enum"),
                    "`enum` must list at least one value",
                );
            }
            let mut seen = HashSet::new();
            for (i, v) in values.iter().enumerate() {
                if !seen.insert(crate::value_check::canonical(v)) {
                    self.err(
                        Rule::EnumDuplicate,
                        &path.key("enum").index(i),
                        format!("`enum` lists {} more than once", short(v)),
                    );
                }
            }
            for (i, v) in values.iter().enumerate() {
                self.literal_fits(s, v, Rule::EnumType, &path.key("enum").index(i), "`enum`");
            }
        }
        if let Some(c) = &s.constant {
            self.literal_fits(s, c, Rule::ConstType, &path.key("const"), "`const`");
        }
        if let Some(d) = &s.default {
            let found = self.checker.check(s, d, true);
            if let Some(e) = found.first() {
                self.warn(
                    Rule::DefaultType,
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
                Rule::Range,
                path,
                format!("the minimum ({lo}) is greater than the maximum ({hi})"),
            );
        }
        if let Some(m) = f(&s.multiple_of)
            && m <= 0.0
        {
            self.err(
                Rule::MultipleOf,
                &path.key("multipleOf"),
                "`multipleOf` must be greater than 0",
            );
        }
        if let (Some(lo), Some(hi)) = (s.min_length, s.max_length)
            && lo > hi
        {
            self.err(
                Rule::LengthRange,
                path,
                format!("`minLength` ({lo}) is greater than `maxLength` ({hi})"),
            );
        }
        if let (Some(lo), Some(hi)) = (s.min_items, s.max_items)
            && lo > hi
        {
            self.err(
                Rule::ItemsRange,
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
                    self.err(Rule::Pattern, &path.key("pattern"), message);
                }
            }
        }
        match s.data_type {
            Some(DataType::Array) if s.items.is_none() => {
                self.warn(
                    Rule::ArrayNoItems,
                    path,
                    "an array schema without `items` says nothing about its elements",
                );
            }
            Some(DataType::Object) if s.properties.is_none() => {
                self.warn(
                    Rule::ObjectNoProperties,
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
                        Rule::RequiredDuplicate,
                        &path.key("required").index(i),
                        format!("`required` lists `{r}` more than once"),
                    );
                }
                if let Some(props) = props
                    && !props.contains_key(r)
                {
                    self.warn(
                        Rule::RequiredUnknown,
                        &path.key("required").index(i),
                        format!("`{r}` is required but not among `properties`"),
                    );
                }
            }
        }
        if let Some(one_of) = &s.one_of {
            if one_of.is_empty() {
                self.err(
                    Rule::OneOfEmpty,
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

/// The scheme of `href` when it is one no network binding serves and following it would
/// be harmful: local files, script, inline data.
fn unsafe_scheme(href: &str) -> Option<&str> {
    let (scheme, _) = href.split_once(':')?;
    ["file", "javascript", "data"]
        .into_iter()
        .find(|s| scheme.trim().eq_ignore_ascii_case(s))
        .map(|_| scheme)
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
                Rule::Context,
                "@context",
                format!("a Thing Model needs `@context` with a TD context URI: `{TD_CONTEXT_1_1}` (TD 1.1) or `{TD_CONTEXT_1_0}` (TD 1.0)"),
            ));
        }
        if !crate::parse::is_thing_model(j) {
            out.push(Diagnostic::error(
                Rule::TmType,
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
                            Rule::TmOptional,
                            p,
                            "`tm:optional` entries must be strings",
                        ));
                        continue;
                    };
                    let parts: Vec<&str> = ptr.split('/').collect();
                    let ok = matches!(parts.as_slice(), ["", kind, name] if matches!(*kind, "properties" | "actions" | "events") && !name.is_empty());
                    if !ok {
                        out.push(Diagnostic::error(
                            Rule::TmOptional,
                            p,
                            format!("`{ptr}` must point to an interaction affordance, like `/properties/status`"),
                        ));
                    } else if let ["", kind, name] = parts.as_slice()
                        && j.get(*kind).and_then(|m| m.get(*name)).is_none()
                    {
                        out.push(Diagnostic::warning(
                            Rule::TmOptional,
                            p,
                            format!("`{ptr}` names no affordance of this model"),
                        ));
                    }
                }
            }
            Some(_) => out.push(Diagnostic::error(
                Rule::TmOptional,
                "tm:optional",
                "`tm:optional` must be an array of JSON pointers",
            )),
        }
        if let Some(Value::Object(defs)) = j.get("securityDefinitions") {
            for (name, def) in defs {
                let p = join(&join("securityDefinitions", name), "scheme");
                match def.get("scheme").and_then(Value::as_str) {
                    None => out.push(Diagnostic::error(Rule::SchemeUnknown, p, "a security scheme needs a `scheme` string")),
                    Some(s) if KNOWN_SCHEMES.contains(&s) || s.contains(':') || is_placeholder(s) => {}
                    Some(s) => out.push(Diagnostic::error(
                        Rule::SchemeUnknown,
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
                Rule::TmVersionInstance,
                "version.instance",
                "a Thing Model must not have `version.instance`",
            ));
        }
        if let Some(Value::Array(links)) = j.get("links") {
            for (i, l) in links.iter().enumerate() {
                if l.get("rel").and_then(Value::as_str) == Some("tm:extends") {
                    let href = l.get("href").and_then(Value::as_str).unwrap_or("");
                    out.push(Diagnostic::warning(
                        Rule::TmExtendsUnchecked,
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
