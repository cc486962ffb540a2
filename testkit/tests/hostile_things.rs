//! Every scenario of the hostile Thing (`wot_testkit::hostile`) against the crates a user
//! would point at it: `wot-events` fetching the TD and subscribing from it, as the dashboard
//! does, over `wot-sse`.
//!
//! Each test runs alone (they share one lock, so the allocation counts are their own) on a
//! current-thread runtime with tokio's paused clock: waits, backoff and timeouts cost no real
//! time, and the time each one may take is checked on that clock. Memory is checked with a
//! counting allocator: the bytes allocated during the test (client and server together) bound
//! the peak from above.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::Value;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::time::Instant;
use wot_events::{
    Credential, Credentials, Error, ErrorKind, EventSubscriber, ObserveOptions, SubscribeOptions,
};
use wot_testkit::hostile::{HostileThing, Origin, SECRET, Scenario};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MIB: usize = 1024 * 1024;

/// What a run may cost: bytes allocated (client and server) and time on the paused clock.
struct Budget {
    allocated: usize,
    paused: Duration,
}

fn budget(allocated_mib: usize, paused_secs: u64) -> Budget {
    Budget {
        allocated: allocated_mib * MIB,
        paused: Duration::from_secs(paused_secs),
    }
}

/// Runs `test` against a fresh server for `scenario` and checks the budget.
fn run<F, Fut>(scenario: Scenario, budget: Budget, test: F)
where
    F: FnOnce(HostileThing) -> Fut,
    Fut: Future<Output = ()>,
{
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let allocated = runtime.block_on(async {
        let thing = HostileThing::start(scenario).await.unwrap();
        let region = Region::new(GLOBAL);
        let started = Instant::now();
        tokio::time::timeout(budget.paused, test(thing))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: not done within {:?} of (paused) time",
                    scenario.name(),
                    budget.paused
                )
            });
        assert!(started.elapsed() <= budget.paused);
        region.change().bytes_allocated
    });
    assert!(
        allocated <= budget.allocated,
        "{}: allocated {} MiB, budget {} MiB",
        scenario.name(),
        allocated / MIB,
        budget.allocated / MIB
    );
}

/// What a consumer saw: values (event data or property values) with their ids, and errors.
#[derive(Debug, Default)]
struct Seen {
    values: Vec<(Value, Option<String>)>,
    errors: Vec<String>,
    terminal: bool,
    ended: bool,
}

impl Seen {
    fn seqs(&self) -> Vec<u64> {
        self.values
            .iter()
            .filter_map(|(v, _)| v.get("seq").and_then(Value::as_u64))
            .collect()
    }

    fn note_error(&mut self, error: &Error) {
        self.terminal |= error.is_terminal();
        self.errors.push(error.to_string());
    }
}

async fn fetch(thing: &HostileThing, subscriber: &EventSubscriber) -> wot_events::ConsumedThing {
    subscriber
        .fetch_thing(thing.td_url())
        .await
        .unwrap_or_else(|e| panic!("{}: fetching the TD: {e}", thing.scenario().name()))
}

/// Subscribes to the `alarm` event and collects for `window` of paused time, or until
/// `enough` values arrived, or the stream ended.
async fn events_for(thing: &HostileThing, window: Duration, enough: usize) -> Seen {
    events_with(thing, &EventSubscriber::new(), window, enough).await
}

async fn events_with(
    thing: &HostileThing,
    subscriber: &EventSubscriber,
    window: Duration,
    enough: usize,
) -> Seen {
    let consumed = fetch(thing, subscriber).await;
    let stream = subscriber
        .subscribe(&consumed, "alarm", SubscribeOptions::new())
        .unwrap()
        .map(|item| {
            item.map(|record| {
                (
                    record.data.into_value(),
                    record.event_id.as_deref().map(str::to_owned),
                )
            })
        });
    collect(stream, window, enough).await
}

