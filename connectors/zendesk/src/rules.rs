//! What Zendesk's answers mean, for the shared engine (`wa2crm_rest::engine`): a pure classifier
//! and the per-minute window every answer announces. Sources: docs/vendors/zendesk.md.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;
use wa2crm_rest::classify;
use wa2crm_rest::limit::WindowHeaders;
use wa2crm_rest::verdict::{
    self, Observed, PauseCause, PauseOrder, Reply, RetryPolicy, Rules, Verdict,
};

pub struct ZendeskRules {
    /// OAuth (a refresh can help) or an API token (it cannot).
    pub oauth: bool,
}

impl Rules for ZendeskRules {
    fn vendor(&self) -> &'static str {
        "Zendesk"
    }

    fn classify(&self, reply: &Reply, _now: SystemTime) -> Verdict {
        let details = || verdict::details(&reply.body, describe);
        match reply.status.as_u16() {
            200..=299 => verdict::success_not_json(reply, "Zendesk").unwrap_or(Verdict::Answer),
            // The caller's to read: a 404 is "no such record", a 422 RecordInvalid names the
            // fields at fault, a 400 the parameter.
            400 | 404 | 422 => Verdict::Answer,
            401 => Verdict::Refresh {
                always: false,
                otherwise: Box::new(Verdict::Pause(PauseOrder {
                    reason: format!(
                        "Zendesk rejects the credentials ({}). {}",
                        details(),
                        if self.oauth {
                            "Authorize wa2crm's OAuth client again and configure the new refresh_token, then restart wa2crm"
                        } else {
                            "Check email and api_token (Admin Center → Apps and integrations → Zendesk API; token access must be on), then restart wa2crm"
                        }
                    ),
                    until: None,
                    cause: PauseCause::Credentials,
                })),
            },
            403 => Verdict::Permanent(format!(
                "refused: {} (the agent the credentials act as lacks the permission)",
                details()
            )),
            // A safe update of a ticket that changed since it was read: the caller reads the
            // ticket again and decides afresh (developer.zendesk.com tickets, "Protecting against
            // ticket update collisions").
            409 if reply.body.json()["error"] == "UpdateConflict" => Verdict::Answer,
            // Another update of the same record was going on: sent again, it applies.
            409 => Verdict::Transient(format!("Zendesk answered 409 ({})", details())),
            // The body may be plain text; Retry-After is in seconds.
            429 => Verdict::Wait(classify::retry_after(&reply.headers)),
            // Maintenance with a Retry-After is a wait, not a failure.
            503 if classify::retry_after(&reply.headers).is_some() => {
                Verdict::Wait(classify::retry_after(&reply.headers))
            }
            s if classify::is_transient(reply.status) => {
                Verdict::Transient(format!("Zendesk answered {s} ({})", details()))
            }
            s => Verdict::Permanent(format!("Zendesk answered {s}: {}", details())),
        }
    }

    fn observe(&self, headers: &HeaderMap, _now: SystemTime) -> Observed {
        let num =
            |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let max = num("x-rate-limit").or_else(|| num("ratelimit-limit"));
        let remaining = num("x-rate-limit-remaining").or_else(|| num("ratelimit-remaining"));
        Observed {
            window: (max.is_some() || remaining.is_some()).then_some(WindowHeaders {
                max,
                interval: Some(Duration::from_secs(60)),
                remaining,
            }),
            pause: None,
            quota: None,
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_sends: 5,
            max_retries: 3,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Zendesk's error, as one line: `RecordInvalid: Record validation errors (requester: …)`.
pub fn describe(body: &Value) -> String {
    let error = match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("title")
            .or_else(|| o.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_owned(),
        _ => "error".to_owned(),
    };
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let details: Vec<String> = body
        .get("details")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(field, problems)| {
                    let said: Vec<&str> = problems
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.get("description").and_then(Value::as_str))
                        .collect();
                    format!("{field}: {}", said.join("; "))
                })
                .collect()
        })
        .unwrap_or_default();
    if details.is_empty() {
        format!("{error}{description}")
    } else {
        format!("{error}{description} ({})", details.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wa2crm_rest::verdict::Body;

    use super::*;

    #[test]
    fn every_answer_zendesk_gives_is_classified() {
        let r = ZendeskRules { oauth: false };
        let table: Vec<(Reply, &str)> = vec![
            (Reply::json(200, json!({"ticket": {"id": 1}})), "answer"),
            (
                Reply::json(201, json!({"upload": {"token": "t"}})),
                "answer",
            ),
            (Reply::new(204, &[], Body::Empty), "answer"),
            (
                Reply::new(200, &[], Body::Text("<html>".into())),
                "transient",
            ),
            (
                Reply::json(400, json!({"error": "InvalidEndpoint"})),
                "answer",
            ),
            (
                Reply::json(404, json!({"error": "RecordNotFound"})),
                "answer",
            ),
            (
                Reply::json(422, json!({"error": "RecordInvalid"})),
                "answer",
            ),
            (
                Reply::json(401, json!({"error": "Couldn't authenticate you"})),
                "refresh always=false else pause Credentials",
            ),
            (Reply::json(403, json!({"error": "Forbidden"})), "permanent"),
            (Reply::json(409, json!({"error": "Conflict"})), "transient"),
            (
                Reply::json(409, json!({"error": "UpdateConflict"})),
                "answer",
            ),
            (
                Reply::new(
                    429,
                    &[("retry-after", "7")],
                    Body::Text("Number of allowed API requests per minute exceeded".into()),
                ),
                "wait Some(7s)",
            ),
            (Reply::new(429, &[], Body::Empty), "wait None"),
            (
                Reply::new(503, &[("retry-after", "30")], Body::Empty),
                "wait Some(30s)",
            ),
            (Reply::new(503, &[], Body::Empty), "transient"),
            (Reply::json(500, json!({})), "transient"),
            (
                Reply::new(502, &[], Body::Text("Bad Gateway".into())),
                "transient",
            ),
            (Reply::json(413, json!({})), "permanent"),
        ];
        for (reply, want) in table {
            let got = r.classify(&reply, SystemTime::UNIX_EPOCH);
            assert_eq!(got.shape(), want, "{} {:?}", reply.status, reply.body);
        }
    }

    #[test]
    fn the_window_is_read_from_either_header_form() {
        let r = ZendeskRules { oauth: true };
        let h = |pairs: &[(&str, &str)]| Reply::new(200, pairs, Body::Empty).headers;
        assert_eq!(
            r.observe(
                &h(&[("x-rate-limit", "700"), ("x-rate-limit-remaining", "699")]),
                SystemTime::UNIX_EPOCH
            )
            .window,
            Some(WindowHeaders {
                max: Some(700),
                interval: Some(Duration::from_secs(60)),
                remaining: Some(699)
            })
        );
        assert_eq!(
            r.observe(
                &h(&[("ratelimit-limit", "200"), ("ratelimit-remaining", "3")]),
                SystemTime::UNIX_EPOCH
            )
            .window
            .unwrap()
            .remaining,
            Some(3)
        );
        assert_eq!(
            r.observe(&h(&[]), SystemTime::UNIX_EPOCH),
            Observed::default()
        );
    }

    #[test]
    fn errors_read_as_one_line() {
        let invalid = json!({"error": "RecordInvalid", "description": "Record validation errors",
            "details": {"requester": [{"description": "Requester: Email is already being used by another user"}]}});
        assert_eq!(
            describe(&invalid),
            "RecordInvalid: Record validation errors (requester: Requester: Email is already being used by another user)"
        );
        let oauth = json!({"error": {"title": "Forbidden", "message": "You do not have access to this page."}});
        assert_eq!(describe(&oauth), "Forbidden");
        assert_eq!(
            describe(&json!({"error": "Couldn't authenticate you"})),
            "Couldn't authenticate you"
        );
    }
}
