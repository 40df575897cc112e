//! The OAuth 2.0 token exchanges (RFC 6749 §6 refresh token, §4.4 client credentials) through the
//! `oauth2` crate, over our reqwest client (no redirects, our timeouts and User-Agent). What the
//! crate does not do stays ours: single-flight and cross-instance sharing ([`crate::token`]), a
//! rotated refresh token stored before use ([`crate::refresh`]), and each vendor's wording of a
//! refusal for the admin.
//!
//! A token endpoint that is down, slow or rate-limiting (429, 5xx, network) is a transient
//! `Err`; a refusal (400/401 with an RFC 6749 §5.2 error, or HubSpot's `status`/`message` form)
//! is [`Exchanged::Refused`] for the vendor to word.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RefreshToken,
    RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use wa2crm_core::{Error, Result, StateStore};

use crate::classify;
use crate::refresh::RotatingRefreshToken;
use crate::token::{AccessToken, SharedTokenSource, TokenCache, TokenSource};

pub use oauth2::ExtraTokenFields;

/// A token endpoint's refusal: RFC 6749 §5.2's `error`/`error_description`, or HubSpot's
/// `status`/`message` (it answers a dead refresh token with `BAD_REFRESH_TOKEN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Refusal {
    /// The code: RFC 6749's `error`, else the vendor's `status`.
    pub fn code(&self) -> &str {
        self.error
            .as_deref()
            .or(self.status.as_deref())
            .unwrap_or("")
    }

    pub fn description(&self) -> &str {
        self.error_description
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

impl oauth2::ErrorResponse for Refusal {}

/// What a successful exchange hands over; `extra` holds the vendor's own fields.
pub struct Granted<EF> {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
    pub extra: EF,
}

pub enum Exchanged<EF> {
    Granted(Granted<EF>),
    Refused(Refusal),
}

/// Where and as whom to exchange.
pub struct Endpoint<'a> {
    pub http: &'a reqwest::Client,
    pub token_url: &'a reqwest::Url,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    /// "HubSpot token refresh": how failures name the exchange.
    pub what: &'a str,
}

type Client<EF> = oauth2::Client<
    Refusal,
    StandardTokenResponse<EF, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

impl Endpoint<'_> {
    fn client<EF: ExtraTokenFields>(&self) -> Client<EF> {
        oauth2::Client::new(ClientId::new(self.client_id.to_owned()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            // Both vendors take the client's credentials in the form body.
            .set_auth_type(AuthType::RequestBody)
    }

    /// RFC 6749 §6: a new access token (and perhaps a new refresh token) for `refresh_token`.
    pub async fn refresh<EF: ExtraTokenFields + Clone>(
        &self,
        refresh_token: &SecretString,
    ) -> Result<Exchanged<EF>> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let http = self.adapter();
        let answer = self
            .client::<EF>()
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await;
        self.read(answer)
    }

    /// RFC 6749 §4.4: a token for the client itself.
    pub async fn client_credentials<EF: ExtraTokenFields + Clone>(&self) -> Result<Exchanged<EF>> {
        let http = self.adapter();
        let answer = self
            .client::<EF>()
            .exchange_client_credentials()
            .request_async(&http)
            .await;
        self.read(answer)
    }

    fn read<EF: ExtraTokenFields + Clone>(
        &self,
        answer: std::result::Result<
            StandardTokenResponse<EF, BasicTokenType>,
            RequestTokenError<Error, Refusal>,
        >,
    ) -> Result<Exchanged<EF>> {
        let what = self.what;
        match answer {
            Ok(t) => Ok(Exchanged::Granted(Granted {
                access_token: SecretString::from(t.access_token().secret().to_owned()),
                refresh_token: t
                    .refresh_token()
                    .map(|r| SecretString::from(r.secret().to_owned())),
                expires_in: t.expires_in(),
                extra: t.extra_fields().clone(),
            })),
            Err(RequestTokenError::ServerResponse(refusal)) => Ok(Exchanged::Refused(refusal)),
            Err(RequestTokenError::Request(e)) => Err(e),
            // A token answer we cannot read is the endpoint misbehaving, not a refusal.
            Err(RequestTokenError::Parse(e, _)) => Err(Error::transient(format!(
                "{what}: the answer could not be read ({})",
                e.path()
            ))),
            Err(RequestTokenError::Other(m)) => Err(Error::transient(format!("{what}: {m}"))),
        }
    }

    fn adapter(&self) -> Adapter {
        Adapter {
            http: self.http.clone(),
            what: self.what.to_owned(),
        }
    }
}

/// `oauth2`'s HTTP client interface over our reqwest client.
struct Adapter {
    http: reqwest::Client,
    what: String,
}

