//! One Salesforce API call: on the session's `instance_url`, with at most `max_concurrent` in
//! flight, re-authenticating once on 401 INVALID_SESSION_ID (shared by every worker) and then
//! replaying the call, reading `Sforce-Limit-Info` on every answer and pausing before the org's
//! daily allocation eats into the reserve, pausing on 403 REQUEST_LIMIT_EXCEEDED, and retrying
//! 5xx and network failures only for calls that are safe to repeat.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Semaphore;
use wa2crm_core::{Error, ErrorKind, Result};
use wa2crm_rest::classify;
use wa2crm_rest::pause::PauseGate;
use wa2crm_rest::token::TokenCache;

/// How long the connector pauses after 403 REQUEST_LIMIT_EXCEEDED before trying again: the
/// allocation is a rolling 24 hours, so calls come back as older ones age out.
const LIMIT_EXCEEDED_PAUSE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

/// Salesforce's error array, as one line: `INVALID_FIELD: No such column 'Foo__c' (Foo__c)`.
pub fn describe(body: &Value) -> String {
    let one = |e: &Value| {
        let code = e
            .get("errorCode")
            .or_else(|| e.get("statusCode"))
            .and_then(Value::as_str)
            .unwrap_or("ERROR");
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        let fields: Vec<&str> = e
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if fields.is_empty() {
            format!("{code}: {message}")
        } else {
            format!("{code}: {message} ({})", fields.join(", "))
        }
    };
    match body {
        Value::Array(errors) if !errors.is_empty() => {
            errors.iter().map(one).collect::<Vec<_>>().join("; ")
        }
        Value::Object(_) => one(body),
        _ => "no details".into(),
    }
}

