//! The media steps of one job. Each step first looks for its checkpoint and, when the job already
//! has it, uses it instead of doing the work again. The one exception is the download: the bytes
//! live in this process's spool, so a job resumed after a crash (or by another instance) fetches
//! again, and the new download must match the digest the first one recorded.

use backon::Retryable;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wa2crm_core::{Error, ErrorKind, MediaRef, Source, TagInput};
use wa2crm_media::probe::{self, Inspection};
use wa2crm_media::spool::{SpoolError, SpoolFile};
use wa2crm_media::store::{Put, Storage};
use wa2crm_media::transcode::{self, Rendition, TranscodeError};
use wa2crm_queue::{Checkpoint, Job, QueueError, Step};
use wa2crm_whatsapp::media::{GraphMedia, ResolvedMedia, digest_matches};

use super::consent::{self, ConsentCheckpoint, ConsentPolicy};
use super::record::{FetchedCheckpoint, RenditionCheckpoint, StoredCheckpoint, checkpoint};
use super::{Jobs, MediaSteps, Pipeline};

/// Why the steps stopped.
pub(super) enum Failure {
    /// The work failed; the kind decides between retry and dead letter.
    Job(Error),
    /// The queue refused a write: the lease is gone, or the database is.
    Queue(QueueError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Job(e)
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        Failure::Queue(e)
    }
}

/// The `fetch_mismatch` checkpoint: a download whose digest did not match, retried once.
#[derive(Debug, Serialize, Deserialize)]
struct Mismatch {
    count: u32,
    downloaded: String,
}

/// Stops the job before a write that takes a person's media somewhere (the storage, a CRM, a
/// chat tool) when erasure has fenced it; the worker then lets the job go.
pub(super) async fn unless_fenced(jobs: &Jobs, job: &Job) -> Result<(), Failure> {
    if jobs.store.fenced(&[job.id]).await?.is_empty() {
        Ok(())
    } else {
        Err(Error::transient("stopped: this sender's media is being erased").into())
    }
}

pub(super) async fn save<T: Serialize>(
    jobs: &Jobs,
    job: &mut Job,
    step: Step,
    value: &T,
) -> Result<(), Failure> {
    record(jobs, job, step, value, Facts::default()).await
}

/// What the queue keeps of a step's result in columns of its own.
#[derive(Default)]
struct Facts<'a> {
    media_key: Option<&'a str>,
    consent_given: Option<bool>,
}

/// Saves a step's result with the facts the queue keeps in its own columns.
async fn record<T: Serialize>(
    jobs: &Jobs,
    job: &mut Job,
    step: Step,
    value: &T,
    facts: Facts<'_>,
) -> Result<(), Failure> {
    let v = serde_json::to_value(value)
        .map_err(|e| Error::permanent(format!("checkpoint {}: {e}", step.as_str())))?;
    let mut checkpoint = Checkpoint::new(step, &v);
    if let Some(key) = facts.media_key {
        checkpoint = checkpoint.media_key(key);
    }
    if let Some(given) = facts.consent_given {
        checkpoint = checkpoint.consent(given);
    }
    jobs.store
        .checkpoint(job.id, &job.owner, checkpoint)
        .await?;
    job.checkpoints.insert(step.as_str().to_owned(), v);
    Ok(())
}

/// How the media steps ended.
pub(super) enum Media {
    /// In storage: on to delivery.
    Stored,
    /// Not taken, on purpose (no consent): the job is over, with this reason.
    Skipped(String),
}

