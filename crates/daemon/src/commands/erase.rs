//! `wa2crm erase --phone +E164 [--dry-run]`: one person's media, gone from every place wa2crm put
//! it — each CRM (through its connector), the storage, and the queue's stored metadata — with a
//! report of what was removed where. Running it twice is harmless: the second run finds nothing.
//!
//! Erasure must not race the daemon's workers. First it fences the person's jobs: no worker takes
//! them any more, and a worker on one stops before its next write to the storage or a CRM and
//! lets go; erasure waits until none is held (at most a lease). Only then, with every write that
//! was under way recorded in the jobs' checkpoints, do the CRMs go (once their links are gone
//! nobody can follow one to a deleted file), then the storage, then the queue. Then it looks
//! again, and a job that came in meanwhile goes the same way. A place that fails is reported and
//! the others still go; the exit status is then 1 and running the command again finishes the job.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wa2crm_core::{Connector, Phone};
use wa2crm_media::store::Storage;
use wa2crm_queue::{JobInfo, JobStore};

use crate::removal;

/// How many times erasure looks again for jobs that arrived while it ran.
const PASSES: usize = 3;

/// What erasure reaches: the places a person's media went.
pub struct Places<'a> {
    pub store: Arc<dyn JobStore>,
    pub storage: Arc<Storage>,
    pub connectors: &'a std::collections::BTreeMap<String, Arc<dyn Connector>>,
    /// `queue.lease_seconds`: how long a worker may still hold a fenced job.
    pub lease: Duration,
    /// `storage.link_secret`: keys the pseudonym the number becomes in the queue's rows.
    pub link_secret: Vec<u8>,
}

struct Erasure<'a> {
    phone: Phone,
    dry_run: bool,
    store: Arc<dyn JobStore>,
    storage: &'a Storage,
    connectors: &'a std::collections::BTreeMap<String, Arc<dyn Connector>>,
    /// How long a worker may still hold a fenced job: its lease, and a little more.
    lease: Duration,
    /// What the number becomes in the queue's scrubbed rows.
    pseudonym: Phone,
    /// Where each line of the report goes (the terminal, or the console's page).
    say: &'a (dyn Fn(String) + Sync),
}

