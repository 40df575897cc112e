//! What Zoho's answers mean, for the shared engine (`wa2crm_rest::engine`): a pure classifier and
//! the credits its headers announce. Tested table-driven below; the facts and their sources are
//! in README.md, "Zoho CRM".
//!
//! Zoho answers a write record by record (`data[]`, each with its `code`), with 200, 207 or 400:
//! every such answer is the caller's to read. A 401 INVALID_TOKEN is a token to refresh; a 401
//! OAUTH_SCOPE_MISMATCH is the admin's to fix (a new refresh token with the scopes) and pauses the
//! connector. 429 comes without `Retry-After`, for the org's calls in flight and for its credits
//! alike: with credits left (as the last answer's `X-RATELIMIT-REMAINING` said) it is waited out;
//! without, the connector pauses; not knowing (no header), ten in a row pause it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;
use wa2crm_rest::classify;
use wa2crm_rest::verdict::{
    self, Observed, PauseCause, PauseOrder, Reply, RetryPolicy, Rules, Verdict,
};

/// How long the connector pauses when the org's credits (or the reserve) are reached: credits are
/// counted over a rolling 24 hours, so calls come back as older ones age out.
pub const USAGE_PAUSE: Duration = Duration::from_secs(15 * 60);
/// A 429 with credits left: the org's concurrency limit, freed within moments.
pub const CONCURRENCY_WAIT: Duration = Duration::from_secs(2);

/// Credits left as last announced; unknown until an answer carries the header.
const UNKNOWN: i64 = -1;
/// 429s in a row after which, the credits unknown, they are taken as used up: the concurrency
/// limit frees within seconds, the credits only as the 24 hours roll on.
const RUN_OF_429: u32 = 10;

pub struct ZohoRules {
    pub daily_reserve: f64,
    pub credits_left: Arc<AtomicI64>,
    /// 429s answered in a row (any other answer ends the run).
    pub run_of_429: Arc<AtomicU32>,
}

impl ZohoRules {
    pub fn new(daily_reserve: f64) -> Self {
        ZohoRules {
            daily_reserve,
            credits_left: Arc::new(AtomicI64::new(UNKNOWN)),
            run_of_429: Arc::new(AtomicU32::new(0)),
        }
    }

    fn quota_pause(&self, reason: String, now: SystemTime) -> PauseOrder {
        PauseOrder {
            reason,
            until: Some(now + USAGE_PAUSE),
            cause: PauseCause::Quota,
        }
    }
}

