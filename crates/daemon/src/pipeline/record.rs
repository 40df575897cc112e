//! A job's checkpoints, read back as the record a CRM receives.

use serde::{Deserialize, Serialize};
use wa2crm_core::{MediaEvent, MediaRecord};
use wa2crm_media::probe::Inspection;
use wa2crm_queue::{Job, Step};

/// The `fetch` checkpoint: what was downloaded, verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedCheckpoint {
    pub size: u64,
    /// Lowercase hex of the downloaded bytes.
    pub sha256: String,
}

/// The `store` checkpoint: where the file is and the link to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub key: String,
    pub uri: String,
    pub file_url: String,
    /// False when the object was already there (a re-run, or the same file sent again).
    pub created: bool,
}

/// The `transcode` checkpoint: the rendition stored next to the original, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionCheckpoint {
    pub key: Option<String>,
    pub file_url: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    /// Why no rendition was made (ffmpeg missing, the file refused); the original still goes.
    pub error: Option<String>,
}

pub(super) fn checkpoint<T: for<'de> Deserialize<'de>>(job: &Job, step: Step) -> Option<T> {
    step.read(&job.checkpoints)
}

/// The record for a job whose media is stored; `None` before that.
pub fn media_record(
    event: &MediaEvent,
    checkpoints: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Option<MediaRecord> {
    let fetched: FetchedCheckpoint = Step::Fetch.read(checkpoints)?;
    let inspected: Inspection = Step::Inspect.read(checkpoints)?;
    let stored: StoredCheckpoint = Step::Store.read(checkpoints)?;
    let rendition: Option<RenditionCheckpoint> = Step::Transcode.read(checkpoints);
    // Jobs stored before tag rules existed have no `tags` checkpoint: no tags.
    let tags: Vec<String> = Step::Tags.read(checkpoints).unwrap_or_default();
    Some(MediaRecord {
        message_id: event.message_id.clone(),
        file_url: stored.file_url,
        storage_uri: stored.uri,
        media_type: event.kind,
        mime_type: inspected.mime_type,
        size_bytes: fetched.size,
        duration_seconds: inspected.duration_seconds,
        tags,
        caption: event.caption.clone(),
        file_name: event.file_name.clone(),
        sender: event.sender.clone(),
        sender_name: event.sender_name.clone(),
        received_at: event.timestamp,
        sha256: fetched.sha256,
        rendition_url: rendition.and_then(|r| r.file_url),
    })
}
