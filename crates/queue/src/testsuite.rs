//! The behaviour every [`JobStore`] must show, run against each implementation by
//! [`job_store_suite!`](crate::job_store_suite). Time moves only through the [`ManualClock`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use wa2crm_core::{MediaEvent, MediaKind, MediaRef, Phone, Source};

use crate::{Checkpoint, Clock, Enqueued, JobState, JobStore, ManualClock, QueueError, Step};

mod console;
pub use console::*;

const LEASE: Duration = Duration::from_secs(30);

/// Generates one `#[tokio::test]` per suite case; `$factory` is an async fn returning
/// `(Arc<dyn JobStore>, Arc<ManualClock>)`, a fresh empty store each call.
#[macro_export]
macro_rules! job_store_suite {
    ($factory:path) => {
        $crate::job_store_suite!(@cases $factory;
            enqueue_inserts_once_and_reports_duplicates,
            concurrent_enqueue_of_one_message_inserts_one_job,
            claim_leases_jobs_to_one_owner,
            expired_lease_is_taken_over_and_old_owner_is_refused,
            heartbeat_keeps_the_lease,
            complete_finishes_the_job,
            fail_schedules_a_retry,
            dead_letter_and_replay,
            counts_by_state,
            checkpoints_are_kept_across_retries,
            concurrent_claims_never_share_a_job,
            event_round_trips_unchanged,
            connector_state_is_kept_per_scope,
            shared_turns_are_paced_and_held,
            a_state_lock_is_held_by_one_at_a_time,
            jobs_are_found_by_sender_and_by_age_until_removed,
            a_worker_taking_back_its_own_job_cannot_use_the_old_lease,
            fenced_jobs_are_claimed_by_nobody_and_their_holder_lets_go,
            a_job_whose_process_died_every_time_is_dead_lettered,
            dead_letters_are_listed_and_replayed_by_connector_and_reason,
            media_jobs_are_filtered_and_paged_newest_first,
            finished_jobs_and_the_audit_log_are_read_back
        );
    };
    (@cases $factory:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, clock) = $factory().await;
                $crate::testsuite::$case(store, clock).await;
            }
        )*
    };
}

pub fn event(source: Source, message_id: &str) -> MediaEvent {
    MediaEvent {
        source,
        message_id: message_id.to_owned(),
        phone_number_id: "106540352242922".into(),
        sender: Phone::parse("+16505551234").unwrap(),
        sender_name: Some("Sheena Nelson".into()),
        kind: MediaKind::Voice,
        mime_type: Some("audio/ogg; codecs=opus".into()),
        sha256: Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=".into()),
        caption: Some("Grüße 👋".into()),
        file_name: None,
        timestamp: OffsetDateTime::from_unix_timestamp(1_749_416_383).unwrap(),
        media: MediaRef::GraphMedia {
            media_id: format!("media-{message_id}"),
            url: None,
        },
    }
}

pub async fn enqueue_inserts_once_and_reports_duplicates(
    store: Arc<dyn JobStore>,
    _: Arc<ManualClock>,
) {
    let a = event(Source::Meta, "wamid.a");
    let b = event(Source::Meta, "wamid.b");
    let first = store.enqueue(&[a.clone(), b.clone()]).await.unwrap();
    assert!(
        matches!(first[..], [Enqueued::Inserted(_), Enqueued::Inserted(_)]),
        "{first:?}"
    );
    let again = store.enqueue(&[b.clone(), a.clone()]).await.unwrap();
    assert_eq!(again, vec![Enqueued::Duplicate, Enqueued::Duplicate]);
    // The same message id from another source is another job.
    let other = store
        .enqueue(&[event(Source::D360, "wamid.a")])
        .await
        .unwrap();
    assert!(matches!(other[..], [Enqueued::Inserted(_)]));
    // A duplicate inside one batch is added once.
    let c = event(Source::Meta, "wamid.c");
    let within = store.enqueue(&[c.clone(), c]).await.unwrap();
    assert!(
        matches!(within[..], [Enqueued::Inserted(_), Enqueued::Duplicate]),
        "{within:?}"
    );
    assert_eq!(store.counts().await.unwrap().queued, 4);
    assert!(store.enqueue(&[]).await.unwrap().is_empty());
}

