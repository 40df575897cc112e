//! Bearer tokens: a private-app token as it is, or OAuth access tokens refreshed through
//! `POST /oauth/v3/token` (form body) ahead of `expires_in`, one refresh at a time.
//!
//! HubSpot may hand back a new refresh token. It is written to the state store, durably, before
//! the access token that came with it is used: a crash between the two must not leave wa2crm
//! holding only a refresh token HubSpot has already retired.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use wa2crm_core::Result;
use wa2crm_rest::engine::Credentials;
use wa2crm_rest::oauth::{RefreshVendor, Refusal};
use wa2crm_rest::token::TokenCache;

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

/// How HubSpot's refreshes are named and refused; its tokens live 30 minutes when the answer
/// is silent (HubSpot says 1800 s today).
pub const REFRESH: RefreshVendor = RefreshVendor {
    what: "HubSpot token refresh",
    refused,
    silent_lifetime: Some(Duration::from_secs(1800)),
};

/// A refused refresh in HubSpot's words: it names the cause in `status`; RFC 6749's codes mean
/// the same.
fn refused(r: &Refusal) -> String {
    let dead = matches!(
        r.status.as_deref(),
        Some(DEAD_REFRESH_TOKEN | "BAD_CLIENT_ID")
    ) || matches!(r.error.as_deref(), Some("invalid_grant" | "invalid_client"));
    let code = r.status.as_deref().unwrap_or(r.code());
    format!(
        "HubSpot refused the OAuth refresh ({code}: {}). {}",
        r.description(),
        if dead {
            "Re-authorize the app in HubSpot, put the new refresh_token (and client_id/client_secret) \
             in the config or the credentials directory, then restart wa2crm"
        } else {
            "Check client_id, client_secret and refresh_token"
        }
    )
}
