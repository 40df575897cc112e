//! Access tokens from the refresh-token grant at the data centre's accounts server, and the API
//! domain each token answer names (every call goes there). Zoho answers its refusals with 200
//! and an `error` in the body: `invalid_code` (the refresh token is dead), `invalid_client`, or
//! `Access Denied` once a refresh token has minted 10 access tokens in 10 minutes — so a token
//! is reused until a minute before its hour ends, and refreshed once for every worker and every
//! instance on the same queue database (README.md, "Zoho CRM": sources).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use wa2crm_core::{Error, Result};
use wa2crm_rest::engine::Credentials;
use wa2crm_rest::token::{self, AccessToken, SharedTokenSource, TokenCache, TokenSource};

/// How long to leave the token endpoint alone after `Access Denied`: the rest of its window.
pub const REFRESH_LIMIT_WAIT: Duration = Duration::from_secs(10 * 60);

pub struct RefreshGrant {
    pub http: reqwest::Client,
    pub token_url: reqwest::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    /// Whether `api_domain` may be any host (`accounts_url` was given: the sandbox, a proxy);
    /// with a `data_centre` it must be one of Zoho's API hosts.
    pub any_api_domain: bool,
    /// The `api_domain` of the latest token answer.
    pub api_domain: Arc<RwLock<Option<reqwest::Url>>>,
}

/// What the admin should do about a refusal.
fn refused(error: &str, description: &str) -> Error {
    match error {
        "Access Denied" => Error::transient(format!(
            "Zoho's accounts server refused a token refresh: {error} ({description}); a refresh \
             token mints at most 10 access tokens in 10 minutes. Trying again later"
        ))
        .with_retry_in(REFRESH_LIMIT_WAIT),
        "invalid_code" => Error::permanent(
            "Zoho refused the refresh token (invalid_code): it was revoked, or belongs to another \
             data centre. Make a new one (README.md, Zoho CRM, step 2), put it in the config or \
             the credentials directory, then restart wa2crm",
        ),
        "invalid_client" => Error::permanent(
            "Zoho refused the client (invalid_client): check client_id and client_secret, and that \
             data_centre is where the client was registered",
        ),
        other => Error::permanent(format!(
            "Zoho refused the token refresh ({other}: {description}); check client_id, \
             client_secret and refresh_token"
        )),
    }
}

impl RefreshGrant {
    /// `api_domain` as a URL Zoho may send us to.
    fn api_domain(&self, answer: &Value) -> Result<reqwest::Url> {
        let text = answer["api_domain"].as_str().unwrap_or_default();
        let url = reqwest::Url::parse(text).map_err(|_| {
            Error::transient(format!(
                "Zoho's token answer named no usable api_domain ({text:?})"
            ))
        })?;
        let zoho = url.scheme() == "https"
            && url.host_str().is_some_and(|h| {
                h.starts_with("www.zohoapis.")
                    || h.starts_with("zohoapis.")
                    || h.contains(".zohoapis.")
            });
        if zoho || (self.any_api_domain && wa2crm_core::endpoint::check(text).is_ok()) {
            Ok(url)
        } else {
            Err(Error::permanent(format!(
                "Zoho's token answer sent API calls to {text:?}, which is not a Zoho API host"
            )))
        }
    }
}

#[async_trait]
impl TokenSource for RefreshGrant {
    async fn fetch(&self) -> Result<AccessToken> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("refresh_token", self.refresh_token.expose_secret()),
        ];
        let (status, answer) =
            token::post_form(&self.http, &self.token_url, &form, "Zoho token refresh").await?;
        if let Some(error) = answer["error"].as_str() {
            let description = answer["error_description"].as_str().unwrap_or("");
            return Err(refused(error, description));
        }
        let Some(access) = answer["access_token"].as_str() else {
            return Err(Error::transient(format!(
                "Zoho's token answer ({status}) held no access_token"
            )));
        };
        let domain = self.api_domain(&answer)?;
        *self.api_domain.write().unwrap_or_else(|e| e.into_inner()) = Some(domain);
        let lifetime = answer["expires_in"].as_u64().unwrap_or(3600);
        Ok(AccessToken {
            secret: SecretString::from(access.to_owned()),
            expires_at: Some(tokio::time::Instant::now() + Duration::from_secs(lifetime)),
        })
    }

    fn shared_extra(&self) -> Option<String> {
        self.api_domain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|u| u.to_string())
    }

    fn adopt_extra(&self, extra: &str) {
        if let Ok(url) = reqwest::Url::parse(extra) {
            *self.api_domain.write().unwrap_or_else(|e| e.into_inner()) = Some(url);
        }
    }
}

/// The cache every call takes its token from: refreshed a minute before the hour ends, one
/// refresh at a time across instances; with `fresh` (a `check`) no stored token is taken.
pub fn token_cache(
    grant: RefreshGrant,
    state: Arc<dyn wa2crm_core::StateStore>,
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

/// The engine's credentials: the cache's tokens, sent as `Zoho-oauthtoken …`.
pub struct ZohoTokens(pub Arc<TokenCache>);

#[async_trait]
impl Credentials for ZohoTokens {
    async fn token(&self) -> Result<SecretString> {
        self.0.get().await
    }

    async fn refresh(&self, refused: &SecretString) -> Option<Result<SecretString>> {
        Some(self.0.refresh_after_rejection(refused).await)
    }

    fn scheme(&self) -> &str {
        "Zoho-oauthtoken"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn grant(any: bool) -> RefreshGrant {
        RefreshGrant {
            http: reqwest::Client::new(),
            token_url: reqwest::Url::parse("https://accounts.zoho.eu/oauth/v2/token").unwrap(),
            client_id: "1000.x".into(),
            client_secret: SecretString::from("s"),
            refresh_token: SecretString::from("r"),
            any_api_domain: any,
            api_domain: Arc::default(),
        }
    }

    #[test]
    fn api_calls_go_only_to_zoho_hosts_unless_the_accounts_url_was_given() {
        let g = grant(false);
        let answer = |d: &str| serde_json::json!({"api_domain": d});
        assert!(g.api_domain(&answer("https://www.zohoapis.eu")).is_ok());
        assert!(g.api_domain(&answer("https://zohoapis.ca")).is_ok());
        assert!(g.api_domain(&answer("https://evil.example")).is_err());
        assert!(g.api_domain(&answer("http://www.zohoapis.eu")).is_err());
        assert!(g.api_domain(&answer("")).is_err());
        assert!(
            grant(true)
                .api_domain(&answer("http://127.0.0.1:9"))
                .is_ok()
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        let limit = refused("Access Denied", "too many requests");
        assert_eq!(limit.retry_in(), Some(REFRESH_LIMIT_WAIT), "{limit:?}");
        assert_eq!(limit.kind(), wa2crm_core::ErrorKind::Transient);
        assert!(
            refused("invalid_code", "")
                .message()
                .contains("Make a new one")
        );
        assert_eq!(
            refused("invalid_client", "").kind(),
            wa2crm_core::ErrorKind::Permanent
        );
    }
}
