//! Twilio media: `MediaUrl{N}` on `api.twilio.com`, fetched with HTTP Basic auth (account SID and
//! auth token), which answers 302 to a short-lived signed URL on a storage host. The credentials go
//! to Twilio's API host only, never to the redirect target; redirects are followed by hand so that
//! holds whatever reqwest's defaults are.

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use url::Url;
use wa2crm_core::Error;

const MAX_REDIRECTS: usize = 5;

/// How long after the webhook a 404 for its media means "not there yet" unless configured:
/// Twilio can answer 404 for valid inbound WhatsApp media for a few seconds while the asset
/// propagates (Chatwoot's PR #15504 and #15499, which retry after 1 s and 3 s).
pub const DEFAULT_MEDIA_WAIT: Duration = Duration::from_secs(120);

/// The longest wait between two tries while media may still be propagating.
const MAX_NOT_YET_WAIT: Duration = Duration::from_secs(30);

/// What a 404 from Twilio's media endpoint means `age` after the webhook arrived: within
/// `window`, media that is not there yet, tried again after half its age (at least 1 s, at most
/// 30 s: 1, 1, 1, 2, 4 … s) with the credentials sent again; after it, media that is gone.
pub fn media_not_found(age: Duration, window: Duration) -> Error {
    if age < window {
        let wait = (age / 2).clamp(Duration::from_secs(1), MAX_NOT_YET_WAIT);
        return Error::transient(format!(
            "Twilio has no media at this URL yet (404, {} s after the webhook; Twilio makes new \
             media available within seconds); trying again in {} s",
            age.as_secs(),
            wait.as_secs().max(1)
        ))
        .with_retry_in(wait);
    }
    Error::permanent(format!(
        "Twilio still answers 404 for this media {} s after the webhook (wa2crm waits {} s, \
         sources.twilio.media_wait_seconds): it was deleted at Twilio, or the webhook named media \
         of another message or account. `wa2crm replay` it once the media exists again",
        age.as_secs(),
        window.as_secs()
    ))
}

/// (`SecretString` prints redacted.)
#[derive(Clone, Debug)]
pub struct TwilioMedia {
    http: Client,
    api_url: Url,
    account_sid: String,
    auth_token: SecretString,
    /// How long after the webhook a 404 is taken as media not there yet.
    media_wait: Duration,
}

impl TwilioMedia {
    /// `api_url` is `https://api.twilio.com` but for the sandbox.
    pub fn new(api_url: &str, account_sid: &str, auth_token: SecretString) -> Result<Self, Error> {
        let api_url = Url::parse(api_url)
            .map_err(|e| Error::permanent(format!("sources.twilio.api_url: {e}")))?;
        let http = crate::media::download_client(crate::media::DEFAULT_READ_TIMEOUT)?;
        Ok(TwilioMedia {
            http,
            api_url,
            account_sid: account_sid.to_owned(),
            auth_token,
            media_wait: DEFAULT_MEDIA_WAIT,
        })
    }

    /// How long after the webhook a 404 means media not there yet (default 2 minutes).
    pub fn with_media_wait(mut self, wait: Duration) -> Self {
        self.media_wait = wait;
        self
    }

    /// Abandons a download silent for `timeout` (it is then retried).
    pub fn with_read_timeout(mut self, timeout: std::time::Duration) -> Result<Self, Error> {
        self.http = crate::media::download_client(timeout)?;
        Ok(self)
    }

    fn is_api(&self, url: &Url) -> bool {
        url.origin() == self.api_url.origin()
    }

    /// A redirect target: any https host (Twilio's storage hosts vary), or, for a sandbox whose
    /// API is plain http, the same scheme.
    fn may_follow(&self, url: &Url) -> bool {
        url.scheme() == "https" || url.scheme() == self.api_url.scheme()
    }

