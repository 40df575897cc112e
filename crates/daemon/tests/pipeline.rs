//! The media steps of a job against the Graph API simulator, a real SQLite queue and file
//! storage: every sample end to end, then each failure the steps must survive. Time moves through
//! the queue's manual clock, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wa2crm::pipeline::{
    Allowlist, ConsentPolicy, Jobs, MediaSources, MediaSteps, Outcome, Pipeline, RetryPolicy,
    media_record, process_one,
};
use wa2crm_core::{MediaEvent, MediaKind, MediaRef, Phone, Source, TagRule, TagRules};
use wa2crm_media::link::{LinkSigner, Linked};
use wa2crm_media::spool::{Kept, Spool};
use wa2crm_media::store::Storage;
use wa2crm_queue::{Checkpoint, Clock, Enqueued, JobState, ManualClock, SqliteJobStore, Step};
use wa2crm_sandbox::graph::{Fault, GraphSim};
use wa2crm_sandbox::samples::{self, SampleMedia};
use wa2crm_whatsapp::media::GraphMedia;

const TOKEN: &str = "graph-token";

struct World {
    _dir: tempfile::TempDir,
    sim: GraphSim,
    clock: Arc<ManualClock>,
    pipeline: Pipeline,
    spool_root: std::path::PathBuf,
    media_root: std::path::PathBuf,
}

async fn world_with(max_bytes: u64) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let store = SqliteJobStore::open(
        &format!("sqlite://{}/queue.db", dir.path().display()),
        clock.clone() as Arc<dyn Clock>,
    )
    .await
    .unwrap();
    let sim = GraphSim::start(TOKEN).await.unwrap();
    let media_root = dir.path().join("media");
    let spool_root = dir.path().join("spool");
    let pipeline = Pipeline {
        jobs: Jobs {
            store: Arc::new(store),
            clock: clock.clone(),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(60),
            wake: Arc::new(Notify::new()),
            instance: "test".into(),
        },
        media: MediaSteps {
            sources: MediaSources {
                meta: Some(
                    GraphMedia::new(&sim.url(), "v21.0", SecretString::from(TOKEN)).unwrap(),
                ),
                ..Default::default()
            },
            spool: Spool::open(&spool_root, Kept::AsStored).unwrap(),
            storage: Arc::new(
                Storage::open(
                    &format!("file://{}", media_root.display()),
                    &BTreeMap::new(),
                )
                .unwrap(),
            ),
            links: LinkSigner::new(b"pipeline-test-link-secret"),
            public_url: "https://wa2crm.example.com".into(),
            max_bytes,
            tags: TagRules(vec![
                TagRule {
                    kinds: vec![MediaKind::Voice],
                    ..TagRule::named("voice-note")
                },
                TagRule {
                    min_duration: Some(Duration::from_secs(2)),
                    ..TagRule::named("long")
                },
            ]),
            consent: ConsentPolicy::Everyone,
            transcode: false,
        },
        notifier: None,
        delivery: Default::default(),
        deliveries: Arc::new(tokio::sync::Semaphore::new(100)),
        tasks: Default::default(),
    };
    World {
        _dir: dir,
        sim,
        clock,
        pipeline,
        spool_root,
        media_root,
    }
}

async fn world() -> World {
    world_with(100 * 1024 * 1024).await
}

fn event(
    message_id: &str,
    media_id: &str,
    sample: &SampleMedia,
    sha256: Option<String>,
) -> MediaEvent {
    MediaEvent {
        source: Source::Meta,
        message_id: message_id.into(),
        phone_number_id: "PN1".into(),
        sender: Phone::parse("+4915123456789").unwrap(),
        sender_name: Some("Jürgen".into()),
        kind: sample.kind,
        mime_type: Some(sample.mime_type.clone()),
        sha256,
        caption: None,
        file_name: None,
        timestamp: time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap(),
        media: MediaRef::GraphMedia {
            media_id: media_id.into(),
            url: None,
        },
    }
}

fn sample(file: &str) -> SampleMedia {
    samples::all().into_iter().find(|s| s.file == file).unwrap()
}

impl World {
    /// Registers `s` at the simulator and queues a job for it.
    async fn enqueue(&self, message_id: &str, s: &SampleMedia) -> i64 {
        let media_id = format!("m-{message_id}");
        let digest = self.sim.add_media(&media_id, s.bytes, &s.mime_type);
        let e = event(message_id, &media_id, s, Some(digest));
        match self.pipeline.jobs.store.enqueue(&[e]).await.unwrap()[0] {
            Enqueued::Inserted(id) => id,
            Enqueued::Duplicate => panic!("duplicate"),
        }
    }