pub(super) async fn run(p: &Pipeline, job: &mut Job) -> Result<Media, Failure> {
    if Step::Store.of(&job.checkpoints).is_some() {
        return Ok(Media::Stored);
    }
    if !matches!(p.media.consent, ConsentPolicy::Everyone) {
        let consent = match checkpoint::<ConsentCheckpoint>(job, Step::Consent) {
            Some(c) => c,
            None => {
                let c = consent::decide(p, job).await?;
                let facts = Facts {
                    consent_given: Some(c.given),
                    ..Facts::default()
                };
                record(&p.jobs, job, Step::Consent, &c, facts).await?;
                c
            }
        };
        if !consent.given {
            return Ok(Media::Skipped(consent.reason()));
        }
    }
    let started = std::time::Instant::now();
    let (spooled, resolved) = match job.event.media.clone() {
        MediaRef::GraphMedia { media_id, .. } => {
            let (graph, section) = match job.event.source {
                Source::D360 => (p.media.sources.d360.as_ref(), "sources.d360"),
                _ => (p.media.sources.meta.as_ref(), "sources.meta.access_token"),
            };
            let graph = graph.ok_or_else(|| {
                Error::permanent(format!(
                    "{section} is not configured, so media cannot be downloaded; add it, then run \
                     `wa2crm replay --all-dead`"
                ))
            })?;
            let (spooled, resolved) = fetch_graph(p, graph, job, &media_id).await?;
            (spooled, Some(resolved))
        }
        MediaRef::Url { url } => {
            let twilio = p.media.sources.twilio.as_ref().ok_or_else(|| {
                Error::permanent(
                    "sources.twilio is not configured, so Twilio media cannot be downloaded; add it, \
                     then run `wa2crm replay --all-dead`",
                )
            })?;
            // The webhook's arrival: Twilio's event timestamp is when wa2crm received it.
            let download = twilio.download(&url, job.event.timestamp).await?;
            let spooled = spool(&p.media, download, None).await?;
            (spooled, None)
        }
    };
    verify(p, job, resolved.as_ref(), &spooled).await?;
    let fetched_ms = started.elapsed().as_millis();

    let inspection = match checkpoint::<Inspection>(job, Step::Inspect) {
        Some(i) => i,
        None => {
            let i = probe::inspect(spooled.path(), job.event.mime_type.as_deref()).await;
            if let Some(m) = &i.mime_mismatch {
                tracing::warn!(job = job.id, "Media type mismatch: {m}.");
            }
            if let Some(e) = &i.duration_error {
                tracing::info!(job = job.id, "No duration: {e}.");
            }
            save(&p.jobs, job, Step::Inspect, &i).await?;
            i
        }
    };
    // Without rules there is nothing to decide, and no checkpoint write on every job.
    if !p.media.tags.is_empty() && Step::Tags.of(&job.checkpoints).is_none() {
        let tags = p.media.tags.apply(&TagInput {
            kind: job.event.kind,
            sender: &job.event.sender,
            caption: job.event.caption.as_deref(),
            file_name: job.event.file_name.as_deref(),
            duration_seconds: inspection.duration_seconds,
        });
        save(&p.jobs, job, Step::Tags, &tags).await?;
    }

    if p.media.transcode
        && Step::Transcode.of(&job.checkpoints).is_none()
        && let Some(r) = Rendition::for_media(job.event.kind, &inspection.mime_type)
    {
        let made = rendition(p, job, &spooled, &inspection, r).await?;
        save(&p.jobs, job, Step::Transcode, &made).await?;
    }

    let inspected_ms = started.elapsed().as_millis() - fetched_ms;
    let sha = spooled.sha256_hex();
    let key = Storage::key_for(job.event.timestamp.date(), &sha, &inspection.extension);
    unless_fenced(&p.jobs, job).await?;
    let storage = p.media.storage.clone();
    let put = (|| async { storage.put_file(&key, spooled.path(), spooled.size).await })
        .retry(p.jobs.retry.in_process)
        .when(|e: &Error| e.kind() == ErrorKind::Transient)
        .await?;
    let stored = StoredCheckpoint {
        uri: p.media.storage.uri(&key),
        file_url: p.media.links.media_url(&p.media.public_url, job.id, false),
        key,
        created: put == Put::Created,
    };
    let key = stored.key.clone();
    let facts = Facts {
        media_key: Some(&key),
        ..Facts::default()
    };
    record(&p.jobs, job, Step::Store, &stored, facts).await?;
    if let (MediaRef::Url { url }, Some(twilio), true) = (
        &job.event.media,
        &p.media.sources.twilio,
        p.media.sources.twilio_delete_after_copy,
    ) {
        // Privacy hygiene, not the job's purpose: a failure is logged, the job goes on.
        let deleted = (|| async { twilio.delete(url).await })
            .retry(p.jobs.retry.in_process)
            .when(|e: &Error| e.kind() == ErrorKind::Transient)
            .await;
        match deleted {
            Ok(()) => tracing::info!(job = job.id, "Media deleted at Twilio after the copy."),
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "Media could not be deleted at Twilio; delete it there by hand.")
            }
        }
    }
    tracing::info!(
        job = job.id,
        kind = %job.event.kind,
        bytes = spooled.size,
        duration = inspection.duration_seconds,
        uri = %stored.uri,
        fetch_ms = fetched_ms,
        inspect_ms = inspected_ms,
        store_ms = started.elapsed().as_millis() - fetched_ms - inspected_ms,
        "Media stored."
    );
    Ok(Media::Stored)
}

