//! Forms this client cannot serve (`file:`, `javascript:`, `data:`, `coap:` hrefs, a `file:`
//! base, redirects to such URLs) against a real Thing server on 127.0.0.1: they are never
//! fetched, an affordance with only such forms is skipped with a typed reason and a log
//! line, and the rest of the Thing is observed and subscribed.

use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wot_events::wot_td::AffordanceKind;
use wot_events::{
    ConsumedThing, Error, ErrorKind, EventSubscriber, ObserveOptions, PropertyObserver,
    SubscribeOptions,
};

const SECRET: &str = "root:x:0:0";

/// Serves the Thing on 127.0.0.1: `/td/{name}` answers the TD `tds(base)[name]`, `/temp`
/// a value, `/alarm` an SSE stream of alarm events, `/moved` and `/script` redirects to a
/// `file:` and a `javascript:` URL. Returns the base URL.
async fn serve(tds: fn(&str) -> Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let all = tds(&base);
    let sse = || async {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            "event: alarm\ndata: {\"level\": 3}\nid: 1\n\n",
        )
    };
    let redirect = |to: &'static str| {
        move || async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
    };
    let app = Router::new()
        .route(
            "/td/{name}",
            get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let td = all[&name].clone();
                    async move { axum::Json(td) }
                },
            ),
        )
        .route("/temp", get(|| async { axum::Json(json!(21.5)) }))
        .route("/alarm", get(sse))
        .route("/moved", get(redirect("file:///etc/passwd")))
        .route("/script", get(redirect("javascript:alert(1)")))
        .route("/data", get(redirect("data:application/json,42")));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn td(id: &str, properties: Value, events: Value) -> Value {
    json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": id, "title": "Unservable",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": properties,
        "events": events,
    })
}

fn tds(base: &str) -> Value {
    let temp = json!({"type": "number", "forms": [{"href": format!("{base}/temp")}]});
    let alarm = json!({"forms": [{"href": format!("{base}/alarm"), "subprotocol": "sse"}]});
    json!({
        // A `file:` form first and a good one second, for a property and an event.
        "file-first": td(
            "urn:dev:file-first",
            json!({"temp": {"type": "number", "forms": [
                {"href": "file:///etc/passwd"},
                {"href": format!("{base}/temp")}
            ]}}),
            json!({"alarm": {"forms": [
                {"href": "file:///etc/passwd", "subprotocol": "sse"},
                {"href": format!("{base}/alarm"), "subprotocol": "sse"}
            ]}}),
        ),
        // One property and one event per bad scheme, beside good ones.
        "only-bad": td(
            "urn:dev:only-bad",
            json!({
                "temp": temp,
                "secret": {"type": "string", "forms": [{"href": "file:///etc/passwd"}]},
                "script": {"type": "string", "forms": [{"href": "javascript:alert(1)"}]},
                "inline": {"type": "number", "forms": [{"href": "data:application/json,42"}]},
                "observed": {"type": "number", "observable": true, "forms": [
                    {"href": "file:///etc/passwd", "op": ["readproperty", "observeproperty"]}
                ]}
            }),
            json!({
                "alarm": alarm,
                "leak": {"forms": [{"href": "file:///etc/passwd", "subprotocol": "sse"}]}
            }),
        ),
        // Thing-level forms over `file:`: each affordance's own forms are used instead.
        "thing-level": {
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:dev:thing-level", "title": "Thing level",
            "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
            "properties": {"temp": temp},
            "events": {"alarm": alarm},
            "forms": [
                {"href": "file:///etc/passwd", "op": "subscribeallevents", "subprotocol": "sse"},
                {"href": "javascript:alert(1)", "op": "observeallproperties", "subprotocol": "sse"}
            ]
        },
        // A `file:` base: the relative hrefs resolve to `file:` URLs; the absolute one works.
        "file-base": {
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:dev:file-base", "title": "File base",
            "base": "file:///etc/",
            "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
            "properties": {
                "passwd": {"type": "string", "forms": [{"href": "passwd"}]},
                "temp": temp
            }
        },
        // Good-looking hrefs whose server redirects to a `file:`, `javascript:` or `data:` URL.
        "redirects": td(
            "urn:dev:redirects",
            json!({
                "moved": {"type": "string", "forms": [{"href": format!("{base}/moved")}]},
                "script": {"type": "string", "forms": [{"href": format!("{base}/script")}]},
                "data": {"type": "number", "forms": [{"href": format!("{base}/data")}]}
            }),
            json!({"moved": {"forms": [{"href": format!("{base}/moved"), "subprotocol": "sse"}]}}),
        ),
    })
}