    /// Claims the next due job and runs it.
    async fn run_next(&self) -> Outcome {
        let job = self
            .pipeline
            .jobs
            .store
            .claim("w", Duration::from_secs(60), 1)
            .await
            .unwrap()
            .pop()
            .expect("a due job");
        process_one(&self.pipeline, job, &CancellationToken::new()).await
    }

    fn spool_files(&self) -> Vec<String> {
        walk(&self.spool_root)
            .into_iter()
            .filter(|p| !p.ends_with(".lock"))
            .collect()
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn every_sample_is_resolved_fetched_inspected_and_stored() {
    let w = world().await;
    let all = samples::all();
    for (i, s) in all.iter().enumerate() {
        w.enqueue(&format!("wamid.{i}"), s).await;
    }
    for _ in &all {
        assert_eq!(w.run_next().await, Outcome::Done);
    }
    for (i, s) in all.iter().enumerate() {
        let job = w
            .pipeline
            .jobs
            .store
            .find("meta", &format!("wamid.{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.state, JobState::Done);
        let r = media_record(&job.event, &job.checkpoints).unwrap();
        assert_eq!(r.size_bytes, s.size, "{}", s.file);
        // Tag rules see the measured duration, not a declared one.
        let mut tags = Vec::new();
        if s.kind == MediaKind::Voice {
            tags.push("voice-note");
        }
        if s.duration_seconds.is_some_and(|d| d >= 2.0) {
            tags.push("long");
        }
        assert_eq!(r.tags, tags, "{}", s.file);
        assert_eq!(r.sha256, s.sha256, "{}", s.file);
        match s.duration_seconds {
            Some(want) => {
                let got = r.duration_seconds.unwrap();
                assert!((got - want).abs() <= 0.05, "{}: {got} vs {want}", s.file);
            }
            None => assert_eq!(r.duration_seconds, None, "{}", s.file),
        }
        let ext = s.file.rsplit('.').next().unwrap();
        let key = format!("2026/09/21/{}.{ext}", s.sha256);
        assert!(r.storage_uri.ends_with(&key), "{}", r.storage_uri);
        assert_eq!(std::fs::read(w.media_root.join(&key)).unwrap(), s.bytes);
        assert!(r.file_url.starts_with("https://wa2crm.example.com/media/"));
        assert_eq!(
            w.pipeline
                .media
                .links
                .verify(r.file_url.rsplit('/').next().unwrap())
                .unwrap(),
            Linked::Media {
                job: job.id,
                rendition: false
            },
            "the link names the media, resolved to {key} through the queue"
        );
    }
    assert_eq!(w.sim.counts().resolves, all.len() as u64);
    assert!(w.spool_files().is_empty(), "{:?}", w.spool_files());
}

#[tokio::test]
async fn the_same_file_twice_is_stored_once() {
    let w = world().await;
    let s = sample("voice.ogg");
    w.enqueue("wamid.a", &s).await;
    w.enqueue("wamid.b", &s).await;
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(
        walk(&w.media_root).len(),
        1,
        "content-addressed: one object"
    );
    let b = w
        .pipeline
        .jobs
        .store
        .find("meta", "wamid.b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.checkpoints["store"]["created"], false);
}

#[tokio::test]
async fn an_expired_url_is_resolved_again() {
    let w = world().await;
    w.enqueue("wamid.x", &sample("image.jpg")).await;
    w.sim.fail_resolves([Fault::ExpiredUrl]);
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(w.sim.counts().resolves, 2);
}

#[tokio::test]
async fn a_resumed_job_does_not_redo_finished_steps() {
    let w = world().await;
    w.enqueue("wamid.r", &sample("audio.mp3")).await;
    // First attempt: resolved, then the download fails; the job goes back with its checkpoint.
    w.sim.fail_downloads([Fault::Status(503)]);
    let Outcome::Retry { error, .. } = w.run_next().await else {
        panic!("expected a retry")
    };
    assert!(error.contains("503"), "{error}");
    let job = w
        .pipeline
        .jobs
        .store
        .find("meta", "wamid.r")
        .await
        .unwrap()
        .unwrap();
    assert!(job.checkpoints.contains_key("resolve"));
    assert!(!job.checkpoints.contains_key("store"));
    assert!(w.spool_files().is_empty());
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(
        w.sim.counts().resolves,
        1,
        "resumed at fetch, not at resolve"
    );
    assert_eq!(w.sim.counts().downloads, 2);

    // A job whose media was stored before a crash (not yet marked done) touches WhatsApp no more.
    let done = w
        .pipeline
        .jobs
        .store
        .find("meta", "wamid.r")
        .await
        .unwrap()
        .unwrap();
    w.enqueue("wamid.r2", &sample("audio.mp3")).await;
    let job = w
        .pipeline
        .jobs
        .store
        .claim("w", Duration::from_secs(60), 1)
        .await
        .unwrap()
        .remove(0);
    for step in [Step::Resolve, Step::Fetch, Step::Inspect, Step::Store] {
        let data = step.of(&done.checkpoints).unwrap();
        w.pipeline
            .jobs
            .store
            .checkpoint(job.id, &job.owner, Checkpoint::new(step, data))
            .await
            .unwrap();
    }
    w.advance(Duration::from_secs(61)); // the crash: the lease runs out
    let before = w.sim.counts();
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(w.sim.counts(), before, "no resolve, no download");
}

#[tokio::test]
async fn too_large_is_dead_lettered_without_downloading() {
    let w = world_with(1000).await;
    w.enqueue("wamid.big", &sample("voice.ogg")).await;
    let Outcome::Dead { reason } = w.run_next().await else {
        panic!("expected a dead letter")
    };
    assert_eq!(
        reason,
        "too large: 6542 bytes > limit 1000 (media.max_bytes)"
    );
    assert_eq!(w.sim.counts().downloads, 0);
}

#[tokio::test]
async fn a_checksum_mismatch_is_retried_once_then_dead_lettered() {
    let w = world().await;
    w.enqueue("wamid.c1", &sample("video.mp4")).await;
    w.sim.fail_downloads([Fault::Corrupt, Fault::Corrupt]);
    let Outcome::Retry { error, .. } = w.run_next().await else {
        panic!("first mismatch: retry")
    };
    assert!(error.starts_with("checksum mismatch"), "{error}");
    w.advance(Duration::from_secs(3600));
    let Outcome::Dead { reason } = w.run_next().await else {
        panic!("second mismatch: dead letter")
    };
    assert!(reason.starts_with("checksum mismatch"), "{reason}");
    assert!(w.spool_files().is_empty());

    // One bad download followed by a good one is fine.
    w.enqueue("wamid.c2", &sample("image.png")).await;
    w.sim.fail_downloads([Fault::Corrupt]);
    assert!(matches!(w.run_next().await, Outcome::Retry { .. }));
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.run_next().await, Outcome::Done);
}

#[tokio::test]
async fn client_errors_on_resolve_are_not_retried() {
    let w = world().await;
    // A media id WhatsApp does not know (expired after 7 days): Graph answers 400, code 100.
    let s = sample("voice.ogg");
    let e = event("wamid.gone", "never-uploaded", &s, None);
    w.pipeline.jobs.store.enqueue(&[e]).await.unwrap();
    let Outcome::Dead { reason } = w.run_next().await else {
        panic!("dead letter expected")
    };
    assert!(reason.contains("unknown or expired"), "{reason}");
    assert_eq!(w.sim.counts().resolves, 1, "one request, no loop");
}

#[tokio::test]
async fn a_refused_token_dead_letters_with_what_to_do() {
    let mut w = world().await;
    w.pipeline.media.sources.meta =
        Some(GraphMedia::new(&w.sim.url(), "v21.0", SecretString::from("stale")).unwrap());
    w.enqueue("wamid.t", &sample("voice.ogg")).await;
    let Outcome::Dead { reason } = w.run_next().await else {
        panic!("dead letter expected")
    };
    assert!(
        reason.contains("renew sources.meta.access_token"),
        "{reason}"
    );
    assert_eq!(w.sim.counts().resolves, 1);
}

#[tokio::test]
async fn a_lookup_and_a_download_never_answered_are_abandoned_and_retried() {
    let mut w = world().await;
    w.pipeline.media.sources.meta = Some(
        GraphMedia::new(&w.sim.url(), "v21.0", SecretString::from(TOKEN))
            .unwrap()
            .with_read_timeout(Duration::from_millis(500))
            .unwrap(),
    );
    w.enqueue("wamid.h", &sample("voice.ogg")).await;
    w.sim.fail_resolves([Fault::Hang]);
    w.sim.fail_downloads([Fault::Hang]);
    // The lookup is retried at once; a download is retried later, as after any dropped one.
    let Outcome::Retry { error, .. } = w.run_next().await else {
        panic!("a retry expected")
    };
    assert!(
        error.contains("no answer within media.read_timeout_seconds"),
        "{error}"
    );
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.run_next().await, Outcome::Done);
    let c = w.sim.counts();
    assert_eq!((c.hung, c.resolves, c.downloads), (2, 2, 2), "{c:?}");
    assert!(w.spool_files().is_empty(), "{:?}", w.spool_files());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() {
    let w = world().await;
    w.enqueue("wamid.s", &sample("voice.ogg")).await;
    // One 503 is absorbed by the in-process retry.
    w.sim.fail_resolves([Fault::Status(503)]);
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(w.sim.counts().resolves, 2);

    w.enqueue("wamid.s2", &sample("voice.amr")).await;
    w.sim.fail_resolves([Fault::Status(429)]);
    let now = w.clock.now_ms();
    let Outcome::Retry { retry_at_ms, error } = w.run_next().await else {
        panic!("rate limit: retry")
    };
    assert!(retry_at_ms >= now + 60_000, "waits out Graph's throttling");
    assert!(error.contains("429"), "{error}");
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.run_next().await, Outcome::Done);
}

#[tokio::test]
async fn a_dropped_download_is_retried_and_leaves_no_spool_file() {
    let w = world().await;
    w.enqueue("wamid.d", &sample("video.mp4")).await;
    w.sim.fail_downloads([Fault::Truncate]);
    assert!(matches!(w.run_next().await, Outcome::Retry { .. }));
    assert!(w.spool_files().is_empty(), "{:?}", w.spool_files());
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.run_next().await, Outcome::Done);
    assert!(w.spool_files().is_empty());
}

#[tokio::test]
async fn transient_failures_give_up_after_max_attempts() {
    let mut w = world().await;
    w.pipeline.jobs.retry.max_attempts = 2;
    w.enqueue("wamid.m", &sample("voice.ogg")).await;
    w.sim
        .fail_downloads([Fault::Status(502), Fault::Status(502)]);
    assert!(matches!(w.run_next().await, Outcome::Retry { .. }));
    w.advance(Duration::from_secs(3600));
    let Outcome::Dead { reason } = w.run_next().await else {
        panic!("dead letter after max attempts")
    };
    assert!(
        reason.starts_with("gave up after 2 attempts; last error: media download: 502"),
        "{reason}"
    );
}

#[tokio::test]
async fn media_of_a_person_without_consent_is_never_fetched_nor_stored() {
    let mut w = world().await;
    let list = w._dir.path().join("consent.txt");
    // The pipeline's events come from +4915123456789, who is not on the list.
    std::fs::write(&list, "# agreed in writing\n+1 415 555 0100\n").unwrap();
    w.pipeline.media.consent = ConsentPolicy::Allowlist(Allowlist::open(&list).unwrap());
    let id = w.enqueue("wamid.nc", &sample("voice.ogg")).await;
    assert_eq!(w.run_next().await, Outcome::Done);
    let job = w.pipeline.jobs.store.get(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.checkpoints["consent"]["given"], false);
    assert!(!job.checkpoints.contains_key("store"));
    assert_eq!(w.sim.counts().resolves, 0, "nothing asked of WhatsApp");
    assert!(walk(&w.media_root).is_empty(), "nothing stored");
    assert!(media_record(&job.event, &job.checkpoints).is_none());

    std::fs::write(&list, "+1 415 555 0100\n+49 151 23456789\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&list)
        .unwrap()
        .set_modified(later)
        .unwrap();
    w.enqueue("wamid.c", &sample("voice.ogg")).await;
    assert_eq!(w.run_next().await, Outcome::Done);
    let job = w
        .pipeline
        .jobs
        .store
        .find("meta", "wamid.c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.checkpoints["consent"]["given"], true);
    assert!(media_record(&job.event, &job.checkpoints).is_some());
}

#[tokio::test]
async fn with_transcode_an_mp3_rendition_is_stored_and_linked_next_to_the_original() {
    let mut w = world().await;
    w.pipeline.media.transcode = true;
    let id = w.enqueue("wamid.tr", &sample("voice.amr")).await;
    w.enqueue("wamid.img", &sample("image.jpg")).await;
    assert_eq!(w.run_next().await, Outcome::Done);
    assert_eq!(w.run_next().await, Outcome::Done);
    let job = w.pipeline.jobs.store.get(id).await.unwrap().unwrap();
    let r = media_record(&job.event, &job.checkpoints).unwrap();
    let s = sample("voice.amr");
    let key = format!("2026/09/21/{}.r.mp3", s.sha256);
    let on_disk = w.media_root.join(&key);
    let i = wa2crm_media::probe::inspect(&on_disk, Some("audio/mpeg")).await;
    assert_eq!(i.mime_type, "audio/mpeg");
    assert!((i.duration_seconds.unwrap() - 3.0).abs() < 0.25, "{i:?}");
    let url = r.rendition_url.expect("a rendition link");
    assert_eq!(
        w.pipeline
            .media
            .links
            .verify(url.rsplit('/').next().unwrap())
            .unwrap(),
        Linked::Media {
            job: id,
            rendition: true
        }
    );
    assert_eq!(
        wa2crm::removal::rendition_of(&job).as_deref(),
        Some(key.as_str())
    );
    let image = w
        .pipeline
        .jobs
        .store
        .find("meta", "wamid.img")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !image.checkpoints.contains_key("transcode"),
        "images have none"
    );
    assert!(w.spool_files().is_empty(), "{:?}", w.spool_files());
}