/// Observes the `temp` property (or every property) and collects as [`events_for`] does.
async fn updates_for(thing: &HostileThing, all: bool, window: Duration, enough: usize) -> Seen {
    let subscriber = EventSubscriber::new();
    let consumed = fetch(thing, &subscriber).await;
    let observer = if all {
        subscriber.observe_all_properties(&consumed, ObserveOptions::new())
    } else {
        subscriber.observe_property(&consumed, "temp", ObserveOptions::new())
    };
    let stream = observer.unwrap().map(|item| {
        item.map(|update| {
            (
                update.value.into_value(),
                update.event_id.as_deref().map(str::to_owned),
            )
        })
    });
    collect(stream, window, enough).await
}

/// Takes values and errors from `stream` for `window` of paused time, or until `enough`
/// values arrived, or the stream ended.
async fn collect(
    stream: impl Stream<Item = Result<(Value, Option<String>), Error>>,
    window: Duration,
    enough: usize,
) -> Seen {
    let mut stream = std::pin::pin!(stream);
    let mut seen = Seen::default();
    let deadline = Instant::now() + window;
    while seen.values.len() < enough {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => break,
            Ok(None) => {
                seen.ended = true;
                break;
            }
            Ok(Some(Ok(value))) => seen.values.push(value),
            Ok(Some(Err(error))) => seen.note_error(&error),
        }
    }
    seen
}

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

// --- time ---

/// `Retry-After` values that overflow, do not fit, or ask for days: no panic, and the wait
/// before the next attempt is capped (a few minutes by default), not days.
fn retry_after_is_capped(scenario: Scenario) {
    run(scenario, budget(16, 3600), |thing| async move {
        let seen = events_for(&thing, 12 * MIN, 1).await;
        assert!(seen.values.is_empty());
        assert!(!seen.errors.is_empty(), "{seen:?}");
        let attempts = thing.count("/events/alarm");
        assert!(
            attempts >= 2,
            "the 503's Retry-After was not capped: {attempts} attempt(s)"
        );
    });
}

#[test]
fn retry_after_overflow() {
    retry_after_is_capped(Scenario::RetryAfterOverflow);
}

#[test]
fn retry_after_huge() {
    retry_after_is_capped(Scenario::RetryAfterHuge);
}

#[test]
fn retry_after_days() {
    retry_after_is_capped(Scenario::RetryAfterDays);
}

#[test]
fn retry_after_far_date() {
    retry_after_is_capped(Scenario::RetryAfterFarDate);
}

#[test]
fn retry_after_garbage_is_ignored_and_the_normal_backoff_applies() {
    run(
        Scenario::RetryAfterGarbage,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 1).await;
            assert!(seen.values.is_empty());
            // The default policy: 1 s, 1.5 s, 2.25 s … with jitter: several attempts in a minute.
            let attempts = thing.count("/events/alarm");
            assert!(attempts >= 3, "{attempts}");
        },
    );
}

#[test]
fn retry_zero_storm() {
    run(
        Scenario::RetryZeroStorm,
        budget(32, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, usize::MAX).await;
            let attempts = thing.count("/events/alarm");
            // The server asks for no wait at all: the floor and the backoff for quick failures
            // keep it to a few dozen connections a minute, not thousands.
            assert!(attempts <= 40, "{attempts} connections in a minute");
            // Every event still arrives once, in order: each connection resumes.
            let seqs = seen.seqs();
            assert!(seqs.len() >= 5, "{seen:?}");
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        },
    );
}

#[test]
fn retry_huge_saturates_without_panic() {
    run(Scenario::RetryHuge, budget(16, 3600), |thing| async move {
        let seen = events_for(&thing, 10 * MIN, usize::MAX).await;
        // The saturated value is capped like `Retry-After` (5 minutes by default): the
        // stream comes back a few times in 10 minutes and resumes each time.
        let attempts = thing.count("/events/alarm");
        assert!((2..=4).contains(&attempts), "{attempts}");
        let seqs = seen.seqs();
        assert_eq!(seqs, (1..=attempts as u64).collect::<Vec<_>>(), "{seen:?}");
    });
}

