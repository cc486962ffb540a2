//! Credentials never leave their origin: for every place a TD security scheme can put a
//! secret (a custom header, `Authorization` for bearer and basic, an API key in a header, in
//! the query or in a cookie) and every transport (SSE, long polling, polling, read, write,
//! invoke), a redirect from the Thing's origin to another one never carries the secret there.
//!
//! Two real servers on 127.0.0.1: origin A answers every request with a 307 to origin B,
//! which records every request it gets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use wot_events::{
    ConsumedThing, Credential, Credentials, EventSubscriber, ObserveOptions, SubscribeOptions,
};

const SECRET: &str = "Sup3rS3cretValue";

/// Every request a server got, as one text: method, URI, headers, body.
type Log = Arc<Mutex<Vec<String>>>;

#[derive(Clone)]
struct Origin {
    log: Log,
    /// Where to redirect to (origin A), or `None` to answer (origin B).
    redirect_to: Option<String>,
}

async fn handle(
    State(o): State<Origin>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut text = format!("{method} {uri}\n");
    for (k, v) in &headers {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    text.push_str(&String::from_utf8_lossy(&body));
    o.log.lock().unwrap().push(text);
    match &o.redirect_to {
        Some(base) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("{base}{}", uri.path()))],
        )
            .into_response(),
        None if uri.path().contains("sse") => (
            [(header::CONTENT_TYPE, "text/event-stream")],
            "event: e_sse\ndata: 1\n\n",
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], "1").into_response(),
    }
}

async fn serve(redirect_to: Option<String>) -> (SocketAddr, Log, tokio::task::JoinHandle<()>) {
    let log = Log::default();
    let app = Router::new().fallback(handle).with_state(Origin {
        log: log.clone(),
        redirect_to,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, log, task)
}

fn td(a: SocketAddr, scheme: Value) -> ConsumedThing {
    let base = format!("http://{a}");
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:guarded", "title": "Guarded",
        "securityDefinitions": {"sc": scheme}, "security": "sc",
        "properties": {
            "p": {"type": "integer", "forms": [{"href": format!("{base}/p"), "op": ["readproperty", "writeproperty"]}]},
            "o": {"type": "integer", "observable": true, "forms": [
                {"href": format!("{base}/o-lp"), "op": "observeproperty", "subprotocol": "longpoll"}]}
        },
        "actions": {"a": {"forms": [{"href": format!("{base}/a")}]}},
        "events": {
            "e_sse": {"forms": [{"href": format!("{base}/e-sse"), "subprotocol": "sse"}]},
            "e_lp": {"forms": [{"href": format!("{base}/e-lp"), "subprotocol": "longpoll"}]}
        }
    });
    ConsumedThing::new(
        wot_events::wot_td::Document::from_value(td)
            .unwrap()
            .into_thing()
            .unwrap(),
        None,
    )
    .unwrap()
}

/// The first item of a stream, or nothing after 10 s.
async fn first<S: futures::Stream + Unpin>(mut s: S) {
    let _ = tokio::time::timeout(Duration::from_secs(10), s.next()).await;
}

/// Runs every transport against a Thing on origin A whose every URL redirects to origin B,
/// and checks that A got the secret (so it was attached) and B never did.
async fn assert_secret_stays_home(scheme: Value, credentials: Credentials, shown_as: &[&str]) {
    let (b, b_log, _b_task) = serve(None).await;
    let (a, a_log, _a_task) = serve(Some(format!("http://{b}"))).await;
    let thing = td(a, scheme.clone());
    let sub = EventSubscriber::builder().credentials(credentials).build();

    let read = sub.read_property(&thing, "p").await;
    assert_eq!(
        read.unwrap(),
        json!(1),
        "the other origin answered the read"
    );
    sub.write_property(&thing, "p", &json!(2)).await.unwrap();
    sub.invoke_action(&thing, "a", Some(&json!({"x": 1})))
        .await
        .unwrap();
    first(
        sub.observe_property(&thing, "p", ObserveOptions::new())
            .unwrap(),
    )
    .await;
    first(
        sub.observe_property(&thing, "o", ObserveOptions::new())
            .unwrap(),
    )
    .await;
    first(
        sub.subscribe(&thing, "e_lp", SubscribeOptions::new())
            .unwrap(),
    )
    .await;
    first(
        sub.subscribe(&thing, "e_sse", SubscribeOptions::new())
            .unwrap(),
    )
    .await;

    let a_log = a_log.lock().unwrap().clone();
    let b_log = b_log.lock().unwrap().clone();
    for path in ["/p", "/a", "/o-lp", "/e-lp", "/e-sse"] {
        assert!(
            b_log.iter().any(|r| r.contains(&format!(" {path}"))),
            "{scheme}: origin B never got {path}: {b_log:#?}"
        );
        let at_a: Vec<_> = a_log
            .iter()
            .filter(|r| r.contains(&format!(" {path}")))
            .collect();
        assert!(
            !at_a.is_empty() && at_a.iter().all(|r| shown_as.iter().any(|s| r.contains(s))),
            "{scheme}: origin A should get the credential on {path}: {at_a:#?}"
        );
    }
    for r in &b_log {
        for s in shown_as {
            assert!(!r.contains(s), "{scheme}: secret reached origin B:\n{r}");
        }
    }
}