    /// Starts the download of a `MediaUrl` whose webhook arrived at `received_at`; the body is
    /// streamed by the caller.
    pub async fn download(
        &self,
        url: &str,
        received_at: OffsetDateTime,
    ) -> Result<Response, Error> {
        let first = Url::parse(url)
            .map_err(|e| Error::permanent(format!("Twilio MediaUrl {url:?} is not a URL: {e}")))?;
        if !self.is_api(&first) {
            return Err(Error::permanent(format!(
                "refused to fetch Twilio media from {}://{}: not Twilio's API ({}); the auth token is \
                 never sent elsewhere",
                first.scheme(),
                first.host_str().unwrap_or("?"),
                self.api_url
            )));
        }
        let mut current = first;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.get(current.clone());
            if self.is_api(&current) {
                request =
                    request.basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()));
            }
            let response = request
                .send()
                .await
                .map_err(|e| crate::media::request_failed("Twilio media download", e))?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok())
                    .ok_or_else(|| {
                        Error::transient(format!(
                            "Twilio media: {status} without a usable Location"
                        ))
                    })?;
                if !self.may_follow(&next) {
                    return Err(Error::permanent(format!(
                        "Twilio media redirected to {}://{}, which is not https",
                        next.scheme(),
                        next.host_str().unwrap_or("?")
                    )));
                }
                current = next;
                continue;
            }
            return match status {
                s if s.is_success() => Ok(response),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::permanent(format!(
                    "Twilio refused the media download ({status}): check sources.twilio.account_sid and \
                     auth_token, then run `wa2crm replay --all-dead`"
                ))),
                StatusCode::NOT_FOUND => {
                    let age = (OffsetDateTime::now_utc() - received_at)
                        .try_into()
                        .unwrap_or(Duration::ZERO);
                    Err(media_not_found(age, self.media_wait))
                }
                StatusCode::TOO_MANY_REQUESTS => Err(Error::rate_limited(
                    "Twilio media download rate-limited (429)",
                    wa2crm_rest::classify::retry_after(response.headers()),
                )),
                s if s.is_server_error() => {
                    Err(Error::transient(format!("Twilio media: {status}")))
                }
                _ => Err(Error::permanent(format!(
                    "Twilio media download refused: {status}"
                ))),
            };
        }
        Err(Error::permanent(format!(
            "Twilio media: more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Deletes the media at Twilio (`DELETE …/Media/ME….json`) once wa2crm holds its copy.
    /// Already gone counts as deleted.
    pub async fn delete(&self, url: &str) -> Result<(), Error> {
        let mut target = Url::parse(url)
            .map_err(|e| Error::permanent(format!("Twilio MediaUrl {url:?} is not a URL: {e}")))?;
        if !self.is_api(&target) {
            return Err(Error::permanent(
                "refused to send a delete outside Twilio's API",
            ));
        }
        if !target.path().ends_with(".json") {
            let path = format!("{}.json", target.path());
            target.set_path(&path);
        }
        let response = self
            .http
            .delete(target)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
            .map_err(|e| crate::media::request_failed("Twilio media delete", e))?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Err(Error::transient(format!("Twilio media delete: {s}")))
            }
            s => Err(Error::permanent(format!(
                "Twilio refused the media delete: {s}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, header};
    use axum::response::Redirect;
    use axum::routing::get;

    use super::*;

    async fn serve(app: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn basic_auth_goes_to_twilio_and_never_to_the_redirect_host() {
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let log = seen.clone();
        let storage = serve(Router::new().route(
            "/signed",
            get(move |h: HeaderMap| {
                log.lock().unwrap().push(
                    h.get(header::AUTHORIZATION)
                        .map(|v| v.to_str().unwrap().to_owned()),
                );
                async { "the bytes" }
            }),
        ))
        .await;
        let api = serve(Router::new().route(
            "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            get(move |h: HeaderMap| async move {
                // "AC1:secret", base64.
                assert_eq!(h[header::AUTHORIZATION], "Basic QUMxOnNlY3JldA==");
                Redirect::to(&format!("http://{storage}/signed?sig=x"))
            }),
        ))
        .await;
        let t = TwilioMedia::new(
            &format!("http://{api}"),
            "AC1",
            SecretString::from("secret"),
        )
        .unwrap();
        let r = t
            .download(
                &format!("http://{api}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"),
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "the bytes");
        assert_eq!(
            *seen.lock().unwrap(),
            vec![None],
            "no credentials on the storage host"
        );

        let e = t
            .download(
                &format!("http://{storage}/signed"),
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), wa2crm_core::ErrorKind::Permanent);
        assert!(e.message().contains("not Twilio's API"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1, "refused without a request");
    }

    #[test]
    fn a_404_is_not_yet_within_the_window_growing_and_gone_after_it() {
        let window = Duration::from_secs(120);
        let waits: Vec<u64> = [0, 1, 2, 4, 8, 16, 40, 100, 119]
            .into_iter()
            .map(|age| {
                let e = media_not_found(Duration::from_secs(age), window);
                assert_eq!(e.kind(), wa2crm_core::ErrorKind::Transient, "{e}");
                e.retry_in().unwrap().as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 1, 1, 2, 4, 8, 20, 30, 30]);
        let gone = media_not_found(Duration::from_secs(120), window);
        assert_eq!(gone.kind(), wa2crm_core::ErrorKind::Permanent);
        assert_eq!(gone.retry_in(), None);
        assert!(
            gone.message().contains("deleted at Twilio") && gone.message().contains("120 s"),
            "{gone}"
        );
    }
}
