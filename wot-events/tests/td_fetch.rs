//! What fetching a TD or a directory says when the URL answers something else, such as an
//! HTML page. A real server on 127.0.0.1.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use wot_events::{ErrorKind, EventSubscriber};

const PAGE: &str = "<!doctype html><html><body><h1>Lamp</h1></body></html>";

fn td() -> String {
    json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:lamp", "title": "Lamp",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {"on": {"type": "boolean", "forms": [{"href": "/on"}]}}
    })
    .to_string()
}

async fn serve() -> String {
    let app = Router::new()
        .route(
            "/html/td",
            get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
        )
        .route(
            "/html/things",
            get(|| async { ([(CONTENT_TYPE, "text/html")], PAGE) }),
        )
        .route(
            "/td-json",
            get(|| async { ([(CONTENT_TYPE, "application/td+json")], td()) }),
        )
        .route(
            "/plain",
            get(|| async { ([(CONTENT_TYPE, "text/plain")], td()) }),
        )
        .route(
            "/plain-text",
            get(|| async { ([(CONTENT_TYPE, "text/plain")], "not a TD") }),
        )
        .route(
            "/xml",
            get(|| async { ([(CONTENT_TYPE, "application/xml")], "<td/>") }),
        )
        .route(
            "/json-broken",
            get(|| async { ([(CONTENT_TYPE, "application/json")], "{") }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_html_page_is_named_as_such_not_as_a_json_error() {
    let base = serve().await;
    let sub = EventSubscriber::new();
    let url = format!("{base}/html/td");
    let error = sub.fetch_thing(&url).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContentType, "{error}");
    assert!(error.is_terminal());
    assert_eq!(error.url(), Some(url.as_str()));
    assert_eq!(
        error.to_string(),
        format!(
            "{url}: expected a Thing Description (application/td+json or application/json), \
             got text/html"
        )
    );

    let error = sub
        .fetch_directory(format!("{base}/html"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContentType, "{error}");
    assert!(
        error.to_string().ends_with(
            "expected a JSON array of Thing Descriptions (application/json), got text/html"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_td_loads_whatever_json_media_type_or_plain_text_it_comes_as() {
    let base = serve().await;
    let sub = EventSubscriber::new();
    for path in ["td-json", "plain"] {
        let thing = sub.fetch_thing(format!("{base}/{path}")).await.unwrap();
        assert_eq!(thing.id(), "urn:dev:lamp", "{path}");
    }
}

#[tokio::test]
async fn text_that_is_not_json_is_a_parse_error_unless_its_type_says_otherwise() {
    let base = serve().await;
    let sub = EventSubscriber::new();
    // Sent as JSON or as text that could be JSON: the parser says where it breaks.
    for path in ["json-broken", "plain-text"] {
        let error = sub.fetch_thing(format!("{base}/{path}")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Parse, "{path}: {error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }
    let error = sub.fetch_thing(format!("{base}/xml")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContentType, "{error}");
    assert!(
        error.to_string().ends_with("got application/xml"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_td_says_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/td");
    let error = EventSubscriber::new().fetch_thing(&url).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert_eq!(
        error.to_string(),
        format!("cannot reach {url}: connection refused")
    );
    let error = EventSubscriber::new()
        .fetch_thing("http://no-such-host.invalid/td")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot reach http://no-such-host.invalid/td: could not resolve host"
    );
}
