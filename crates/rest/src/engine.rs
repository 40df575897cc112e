//! One vendor call, sent the same way for every vendor: not while the connector is paused; within
//! the request budget and a slot among the calls in flight; with a live token; then the vendor's
//! [`Rules`] classify the answer and the engine acts — hand it over, wait out a rate limit,
//! refresh the token and send again, retry (only a call safe to repeat), pause the connector, or
//! fail with the admin's message. A connector holds only its mapping and its vendor's meaning.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::multipart::Form;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Semaphore;
use wa2crm_core::{Error, ErrorKind, Result};

use crate::classify;
use crate::limit::RequestBudget;
use crate::pause::PauseGate;
use crate::token::TokenCache;
use crate::verdict::{Body, PauseCause, PauseOrder, Reply, Rules, Verdict};

/// Where a call's token comes from, and a fresh one after the vendor refused it.
#[async_trait]
pub trait Credentials: Send + Sync {
    async fn token(&self) -> Result<SecretString>;
    /// After `refused` was answered 401: a fresh token (single-flight: a worker that finds another
    /// already refreshed takes its token), or `None` when nothing can be refreshed (a static token).
    async fn refresh(&self, refused: &SecretString) -> Option<Result<SecretString>>;
    /// `Some(user)`: the token is the password of HTTP Basic authentication as `user` (Zendesk's
    /// API tokens: `{email}/token`); `None`: it is a Bearer token.
    fn basic_user(&self) -> Option<&str> {
        None
    }
    /// The `Authorization` scheme of a token that is not Basic's password: `Bearer` (RFC 6750),
    /// or a vendor's own (Zoho's `Zoho-oauthtoken`).
    fn scheme(&self) -> &str {
        "Bearer"
    }
}

#[async_trait]
impl Credentials for TokenCache {
    async fn token(&self) -> Result<SecretString> {
        self.get().await
    }

    async fn refresh(&self, refused: &SecretString) -> Option<Result<SecretString>> {
        Some(self.refresh_after_rejection(refused).await)
    }
}

/// Builds a multipart body; called once per send (a stream is read once).
pub type FormBuilder<'a> =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Form>> + Send + 'a>> + Send + Sync + 'a;

pub enum Payload<'a> {
    Empty,
    Json(&'a Value),
    Multipart(&'a FormBuilder<'a>),
    /// A raw body of this content type (a file upload), built afresh for every send.
    Raw {
        content_type: &'a str,
        make: &'a BodyBuilder<'a>,
    },
}

/// Builds a raw body; called once per send (a stream is read once).
pub type BodyBuilder<'a> =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<reqwest::Body>> + Send + 'a>> + Send + Sync + 'a;

/// Whether sending a call twice does no harm. The vendor may have done the work of a call whose
/// answer was lost (a timeout, a 502 from a proxy behind which the work went on), so only an
/// upsert by key, a read or a delete is retried after such a failure; a create is sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    Once,
}

pub struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub payload: Payload<'a>,
    pub repeat: Repeat,
    /// The budget this call spends, when not the engine's own (HubSpot search's own limit).
    pub budget: Option<&'a RequestBudget>,
    /// The answer is only a convenience (what a console link needs), not needed to deliver: a
    /// refusal only the admin can fix ([`PauseCause::Credentials`], such as a scope this call
    /// alone needs) is this call's error and pauses nothing. A spent quota still pauses.
    pub optional: bool,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, url: Url, repeat: Repeat) -> Self {
        Call {
            method,
            url,
            payload: Payload::Empty,
            repeat,
            budget: None,
            optional: false,
        }
    }

    /// Marks the call [`optional`](Call::optional).
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    pub fn json(mut self, body: Option<&'a Value>) -> Self {
        if let Some(b) = body {
            self.payload = Payload::Json(b);
        }
        self
    }
}

/// An answer the caller interprets. A body that was not JSON is here as a JSON string.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Answer {
            status: r.status,
            body: match r.body {
                Body::Json(v) => v,
                Body::Empty => Value::Null,
                Body::Text(t) => Value::String(t),
            },
        }
    }
}