#[test]
fn never_answers_uses_up_the_attempts_and_ends() {
    run(
        Scenario::NeverAnswers,
        budget(16, 3600),
        |thing| async move {
            let seen = events_for(&thing, 30 * MIN, 1).await;
            assert!(seen.values.is_empty());
            assert!(seen.terminal && seen.ended, "{seen:?}");
            assert!(thing.count("/events/alarm") <= 6);
        },
    );
}

#[test]
fn headers_then_silence_is_an_idle_timeout_and_a_reconnect() {
    run(
        Scenario::HeadersThenSilence,
        budget(16, 3600),
        |thing| async move {
            let seen = events_for(&thing, 5 * MIN, 1).await;
            assert!(seen.values.is_empty());
            assert!(
                !seen.terminal,
                "a server that answers is not given up on: {seen:?}"
            );
            assert!(thing.count("/events/alarm") >= 2);
        },
    );
}

#[test]
fn slowloris_trickle_is_slow_but_alive() {
    run(
        Scenario::SlowlorisTrickle,
        budget(16, 3600),
        |thing| async move {
            let seen = events_for(&thing, 3 * MIN, 2).await;
            assert_eq!(seen.seqs(), [1, 2], "{seen:?}");
            assert_eq!(thing.count("/events/alarm"), 1, "no reconnect: {seen:?}");
        },
    );
}

#[test]
fn server_error_forever_gives_up_after_the_attempt_limit() {
    run(
        Scenario::ServerErrorForever,
        budget(16, 3600),
        |thing| async move {
            let seen = events_for(&thing, 30 * MIN, 1).await;
            assert!(seen.terminal && seen.ended, "{seen:?}");
            assert_eq!(thing.count("/events/alarm"), 5);
        },
    );
}

#[test]
fn no_content_ends_the_stream() {
    run(Scenario::NoContent, budget(16, 600), |thing| async move {
        let seen = events_for(&thing, 5 * MIN, 1).await;
        assert!(seen.ended && seen.values.is_empty(), "{seen:?}");
        assert_eq!(thing.count("/events/alarm"), 1);
    });
}

// --- sizes ---

#[test]
fn huge_id_then_tiny_events() {
    // 10 MiB of id, then 10,000 events: the id is dropped with an error, not copied into
    // every event.
    run(
        Scenario::HugeIdThenTinyEvents,
        budget(96, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 10_000).await;
            assert_eq!(seen.seqs().len(), 10_000, "{:?}", seen.errors);
            assert!(
                seen.values
                    .iter()
                    .all(|(_, id)| id.as_ref().is_none_or(|id| id.len() < 64 * 1024))
            );
            assert!(
                !seen.errors.is_empty(),
                "the over-long id was dropped silently"
            );
        },
    );
}

#[test]
fn kib_id_on_every_event() {
    run(
        Scenario::KibIdOnEveryEvent,
        budget(96, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 10_000).await;
            assert_eq!(seen.seqs().len(), 10_000, "{:?}", seen.errors);
            assert!(seen.errors.is_empty(), "{:?}", seen.errors.first());
        },
    );
}

/// An over-long line of some kind: one error, the next event arrives, memory stays bounded.
fn one_long_line_then_the_next_event(scenario: Scenario, next_seq: u64) {
    run(scenario, budget(96, 600), move |thing| async move {
        let seen = events_for(&thing, MIN, 1).await;
        assert_eq!(seen.seqs(), [next_seq], "{seen:?}");
        assert!(!seen.terminal, "{seen:?}");
        assert_eq!(
            thing.count("/events/alarm"),
            1,
            "no reconnect needed: {seen:?}"
        );
    });
}

#[test]
fn huge_event_type() {
    one_long_line_then_the_next_event(Scenario::HugeEventType, 2);
}