pub async fn concurrent_enqueue_of_one_message_inserts_one_job(
    store: Arc<dyn JobStore>,
    _: Arc<ManualClock>,
) {
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Each racer also carries a message of its own, so transactions overlap for real.
            let mine = event(Source::Meta, &format!("wamid.own{i}"));
            store
                .enqueue(&[event(Source::Meta, "wamid.race"), mine])
                .await
                .unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r[1], Enqueued::Inserted(_)));
        if matches!(r[0], Enqueued::Inserted(_)) {
            inserted += 1;
        }
    }
    assert_eq!(
        inserted, 1,
        "exactly one racer may insert the shared message"
    );
    assert_eq!(store.counts().await.unwrap().queued, 25);
}

pub async fn claim_leases_jobs_to_one_owner(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    for i in 0..3 {
        store
            .enqueue(&[event(Source::Meta, &format!("wamid.{i}"))])
            .await
            .unwrap();
    }
    let got = store.claim("w1", LEASE, 2).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|j| j.owner.starts_with("w1~") && j.attempts == 1)
    );
    assert_eq!(got[0].event.message_id, "wamid.0", "oldest first");
    let rest = store.claim("w2", LEASE, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event.message_id, "wamid.2");
    assert!(store.claim("w3", LEASE, 10).await.unwrap().is_empty());
    let info = store.get(got[0].id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Running);
    assert_eq!(info.lease_owner.as_deref(), Some(got[0].owner.as_str()));
}

pub async fn expired_lease_is_taken_over_and_old_owner_is_refused(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[event(Source::Meta, "wamid.x")])
        .await
        .unwrap();
    let job = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        store.claim("w2", LEASE, 1).await.unwrap().is_empty(),
        "lease still valid"
    );
    clock.advance(Duration::from_secs(2));
    let taken = store.claim("w2", LEASE, 1).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, job.id);
    assert_eq!(taken[0].attempts, 2);
    // The first worker comes back from a long pause: every write of its is refused.
    assert!(matches!(
        store.complete(job.id, &job.owner).await,
        Err(QueueError::LeaseLost(id)) if id == job.id
    ));
    assert!(matches!(
        store.heartbeat(job.id, &job.owner, LEASE).await,
        Err(QueueError::LeaseLost(_))
    ));
    assert!(matches!(
        store
            .checkpoint(
                job.id,
                &job.owner,
                Checkpoint::new(Step::Resolve, &json!({}))
            )
            .await,
        Err(QueueError::LeaseLost(_))
    ));
    assert!(matches!(
        store.fail(job.id, &job.owner, "x", 0).await,
        Err(QueueError::LeaseLost(_))
    ));
    assert!(matches!(
        store.dead_letter(job.id, &job.owner, "x").await,
        Err(QueueError::LeaseLost(_))
    ));
    store.complete(job.id, &taken[0].owner).await.unwrap();
}

pub async fn heartbeat_keeps_the_lease(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    store
        .enqueue(&[event(Source::Meta, "wamid.hb")])
        .await
        .unwrap();
    let job = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    for _ in 0..5 {
        clock.advance(LEASE / 2);
        store.heartbeat(job.id, &job.owner, LEASE).await.unwrap();
        assert!(store.claim("w2", LEASE, 1).await.unwrap().is_empty());
    }
    let info = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(info.lease_owner.as_deref(), Some(job.owner.as_str()));
    assert!(info.lease_until_ms.unwrap() > clock_now(&clock));
}

fn clock_now(clock: &ManualClock) -> i64 {
    crate::Clock::now_ms(clock)
}

pub async fn complete_finishes_the_job(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    store
        .enqueue(&[event(Source::Meta, "wamid.c")])
        .await
        .unwrap();
    let job = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    store.complete(job.id, &job.owner).await.unwrap();
    let info = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Done);
    assert_eq!(info.lease_owner, None);
    clock.advance(LEASE * 10);
    assert!(
        store.claim("w2", LEASE, 10).await.unwrap().is_empty(),
        "done is never claimed"
    );
    assert!(matches!(
        store.complete(job.id, &job.owner).await,
        Err(QueueError::LeaseLost(_))
    ));
    // A redelivered webhook after completion still adds nothing.
    assert_eq!(
        store
            .enqueue(&[event(Source::Meta, "wamid.c")])
            .await
            .unwrap(),
        vec![Enqueued::Duplicate]
    );
}

