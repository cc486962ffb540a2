//! The log line of a skipped affordance: one `warn` with the Thing id, the affordance name
//! and the reason, control characters escaped. In a test binary of its own, so that no other
//! test touches the log call site while the capturing subscriber is installed.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use wot_events::{ConsumedThing, EventSubscriber, ObserveOptions};

/// A `Write` into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn skips_are_logged_with_the_thing_and_affordance_escaped() {
    const ESC: char = '\u{1b}';
    let thing = ConsumedThing::new(
        wot_events::wot_td::Document::from_value(json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": format!("urn:dev:{ESC}]0;pwned\u{7}"), "title": "Evil",
            "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
            "properties": {
                format!("se{ESC}[5mcret\n"): {"type": "string", "forms": [{"href": "file:///etc/passwd"}]}
            }
        }))
        .unwrap()
        .into_thing()
        .unwrap(),
        None,
    )
    .unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let logger = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let observer = {
        let _guard = tracing::subscriber::set_default(logger);
        EventSubscriber::new()
            .observe_all_properties(&thing, ObserveOptions::new())
            .unwrap()
    };
    assert_eq!(observer.skipped().len(), 1);
    assert!(observer.connections().is_empty());
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains(r"urn:dev:\x1b]0;pwned\x07"), "{log}");
    assert!(log.contains(r"se\x1b[5mcret\n"), "{log}");
    assert!(log.contains("`file`"), "{log}");
    assert!(
        !log.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the log: {log:?}"
    );
    assert_eq!(log.lines().count(), 1, "{log}");
}
