//! Sessions: the JWT bearer flow (an RS256 assertion signed with the connected app's key), the
//! refresh-token flow (its rotated token persisted before use), or client credentials (My
//! Domain). Salesforce's token answers carry no `expires_in`: a session ends when a call answers
//! 401 INVALID_SESSION_ID (one re-authentication, shared by every worker, then the call is
//! replayed), or after `session_minutes` (a proactive renewal). Every call goes to the
//! `instance_url` of the latest token answer.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use wa2crm_core::{Error, Result, StateStore};
use wa2crm_rest::oauth::{Endpoint, Exchanged, ExtraTokenFields, Granted, Refusal};
use wa2crm_rest::refresh::RotatingRefreshToken;
use wa2crm_rest::token::{self, AccessToken, TokenCache, TokenSource};

use crate::config::{Flow, SalesforceConfig};

/// How the token endpoint is asked.
pub enum Grant {
    Jwt {
        username: String,
        audience: String,
        key: EncodingKey,
    },
    Refresh {
        client_secret: SecretString,
        refresh_token: RotatingRefreshToken,
    },
    ClientCredentials {
        client_secret: SecretString,
    },
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

pub struct SessionSource {
    pub http: reqwest::Client,
    pub token_url: reqwest::Url,
    pub client_id: String,
    pub grant: Grant,
    /// The `instance_url` of the latest token answer, where every API call goes.
    pub instance_url: Arc<RwLock<Option<reqwest::Url>>>,
}

/// Salesforce's JWT bearer answer, read leniently: only `access_token` and `instance_url` are
/// required (`issued_at`, `signature`, `id`, `scope` are often missing).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

/// What Salesforce's token answers carry besides RFC 6749's fields: where the org's API is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionExtra {
    instance_url: String,
}

impl ExtraTokenFields for SessionExtra {}

impl SessionSource {
    pub async fn new(
        config: &SalesforceConfig,
        http: reqwest::Client,
        state: Arc<dyn StateStore>,
        scope: &str,
    ) -> Result<Self> {
        let base = config.login_url.trim_end_matches('/');
        let token_url = reqwest::Url::parse(&format!("{base}/services/oauth2/token"))
            .map_err(|e| Error::permanent(format!("connectors.{scope}.login_url: {e}")))?;
        let secret = |what: &str| {
            config.client_secret.clone().ok_or_else(|| {
                Error::permanent(format!(
                    "connectors.{scope}.client_secret is needed for {what}"
                ))
            })
        };
        let grant = match config.flow() {
            Some(Flow::JwtBearer) => Grant::Jwt {
                username: config.username.clone().unwrap_or_default(),
                audience: base.to_owned(),
                key: load_key(config, scope)?,
            },
            Some(Flow::RefreshToken) => Grant::Refresh {
                client_secret: secret("the refresh-token flow")?,
                refresh_token: RotatingRefreshToken::load(
                    state,
                    scope,
                    config.refresh_token.as_ref().ok_or_else(|| {
                        Error::permanent(format!("connectors.{scope}.refresh_token is missing"))
                    })?,
                )
                .await?,
            },
            Some(Flow::ClientCredentials) => Grant::ClientCredentials {
                client_secret: secret("client credentials")?,
            },
            None => {
                return Err(Error::permanent(format!(
                    "connectors.{scope}: no complete set of credentials"
                )));
            }
        };
        Ok(SessionSource {
            http,
            token_url,
            client_id: config.client_id.clone(),
            grant,
            instance_url: Arc::new(RwLock::new(None)),
        })
    }

    fn assertion(&self, username: &str, audience: &str, key: &EncodingKey) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: &self.client_id,
            sub: username,
            aud: audience,
            // "within 3 minutes": leave room for clock skew.
            exp: now + 150,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
            .map_err(|e| Error::permanent(format!("cannot sign the JWT assertion: {e}")))
    }
}

fn load_key(config: &SalesforceConfig, scope: &str) -> Result<EncodingKey> {
    let pem = match (&config.private_key, &config.private_key_file) {
        (Some(k), _) => k.expose_secret().as_bytes().to_vec(),
        (None, Some(path)) => std::fs::read(path).map_err(|e| {
            Error::permanent(format!(
                "connectors.{scope}.private_key_file {}: {e}",
                path.display()
            ))
        })?,
        (None, None) => {
            return Err(Error::permanent(format!(
                "connectors.{scope}: the JWT bearer flow needs private_key_file"
            )));
        }
    };
    EncodingKey::from_rsa_pem(&pem).map_err(|e| {
        Error::permanent(format!(
            "connectors.{scope}: the private key is not an RSA key in PEM form ({e})"
        ))
    })
}

