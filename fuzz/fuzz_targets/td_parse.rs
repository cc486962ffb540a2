//! TD parse + validate + serialize never panics, and what parses survives a round trip:
//! serialize → parse → serialize gives the same JSON. The lenient `Document::check` never
//! panics either, agrees with `from_slice` on whether there is a document, and gives every
//! diagnostic a position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wot_td::{Affordance, Document, FormQuery, Operation};

fuzz_target!(|data: &[u8]| {
    let report = Document::check(data);
    let parsed = Document::from_slice(data);
    assert_eq!(report.document.is_some(), parsed.is_ok(), "check and from_slice disagree");
    if report.kind.is_some() {
        assert!(report.diagnostics.iter().all(|d| d.position.is_some()), "{:?}", report.diagnostics);
    }
    let Ok(doc) = parsed else {
        return;
    };
    let _ = doc.validate();
    let _ = doc.title();
    if let Some(thing) = doc.as_thing() {
        let query = FormQuery::new().subprotocol("sse");
        for (name, _) in thing.properties() {
            for op in Operation::ALL {
                let _ = thing.forms_for(Affordance::Property(name), op, &query);
            }
        }
    }
    let Ok(value) = doc.to_value() else {
        return;
    };
    let again = Document::from_value(value.clone())
        .unwrap_or_else(|e| panic!("serialized document does not parse again: {e}\n{value}"));
    assert_eq!(
        again.to_value().ok(),
        Some(value),
        "round trip changed the document"
    );
});
