//! Retention (`[retention]`): stored media older than its kind's period is deleted from the
//! storage (its links answer 404 from then on), its links and details leave every CRM it was
//! delivered to (cleared or deleted, `on_expiry`), and the queue keeps only a scrubbed trace of the
//! job. `wa2crm run` does a pass every hour (one instance at a time); `wa2crm retention
//! [--dry-run]` does one now. Each removal is logged with what went and why.
//!
//! A pass goes through the expired jobs a page at a time: the CRMs first (a page whose CRM
//! cannot be reached waits for the next pass, with its files still there), then the storage, then
//! the queue. Every step is idempotent, so a pass cut short is finished by the next one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wa2crm_core::{Connector, MediaKind, MediaRecord};
use wa2crm_media::store::Storage;
use wa2crm_queue::{JobInfo, JobStore, Step};

use crate::config::{OnExpiry, RetentionConfig};
use crate::pipeline::{DeliveredCheckpoint, media_record};
use crate::removal;

/// How often `run` applies the policy unless `retention.interval` says otherwise.
pub const PASS_EVERY: Duration = Duration::from_secs(3600);
/// Jobs per page of a pass: one CRM call per connector per page, at most.
const PAGE: usize = 200;

/// The configured periods, in working form.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    default: Option<Duration>,
    per_kind: BTreeMap<MediaKind, Duration>,
    /// `on_expiry = "delete"`.
    pub delete: bool,
    /// Between two passes of `run`.
    pub interval: Duration,
}

