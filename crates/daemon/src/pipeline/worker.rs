//! The worker loop: claim, run the steps under a heartbeat, and settle the job.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use wa2crm_core::{Error, ErrorKind};
use wa2crm_queue::{Job, QueueError};

use super::Pipeline;
use super::steps::{self, Failure};

/// How often an idle worker looks for due jobs (retries come due without anyone ringing).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How a job attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// Back in the queue until `retry_at_ms`.
    Retry {
        retry_at_ms: i64,
        error: String,
    },
    Dead {
        reason: String,
    },
    /// The lease ran out and the job may be someone else's now; nothing was written.
    LeaseLost,
    /// Shutdown came first; the job was given back for immediate retry.
    Interrupted,
    /// The queue could not record the outcome; the lease will expire and the job run again.
    QueueError(String),
    /// Erasure fenced the job while it ran: it stopped before its next write and let go.
    Fenced,
}

/// Aborts the heartbeat when the attempt ends, whichever way it ends (a panic, a cancelled
/// future): a heartbeat must never keep a lease alive for a job nobody works on.
struct HeartbeatGuard(JoinHandle<()>);

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reason a job whose process died on every attempt is dead-lettered with.
fn abandoned_reason(max_attempts: u32) -> String {
    format!(
        "the process working on it stopped {max_attempts} times before it finished (a crash, or \
         killed for using too much memory): the file itself may cause it. It stays in the \
         queue; read the journal around its attempts, then `wa2crm replay --id` it once fixed"
    )
}

/// Starts `n` workers that run until `stop` is cancelled.
pub fn spawn_workers(p: Arc<Pipeline>, n: u32, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let p = p.clone();
            let stop = stop.clone();
            tokio::spawn(async move { worker_loop(p, i, stop).await })
        })
        .collect()
}

