//! What a vendor's answer means, decided by a pure function of the answer.
//!
//! Each vendor writes one [`Rules`]: `classify` turns a [`Reply`] (status, headers, body — JSON,
//! text or nothing) into a [`Verdict`]; `observe` reads the limits every answer's headers carry.
//! Neither does any I/O, so each is tested table-driven, status by status and code by code; the
//! [`crate::engine`] acts on what they decide. (The shape is Vector's `RetryLogic`.)

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::limit::WindowHeaders;

/// An answer as it came: the body is kept as text when it is not JSON (a proxy's HTML page, a
/// plain-text 502), so an error can say what was received instead of "no details".
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    /// Not JSON: its first bytes, control characters replaced (it ends up in messages and logs).
    Text(String),
}

/// How much of a body that is not JSON is kept for messages.
const TEXT_KEPT: usize = 300;

impl Body {
    pub fn read(bytes: &[u8]) -> Body {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Body::Empty;
        }
        match serde_json::from_slice(bytes) {
            Ok(v) => Body::Json(v),
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(TEXT_KEPT)]);
                Body::Text(
                    text.chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect::<String>()
                        .trim()
                        .to_owned(),
                )
            }
        }
    }

    /// The JSON, or `Null` for an empty body or text (use [`Body::text`] for the latter).
    pub fn json(&self) -> &Value {
        match self {
            Body::Json(v) => v,
            _ => &Value::Null,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Body::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl Reply {
    /// A reply for classifier tests and simulations.
    pub fn new(status: u16, headers: &[(&str, &str)], body: Body) -> Reply {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                reqwest::header::HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: map,
            body,
        }
    }

    pub fn json(status: u16, body: Value) -> Reply {
        Reply::new(status, &[], Body::Json(body))
    }
}

/// Why a connector stops calling a vendor for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseCause {
    /// The account's API allocation is spent or down to the reserve.
    Quota,
    /// Only the admin can fix it (dead credentials).
    Credentials,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseOrder {
    pub reason: String,
    /// `None`: until the admin acts and wa2crm restarts.
    pub until: Option<SystemTime>,
    pub cause: PauseCause,
}

/// What the engine does with an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The caller reads it: a success, or a refusal that belongs to the call's own meaning (a 404
    /// a lookup expects, a 400 whose errors name the records at fault).
    Answer,
    /// Rate-limited: hold the request budget this long (`None`: the budget's own window), then
    /// send again.
    Wait(Option<Duration>),
    /// The token was refused: get a fresh one and send again. `always`: as often as it happens
    /// (a token that expired on its way); otherwise once a call. When no refresh is possible or
    /// allowed any more, `otherwise` decides.
    Refresh {
        always: bool,
        otherwise: Box<Verdict>,
    },
    /// Worth another try, if the call is safe to repeat.
    Transient(String),
    /// Stop the whole connector.
    Pause(PauseOrder),
    /// This call will never succeed as it is; the message is for the CRM admin.
    Permanent(String),
}

impl Verdict {
    /// The verdict without its words (`"refresh always=false else transient"`): what
    /// classifier tables compare.
    pub fn shape(&self) -> String {
        match self {
            Verdict::Answer => "answer".into(),
            Verdict::Wait(d) => format!("wait {d:?}"),
            Verdict::Refresh { always, otherwise } => {
                format!("refresh always={always} else {}", otherwise.shape())
            }
            Verdict::Transient(_) => "transient".into(),
            Verdict::Pause(p) => format!("pause {:?}", p.cause),
            Verdict::Permanent(_) => "permanent".into(),
        }
    }
}

/// What an answer's headers say about the account's limits.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The rolling window's figures, for the request budget.
    pub window: Option<WindowHeaders>,
    /// Stop before the account's last calls (the daily reserve).
    pub pause: Option<PauseOrder>,
    /// The account's quota, (left, of), where the answer tells it: shown by the console.
    pub quota: Option<(u64, u64)>,
}

/// How often and how patiently one call is sent.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends at most, whatever the reasons (waits, refreshes, retries).
    pub max_sends: usize,
    /// Retries of transient failures at most, for calls safe to repeat.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

/// A vendor's semantics: pure functions of what the vendor answered.
pub trait Rules: Send + Sync {
    /// "HubSpot", "Salesforce": how messages name the vendor.
    fn vendor(&self) -> &'static str;

    fn classify(&self, reply: &Reply, now: SystemTime) -> Verdict;

    fn observe(&self, _headers: &HeaderMap, _now: SystemTime) -> Observed {
        Observed::default()
    }

    fn retry(&self) -> RetryPolicy;

    /// Told of every pause the engine orders (from a verdict, an observation or dead
    /// credentials), for vendors that must look before resuming.
    fn paused(&self, _order: &PauseOrder) {}
}

/// A success whose body is not JSON is a proxy's page or an outage, not the vendor's answer:
/// worth another try, never read as an empty result. `None` for every other reply.
pub fn success_not_json(reply: &Reply, vendor: &str) -> Option<Verdict> {
    match (&reply.body, reply.status.is_success()) {
        (Body::Text(t), true) => Some(Verdict::Transient(format!(
            "{vendor} answered {} with a body that is not JSON: {t:?}",
            reply.status
        ))),
        _ => None,
    }
}

/// A body for a message: the vendor's error described by `describe`, or the text that came instead.
pub fn details(body: &Body, describe: impl Fn(&Value) -> String) -> String {
    match body {
        Body::Json(v) => describe(v),
        Body::Text(t) => format!("{t:?}"),
        Body::Empty => "no details".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_as_json_text_or_nothing() {
        assert_eq!(Body::read(b""), Body::Empty);
        assert_eq!(Body::read(b" \n"), Body::Empty);
        assert_eq!(
            Body::read(br#"{"a":1}"#),
            Body::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            Body::read(b"<html>\x1b[31mBad gateway</html>"),
            Body::Text("<html> [31mBad gateway</html>".into())
        );
        let long = vec![b'x'; 10_000];
        assert_eq!(Body::read(&long).text().map(str::len), Some(TEXT_KEPT));
    }

    #[test]
    fn a_success_that_is_not_json_is_transient() {
        let table: &[(Reply, Option<&str>)] = &[
            (Reply::json(200, serde_json::json!({})), None),
            (Reply::new(204, &[], Body::Empty), None),
            (
                Reply::new(200, &[], Body::Text("<html>captive portal".into())),
                Some("Acme answered 200 OK with a body that is not JSON: \"<html>captive portal\""),
            ),
            (Reply::new(502, &[], Body::Text("Bad Gateway".into())), None),
            (Reply::json(404, serde_json::json!({})), None),
        ];
        for (reply, want) in table {
            let got = success_not_json(reply, "Acme");
            assert_eq!(
                got,
                want.map(|m| Verdict::Transient(m.into())),
                "{}",
                reply.status
            );
        }
    }

    #[test]
    fn details_name_what_came() {
        let d = |v: &Value| v["message"].as_str().unwrap_or("?").to_owned();
        assert_eq!(
            details(&Body::Json(serde_json::json!({"message": "no"})), d),
            "no"
        );
        assert_eq!(
            details(&Body::Text("Bad Gateway".into()), d),
            "\"Bad Gateway\""
        );
        assert_eq!(details(&Body::Empty, d), "no details");
    }
}