pub async fn fail_schedules_a_retry(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    store
        .enqueue(&[event(Source::Meta, "wamid.f")])
        .await
        .unwrap();
    let job = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    let retry_at = clock_now(&clock) + 60_000;
    store
        .fail(
            job.id,
            &job.owner,
            "graph api 503: Service Unavailable",
            retry_at,
        )
        .await
        .unwrap();
    let info = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.next_attempt_at_ms, retry_at);
    assert_eq!(
        info.last_error.as_deref(),
        Some("graph api 503: Service Unavailable")
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.queued, counts.retrying), (1, 1));
    clock.advance(Duration::from_secs(59));
    assert!(
        store.claim("w2", LEASE, 1).await.unwrap().is_empty(),
        "not before retry time"
    );
    clock.advance(Duration::from_secs(1));
    let again = store.claim("w2", LEASE, 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
}

pub async fn dead_letter_and_replay(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    store
        .enqueue(&[
            event(Source::Meta, "wamid.d1"),
            event(Source::Meta, "wamid.d2"),
        ])
        .await
        .unwrap();
    let jobs = store.claim("w1", LEASE, 2).await.unwrap();
    let reason = "too large: 120000000 bytes > limit 104857600 (raise media.max_bytes)";
    store
        .dead_letter(jobs[0].id, &jobs[0].owner, reason)
        .await
        .unwrap();
    store
        .dead_letter(
            jobs[1].id,
            &jobs[1].owner,
            "HubSpot: property wa_media_url does not exist",
        )
        .await
        .unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2);
    let d1 = dead.iter().find(|d| d.id == jobs[0].id).unwrap();
    assert_eq!(d1.reason, reason);
    assert_eq!(d1.message_id, "wamid.d1");
    assert_eq!(d1.source, "meta");
    assert_eq!(d1.attempts, 1);
    assert_eq!(store.dead_letters(1).await.unwrap().len(), 1);
    assert!(
        store.claim("w2", LEASE, 10).await.unwrap().is_empty(),
        "dead is never claimed"
    );

    assert!(store.replay(jobs[0].id).await.unwrap());
    assert!(
        !store.replay(jobs[0].id).await.unwrap(),
        "only dead jobs replay"
    );
    let info = store.get(jobs[0].id).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.attempts, info.dead_reason),
        (JobState::Queued, 0, None)
    );
    assert_eq!(store.replay_all_dead().await.unwrap(), 1);
    assert_eq!(store.counts().await.unwrap().dead, 0);
    assert_eq!(store.claim("w2", LEASE, 10).await.unwrap().len(), 2);
    assert!(!store.replay(987_654).await.unwrap());
}

pub async fn counts_by_state(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    assert_eq!(store.counts().await.unwrap().oldest_waiting_ms, None);
    let first_arrival = clock.now_ms();
    let events: Vec<_> = (0..6)
        .map(|i| event(Source::Meta, &format!("wamid.n{i}")))
        .collect();
    store.enqueue(&events).await.unwrap();
    clock.advance(Duration::from_secs(60));
    store
        .enqueue(&[event(Source::Meta, "wamid.later")])
        .await
        .unwrap();
    let jobs = store.claim("w", LEASE, 4).await.unwrap();
    store.complete(jobs[0].id, &jobs[0].owner).await.unwrap();
    store
        .dead_letter(jobs[1].id, &jobs[1].owner, "x")
        .await
        .unwrap();
    store
        .fail(jobs[2].id, &jobs[2].owner, "x", i64::MAX)
        .await
        .unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!(
        (c.queued, c.running, c.done, c.dead, c.retrying),
        (4, 1, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.get(JobState::Running), 1);
    assert_eq!(
        c.oldest_waiting_ms,
        Some(first_arrival),
        "the backlog is as old as its oldest unfinished job"
    );
}

pub async fn checkpoints_are_kept_across_retries(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[event(Source::Meta, "wamid.cp")])
        .await
        .unwrap();
    let job = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    assert!(job.checkpoints.is_empty());
    let resolved = json!({"url": "https://lookaside.fbsbx.com/x", "file_size": 303833});
    store
        .checkpoint(
            job.id,
            &job.owner,
            Checkpoint::new(Step::Resolve, &resolved),
        )
        .await
        .unwrap();
    store
        .checkpoint(
            job.id,
            &job.owner,
            Checkpoint::new(Step::Fetch, &json!({"sha256": "ab", "bytes": 12})),
        )
        .await
        .unwrap();
    store
        .checkpoint(
            job.id,
            &job.owner,
            Checkpoint::new(Step::Fetch, &json!({"sha256": "cd", "bytes": 13})),
        )
        .await
        .unwrap();
    store
        .fail(job.id, &job.owner, "storage down", clock_now(&clock))
        .await
        .unwrap();
    let again = store.claim("w2", LEASE, 1).await.unwrap().remove(0);
    let steps: BTreeSet<_> = again.checkpoints.keys().cloned().collect();
    assert_eq!(
        steps,
        BTreeSet::from(["fetch".to_string(), "resolve".to_string()])
    );
    assert_eq!(again.checkpoints["resolve"], resolved);
    assert_eq!(
        again.checkpoints["fetch"]["sha256"], "cd",
        "a step's newer result wins"
    );
}