async fn worker_loop(p: Arc<Pipeline>, index: u32, stop: CancellationToken) {
    let owner = format!("{}#{index}", p.jobs.instance);
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        // Registered before the claim: a commit that lands while we look finds us listening,
        // instead of leaving the job for the next poll.
        let wake = p.jobs.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // Jobs whose process died on each of their attempts are not claimed again and again.
        if index == 0 {
            let reason = abandoned_reason(p.jobs.retry.max_attempts);
            match p
                .jobs
                .store
                .bury_abandoned(p.jobs.retry.max_attempts, &reason)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::error!(jobs = n, "Jobs dead-lettered: {reason}."),
                Err(e) => tracing::warn!(error = %e, "Cannot look for abandoned jobs."),
            }
        }
        match p.jobs.store.claim(&owner, p.jobs.lease, 1).await {
            Ok(jobs) if jobs.is_empty() => {
                failures = 0;
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = wake => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Ok(jobs) => {
                failures = 0;
                for job in jobs {
                    // Capacity for one more job waiting on delivery; without it the lease
                    // would tick while the job waits here.
                    let Ok(permit) = p.deliveries.clone().acquire_owned().await else {
                        return;
                    };
                    let (media_done, media_finished) = oneshot::channel();
                    let task_p = p.clone();
                    let task_stop = stop.clone();
                    p.tasks.spawn(async move {
                        run_job(&task_p, job, &task_stop, Some(media_done)).await;
                        drop(permit);
                    });
                    // The worker is free once the media steps are; delivery goes on without it.
                    let _ = media_finished.await;
                }
            }
            Err(e) => {
                // The queue database is unreachable: back off instead of spinning.
                failures = failures.saturating_add(1);
                let wait = Duration::from_millis(500u64 << failures.min(6));
                tracing::error!(error = %e, retry_in = ?wait, "Cannot claim jobs from the queue.");
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Runs one claimed job to an outcome and records it in the queue.
pub async fn process_one(p: &Pipeline, job: Job, stop: &CancellationToken) -> Outcome {
    run_job(p, job, stop, None).await
}

/// `media_done` is told when the media steps are over (whatever their result).
async fn run_job(
    p: &Pipeline,
    job: Job,
    stop: &CancellationToken,
    media_done: Option<oneshot::Sender<()>>,
) -> Outcome {
    let span = tracing::info_span!("job", id = job.id, message_id = %job.event.message_id, attempt = job.attempts);
    attempt(p, job, stop, media_done).instrument(span).await
}

async fn attempt(
    p: &Pipeline,
    mut job: Job,
    stop: &CancellationToken,
    media_done: Option<oneshot::Sender<()>>,
) -> Outcome {
    // Claimed more often than it may be tried: its process died on each attempt (a takeover
    // after a lease ran out counts as one). Whichever worker took it over buries it unopened;
    // leaving that to `bury_abandoned` alone would race the other workers' claims.
    if job.attempts > p.jobs.retry.max_attempts {
        let reason = abandoned_reason(p.jobs.retry.max_attempts);
        return match p.jobs.store.dead_letter(job.id, &job.owner, &reason).await {
            Ok(()) => Outcome::Dead { reason },
            Err(e) => queue_error(e),
        };
    }
    let lost = CancellationToken::new();
    let heartbeat = HeartbeatGuard(spawn_heartbeat(p, &job, lost.clone()));
    let (id, owner) = (job.id, job.owner.clone());
    let work = async {
        let media = steps::run(p, &mut job).await;
        if let Some(done) = media_done {
            let _ = done.send(());
        }
        match media? {
            steps::Media::Stored => {
                super::deliver::run(p, &mut job).await?;
                super::notify::run(p, &mut job).await
            }
            steps::Media::Skipped(reason) => {
                tracing::info!(job = job.id, sender = %job.event.sender.logged(), "Media not taken: {reason}.");
                crate::metrics::media_skipped("no_consent");
                Ok(())
            }
        }
    };
    let result = tokio::select! {
        r = work => Some(r),
        _ = lost.cancelled() => None,
        _ = stop.cancelled() => {
            drop(heartbeat);
            let now = p.jobs.clock.now_ms();
            return match p.jobs.store.fail(id, &owner, "interrupted by shutdown", now).await {
                Ok(()) => Outcome::Interrupted,
                Err(e) => Outcome::QueueError(e.to_string()),
            };
        }
    };
    drop(heartbeat);
    let outcome = match result {
        None => Outcome::LeaseLost,
        Some(Ok(())) => match p.jobs.store.complete(job.id, &job.owner).await {
            Ok(()) => Outcome::Done,
            Err(e) => queue_error(e),
        },
        Some(Err(Failure::Queue(e))) => queue_error(e),
        Some(Err(Failure::Job(e))) => settle_failure(p, &job, e).await,
    };
    report(&job, &outcome);
    outcome
}

fn queue_error(e: QueueError) -> Outcome {
    match e {
        QueueError::LeaseLost(_) => Outcome::LeaseLost,
        other => Outcome::QueueError(other.to_string()),
    }
}

async fn settle_failure(p: &Pipeline, job: &Job, e: Error) -> Outcome {
    // Erasure fenced the job: whatever stopped it, it lets go and is neither retried nor dead.
    match p.jobs.store.fenced(&[job.id]).await {
        Ok(fenced) if !fenced.is_empty() => {
            return match p.jobs.store.release(job.id, &job.owner).await {
                Ok(()) => Outcome::Fenced,
                Err(e) => queue_error(e),
            };
        }
        Ok(_) => {}
        Err(e) => return queue_error(e),
    }
    let dead_reason = match e.kind() {
        ErrorKind::Permanent | ErrorKind::NotFound => Some(e.message().to_owned()),
        _ if job.attempts >= p.jobs.retry.max_attempts => Some(format!(
            "gave up after {} attempts; last error: {}",
            job.attempts,
            e.message()
        )),
        _ => None,
    };
    let written = match &dead_reason {
        Some(reason) => p
            .jobs
            .store
            .dead_letter(job.id, &job.owner, reason)
            .await
            .map(|()| Outcome::Dead {
                reason: reason.clone(),
            }),
        None => {
            let wait = e.retry_in().unwrap_or_else(|| {
                p.jobs
                    .retry
                    .delay(job.attempts, e.retry_after(), fastrand::f64())
            });
            let retry_at_ms = p
                .jobs
                .clock
                .now_ms()
                .saturating_add(wait.as_millis() as i64);
            p.jobs
                .store
                .fail(job.id, &job.owner, e.message(), retry_at_ms)
                .await
                .map(|()| Outcome::Retry {
                    retry_at_ms,
                    error: e.message().to_owned(),
                })
        }
    };
    written.unwrap_or_else(queue_error)
}

fn report(job: &Job, outcome: &Outcome) {
    let label = match outcome {
        Outcome::Done => "done",
        Outcome::Retry { .. } => "retry",
        Outcome::Dead { .. } => "dead",
        Outcome::LeaseLost => "lease_lost",
        Outcome::Interrupted => "interrupted",
        Outcome::QueueError(_) => "queue_error",
        Outcome::Fenced => "fenced",
    };
    crate::metrics::job_outcome(label);
    match outcome {
        Outcome::Done => tracing::debug!(job = job.id, "Job done."),
        // A vendor's error may echo the customer's number back: logs mask it.
        Outcome::Retry { error, retry_at_ms } => {
            let error = wa2crm_core::phone::mask_in_text(error);
            tracing::warn!(job = job.id, retry_at_ms, "Job will be retried: {error}.")
        }
        Outcome::Dead { reason } => {
            let reason = wa2crm_core::phone::mask_in_text(reason);
            tracing::error!(job = job.id, "Job dead-lettered: {reason}.")
        }
        Outcome::LeaseLost => {
            tracing::warn!(job = job.id, "Lease lost; another worker has the job.")
        }
        Outcome::Interrupted => tracing::info!(job = job.id, "Job given back at shutdown."),
        Outcome::QueueError(e) => {
            tracing::error!(job = job.id, "Job outcome not recorded (queue error): {e}.")
        }
        Outcome::Fenced => {
            tracing::info!(
                job = job.id,
                "Job stopped: its sender's media is being erased."
            )
        }
    }
}

/// Extends the lease at a third of its length; cancels `lost` when the queue says it is gone.
fn spawn_heartbeat(p: &Pipeline, job: &Job, lost: CancellationToken) -> JoinHandle<()> {
    let store = p.jobs.store.clone();
    let (id, owner, lease) = (job.id, job.owner.clone(), p.jobs.lease);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store.heartbeat(id, &owner, lease).await {
                Ok(()) => {}
                Err(QueueError::LeaseLost(_)) => {
                    lost.cancel();
                    return;
                }
                Err(e) => tracing::warn!(job = id, error = %e, "Heartbeat failed; will try again."),
            }
        }
    })
}