#[tokio::test]
async fn bearer_in_a_custom_header_stays_with_its_origin() {
    assert_secret_stays_home(
        json!({"scheme": "bearer", "in": "header", "name": "X-Token"}),
        Credentials::new().for_scheme("sc", Credential::Bearer(SECRET.into())),
        &[SECRET],
    )
    .await;
}

#[tokio::test]
async fn bearer_in_authorization_stays_with_its_origin() {
    assert_secret_stays_home(
        json!({"scheme": "bearer"}),
        Credentials::new().for_scheme("sc", Credential::Bearer(SECRET.into())),
        &[SECRET],
    )
    .await;
}

#[tokio::test]
async fn basic_stays_with_its_origin() {
    // base64("admin:Sup3rS3cretValue")
    let encoded = "YWRtaW46U3VwM3JTM2NyZXRWYWx1ZQ==";
    assert_secret_stays_home(
        json!({"scheme": "basic"}),
        Credentials::new().for_scheme(
            "sc",
            Credential::Basic {
                user: "admin".into(),
                password: SECRET.into(),
            },
        ),
        &[encoded],
    )
    .await;
}

#[tokio::test]
async fn basic_in_a_custom_header_stays_with_its_origin() {
    let encoded = "YWRtaW46U3VwM3JTM2NyZXRWYWx1ZQ==";
    assert_secret_stays_home(
        json!({"scheme": "basic", "in": "header", "name": "X-Auth"}),
        Credentials::new().for_scheme(
            "sc",
            Credential::Basic {
                user: "admin".into(),
                password: SECRET.into(),
            },
        ),
        &[encoded],
    )
    .await;
}

#[tokio::test]
async fn apikey_in_a_header_stays_with_its_origin() {
    assert_secret_stays_home(
        json!({"scheme": "apikey", "in": "header", "name": "X-Api-Key"}),
        Credentials::new().for_scheme("sc", Credential::ApiKey(SECRET.into())),
        &[SECRET],
    )
    .await;
}

#[tokio::test]
async fn apikey_in_the_query_stays_with_its_origin() {
    assert_secret_stays_home(
        json!({"scheme": "apikey", "in": "query", "name": "key"}),
        Credentials::new()
            .for_scheme("sc", Credential::ApiKey(SECRET.into()))
            .allow_query_keys(true),
        &[SECRET],
    )
    .await;
}

#[tokio::test]
async fn apikey_in_a_cookie_stays_with_its_origin() {
    assert_secret_stays_home(
        json!({"scheme": "apikey", "in": "cookie", "name": "session"}),
        Credentials::new().for_scheme("sc", Credential::ApiKey(SECRET.into())),
        &[SECRET],
    )
    .await;
}

#[tokio::test]
async fn a_redirect_within_the_origin_keeps_the_credential() {
    // A redirects /p to itself under /home/p, which answers.
    let log = Log::default();
    let seen = log.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let token = headers
                .get("x-token")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            seen.lock().unwrap().push(format!("{} {token}", uri.path()));
            if uri.path().starts_with("/home") {
                ([(header::CONTENT_TYPE, "application/json")], "7").into_response()
            } else {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("/home{}", uri.path()))],
                )
                    .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let thing = td(
        addr,
        json!({"scheme": "bearer", "in": "header", "name": "X-Token"}),
    );
    let sub = EventSubscriber::builder()
        .credentials(Credentials::new().for_scheme("sc", Credential::Bearer(SECRET.into())))
        .build();
    assert_eq!(sub.read_property(&thing, "p").await.unwrap(), json!(7));
    let expected = format!("Bearer {SECRET}");
    assert_eq!(
        *log.lock().unwrap(),
        [format!("/p {expected}"), format!("/home/p {expected}")]
    );
}