#[test]
fn endless_line() {
    one_long_line_then_the_next_event(Scenario::EndlessLine, 2);
}

#[test]
fn huge_comment() {
    one_long_line_then_the_next_event(Scenario::HugeComment, 1);
}

#[test]
fn huge_event_data() {
    one_long_line_then_the_next_event(Scenario::HugeEventData, 2);
}

#[test]
fn comment_flood() {
    run(
        Scenario::CommentFlood,
        budget(32, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 1).await;
            assert_eq!(seen.seqs(), [1], "{seen:?}");
            assert!(seen.errors.is_empty(), "{seen:?}");
        },
    );
}

#[test]
fn event_flood() {
    run(Scenario::EventFlood, budget(512, 600), |thing| async move {
        let seen = events_for(&thing, 10 * MIN, 100_000).await;
        let seqs = seen.seqs();
        assert_eq!(seqs.len(), 100_000, "{:?}", seen.errors.first());
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    });
}

#[test]
fn content_length_lie_is_a_broken_body_and_a_reconnect() {
    run(
        Scenario::ContentLengthLie,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 2).await;
            assert_eq!(seen.seqs(), [1, 2], "{seen:?}");
            assert!(!seen.errors.is_empty(), "{seen:?}");
            assert!(thing.count("/events/alarm") >= 2);
        },
    );
}

#[test]
fn broken_chunked_encoding_is_a_broken_body_and_a_reconnect() {
    run(
        Scenario::BrokenChunked,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 2).await;
            assert_eq!(seen.seqs().first(), Some(&1), "{seen:?}");
            assert!(!seen.errors.is_empty(), "{seen:?}");
            assert!(thing.count("/events/alarm") >= 2);
        },
    );
}

/// A compressed body the client never asked for (it sends no `Accept-Encoding`): nothing is
/// inflated, so a bomb costs what it weighs (6.5 MB on the wire per connection).
fn compressed_body_is_never_inflated(scenario: Scenario) {
    run(scenario, budget(48, 600), |thing| async move {
        let seen = events_for(&thing, 2 * SEC, 1).await;
        assert!(seen.values.is_empty(), "{seen:?}");
        let heads = thing.requests(Origin::Thing);
        assert!(heads.iter().all(|h| {
            h.header("accept-encoding")
                .is_none_or(|v| !v.contains("gzip"))
        }));
    });
}

#[test]
fn gzip_body() {
    compressed_body_is_never_inflated(Scenario::GzipBody);
}

#[test]
fn gzip_bomb() {
    compressed_body_is_never_inflated(Scenario::GzipBomb);
}

#[test]
fn wrong_content_type_is_terminal() {
    run(
        Scenario::WrongContentType,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, 10 * MIN, 1).await;
            assert!(seen.terminal && seen.ended, "{seen:?}");
            assert_eq!(thing.count("/events/alarm"), 1);
        },
    );
}

// --- ids and resume ---

/// Ids with bytes a header cannot carry: the client still resumes (the id is sent in a form
/// the server can read back), so a replaying server never starts over.
fn unsendable_ids_still_resume(scenario: Scenario) {
    run(scenario, budget(32, 3600), |thing| async move {
        let seen = events_for(&thing, 2 * MIN, 9).await;
        let seqs = seen.seqs();
        assert_eq!(seqs, (1..=9).collect::<Vec<_>>(), "replayed: {seen:?}");
        let ids: Vec<Option<String>> = thing
            .requests(Origin::Thing)
            .iter()
            .filter(|h| h.path() == "/events/alarm")
            .map(|h| h.last_event_id().map(str::to_owned))
            .collect();
        assert!(ids.iter().skip(1).all(Option::is_some), "{ids:?}");
    });
}

#[test]
fn id_with_del() {
    unsendable_ids_still_resume(Scenario::IdWithDel);
}

