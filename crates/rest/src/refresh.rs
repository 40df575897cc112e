//! A refresh token that the vendor may rotate: each refresh can hand back a new one and retire
//! the old. The new one is written to the state store, durably, before the access token that came
//! with it is used — a crash between the two must not leave wa2crm holding only a refresh token
//! the vendor has already retired. The stored token is preferred over the configured one until
//! the admin configures a different one (after re-authorizing).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wa2crm_core::{Error, Result, StateStore};

/// The state key of the refresh token in use.
pub const REFRESH_TOKEN_KEY: &str = "oauth_refresh_token";

#[derive(Serialize, Deserialize)]
struct Stored {
    /// sha256 of the configured refresh token this one descends from.
    configured_sha256: String,
    token: String,
}

pub struct RotatingRefreshToken {
    state: Arc<dyn StateStore>,
    scope: String,
    configured_sha256: String,
    current: Mutex<SecretString>,
}

fn fingerprint(s: &SecretString) -> String {
    hex::encode(Sha256::digest(s.expose_secret().as_bytes()))
}

impl RotatingRefreshToken {
    pub async fn load(
        state: Arc<dyn StateStore>,
        scope: &str,
        configured: &SecretString,
    ) -> Result<Self> {
        let configured_sha256 = fingerprint(configured);
        let stored = state
            .get_state(scope, REFRESH_TOKEN_KEY)
            .await?
            .and_then(|v| serde_json::from_str::<Stored>(&v).ok())
            .filter(|s| s.configured_sha256 == configured_sha256)
            .map(|s| SecretString::from(s.token));
        Ok(RotatingRefreshToken {
            state,
            scope: scope.to_owned(),
            configured_sha256,
            current: Mutex::new(stored.unwrap_or_else(|| configured.clone())),
        })
    }

    /// The token to refresh with: the one in the state store when it descends from the
    /// configured one (another instance may have rotated it since this one last looked), else
    /// this process's.
    pub async fn get(&self) -> SecretString {
        let mut current = self.current.lock().await;
        if let Ok(Some(v)) = self.state.get_state(&self.scope, REFRESH_TOKEN_KEY).await
            && let Ok(stored) = serde_json::from_str::<Stored>(&v)
            && stored.configured_sha256 == self.configured_sha256
            && stored.token != current.expose_secret()
        {
            *current = SecretString::from(stored.token);
        }
        current.clone()
    }

    /// Records what the vendor answered: a new token is persisted, then used.
    pub async fn rotated(&self, new: Option<String>) -> Result<()> {
        let mut current = self.current.lock().await;
        let Some(new) = new.filter(|n| !n.is_empty() && n != current.expose_secret()) else {
            return Ok(());
        };
        let stored = serde_json::to_string(&Stored {
            configured_sha256: self.configured_sha256.clone(),
            token: new.clone(),
        })
        .map_err(|e| Error::permanent(format!("refresh token record: {e}")))?;
        self.state
            .put_state(&self.scope, REFRESH_TOKEN_KEY, &stored)
            .await?;
        *current = SecretString::from(new);
        tracing::info!(connector = %self.scope, "The refresh token was rotated; the new one is stored.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::MemoryStateStore;

    #[tokio::test]
    async fn a_rotated_token_is_stored_and_wins_until_the_config_changes() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let configured = SecretString::from("rt-0");
        let r = RotatingRefreshToken::load(state.clone(), "c", &configured)
            .await
            .unwrap();
        assert_eq!(r.get().await.expose_secret(), "rt-0");
        r.rotated(Some("rt-1".into())).await.unwrap();
        r.rotated(None).await.unwrap();
        assert_eq!(r.get().await.expose_secret(), "rt-1");
        let again = RotatingRefreshToken::load(state.clone(), "c", &configured)
            .await
            .unwrap();
        assert_eq!(
            again.get().await.expose_secret(),
            "rt-1",
            "a restart keeps the rotated one"
        );
        let reauthorized = SecretString::from("rt-new");
        let fresh = RotatingRefreshToken::load(state, "c", &reauthorized)
            .await
            .unwrap();
        assert_eq!(
            fresh.get().await.expose_secret(),
            "rt-new",
            "a newly configured one wins"
        );
    }
}
