//! Small durable state a connector keeps between runs and shares with other instances: a rotated
//! OAuth refresh token, why it is paused and until when, the pace of its requests. The daemon
//! backs it with the queue database, so `status` (another process) and other instances read what
//! a worker wrote, and several instances on one PostgreSQL database share one vendor quota and
//! refresh one token at a time between them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::Result;

/// A lock held across processes; released when dropped.
pub struct StateLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl StateLock {
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        StateLock(Box::new(guard))
    }
}

/// Milliseconds since the epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The wait before a turn whose slot ends at `next_ms` (the stored pace after taking it).
pub fn turn_wait(next_ms: i64, spacing: Duration, now_ms: i64) -> Duration {
    let start = next_ms - spacing.as_millis() as i64;
    Duration::from_millis(start.saturating_sub(now_ms).max(0) as u64)
}

/// Values keyed by `(scope, key)`; the scope is the connector's instance name.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn get_state(&self, scope: &str, key: &str) -> Result<Option<String>>;
    /// Durable when it returns: a refresh token written here survives a crash right after.
    async fn put_state(&self, scope: &str, key: &str, value: &str) -> Result<()>;
    async fn delete_state(&self, scope: &str, key: &str) -> Result<()>;
    /// Every key of a scope with its value.
    async fn scan_state(&self, scope: &str) -> Result<BTreeMap<String, String>>;
    /// Takes the next turn of a pace shared by every process on this store (GCRA): the stored
    /// time of the next free turn (ms since the epoch) becomes max(it, now) + `spacing`,
    /// atomically. Returns how long to wait for the turn taken (zero when it is now).
    async fn take_turn(&self, scope: &str, key: &str, spacing: Duration) -> Result<Duration>;
    /// No turn of this pace before `until_ms` (a vendor said to wait).
    async fn hold_turns(&self, scope: &str, key: &str, until_ms: i64) -> Result<()>;
    /// Waits for and takes a lock shared by every process on this store.
    async fn lock(&self, scope: &str, name: &str) -> Result<StateLock>;
}

/// An in-memory store for tests and the sandbox.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    values: Mutex<BTreeMap<(String, String), String>>,
    locks: LocalLocks,
}

/// Locks within one process, by name: what a store serving a single process needs.
#[derive(Debug, Default)]
pub struct LocalLocks(Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl LocalLocks {
    pub async fn lock(&self, scope: &str, name: &str) -> StateLock {
        let m = {
            // Inserting an Arc cannot be torn by a panic elsewhere.
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(format!("{scope}/{name}")).or_default().clone()
        };
        StateLock::new(m.lock_owned().await)
    }
}

impl MemoryStateStore {
    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        // A panic while holding this lock cannot leave the map half-written: inserts are atomic.
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn get_state(&self, scope: &str, key: &str) -> Result<Option<String>> {
        Ok(self.values().get(&(scope.into(), key.into())).cloned())
    }
    async fn put_state(&self, scope: &str, key: &str, value: &str) -> Result<()> {
        self.values()
            .insert((scope.into(), key.into()), value.into());
        Ok(())
    }
    async fn delete_state(&self, scope: &str, key: &str) -> Result<()> {
        self.values().remove(&(scope.into(), key.into()));
        Ok(())
    }
    async fn scan_state(&self, scope: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .values()
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    async fn take_turn(&self, scope: &str, key: &str, spacing: Duration) -> Result<Duration> {
        let now = now_ms();
        let mut values = self.values();
        let slot = values.entry((scope.into(), key.into())).or_default();
        let next = slot.parse::<i64>().unwrap_or(0).max(now) + spacing.as_millis() as i64;
        *slot = next.to_string();
        Ok(turn_wait(next, spacing, now))
    }
    async fn hold_turns(&self, scope: &str, key: &str, until_ms: i64) -> Result<()> {
        let mut values = self.values();
        let slot = values.entry((scope.into(), key.into())).or_default();
        *slot = slot.parse::<i64>().unwrap_or(0).max(until_ms).to_string();
        Ok(())
    }
    async fn lock(&self, scope: &str, name: &str) -> Result<StateLock> {
        Ok(self.locks.lock(scope, name).await)
    }
}

/// Keys every connector writes the same way, so `status` can show them without knowing the vendor.
pub mod keys {
    /// Why the connector is not delivering, worded for the admin; absent when it is.
    pub const PAUSE_REASON: &str = "pause_reason";
    /// Until when (ms since the epoch) it waits; absent when only the admin can lift the pause.
    pub const PAUSED_UNTIL_MS: &str = "paused_until_ms";
    /// The account the pause is about (a fingerprint of its credentials and endpoints): a pause
    /// of an account the configuration no longer names is dropped.
    pub const PAUSE_ACCOUNT: &str = "pause_account";
    /// When it last wrote a media record (ms since the epoch).
    pub const LAST_SUCCESS_MS: &str = "last_success_ms";
    /// The last delivery error, as the job got it, and when.
    pub const LAST_ERROR: &str = "last_error";
    pub const LAST_ERROR_MS: &str = "last_error_ms";
    /// Senders matched to a record the CRM already had, and of them how many had several to
    /// choose from (`[connectors.NAME.match] several`); counts since the queue began.
    pub const MATCHED: &str = "matched";
    pub const MATCHED_AMONG_SEVERAL: &str = "matched_among_several";
    /// The last sender with several candidates: masked number, how many, which was taken.
    pub const LAST_SEVERAL: &str = "last_several";
}

/// Adds `n` to a counter kept in the state store (several instances may add at once; a count
/// shown to an admin can take the rare lost update).
pub async fn add_to(state: &dyn StateStore, scope: &str, key: &str, n: u64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let now = state
        .get_state(scope, key)
        .await?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    state.put_state(scope, key, &(now + n).to_string()).await
}