#[test]
fn id_with_control_chars() {
    unsendable_ids_still_resume(Scenario::IdWithControlChars);
}

#[test]
fn id_with_nul_is_ignored_as_the_standard_says() {
    run(Scenario::IdWithNul, budget(16, 600), |thing| async move {
        let subscriber = EventSubscriber::new();
        let consumed = fetch(&thing, &subscriber).await;
        let mut stream = subscriber
            .subscribe(&consumed, "alarm", SubscribeOptions::new())
            .unwrap();
        let mut ids = Vec::new();
        while ids.len() < 3 {
            match stream.next().await {
                Some(Ok(record)) => ids.push(record.event_id.as_deref().map(str::to_owned)),
                Some(Err(_)) => {}
                None => break,
            }
        }
        // The id with a NUL is ignored: the second event keeps the first one's id.
        let ids: Vec<Option<&str>> = ids.iter().map(Option::as_deref).collect();
        assert_eq!(ids, [Some("1"), Some("1"), Some("3")]);
    });
}

// --- text ---

#[test]
fn invalid_utf8_everywhere() {
    run(
        Scenario::InvalidUtf8Everywhere,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 1).await;
            assert_eq!(seen.seqs(), [2], "{seen:?}");
        },
    );
}

#[test]
fn control_chars_in_data() {
    run(
        Scenario::ControlCharsInData,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, MIN, 2).await;
            // Raw control characters inside a JSON string are not JSON: the first event is a
            // typed data error; the second carries a type with an escape sequence, which is not
            // the `alarm` event of this stream. Neither crashes anything.
            assert!(!seen.terminal, "{seen:?}");
            assert!(seen.values.is_empty(), "{seen:?}");
            assert!(
                seen.errors[0].contains("invalid data: not JSON: control character"),
                "{seen:?}"
            );
        },
    );
}

#[test]
fn plain_message_events_on_per_property_forms_are_updates() {
    run(
        Scenario::PlainMessageEvents,
        budget(16, 600),
        |thing| async move {
            let one = updates_for(&thing, false, MIN, 5).await;
            assert_eq!(one.values.len(), 5, "observe_property: {one:?}");
            let all = updates_for(&thing, true, MIN, 5).await;
            assert_eq!(all.values.len(), 5, "observe_all_properties: {all:?}");
        },
    );
}

#[test]
fn extreme_numbers() {
    run(
        Scenario::ExtremeNumbers,
        budget(32, 600),
        |thing| async move {
            let seen = updates_for(&thing, false, MIN, 6).await;
            // Every number JSON can hold arrives as sent; 1e400 (out of range) and 10,000
            // nested arrays (past serde_json's depth limit) are typed data errors.
            let values: Vec<String> = seen.values.iter().map(|(v, _)| v.to_string()).collect();
            assert_eq!(
                values,
                [
                    "1e+308",
                    "-1e+308",
                    "-0.0",
                    "\"NaN\"",
                    "1.2345678901234568e+29",
                    "5e-324"
                ],
                "{seen:?}"
            );
            assert!(seen.errors[0].contains("number out of range"), "{seen:?}");
            let more = updates_for(&thing, false, MIN, 7).await;
            assert!(
                more.errors.iter().any(|e| e.contains("recursion limit")),
                "{more:?}"
            );
            assert!(!seen.terminal && !more.terminal);
            assert!(seen.values.iter().any(|(v, _)| v.as_f64() == Some(1e308)));
        },
    );
}

// --- redirects and credentials ---

#[test]
fn redirect_loop_stops_at_the_limit() {
    run(
        Scenario::RedirectLoop,
        budget(16, 600),
        |thing| async move {
            let seen = events_for(&thing, 10 * MIN, 1).await;
            assert!(seen.terminal && seen.ended, "{seen:?}");
            assert!(thing.count("/events/alarm") <= 11);
        },
    );
}

