//! Credentials: an API token (HTTP Basic as `{email}/token`), or OAuth access tokens refreshed with
//! the refresh-token grant Zendesk introduced on 2025-04-30. Each refresh deletes the previous
//! access and refresh tokens, so the new refresh token is stored, durably, before the access token
//! that came with it is used, and refreshes are single-flight across every instance on the same
//! queue database (docs/vendors/zendesk.md, "Auth").

use async_trait::async_trait;
use secrecy::SecretString;
use wa2crm_core::Result;
use wa2crm_rest::engine::Credentials;
use wa2crm_rest::oauth::{RefreshVendor, Refusal};
use wa2crm_rest::token::TokenCache;

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

/// How Zendesk's refreshes are named and refused. A token answered without `expires_in` does
/// not expire (OAuth clients made before 2026-04-30).
pub const REFRESH: RefreshVendor = RefreshVendor {
    what: "Zendesk token refresh",
    refused,
    silent_lifetime: None,
};

fn refused(r: &Refusal) -> String {
    format!(
        "Zendesk refused the OAuth refresh ({r}). {}",
        if matches!(r.code(), "invalid_grant" | "invalid_client") {
            "Authorize wa2crm's OAuth client again, put the new refresh_token in the config or the \
             credentials directory, then restart wa2crm"
        } else {
            "Check client_id, client_secret and refresh_token"
        }
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn an_api_token_is_basic_as_the_agent_and_cannot_be_refreshed() {
        let auth = Auth::api_token("agent@acme.example", SecretString::from("t0k3n"));
        assert_eq!(auth.basic_user(), Some("agent@acme.example/token"));
        assert_eq!(auth.token().await.unwrap().expose_secret(), "t0k3n");
        assert!(auth.refresh(&SecretString::from("t0k3n")).await.is_none());
        assert!(!auth.is_oauth());
    }
}
