//! Getting a file from WhatsApp: resolve the media id to a short-lived URL
//! (`GET {graph_url}/{version}/{media_id}`), then download that URL, both with the Bearer token.
//!
//! The token is a key to the business's WhatsApp account, so it is only ever sent to hosts that
//! serve WhatsApp media: https on `*.fbsbx.com` or `*.fbcdn.net`, or the configured `graph_url`
//! host. Any other URL is refused before a single request, and redirects are followed by hand so
//! the token never travels to a host other than the one it was first sent to.
//!
//! 360dialog proxies the same API: `GET {base_url}/{media_id}` with the `D360-API-KEY` header,
//! and the returned `lookaside.fbsbx.com` URL is fetched from the base URL's host instead (path
//! and query kept), with the key — which therefore goes to the base URL's host and nowhere else.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use wa2crm_core::Error;

/// Sent on every request: media downloads fail without a User-Agent (reported independently by
/// whatsapp-api-js PR #336, Whatsapp-Business-Cloud-Api-Net #45 and WhatsApp-JS-SDK #81).
pub const USER_AGENT: &str = concat!("wa2crm/", env!("CARGO_PKG_VERSION"));
const MAX_REDIRECTS: usize = 5;

/// The answer of `GET /{media_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedMedia {
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Base64 in Meta's answers; kept as given.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Meta's spec types it as a string, its docs as a number: both are accepted.
    #[serde(default, deserialize_with = "number_or_string")]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub id: Option<String>,
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(u64),
        S(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::N(n)) => Some(n),
        Some(Either::S(s)) => s.trim().parse().ok(),
    })
}

/// Whether a declared digest (base64 as Meta sends it, or hex as some tools show it) is `actual`.
pub fn digest_matches(declared: &str, actual: &[u8; 32]) -> bool {
    let declared = declared.trim();
    if let Ok(bytes) = STANDARD.decode(declared)
        && bytes.as_slice() == actual
    {
        return true;
    }
    hex::decode(declared).is_ok_and(|b| b.as_slice() == actual)
}

/// Whose API this is: Meta's Graph API, or 360dialog's proxy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Meta,
    D360,
}

impl Provider {
    fn section(self) -> &'static str {
        match self {
            Provider::Meta => "sources.meta",
            Provider::D360 => "sources.d360",
        }
    }
}

/// How long a media lookup or download may stay silent by default (`media.read_timeout_seconds`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP client for media: our User-Agent, no automatic redirects (each hop is checked before
/// credentials go with it), bounded connect time, and a bound on silence rather than on the whole
/// transfer: a large video on a slow line may take long, a vendor that stopped answering may not.
pub(crate) fn download_client(read_timeout: Duration) -> Result<Client, Error> {
    Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(read_timeout))
        .read_timeout(read_timeout)
        .build()
        .map_err(|e| Error::permanent(format!("HTTP client: {e}")))
}

