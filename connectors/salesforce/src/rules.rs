//! What Salesforce's answers mean: a pure classifier and the org's usage its headers announce,
//! for the shared engine (`wa2crm_rest::engine`). Tested table-driven below.
//!
//! Salesforce answers a refused record with 400 and its error array, and the connector reads
//! those itself (a record refused among others that land), so every 4xx but a dead session and
//! the exhausted allocation is the caller's to read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;
use wa2crm_rest::classify;
use wa2crm_rest::verdict::{
    self, Observed, PauseCause, PauseOrder, Reply, RetryPolicy, Rules, Verdict,
};

/// How long the connector pauses after 403 REQUEST_LIMIT_EXCEEDED, or at the reserve, before
/// looking at `/limits` again: the allocation is a rolling 24 hours, so calls come back as older
/// ones age out.
pub const USAGE_PAUSE: Duration = Duration::from_secs(15 * 60);

pub struct SalesforceRules {
    /// The share of the org's daily allocation left to its other integrations.
    pub daily_reserve: f64,
    /// Set while a pause the org's API usage caused is running: when it ends, one `GET /limits`
    /// says whether the allocation has room again before the queued work is let loose on it.
    pub usage_pause: Arc<AtomicBool>,
}

impl Rules for SalesforceRules {
    fn vendor(&self) -> &'static str {
        "Salesforce"
    }

    fn classify(&self, reply: &Reply, now: SystemTime) -> Verdict {
        let details = || verdict::details(&reply.body, describe);
        match reply.status.as_u16() {
            200..=299 => {
                verdict::success_not_json(reply, "Salesforce").unwrap_or(Verdict::Answer)
            }
            // INVALID_SESSION_ID: the session ended. One re-authentication for all workers.
            401 => Verdict::Refresh {
                always: false,
                otherwise: Box::new(Verdict::Transient(format!(
                    "the session was refused again right after logging in ({})",
                    details()
                ))),
            },
            403 if error_code(reply.body.json()) == "REQUEST_LIMIT_EXCEEDED" => {
                Verdict::Pause(PauseOrder {
                    reason: "the org's daily API allocation is used up (403 REQUEST_LIMIT_EXCEEDED); \
                             wa2crm looks at /limits every 15 minutes and resumes when the rolling 24 hours frees calls"
                        .into(),
                    until: Some(now + USAGE_PAUSE),
                    cause: PauseCause::Quota,
                })
            }
            s if classify::is_transient(reply.status) => {
                Verdict::Transient(format!("Salesforce answered {s} ({})", details()))
            }
            _ => Verdict::Answer,
        }
    }

    fn observe(&self, headers: &HeaderMap, now: SystemTime) -> Observed {
        let usage = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(api_usage);
        Observed {
            window: None,
            pause: usage.and_then(|(used, max)| self.usage_pause(used, max, now)),
            quota: usage.map(|(used, max)| (max.saturating_sub(used), max)),
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_sends: 5,
            max_retries: 2,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(2),
        }
    }

    fn paused(&self, order: &PauseOrder) {
        if order.cause == PauseCause::Quota {
            self.usage_pause.store(true, Ordering::Release);
        }
    }
}

impl SalesforceRules {
    /// The pause the org's usage calls for: none below the reserve's ceiling.
    pub fn usage_pause(&self, used: u64, max: u64, now: SystemTime) -> Option<PauseOrder> {
        let ceiling = (max as f64 * (1.0 - self.daily_reserve)).floor() as u64;
        (max > 0 && used >= ceiling).then(|| PauseOrder {
            reason: format!(
                "the org has used {used} of its {max} daily API calls; the last {:.0} % are reserved for \
                 its other integrations (daily_reserve). wa2crm looks at /limits every 15 minutes and resumes \
                 when the rolling 24 hours frees calls",
                self.daily_reserve * 100.0
            ),
            until: Some(now + USAGE_PAUSE),
            cause: PauseCause::Quota,
        })
    }
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
        // A body that was not JSON reaches callers as a string: say what it was.
        Value::String(text) => format!("{text:?}"),
        _ => "no details".into(),
    }
}

