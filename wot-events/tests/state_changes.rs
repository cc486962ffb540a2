//! A connection's state is published when it changes, not after every response: a long poll
//! or a poll answered many times reads as one `Open`. Real servers on 127.0.0.1, tokio's
//! paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use wot_events::{
    ConnectionState, ConsumedThing, EventSubscriber, ObserveMode, ObserveOptions, SubscribeOptions,
};

/// A server whose `/lp` and `/p` answer at once with a new number each time.
async fn counting_server() -> String {
    let n = Arc::new(AtomicU64::new(0));
    let next = move || {
        let n = n.fetch_add(1, Ordering::SeqCst);
        async move { axum::Json(json!(n)) }
    };
    let app = Router::new()
        .route("/lp", get(next.clone()))
        .route("/p", get(next));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Event `lp` over long polling; property `p` only readable, so observed by polling.
fn thing(base: &str) -> ConsumedThing {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:changes", "title": "Changes",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {"p": {"type": "integer", "forms": [{"href": format!("{base}/p")}]}},
        "events": {
            "lp": {"data": {"type": "integer"},
                   "forms": [{"href": format!("{base}/lp"), "subprotocol": "longpoll"}]}
        }
    });
    let thing = wot_events::wot_td::Document::from_value(td)
        .unwrap()
        .into_thing()
        .unwrap();
    ConsumedThing::new(thing, None).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_answered_many_times_is_open_once() {
    let base = counting_server().await;
    let sub = EventSubscriber::new();
    let mut events = sub
        .subscribe(&thing(&base), "lp", SubscribeOptions::new())
        .unwrap();
    let mut state = events.state();
    assert_eq!(*state.borrow_and_update(), ConnectionState::Connecting);
    events.next().await.unwrap().unwrap();
    assert!(state.has_changed().unwrap());
    assert_eq!(*state.borrow_and_update(), ConnectionState::Open);
    for _ in 0..25 {
        events.next().await.unwrap().unwrap();
        assert!(
            !state.has_changed().unwrap(),
            "published again: {:?}",
            *state.borrow()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_poll_answered_many_times_is_open_once() {
    let base = counting_server().await;
    let sub = EventSubscriber::new();
    let mut observer = sub
        .observe_property(
            &thing(&base),
            "p",
            ObserveOptions::new().interval(Duration::from_millis(100)),
        )
        .unwrap();
    assert_eq!(observer.connections()[0].1, ObserveMode::Polling);
    let mut state = observer.connections()[0].2.clone();
    assert_eq!(*state.borrow_and_update(), ConnectionState::Connecting);
    observer.next().await.unwrap().unwrap();
    assert_eq!(*state.borrow_and_update(), ConnectionState::Open);
    for _ in 0..25 {
        observer.next().await.unwrap().unwrap();
        assert!(!state.has_changed().unwrap(), "{:?}", *state.borrow());
    }
}
