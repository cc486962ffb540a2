//! Checks that need other documents: a TD against the Thing Model it links with
//! `rel: "type"`, and a Thing Model against the parents it extends (`tm:extends`).
//!
//! The crate does no I/O: the caller supplies the models through a [`ModelResolver`]
//! (for example from a cache, a directory, or an HTTP fetch done beforehand).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Rule};
use crate::model::Thing;
use crate::parse::{Document, Inner, ThingModel};

/// How many `tm:extends` levels are followed before giving up.
const MAX_EXTENDS_DEPTH: usize = 16;

/// Supplies the Thing Model at an `href`, or `None` when it cannot be had.
///
/// Any `Fn(&str) -> Option<ThingModel>` is a resolver.
pub trait ModelResolver {
    /// The Thing Model that `href` points to, if available.
    fn resolve(&self, href: &str) -> Option<ThingModel>;
}

impl<F: Fn(&str) -> Option<ThingModel>> ModelResolver for F {
    fn resolve(&self, href: &str) -> Option<ThingModel> {
        self(href)
    }
}

impl Document {
    /// [`Document::validate`], plus the checks that need linked Thing Models, which
    /// `resolver` supplies: a TD must conform to its `rel: "type"` model (rule
    /// `tm-conformance`; an unavailable model is a warning), a TM's `tm:extends` parents
    /// must be valid and, when the link declares `type: application/tm+json`, available
    /// (rule `tm-extends`). Reference cycles and chains deeper than 16 are errors.
    pub fn validate_with(&self, resolver: &dyn ModelResolver) -> Vec<Diagnostic> {
        let mut out = self.validate();
        match self {
            Document(Inner::Td(thing, _)) => {
                out.retain(|d| d.rule != Rule::TmUnchecked);
                out.extend(thing.check_against_models(resolver));
            }
            Document(Inner::Tm(model)) => {
                out.retain(|d| d.rule != Rule::TmExtendsUnchecked);
                model.check_parents(resolver, &mut ParentWalk::default(), 0, &mut out);
            }
        }
        self.locate(&mut out);
        out
    }
}

/// The `tm:extends` links of a model: (index, href, declares the TM media type).
fn extends_links(model: &ThingModel) -> impl Iterator<Item = (usize, &str, bool)> {
    model
        .json
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, l)| l.get("rel").and_then(Value::as_str) == Some("tm:extends"))
        .filter_map(|(i, l)| {
            let tm_type = l.get("type").and_then(Value::as_str) == Some(TM_MEDIA_TYPE);
            Some((i, l.get("href")?.as_str()?, tm_type))
        })
}

/// The media type of Thing Models.
const TM_MEDIA_TYPE: &str = "application/tm+json";

/// State of one walk up the `tm:extends` links.
#[derive(Default)]
struct ParentWalk {
    /// The models on the current path, to find cycles.
    on_path: HashSet<String>,
    /// The errors of each parent already checked, so a model that several links
    /// reach (a diamond) is fetched and checked once, not once per path.
    done: HashMap<String, Vec<Diagnostic>>,
}

impl ThingModel {
    fn check_parents(
        &self,
        resolver: &dyn ModelResolver,
        walk: &mut ParentWalk,
        depth: usize,
        out: &mut Vec<Diagnostic>,
    ) {
        for (i, href, declared_tm) in extends_links(self) {
            let path = format!("links[{i}]");
            if depth >= MAX_EXTENDS_DEPTH {
                out.push(Diagnostic::error(
                    Rule::TmExtends,
                    path,
                    format!("`tm:extends` chain is deeper than {MAX_EXTENDS_DEPTH} models"),
                ));
                return;
            }
            if walk.on_path.contains(href) {
                out.push(Diagnostic::error(
                    Rule::TmExtends,
                    path,
                    format!("`tm:extends` cycle: `{href}` extends itself"),
                ));
                continue;
            }
            if !walk.done.contains_key(href) {
                let errors = match resolver.resolve(href) {
                    // A link typed `application/tm+json` promises a model; without that
                    // type the target may be something else, so its absence is only a
                    // warning.
                    None if declared_tm => vec![Diagnostic::error(
                        Rule::TmExtends,
                        "",
                        format!("the parent Thing Model `{href}` is not available"),
                    )],
                    None => vec![Diagnostic::warning(
                        Rule::TmExtends,
                        "",
                        format!("the parent `{href}` is not available, so it is not checked"),
                    )],
                    Some(parent) => {
                        let mut inner = parent.validate();
                        inner.retain(|d| d.rule != Rule::TmExtendsUnchecked);
                        walk.on_path.insert(href.to_owned());
                        parent.check_parents(resolver, walk, depth + 1, &mut inner);
                        walk.on_path.remove(href);
                        // One diagnostic per link, however many errors the parent
                        // has: repeating them all would multiply at every level.
                        let errors: Vec<&Diagnostic> =
                            inner.iter().filter(|d| d.is_error()).collect();
                        let count = match errors.len() {
                            1 => "an error".to_owned(),
                            n => format!("{n} errors, the first"),
                        };
                        // The cause comes last, so a chain of parents reads outside in.
                        errors
                            .first()
                            .map(|d| {
                                Diagnostic::error(
                                    Rule::TmExtends,
                                    "",
                                    format!("the parent Thing Model `{href}` has {count}: {d}"),
                                )
                            })
                            .into_iter()
                            .collect()
                    }
                };
                walk.done.insert(href.to_owned(), errors);
            }
            for d in walk.done.get(href).into_iter().flatten() {
                out.push(Diagnostic {
                    path: path.clone(),
                    position: None,
                    ..d.clone()
                });
            }
        }
    }
}

