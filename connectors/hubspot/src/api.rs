//! One HubSpot API call, done right: within the request budget, with a live token, refreshed
//! once on EXPIRED_AUTHENTICATION, waiting out 429s by their policy, retrying 5xx and network
//! failures briefly, reading the rate-limit headers of every answer, and pausing the connector
//! when the daily quota reaches the reserve or the credentials are dead.
//!
//! Every call wa2crm makes to HubSpot is safe to repeat (upserts by unique key, associations,
//! properties answered 409 when they exist), which is what makes retrying a POST here sound.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use reqwest::multipart::Form;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};
use wa2crm_core::{Error, ErrorKind, Result};
use wa2crm_rest::classify;
use wa2crm_rest::limit::{RequestBudget, WindowHeaders};
use wa2crm_rest::pause::PauseGate;

use crate::auth::Auth;

/// How many times one call is sent at most (429 waits, a token refresh, 5xx retries).
const MAX_SENDS: usize = 5;

/// Builds a multipart body; called once per attempt.
pub type FormBuilder<'a> =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Form>> + Send + 'a>> + Send + Sync + 'a;

enum Payload<'a> {
    Empty,
    Json(&'a Value),
    Multipart(&'a FormBuilder<'a>),
}

/// An answer the caller interprets (2xx, 207, and the 4xx a caller handles: 400, 404, 409).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// HubSpot's `message` (and `category`), for errors an admin reads.
    pub fn message(&self) -> String {
        describe(&self.body)
    }
}

pub fn describe(body: &Value) -> String {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    match body.get("category").and_then(Value::as_str) {
        Some(c) => format!("{c}: {message}"),
        None => message.to_owned(),
    }
}

pub struct Api {
    pub name: String,
    pub http: reqwest::Client,
    pub base: reqwest::Url,
    pub auth: Auth,
    pub budget: RequestBudget,
    /// CRM search's own per-second limit (exempt from the ten-second window).
    pub search_budget: RequestBudget,
    pub pause: PauseGate,
    pub daily_reserve: f64,
    pub utc_offset: UtcOffset,
}

impl Api {
    pub fn url(&self, path: &str) -> Result<reqwest::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::permanent(format!("HubSpot URL for {path}: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let payload = match body {
            Some(b) => Payload::Json(b),
            None => Payload::Empty,
        };
        self.send(method, path, payload, &self.budget).await
    }

    /// `POST /crm/v3/objects/{object}/search`, paced by search's own limit.
    pub async fn search(&self, object: &str, body: &Value) -> Result<Answer> {
        let path = format!("/crm/v3/objects/{object}/search");
        self.send(
            Method::POST,
            &path,
            Payload::Json(body),
            &self.search_budget,
        )
        .await
    }

