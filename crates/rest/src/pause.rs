//! A connector-wide pause: the vendor's daily quota is spent (until its reset), or only the admin
//! can fix something (a dead refresh token). Jobs meanwhile wait in the queue instead of failing,
//! and the reason is persisted so `status` — another process — can show it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wa2crm_core::state::keys;
use wa2crm_core::{Error, StateStore};

/// How long a job waits before looking again when the pause has no end the connector knows.
const RECHECK: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub reason: String,
    /// `None`: until the admin acts and wa2crm restarts.
    pub until: Option<SystemTime>,
}

pub struct PauseGate {
    scope: String,
    state: Arc<dyn StateStore>,
    current: Mutex<Option<Pause>>,
    /// The account the connector is configured for (see `token::account_fingerprint`).
    account: String,
    /// Whether a pause is recorded for `status`: not for a command that only looks (`check`),
    /// whose findings are not the daemon's state.
    record: bool,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PauseGate {
    /// Picks up a timed pause an earlier run recorded (a spent daily quota outlives a restart).
    /// An untimed one is dropped: a restart is how the admin says it is fixed, and if it is not,
    /// the first call pauses again.
    /// A pause recorded for another account (the configuration now names a different one) is
    /// dropped too. With `record` false (a `check`), pauses live in this process only.
    pub async fn load(
        scope: &str,
        state: Arc<dyn StateStore>,
        account: &str,
        record: bool,
    ) -> wa2crm_core::Result<Self> {
        let reason = state.get_state(scope, keys::PAUSE_REASON).await?;
        let until = state
            .get_state(scope, keys::PAUSED_UNTIL_MS)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        let same_account = state
            .get_state(scope, keys::PAUSE_ACCOUNT)
            .await?
            .as_deref()
            == Some(account);
        let gate = PauseGate {
            scope: scope.to_owned(),
            state,
            current: Mutex::new(None),
            account: account.to_owned(),
            record,
        };
        if !record {
            return Ok(gate);
        }
        match (reason, until) {
            (Some(reason), Some(until)) if until > SystemTime::now() && same_account => {
                *gate.lock() = Some(Pause {
                    reason,
                    until: Some(until),
                });
            }
            (Some(_), _) => gate.clear_persisted().await?,
            _ => {}
        }
        Ok(gate)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Pause>> {
        // Replaced whole, never torn.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pause in force, if any.
    pub fn current(&self) -> Option<Pause> {
        let mut current = self.lock();
        if let Some(p) = current.as_ref()
            && p.until.is_some_and(|u| u <= SystemTime::now())
        {
            *current = None;
        }
        current.clone()
    }

    /// `Err` while paused: a wait the queue honours, with the reason as the job's last error.
    pub fn check(&self) -> Result<(), Error> {
        match self.current() {
            None => Ok(()),
            Some(p) => {
                let wait = p
                    .until
                    .and_then(|u| u.duration_since(SystemTime::now()).ok())
                    .unwrap_or(RECHECK);
                Err(Error::rate_limited(
                    format!("connector paused: {}", p.reason),
                    Some(wait),
                ))
            }
        }
    }

    pub async fn pause(&self, reason: &str, until: Option<SystemTime>) {
        let pause = Pause {
            reason: reason.to_owned(),
            until,
        };
        if self.current().as_ref() == Some(&pause) {
            return;
        }
        *self.lock() = Some(pause);
        if !self.record {
            return;
        }
        tracing::error!(connector = %self.scope, until_ms = until.map(ms), "Connector paused: {reason}");
        let written = async {
            self.state
                .put_state(&self.scope, keys::PAUSE_ACCOUNT, &self.account)
                .await?;
            self.state
                .put_state(&self.scope, keys::PAUSE_REASON, reason)
                .await?;
            match until {
                Some(u) => {
                    self.state
                        .put_state(&self.scope, keys::PAUSED_UNTIL_MS, &ms(u).to_string())
                        .await
                }
                None => {
                    self.state
                        .delete_state(&self.scope, keys::PAUSED_UNTIL_MS)
                        .await
                }
            }
        };
        if let Err(e) = written.await {
            tracing::warn!(connector = %self.scope, error = %e, "Cannot record the pause for `status`.");
        }
    }

    /// Lifts the pause early (an authentication that works again).
    pub async fn resume(&self) {
        if self.lock().take().is_some()
            && self.record
            && let Err(e) = self.clear_persisted().await
        {
            tracing::warn!(connector = %self.scope, error = %e, "Cannot clear the recorded pause.");
        }
    }

    async fn clear_persisted(&self) -> wa2crm_core::Result<()> {
        self.state
            .delete_state(&self.scope, keys::PAUSE_REASON)
            .await?;
        self.state
            .delete_state(&self.scope, keys::PAUSE_ACCOUNT)
            .await?;
        self.state
            .delete_state(&self.scope, keys::PAUSED_UNTIL_MS)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::{ErrorKind, MemoryStateStore};

    #[tokio::test]
    async fn a_timed_pause_survives_a_restart_and_an_untimed_one_does_not() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let gate = PauseGate::load("hs", state.clone(), "acct", true)
            .await
            .unwrap();
        assert!(gate.check().is_ok());
        let until = SystemTime::now() + Duration::from_secs(3600);
        gate.pause("daily quota spent", Some(until)).await;
        let e = gate.check().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::RateLimited { .. }));
        assert!(e.message().contains("daily quota spent"), "{e}");
        assert!(e.retry_after().unwrap() > Duration::from_secs(3500));

        let again = PauseGate::load("hs", state.clone(), "acct", true)
            .await
            .unwrap();
        assert_eq!(again.current().unwrap().reason, "daily quota spent");

        again.pause("refresh token dead", None).await;
        assert_eq!(
            state
                .get_state("hs", keys::PAUSE_REASON)
                .await
                .unwrap()
                .as_deref(),
            Some("refresh token dead")
        );
        assert_eq!(again.check().unwrap_err().retry_after(), Some(RECHECK));
        let restarted = PauseGate::load("hs", state.clone(), "acct", true)
            .await
            .unwrap();
        assert!(restarted.check().is_ok());
        assert_eq!(
            state.get_state("hs", keys::PAUSE_REASON).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_expired_pause_lifts_itself() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let gate = PauseGate::load("hs", state, "acct", true).await.unwrap();
        gate.pause("x", Some(SystemTime::now() - Duration::from_secs(1)))
            .await;
        assert!(gate.check().is_ok());
    }

    /// A timed pause of one account is not the pause of another the configuration now names,
    /// and a `check` records none (its findings are not the daemon's state).
    #[tokio::test]
    async fn a_pause_belongs_to_its_account_and_a_check_records_none() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let until = SystemTime::now() + Duration::from_secs(3600);
        let sandbox = PauseGate::load("sf", state.clone(), "sandbox-org", true)
            .await
            .unwrap();
        sandbox
            .pause("daily API allocation spent", Some(until))
            .await;
        let production = PauseGate::load("sf", state.clone(), "production-org", true)
            .await
            .unwrap();
        assert!(production.check().is_ok());
        assert_eq!(
            state.get_state("sf", keys::PAUSE_REASON).await.unwrap(),
            None
        );

        let check = PauseGate::load("sf", state.clone(), "production-org", false)
            .await
            .unwrap();
        check.pause("the credentials are refused", None).await;
        assert!(check.check().is_err(), "the check itself still stops");
        assert_eq!(
            state.get_state("sf", keys::PAUSE_REASON).await.unwrap(),
            None,
            "status never sees a check's pause"
        );
    }
}