pub fn error_code(body: &Value) -> &str {
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

/// `/limits`: how many calls the org has used of its daily allocation.
pub fn daily_usage(body: &Value) -> Option<(u64, u64)> {
    let daily = body.get("DailyApiRequests")?;
    let max = daily.get("Max")?.as_u64()?;
    let remaining = daily.get("Remaining")?.as_u64()?;
    Some((max.saturating_sub(remaining), max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wa2crm_rest::verdict::Body;

    fn rules() -> SalesforceRules {
        SalesforceRules {
            daily_reserve: 0.2,
            usage_pause: Arc::default(),
        }
    }

    #[test]
    fn every_answer_salesforce_gives_is_classified() {
        let err = |code: &str| json!([{"errorCode": code, "message": "m"}]);
        let table: Vec<(Reply, &str)> = vec![
            (Reply::json(200, json!({"records": []})), "answer"),
            (
                Reply::json(201, json!({"id": "003", "success": true})),
                "answer",
            ),
            (Reply::new(204, &[], Body::Empty), "answer"),
            (
                Reply::new(200, &[], Body::Text("<html>Maintenance".into())),
                "transient",
            ),
            (
                Reply::new(300, &[], Body::Json(json!(["/a", "/b"]))),
                "answer",
            ),
            (Reply::json(400, err("INVALID_FIELD")), "answer"),
            (Reply::json(400, err("MALFORMED_QUERY")), "answer"),
            (
                Reply::json(401, err("INVALID_SESSION_ID")),
                "refresh always=false else transient",
            ),
            (
                Reply::json(403, err("REQUEST_LIMIT_EXCEEDED")),
                "pause Quota",
            ),
            (Reply::json(403, err("INSUFFICIENT_ACCESS")), "answer"),
            (Reply::json(404, err("NOT_FOUND")), "answer"),
            (Reply::json(409, err("ENTITY_IS_LOCKED")), "answer"),
            (Reply::json(415, err("UNSUPPORTED_MEDIA_TYPE")), "answer"),
            (Reply::json(500, err("UNKNOWN_EXCEPTION")), "transient"),
            (
                Reply::new(502, &[], Body::Text("Bad Gateway".into())),
                "transient",
            ),
            (Reply::json(503, err("SERVER_UNAVAILABLE")), "transient"),
        ];
        for (reply, want) in table {
            let got = rules().classify(&reply, SystemTime::UNIX_EPOCH);
            assert_eq!(got.shape(), want, "{} {:?}", reply.status, reply.body);
        }
    }

    #[test]
    fn the_reserve_and_the_exhausted_allocation_pause_and_mark_a_usage_pause() {
        let r = rules();
        let h = |v: &str| Reply::new(200, &[("sforce-limit-info", v)], Body::Empty).headers;
        assert_eq!(
            r.observe(&h("api-usage=799/1000"), SystemTime::UNIX_EPOCH)
                .pause,
            None
        );
        let p = r
            .observe(
                &h("api-usage=800/1000; per-app-api-usage=1/250(appName=x)"),
                SystemTime::UNIX_EPOCH,
            )
            .pause
            .expect("800 of 1000 reaches the 20 % reserve");
        assert_eq!(p.until, Some(SystemTime::UNIX_EPOCH + USAGE_PAUSE));
        assert!(p.reason.contains("used 800 of its 1000"), "{}", p.reason);
        assert_eq!(
            r.observe(&h("nonsense"), SystemTime::UNIX_EPOCH),
            Observed::default()
        );

        assert!(!r.usage_pause.load(Ordering::Acquire));
        r.paused(&p);
        assert!(
            r.usage_pause.load(Ordering::Acquire),
            "a quota pause looks at /limits when it ends"
        );
        let fresh = rules();
        fresh.paused(&PauseOrder {
            reason: "dead".into(),
            until: None,
            cause: PauseCause::Credentials,
        });
        assert!(!fresh.usage_pause.load(Ordering::Acquire));
    }

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
        assert_eq!(describe(&json!("<html>")), "\"<html>\"");
    }
}