    /// A multipart POST; `form` builds the body afresh for every attempt (a stream is read once).
    pub async fn post_multipart<'a>(
        &self,
        path: &str,
        form: &'a FormBuilder<'a>,
    ) -> Result<Answer> {
        self.send(Method::POST, path, Payload::Multipart(form), &self.budget)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Payload<'_>,
        budget: &RequestBudget,
    ) -> Result<Answer> {
        let what = format!(
            "HubSpot {method} {}",
            path.split('?').next().unwrap_or(path)
        );
        let url = self.url(path)?;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(300))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(MAX_SENDS)
            .with_jitter()
            .build();
        let mut refreshed = false;
        let mut last = Error::transient(format!("{what}: not sent"));
        for _ in 0..MAX_SENDS {
            self.pause.check()?;
            // The budget first, the token second: a token taken before a wait in the budget
            // (a 429 hold can last seconds) may expire before it is sent.
            budget.acquire().await;
            let token = match self.auth.token().await {
                Ok(t) => t,
                Err(e) => return Err(self.auth_failed(e).await),
            };
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret());
            match &body {
                Payload::Empty => {}
                Payload::Json(b) => request = request.json(b),
                Payload::Multipart(make) => request = request.multipart(make().await?),
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = classify::from_reqwest(&what, e);
                    match backoff.next() {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        None => return Err(last),
                    }
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            self.observe(&headers).await;
            let body: Value = match response.bytes().await {
                Ok(b) if b.is_empty() => Value::Null,
                Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
                Err(e) => {
                    last = classify::from_reqwest(&what, e);
                    if let Some(wait) = backoff.next() {
                        tokio::time::sleep(wait).await;
                    }
                    continue;
                }
            };
            let correlation = body
                .get("correlationId")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned();
            match status.as_u16() {
                200..=299 | 400 | 404 | 409 => return Ok(Answer { status, body }),
                401 => {
                    // An expired OAuth token is refreshed as often as it happens (a token can
                    // expire on its way under load); any other 401 gets one refresh, and a fresh
                    // token refused as invalid means the credentials are dead.
                    let category = body.get("category").and_then(Value::as_str).unwrap_or("");
                    let expired = category == "EXPIRED_AUTHENTICATION";
                    if (expired || !refreshed)
                        && let Some(fresh) = self.auth.after_rejection(&token).await
                    {
                        refreshed = true;
                        if let Err(e) = fresh {
                            return Err(self.auth_failed(e).await);
                        }
                        last = Error::transient(format!(
                            "{what}: the OAuth token kept expiring before HubSpot received it"
                        ));
                        continue;
                    }
                    let reason = format!(
                        "HubSpot rejects the credentials ({}; correlation {correlation}). {}",
                        describe(&body),
                        if self.auth.is_oauth() {
                            "Re-authorize the app and configure the new refresh_token, then restart wa2crm"
                        } else {
                            "Put a valid private app token in `token` (Settings → Integrations → Private apps), then restart wa2crm"
                        }
                    );
                    self.pause.pause(&reason, None).await;
                    return Err(Error::rate_limited(reason, None));
                }
                403 => {
                    return Err(Error::permanent(format!(
                        "{what} refused: {}{} (correlation {correlation})",
                        describe(&body),
                        missing_scopes(&body)
                            .map(|s| format!("; grant the app these scopes: {s}"))
                            .unwrap_or_default()
                    )));
                }
                429 => {
                    let policy = body
                        .get("policyName")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    if policy == "DAILY" {
                        let until = self.next_daily_reset();
                        let reason = format!(
                            "HubSpot's daily API limit for this portal is used up; deliveries resume after its midnight (UTC{})",
                            offset_label(self.utc_offset)
                        );
                        self.pause.pause(&reason, Some(until)).await;
                        return Err(self
                            .pause
                            .check()
                            .err()
                            .unwrap_or_else(|| Error::rate_limited(reason, None)));
                    }
                    let wait = classify::retry_after(&headers).unwrap_or(match policy.as_str() {
                        "SECONDLY" => Duration::from_secs(1),
                        _ => budget.rate().1,
                    });
                    tracing::warn!(connector = %self.name, %policy, wait_ms = wait.as_millis() as u64, "HubSpot answered 429; waiting out the window.");
                    budget.hold(wait);
                    last = Error::rate_limited(format!("{what}: 429 {policy}"), Some(wait));
                    continue;
                }
                s if classify::is_transient(status) => {
                    last = Error::transient(format!(
                        "{what}: HubSpot answered {s} ({})",
                        describe(&body)
                    ));
                    match backoff.next() {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(last),
                    }
                }
                s => {
                    return Err(Error::permanent(format!(
                        "{what}: HubSpot answered {s}: {} (correlation {correlation})",
                        describe(&body)
                    )));
                }
            }
        }
        Err(last)
    }

    /// A token that cannot be obtained: a dead refresh token pauses the connector for the admin.
    async fn auth_failed(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Permanent {
            self.pause.pause(e.message(), None).await;
            return Error::rate_limited(format!("connector paused: {}", e.message()), None);
        }
        e
    }

    async fn observe(&self, headers: &HeaderMap) {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        self.budget.observe(WindowHeaders {
            max: num("x-hubspot-ratelimit-max").map(|v| v as u32),
            interval: num("x-hubspot-ratelimit-interval-milliseconds").map(Duration::from_millis),
            remaining: num("x-hubspot-ratelimit-remaining").map(|v| v as u32),
        });
        if let (Some(daily), Some(remaining)) = (
            num("x-hubspot-ratelimit-daily"),
            num("x-hubspot-ratelimit-daily-remaining"),
        ) {
            let reserve = (daily as f64 * self.daily_reserve).ceil() as u64;
            if remaining <= reserve {
                let reason = format!(
                    "{remaining} of the portal's {daily} daily API calls are left, which is the {:.0} % \
                     reserved for its other integrations (daily_reserve); deliveries resume after the \
                     portal's midnight (UTC{})",
                    self.daily_reserve * 100.0,
                    offset_label(self.utc_offset)
                );
                self.pause
                    .pause(&reason, Some(self.next_daily_reset()))
                    .await;
            }
        }
    }

    /// Midnight in the portal's time zone, when HubSpot resets the daily quota.
    pub fn next_daily_reset(&self) -> SystemTime {
        next_midnight(OffsetDateTime::now_utc(), self.utc_offset)
    }
}

pub fn next_midnight(now: OffsetDateTime, offset: UtcOffset) -> SystemTime {
    let local = now.to_offset(offset);
    let tomorrow = local.date().next_day().unwrap_or(local.date());
    let midnight = tomorrow.midnight().assume_offset(offset);
    SystemTime::from(midnight)
}

/// "+01:00", "-05:30".
pub fn offset_label(o: UtcOffset) -> String {
    let sign = if o.is_negative() { '-' } else { '+' };
    format!(
        "{sign}{:02}:{:02}",
        o.whole_hours().abs(),
        o.minutes_past_hour().abs()
    )
}

/// The scopes a 403 MISSING_SCOPES names.
pub fn missing_scopes(body: &Value) -> Option<String> {
    let scopes: Vec<&str> = body
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| e.get("context")?.get("requiredGranularScopes")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    (!scopes.is_empty()).then(|| scopes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn the_daily_reset_is_the_portals_next_midnight() {
        let now = datetime!(2026-11-22 03:30 UTC);
        assert_eq!(
            next_midnight(now, offset!(-05:00)),
            SystemTime::from(datetime!(2026-11-22 05:00 UTC))
        );
        assert_eq!(
            next_midnight(now, UtcOffset::UTC),
            SystemTime::from(datetime!(2026-11-23 00:00 UTC))
        );
    }

    #[test]
    fn missing_scopes_are_read_from_the_403() {
        let body = serde_json::json!({"category": "MISSING_SCOPES", "errors": [
            {"context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}]});
        assert_eq!(
            missing_scopes(&body).as_deref(),
            Some("crm.objects.contacts.write")
        );
    }
}