pub async fn concurrent_claims_never_share_a_job(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    let events: Vec<_> = (0..60)
        .map(|i| event(Source::Meta, &format!("wamid.p{i}")))
        .collect();
    store.enqueue(&events).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let got = store.claim(&owner, LEASE, 3).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for j in got {
                    store.complete(j.id, &j.owner).await.unwrap();
                    mine.push(j.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every job claimed exactly once");
    assert_eq!(unique.len(), 60);
    assert_eq!(store.counts().await.unwrap().done, 60);
}

pub async fn event_round_trips_unchanged(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    let e = event(Source::Twilio, "MM123-0");
    let id = match store.enqueue(std::slice::from_ref(&e)).await.unwrap()[0] {
        Enqueued::Inserted(id) => id,
        Enqueued::Duplicate => panic!("fresh store"),
    };
    let info = store.find("twilio", "MM123-0").await.unwrap().unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.event, e);
    assert!(store.find("twilio", "nope").await.unwrap().is_none());
    let job = store.claim("w", LEASE, 1).await.unwrap().remove(0);
    assert_eq!(job.event, e);
}

pub async fn connector_state_is_kept_per_scope(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    let state: Arc<dyn wa2crm_core::StateStore> = store;
    assert_eq!(
        state.get_state("hubspot", "refresh_token").await.unwrap(),
        None
    );
    state
        .put_state("hubspot", "refresh_token", "r1")
        .await
        .unwrap();
    state
        .put_state("hubspot", "refresh_token", "r2")
        .await
        .unwrap();
    state
        .put_state("hubspot", "pause_reason", "daily")
        .await
        .unwrap();
    state
        .put_state("other", "refresh_token", "x")
        .await
        .unwrap();
    assert_eq!(
        state
            .get_state("hubspot", "refresh_token")
            .await
            .unwrap()
            .as_deref(),
        Some("r2")
    );
    let all = state.scan_state("hubspot").await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all["pause_reason"], "daily");
    state.delete_state("hubspot", "pause_reason").await.unwrap();
    assert_eq!(
        state.get_state("hubspot", "pause_reason").await.unwrap(),
        None
    );
    assert_eq!(
        state
            .get_state("other", "refresh_token")
            .await
            .unwrap()
            .as_deref(),
        Some("x")
    );
}

pub async fn shared_turns_are_paced_and_held(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) {
    let state: Arc<dyn wa2crm_core::StateStore> = store;
    let spacing = Duration::from_millis(100);
    // Many callers at once (instances, lanes): each gets its own turn, 100 ms apart.
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { state.take_turn("hubspot", "turn", spacing).await })
        })
        .collect();
    let mut waits = Vec::new();
    for c in callers {
        waits.push(c.await.unwrap().unwrap().as_millis() as u64);
    }
    waits.sort_unstable();
    assert_eq!(waits, vec![0, 100, 200, 300, 400]);
    // Time passes: the pace does not bank unused turns.
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        state.take_turn("hubspot", "turn", spacing).await.unwrap(),
        Duration::ZERO
    );
    // A vendor's "wait 2 s" holds every instance's next turn.
    state
        .hold_turns("hubspot", "turn", clock.now_ms() + 2_000)
        .await
        .unwrap();
    assert_eq!(
        state.take_turn("hubspot", "turn", spacing).await.unwrap(),
        Duration::from_millis(2_000)
    );
    assert_eq!(
        state
            .take_turn("salesforce", "turn", spacing)
            .await
            .unwrap(),
        Duration::ZERO,
        "paces are per scope"
    );
}