impl Rules for ZohoRules {
    fn vendor(&self) -> &'static str {
        "Zoho"
    }

    fn classify(&self, reply: &Reply, now: SystemTime) -> Verdict {
        let body = reply.body.json();
        let details = || verdict::details(&reply.body, describe);
        if reply.status.as_u16() != 429 {
            self.run_of_429.store(0, Ordering::Release);
        }
        match reply.status.as_u16() {
            200..=299 => verdict::success_not_json(reply, "Zoho").unwrap_or(Verdict::Answer),
            401 if code(body) == "OAUTH_SCOPE_MISMATCH" => Verdict::Pause(PauseOrder {
                reason: format!(
                    "Zoho refused a call for want of a scope ({}). Make a new refresh token with the \
                     scopes README.md lists (Zoho CRM, step 2), put it in the config or the \
                     credentials directory, then restart wa2crm",
                    details()
                ),
                until: None,
                cause: PauseCause::Credentials,
            }),
            // INVALID_TOKEN (expired or retired: a refresh token keeps 15 live) or
            // AUTHENTICATION_FAILURE: one refresh for every worker.
            401 => Verdict::Refresh {
                always: false,
                otherwise: Box::new(Verdict::Transient(format!(
                    "Zoho refused the token again right after a refresh ({})",
                    details()
                ))),
            },
            429 => {
                let run = self.run_of_429.fetch_add(1, Ordering::AcqRel) + 1;
                match self.credits_left.load(Ordering::Acquire) {
                    0 => Verdict::Pause(
                        self.quota_pause(
                            "the org's Zoho API credits for the last 24 hours are used up (429); \
                         wa2crm tries again every 15 minutes as the rolling 24 hours frees credits"
                                .into(),
                            now,
                        ),
                    ),
                    UNKNOWN if run >= RUN_OF_429 => {
                        self.run_of_429.store(0, Ordering::Release);
                        Verdict::Pause(self.quota_pause(
                            format!(
                                "Zoho answered 429 to {run} calls in a row without saying how many \
                                 credits are left: the org's credits for the last 24 hours are \
                                 probably used up (or other integrations hold every concurrent \
                                 call). wa2crm tries again every 15 minutes"
                            ),
                            now,
                        ))
                    }
                    _ => Verdict::Wait(Some(CONCURRENCY_WAIT)),
                }
            }
            s if classify::is_transient(reply.status) => {
                Verdict::Transient(format!("Zoho answered {s} ({})", details()))
            }
            _ => Verdict::Answer,
        }
    }

    fn observe(&self, headers: &HeaderMap, now: SystemTime) -> Observed {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (Some(limit), Some(left)) =
            (number("x-ratelimit-limit"), number("x-ratelimit-remaining"))
        else {
            return Observed::default();
        };
        self.credits_left
            .store(i64::try_from(left).unwrap_or(i64::MAX), Ordering::Release);
        let floor = (limit as f64 * self.daily_reserve).ceil() as u64;
        let pause = (limit > 0 && left <= floor).then(|| {
            self.quota_pause(
                format!(
                    "the org has {left} of its {limit} Zoho API credits left for the rolling 24 hours; \
                     the last {:.0} % are kept for its other integrations (daily_reserve). wa2crm \
                     tries again every 15 minutes",
                    self.daily_reserve * 100.0
                ),
                now,
            )
        });
        Observed {
            window: None,
            pause,
            quota: Some((left, limit)),
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_sends: 6,
            max_retries: 2,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
        }
    }
}

/// A top-level error's `code` (`INVALID_TOKEN`, `INVALID_DATA`, …).
pub fn code(body: &Value) -> &str {
    body.get("code").and_then(Value::as_str).unwrap_or("")
}

