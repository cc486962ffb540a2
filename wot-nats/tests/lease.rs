//! Leases on a real nats-server: claim, renew, release, and takeover after a holder stops
//! renewing (real time: the server expires keys by its clock; each test takes a few seconds).

mod common;

use std::time::{Duration, Instant};

use common::NatsServer;
use wot_nats::{ErrorKind, LeaseStatus, Leases};

const TTL: Duration = Duration::from_secs(1);

async fn leases(server: &NatsServer, holder: &str) -> Leases {
    Leases::builder()
        .ttl(TTL)
        .timeout(Duration::from_secs(2))
        .open(server.client().await, holder)
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn one_holder_at_a_time_renew_and_release() {
    let server = NatsServer::start();
    let a = leases(&server, "collector-a").await;
    let b = leases(&server, "collector-b").await;
    assert_eq!(a.renew_interval(), TTL / 3);

    let thing = "urn:dev:boiler";
    let mut lease = a.claim(thing).await.unwrap().expect("free");
    assert_eq!(lease.thing_id(), thing);
    assert!(a.claim(thing).await.unwrap().is_none(), "claimed twice");
    assert!(b.claim(thing).await.unwrap().is_none(), "held by a");
    assert_eq!(
        b.holder_of(thing).await.unwrap().as_deref(),
        Some("collector-a")
    );

    // Renewing past the lease time keeps it.
    let first = lease.revision();
    for _ in 0..4 {
        tokio::time::sleep(a.renew_interval()).await;
        assert_eq!(a.renew(&mut lease).await.unwrap(), LeaseStatus::Held);
    }
    assert!(lease.revision() > first);
    assert!(lease.valid_until() > tokio::time::Instant::now());
    assert!(
        b.claim(thing).await.unwrap().is_none(),
        "renewed past the lease time"
    );

    // The leases there now.
    let other = b.claim("urn:dev:other.1").await.unwrap().unwrap();
    let leased = a.leased(100).await.unwrap();
    assert_eq!(leased.len(), 2);
    assert!(leased.contains(thing) && leased.contains("urn:dev:other.1"));
    b.release(other).await.unwrap();
    assert_eq!(a.leased(100).await.unwrap().len(), 1);

    // A clean stop releases at once.
    a.release(lease).await.unwrap();
    assert!(a.leased(100).await.unwrap().is_empty());
    assert_eq!(b.holder_of(thing).await.unwrap(), None);
    let mut taken = b.claim(thing).await.unwrap().expect("released");
    assert_eq!(b.renew(&mut taken).await.unwrap(), LeaseStatus::Held);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_holder_that_stops_renewing_is_taken_over_after_the_lease_time() {
    let server = NatsServer::start();
    let a = leases(&server, "collector-a").await;
    let b = leases(&server, "collector-b").await;

    let thing = "urn:dev:pump";
    let claimed = Instant::now();
    let mut stale = a.claim(thing).await.unwrap().expect("free");
    // `a` stops renewing (it hangs, or died). `b` tries every 100 ms.
    let mut taken = None;
    while claimed.elapsed() < Duration::from_secs(5) {
        if let Some(lease) = b.claim(thing).await.unwrap() {
            taken = Some(lease);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = taken.expect("taken over within 5 s");
    let after = claimed.elapsed();
    assert!(
        after >= TTL - Duration::from_millis(50),
        "taken over after {after:?}, before the lease time"
    );
    assert_eq!(
        b.holder_of(thing).await.unwrap().as_deref(),
        Some("collector-b")
    );

    // The old holder finds out at its next renewal, and its release does not free the
    // Thing it no longer holds.
    assert_eq!(a.renew(&mut stale).await.unwrap(), LeaseStatus::Lost);
    a.release(stale).await.unwrap();
    assert_eq!(
        b.holder_of(thing).await.unwrap().as_deref(),
        Some("collector-b")
    );
    b.release(taken).await.unwrap();
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn an_expired_lease_is_lost_even_when_nobody_took_it() {
    let server = NatsServer::start();
    let a = leases(&server, "collector-a").await;
    let mut lease = a.claim("t").await.unwrap().unwrap();
    // Wait until the key is gone.
    let start = Instant::now();
    while a.holder_of("t").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the key did not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.renew(&mut lease).await.unwrap(), LeaseStatus::Lost);
    assert!(
        a.leased(100).await.unwrap().is_empty(),
        "an expired lease is not listed"
    );
    // Claiming again works.
    assert!(a.claim("t").await.unwrap().is_some());
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn hostile_ids_and_settings() {
    let server = NatsServer::start();
    let a = leases(&server, "collector-a").await;
    for thing in ["a.b", "*", ">", "a b\t\r\n\0", "", "=3D", "é~"] {
        let lease = a.claim(thing).await.unwrap().expect(thing);
        assert_eq!(
            a.holder_of(thing).await.unwrap().as_deref(),
            Some("collector-a")
        );
        a.release(lease).await.unwrap();
    }
    let long = "x".repeat(10 * 1024);
    assert_eq!(a.claim(&long).await.unwrap_err().kind(), ErrorKind::TooLong);
    // A fleet member with another lease time is refused, not silently mixed in.
    let other = Leases::builder()
        .ttl(Duration::from_secs(30))
        .open(server.client().await, "collector-c")
        .await
        .unwrap_err();
    assert_eq!(other.kind(), ErrorKind::KeyValue);
    assert!(other.to_string().contains("max age"), "{other}");
    for (builder, holder) in [
        (Leases::builder(), ""),
        (Leases::builder().ttl(Duration::from_millis(10)), "x"),
        (Leases::builder().bucket("a.b"), "x"),
    ] {
        let error = builder
            .open(server.client().await, holder)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
    }
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn collectors_announce_themselves_until_they_stop() {
    let server = NatsServer::start();
    let a = leases(&server, "collector-a").await;
    let b = leases(&server, "collector b.1").await;
    assert!(a.members().await.unwrap().is_empty());
    a.announce().await.unwrap();
    b.announce().await.unwrap();
    b.announce().await.unwrap();
    assert_eq!(a.members().await.unwrap(), ["collector b.1", "collector-a"]);
    // A clean stop withdraws at once; a collector that stops announcing is gone after the
    // lease time.
    b.withdraw().await.unwrap();
    assert_eq!(a.members().await.unwrap(), ["collector-a"]);
    let start = Instant::now();
    while !a.members().await.unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "still a member");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(start.elapsed() >= TTL / 2);
}