pub async fn a_state_lock_is_held_by_one_at_a_time(store: Arc<dyn JobStore>, _: Arc<ManualClock>) {
    let state: Arc<dyn wa2crm_core::StateStore> = store;
    let first = state.lock("hubspot", "token_refresh").await.unwrap();
    let other = state.clone();
    let mut second = tokio::spawn(async move { other.lock("hubspot", "token_refresh").await });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "the second caller got the lock while the first held it"
    );
    let unrelated = state.lock("hubspot", "other").await;
    assert!(unrelated.is_ok(), "locks are by name");
    drop(first);
    let taken = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("released when the first guard is dropped")
        .unwrap();
    assert!(taken.is_ok());
}

pub async fn jobs_are_found_by_sender_and_by_age_until_removed(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let mut other = event(Source::Twilio, "SM1-0");
    other.sender = Phone::parse("+4915123456789").unwrap();
    store
        .enqueue(&[event(Source::Meta, "wamid.old"), other.clone()])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    let cutoff = clock_now(&clock);
    store
        .enqueue(&[event(Source::Meta, "wamid.new")])
        .await
        .unwrap();
    let ids =
        |jobs: Vec<crate::JobInfo>| jobs.into_iter().map(|j| j.message_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.jobs_of_sender("+16505551234").await.unwrap()),
        ["wamid.old", "wamid.new"]
    );
    assert_eq!(
        ids(store.jobs_of_sender("+4915123456789").await.unwrap()),
        ["SM1-0"]
    );
    assert!(store.jobs_of_sender("+1").await.unwrap().is_empty());
    let all = store.jobs_after(0, 10).await.unwrap();
    assert_eq!(ids(all.clone()), ["wamid.old", "SM1-0", "wamid.new"]);
    assert_eq!(
        ids(store.jobs_after(all[0].id, 1).await.unwrap()),
        ["SM1-0"],
        "after an id, in order, at most the limit"
    );
    assert!(store.jobs_after(all[2].id, 10).await.unwrap().is_empty());

    assert!(
        store
            .unremoved_before(MediaKind::Voice, cutoff, 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "only finished jobs have media to remove"
    );
    for job in store.claim("w", LEASE, 10).await.unwrap() {
        store.complete(job.id, &job.owner).await.unwrap();
    }
    assert!(
        store
            .unremoved_before(MediaKind::Image, cutoff, 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "one kind at a time"
    );
    let old = store
        .unremoved_before(MediaKind::Voice, cutoff, 0, 10)
        .await
        .unwrap();
    assert_eq!(ids(old.clone()), ["wamid.old", "SM1-0"]);
    assert_eq!(
        ids(store
            .unremoved_before(MediaKind::Voice, cutoff, old[0].id, 1)
            .await
            .unwrap()),
        ["SM1-0"],
        "paged by id"
    );

    assert_eq!(
        store.done_breakdown().await.unwrap(),
        crate::DoneBreakdown {
            not_taken: 0,
            removed: 0
        }
    );
    // Who holds a stored object: the jobs whose store checkpoint names it, until removed.
    assert!(
        store
            .holders_of("2026/11/22/abc.ogg")
            .await
            .unwrap()
            .is_empty()
    );
    store
        .enqueue(&[
            event(Source::Meta, "wamid.k1"),
            event(Source::Meta, "wamid.k2"),
        ])
        .await
        .unwrap();
    let same_file = store.claim("w", LEASE, 10).await.unwrap();
    for job in &same_file {
        store
            .checkpoint(
                job.id,
                &job.owner,
                Checkpoint::new(Step::Store, &json!({"key": "2026/11/22/abc.ogg"}))
                    .media_key("2026/11/22/abc.ogg"),
            )
            .await
            .unwrap();
        store.complete(job.id, &job.owner).await.unwrap();
    }
    let holders = store.holders_of("2026/11/22/abc.ogg").await.unwrap();
    assert_eq!(holders, same_file.iter().map(|j| j.id).collect::<Vec<_>>());
    let tombstone =
        std::collections::BTreeMap::from([(Step::Removed.as_str().to_owned(), json!({}))]);
    store
        .mark_removed(holders[0], &same_file[0].event, &tombstone)
        .await
        .unwrap();
    store.purge_removed().await.unwrap();
    assert_eq!(
        store.holders_of("2026/11/22/abc.ogg").await.unwrap(),
        vec![holders[1]]
    );

    let mut redacted = old[0].event.clone();
    redacted.sender_name = None;
    redacted.caption = None;
    let left = std::collections::BTreeMap::from([(
        Step::Removed.as_str().to_owned(),
        json!({"why": "test"}),
    )]);
    store
        .mark_removed(old[0].id, &redacted, &left)
        .await
        .unwrap();
    let info = store.get(old[0].id).await.unwrap().unwrap();
    assert_eq!(info.event, redacted);
    assert_eq!(info.checkpoints, left);
    assert_eq!(info.removed_at_ms, Some(clock_now(&clock)));
    assert_eq!(
        ids(store
            .unremoved_before(MediaKind::Voice, cutoff, 0, 10)
            .await
            .unwrap()),
        ["SM1-0"]
    );
    // Still found by sender (erasure runs twice harmlessly) and still a duplicate when redelivered.
    assert_eq!(
        store.jobs_of_sender("+16505551234").await.unwrap().len(),
        4,
        "two more since"
    );
    assert_eq!(
        store
            .enqueue(&[event(Source::Meta, "wamid.old")])
            .await
            .unwrap(),
        vec![Enqueued::Duplicate]
    );

    // A job removed while a worker holds it: the worker's next write is refused.
    store
        .enqueue(&[event(Source::Meta, "wamid.busy")])
        .await
        .unwrap();
    let busy = store.claim("w", LEASE, 1).await.unwrap().remove(0);
    store
        .mark_removed(busy.id, &busy.event, &left)
        .await
        .unwrap();
    assert!(matches!(
        store
            .checkpoint(
                busy.id,
                &busy.owner,
                Checkpoint::new(Step::Store, &json!({}))
            )
            .await,
        Err(QueueError::LeaseLost(_))
    ));
    assert_eq!(
        store.get(busy.id).await.unwrap().unwrap().state,
        JobState::Done
    );

    // A job skipped for lack of consent counts as not taken.
    store
        .enqueue(&[event(Source::Meta, "wamid.nc")])
        .await
        .unwrap();
    let skipped = store.claim("w", LEASE, 1).await.unwrap().remove(0);
    store
        .checkpoint(
            skipped.id,
            &skipped.owner,
            Checkpoint::new(Step::Consent, &json!({"given": false, "by": "allowlist"}))
                .consent(false),
        )
        .await
        .unwrap();
    store.complete(skipped.id, &skipped.owner).await.unwrap();
    assert_eq!(
        store.done_breakdown().await.unwrap(),
        crate::DoneBreakdown {
            not_taken: 1,
            removed: 3
        }
    );
}

pub async fn a_worker_taking_back_its_own_job_cannot_use_the_old_lease(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[event(Source::Meta, "wamid.own")])
        .await
        .unwrap();
    let first = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    clock.advance(LEASE + Duration::from_secs(1));
    // The same worker name claims it again (a restart, a stalled task): a new lease.
    let second = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    assert_eq!(second.id, first.id);
    assert_ne!(second.owner, first.owner, "each claim has its own token");
    assert!(matches!(
        store
            .checkpoint(
                first.id,
                &first.owner,
                Checkpoint::new(Step::Resolve, &json!({}))
            )
            .await,
        Err(QueueError::LeaseLost(_))
    ));
    assert!(matches!(
        store.complete(first.id, &first.owner).await,
        Err(QueueError::LeaseLost(_))
    ));
    store.complete(second.id, &second.owner).await.unwrap();
}