pub async fn main(
    location: &crate::config::ConfigLocation,
    phone: &str,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let phone = Phone::parse(phone).map_err(|e| anyhow::anyhow!("--phone {phone:?}: {e}"))?;
    let validated = super::load_config(location)?;
    let config = &validated.config;
    let store = super::open_queue(&config.queue.url).await?;
    let storage = Arc::new(Storage::open(&config.storage.url, &config.storage.options)?);
    let connectors = crate::connectors::build_all(config, store.clone(), None).await?;
    let places = Places {
        store,
        storage,
        connectors: &connectors,
        lease: Duration::from_secs(config.queue.lease_seconds),
        link_secret: link_secret(config),
    };
    let failed = erase(&places, &phone, dry_run, &|line| println!("{line}")).await?;
    if !dry_run {
        crate::audit::erasure(
            places.store.as_ref(),
            &crate::audit::cli_user(),
            &phone,
            failed,
        )
        .await;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The bytes of `storage.link_secret` (empty when unset: validation refuses that for `run`).
pub fn link_secret(config: &crate::config::Config) -> Vec<u8> {
    config
        .storage
        .link_secret
        .as_ref()
        .map(|s| secrecy::ExposeSecret::expose_secret(s).as_bytes().to_vec())
        .unwrap_or_default()
}

/// Erases (or, with `dry_run`, describes) one person's media in every place; each line of the
/// report goes to `say`. True when a place failed: running it again finishes the job.
pub async fn erase(
    places: &Places<'_>,
    phone: &Phone,
    dry_run: bool,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<bool> {
    say(format!(
        "Erasing the media of {phone}{}",
        if dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    ));
    let pseudonym = removal::pseudonym(phone, &places.link_secret);
    let erased_before = places.store.jobs_of_sender(pseudonym.as_str()).await?.len();
    if erased_before > 0 {
        say(format!(
            "queue: {erased_before} job(s) of this number were erased before"
        ));
    }
    let e = Erasure {
        pseudonym,
        phone: phone.clone(),
        dry_run,
        store: places.store.clone(),
        storage: &places.storage,
        connectors: places.connectors,
        lease: places.lease + Duration::from_secs(5),
        say,
    };
    let mut failed = false;
    for pass in 0..PASSES {
        let jobs = e.unremoved().await?;
        if pass > 0 && jobs.is_empty() {
            break;
        }
        if pass > 0 {
            say(format!(
                "Looking again: {} more job(s) of {} came in meanwhile",
                jobs.len(),
                e.phone
            ));
        }
        let jobs = e.fence(jobs).await?;
        failed |= e.erase(&jobs).await?;
        if e.dry_run || failed {
            break;
        }
    }
    tracing::info!(phone = %e.phone.logged(), dry_run, failed, "Erasure run.");
    Ok(failed)
}

impl Erasure<'_> {
    async fn unremoved(&self) -> anyhow::Result<Vec<JobInfo>> {
        Ok(self
            .store
            .jobs_of_sender(self.phone.as_str())
            .await?
            .into_iter()
            .filter(|j| j.removed_at_ms.is_none())
            .collect())
    }

    /// Fences `jobs`, waits until no worker holds one, and reads them again: their checkpoints
    /// now name every object and record written. A dry run changes nothing and waits for nobody.
    async fn fence(&self, jobs: Vec<JobInfo>) -> anyhow::Result<Vec<JobInfo>> {
        if self.dry_run || jobs.is_empty() {
            return Ok(jobs);
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        self.store.fence(&ids).await?;
        let deadline = Instant::now() + self.lease;
        loop {
            let held = self.store.held(&ids).await?;
            if held.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                // Still held after a whole lease: its worker is in a long download, and checks
                // the fence before it writes anything anywhere, so nothing of it will land.
                tracing::warn!(jobs = ?held, "Fenced jobs still leased at the deadline.");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut fresh = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.store.get(id).await? {
                fresh.push(job);
            }
        }
        Ok(fresh)
    }

    /// The CRMs, the storage and the queue, in that order; true when a place failed.
    async fn erase(&self, jobs: &[JobInfo]) -> anyhow::Result<bool> {
        // Connectors describe what they did; a dry run marks it as what they would do.
        let (would, did) = if self.dry_run {
            ("(dry run) ", "would delete")
        } else {
            ("", "deleted")
        };
        let mut failed = false;
        for (name, connector) in self.connectors {
            match connector.erase(&self.phone, self.dry_run).await {
                Ok(r) if r.removed.is_empty() => {
                    (self.say)(format!("connectors.{name}: nothing found"))
                }
                Ok(r) => {
                    for line in r.removed {
                        (self.say)(format!("connectors.{name}: {would}{line}"));
                    }
                }
                Err(e) => {
                    failed = true;
                    (self.say)(format!("connectors.{name}: FAILED: {e}"));
                }
            }
        }

        let objects = removal::objects_of(self.store.as_ref(), jobs).await?;
        if objects.delete.is_empty() {
            (self.say)("storage: nothing found".into());
        } else if self.dry_run {
            (self.say)(format!("storage: {did} {} object(s)", objects.delete.len()));
        } else {
            match removal::delete_objects(self.storage, &objects.delete).await {
                Ok(n) => (self.say)(format!("storage: {did} {n} object(s)")),
                Err(e) => {
                    failed = true;
                    (self.say)(format!("storage: FAILED: {e:#}"));
                }
            }
        }
        for key in &objects.delete {
            (self.say)(format!("storage:   {}", self.storage.uri(key)));
        }
        if !objects.keep.is_empty() {
            (self.say)(format!(
                "storage: kept {} object(s) that other people's messages hold too (the same file \
                 sent by someone else); their links in this person's records are gone with the records",
                objects.keep.len()
            ));
        }

        if jobs.is_empty() {
            (self.say)("queue: nothing found".into());
        } else if self.dry_run || failed {
            // After a failure the jobs stay fenced and findable, so running the command again
            // finishes it.
            let verb = if self.dry_run {
                "would scrub"
            } else {
                "not scrubbed yet"
            };
            (self.say)(format!("queue: {verb} {} job(s)", jobs.len()));
        } else {
            for job in jobs {
                removal::mark_removed(self.store.as_ref(), job, "erasure", Some(&self.pseudonym))
                    .await?;
            }
            self.store.purge_removed().await?;
            crate::metrics::media_removed("erasure", objects.delete.len() as u64);
            (self.say)(format!(
                "queue: scrubbed {} job(s) (ids {}): name, number, caption, file name and results \
                 removed; the number is kept only as a keyed hash, and the message ids stay, so \
                 WhatsApp's redeliveries are not taken in again",
                jobs.len(),
                jobs.iter()
                    .map(|j| j.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(failed)
    }
}
