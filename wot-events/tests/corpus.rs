//! Form and security selection on the real TDs of the shared corpus. Subscriptions connect
//! only when polled, so nothing here touches the network.

use std::path::PathBuf;

use wot_events::{
    ConsumedThing, Credential, Credentials, ErrorKind, EventSubscriber, ObserveMode,
    ObserveOptions, SubscribeOptions,
};

fn corpus(dir: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ))
    .join(dir)
}

fn load(path: &str) -> ConsumedThing {
    ConsumedThing::from_file(corpus(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn every_valid_and_edge_td_loads_and_every_event_gets_a_form_or_a_clear_error() {
    let subscriber = EventSubscriber::new();
    let mut files = 0;
    let mut subscribed = 0;
    let mut not_loaded = Vec::new();
    for dir in ["valid", "edge"] {
        for entry in std::fs::read_dir(corpus(dir)).unwrap() {
            let path = entry.unwrap().path();
            let thing = match ConsumedThing::from_file(&path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("not loaded: {}: {e}", path.display());
                    not_loaded.push(path.file_name().unwrap().to_string_lossy().into_owned());
                    continue;
                }
            };
            files += 1;
            for (name, _) in thing.thing().events() {
                match subscriber.subscribe(&thing, name, SubscribeOptions::new()) {
                    Ok(_) => subscribed += 1,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::NoUsableForm | ErrorKind::Security | ErrorKind::Form
                        ) =>
                    {
                        assert!(
                            e.to_string().contains(thing.id()),
                            "{}: {e}",
                            path.display()
                        );
                    }
                    Err(e) => panic!("{}: unexpected {e}", path.display()),
                }
            }
        }
    }
    assert_eq!(not_loaded, Vec::<String>::new());
    assert!(files >= 40, "{files}");
    assert!(subscribed > 0);
}

#[tokio::test]
async fn longpoll_is_used_when_no_sse_form_exists_and_credentials_are_needed() {
    let thing = load("valid/subprotocol-longpoll.td.jsonld");
    let (name, _) = thing.thing().events().next().unwrap();
    let sub = EventSubscriber::new().subscribe(&thing, name, SubscribeOptions::new());
    let creds = Credentials::new()
        .for_scheme(
            "basic_sc",
            Credential::Basic {
                user: "u".into(),
                password: "p".into(),
            },
        )
        .for_thing(thing.id(), Credential::Bearer("b".into()))
        .for_thing(thing.id(), Credential::ApiKey("k".into()));
    let with_creds = EventSubscriber::builder().credentials(creds).build();
    match sub {
        Ok(s) => assert!(s.label().contains(name)),
        Err(e) if e.kind() == ErrorKind::Security => {
            let _subscription = with_creds
                .subscribe(&thing, name, SubscribeOptions::new())
                .unwrap();
        }
        Err(e) => panic!("{e}"),
    }

    // simple.json: basic auth over longpoll; without credentials a clear error.
    let simple = load("valid/simple.json");
    let err = EventSubscriber::new()
        .subscribe(&simple, "overheating", SubscribeOptions::new())
        .unwrap_err();
    assert!(
        err.kind() == ErrorKind::Security && err.to_string().contains("`basic_sc` (basic)"),
        "{err}"
    );
    let _subscription = with_creds
        .subscribe(&simple, "overheating", SubscribeOptions::new())
        .unwrap();
    // Its `status` property is not observable: polling.
    let obs = with_creds
        .observe_property(&simple, "status", ObserveOptions::new())
        .unwrap();
    assert_eq!(obs.connections()[0].1, ObserveMode::Polling);
}

#[tokio::test]
async fn unusable_protocols_and_schemes_are_named() {
    // MQTT and CoAP forms are not HTTP.
    let mqtt = load("valid/mqtt-experimental.json");
    let (name, _) = mqtt.thing().events().next().unwrap();
    let err = EventSubscriber::new()
        .subscribe(&mqtt, name, SubscribeOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoUsableForm, "{err}");
    assert!(err.to_string().contains("subscribeevent"), "{err}");

    // apikey in the URI template is not supported: the scheme is named.
    let uri = load("edge/uriSecurity.json");
    let creds = Credentials::new().for_thing(uri.id(), Credential::ApiKey("k".into()));
    let err = EventSubscriber::builder()
        .credentials(creds)
        .build()
        .observe_property(&uri, "weather", ObserveOptions::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        err.kind() == ErrorKind::Security && text.contains("apikey"),
        "{text}"
    );

    // oauth2 is not supported.
    let oauth = load("valid/scopesForm_oauth2.json");
    if let Some((name, _)) = oauth.thing().events().next() {
        let err = EventSubscriber::new()
            .subscribe(&oauth, name, SubscribeOptions::new())
            .unwrap_err();
        assert!(err.to_string().contains("oauth2"), "{err}");
    }
}
