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
