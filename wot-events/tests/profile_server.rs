//! wot-events against a WoT Profile server in the test (tests/common/mod.rs).

mod common;

use std::time::Duration;

use common::{Server, TOKEN};
use futures::StreamExt;
use serde_json::json;
use wot_events::{
    ConnectionState, ConsumedThing, Credential, Credentials, Error, ErrorKind, EventLog,
    EventSubscriber, FilterExpr, InvalidData, LogQuery, ObserveMode, ObserveOptions,
    ReconnectPolicy, SseClient, SubscribeOptions,
};

fn subscriber(credentials: Credentials) -> EventSubscriber {
    let sse = SseClient::builder()
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_millis(20))
                .jitter(0.0),
        )
        .build()
        .unwrap();
    EventSubscriber::builder()
        .sse_client(sse)
        .reconnect(ReconnectPolicy::new().jitter(0.0))
        .credentials(credentials)
        .build()
}

async fn next_ok<S>(s: &mut S) -> wot_events::EventRecord
where
    S: futures::Stream<Item = Result<wot_events::EventRecord, Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("a record within 10 s")
        .expect("stream goes on")
        .expect("a record, not an error")
}

#[tokio::test]
async fn drop_mid_stream_resumes_with_last_event_id_without_loss_or_duplicates() {
    let server = Server::start().await;
    for i in 1..=10 {
        server.push("b-events", "overheat", &format!(r#"{{"t": {}}}"#, i * 10));
    }
    *server.sim.drop_after.lock().unwrap() = Some(5);
    let sub = subscriber(Credentials::new());
    let thing = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    let mut events = sub
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(next_ok(&mut events).await);
    }
    let ids: Vec<_> = got.iter().map(|r| r.event_id.clone().unwrap()).collect();
    assert_eq!(ids, (1..=10).map(|i| i.to_string()).collect::<Vec<_>>());
    let temps: Vec<_> = got.iter().map(|r| r.data["t"].as_i64().unwrap()).collect();
    assert_eq!(temps, (1..=10).map(|i| i * 10).collect::<Vec<_>>());
    assert!(got.iter().all(|r| r.thing_id == "urn:test:b"
        && r.thing_title == "Thing B"
        && r.event == "overheat"));
    // Two connections: the second resumed after id 5.
    assert_eq!(
        server.resume_ids("/things/b/events/overheat"),
        [None, Some("5".to_owned())]
    );
    // Nothing more is pending, and the buffer holds the 10 records.
    assert_eq!(events.buffered_records().len(), 10);
    assert_eq!(events.connection_state(), ConnectionState::Open);
    drop(events);
    server.wait_all_closed().await;
}

#[tokio::test]
async fn subscribe_all_shares_one_connection_per_thing_when_offered() {
    let server = Server::start().await;
    let sub = subscriber(Credentials::new());
    let a = sub.fetch_thing(server.url("/things/a/td")).await.unwrap();
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    server.push("a-events", "overheat", r#"{"t": 150}"#);
    server.push("a-events", "door", r#""open""#);
    server.push("b-events", "overheat", r#"{"t": 160}"#);
    server.push("b-events", "door", r#""closed""#);
    let mut all = sub
        .subscribe_all([&a, &b], SubscribeOptions::new())
        .unwrap();
    assert_eq!(all.subscriptions().count(), 3, "a shared + b per event");
    let mut log = EventLog::new();
    for _ in 0..4 {
        log.push(next_ok(&mut all).await);
    }
    let mut seen: Vec<_> = log
        .iter()
        .map(|r| (r.thing_id.to_string(), r.event.to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("urn:test:a".to_owned(), "door".to_owned()),
            ("urn:test:a".to_owned(), "overheat".to_owned()),
            ("urn:test:b".to_owned(), "door".to_owned()),
            ("urn:test:b".to_owned(), "overheat".to_owned()),
        ]
    );
    assert_eq!(server.connections("/things/a/events"), 1);
    assert_eq!(server.connections("/things/a/events/overheat"), 0);
    assert_eq!(server.connections("/things/a/events/door"), 0);
    assert_eq!(server.connections("/things/b/events/overheat"), 1);
    assert_eq!(server.connections("/things/b/events/door"), 1);
    assert_eq!(*server.active.borrow(), 3);
    // A new event on the shared connection arrives demultiplexed.
    server.push("a-events", "door", r#""closed""#);
    let r = next_ok(&mut all).await;
    assert_eq!(
        (r.thing_id.as_str(), r.event.as_str(), r.data.value()),
        ("urn:test:a", "door", &json!("closed"))
    );
    log.push(r);
    assert_eq!(log.query(&LogQuery::new().thing("urn:test:a")).len(), 3);
    assert_eq!(all.buffered_records().len(), 5);
    all.unsubscribe();
    assert!(all.next().await.is_none());
    server.wait_all_closed().await;
}

#[tokio::test]
async fn filters_buffers_and_invalid_data_policies() {
    let server = Server::start().await;
    server.push("b-events", "overheat", r#"{"t": 100}"#);
    server.push("b-events", "overheat", "oops");
    server.push("b-events", "overheat", r#"{"t": 500}"#);
    server.push("b-events", "overheat", r#"{"t": 150}"#);
    server.push("b-events", "overheat", r#"{"t": 180}"#);
    let sub = subscriber(Credentials::new());
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();

    // Default: errors are items, the stream goes on.
    let mut s = sub
        .subscribe(&b, "overheat", SubscribeOptions::new())
        .unwrap();
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(
            tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(items[0].as_ref().unwrap().data, json!({"t": 100}));
    let e1 = items[1].as_ref().unwrap_err();
    assert!(
        e1.kind() == ErrorKind::InvalidData && e1.raw_data() == Some("oops"),
        "{e1}"
    );
    let e2 = items[2].as_ref().unwrap_err().to_string();
    assert!(e2.contains("`t`") && e2.contains("200"), "{e2}");
    assert_eq!(items[4].as_ref().unwrap().data, json!({"t": 180}));

    // A declarative filter, a one-record buffer, invalid data dropped.
    let filter: FilterExpr =
        serde_json::from_value(json!({"gt": {"pointer": "/t", "value": 120}})).unwrap();
    let opts = SubscribeOptions::new()
        .filter(filter.compile().unwrap())
        .buffer(Some(1))
        .invalid_data(InvalidData::Drop);
    let mut s = sub.subscribe(&b, "overheat", opts).unwrap();
    assert_eq!(next_ok(&mut s).await.data, json!({"t": 150}));
    assert_eq!(next_ok(&mut s).await.data, json!({"t": 180}));
    assert_eq!(
        s.buffered_records()
            .iter()
            .map(|r| r.data.clone())
            .collect::<Vec<_>>(),
        [json!({"t": 180})]
    );

    // Pass-through keeps everything.
    let mut s = sub
        .subscribe(
            &b,
            "overheat",
            SubscribeOptions::new()
                .invalid_data(InvalidData::PassThrough)
                .buffer(None),
        )
        .unwrap();
    let mut data = Vec::new();
    for _ in 0..5 {
        data.push(next_ok(&mut s).await.data);
    }
    assert_eq!(data[1], json!("oops"));
    assert_eq!(data[2], json!({"t": 500}));
    assert!(s.buffered_records().is_empty());
}

#[tokio::test(start_paused = true)]
async fn observe_property_over_sse_flags_out_of_range_values() {
    let server = Server::start().await;
    server.push("a-props", "temp", "21.5");
    server.push("a-props", "humidity", "40");
    server.push("a-props", "temp", "300");
    let sub = subscriber(Credentials::new());
    let a = sub.fetch_thing(server.url("/things/a/td")).await.unwrap();
    let mut obs = sub
        .observe_property(&a, "temp", ObserveOptions::new())
        .unwrap();
    assert_eq!(obs.connections()[0].1, ObserveMode::Sse);
    let u1 = obs.next().await.unwrap().unwrap();
    let u2 = obs.next().await.unwrap().unwrap();
    assert_eq!(
        (u1.property.as_str(), u1.value.value(), &u1.schema_violation),
        ("temp", &json!(21.5), &None)
    );
    assert_eq!(u2.value, json!(300));
    assert!(
        u2.schema_violation.as_deref().unwrap().contains("125"),
        "{u2:?}"
    );
    assert_eq!(obs.history("temp").unwrap().len(), 2);
    assert_eq!(obs.latest("temp").unwrap().1, json!(300));
    let recent = obs
        .history("temp")
        .unwrap()
        .within(Duration::from_secs(60), std::time::SystemTime::now())
        .count();
    assert_eq!(recent, 2);

    // All properties on the Thing-level `observeallproperties` connection.
    let mut all = sub
        .observe_all_properties(&a, ObserveOptions::new())
        .unwrap();
    assert_eq!(all.connections().len(), 1);
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(all.next().await.unwrap().unwrap().property);
    }
    assert_eq!(names, ["temp", "humidity", "temp"]);
    assert_eq!(server.connections("/things/a/properties"), 1);
    assert_eq!(all.latest("humidity").unwrap().1, json!(40));
}

#[tokio::test(start_paused = true)]
async fn polling_reads_every_interval_and_yields_only_changes() {
    let server = Server::start().await;
    let sub = subscriber(Credentials::new());
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut obs = sub
        .observe_property(&b, "humidity", ObserveOptions::new())
        .unwrap();
    assert_eq!(obs.connections()[0].1, ObserveMode::Polling);
    let mut got = Vec::new();
    for _ in 0..3 {
        let u = obs.next().await.unwrap().unwrap();
        got.push((
            u.value,
            server.sim.reads.load(std::sync::atomic::Ordering::SeqCst),
            start.elapsed(),
        ));
    }
    // Reads answer 40 40 41 41 41 42: updates come with reads 1, 3 and 6.
    assert_eq!(
        got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
        [json!(40), json!(41), json!(42)]
    );
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [1, 3, 6]);
    // The first read is immediate; then one read per second (at least).
    assert!(
        got[1].2 >= Duration::from_secs(2) && got[2].2 >= Duration::from_secs(5),
        "{got:?}"
    );

    // Every read when asked, at a custom interval.
    let mut obs = sub
        .observe_property(
            &b,
            "humidity",
            ObserveOptions::new()
                .every_read(true)
                .interval(Duration::from_secs(10)),
        )
        .unwrap();
    let t0 = tokio::time::Instant::now();
    let a = obs.next().await.unwrap().unwrap();
    let b2 = obs.next().await.unwrap().unwrap();
    assert_eq!(
        (a.value.into_value(), b2.value.into_value()),
        (json!(42), json!(42))
    );
    assert!(t0.elapsed() >= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn polling_retries_server_errors_with_backoff_and_ends_on_client_errors() {
    let server = Server::start().await;
    let sub = subscriber(Credentials::new());
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut obs = sub
        .observe_property(&b, "flaky", ObserveOptions::new())
        .unwrap();
    let state = obs.connections()[0].2.clone();
    let e1 = obs.next().await.unwrap().unwrap_err();
    assert_eq!(e1.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(e1.problem().unwrap().title.as_deref(), Some("Warming up"));
    assert!(!e1.is_terminal());
    let e2 = obs.next().await.unwrap().unwrap_err();
    assert!(!e2.is_terminal(), "{e2}");
    assert_eq!(
        *state.borrow(),
        ConnectionState::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(1500)
        }
    );
    let ok = obs.next().await.unwrap().unwrap();
    assert_eq!(ok.value, json!(7));
    // Waited 1 s after the first failure and 1.5 s after the second (the default
    // `ReconnectPolicy` schedule, without jitter).
    assert!(
        start.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(*state.borrow(), ConnectionState::Open);
    // 404 is terminal: the error is the last item.
    let e3 = obs.next().await.unwrap().unwrap_err();
    assert!(
        e3.is_terminal() && e3.status() == Some(http::StatusCode::NOT_FOUND),
        "{e3}"
    );
    assert!(obs.next().await.is_none());
    assert_eq!(
        server
            .sim
            .flaky_reads
            .load(std::sync::atomic::Ordering::SeqCst),
        4
    );
}

#[tokio::test]
async fn one_shot_read_write_invoke_with_problem_details() {
    let server = Server::start().await;
    let sub = subscriber(Credentials::new());
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    assert_eq!(sub.read_property(&b, "temp").await.unwrap(), json!(21.5));
    sub.write_property(&b, "temp", &json!(30)).await.unwrap();
    assert_eq!(sub.read_property(&b, "temp").await.unwrap(), json!(30));
    let err = sub
        .write_property(&b, "temp", &json!(500))
        .await
        .unwrap_err();
    assert!(
        err.kind() == ErrorKind::InvalidInput && err.to_string().contains("property `temp`"),
        "{err}"
    );
    let out = sub
        .invoke_action(&b, "echo", Some(&json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(out, json!({"echo": {"x": 1}}));
    let err = sub.invoke_action(&b, "fail", None).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::CONFLICT));
    assert_eq!(
        err.problem().unwrap().detail.as_deref(),
        Some("the device is calibrating")
    );
    assert!(err.to_string().contains("calibrating"), "{err}");
    let err = sub.read_property(&b, "nope").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn loading_errors_are_clear() {
    let server = Server::start().await;
    let sub = subscriber(Credentials::new());
    // Unreachable: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = sub
        .fetch_thing(format!("http://127.0.0.1:{port}/td"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}/td")));
    let err = sub.fetch_thing(server.url("/notjson")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    assert_eq!(err.url(), Some(server.url("/notjson").as_str()));
    let source =
        std::error::Error::source(&err).and_then(|s| s.downcast_ref::<wot_td::ParseError>());
    assert!(source.is_some_and(wot_td::ParseError::is_syntax), "{err}");
    let err = sub.fetch_thing(server.url("/invalid")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(
        err.diagnostics()
            .iter()
            .any(|d| d.path.starts_with("security")),
        "{err}"
    );
    assert!(err.to_string().contains("undefined_sc"), "{err}");
    let err = sub.fetch_thing("not a url?key=secret").await.unwrap_err();
    assert!(
        err.kind() == ErrorKind::BadUrl && !err.to_string().contains("secret"),
        "{err}"
    );
    let err = sub.fetch_thing(server.url("/tm")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAThing, "{err}");
    let err = sub
        .fetch_thing(server.url("/things/zz/td"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));

    // A directory: two good TDs and a bad one.
    let listed = sub.fetch_directory(server.url("/directory")).await.unwrap();
    assert_eq!(listed.len(), 3);
    let a = listed[0].as_ref().unwrap();
    assert_eq!(a.id(), "urn:test:a");
    assert!(
        listed[2]
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Invalid)
    );
    // Its absolute `base` works for reads.
    assert_eq!(sub.read_property(a, "temp").await.unwrap(), json!(21.5));

    // From a file and from a value.
    let path = std::env::temp_dir().join(format!("wot-events-td-{port}.json"));
    std::fs::write(&path, serde_json::to_vec(&common::td_value("b")).unwrap()).unwrap();
    let from_file = ConsumedThing::from_file(&path).unwrap();
    assert_eq!(from_file.id(), "urn:test:b");
    std::fs::remove_file(&path).unwrap();
    let err = ConsumedThing::from_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    // A file TD with relative hrefs and no base cannot be used for requests.
    let err = sub.read_property(&from_file, "temp").await.unwrap_err();
    assert!(err.to_string().contains("properties/temp"), "{err}");
    let thing = wot_td::Document::from_value(common::td_value("b"))
        .unwrap()
        .into_thing()
        .unwrap();
    let value =
        ConsumedThing::new(thing, Some(server.url("/things/b/td").parse().unwrap())).unwrap();
    assert_eq!(
        sub.read_property(&value, "humidity").await.unwrap(),
        json!(40)
    );
}

#[tokio::test]
async fn bearer_security_from_credentials() {
    let server = Server::start().await;
    server.push("c-events", "door", r#""open""#);
    let anonymous = subscriber(Credentials::new());
    let c = anonymous
        .fetch_thing(server.url("/things/c/td"))
        .await
        .unwrap();
    let err = anonymous
        .subscribe(&c, "door", SubscribeOptions::new())
        .unwrap_err();
    assert!(
        err.kind() == ErrorKind::Security && err.to_string().contains("`bearer_sc` (bearer)"),
        "{err}"
    );
    let creds = Credentials::new().for_thing("urn:test:c", Credential::Bearer(TOKEN.into()));
    let sub = subscriber(creds.clone());
    let mut s = sub.subscribe(&c, "door", SubscribeOptions::new()).unwrap();
    assert_eq!(next_ok(&mut s).await.data, json!("open"));
    // A wrong token: the server's 401 is a terminal error, and the token is never shown.
    let wrong = subscriber(
        Credentials::new().for_scheme("bearer_sc", Credential::Bearer("wrong-t0ken".into())),
    );
    let mut s = wrong
        .subscribe(&c, "door", SubscribeOptions::new())
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        err.is_terminal() && err.status() == Some(http::StatusCode::UNAUTHORIZED),
        "{err}"
    );
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{creds:?}"),
        format!("{sub:?}"),
    ] {
        assert!(
            !text.contains(TOKEN) && !text.contains("wrong-t0ken"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn unsubscribe_and_drop_close_connections() {
    let server = Server::start().await;
    server.push("b-events", "door", r#""open""#);
    let sub = subscriber(Credentials::new());
    let b = sub.fetch_thing(server.url("/things/b/td")).await.unwrap();
    let mut s1 = sub.subscribe(&b, "door", SubscribeOptions::new()).unwrap();
    let mut s2 = sub.subscribe(&b, "door", SubscribeOptions::new()).unwrap();
    next_ok(&mut s1).await;
    next_ok(&mut s2).await;
    assert_eq!(*server.active.borrow(), 2);
    s1.unsubscribe();
    assert!(s1.is_closed());
    assert!(s1.next().await.is_none());
    assert_eq!(s1.buffered_records().len(), 1);
    drop(s2);
    server.wait_all_closed().await;
}
