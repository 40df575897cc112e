//! What HubSpot's answers mean: a pure classifier and the limits its headers announce, for the
//! shared engine (`wa2crm_rest::engine`). Tested table-driven below, status by status.
//!
//! Every call wa2crm makes to HubSpot is safe to repeat (upserts by unique key, associations,
//! properties answered 409 when they exist), which is what makes retrying a POST here sound.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};
use wa2crm_rest::classify;
use wa2crm_rest::limit::WindowHeaders;
use wa2crm_rest::verdict::{
    self, Observed, PauseCause, PauseOrder, Reply, RetryPolicy, Rules, Verdict,
};

pub struct HubSpotRules {
    /// OAuth app (a refresh can help) or private app token (it cannot).
    pub oauth: bool,
    /// The share of the portal's daily calls left to its other integrations.
    pub daily_reserve: f64,
    /// The portal's time zone, whose midnight resets the daily quota.
    pub utc_offset: UtcOffset,
}

impl Rules for HubSpotRules {
    fn vendor(&self) -> &'static str {
        "HubSpot"
    }

    fn classify(&self, reply: &Reply, now: SystemTime) -> Verdict {
        let body = reply.body.json();
        let details = || verdict::details(&reply.body, describe);
        let correlation = body
            .get("correlationId")
            .and_then(Value::as_str)
            .unwrap_or("-");
        match reply.status.as_u16() {
            200..=299 => verdict::success_not_json(reply, "HubSpot").unwrap_or(Verdict::Answer),
            // The caller's to read: a 400 names the inputs at fault, a 404 is "no such record",
            // a 409 "exists already".
            400 | 404 | 409 => Verdict::Answer,
            401 => {
                // An expired OAuth token is refreshed as often as it happens (a token can expire
                // on its way under load); any other 401 gets one refresh, and a fresh token
                // refused means the credentials are dead.
                let expired =
                    body.get("category").and_then(Value::as_str) == Some("EXPIRED_AUTHENTICATION");
                let reason = format!(
                    "HubSpot rejects the credentials ({}; correlation {correlation}). {}",
                    details(),
                    if self.oauth {
                        "Re-authorize the app and configure the new refresh_token, then restart wa2crm"
                    } else {
                        "Put a valid private app token in `token` (Settings → Integrations → Private apps), then restart wa2crm"
                    }
                );
                Verdict::Refresh {
                    always: expired,
                    otherwise: Box::new(Verdict::Pause(PauseOrder {
                        reason,
                        until: None,
                        cause: PauseCause::Credentials,
                    })),
                }
            }
            403 => Verdict::Permanent(format!(
                "refused: {}{} (correlation {correlation})",
                details(),
                missing_scopes(body)
                    .map(|s| format!("; grant the app these scopes: {s}"))
                    .unwrap_or_default()
            )),
            429 => {
                let policy = body.get("policyName").and_then(Value::as_str).unwrap_or("");
                if policy == "DAILY" {
                    return Verdict::Pause(PauseOrder {
                        reason: format!(
                            "HubSpot's daily API limit for this portal is used up; deliveries resume after its midnight (UTC{})",
                            offset_label(self.utc_offset)
                        ),
                        until: Some(next_midnight(now.into(), self.utc_offset)),
                        cause: PauseCause::Quota,
                    });
                }
                Verdict::Wait(classify::retry_after(&reply.headers).or(match policy {
                    // Search's own limit is per second.
                    "SECONDLY" => Some(Duration::from_secs(1)),
                    _ => None,
                }))
            }
            s if classify::is_transient(reply.status) => {
                Verdict::Transient(format!("HubSpot answered {s} ({})", details()))
            }
            s => Verdict::Permanent(format!(
                "HubSpot answered {s}: {} (correlation {correlation})",
                details()
            )),
        }
    }

    fn observe(&self, headers: &HeaderMap, now: SystemTime) -> Observed {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let window = WindowHeaders {
            max: num("x-hubspot-ratelimit-max").map(|v| v as u32),
            interval: num("x-hubspot-ratelimit-interval-milliseconds").map(Duration::from_millis),
            remaining: num("x-hubspot-ratelimit-remaining").map(|v| v as u32),
        };
        let quota =
            num("x-hubspot-ratelimit-daily-remaining").zip(num("x-hubspot-ratelimit-daily"));
        let pause = match (
            num("x-hubspot-ratelimit-daily"),
            num("x-hubspot-ratelimit-daily-remaining"),
        ) {
            (Some(daily), Some(remaining))
                if remaining <= (daily as f64 * self.daily_reserve).ceil() as u64 =>
            {
                Some(PauseOrder {
                    reason: format!(
                        "{remaining} of the portal's {daily} daily API calls are left, which is the {:.0} % \
                         reserved for its other integrations (daily_reserve); deliveries resume after the \
                         portal's midnight (UTC{})",
                        self.daily_reserve * 100.0,
                        offset_label(self.utc_offset)
                    ),
                    until: Some(next_midnight(now.into(), self.utc_offset)),
                    cause: PauseCause::Quota,
                })
            }
            _ => None,
        };
        Observed {
            window: Some(window),
            pause,
            quota,
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_sends: 5,
            max_retries: 5,
            min_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// HubSpot's `message` (and `category`), for errors an admin reads.
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
    use serde_json::json;
    use time::macros::{datetime, offset};
    use wa2crm_rest::verdict::Body;

    fn rules(oauth: bool) -> HubSpotRules {
        HubSpotRules {
            oauth,
            daily_reserve: 0.1,
            utc_offset: offset!(-05:00),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-22 03:30 UTC);

    #[test]
    fn every_answer_hubspot_gives_is_classified() {
        let table: Vec<(Reply, bool, &str)> = vec![
            (Reply::json(200, json!({"results": []})), true, "answer"),
            (Reply::json(201, json!({"id": "1"})), true, "answer"),
            (
                Reply::json(207, json!({"status": "COMPLETE", "errors": []})),
                true,
                "answer",
            ),
            (Reply::new(204, &[], Body::Empty), true, "answer"),
            (
                Reply::new(200, &[], Body::Text("<html>".into())),
                true,
                "transient",
            ),
            (
                Reply::json(400, json!({"category": "VALIDATION_ERROR"})),
                true,
                "answer",
            ),
            (
                Reply::json(404, json!({"category": "OBJECT_NOT_FOUND"})),
                true,
                "answer",
            ),
            (
                Reply::json(409, json!({"category": "CONFLICT"})),
                true,
                "answer",
            ),
            (
                Reply::json(401, json!({"category": "EXPIRED_AUTHENTICATION"})),
                true,
                "refresh always=true else pause Credentials",
            ),
            (
                Reply::json(401, json!({"category": "INVALID_AUTHENTICATION"})),
                true,
                "refresh always=false else pause Credentials",
            ),
            (
                Reply::json(403, json!({"category": "MISSING_SCOPES"})),
                true,
                "permanent",
            ),
            (
                Reply::json(429, json!({"policyName": "TEN_SECONDLY_ROLLING"})),
                true,
                "wait None",
            ),
            (
                Reply::new(
                    429,
                    &[("retry-after", "3")],
                    Body::Json(json!({"policyName": "TEN_SECONDLY_ROLLING"})),
                ),
                true,
                "wait Some(3s)",
            ),
            (
                Reply::json(429, json!({"policyName": "SECONDLY"})),
                true,
                "wait Some(1s)",
            ),
            (
                Reply::json(429, json!({"policyName": "DAILY"})),
                true,
                "pause Quota",
            ),
            (
                Reply::new(429, &[], Body::Text("Too Many Requests".into())),
                true,
                "wait None",
            ),
            (Reply::json(408, json!({})), true, "transient"),
            (
                Reply::json(500, json!({"message": "internal"})),
                true,
                "transient",
            ),
            (
                Reply::new(502, &[], Body::Text("Bad Gateway".into())),
                true,
                "transient",
            ),
            (Reply::json(503, json!({})), true, "transient"),
            (
                Reply::new(521, &[], Body::Text("Web server is down".into())),
                true,
                "transient",
            ),
            (Reply::json(405, json!({})), true, "permanent"),
            (
                Reply::json(413, json!({"message": "too large"})),
                true,
                "permanent",
            ),
            (Reply::json(415, json!({})), true, "permanent"),
            (Reply::json(423, json!({})), true, "permanent"),
        ];
        for (reply, oauth, want) in table {
            let got = rules(oauth).classify(&reply, NOW.into());
            assert_eq!(got.shape(), want, "{} {:?}", reply.status, reply.body);
        }
    }

    #[test]
    fn messages_tell_the_admin_what_to_do() {
        let r = rules(false);
        let v = r.classify(
            &Reply::json(401, json!({"category": "INVALID_AUTHENTICATION", "message": "bad", "correlationId": "c-1"})),
            NOW.into(),
        );
        let Verdict::Refresh { otherwise, .. } = v else {
            panic!("{v:?}")
        };
        let Verdict::Pause(p) = *otherwise else {
            panic!()
        };
        assert!(
            p.reason.contains("private app token") && p.reason.contains("correlation c-1"),
            "{}",
            p.reason
        );
        let oauth = rules(true).classify(&Reply::json(401, json!({})), NOW.into());
        assert!(format!("{oauth:?}").contains("Re-authorize the app"));

        let body = json!({"category": "MISSING_SCOPES", "message": "This app hasn't been granted all required scopes",
            "errors": [{"context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}]});
        assert_eq!(
            r.classify(&Reply::json(403, body), NOW.into()),
            Verdict::Permanent("refused: MISSING_SCOPES: This app hasn't been granted all required scopes; grant the app these scopes: crm.objects.contacts.write (correlation -)".into())
        );
        assert_eq!(
            r.classify(
                &Reply::new(502, &[], Body::Text("Bad Gateway".into())),
                NOW.into()
            ),
            Verdict::Transient("HubSpot answered 502 (\"Bad Gateway\")".into())
        );
        let Verdict::Pause(daily) = r.classify(
            &Reply::json(429, json!({"policyName": "DAILY"})),
            NOW.into(),
        ) else {
            panic!()
        };
        assert_eq!(
            daily.until,
            Some(SystemTime::from(datetime!(2026-11-22 05:00 UTC)))
        );
        assert!(daily.reason.contains("UTC-05:00"), "{}", daily.reason);
    }

    #[test]
    fn the_headers_set_the_window_and_the_daily_reserve_pauses() {
        let r = rules(true);
        let h = |pairs: &[(&str, &str)]| Reply::new(200, pairs, Body::Empty).headers;
        let o = r.observe(
            &h(&[
                ("x-hubspot-ratelimit-max", "110"),
                ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                ("x-hubspot-ratelimit-remaining", "7"),
                ("x-hubspot-ratelimit-daily", "1000"),
                ("x-hubspot-ratelimit-daily-remaining", "101"),
            ]),
            NOW.into(),
        );
        assert_eq!(
            o.window,
            Some(WindowHeaders {
                max: Some(110),
                interval: Some(Duration::from_secs(10)),
                remaining: Some(7)
            })
        );
        assert_eq!(o.pause, None, "101 left is above the 100 reserved");
        let o = r.observe(
            &h(&[
                ("x-hubspot-ratelimit-daily", "1000"),
                ("x-hubspot-ratelimit-daily-remaining", "100"),
            ]),
            NOW.into(),
        );
        let p = o.pause.expect("100 left of 1000 is the 10 % reserve");
        assert_eq!(p.cause, PauseCause::Quota);
        assert!(
            p.reason
                .contains("100 of the portal's 1000 daily API calls"),
            "{}",
            p.reason
        );
        assert_eq!(
            r.observe(&h(&[("x-hubspot-ratelimit-daily", "x")]), NOW.into())
                .pause,
            None
        );
    }

    #[test]
    fn the_daily_reset_is_the_portals_next_midnight() {
        assert_eq!(
            next_midnight(NOW, offset!(-05:00)),
            SystemTime::from(datetime!(2026-11-22 05:00 UTC))
        );
        assert_eq!(
            next_midnight(NOW, UtcOffset::UTC),
            SystemTime::from(datetime!(2026-11-23 00:00 UTC))
        );
    }
}