pub async fn fenced_jobs_are_claimed_by_nobody_and_their_holder_lets_go(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[
            event(Source::Meta, "wamid.f1"),
            event(Source::Meta, "wamid.f2"),
            event(Source::Meta, "wamid.f3"),
        ])
        .await
        .unwrap();
    let running = store.claim("w1", LEASE, 1).await.unwrap().remove(0);
    let all: Vec<i64> = store
        .jobs_of_sender("+16505551234")
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all.len(), 3);
    let other = *all.iter().find(|id| **id != running.id).unwrap();
    store.fence(&[running.id, other]).await.unwrap();
    store.fence(&[running.id]).await.unwrap(); // twice is harmless
    let mut fenced = store.fenced(&all).await.unwrap();
    fenced.sort();
    let mut expected = vec![running.id, other];
    expected.sort();
    assert_eq!(fenced, expected);
    assert_eq!(store.held(&all).await.unwrap(), vec![running.id]);
    // Only the unfenced job is claimed, now or after every lease ran out.
    clock.advance(LEASE + Duration::from_secs(1));
    let claimed = store.claim("w2", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(!fenced.contains(&claimed[0].id));
    // The holder still records what it did (erasure must learn of it), then lets go.
    store
        .checkpoint(
            running.id,
            &running.owner,
            Checkpoint::new(Step::Store, &json!({"key": "k"})).media_key("k"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}: a lease that ran out is refused, as any"));
    store.release(running.id, &running.owner).await.unwrap();
    assert!(store.held(&all).await.unwrap().contains(&claimed[0].id));
    assert!(!store.held(&all).await.unwrap().contains(&running.id));
    assert!(store.claim("w3", LEASE, 10).await.unwrap().is_empty());
}

pub async fn a_job_whose_process_died_every_time_is_dead_lettered(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[event(Source::Meta, "wamid.crash")])
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(store.bury_abandoned(3, "died").await.unwrap(), 0);
        let job = store.claim("w", LEASE, 1).await.unwrap();
        assert_eq!(job.len(), 1, "claimed again after each death");
        clock.advance(LEASE + Duration::from_secs(1));
    }
    assert_eq!(
        store
            .bury_abandoned(3, "the process handling it died 3 times")
            .await
            .unwrap(),
        1
    );
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "the process handling it died 3 times");
    assert!(store.claim("w", LEASE, 1).await.unwrap().is_empty());
}