/// A request that got no answer: transient, saying why in words an operator can act on (reqwest's
/// own message names only the URL).
pub(crate) fn request_failed(what: &str, e: reqwest::Error) -> Error {
    let why = if e.is_timeout() {
        "no answer within media.read_timeout_seconds".to_owned()
    } else if e.is_connect() {
        format!("cannot connect: {}", root_cause(&e))
    } else {
        root_cause(&e)
    };
    Error::transient(format!("{what} failed: {why}")).with_source(e)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Graph API media client for one Meta (or 360dialog) account. (`SecretString` prints redacted.)
#[derive(Clone, Debug)]
pub struct GraphMedia {
    http: Client,
    graph_url: Url,
    api_version: String,
    token: SecretString,
    provider: Provider,
}

impl GraphMedia {
    pub fn new(graph_url: &str, api_version: &str, token: SecretString) -> Result<Self, Error> {
        Self::build(graph_url, api_version, token, Provider::Meta)
    }

    /// 360dialog: `base_url` is `https://waba-v2.360dialog.io` but for the sandbox.
    pub fn d360(base_url: &str, api_key: SecretString) -> Result<Self, Error> {
        Self::build(base_url, "", api_key, Provider::D360)
    }

    fn build(
        graph_url: &str,
        api_version: &str,
        token: SecretString,
        provider: Provider,
    ) -> Result<Self, Error> {
        let section = provider.section();
        let graph_url =
            Url::parse(graph_url).map_err(|e| Error::permanent(format!("{section} URL: {e}")))?;
        let http = download_client(DEFAULT_READ_TIMEOUT)?;
        Ok(GraphMedia {
            http,
            graph_url,
            api_version: api_version.to_owned(),
            token,
            provider,
        })
    }

    /// Abandons a lookup or download silent for `timeout` (it is then retried like a 5xx).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.http = download_client(timeout)?;
        Ok(self)
    }

    /// The request with this provider's credentials.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.provider {
            Provider::Meta => request.bearer_auth(self.token.expose_secret()),
            Provider::D360 => request.header("D360-API-KEY", self.token.expose_secret()),
        }
    }

    /// Whether the token may be sent to `url`.
    pub fn allowed(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let graph_host = self.graph_url.host_str() == Some(host)
            && url.scheme() == self.graph_url.scheme()
            && url.port_or_known_default() == self.graph_url.port_or_known_default();
        if self.provider == Provider::D360 {
            return graph_host;
        }
        let meta_cdn = url.scheme() == "https"
            && ["fbsbx.com", "fbcdn.net"]
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        graph_host || meta_cdn
    }

    /// `GET {graph_url}/{version}/{media_id}?phone_number_id=…`
    pub async fn resolve(
        &self,
        media_id: &str,
        phone_number_id: &str,
    ) -> Result<ResolvedMedia, Error> {
        let mut url = self.graph_url.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                Error::permanent(format!(
                    "{} URL cannot be a base URL",
                    self.provider.section()
                ))
            })?;
            path.pop_if_empty();
            if self.provider == Provider::Meta {
                path.push(&self.api_version);
            }
            path.push(media_id);
        }
        if self.provider == Provider::Meta && !phone_number_id.is_empty() {
            url.query_pairs_mut()
                .append_pair("phone_number_id", phone_number_id);
        }
        let response = self
            .authorized(self.http.get(url))
            .send()
            .await
            .map_err(|e| request_failed("Graph API media lookup", e))?;
        let status = response.status();
        if status.is_success() {
            let resolved: ResolvedMedia = response.json().await.map_err(|e| {
                Error::transient(format!("Graph API media answer unreadable: {e}")).with_source(e)
            })?;
            return Ok(resolved);
        }
        Err(graph_error(status, response, media_id, self.provider).await)
    }

    /// Starts the download of a resolved URL; the body is streamed by the caller. A 401, 403 or
    /// 404 means the URL expired: `NotFound`, so the caller resolves again.
    pub async fn download(&self, url: &str) -> Result<Response, Error> {
        let mut first = Url::parse(url)
            .map_err(|e| Error::permanent(format!("media URL {url:?} is not a URL: {e}")))?;
        if self.provider == Provider::D360 {
            // 360dialog serves Meta's lookaside URL itself: same path and query, its own host.
            let mut proxied = self.graph_url.clone();
            proxied.set_path(first.path());
            proxied.set_query(first.query());
            first = proxied;
        }
        if !self.allowed(&first) {
            return Err(self.refused(&first));
        }
        let origin = first.origin();
        let mut current = first;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.get(current.clone());
            // Same scheme, host and port as the URL Meta gave us, or no token.
            if current.origin() == origin {
                request = self.authorized(request);
            }
            let response = request
                .send()
                .await
                .map_err(|e| request_failed("media download", e))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Error::transient(format!("media download: {status} without Location"))
                    })?;
                let next = current.join(location).map_err(|e| {
                    Error::permanent(format!("media download redirected to a bad URL: {e}"))
                })?;
                if !self.allowed(&next) {
                    return Err(self.refused(&next));
                }
                current = next;
                continue;
            }
            return match status {
                s if s.is_success() => Ok(response),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                    Err(Error::not_found(format!(
                        "media URL expired or refused ({status}); resolving again"
                    )))
                }
                StatusCode::TOO_MANY_REQUESTS => Err(Error::rate_limited(
                    "media download rate-limited (429)",
                    wa2crm_rest::classify::retry_after(response.headers()),
                )),
                s if s.is_server_error() => {
                    Err(Error::transient(format!("media download: {status}")))
                }
                _ => Err(Error::permanent(format!(
                    "media download refused: {status}"
                ))),
            };
        }
        Err(Error::permanent(format!(
            "media download: more than {MAX_REDIRECTS} redirects"
        )))
    }
}