impl Thing {
    /// Conformance of this TD to the Thing Model it links with `rel: "type"`: every
    /// affordance of the model not listed in `tm:optional` must exist in the TD, and
    /// where the model fixes a property's, input's, output's or event data's `type`
    /// the TD must use the same. An unavailable or broken model is a warning.
    pub fn check_against_models(&self, resolver: &dyn ModelResolver) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (i, link) in self.type_links().enumerate().take(1) {
            let path = format!("links[{i}]");
            let Some(model) = resolver.resolve(&link.href) else {
                out.push(Diagnostic::warning(
                    Rule::TmUnavailable,
                    path,
                    format!(
                        "the Thing Model `{}` is not available, so conformance is not checked",
                        link.href
                    ),
                ));
                continue;
            };
            let mut model_diags = model.validate();
            model_diags.retain(|d| d.rule != Rule::TmExtendsUnchecked);
            model.check_parents(resolver, &mut ParentWalk::default(), 0, &mut model_diags);
            for d in model_diags.into_iter().filter(Diagnostic::is_error) {
                out.push(Diagnostic::warning(
                    Rule::TmUnavailable,
                    &path,
                    format!("the Thing Model `{}` is not usable: {d}", link.href),
                ));
            }
            self.conform(&model, &mut out);
        }
        out
    }

    fn conform(&self, model: &ThingModel, out: &mut Vec<Diagnostic>) {
        let optional: HashSet<&str> = model
            .json
            .get("tm:optional")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let td = serde_json::to_value(self).unwrap_or(Value::Null);
        for kind in ["properties", "actions", "events"] {
            let Some(affordances) = model.json.get(kind).and_then(Value::as_object) else {
                continue;
            };
            for (name, tm_aff) in affordances {
                let mut path = String::new();
                crate::parse::push_key(&mut path, kind);
                crate::parse::push_key(&mut path, name);
                let Some(td_aff) = td.get(kind).and_then(|m| m.get(name)) else {
                    if !optional.contains(format!("/{kind}/{name}").as_str()) {
                        out.push(Diagnostic::error(
                            Rule::TmConformance,
                            path,
                            "the Thing Model requires this affordance, the TD lacks it",
                        ));
                    }
                    continue;
                };
                let schemas: &[&str] = match kind {
                    "properties" => &[""],
                    "actions" => &["input", "output"],
                    _ => &["data"],
                };
                for key in schemas {
                    let (tm_s, td_s) = if key.is_empty() {
                        (Some(tm_aff), Some(td_aff))
                    } else {
                        (tm_aff.get(*key), td_aff.get(*key))
                    };
                    let tm_type = tm_s.and_then(|s| s.get("type")).and_then(Value::as_str);
                    let td_type = td_s.and_then(|s| s.get("type")).and_then(Value::as_str);
                    if let Some(want) = tm_type
                        && !crate::validate::is_placeholder(want)
                        && td_type != Some(want)
                    {
                        let mut p = path.clone();
                        if !key.is_empty() {
                            crate::parse::push_key(&mut p, key);
                        }
                        crate::parse::push_key(&mut p, "type");
                        out.push(Diagnostic::error(
                            Rule::TmConformance,
                            p,
                            format!(
                                "the Thing Model says `type: {want}`, the TD says {}",
                                td_type.map_or("nothing".to_owned(), |t| format!("`{t}`"))
                            ),
                        ));
                    }
                }
            }
        }
    }
}
