//! Small durable state a connector keeps between runs and shares with other instances: a rotated
//! OAuth refresh token, why it is paused and until when. The daemon backs it with the queue
//! database, so `status` (another process) and other instances read what a worker wrote.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::Result;

/// Values keyed by `(scope, key)`; the scope is the connector's instance name.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn get_state(&self, scope: &str, key: &str) -> Result<Option<String>>;
    /// Durable when it returns: a refresh token written here survives a crash right after.
    async fn put_state(&self, scope: &str, key: &str, value: &str) -> Result<()>;
    async fn delete_state(&self, scope: &str, key: &str) -> Result<()>;
    /// Every key of a scope with its value.
    async fn scan_state(&self, scope: &str) -> Result<BTreeMap<String, String>>;
}

/// An in-memory store for tests and the sandbox.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    values: Mutex<BTreeMap<(String, String), String>>,
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
}

/// Keys every connector writes the same way, so `status` can show them without knowing the vendor.
pub mod keys {
    /// Why the connector is not delivering, worded for the admin; absent when it is.
    pub const PAUSE_REASON: &str = "pause_reason";
    /// Until when (ms since the epoch) it waits; absent when only the admin can lift the pause.
    pub const PAUSED_UNTIL_MS: &str = "paused_until_ms";
}