async fn fetch(base: &str, name: &str) -> ConsumedThing {
    EventSubscriber::new()
        .fetch_thing(format!("{base}/td/{name}"))
        .await
        .unwrap()
}

fn fast() -> ObserveOptions {
    ObserveOptions::new().interval(Duration::from_millis(20))
}

/// The next value of `property`, skipping others; fails after 10 s.
async fn next_value(observer: &mut PropertyObserver, property: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update = observer
                .next()
                .await
                .expect("the observer goes on")
                .unwrap();
            if &*update.property == property {
                return update.value.into_value();
            }
        }
    })
    .await
    .expect("a value within 10 s")
}

/// Asserts that `error` says the affordance has no usable form because its forms are only
/// over `scheme`, without quoting the hrefs.
fn assert_unservable(error: &Error, scheme: &str) {
    assert!(
        error.kind() == ErrorKind::NoUsableForm && error.is_unusable_form(),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("only over `{scheme}`")) && text.contains("serves http and https"),
        "{text}"
    );
    assert!(
        !text.contains("/etc/passwd") && !text.contains("alert(") && !text.contains(",42"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_form_before_a_good_one_is_passed_over() {
    let base = serve(tds).await;
    let thing = fetch(&base, "file-first").await;
    let sub = EventSubscriber::new();

    let mut observer = sub.observe_all_properties(&thing, fast()).unwrap();
    assert!(observer.skipped().is_empty());
    assert_eq!(next_value(&mut observer, "temp").await, json!(21.5));
    assert_eq!(
        sub.read_property(&thing, "temp").await.unwrap(),
        json!(21.5)
    );

    let mut events = sub
        .subscribe_all([&thing], SubscribeOptions::new())
        .unwrap();
    assert!(events.skipped().is_empty());
    let record = events.next().await.unwrap().unwrap();
    assert_eq!(
        (&*record.event, record.data.value()),
        ("alarm", &json!({"level": 3}))
    );
}

#[tokio::test]
async fn affordances_with_only_unservable_forms_are_skipped_and_the_rest_is_watched() {
    let base = serve(tds).await;
    let thing = fetch(&base, "only-bad").await;
    let sub = EventSubscriber::new();

    let mut observer = sub.observe_all_properties(&thing, fast()).unwrap();
    let skipped: Vec<&str> = observer
        .skipped()
        .iter()
        .map(|s| {
            assert_eq!(s.thing_id, "urn:dev:only-bad");
            assert_eq!(s.kind, AffordanceKind::Property);
            let shown = s.to_string();
            assert!(
                shown.starts_with(&format!("property `{}` skipped: ", s.name)),
                "{shown}"
            );
            s.name.as_str()
        })
        .collect();
    assert_eq!(skipped, ["secret", "script", "inline", "observed"]);
    for (s, scheme) in observer
        .skipped()
        .iter()
        .zip(["file", "javascript", "data", "file"])
    {
        assert_unservable(&s.error, scheme);
    }
    let watched: Vec<&str> = observer
        .connections()
        .iter()
        .map(|(n, ..)| n.as_str())
        .collect();
    assert_eq!(watched, ["temp"]);
    assert_eq!(next_value(&mut observer, "temp").await, json!(21.5));

    let mut events = sub
        .subscribe_all([&thing], SubscribeOptions::new())
        .unwrap();
    let skipped: Vec<_> = events
        .skipped()
        .iter()
        .map(|s| (s.kind, s.name.as_str()))
        .collect();
    assert_eq!(skipped, [(AffordanceKind::Event, "leak")]);
    assert_eq!(events.subscriptions().count(), 1);
    let record = events.next().await.unwrap().unwrap();
    assert_eq!(&*record.event, "alarm");

    // Asked for one by one, they fail with the same typed error and nothing is fetched.
    let err = sub
        .subscribe(&thing, "leak", SubscribeOptions::new())
        .unwrap_err();
    assert_unservable(&err, "file");
    for (name, scheme) in [
        ("secret", "file"),
        ("script", "javascript"),
        ("inline", "data"),
    ] {
        let err = sub.read_property(&thing, name).await.unwrap_err();
        assert_unservable(&err, scheme);
        let err = sub.observe_property(&thing, name, fast()).unwrap_err();
        assert_unservable(&err, scheme);
    }
}

#[tokio::test]
async fn unusable_thing_level_forms_fall_back_to_the_affordances() {
    let base = serve(tds).await;
    let thing = fetch(&base, "thing-level").await;
    let sub = EventSubscriber::new();
    let mut observer = sub.observe_all_properties(&thing, fast()).unwrap();
    assert!(observer.skipped().is_empty());
    assert_eq!(next_value(&mut observer, "temp").await, json!(21.5));
    let mut events = sub
        .subscribe_all([&thing], SubscribeOptions::new())
        .unwrap();
    assert!(events.skipped().is_empty());
    assert_eq!(&*events.next().await.unwrap().unwrap().event, "alarm");
}

#[tokio::test]
async fn relative_hrefs_against_a_file_base_are_skipped() {
    let base = serve(tds).await;
    let thing = fetch(&base, "file-base").await;
    let mut observer = EventSubscriber::new()
        .observe_all_properties(&thing, fast())
        .unwrap();
    let skipped: Vec<_> = observer.skipped().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["passwd"]);
    assert_unservable(&observer.skipped()[0].error, "file");
    assert_eq!(next_value(&mut observer, "temp").await, json!(21.5));
}

#[tokio::test]
async fn redirects_to_unservable_urls_are_never_followed() {
    let base = serve(tds).await;
    let thing = fetch(&base, "redirects").await;
    let sub = EventSubscriber::new();
    for name in ["moved", "script", "data"] {
        let err = sub.read_property(&thing, name).await.unwrap_err();
        assert!(err.kind() == ErrorKind::Redirect, "{name}: {err}");
        assert!(!err.to_string().contains(SECRET));
    }
    // Polled: one terminal error, then the stream ends.
    let mut observer = sub.observe_property(&thing, "moved", fast()).unwrap();
    let err = observer.next().await.unwrap().unwrap_err();
    assert!(
        err.is_terminal() && err.kind() == ErrorKind::Redirect,
        "{err}"
    );
    assert!(observer.next().await.is_none());
    // Over SSE: a terminal error.
    let mut events = sub
        .subscribe(&thing, "moved", SubscribeOptions::new())
        .unwrap();
    let err = events.next().await.unwrap().unwrap_err();
    assert!(err.is_terminal(), "{err}");
    assert!(events.next().await.is_none());
    // A TD behind such a redirect is not read either.
    let err = sub.fetch_thing(format!("{base}/moved")).await.unwrap_err();
    assert!(err.kind() == ErrorKind::Redirect, "{err}");
}

#[tokio::test]
async fn only_http_urls_are_fetched_as_tds() {
    let sub = EventSubscriber::new();
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:application/json,{}",
    ] {
        let err = sub.fetch_thing(url).await.unwrap_err();
        assert!(err.kind() == ErrorKind::BadUrl, "{url}: {err}");
        let err = sub.fetch_directory(url).await.unwrap_err();
        assert!(err.kind() == ErrorKind::BadUrl, "{url}: {err}");
    }
}
