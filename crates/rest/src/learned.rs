//! A fact about the vendor's account that a connector learns once, with a call of its own after
//! delivering, and keeps in the state store for the account its credentials open, so a restarted
//! daemon has it at once: what the console's links into the CRM need (HubSpot's portal, Zoho's
//! org). Only a convenience: a failed look-up is tried again after [`RETRY`], not per batch.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wa2crm_core::{Error, Result, StateStore};

/// How long a failed look-up waits before the next delivery tries again.
pub const RETRY: Duration = Duration::from_secs(10 * 60);

/// As kept: the value, and the account it is of (credentials for another account learn
/// their own).
#[derive(Serialize, Deserialize)]
struct Kept<T> {
    account: String,
    #[serde(flatten)]
    value: T,
}

pub struct Learned<T> {
    scope: String,
    key: &'static str,
    state: Arc<dyn StateStore>,
    account: String,
    /// Whether what is learned is kept: not by a command that only looks (`check`).
    record: bool,
    known: OnceLock<T>,
    last_try: Mutex<Option<Instant>>,
}

impl<T: Serialize + DeserializeOwned> Learned<T> {
    /// Picks up what an earlier run learned under `key` for the same account, if `valid`.
    pub async fn load(
        scope: &str,
        key: &'static str,
        state: Arc<dyn StateStore>,
        account: &str,
        record: bool,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Self> {
        let learned = Learned {
            scope: scope.to_owned(),
            key,
            state,
            account: account.to_owned(),
            record,
            known: OnceLock::new(),
            last_try: Mutex::new(None),
        };
        let kept = learned.state.get_state(scope, key).await?;
        if let Some(k) = kept.and_then(|v| serde_json::from_str::<Kept<T>>(&v).ok())
            && k.account == account
            && valid(&k.value)
        {
            let _ = learned.known.set(k.value);
        }
        Ok(learned)
    }

    pub fn get(&self) -> Option<&T> {
        self.known.get()
    }

    /// Whether a look-up is due: nothing is known and none was tried in the last [`RETRY`].
    /// Marks the try.
    fn due(&self) -> bool {
        if self.known.get().is_some() {
            return false;
        }
        // A poisoned lock still holds a plain time.
        let mut last = self.last_try.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < RETRY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Runs `look_up` when one is due (see [`Learned::due`]) and keeps what it finds. A failure,
    /// or an answer that names nothing usable (`Ok(None)`), only delays the links: it is logged
    /// and tried again after [`RETRY`]. `look_up` is not polled unless due.
    pub async fn look_up(
        &self,
        connector: &str,
        what: &str,
        look_up: impl Future<Output = Result<Option<T>>>,
    ) {
        if !self.due() {
            return;
        }
        let result = match look_up.await {
            Ok(Some(value)) => self.learned(value).await,
            Ok(None) => Err(Error::permanent("the answer does not name it")),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(connector, error = %e, "Could not learn {what} for the console's links; trying again in ten minutes.");
        }
    }

    /// Keeps what a look-up found (in the state store unless only looking).
    async fn learned(&self, value: T) -> Result<()> {
        let kept = Kept {
            account: self.account.clone(),
            value,
        };
        if self.record {
            let text = serde_json::to_string(&kept)
                .map_err(|e| Error::permanent("cannot write it down").with_source(e))?;
            self.state.put_state(&self.scope, self.key, &text).await?;
        }
        let _ = self.known.set(kept.value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Org {
        name: String,
    }

    async fn load(state: &Arc<dyn StateStore>, account: &str, record: bool) -> Learned<Org> {
        Learned::load("crm", "org", state.clone(), account, record, |o: &Org| {
            !o.name.is_empty()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_look_up_runs_when_due_and_an_empty_answer_waits_for_the_next_try() {
        let state: Arc<dyn StateStore> = Arc::new(wa2crm_core::MemoryStateStore::default());
        let learned = load(&state, "acct", true).await;
        learned.look_up("crm", "the org", async { Ok(None) }).await;
        assert!(learned.get().is_none(), "nothing named, nothing kept");
        // Tried moments ago: the next look-up is not even polled.
        learned
            .look_up("crm", "the org", async { panic!("not due") })
            .await;
        let fresh = load(&state, "acct", true).await;
        let org = Org {
            name: "org1".into(),
        };
        fresh
            .look_up("crm", "the org", async { Ok(Some(org.clone())) })
            .await;
        assert_eq!(fresh.get(), Some(&org));
        assert_eq!(load(&state, "acct", true).await.get(), Some(&org));
    }

    #[tokio::test]
    async fn what_is_learned_is_kept_for_its_account_and_asked_once() {
        let state: Arc<dyn StateStore> = Arc::new(wa2crm_core::MemoryStateStore::default());
        let first = load(&state, "acct", true).await;
        assert!(first.get().is_none());
        assert!(first.due());
        assert!(!first.due(), "tried moments ago");
        first
            .learned(Org {
                name: "org1".into(),
            })
            .await
            .unwrap();
        assert_eq!(first.get().map(|o| o.name.as_str()), Some("org1"));
        let kept = state.get_state("crm", "org").await.unwrap().unwrap();
        assert_eq!(kept, r#"{"account":"acct","name":"org1"}"#);
        // A restart knows it; other credentials do not.
        let again = load(&state, "acct", true).await;
        assert_eq!(again.get(), first.get());
        assert!(!again.due());
        assert!(load(&state, "other", true).await.get().is_none());
        // A kept value that is not valid any more is not used.
        state
            .put_state("crm", "org", r#"{"account":"acct","name":""}"#)
            .await
            .unwrap();
        assert!(load(&state, "acct", true).await.get().is_none());
        // Only looking keeps nothing.
        let looking = load(&state, "acct", false).await;
        looking
            .learned(Org {
                name: "org2".into(),
            })
            .await
            .unwrap();
        assert_eq!(looking.get().map(|o| o.name.as_str()), Some("org2"));
        let kept = state.get_state("crm", "org").await.unwrap().unwrap();
        assert!(!kept.contains("org2"), "{kept}");
    }
}
