//! The workers: each claims a job from the queue and takes its media through resolve → fetch →
//! inspect → store, recording every step's result on the job (a checkpoint) so that a restart or
//! another instance resumes where the work stopped.
//!
//! Where the data goes: the file comes from WhatsApp ([`wa2crm_whatsapp::media`]) into this
//! process's spool, is verified and probed there ([`wa2crm_media`]), and ends in the company's
//! storage; the job then holds everything a CRM field needs ([`record`]), and [`deliver`] hands it
//! to every connector routed for its number, batched with other jobs' records.
//!
//! A worker is busy with a job only through its media steps. Delivery waits for a batch and the
//! CRM's rate limit, so it continues in a task of its own (up to [`MAX_DELIVERIES`] at a time)
//! while the worker claims the next job: that is what lets batches fill up under load.

mod consent;
mod deliver;
mod notify;
mod record;
mod retry;
mod steps;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;
use wa2crm_core::TagRules;
use wa2crm_media::link::LinkSigner;
use wa2crm_media::spool::Spool;
use wa2crm_media::store::Storage;
use wa2crm_queue::{Clock, JobStore};
use wa2crm_whatsapp::media::GraphMedia;
use wa2crm_whatsapp::twilio::TwilioMedia;

pub use consent::{Allowlist, ConsentCheckpoint, ConsentPolicy, parse_allowlist};
pub use deliver::{Batcher, DeliveredCheckpoint, Delivery};
pub use notify::{Notifier, payload as notification_payload, signature as notification_signature};
pub use record::{RenditionCheckpoint, StoredCheckpoint, media_record};
pub use retry::RetryPolicy;
pub use worker::{Outcome, process_one, spawn_workers};

/// Everything a worker needs, shared by all workers of the process, in the parts each stage
/// uses: the queue side, the media steps, delivery.
pub struct Pipeline {
    pub jobs: Jobs,
    pub media: MediaSteps,
    pub delivery: Delivery,
    /// `[notifications.webhook]`, told once a media is delivered.
    pub notifier: Option<Notifier>,
    /// Jobs past their media steps, waiting for delivery; capped so a CRM outage holds at most
    /// this many leases.
    pub deliveries: Arc<Semaphore>,
    /// Every job task, so shutdown waits for them to give their jobs back.
    pub tasks: TaskTracker,
}

/// The queue side: where jobs come from, where their steps' results go, when they are retried.
pub struct Jobs {
    pub store: Arc<dyn JobStore>,
    /// The queue's clock, so retry times and leases agree with it.
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
    /// How long a claim lasts without a heartbeat; heartbeats go out at a third of it.
    pub lease: Duration,
    /// Rung by intake after a commit, so an idle worker starts at once instead of at its next poll.
    pub wake: Arc<Notify>,
    /// Who this process is in lease records: host, pid and start time.
    pub instance: String,
}

/// What the media steps use: where files come from and go, and what is taken.
pub struct MediaSteps {
    /// Where each source's files are fetched from.
    pub sources: MediaSources,
    pub spool: Spool,
    pub storage: Arc<Storage>,
    pub links: LinkSigner,
    pub public_url: String,
    pub max_bytes: u64,
    /// `media.transcode`: an MP3/MP4 rendition is stored next to each audio and video.
    pub transcode: bool,
    /// `[[tags]]`, applied once the media is probed; the result is the `tags` checkpoint.
    pub tags: TagRules,
    /// `policy.consent`, decided before anything is fetched.
    pub consent: ConsentPolicy,
}

/// The media clients of the configured sources.
#[derive(Debug, Clone, Default)]
pub struct MediaSources {
    /// Meta Cloud API; `None` when `[sources.meta]` has no access token.
    pub meta: Option<GraphMedia>,
    pub d360: Option<GraphMedia>,
    pub twilio: Option<TwilioMedia>,
    /// `sources.twilio.delete_after_copy`: the media is deleted at Twilio once stored.
    pub twilio_delete_after_copy: bool,
}

/// How many jobs may wait for delivery at once in one process.
pub const MAX_DELIVERIES: usize = 2000;

/// A name for this process in lease records, unique across restarts and hosts.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{host}:{}:{started}", std::process::id())
}