fn error_code(body: &Value) -> &str {
    body.get(0)
        .and_then(|e| e.get("errorCode"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `api-usage=N/M` of a `Sforce-Limit-Info` header.
pub fn api_usage(header: &str) -> Option<(u64, u64)> {
    let rest = header.split("api-usage=").nth(1)?;
    let value = rest.split([';', ' ']).next()?;
    let (used, max) = value.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

pub struct Api {
    pub name: String,
    pub http: reqwest::Client,
    pub sessions: TokenCache,
    pub instance_url: Arc<RwLock<Option<reqwest::Url>>>,
    pub in_flight: Semaphore,
    pub pause: PauseGate,
    pub daily_reserve: f64,
    /// `/services/data/vXX.X`
    pub data_path: String,
    /// Set while a pause the org's API usage caused is running: when it ends, one `GET /limits`
    /// says whether the allocation has room again before the queued work is let loose on it.
    pub usage_pause: AtomicBool,
    /// One `/limits` look at a time.
    pub limits_look: tokio::sync::Mutex<()>,
}

/// `/limits`: how many calls the org has used of its daily allocation.
pub fn daily_usage(body: &Value) -> Option<(u64, u64)> {
    let daily = body.get("DailyApiRequests")?;
    let max = daily.get("Max")?.as_u64()?;
    let remaining = daily.get("Remaining")?.as_u64()?;
    Some((max.saturating_sub(remaining), max))
}

impl Api {
    /// A call under `/services/data/vXX.X`. `idempotent`: safe to send again after a network
    /// failure or a 5xx (upserts by external ID, reads); a create is never retried blindly.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Answer> {
        let what = format!(
            "Salesforce {method} {}",
            path.split('?').next().unwrap_or(path)
        );
        let mut reauthenticated = false;
        let mut retries = 0u32;
        loop {
            let (token, url, _slot) = self.prepare(path).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose_secret());
            if let Some(b) = body {
                request = request.json(b);
            }
            let sent = request.send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let e = classify::from_reqwest(&what, e);
                    if idempotent && retries < 2 {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(500 << retries)).await;
                        continue;
                    }
                    return Err(e);
                }
            };
            let status = response.status();
            if let Some(info) = response
                .headers()
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                && let Some((used, max)) = api_usage(info)
            {
                self.observe_usage(used, max).await;
            }
            let body: Value = match response.bytes().await {
                Ok(b) if b.is_empty() => Value::Null,
                Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
                Err(e) => return Err(classify::from_reqwest(&what, e)),
            };
            match status.as_u16() {
                401 if !reauthenticated => {
                    // INVALID_SESSION_ID: the session ended. One re-authentication for all.
                    reauthenticated = true;
                    if let Err(e) = self.sessions.refresh_after_rejection(&token).await {
                        return Err(self.login_failed(e).await);
                    }
                    continue;
                }
                401 => {
                    return Err(Error::transient(format!(
                        "{what}: the session was refused again right after logging in ({})",
                        describe(&body)
                    )));
                }
                403 if error_code(&body) == "REQUEST_LIMIT_EXCEEDED" => {
                    return Err(self.limit_exceeded().await);
                }
                s if classify::is_transient(status) => {
                    let e = Error::transient(format!(
                        "{what}: Salesforce answered {s} ({})",
                        describe(&body)
                    ));
                    if idempotent && retries < 2 {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(500 << retries)).await;
                        continue;
                    }
                    return Err(e);
                }
                _ => return Ok(Answer { status, body }),
            }
        }
    }

    /// A multipart POST that creates something (a ContentVersion): sent once, never retried here —
    /// the caller looks first whether an earlier attempt landed.
    pub async fn post_multipart_once(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> Result<Answer> {
        let (token, url, _slot) = self.prepare(path).await?;
        let response = self
            .http
            .post(url)
            .bearer_auth(token.expose_secret())
            .multipart(form)
            .send()
            .await
            .map_err(|e| classify::from_reqwest(&format!("Salesforce POST {path}"), e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            // The next attempt logs in again (and first looks whether this upload landed).
            let _ = self.sessions.refresh_after_rejection(&token).await;
            return Err(Error::transient(format!(
                "Salesforce POST {path}: the session ended ({})",
                describe(&body)
            )));
        }
        if classify::is_transient(status) {
            return Err(Error::transient(format!(
                "Salesforce POST {path} answered {status} ({})",
                describe(&body)
            )));
        }
        Ok(Answer { status, body })
    }

    /// What every call needs first: not paused, a session, its URL, and a slot among the
    /// requests in flight.
    async fn prepare(
        &self,
        path: &str,
    ) -> Result<(
        secrecy::SecretString,
        reqwest::Url,
        tokio::sync::SemaphorePermit<'_>,
    )> {
        self.pause.check()?;
        if self.usage_pause.load(Ordering::Acquire) {
            self.look_at_limits().await?;
        }
        // The slot first, the session second: a session taken before a long wait for a slot
        // could end on the way and cost a needless re-authentication.
        let slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Error::transient("the connector is shutting down"))?;
        let token = match self.sessions.get().await {
            Ok(t) => t,
            Err(e) => return Err(self.login_failed(e).await),
        };
        let url = self.url(path)?;
        Ok((token, url, slot))
    }

    fn url(&self, path: &str) -> Result<reqwest::Url> {
        let base = self
            .instance_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::transient("no Salesforce session yet"))?;
        base.join(&format!("{}{path}", self.data_path))
            .map_err(|e| Error::permanent(format!("Salesforce URL for {path}: {e}")))
    }

    /// A login that cannot succeed pauses the connector until the admin fixes it.
    async fn login_failed(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Permanent {
            self.pause.pause(e.message(), None).await;
            return Error::rate_limited(format!("connector paused: {}", e.message()), None);
        }
        e
    }

    /// A usage pause has run out: `GET /limits` (one caller; the others wait for its verdict)
    /// decides whether to go on or to pause again. An answer that says nothing (the user may lack
    /// View Setup) lets the calls go, and their own `Sforce-Limit-Info` decides.
    async fn look_at_limits(&self) -> Result<()> {
        let _one = self.limits_look.lock().await;
        if !self.usage_pause.load(Ordering::Acquire) {
            return self.pause.check();
        }
        let token = match self.sessions.get().await {
            Ok(t) => t,
            Err(e) => return Err(self.login_failed(e).await),
        };
        let sent = self
            .http
            .get(self.url("/limits")?)
            .bearer_auth(token.expose_secret())
            .send()
            .await;
        let (status, body) = match sent {
            Ok(r) => (r.status(), r.json::<Value>().await.unwrap_or(Value::Null)),
            Err(e) => return Err(classify::from_reqwest("Salesforce GET /limits", e)),
        };
        match (status.as_u16(), daily_usage(&body)) {
            (200, Some((used, max))) => {
                self.usage_pause.store(false, Ordering::Release);
                self.observe_usage(used, max).await;
                if self.pause.check().is_ok() {
                    tracing::info!(connector = %self.name, used, max, "The org's API allocation has room again; deliveries resume.");
                }
            }
            (403, _) if error_code(&body) == "REQUEST_LIMIT_EXCEEDED" => {
                self.limit_exceeded().await;
            }
            _ => {
                tracing::warn!(connector = %self.name, %status, "GET /limits said nothing about the daily allocation; resuming and watching Sforce-Limit-Info.");
                self.usage_pause.store(false, Ordering::Release);
            }
        }
        self.pause.check()
    }

    async fn limit_exceeded(&self) -> Error {
        let reason = "the org's daily API allocation is used up (403 REQUEST_LIMIT_EXCEEDED); \
                      wa2crm looks at /limits every 15 minutes and resumes when the rolling 24 hours frees calls";
        self.usage_pause.store(true, Ordering::Release);
        self.pause
            .pause(reason, Some(SystemTime::now() + LIMIT_EXCEEDED_PAUSE))
            .await;
        Error::rate_limited(reason, Some(LIMIT_EXCEEDED_PAUSE))
    }

    async fn observe_usage(&self, used: u64, max: u64) {
        let ceiling = (max as f64 * (1.0 - self.daily_reserve)).floor() as u64;
        if max > 0 && used >= ceiling {
            self.usage_pause.store(true, Ordering::Release);
            let reason = format!(
                "the org has used {used} of its {max} daily API calls; the last {:.0} % are reserved for \
                 its other integrations (daily_reserve). wa2crm looks at /limits every 15 minutes and resumes \
                 when the rolling 24 hours frees calls",
                self.daily_reserve * 100.0
            );
            self.pause
                .pause(&reason, Some(SystemTime::now() + LIMIT_EXCEEDED_PAUSE))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limit_info_is_read_in_its_documented_forms() {
        assert_eq!(api_usage("api-usage=18/5000"), Some((18, 5000)));
        assert_eq!(
            api_usage("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"),
            Some((25, 5000))
        );
        assert_eq!(
            api_usage("api-usage=10018/100000; api-bursts=1/750"),
            Some((10018, 100000))
        );
        assert_eq!(api_usage("per-app-api-usage=17/250(appName=x)"), None);
        assert_eq!(api_usage("nonsense"), None);
    }

    #[test]
    fn errors_read_as_one_line() {
        let body = json!([{"message": "No such column 'Foo__c'", "errorCode": "INVALID_FIELD", "fields": ["Foo__c"]}]);
        assert_eq!(
            describe(&body),
            "INVALID_FIELD: No such column 'Foo__c' (Foo__c)"
        );
        let save = json!({"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]});
        assert_eq!(
            describe(&save),
            "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (LastName)"
        );
    }
}