/// The migrations of `backend` (`sqlite`, `postgres`) before the queue kept its own columns
/// (0001–0004), copied into `dir`: to make a database as older versions left it.
pub fn migrations_before_real_columns(backend: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let older = dir.join(format!("older-migrations-{backend}"));
    std::fs::create_dir_all(&older).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0005" {
            std::fs::copy(entry.path(), older.join(&name)).unwrap();
        }
    }
    older
}

/// Done jobs as an older version wrote them: (message id, event JSON, checkpoints JSON).
pub fn older_rows() -> Vec<(&'static str, String, &'static str)> {
    [
        (
            "wamid.stored",
            r#"{"store": {"key": "2026/11/22/abc.ogg"}}"#,
        ),
        (
            "wamid.refused",
            r#"{"consent": {"given": false, "by": "allowlist"}}"#,
        ),
        (
            "wamid.given",
            r#"{"consent": {"given": true, "by": "allowlist"}}"#,
        ),
        ("wamid.none", "{}"),
        ("wamid.tagged", r#"{"tags": ["urgent", "vip", 7]}"#),
        ("wamid.odd_tags", r#"{"tags": {"urgent": true}}"#),
    ]
    .into_iter()
    .map(|(id, checkpoints)| {
        let event = serde_json::to_string(&event(Source::Meta, id)).unwrap();
        (id, event, checkpoints)
    })
    .collect()
}

/// Once migrated, the [`older_rows`] have their columns and tag rows: erasure finds the stored
/// object's holders, `status` counts the job consent turned away, and the console's tag filter
/// finds the tagged job by each of its tags (and a checkpoint of another shape by none).
pub async fn assert_older_columns_filled(store: &dyn JobStore) {
    let stored = store.find("meta", "wamid.stored").await.unwrap().unwrap();
    assert_eq!(
        store.holders_of("2026/11/22/abc.ogg").await.unwrap(),
        vec![stored.id]
    );
    assert_eq!(store.done_breakdown().await.unwrap().not_taken, 1);
    for (tag, found) in [("urgent", true), ("vip", true), ("7", false)] {
        let filter = crate::MediaFilter {
            tag: Some(tag.into()),
            ..Default::default()
        };
        let ids: Vec<String> = store
            .media_jobs(&filter, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.message_id)
            .collect();
        let expected: &[&str] = if found { &["wamid.tagged"] } else { &[] };
        assert_eq!(ids, expected, "tag {tag}");
    }
}
