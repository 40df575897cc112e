//! Bearer tokens: a private-app token as it is, or OAuth access tokens refreshed through
//! `POST /oauth/v3/token` (form body) ahead of `expires_in`, one refresh at a time.
//!
//! HubSpot may hand back a new refresh token. It is written to the state store, durably, before
//! the access token that came with it is used: a crash between the two must not leave wa2crm
//! holding only a refresh token HubSpot has already retired.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use wa2crm_core::{Error, Result, StateStore};
use wa2crm_rest::engine::Credentials;
use wa2crm_rest::oauth::{Endpoint, Exchanged, NoExtra};
use wa2crm_rest::refresh::RotatingRefreshToken;
use wa2crm_rest::token::{AccessToken, TokenCache, TokenSource};

/// Marks a refresh token HubSpot will never accept again; the admin must re-authorize.
pub const DEAD_REFRESH_TOKEN: &str = "BAD_REFRESH_TOKEN";

pub enum Auth {
    Static(SecretString),
    OAuth(TokenCache),
}

impl Auth {
    pub async fn token(&self) -> Result<SecretString> {
        match self {
            Auth::Static(t) => Ok(t.clone()),
            Auth::OAuth(cache) => cache.get().await,
        }
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self, Auth::OAuth(_))
    }

    pub fn refreshes(&self) -> u64 {
        match self {
            Auth::Static(_) => 0,
            Auth::OAuth(cache) => cache.refreshes(),
        }
    }
}

#[async_trait]
impl Credentials for Auth {
    async fn token(&self) -> Result<SecretString> {
        Auth::token(self).await
    }

    /// After a 401: a fresh token, or `None` when there is nothing to refresh (a private-app
    /// token is what it is).
    async fn refresh(&self, rejected: &SecretString) -> Option<Result<SecretString>> {
        match self {
            Auth::Static(_) => None,
            Auth::OAuth(cache) => Some(cache.refresh_after_rejection(rejected).await),
        }
    }
}

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
            what: "HubSpot token refresh",
        };
        let answer = match endpoint.refresh::<NoExtra>(&refresh).await? {
            Exchanged::Granted(g) => g,
            Exchanged::Refused(r) => {
                // HubSpot names the cause in `status`; RFC 6749's codes mean the same.
                let dead =
                    matches!(
                        r.status.as_deref(),
                        Some(DEAD_REFRESH_TOKEN | "BAD_CLIENT_ID")
                    ) || matches!(r.error.as_deref(), Some("invalid_grant" | "invalid_client"));
                let code = r.status.as_deref().unwrap_or(r.code());
                return Err(Error::permanent(format!(
                    "HubSpot refused the OAuth refresh ({code}: {}). {}",
                    r.description(),
                    if dead {
                        "Re-authorize the app in HubSpot, put the new refresh_token (and client_id/client_secret) \
                         in the config or the credentials directory, then restart wa2crm"
                    } else {
                        "Check client_id, client_secret and refresh_token"
                    }
                )));
            }
        };
        // Durable before use: if storing fails, the new access token is not used either.
        self.refresh_token
            .rotated(answer.refresh_token.map(|t| t.expose_secret().to_owned()))
            .await?;
        // HubSpot says 1800 s today; follow what it says, and assume 30 minutes if it is silent.
        let lifetime = answer.expires_in.unwrap_or(Duration::from_secs(1800));
        Ok(AccessToken {
            secret: answer.access_token,
            expires_at: Some(Instant::now() + lifetime),
        })
    }
}

/// A cache that refreshes a minute before HubSpot's expiry (or at 80 % of a short lifetime), one
/// refresh at a time across every instance on the same state store (the queue database).
/// `account` names the portal's credentials ([`wa2crm_rest::token::account_fingerprint`]); with
/// `fresh` (a `check`) no stored token is taken.
pub fn oauth_cache(
    grant: RefreshGrant,
    state: Arc<dyn StateStore>,
    scope: &str,
    account: &str,
    fresh: bool,
) -> TokenCache {
    let mut shared =
        wa2crm_rest::token::SharedTokenSource::new(Box::new(grant), state, scope, account);
    if fresh {
        shared = shared.fresh();
    }
    TokenCache::new(Box::new(shared), Duration::from_secs(60), None)
}
