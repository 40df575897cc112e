//! systemd integration: readiness and the watchdog (Type=notify, WatchdogSec=).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call here does nothing.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use wa2crm_queue::JobStore;

pub fn ready() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        tracing::warn!(error = %e, "Could not tell systemd we are ready.");
    }
}

pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// Pets the watchdog at half its interval while the queue database answers: a daemon that can no
/// longer reach its queue cannot accept webhooks, and a restart is the operator's best first aid.
pub fn spawn_watchdog(store: Arc<dyn JobStore>, stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match tokio::time::timeout(period.max(Duration::from_millis(100)), store.ping()).await {
                Ok(Ok(())) => {
                    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                }
                Ok(Err(e)) => tracing::error!(error = %e, "Watchdog: queue database unreachable."),
                Err(_) => tracing::error!("Watchdog: queue database did not answer in time."),
            }
        }
    });
}

/// Reads the queue's counts every quarter of `threshold` (at most every 5 s): they feed the
/// gauges `/metrics` shows, and a warning while the backlog is older than `threshold`, with a
/// word when it has drained: a CRM or storage outage shows in the journal, not only in metrics.
/// The queue keeps accepting meanwhile; the jobs wait on disk.
pub fn spawn_queue_watch(store: Arc<dyn JobStore>, threshold: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        // At most every 5 s: the queue gauges /metrics shows come from here.
        let every = (threshold / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
        let mut tick = tokio::time::interval(every);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let c = match store.counts().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the queue's counts.");
                    continue;
                }
            };
            crate::metrics::queue_depth(&c);
            let waited = c
                .oldest_waiting_ms
                .map(|t| Duration::from_millis((wa2crm_core::state::now_ms() - t).max(0) as u64));
            match waited {
                Some(w) if w > threshold => {
                    tracing::warn!(
                        waiting_s = w.as_secs(),
                        queued = c.queued,
                        retrying = c.retrying,
                        running = c.running,
                        "Backlog: the oldest unfinished job has waited {} s; the queue keeps \
                         accepting webhooks. Is a CRM or the storage down? (wa2crm status)",
                        w.as_secs()
                    );
                    warned = true;
                }
                _ if warned => {
                    tracing::info!("Backlog drained.");
                    warned = false;
                }
                _ => {}
            }
        }
    });
}