impl GraphMedia {
    fn refused(&self, url: &Url) -> Error {
        let allowed = match self.provider {
            Provider::Meta => {
                "not a WhatsApp media host (fbsbx.com, fbcdn.net) nor sources.meta.graph_url"
            }
            Provider::D360 => "not sources.d360.base_url",
        };
        Error::permanent(format!(
            "refused to fetch media from {}://{}: {allowed}; the credentials are never sent elsewhere",
            url.scheme(),
            url.host_str().unwrap_or("?")
        ))
    }
}

/// Graph API errors by what to do: 4xx are not retried in a loop (360dialog even blocks a number
/// for an hour after five failed lookups); 429 and 5xx wait and retry.
async fn graph_error(
    status: StatusCode,
    response: Response,
    media_id: &str,
    provider: Provider,
) -> Error {
    let wait = wa2crm_rest::classify::retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Envelope {
        error: GraphError,
    }
    #[derive(Deserialize)]
    struct GraphError {
        #[serde(default)]
        message: String,
        #[serde(default)]
        code: i64,
    }
    let (message, code) = match serde_json::from_str::<Envelope>(&body) {
        Ok(e) => (e.error.message, e.error.code),
        Err(_) => (body.chars().take(200).collect(), 0),
    };
    let what = format!("Graph API {status} for media {media_id}: {message}");
    match (status, code) {
        // Rate limits: HTTP 429, or Graph's throttling codes on any status.
        (StatusCode::TOO_MANY_REQUESTS, _) | (_, 4 | 17 | 32 | 613 | 80007 | 130429) => {
            Error::rate_limited(what, wait.or(Some(Duration::from_secs(60))))
        }
        (StatusCode::UNAUTHORIZED, _) | (_, 190) => Error::permanent(match provider {
            Provider::Meta => format!(
                "{what}. The access token was refused: renew sources.meta.access_token, then run \
                 `wa2crm replay --all-dead`"
            ),
            Provider::D360 => format!(
                "{what}. 360dialog refused the API key: check sources.d360.api_key, then run \
                 `wa2crm replay --all-dead`"
            ),
        }),
        // 360dialog blocks a number's media lookups for an hour after five failures: a refused
        // lookup is never tried again by itself.
        (s, _) if provider == Provider::D360 && s.is_client_error() => Error::permanent(format!(
            "{what}. Not retried: 360dialog blocks media lookups for an hour after five failures"
        )),
        (StatusCode::NOT_FOUND, _) | (_, 100) => Error::not_found(format!(
            "{what}. The media id is unknown or expired (webhook media ids live 7 days)"
        )),
        (s, _) if s.is_server_error() => Error::transient(what),
        _ => Error::permanent(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(graph: &str) -> GraphMedia {
        GraphMedia::new(graph, "v21.0", SecretString::from("t0ken")).unwrap()
    }

    #[test]
    fn only_whatsapp_media_hosts_and_the_graph_host_are_allowed() {
        let c = client("https://graph.facebook.com");
        let ok = [
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
            "https://scontent.xx.fbcdn.net/v/t61/x.ogg",
            "https://fbsbx.com/x",
            "https://graph.facebook.com/v21.0/123",
        ];
        for u in ok {
            assert!(c.allowed(&Url::parse(u).unwrap()), "{u}");
        }
        let refused = [
            "http://lookaside.fbsbx.com/x",
            "https://evil-fbsbx.com/x",
            "https://fbsbx.com.evil.net/x",
            "https://169.254.169.254/latest/meta-data",
            "http://graph.facebook.com/v21.0/123",
            "https://graph.facebook.com:8443/x",
            "file:///etc/passwd",
        ];
        for u in refused {
            assert!(!c.allowed(&Url::parse(u).unwrap()), "{u}");
        }
        // A sandbox or proxy graph_url over http is allowed exactly as configured.
        let local = client("http://127.0.0.1:9999");
        assert!(local.allowed(&Url::parse("http://127.0.0.1:9999/dl?x=1").unwrap()));
        assert!(!local.allowed(&Url::parse("http://127.0.0.1:9998/dl").unwrap()));
    }

    #[test]
    fn debug_output_never_shows_the_credentials() {
        let meta = format!("{:?}", client("https://graph.facebook.com"));
        let d360 = format!(
            "{:?}",
            GraphMedia::d360("https://waba-v2.360dialog.io", SecretString::from("k3y")).unwrap()
        );
        let twilio = format!(
            "{:?}",
            crate::twilio::TwilioMedia::new(
                "https://api.twilio.com",
                "AC1",
                SecretString::from("tw1l10")
            )
            .unwrap()
        );
        assert!(
            meta.contains("graph.facebook.com") && !meta.contains("t0ken"),
            "{meta}"
        );
        assert!(!d360.contains("k3y"), "{d360}");
        assert!(
            twilio.contains("AC1") && !twilio.contains("tw1l10"),
            "{twilio}"
        );
    }

    #[tokio::test]
    async fn a_foreign_url_is_refused_without_a_request() {
        // Nothing listens on this port: a request would fail as transient, not permanent.
        let c = client("https://graph.facebook.com");
        let err = c.download("https://203.0.113.9:1/steal").await.unwrap_err();
        assert_eq!(err.kind(), wa2crm_core::ErrorKind::Permanent);
        assert!(err.message().contains("not a WhatsApp media host"), "{err}");
    }

    #[test]
    fn digests_match_in_base64_and_hex() {
        let d: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(b"hello world").into()
        };
        assert!(digest_matches(
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
            &d
        ));
        assert!(digest_matches(
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            &d
        ));
        assert!(digest_matches(
            "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
            &d
        ));
        assert!(!digest_matches(
            "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
            &d
        ));
        assert!(!digest_matches("", &d));
    }

    #[test]
    fn file_size_as_number_or_string() {
        let a: ResolvedMedia =
            serde_json::from_str(r#"{"url":"u","file_size":"303833","mime_type":"image/jpeg"}"#)
                .unwrap();
        let b: ResolvedMedia = serde_json::from_str(r#"{"url":"u","file_size":303833}"#).unwrap();
        assert_eq!((a.file_size, b.file_size), (Some(303_833), Some(303_833)));
        let c: ResolvedMedia = serde_json::from_str(r#"{"url":"u"}"#).unwrap();
        assert_eq!(c.file_size, None);
    }
}

#[cfg(test)]
mod redirect_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;

    use super::*;

    async fn serve(app: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn echo_auth(headers: HeaderMap) -> String {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned()
    }

    #[tokio::test]
    async fn redirects_keep_the_token_on_its_origin_only() {
        // Another host (here: another port) that must never see a request carrying the token.
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        let elsewhere = serve(Router::new().route(
            "/final",
            get(move |h: HeaderMap| {
                seen.fetch_add(1, Ordering::SeqCst);
                async move { echo_auth(h) }
            }),
        ))
        .await;
        let origin = serve(
            Router::new()
                .route("/start", get(|| async { Redirect::to("/final") }))
                .route("/final", get(|h: HeaderMap| async move { echo_auth(h) }))
                .route(
                    "/away",
                    get(move || async move {
                        Redirect::to(&format!("http://{elsewhere}/final")).into_response()
                    }),
                )
                .route(
                    "/loop",
                    get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
                ),
        )
        .await;
        let c = GraphMedia::new(
            &format!("http://{origin}"),
            "v21.0",
            SecretString::from("t0ken"),
        )
        .unwrap();
        let same = c.download(&format!("http://{origin}/start")).await.unwrap();
        assert_eq!(same.text().await.unwrap(), "Bearer t0ken");
        let err = c
            .download(&format!("http://{origin}/away"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), wa2crm_core::ErrorKind::Permanent, "{err}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the other host got no request"
        );
        let err = c
            .download(&format!("http://{origin}/loop"))
            .await
            .unwrap_err();
        assert!(err.message().contains("redirects"), "{err}");
    }
}
