//! Whether a daemon is running, told through the queue database: each `wa2crm run` keeps a row
//! of its own fresh (every [`EVERY`]) and marks it stopped when it stops; `status` reads them. A
//! row not refreshed for [`STALE_AFTER`] is a daemon that died without saying so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use wa2crm_core::StateStore;
use wa2crm_core::state::now_ms;

/// The state scope of the rows; not a connector name (those cannot contain `/`).
pub const SCOPE: &str = "wa2crm/instances";

/// How often a running daemon refreshes its row.
pub const EVERY: Duration = Duration::from_secs(10);

/// A row older than this is a daemon that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(35);

/// Rows of daemons gone longer than this are removed by the next one that starts.
const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// One daemon's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_ms: i64,
    pub seen_ms: i64,
    /// It stopped cleanly at `seen_ms`.
    #[serde(default)]
    pub stopped: bool,
}

/// What `status` says about the daemons of this queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Daemons {
    /// At least one is running; the earliest start among them.
    Running {
        since_ms: i64,
        instances: Vec<Instance>,
    },
    /// None is running; when one was last seen.
    Stopped { last_seen_ms: i64 },
    /// None ever ran on this queue (or all stopped cleanly long ago).
    Never,
}

impl Daemons {
    pub fn is_running(&self) -> bool {
        matches!(self, Daemons::Running { .. })
    }
}

/// Reads the rows as of `now_ms`.
pub async fn read(state: &dyn StateStore, now: i64) -> wa2crm_core::Result<Daemons> {
    let rows = state.scan_state(SCOPE).await?;
    Ok(judge(
        rows.values().filter_map(|v| serde_json::from_str(v).ok()),
        now,
    ))
}

/// Running, stopped or never, from the rows.
pub fn judge(rows: impl IntoIterator<Item = Instance>, now: i64) -> Daemons {
    let stale = now - STALE_AFTER.as_millis() as i64;
    let (live, gone): (Vec<Instance>, Vec<Instance>) = rows
        .into_iter()
        .partition(|i| !i.stopped && i.seen_ms >= stale);
    if let Some(since_ms) = live.iter().map(|i| i.started_ms).min() {
        return Daemons::Running {
            since_ms,
            instances: live,
        };
    }
    match gone.iter().map(|i| i.seen_ms).max() {
        Some(last_seen_ms) => Daemons::Stopped { last_seen_ms },
        None => Daemons::Never,
    }
}

/// Keeps this daemon's row fresh until `stop`, then marks it stopped. Rows of daemons long gone
/// are removed at the start. Failures are logged, never fatal: the row is information.
pub fn spawn(state: Arc<dyn StateStore>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let pid = std::process::id();
    // Unique even when two containers share a pid and a hostname.
    let key = format!("{host}/{pid}/{:08x}", fastrand::u32(..));
    let mut me = Instance {
        host,
        pid,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_ms: now_ms(),
        seen_ms: now_ms(),
        stopped: false,
    };
    tokio::spawn(async move {
        forget_old(state.as_ref(), now_ms()).await;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            me.seen_ms = now_ms();
            if let Err(e) = write(state.as_ref(), &key, &me).await {
                tracing::warn!(error = %e, "Cannot record that this daemon is running (status will say it is not).");
            }
        }
        me.seen_ms = now_ms();
        me.stopped = true;
        if let Err(e) = write(state.as_ref(), &key, &me).await {
            tracing::warn!(error = %e, "Cannot record that this daemon stopped; status will say so in a minute.");
        }
    })
}

async fn write(state: &dyn StateStore, key: &str, row: &Instance) -> wa2crm_core::Result<()> {
    let row = serde_json::to_string(row).unwrap_or_default();
    state.put_state(SCOPE, key, &row).await
}

async fn forget_old(state: &dyn StateStore, now: i64) {
    let Ok(rows) = state.scan_state(SCOPE).await else {
        return;
    };
    let old = now - FORGET_AFTER.as_millis() as i64;
    let rows: BTreeMap<String, Instance> = rows
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?)))
        .collect();
    for (key, row) in rows {
        if row.seen_ms < old {
            let _ = state.delete_state(SCOPE, &key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::MemoryStateStore;

    fn row(started_ms: i64, seen_ms: i64) -> Instance {
        Instance {
            host: "h".into(),
            pid: 1,
            version: "0".into(),
            started_ms,
            seen_ms,
            stopped: false,
        }
    }

    #[test]
    fn a_daemon_is_running_while_its_row_is_fresh() {
        let now = 1_000_000;
        assert_eq!(judge([], now), Daemons::Never);
        let fresh = row(10, now - 5_000);
        let other = row(500, now - 1_000);
        assert_eq!(
            judge([fresh.clone(), other.clone()], now),
            Daemons::Running {
                since_ms: 10,
                instances: vec![fresh, other]
            }
        );
        let dead = row(10, now - STALE_AFTER.as_millis() as i64 - 1);
        assert_eq!(
            judge([dead.clone()], now),
            Daemons::Stopped {
                last_seen_ms: dead.seen_ms
            }
        );
        let stopped = Instance {
            stopped: true,
            ..row(10, now - 1_000)
        };
        assert_eq!(
            judge([stopped], now),
            Daemons::Stopped {
                last_seen_ms: now - 1_000
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_row_is_written_while_running_and_marked_on_stop() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let stop = CancellationToken::new();
        let task = spawn(state.clone(), stop.clone());
        // The first tick is immediate; with time paused, yielding lets it run.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !read(state.as_ref(), now_ms()).await.unwrap().is_running() {
            assert!(tokio::time::Instant::now() < deadline, "never recorded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        task.await.unwrap();
        assert!(matches!(
            read(state.as_ref(), now_ms()).await.unwrap(),
            Daemons::Stopped { .. }
        ));
    }
}