impl RetentionPolicy {
    /// `None` when no period is set: everything is kept. Every problem comes back under its
    /// key (`retention.voice`), all of them at once.
    pub fn from_config(c: &RetentionConfig) -> Result<Option<Self>, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut parse = |key: &str, v: &Option<String>| -> Option<Duration> {
            let s = v.as_deref()?;
            match humantime::parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push((
                        format!("retention.{key}"),
                        format!("{s:?} is not a duration like \"90d\" or \"12h\": {e}"),
                    ));
                    None
                }
            }
        };
        let mut per_kind = BTreeMap::new();
        for (kind, value) in [
            (MediaKind::Audio, &c.audio),
            (MediaKind::Voice, &c.voice),
            (MediaKind::Video, &c.video),
            (MediaKind::Image, &c.image),
            (MediaKind::Document, &c.document),
            (MediaKind::Sticker, &c.sticker),
        ] {
            if let Some(d) = parse(kind.as_str(), value) {
                per_kind.insert(kind, d);
            }
        }
        let default = parse("default", &c.default);
        let interval = parse("interval", &c.interval);
        if interval.is_some_and(|d| d < Duration::from_secs(1)) {
            problems.push(("retention.interval".into(), "must be at least 1s".into()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if default.is_none() && per_kind.is_empty() {
            return Ok(None);
        }
        Ok(Some(RetentionPolicy {
            default,
            per_kind,
            delete: c.on_expiry == OnExpiry::Delete,
            interval: interval.unwrap_or(PASS_EVERY),
        }))
    }

    /// How long media of this kind is kept, and the key that says so; `None`: forever.
    pub fn period(&self, kind: MediaKind) -> Option<(Duration, String)> {
        match self.per_kind.get(&kind) {
            Some(d) => Some((*d, format!("retention.{kind}"))),
            None => self.default.map(|d| (d, "retention.default".to_owned())),
        }
    }
}

/// What a pass did (or, dry, would do): one line per job, and per CRM and storage.
#[derive(Debug, Default)]
pub struct Pass {
    pub lines: Vec<String>,
    pub jobs: usize,
    pub objects: usize,
    /// Problems that left some media for the next pass.
    pub failures: Vec<String>,
}

/// One pass over every expired job.
pub async fn run_pass(
    policy: &RetentionPolicy,
    store: &dyn JobStore,
    storage: &Storage,
    connectors: &BTreeMap<String, Arc<dyn Connector>>,
    now_ms: i64,
    dry_run: bool,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    // One kind at a time, each with its own cutoff: kinds kept forever are never read.
    for kind in MediaKind::ALL {
        let Some((period, key)) = policy.period(kind) else {
            continue;
        };
        let why = format!("older than {} ({key})", humantime::format_duration(period));
        let before = now_ms.saturating_sub(millis(period));
        let mut after_id = 0;
        loop {
            let page = store.unremoved_before(kind, before, after_id, PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after_id = last.id;
            let expired: Vec<(JobInfo, String)> =
                page.into_iter().map(|job| (job, why.clone())).collect();
            remove_page(
                policy, store, storage, connectors, &expired, dry_run, &mut pass,
            )
            .await?;
        }
    }
    Ok(pass)
}

async fn remove_page(
    policy: &RetentionPolicy,
    store: &dyn JobStore,
    storage: &Storage,
    connectors: &BTreeMap<String, Arc<dyn Connector>>,
    expired: &[(JobInfo, String)],
    dry_run: bool,
    pass: &mut Pass,
) -> anyhow::Result<()> {
    // Each connector gets the records it was delivered.
    let mut by_connector: BTreeMap<&str, Vec<MediaRecord>> = BTreeMap::new();
    for (job, _) in expired {
        let Some(record) = media_record(&job.event, &job.checkpoints) else {
            continue;
        };
        let delivered: DeliveredCheckpoint =
            Step::Deliver.read(&job.checkpoints).unwrap_or_default();
        for name in delivered.keys() {
            if let Some((name, _)) = connectors.get_key_value(name.as_str()) {
                by_connector.entry(name).or_default().push(record.clone());
            }
        }
    }
    let mut blocked = false;
    for (name, records) in &by_connector {
        let Some(connector) = connectors.get(*name) else {
            continue;
        };
        match connector.expire(records, policy.delete, dry_run).await {
            Ok(report) => {
                for line in report.removed {
                    pass.lines.push(format!("connectors.{name}: {line}"));
                }
            }
            Err(e) => {
                blocked = true;
                pass.failures.push(format!("connectors.{name}: {e}"));
                tracing::warn!(connector = %name, error = %e, "Retention could not clear a CRM; the files stay until the next pass.");
            }
        }
    }
    if blocked {
        return Ok(());
    }
    let jobs: Vec<JobInfo> = expired.iter().map(|(j, _)| j.clone()).collect();
    let objects = removal::objects_of(store, &jobs).await?;
    if !dry_run {
        removal::delete_objects(storage, &objects.delete).await?;
    }
    for (job, why) in expired {
        let object = removal::object_of(job);
        let what = match &object {
            Some(key) if objects.delete.contains(key) => storage.uri(key),
            Some(key) => format!(
                "{} (kept: another message holds the same file)",
                storage.uri(key)
            ),
            None => "no stored file".to_owned(),
        };
        pass.lines.push(format!(
            "job {} · {} · {} · {why}: {what}",
            job.id, job.event.kind, job.message_id
        ));
        if !dry_run {
            removal::mark_removed(store, job, &format!("retention: {why}"), None).await?;
            tracing::info!(
                job = job.id,
                message_id = %job.message_id,
                kind = %job.event.kind,
                object = object.as_deref().unwrap_or("-"),
                why = %why,
                "Media removed by retention."
            );
        }
    }
    pass.jobs += expired.len();
    pass.objects += objects.delete.len();
    if !dry_run {
        crate::metrics::media_removed("retention", objects.delete.len() as u64);
    }
    Ok(())
}

/// `run`'s schedule: a pass every `interval`, the first one `interval` after the start; with
/// several instances one pass at a time (a lock in the queue database).
pub fn spawn_schedule(
    policy: RetentionPolicy,
    store: Arc<dyn JobStore>,
    storage: Arc<Storage>,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + policy.interval;
        let mut tick = tokio::time::interval_at(start, policy.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let _one_at_a_time = match store.lock("retention", "pass").await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "Retention pass skipped: the queue database is unreachable.");
                    continue;
                }
            };
            let now = wa2crm_queue::Clock::now_ms(&wa2crm_queue::SystemClock);
            let pass = tokio::select! {
                _ = stop.cancelled() => return,
                p = run_pass(&policy, store.as_ref(), &storage, &connectors, now, false) => p,
            };
            match pass {
                Ok(p) if p.jobs > 0 || !p.failures.is_empty() => tracing::info!(
                    jobs = p.jobs,
                    objects = p.objects,
                    failures = p.failures.len(),
                    "Retention pass done."
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Retention pass failed; the next one goes on.")
                }
            }
        }
    });
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kinds_own_period_wins_over_the_default_and_none_means_forever() {
        let c = RetentionConfig {
            default: Some("365d".into()),
            voice: Some("90d".into()),
            on_expiry: OnExpiry::Delete,
            ..Default::default()
        };
        let p = RetentionPolicy::from_config(&c).unwrap().unwrap();
        assert_eq!(
            p.period(MediaKind::Voice),
            Some((Duration::from_secs(90 * 86400), "retention.voice".into()))
        );
        assert_eq!(p.period(MediaKind::Image).unwrap().1, "retention.default");
        assert!(p.delete);
        let only_video = RetentionConfig {
            video: Some("30d".into()),
            ..Default::default()
        };
        let p = RetentionPolicy::from_config(&only_video).unwrap().unwrap();
        assert_eq!(p.period(MediaKind::Image), None, "no default: kept forever");
        assert!(
            RetentionPolicy::from_config(&RetentionConfig::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn every_bad_period_is_named_under_its_key() {
        let c = RetentionConfig {
            default: Some("a year".into()),
            voice: Some("ninety days".into()),
            interval: Some("10ms".into()),
            ..Default::default()
        };
        let keys: Vec<String> = RetentionPolicy::from_config(&c)
            .unwrap_err()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            ["retention.voice", "retention.default", "retention.interval"]
        );
    }
}