/// How long ffmpeg may take for one file.
const TRANSCODE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Makes and stores the rendition; a file ffmpeg cannot convert (or no ffmpeg), or one too long
/// or too large, is noted and the original goes on alone.
async fn rendition(
    p: &Pipeline,
    job: &Job,
    spooled: &SpoolFile,
    inspection: &Inspection,
    r: Rendition,
) -> Result<RenditionCheckpoint, Failure> {
    let none = |error: String| RenditionCheckpoint {
        key: None,
        file_url: None,
        mime_type: None,
        size: None,
        error: Some(error),
    };
    let max_length = transcode::MAX_LENGTH;
    if inspection
        .duration_seconds
        .is_some_and(|d| d > max_length.as_secs_f64())
    {
        return Ok(none(format!(
            "no rendition: longer than {} h",
            max_length.as_secs() / 3600
        )));
    }
    let limits = transcode::Limits {
        time: TRANSCODE_LIMIT,
        max_bytes: p.media.max_bytes,
        max_length,
    };
    let made = transcode::transcode(
        spooled.path(),
        &inspection.mime_type,
        r,
        p.media.spool.dir(),
        limits,
    )
    .await;
    let out = match made {
        Ok(out) => out,
        Err(TranscodeError::Io(e)) => {
            return Err(
                Error::transient(format!("cannot transcode in media.spool_dir: {e}")).into(),
            );
        }
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "No rendition; the original is stored as it is.");
            return Ok(none(e.to_string()));
        }
    };
    let size = std::fs::metadata(&out)
        .map_err(|e| Error::transient(format!("rendition: {e}")))?
        .len();
    let key = Storage::key_for(
        job.event.timestamp.date(),
        &spooled.sha256_hex(),
        &format!("r.{}", r.extension()),
    );
    unless_fenced(&p.jobs, job).await?;
    let storage = p.media.storage.clone();
    (|| async { storage.put_file(&key, &out, size).await })
        .retry(p.jobs.retry.in_process)
        .when(|e: &Error| e.kind() == ErrorKind::Transient)
        .await?;
    Ok(RenditionCheckpoint {
        file_url: Some(p.media.links.media_url(&p.media.public_url, job.id, true)),
        key: Some(key),
        mime_type: Some(r.mime_type().to_owned()),
        size: Some(size),
        error: None,
    })
}

async fn resolve(
    p: &Pipeline,
    graph: &GraphMedia,
    job: &mut Job,
    media_id: &str,
) -> Result<ResolvedMedia, Failure> {
    let phone_number_id = job.event.phone_number_id.clone();
    let resolved = (|| async { graph.resolve(media_id, &phone_number_id).await })
        .retry(p.jobs.retry.in_process)
        .when(|e: &Error| e.kind() == ErrorKind::Transient)
        .await?;
    if let Some(size) = resolved.file_size
        && size > p.media.max_bytes
    {
        return Err(too_large(size, p.media.max_bytes).into());
    }
    save(&p.jobs, job, Step::Resolve, &resolved).await?;
    Ok(resolved)
}

fn too_large(size: u64, limit: u64) -> Error {
    Error::permanent(format!(
        "too large: {size} bytes > limit {limit} (media.max_bytes)"
    ))
}