fn credentials_for(scenario: Scenario) -> Credentials {
    let credential = match scenario {
        Scenario::CrossOriginRedirectBasic => Credential::Basic {
            user: "user".into(),
            password: SECRET.into(),
        },
        Scenario::CrossOriginRedirectHeaderKey
        | Scenario::CrossOriginRedirectQueryKey
        | Scenario::CrossOriginRedirectOneShot => Credential::ApiKey(SECRET.into()),
        _ => Credential::Bearer(SECRET.into()),
    };
    Credentials::new()
        .for_scheme("auth", credential)
        .allow_query_keys(true)
}

/// The credential reaches the Thing and never the other origin, whatever the redirect.
fn credentials_stay_home(scenario: Scenario) {
    run(scenario, budget(16, 600), move |thing| async move {
        let subscriber = EventSubscriber::builder()
            .credentials(credentials_for(scenario))
            .build();
        if scenario == Scenario::CrossOriginRedirectOneShot {
            let consumed = fetch(&thing, &subscriber).await;
            let _ = subscriber.read_property(&consumed, "temp").await;
        } else {
            let _ = events_with(&thing, &subscriber, 10 * SEC, 1).await;
        }
        let home = thing.requests(Origin::Thing);
        let sent_home = home.iter().filter(|h| h.path() != "/td").any(|h| {
            h.as_str().contains(SECRET)
                || h.as_str().contains(&wot_testkit::hostile::basic_encoded())
        });
        assert!(sent_home, "the credential was never used: {home:?}");
        assert!(
            !thing.secret_leaked(),
            "the other origin received the secret: {:?}",
            thing.requests(Origin::Other)
        );
    });
}

#[test]
fn cross_origin_redirect_bearer() {
    credentials_stay_home(Scenario::CrossOriginRedirectBearer);
}

#[test]
fn cross_origin_redirect_header_key() {
    credentials_stay_home(Scenario::CrossOriginRedirectHeaderKey);
}

#[test]
fn cross_origin_redirect_query_key() {
    credentials_stay_home(Scenario::CrossOriginRedirectQueryKey);
}

#[test]
fn cross_origin_redirect_basic() {
    credentials_stay_home(Scenario::CrossOriginRedirectBasic);
}

#[test]
fn cross_origin_redirect_bearer_custom_header() {
    credentials_stay_home(Scenario::CrossOriginRedirectBearerCustomHeader);
}

#[test]
fn cross_origin_redirect_one_shot() {
    credentials_stay_home(Scenario::CrossOriginRedirectOneShot);
}

// --- Thing Descriptions and directories ---

async fn fetch_err(thing: &HostileThing) -> Error {
    match EventSubscriber::new().fetch_thing(thing.td_url()).await {
        Ok(_) => panic!("{}: the TD was accepted", thing.scenario().name()),
        Err(e) => e,
    }
}

/// The TD request as a whole (head and body) has a time limit, 30 s by default.
fn td_fetch_times_out(scenario: Scenario) {
    run(scenario, budget(16, 600), |thing| async move {
        let started = Instant::now();
        let error = fetch_err(&thing).await;
        assert!(error.is_timeout(), "{error}");
        assert_eq!(started.elapsed().as_secs(), 30);
    });
}

#[test]
fn td_never_answers_times_out() {
    td_fetch_times_out(Scenario::TdNeverAnswers);
}

#[test]
fn td_slowloris_times_out() {
    td_fetch_times_out(Scenario::TdSlowloris);
}

#[test]
fn td_huge_body_is_refused_at_the_limit() {
    run(Scenario::TdHugeBody, budget(96, 600), |thing| async move {
        let error = fetch_err(&thing).await;
        assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    });
}

#[test]
fn td_deep_nesting_is_a_typed_error() {
    run(
        Scenario::TdDeepNesting,
        budget(96, 600),
        |thing| async move {
            let error = fetch_err(&thing).await;
            let text = error.to_string();
            assert!(
                text.contains("deep") || text.contains("nest") || text.contains("recursion"),
                "{text}"
            );
        },
    );
}

