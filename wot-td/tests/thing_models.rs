//! Thing Model checks that follow `tm:extends` links through a resolver.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;
use wot_td::{Document, ThingModel};

fn model(title: &str, parents: &[String]) -> ThingModel {
    let links: Vec<_> = parents
        .iter()
        .map(|href| json!({"rel": "tm:extends", "href": href, "type": "application/tm+json"}))
        .collect();
    let doc = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "@type": "tm:ThingModel",
        "title": title,
        "links": links
    });
    Document::from_value(doc)
        .unwrap()
        .as_thing_model()
        .unwrap()
        .clone()
}

/// Fifteen levels where every model extends the next one through eight links: each
/// model is fetched and checked once, not 8^15 times.
#[test]
fn a_model_reached_by_many_paths_is_checked_once() {
    let levels = 15;
    let href = |i: usize| format!("https://models.example/m{i}.tm.json");
    let mut models = HashMap::new();
    for i in 0..levels {
        let parents: Vec<String> = if i + 1 < levels {
            vec![href(i + 1); 8]
        } else {
            Vec::new()
        };
        models.insert(href(i), model(&format!("m{i}"), &parents));
    }
    // The top model breaks a rule, so the error travels down every path.
    let mut top = models[&href(levels - 1)].clone();
    top.json.insert("tm:optional".into(), json!("not an array"));
    models.insert(href(levels - 1), top);

    let calls = RefCell::new(HashMap::<String, usize>::new());
    let resolver = |h: &str| {
        *calls.borrow_mut().entry(h.to_owned()).or_default() += 1;
        models.get(h).cloned()
    };
    let root = Document::from(models[&href(0)].clone());
    let diags = root.validate_with(&resolver);
    assert!(calls.borrow().values().all(|&n| n == 1), "{calls:?}");
    assert_eq!(calls.borrow().len(), levels - 1);
    // The root reports the broken ancestor once per link, at that link's path.
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 8, "{errors:#?}");
    assert_eq!(errors[7].path, "links[7]");
    assert!(errors[0].message.contains("tm:optional"), "{}", errors[0]);
}

#[test]
fn cycles_are_errors() {
    let a = "https://models.example/a.tm.json".to_owned();
    let b = "https://models.example/b.tm.json".to_owned();
    let models = HashMap::from([
        (a.clone(), model("a", std::slice::from_ref(&b))),
        (b.clone(), model("b", std::slice::from_ref(&a))),
    ]);
    let root = Document::from(models[&a].clone());
    let diags = root.validate_with(&|h: &str| models.get(h).cloned());
    assert!(
        diags
            .iter()
            .any(|d| d.is_error() && d.rule == "tm-extends" && d.message.contains("cycle")),
        "{diags:#?}"
    );
}