impl<'c> AsyncHttpClient<'c> for Adapter {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.http.clone(), self.what.clone(), request))
    }
}

/// One exchange; 429 and 5xx are failures worth retrying, never refusals.
async fn send(http: reqwest::Client, what: String, request: HttpRequest) -> Result<HttpResponse> {
    let what = what.as_str();
    let (parts, body) = request.into_parts();
    let url = reqwest::Url::parse(&parts.uri.to_string())
        .map_err(|e| Error::permanent(format!("{what}: {e}")))?;
    let response = http
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| classify::from_reqwest(what, e))?;
    let status = response.status();
    if classify::is_transient(status) || status.as_u16() == 429 {
        return Err(Error::transient(format!(
            "{what} answered {status}; will retry"
        )));
    }
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| classify::from_reqwest(what, e))?;
    let mut answer = HttpResponse::new(bytes.to_vec());
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// No extra fields (HubSpot's `hub_id` and the like are not needed).
pub type NoExtra = oauth2::EmptyExtraTokenFields;

/// An OAuth client's refresh-token grant, as the configuration gives it.
pub struct RefreshClient<'a> {
    pub http: reqwest::Client,
    pub token_url: reqwest::Url,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    /// The configured refresh token; a rotated one stored since is preferred (see
    /// [`crate::refresh`]).
    pub refresh_token: &'a SecretString,
}

/// What differs between vendors in a refresh: how it is named, how a refusal is told to the
/// admin, how long a token lives when the answer does not say (`None`: it does not expire).
#[derive(Clone, Copy)]
pub struct RefreshVendor {
    /// "HubSpot token refresh"
    pub what: &'static str,
    pub refused: fn(&Refusal) -> String,
    pub silent_lifetime: Option<Duration>,
}

/// Access tokens from a refresh-token grant: refreshed a minute before expiry (or at 80 % of a
/// short lifetime), one refresh at a time across every instance on the same state store, the
/// rotated refresh token stored before the access token that came with it is used. `account`
/// names the credentials ([`crate::token::account_fingerprint`]); with `fresh` (a `check`) no
/// stored token is taken.
pub async fn refresh_cache(
    client: RefreshClient<'_>,
    vendor: RefreshVendor,
    state: Arc<dyn StateStore>,
    scope: &str,
    account: &str,
    fresh: bool,
) -> Result<TokenCache> {
    let grant = RefreshGrant {
        refresh_token: RotatingRefreshToken::load(state.clone(), scope, client.refresh_token)
            .await?,
        http: client.http,
        token_url: client.token_url,
        client_id: client.client_id.to_owned(),
        client_secret: client.client_secret.clone(),
        vendor,
    };
    let mut shared = SharedTokenSource::new(Box::new(grant), state, scope, account);
    if fresh {
        shared = shared.fresh();
    }
    Ok(TokenCache::new(
        Box::new(shared),
        Duration::from_secs(60),
        None,
    ))
}

struct RefreshGrant {
    http: reqwest::Client,
    token_url: reqwest::Url,
    client_id: String,
    client_secret: SecretString,
    refresh_token: RotatingRefreshToken,
    vendor: RefreshVendor,
}

#[async_trait::async_trait]
impl TokenSource for RefreshGrant {
    async fn fetch(&self) -> Result<AccessToken> {
        let refresh = self.refresh_token.get().await;
        let endpoint = Endpoint {
            http: &self.http,
            token_url: &self.token_url,
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            what: self.vendor.what,
        };
        let answer = match endpoint.refresh::<NoExtra>(&refresh).await? {
            Exchanged::Granted(g) => g,
            Exchanged::Refused(r) => return Err(Error::permanent((self.vendor.refused)(&r))),
        };
        // Durable before use: if storing fails, the new access token is not used either.
        self.refresh_token
            .rotated(answer.refresh_token.map(|t| t.expose_secret().to_owned()))
            .await?;
        Ok(AccessToken {
            secret: answer.access_token,
            expires_at: answer
                .expires_in
                .or(self.vendor.silent_lifetime)
                .map(|d| tokio::time::Instant::now() + d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_in_both_forms() {
        let rfc: Refusal = serde_json::from_str(
            r#"{"error": "invalid_grant", "error_description": "expired access/refresh token"}"#,
        )
        .unwrap();
        assert_eq!(rfc.code(), "invalid_grant");
        assert_eq!(rfc.description(), "expired access/refresh token");
        let hubspot: Refusal = serde_json::from_str(
            r#"{"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token", "correlationId": "x"}"#,
        )
        .unwrap();
        assert_eq!(
            hubspot.to_string(),
            "BAD_REFRESH_TOKEN: missing or invalid refresh token"
        );
    }
}