pub struct Engine<R> {
    /// The connector's name, for logs.
    pub name: String,
    pub rules: R,
    pub http: reqwest::Client,
    pub credentials: std::sync::Arc<dyn Credentials>,
    pub pause: PauseGate,
    /// The budget calls spend and the vendor's window headers adjust (HubSpot's ten seconds).
    pub budget: Option<RequestBudget>,
    /// How many calls may be in flight at once (Salesforce's concurrent-request limit).
    pub slots: Option<Semaphore>,
    /// Calls sent and the quota last seen, for the console ([`Engine::usage`]).
    pub meter: crate::meter::Meter,
}

enum Next {
    Done(Result<Answer>),
    Again(Error),
}

impl<R: Rules> Engine<R> {
    /// This process's calls in the budget's window, and the quota the vendor last told.
    pub fn usage(&self) -> wa2crm_core::Usage {
        self.meter
            .usage(self.budget.as_ref().map(RequestBudget::rate))
    }

    pub async fn send(&self, call: Call<'_>) -> Result<Answer> {
        let vendor = self.rules.vendor();
        let what = format!("{vendor} {} {}", call.method, call.url.path());
        let budget = call.budget.or(self.budget.as_ref());
        let policy = self.rules.retry();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter()
            .build();
        let mut refreshed = false;
        let mut last = Error::transient(format!("{what}: not sent"));
        for _ in 0..policy.max_sends {
            self.pause.check()?;
            // The budget and the slot first, the token second: a token taken before a wait (a
            // 429 hold can last seconds) may expire before it is sent.
            if let Some(b) = budget {
                b.acquire().await;
            }
            let _slot = match &self.slots {
                Some(s) => Some(
                    s.acquire()
                        .await
                        .map_err(|_| Error::transient("the connector is shutting down"))?,
                ),
                None => None,
            };
            let token = match self.credentials.token().await {
                Ok(t) => t,
                Err(e) => return Err(self.credentials_failed(e).await),
            };
            self.meter.sent(self.budget.as_ref().map(|b| b.rate().1));
            let verdict = match self.exchange(&call, &token, &what).await {
                Ok(reply) => {
                    let now = SystemTime::now();
                    let observed = self.rules.observe(&reply.headers, now);
                    if let Some(q) = observed.quota {
                        self.meter.quota(q);
                    }
                    if let (Some(w), Some(b)) = (observed.window, &self.budget) {
                        b.observe(w);
                    }
                    if let Some(order) = observed.pause {
                        self.order_pause(&order).await;
                    }
                    match self.rules.classify(&reply, now) {
                        Verdict::Answer => return Ok(reply.into()),
                        v => v,
                    }
                }
                // A network failure is the vendor's to classify no further; anything else
                // (a body that cannot be built: the stored file is gone) is the caller's.
                Err(e) if e.kind() != ErrorKind::Transient => return Err(e),
                Err(e) => match self.retry_after(&call, &mut backoff).await {
                    true => {
                        last = e;
                        continue;
                    }
                    false => return Err(e),
                },
            };
            let verdict = match verdict {
                Verdict::Refresh { always, otherwise } => {
                    if always || !refreshed {
                        match self.credentials.refresh(&token).await {
                            Some(Ok(_)) => {
                                refreshed = true;
                                last = Error::transient(format!(
                                    "{what}: the token kept expiring before {vendor} received it"
                                ));
                                continue;
                            }
                            Some(Err(e)) => return Err(self.credentials_failed(e).await),
                            None => *otherwise,
                        }
                    } else {
                        *otherwise
                    }
                }
                v => v,
            };
            match self.act(verdict, &what, &call, budget, &mut backoff).await {
                Next::Done(r) => return r,
                Next::Again(e) => last = e,
            }
        }
        Err(last)
    }