/// Zoho's error as one line: `INVALID_DATA: invalid data (api_name: WA_Size)`.
pub fn describe(body: &Value) -> String {
    let one = |e: &Value| {
        let code = e.get("code").and_then(Value::as_str).unwrap_or("ERROR");
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        let details: Vec<String> = e
            .get("details")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some(format!("{k}: {s}")),
                Value::Number(n) => Some(format!("{k}: {n}")),
                _ => None,
            })
            .collect();
        if details.is_empty() {
            format!("{code}: {message}")
        } else {
            format!("{code}: {message} ({})", details.join(", "))
        }
    };
    match body {
        Value::Object(o) if o.contains_key("code") => one(body),
        Value::Object(o) => match o.get("data").and_then(Value::as_array) {
            Some(items) => items
                .iter()
                .filter(|r| r["status"] != "success")
                .map(one)
                .collect::<Vec<_>>()
                .join("; "),
            None => "no details".into(),
        },
        Value::String(text) => format!("{text:?}"),
        _ => "no details".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use wa2crm_rest::verdict::Body;

    fn err(code: &str) -> Value {
        json!({"code": code, "details": {}, "message": "m", "status": "error"})
    }

    #[test]
    fn every_answer_zoho_gives_is_classified() {
        let records = json!({"data": [{"code": "SUCCESS", "status": "success"},
            {"code": "INVALID_DATA", "status": "error", "details": {"api_name": "X"}}]});
        let table: Vec<(Reply, &str)> = vec![
            (Reply::json(200, json!({"data": []})), "answer"),
            (Reply::json(201, json!({"fields": []})), "answer"),
            (Reply::new(204, &[], Body::Empty), "answer"),
            (Reply::json(207, records.clone()), "answer"),
            (Reply::json(400, records), "answer"),
            (
                Reply::new(200, &[], Body::Text("<html>maintenance".into())),
                "transient",
            ),
            (Reply::json(400, err("INVALID_DATA")), "answer"),
            (Reply::json(400, err("SYNTAX_ERROR")), "answer"),
            (Reply::json(400, err("INVALID_MODULE")), "answer"),
            (
                Reply::json(401, err("INVALID_TOKEN")),
                "refresh always=false else transient",
            ),
            (
                Reply::json(401, err("AUTHENTICATION_FAILURE")),
                "refresh always=false else transient",
            ),
            (
                Reply::json(401, err("OAUTH_SCOPE_MISMATCH")),
                "pause Credentials",
            ),
            (Reply::json(403, err("NO_PERMISSION")), "answer"),
            (Reply::json(404, err("INVALID_URL_PATTERN")), "answer"),
            (Reply::json(429, err("TOO_MANY_REQUESTS")), "wait Some(2s)"),
            (Reply::json(500, err("INTERNAL_ERROR")), "transient"),
            (
                Reply::new(502, &[], Body::Text("Bad Gateway".into())),
                "transient",
            ),
        ];
        let rules = ZohoRules::new(0.2);
        for (reply, want) in table {
            let got = rules.classify(&reply, SystemTime::UNIX_EPOCH);
            assert_eq!(got.shape(), want, "{} {:?}", reply.status, reply.body);
        }
    }

    #[test]
    fn credits_at_the_reserve_or_gone_pause_and_a_429_then_pauses() {
        let rules = ZohoRules::new(0.2);
        let h = |limit: &str, left: &str| {
            Reply::new(
                200,
                &[
                    ("x-ratelimit-limit", limit),
                    ("x-ratelimit-remaining", left),
                ],
                Body::Empty,
            )
            .headers
        };
        assert_eq!(
            rules
                .observe(&h("1000", "201"), SystemTime::UNIX_EPOCH)
                .pause,
            None
        );
        let p = rules
            .observe(&h("1000", "200"), SystemTime::UNIX_EPOCH)
            .pause
            .expect("200 of 1000 left is the 20 % reserve");
        assert_eq!(p.cause, PauseCause::Quota);
        assert!(p.reason.contains("200 of its 1000"), "{}", p.reason);
        let too_many = Reply::json(429, err("TOO_MANY_REQUESTS"));
        assert_eq!(
            rules.classify(&too_many, SystemTime::UNIX_EPOCH).shape(),
            "wait Some(2s)",
            "credits left: the concurrency limit"
        );
        rules.observe(&h("1000", "0"), SystemTime::UNIX_EPOCH);
        assert_eq!(
            rules.classify(&too_many, SystemTime::UNIX_EPOCH).shape(),
            "pause Quota"
        );
        assert_eq!(
            rules.observe(&HeaderMap::new(), SystemTime::UNIX_EPOCH),
            Observed::default(),
            "no headers, nothing known"
        );
    }

    #[test]
    fn a_run_of_429s_without_credit_headers_pauses() {
        let rules = ZohoRules::new(0.2);
        let too_many = Reply::json(429, err("TOO_MANY_REQUESTS"));
        for _ in 1..RUN_OF_429 {
            assert_eq!(
                rules.classify(&too_many, SystemTime::UNIX_EPOCH).shape(),
                "wait Some(2s)"
            );
        }
        // Another answer ends the run.
        rules.classify(&Reply::json(200, json!({})), SystemTime::UNIX_EPOCH);
        assert_eq!(
            rules.classify(&too_many, SystemTime::UNIX_EPOCH).shape(),
            "wait Some(2s)"
        );
        for _ in 1..RUN_OF_429 - 1 {
            rules.classify(&too_many, SystemTime::UNIX_EPOCH);
        }
        let v = rules.classify(&too_many, SystemTime::UNIX_EPOCH);
        assert_eq!(v.shape(), "pause Quota");
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = json!({"code": "INVALID_DATA", "details": {"api_name": "WA_Size", "expected_data_type": "bigint"},
            "message": "invalid data", "status": "error"});
        assert_eq!(
            describe(&e),
            "INVALID_DATA: invalid data (api_name: WA_Size, expected_data_type: bigint)"
        );
        let records = json!({"data": [{"status": "success"}, e]});
        assert!(describe(&records).starts_with("INVALID_DATA"));
        assert_eq!(describe(&json!("<html>")), "\"<html>\"");
    }
}
