//! Removing stored media and what the queue knows of it — the part erasure and retention share.
//!
//! Storage is content-addressed: a sticker many customers send is one object. An object is
//! deleted only when every job that still holds it is being removed; otherwise it stays for the
//! others (and is reported as kept). A removed job keeps its row, its message id and its sender's
//! number — so WhatsApp's redeliveries are not taken in again and the removal can be shown —
//! while the sender's name, the caption, the file name and every step's result are dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use wa2crm_core::{MediaEvent, MediaRef, Phone};
use wa2crm_media::store::Storage;
use wa2crm_queue::{JobId, JobInfo, JobStore, Step};

use crate::pipeline::{RenditionCheckpoint, StoredCheckpoint};

/// The stored object of a job, if it got that far.
pub fn object_of(job: &JobInfo) -> Option<String> {
    Step::Store
        .read::<StoredCheckpoint>(&job.checkpoints)
        .map(|s| s.key)
}

/// Which objects of `jobs` may go, and which stay because other jobs hold them too.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub delete: Vec<String>,
    pub keep: Vec<String>,
}

/// A job's rendition (`media.transcode`), which goes and stays with its original.
pub fn rendition_of(job: &JobInfo) -> Option<String> {
    Step::Transcode
        .read::<RenditionCheckpoint>(&job.checkpoints)
        .and_then(|r| r.key)
}

pub async fn objects_of(store: &dyn JobStore, jobs: &[JobInfo]) -> anyhow::Result<Objects> {
    let going: BTreeSet<JobId> = jobs.iter().map(|j| j.id).collect();
    // Original → its rendition (the same file makes the same rendition key).
    let mut keys: BTreeMap<String, Option<String>> = BTreeMap::new();
    for job in jobs {
        if let Some(key) = object_of(job) {
            let rendition = rendition_of(job);
            let entry = keys.entry(key).or_default();
            if entry.is_none() {
                *entry = rendition;
            }
        }
    }
    let mut out = Objects::default();
    for (key, rendition) in keys {
        let holders = store.holders_of(&key).await?;
        let side = if holders.iter().all(|h| going.contains(h)) {
            &mut out.delete
        } else {
            &mut out.keep
        };
        side.push(key);
        side.extend(rendition);
    }
    Ok(out)
}

/// Deletes each object; returns how many were there.
pub async fn delete_objects(storage: &Storage, keys: &[String]) -> anyhow::Result<usize> {
    let mut deleted = 0;
    for key in keys {
        if storage.delete(key).await? {
            deleted += 1;
            tracing::info!(object = %key, "Stored media deleted.");
        }
    }
    Ok(deleted)
}

/// The event with its personal data gone: what a removed job keeps.
pub fn redacted(event: &MediaEvent) -> MediaEvent {
    let mut e = event.clone();
    e.sender_name = None;
    e.caption = None;
    e.file_name = None;
    if let MediaRef::GraphMedia { url, .. } = &mut e.media {
        *url = None;
    }
    e
}

/// Marks the job removed: redacted event, and a `removed` checkpoint saying why and when. With
/// `pseudonym` (erasure), the sender's number is replaced by it too.
pub async fn mark_removed(
    store: &dyn JobStore,
    job: &JobInfo,
    why: &str,
    pseudonym: Option<&Phone>,
) -> anyhow::Result<()> {
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let left = BTreeMap::from([(
        Step::Removed.as_str().to_owned(),
        json!({"why": why, "at": at, "object": object_of(job)}),
    )]);
    let mut event = redacted(&job.event);
    if let Some(p) = pseudonym {
        event.sender = p.clone();
    }
    store.mark_removed(job.id, &event, &left).await?;
    Ok(())
}

/// What an erased person's number becomes in the queue: a keyed hash of it, written as a number
/// in the unassigned country code +999 (so the row still reads as an event). Without the key it
/// leads nowhere; with it, a later `erase` of the same number finds the jobs it erased. Message
/// ids stay, so WhatsApp's redeliveries are still recognised.
pub fn pseudonym(phone: &Phone, link_secret: &[u8]) -> Phone {
    use hmac::{Hmac, KeyInit, Mac};
    let mut key =
        Hmac::<sha2::Sha256>::new_from_slice(link_secret).expect("HMAC accepts keys of any length");
    key.update(b"wa2crm erasure pseudonym");
    let derived = key.finalize().into_bytes();
    let mut m =
        Hmac::<sha2::Sha256>::new_from_slice(&derived).expect("HMAC accepts keys of any length");
    m.update(phone.as_str().as_bytes());
    let digest = m.finalize().into_bytes();
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    let digits = u64::from_be_bytes(n) % 100_000_000_000;
    // 3 + 11 digits: within E.164's 15, first digit 9.
    Phone::parse(&format!("+999{digits:011}")).expect("+999 and 11 digits is an E.164 number")
}
