//! Credentials: an API token (HTTP Basic as `{email}/token`), or OAuth access tokens refreshed with
//! the refresh-token grant Zendesk introduced on 2025-04-30. Each refresh deletes the previous
//! access and refresh tokens, so the new refresh token is stored, durably, before the access token
//! that came with it is used, and refreshes are single-flight across every instance on the same
//! queue database (docs/vendors/zendesk.md, "Auth").

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use wa2crm_core::{Error, Result, StateStore};
use wa2crm_rest::engine::Credentials;
use wa2crm_rest::oauth::{Endpoint, Exchanged, NoExtra};
use wa2crm_rest::refresh::RotatingRefreshToken;
use wa2crm_rest::token::{AccessToken, SharedTokenSource, TokenCache, TokenSource};

pub enum Auth {
    /// `user` is `{email}/token`; the token is Basic's password.
    ApiToken {
        user: String,
        token: SecretString,
    },
    OAuth(TokenCache),
}

impl Auth {
    pub fn api_token(email: &str, token: SecretString) -> Auth {
        Auth::ApiToken {
            user: format!("{email}/token"),
            token,
        }
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self, Auth::OAuth(_))
    }
}

#[async_trait]
impl Credentials for Auth {
    async fn token(&self) -> Result<SecretString> {
        match self {
            Auth::ApiToken { token, .. } => Ok(token.clone()),
            Auth::OAuth(cache) => cache.get().await,
        }
    }

    async fn refresh(&self, refused: &SecretString) -> Option<Result<SecretString>> {
        match self {
            Auth::ApiToken { .. } => None,
            Auth::OAuth(cache) => Some(cache.refresh_after_rejection(refused).await),
        }
    }

    fn basic_user(&self) -> Option<&str> {
        match self {
            Auth::ApiToken { user, .. } => Some(user),
            Auth::OAuth(_) => None,
        }
    }
}

/// `POST /oauth/tokens` with `grant_type=refresh_token`.
pub struct RefreshGrant {
    pub http: reqwest::Client,
    pub token_url: reqwest::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    refresh_token: RotatingRefreshToken,
}

impl RefreshGrant {
    pub async fn load(
        http: reqwest::Client,
        token_url: reqwest::Url,
        client_id: &str,
        client_secret: SecretString,
        configured: &SecretString,
        state: Arc<dyn StateStore>,
        scope: &str,
    ) -> Result<Self> {
        Ok(RefreshGrant {
            http,
            token_url,
            client_id: client_id.to_owned(),
            client_secret,
            refresh_token: RotatingRefreshToken::load(state, scope, configured).await?,
        })
    }
}

#[async_trait]
impl TokenSource for RefreshGrant {
    async fn fetch(&self) -> Result<AccessToken> {
        let refresh = self.refresh_token.get().await;
        let endpoint = Endpoint {
            http: &self.http,
            token_url: &self.token_url,
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            what: "Zendesk token refresh",
        };
        let answer = match endpoint.refresh::<NoExtra>(&refresh).await? {
            Exchanged::Granted(g) => g,
            Exchanged::Refused(r) => {
                return Err(Error::permanent(format!(
                    "Zendesk refused the OAuth refresh ({r}). {}",
                    if matches!(r.code(), "invalid_grant" | "invalid_client") {
                        "Authorize wa2crm's OAuth client again, put the new refresh_token in the \
                         config or the credentials directory, then restart wa2crm"
                    } else {
                        "Check client_id, client_secret and refresh_token"
                    }
                )));
            }
        };
        // Durable before use: the refresh deleted the old refresh token at Zendesk.
        self.refresh_token
            .rotated(answer.refresh_token.map(|t| t.expose_secret().to_owned()))
            .await?;
        Ok(AccessToken {
            secret: answer.access_token,
            // A token without `expires_in` does not expire (clients made before 2026-04-30).
            expires_at: answer.expires_in.map(|d| Instant::now() + d),
        })
    }
}

/// A cache that refreshes a minute before Zendesk's expiry (or at 80 % of a short lifetime), one
/// refresh at a time across every instance on the same state store.
pub fn oauth_cache(
    grant: RefreshGrant,
    state: Arc<dyn StateStore>,
    scope: &str,
    account: &str,
    fresh: bool,
) -> TokenCache {
    let mut shared = SharedTokenSource::new(Box::new(grant), state, scope, account);
    if fresh {
        shared = shared.fresh();
    }
    TokenCache::new(Box::new(shared), Duration::from_secs(60), None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_api_token_is_basic_as_the_agent_and_cannot_be_refreshed() {
        let auth = Auth::api_token("agent@acme.example", SecretString::from("t0k3n"));
        assert_eq!(auth.basic_user(), Some("agent@acme.example/token"));
        assert_eq!(auth.token().await.unwrap().expose_secret(), "t0k3n");
        assert!(auth.refresh(&SecretString::from("t0k3n")).await.is_none());
        assert!(!auth.is_oauth());
    }
}