/// A TD whose validation is costly by design: it finishes within the real-time guard and the
/// memory budget with the expected verdict.
fn costly_td_is_bounded(scenario: Scenario, allocated_mib: usize, check: fn(Result<(), String>)) {
    run(
        scenario,
        budget(allocated_mib, 600),
        move |thing| async move {
            let real = std::time::Instant::now();
            let result = EventSubscriber::new().fetch_thing(thing.td_url()).await;
            let took = real.elapsed();
            assert!(
                took < Duration::from_secs(20),
                "{}: {took:?}",
                thing.scenario().name()
            );
            check(result.map(drop).map_err(|e| e.to_string()));
        },
    );
}

#[test]
fn td_regex_bomb() {
    // Each bomb is refused by the compiled-size limit, with the JSON path of its pattern.
    costly_td_is_bounded(Scenario::TdRegexBomb, 256, |result| {
        let error = result.unwrap_err();
        for path in ["properties.bomb2.pattern", "properties.bomb3.pattern"] {
            assert!(error.contains(path), "{path}: {error}");
        }
        assert!(error.contains("size limit"), "{error}");
    });
}

#[test]
fn td_many_patterns() {
    costly_td_is_bounded(Scenario::TdManyPatterns, 512, |result| result.unwrap());
}

#[test]
fn td_many_affordances() {
    costly_td_is_bounded(Scenario::TdManyAffordances, 1024, |result| result.unwrap());
}

#[test]
fn td_control_chars_are_kept_as_text() {
    run(
        Scenario::TdControlChars,
        budget(16, 600),
        |thing| async move {
            let consumed = fetch(&thing, &EventSubscriber::new()).await;
            // The model keeps the text as sent; display code escapes it (see the dashboard).
            assert!(consumed.title().contains('\u{1b}'));
        },
    );
}

#[test]
fn td_invalid_utf8_is_a_parse_error_with_a_position() {
    run(
        Scenario::TdInvalidUtf8,
        budget(16, 600),
        |thing| async move {
            let error = fetch_err(&thing).await;
            assert!(error.to_string().contains("line"), "{error}");
        },
    );
}

#[test]
fn td_extreme_range() {
    run(
        Scenario::TdExtremeRange,
        budget(32, 600),
        |thing| async move {
            let seen = updates_for(&thing, false, MIN, 8).await;
            assert!(!seen.terminal, "{seen:?}");
            assert!(
                seen.values.iter().any(|(v, _)| v.as_f64() == Some(1e308)),
                "{seen:?}"
            );
        },
    );
}

#[test]
fn directory_huge_is_bounded() {
    run(
        Scenario::DirectoryHuge,
        budget(256, 600),
        |thing| async move {
            let result = EventSubscriber::new()
                .fetch_directory(thing.url("/directory"))
                .await;
            // Past the entry limit (1,000 by default) the listing is refused as a whole.
            match result {
                Err(error) => assert_eq!(error.kind(), ErrorKind::TooManyThings, "{error}"),
                Ok(list) => panic!("{} entries accepted", list.len()),
            }
        },
    );
}

#[test]
fn pattern_updates() {
    run(
        Scenario::PatternUpdates,
        budget(256, 600),
        |thing| async move {
            let real = std::time::Instant::now();
            let seen = updates_for(&thing, false, 10 * MIN, 10_000).await;
            assert_eq!(seen.values.len(), 10_000, "{:?}", seen.errors.first());
            assert!(
                real.elapsed() < Duration::from_secs(30),
                "{:?}",
                real.elapsed()
            );
        },
    );
}

#[test]
fn every_scenario_has_a_test_here() {
    let source = include_str!("hostile_things.rs");
    for scenario in Scenario::ALL {
        let variant = format!("Scenario::{scenario:?}");
        assert!(
            source.matches(&variant).count() >= 1,
            "{variant} has no test"
        );
    }
}