/// Resolve (or its checkpoint) and download; an expired URL is resolved again once.
async fn fetch_graph(
    p: &Pipeline,
    graph: &GraphMedia,
    job: &mut Job,
    media_id: &str,
) -> Result<(SpoolFile, ResolvedMedia), Failure> {
    let mut resolved = match checkpoint::<ResolvedMedia>(job, Step::Resolve) {
        Some(r) => r,
        None => resolve(p, graph, job, media_id).await?,
    };
    let spooled = match fetch(p, graph, &resolved).await {
        // The URL lives 5 minutes: expired (or resumed from an old checkpoint), ask again once.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::info!(job = job.id, "Media URL expired; resolving it again.");
            resolved = resolve(p, graph, job, media_id).await?;
            // A fresh URL refused again is still no reason to give the file up (the media id
            // resolves; a missing media id fails in `resolve`, as not found): try again later.
            fetch(p, graph, &resolved)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => Error::transient(format!(
                        "{}; the fresh URL was refused too, trying again later",
                        e.message()
                    )),
                    _ => e,
                })?
        }
        other => other?,
    };
    Ok((spooled, resolved))
}

async fn fetch(
    p: &Pipeline,
    graph: &GraphMedia,
    resolved: &ResolvedMedia,
) -> Result<SpoolFile, Error> {
    spool(
        &p.media,
        graph.download(&resolved.url).await?,
        resolved.file_size,
    )
    .await
}

/// Streams a download into the spool, stopping at `media.max_bytes`.
async fn spool(
    media: &MediaSteps,
    response: reqwest::Response,
    declared_size: Option<u64>,
) -> Result<SpoolFile, Error> {
    if let Some(len) = response.content_length()
        && len > media.max_bytes
    {
        return Err(too_large(len, media.max_bytes));
    }
    let known_size = response.content_length().or(declared_size);
    match media
        .spool
        .write(Box::pin(response.bytes_stream()), media.max_bytes)
        .await
    {
        Ok(f) => Ok(f),
        Err(SpoolError::TooLarge { received, limit }) => Err(too_large(
            known_size.filter(|s| *s > limit).unwrap_or(received),
            limit,
        )),
        Err(e @ SpoolError::Source { .. }) => Err(Error::transient(e.to_string()).with_source(e)),
        Err(SpoolError::Io(e)) => Err(Error::transient(format!(
            "cannot write to media.spool_dir: {e}"
        ))),
    }
}

/// The digest WhatsApp declared (webhook and resolve answer) and, on a resumed job, the digest of
/// the first download, must all be the download's. A mismatch is retried once, then dead-lettered.
async fn verify(
    p: &Pipeline,
    job: &mut Job,
    resolved: Option<&ResolvedMedia>,
    spooled: &SpoolFile,
) -> Result<(), Failure> {
    let actual = spooled.sha256_hex();
    let declared = [
        job.event.sha256.as_deref(),
        resolved.and_then(|r| r.sha256.as_deref()),
    ];
    let bad_declared = declared
        .iter()
        .flatten()
        .find(|d| !digest_matches(d, &spooled.sha256));
    let earlier = checkpoint::<FetchedCheckpoint>(job, Step::Fetch);
    let bad_earlier = earlier.as_ref().filter(|f| f.sha256 != actual);
    if bad_declared.is_none() && bad_earlier.is_none() {
        if earlier.is_none() {
            save(
                &p.jobs,
                job,
                Step::Fetch,
                &FetchedCheckpoint {
                    size: spooled.size,
                    sha256: actual,
                },
            )
            .await?;
        }
        return Ok(());
    }
    let expected = bad_declared
        .map(|d| d.to_string())
        .or_else(|| bad_earlier.map(|f| f.sha256.clone()))
        .unwrap_or_default();
    let before = checkpoint::<Mismatch>(job, Step::FetchMismatch).map_or(0, |m| m.count);
    save(
        &p.jobs,
        job,
        Step::FetchMismatch,
        &json!({"count": before + 1, "downloaded": actual}),
    )
    .await?;
    let what = format!(
        "checksum mismatch: downloaded {} bytes with sha256 {actual}, WhatsApp declared {expected}",
        spooled.size
    );
    if before == 0 {
        Err(Error::transient(format!("{what}; downloading once more")).into())
    } else {
        Err(Error::permanent(format!(
            "{what} (twice); the file at WhatsApp may be damaged"
        ))
        .into())
    }
}
