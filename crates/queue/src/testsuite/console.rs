//! What the console (daemon/src/console) asks of every store: filtered lists, the window of
//! finished jobs, the audit log.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wa2crm_core::{MediaKind, Phone, Source};

use super::{LEASE, event};
use crate::{
    AuditEntry, Checkpoint, Clock, DeadFilter, JobState, JobStore, ManualClock, MediaFilter,
    QueueError, Step,
};

pub async fn dead_letters_are_listed_and_replayed_by_connector_and_reason(
    store: Arc<dyn JobStore>,
    _: Arc<ManualClock>,
) {
    let events: Vec<_> = (0..4)
        .map(|i| event(Source::Meta, &format!("wamid.f{i}")))
        .collect();
    store.enqueue(&events).await.unwrap();
    let jobs = store.claim("w", LEASE, 4).await.unwrap();
    let reasons = [
        "hubspot: property wa_media_url does not exist",
        "hubspot: the token was revoked",
        "salesforce: FIELD_CUSTOM_VALIDATION_EXCEPTION on WhatsApp_Media__c",
        // A literal % and _ in the filter text match only themselves.
        "too large: 100% of media.max_bytes",
    ];
    for (job, reason) in jobs.iter().zip(reasons) {
        store.dead_letter(job.id, &job.owner, reason).await.unwrap();
    }
    let by = |connector: Option<&str>, reason: Option<&str>| DeadFilter {
        connector: connector.map(str::to_owned),
        reason: reason.map(str::to_owned),
    };
    let listed = |f: DeadFilter| {
        let store = store.clone();
        async move {
            let mut r: Vec<String> = store
                .dead_letters_where(&f, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.reason)
                .collect();
            r.sort();
            r
        }
    };
    assert_eq!(listed(by(Some("hubspot"), None)).await, reasons[..2]);
    assert_eq!(listed(by(None, Some("REVOKED"))).await, [reasons[1]]);
    assert_eq!(listed(by(Some("hub"), None)).await, Vec::<String>::new());
    assert_eq!(listed(by(None, Some("100%"))).await, [reasons[3]]);
    assert_eq!(
        listed(by(None, Some("_"))).await,
        [reasons[0], reasons[2], reasons[3]]
    );
    assert_eq!(listed(DeadFilter::default()).await.len(), 4);
    assert_eq!(
        store
            .dead_letters_where(&by(None, None), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let replayed = store
        .replay_dead_where(&by(Some("hubspot"), None))
        .await
        .unwrap();
    let mut expected = vec![jobs[0].id, jobs[1].id];
    expected.sort();
    let mut replayed_sorted = replayed.clone();
    replayed_sorted.sort();
    assert_eq!(replayed_sorted, expected);
    for id in replayed {
        let info = store.get(id).await.unwrap().unwrap();
        assert_eq!((info.state, info.attempts), (JobState::Queued, 0));
    }
    assert_eq!(store.counts().await.unwrap().dead, 2);
}

pub async fn media_jobs_are_filtered_and_paged_newest_first(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    let other = Phone::parse("+4915123456789").unwrap();
    let mut events = Vec::new();
    for i in 0..6 {
        let mut e = event(Source::Meta, &format!("wamid.m{i}"));
        if i % 2 == 1 {
            e.sender = other.clone();
            e.kind = MediaKind::Image;
        }
        events.push(e);
    }
    let start = clock.now_ms();
    for e in &events {
        store.enqueue(std::slice::from_ref(e)).await.unwrap();
        clock.advance(Duration::from_secs(60));
    }
    let jobs = store.claim("w", LEASE, 6).await.unwrap();
    // Tags are a JSON list; a caption or another step holding the same text is no tag.
    for job in &jobs {
        let tags = if job.event.message_id == "wamid.m2" {
            json!(["urgent", "50%_off"])
        } else {
            json!(["routine"])
        };
        store
            .checkpoint(job.id, &job.owner, Checkpoint::new(Step::Tags, &tags))
            .await
            .unwrap();
        store
            .checkpoint(
                job.id,
                &job.owner,
                Checkpoint::new(Step::Resolve, &json!({"note": "urgent"})),
            )
            .await
            .unwrap();
    }
    let ids = |f: MediaFilter, limit: usize| {
        let store = store.clone();
        async move {
            store
                .media_jobs(&f, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.message_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(MediaFilter::default(), 10).await,
        [
            "wamid.m5", "wamid.m4", "wamid.m3", "wamid.m2", "wamid.m1", "wamid.m0"
        ]
    );
    let of_other = MediaFilter {
        sender: Some(other.as_str().to_owned()),
        ..Default::default()
    };
    assert_eq!(
        ids(of_other.clone(), 10).await,
        ["wamid.m5", "wamid.m3", "wamid.m1"]
    );
    let page = store.media_jobs(&of_other, 2).await.unwrap();
    let next = MediaFilter {
        before_id: Some(page[1].id),
        ..of_other
    };
    assert_eq!(ids(next, 10).await, ["wamid.m1"]);
    let voice = MediaFilter {
        kind: Some(MediaKind::Voice),
        ..Default::default()
    };
    assert_eq!(ids(voice, 10).await, ["wamid.m4", "wamid.m2", "wamid.m0"]);
    for tag in ["urgent", "50%_off"] {
        let tagged = MediaFilter {
            tag: Some(tag.into()),
            ..Default::default()
        };
        assert_eq!(ids(tagged, 10).await, ["wamid.m2"], "tag {tag}");
    }
    let tagged = MediaFilter {
        tag: Some("urgen".into()),
        ..Default::default()
    };
    assert!(ids(tagged, 10).await.is_empty());
    // A tag pages, and combines with the other filters.
    let routine = MediaFilter {
        tag: Some("routine".into()),
        ..Default::default()
    };
    let page = store.media_jobs(&routine, 2).await.unwrap();
    let page: Vec<_> = page.into_iter().map(|j| (j.id, j.message_id)).collect();
    assert_eq!(
        page.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        ["wamid.m5", "wamid.m4"]
    );
    let next = MediaFilter {
        before_id: Some(page[1].0),
        ..routine.clone()
    };
    assert_eq!(ids(next, 10).await, ["wamid.m3", "wamid.m1", "wamid.m0"]);
    let routine_voice = MediaFilter {
        kind: Some(MediaKind::Voice),
        ..routine.clone()
    };
    assert_eq!(ids(routine_voice, 10).await, ["wamid.m4", "wamid.m0"]);
    let routine_window = MediaFilter {
        from_ms: Some(start + 60_000),
        until_ms: Some(start + 4 * 60_000),
        ..routine.clone()
    };
    assert_eq!(ids(routine_window, 10).await, ["wamid.m3", "wamid.m1"]);
    // With a sender, the list goes by the sender and each job's tag is looked up.
    let routine_of_other = MediaFilter {
        sender: Some(other.as_str().to_owned()),
        ..routine.clone()
    };
    assert_eq!(
        ids(routine_of_other.clone(), 10).await,
        ["wamid.m5", "wamid.m3", "wamid.m1"]
    );
    let urgent_of_other = MediaFilter {
        tag: Some("urgent".into()),
        ..routine_of_other
    };
    assert!(ids(urgent_of_other, 10).await.is_empty());
    // Tags written by a worker that lost the job are not kept, nor are the job's earlier ones
    // lost.
    let m0 = &jobs[0];
    let stale = store
        .checkpoint(
            m0.id,
            "not-the-owner",
            Checkpoint::new(Step::Tags, &json!(["stale"])),
        )
        .await;
    assert!(matches!(stale, Err(QueueError::LeaseLost(_))), "{stale:?}");
    let stale = MediaFilter {
        tag: Some("stale".into()),
        ..Default::default()
    };
    assert!(ids(stale, 10).await.is_empty());
    // Rewritten tags replace the earlier ones.
    store
        .checkpoint(
            m0.id,
            &m0.owner,
            Checkpoint::new(Step::Tags, &json!(["later", "later"])),
        )
        .await
        .unwrap();
    let later = MediaFilter {
        tag: Some("later".into()),
        ..Default::default()
    };
    assert_eq!(ids(later, 10).await, ["wamid.m0"]);
    assert_eq!(
        ids(routine.clone(), 10).await.last().map(String::as_str),
        Some("wamid.m1")
    );
    let window = MediaFilter {
        from_ms: Some(start + 60_000),
        until_ms: Some(start + 3 * 60_000),
        ..Default::default()
    };
    assert_eq!(ids(window, 10).await, ["wamid.m2", "wamid.m1"]);
    for (from_ms, until_ms) in [
        (Some(start + 3_600_000), None),
        (None, Some(start - 3_600_000)),
    ] {
        let outside = MediaFilter {
            from_ms,
            until_ms,
            ..Default::default()
        };
        assert!(ids(outside, 10).await.is_empty());
    }
    // Removed media is found by none of its tags.
    let m2 = jobs
        .iter()
        .find(|j| j.event.message_id == "wamid.m2")
        .unwrap();
    store
        .mark_removed(m2.id, &m2.event, &Default::default())
        .await
        .unwrap();
    let urgent = MediaFilter {
        tag: Some("urgent".into()),
        ..Default::default()
    };
    assert!(ids(urgent, 10).await.is_empty());
}

pub async fn finished_jobs_and_the_audit_log_are_read_back(
    store: Arc<dyn JobStore>,
    clock: Arc<ManualClock>,
) {
    store
        .enqueue(&[
            event(Source::Meta, "wamid.a1"),
            event(Source::Meta, "wamid.a2"),
        ])
        .await
        .unwrap();
    let arrived = clock.now_ms();
    let jobs = store.claim("w", LEASE, 2).await.unwrap();
    clock.advance(Duration::from_secs(3));
    store.complete(jobs[0].id, &jobs[0].owner).await.unwrap();
    // A job consent turned away ends without its media: no throughput, no delivery latency.
    let refused = json!({"given": false});
    store
        .checkpoint(
            jobs[1].id,
            &jobs[1].owner,
            Checkpoint::new(Step::Consent, &refused).consent(false),
        )
        .await
        .unwrap();
    store.complete(jobs[1].id, &jobs[1].owner).await.unwrap();
    assert_eq!(
        store.finished_since(arrived).await.unwrap(),
        [(arrived, arrived + 3000)]
    );
    assert!(
        store
            .finished_since(arrived + 3001)
            .await
            .unwrap()
            .is_empty()
    );

    for (i, subject) in ["17", "+1650…234", "17"].into_iter().enumerate() {
        store
            .audit(&AuditEntry {
                at_ms: arrived + i as i64,
                who: "alice".into(),
                action: "replay".into(),
                subject: subject.into(),
                detail: format!("entry {i}"),
            })
            .await
            .unwrap();
    }
    let all = store.audit_log(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
        ["entry 2", "entry 1", "entry 0"]
    );
    let of_job = store.audit_log(Some("17"), 1).await.unwrap();
    assert_eq!(of_job.len(), 1);
    assert_eq!(of_job[0].detail, "entry 2");
    assert_eq!(of_job[0].who, "alice");
}