impl SessionSource {
    /// The JWT bearer grant (RFC 7523), which the `oauth2` crate does not carry: one form POST.
    async fn jwt_login(
        &self,
        username: &str,
        audience: &str,
        key: &EncodingKey,
    ) -> Result<Exchanged<SessionExtra>> {
        let assertion = self.assertion(username, audience, key)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let (status, body) =
            token::post_form(&self.http, &self.token_url, &form, "Salesforce login").await?;
        if !status.is_success() {
            return Ok(Exchanged::Refused(
                serde_json::from_value::<Refusal>(body).unwrap_or_default(),
            ));
        }
        let answer: TokenAnswer = serde_json::from_value(body).map_err(|e| {
            Error::transient(format!("Salesforce's token answer could not be read: {e}"))
        })?;
        Ok(Exchanged::Granted(Granted {
            access_token: SecretString::from(answer.access_token),
            refresh_token: None,
            expires_in: None,
            extra: SessionExtra {
                instance_url: answer.instance_url,
            },
        }))
    }
}

#[async_trait]
impl TokenSource for SessionSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let endpoint = |client_secret| Endpoint {
            http: &self.http,
            token_url: &self.token_url,
            client_id: &self.client_id,
            client_secret,
            what: "Salesforce login",
        };
        let exchanged = match &self.grant {
            Grant::Jwt {
                username,
                audience,
                key,
            } => self.jwt_login(username, audience, key).await?,
            Grant::Refresh {
                client_secret,
                refresh_token,
            } => {
                let refresh = refresh_token.get().await;
                endpoint(client_secret).refresh(&refresh).await?
            }
            Grant::ClientCredentials { client_secret } => {
                endpoint(client_secret).client_credentials().await?
            }
        };
        let answer = match exchanged {
            Exchanged::Granted(g) => g,
            Exchanged::Refused(r) => {
                return Err(Error::permanent(format!(
                    "Salesforce refused the login ({r}). {}",
                    advice(&self.grant, r.description())
                )));
            }
        };
        if let Grant::Refresh { refresh_token, .. } = &self.grant {
            // Durable before use (rotation).
            refresh_token
                .rotated(answer.refresh_token.map(|t| t.expose_secret().to_owned()))
                .await?;
        }
        let instance_url = answer.extra.instance_url;
        let instance = reqwest::Url::parse(&instance_url).map_err(|e| {
            Error::transient(format!("Salesforce's instance_url {instance_url:?}: {e}"))
        })?;
        *self.instance_url.write().unwrap_or_else(|e| e.into_inner()) = Some(instance);
        Ok(AccessToken {
            secret: answer.access_token,
            expires_at: None,
        })
    }

    fn shared_extra(&self) -> Option<String> {
        self.instance_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|u| u.to_string())
    }

    fn adopt_extra(&self, extra: &str) {
        if let Ok(url) = reqwest::Url::parse(extra) {
            *self.instance_url.write().unwrap_or_else(|e| e.into_inner()) = Some(url);
        }
    }
}

/// What the admin should do about a refused login, by flow and Salesforce's description.
fn advice(grant: &Grant, description: &str) -> &'static str {
    match grant {
        Grant::Jwt { .. } if description.contains("approved") => {
            "Pre-authorize the integration user: in the connected app, set Permitted Users to \
             \"Admin approved users are pre-authorized\" and add the user's profile or permission set"
        }
        Grant::Jwt { .. } if description.contains("audience") => {
            "login_url must be https://login.salesforce.com (production) or https://test.salesforce.com (sandbox)"
        }
        Grant::Jwt { .. } => {
            "Check client_id (the consumer key), username, and that the certificate uploaded to the \
             connected app matches private_key_file"
        }
        Grant::Refresh { .. } => {
            "The refresh token is expired or revoked: authorize the app again and configure the new \
             refresh_token, then restart wa2crm"
        }
        Grant::ClientCredentials { .. } => {
            "Check client_id, client_secret, that the client credentials flow is enabled with a Run \
             As user, and that login_url is your My Domain URL"
        }
    }
}

/// Sessions renewed after `session_minutes` at the latest, one login at a time across every
/// instance on the same state store (the queue database).
/// `account` names the org's credentials; with `fresh` (a `check`) no stored session is taken.
pub fn session_cache(
    source: SessionSource,
    session: Duration,
    state: Arc<dyn wa2crm_core::StateStore>,
    scope: &str,
    account: &str,
    fresh: bool,
) -> TokenCache {
    let mut shared =
        wa2crm_rest::token::SharedTokenSource::new(Box::new(source), state, scope, account);
    if fresh {
        shared = shared.fresh();
    }
    TokenCache::new(Box::new(shared), Duration::from_secs(60), Some(session))
}