    async fn act(
        &self,
        verdict: Verdict,
        what: &str,
        call: &Call<'_>,
        budget: Option<&RequestBudget>,
        backoff: &mut impl Iterator<Item = Duration>,
    ) -> Next {
        match verdict {
            Verdict::Answer => Next::Done(Err(Error::transient(format!(
                "{what}: an answer was classified twice"
            )))),
            Verdict::Wait(wait) => {
                let wait =
                    wait.unwrap_or_else(|| budget.map_or(Duration::from_secs(1), |b| b.rate().1));
                tracing::warn!(connector = %self.name, wait_ms = wait.as_millis() as u64, "{what}: rate-limited; waiting out the window.");
                match budget {
                    Some(b) => b.hold(wait),
                    None => tokio::time::sleep(wait).await,
                }
                Next::Again(Error::rate_limited(
                    format!("{what}: rate-limited"),
                    Some(wait),
                ))
            }
            // A refresh refused twice in a row, as the vendor's rules allow no more.
            Verdict::Refresh { .. } => Next::Done(Err(Error::transient(format!(
                "{what}: the fresh token was refused too"
            )))),
            Verdict::Transient(message) => {
                let e = Error::transient(format!("{what}: {message}"));
                match self.retry_after(call, backoff).await {
                    true => Next::Again(e),
                    false => Next::Done(Err(e)),
                }
            }
            Verdict::Pause(order) if call.optional && order.cause == PauseCause::Credentials => {
                Next::Done(Err(Error::permanent(format!("{what}: {}", order.reason))))
            }
            Verdict::Pause(order) => {
                self.order_pause(&order).await;
                // In whole seconds, rounded up: a job woken before the pause ends only waits again.
                let wait = order
                    .until
                    .and_then(|u| u.duration_since(SystemTime::now()).ok())
                    .map(|d| Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)));
                Next::Done(Err(Error::rate_limited(order.reason, wait)))
            }
            Verdict::Permanent(message) => {
                Next::Done(Err(Error::permanent(format!("{what}: {message}"))))
            }
        }
    }

    /// Whether a call that failed transiently goes again, after the backoff's wait: only a call
    /// safe to repeat, and only as often as the vendor's policy allows.
    async fn retry_after(
        &self,
        call: &Call<'_>,
        backoff: &mut impl Iterator<Item = Duration>,
    ) -> bool {
        if call.repeat != Repeat::Safe {
            return false;
        }
        match backoff.next() {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
            None => false,
        }
    }

    /// Sends once and reads the whole answer.
    async fn exchange(&self, call: &Call<'_>, token: &SecretString, what: &str) -> Result<Reply> {
        let request = self.http.request(call.method.clone(), call.url.clone());
        let mut request = match self.credentials.basic_user() {
            Some(user) => request.basic_auth(user, Some(token.expose_secret())),
            None => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!(
                    "{} {}",
                    self.credentials.scheme(),
                    token.expose_secret()
                ))
                .map_err(|_| {
                    Error::permanent(format!("{what}: the token is not a header value"))
                })?;
                value.set_sensitive(true);
                request.header(reqwest::header::AUTHORIZATION, value)
            }
        };
        match &call.payload {
            Payload::Empty => {}
            Payload::Json(b) => request = request.json(b),
            Payload::Multipart(make) => request = request.multipart(make().await?),
            Payload::Raw { content_type, make } => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    .body(make().await?)
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| classify::from_reqwest(what, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| classify::from_reqwest(what, e))?;
        Ok(Reply {
            status,
            headers,
            body: Body::read(&bytes),
        })
    }

    pub async fn order_pause(&self, order: &PauseOrder) {
        self.rules.paused(order);
        self.pause.pause(&order.reason, order.until).await;
    }

    /// A token that cannot be had: credentials the vendor refuses for good pause the connector
    /// for the admin; anything else is the call's own transient failure.
    pub async fn credentials_failed(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Permanent {
            self.order_pause(&PauseOrder {
                reason: e.message().to_owned(),
                until: None,
                cause: PauseCause::Credentials,
            })
            .await;
            return Error::rate_limited(format!("connector paused: {}", e.message()), None);
        }
        e
    }
}
