//! Rate limits, 5xx, calls never answered, the daily quota.

use super::*;

#[tokio::test]
async fn secondly_429s_and_5xx_are_waited_out_and_the_batch_lands() {
    let s = provisioned(json!({})).await;
    s.sim.inject([
        Fault::RateLimit("SECONDLY"),
        Fault::Status(502),
        Fault::RateLimit("SECONDLY"),
        Fault::Status(500),
    ]);
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(s.sim.find("notes", "wa_message_id", "wamid.1").is_some());
}

#[tokio::test]
async fn calls_hubspot_never_answers_are_abandoned_at_the_timeout_and_replayed_once() {
    let s = provisioned(json!({"timeout_seconds": 1})).await;
    // Each call is carried out and left unanswered: the contact upsert, then the note upsert.
    s.sim.inject([Fault::Hang, Fault::Hang]);
    let start = std::time::Instant::now();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(s.sim.counts().hung, 2);
    // Replaying what was done already doubled nothing.
    assert_eq!(s.sim.records("notes").len(), 1);
    assert_eq!(s.sim.records("contacts").len(), 1);
}

#[tokio::test]
async fn a_ten_secondly_429_holds_every_request_for_the_window() {
    let s = provisioned(json!({})).await;
    s.sim.inject([Fault::RateLimit("TEN_SECONDLY_ROLLING")]);
    let start = std::time::Instant::now();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(
        start.elapsed() >= Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_daily_limit_and_the_reserve_pause_until_the_portals_midnight() {
    let s = provisioned(json!({"daily_reserve": 0.1})).await;
    s.sim.set_daily_used(250_000 - 25_000 - 8);
    // Deliveries go on until a call leaves no more than 10 % of the day's calls; then the
    // connector stops before the reserve, within a delivery or two.
    let mut failure = None;
    for i in 0..4 {
        if let Err(e) =
            s.hs.deliver(&[record(&format!("wamid.{i}"), "+14155550123")])
                .await
                .remove(0)
        {
            failure = Some(e);
            break;
        }
    }
    let e = failure.expect("the reserve stops deliveries");
    assert!(
        e.message().contains("reserved for its other integrations"),
        "{e}"
    );
    assert!(e.message().contains("(UTC+00:00)"), "{e}");
    let before = s.sim.counts().total_calls();
    s.hs.deliver(&[record("wamid.9", "+14155550123")])
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(
        s.sim.counts().total_calls(),
        before,
        "paused: no call at all"
    );
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(86_400),
        "{wait:?}"
    );
    let until = s
        .state
        .get_state("hs", keys::PAUSED_UNTIL_MS)
        .await
        .unwrap();
    assert!(until.is_some());

    let s = provisioned(json!({"daily_reserve": 0.0})).await;
    s.sim.inject([Fault::RateLimit("DAILY")]);
    let e =
        s.hs.deliver(&[record("wamid.1", "+14155550123")])
            .await
            .remove(0)
            .unwrap_err();
    assert!(e.message().contains("daily API limit"), "{e}");
    assert!(matches!(
        e.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(_)
        }
    ));
}
