//! Following the sandbox daemon's work: one line per job as it completes, and (with `--serve`)
//! a line for every webhook it skips or refuses, read from its own counters.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wa2crm_queue::{JobInfo, JobState, JobStore};

use super::feed::Sent;
use crate::pipeline::media_record;

/// How often the queue is looked at.
const POLL: Duration = Duration::from_millis(50);

fn settled(job: &JobInfo) -> bool {
    matches!(job.state, JobState::Done | JobState::Dead)
}

/// One line for a finished job: what was stored and tagged, or why not.
pub fn job_line(job: &JobInfo, file: Option<&str>) -> String {
    let e = &job.event;
    let what = file.map_or_else(|| e.kind.to_string(), |f| format!("{f} ({})", e.kind));
    let head = format!("job {:>2} · {:<6} · {what}", job.id, e.source.as_str());
    match (job.state, media_record(e, &job.checkpoints)) {
        (JobState::Done, Some(r)) => {
            let mut parts = vec![r.mime_type.clone(), format!("{} bytes", r.size_bytes)];
            if let Some(d) = r.duration_seconds {
                parts.push(format!("{d:.1} s"));
            }
            if let Some(c) = &r.caption {
                parts.push(format!("{c:?}"));
            }
            if !r.tags.is_empty() {
                parts.push(format!("tags {}", r.tags.join(", ")));
            }
            parts.push(r.file_url.clone());
            format!("{head} · stored · {}", parts.join(" · "))
        }
        (JobState::Done, None) => format!("{head} · done, not stored (no consent)"),
        _ => format!(
            "{head} · FAILED: {}",
            job.dead_reason
                .as_deref()
                .or(job.last_error.as_deref())
                .unwrap_or("-")
        ),
    }
}

/// Waits until every sent webhook's job has finished, printing a line for each as it does.
pub async fn until_done(
    store: &dyn JobStore,
    sent: &[Sent],
    within: Duration,
) -> anyhow::Result<Vec<JobInfo>> {
    let deadline = Instant::now() + within;
    let mut printed: HashSet<usize> = HashSet::new();
    let mut jobs: Vec<Option<JobInfo>> = vec![None; sent.len()];
    loop {
        for (i, s) in sent.iter().enumerate() {
            if printed.contains(&i) {
                continue;
            }
            if let Some(job) = store.find(s.source, &s.message_id).await?
                && settled(&job)
            {
                println!("{}", job_line(&job, Some(&s.file)));
                printed.insert(i);
                jobs[i] = Some(job);
            }
        }
        if printed.len() == sent.len() {
            return Ok(jobs.into_iter().flatten().collect());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} sample job(s) did not finish within {} s",
            sent.len() - printed.len(),
            within.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The sum of a counter of this process's metrics over all its labels.
fn counter(name: &str) -> f64 {
    crate::metrics::install()
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Webhook items skipped so far (statuses, messages without a file, invalid ones).
pub fn skipped_so_far() -> f64 {
    counter(crate::metrics::ITEMS_SKIPPED)
}

fn refused_so_far() -> f64 {
    counter(crate::metrics::WEBHOOKS_REJECTED)
}

/// `--serve`: a line for every job that finishes after `after_id`, and for every webhook
/// skipped or refused, until `stop` resolves.
pub async fn serve(
    store: Arc<dyn JobStore>,
    after_id: i64,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    let mut after = after_id;
    let (mut skipped, mut refused) = (skipped_so_far(), refused_so_far());
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        // In order: a job still at work holds back the lines of those after it.
        for job in store.jobs_after(after, 100).await? {
            if !settled(&job) {
                break;
            }
            println!("{}", job_line(&job, None));
            after = job.id;
        }
        let now = skipped_so_far();
        if now > skipped {
            println!(
                "a webhook item was skipped ({} so far): not a media message, a status, or \
                 invalid (see the daemon's log)",
                now as u64
            );
            skipped = now;
        }
        let now = refused_so_far();
        if now > refused {
            println!(
                "a webhook was refused ({} so far): its signature or token is wrong (see the \
                 daemon's log)",
                now as u64
            );
            refused = now;
        }
    }
}
