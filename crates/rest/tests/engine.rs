//! The engine against a scripted vendor: what it does with each verdict, counted in sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;
use wa2crm_core::{ErrorKind, MemoryStateStore, Result};
use wa2crm_rest::engine::{Call, Credentials, Engine, Repeat};
use wa2crm_rest::pause::PauseGate;
use wa2crm_rest::verdict::{PauseCause, PauseOrder, Reply, RetryPolicy, Rules, Verdict};

/// Answers with the scripted statuses in turn, then 200; counts what it was sent.
#[derive(Clone, Default)]
struct Vendor {
    script: Arc<Mutex<VecDeque<u16>>>,
    sends: Arc<Mutex<Vec<String>>>,
}

impl Vendor {
    async fn start(script: &[u16]) -> (Vendor, reqwest::Url) {
        let v = Vendor {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..Vendor::default()
        };
        let state = v.clone();
        let app = Router::new().route(
            "/{*path}",
            any(move |headers: axum::http::HeaderMap| {
                let state = state.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    state.sends.lock().unwrap().push(auth);
                    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    let body = if status == 502 {
                        "<html>Bad Gateway</html>".to_owned()
                    } else {
                        json!({"status": status}).to_string()
                    };
                    (StatusCode::from_u16(status).unwrap(), body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (v, reqwest::Url::parse(&url).unwrap())
    }

    fn sends(&self) -> Vec<String> {
        self.sends.lock().unwrap().clone()
    }
}

/// 401 refreshes once, 403 pauses for the admin (credentials), 409 pauses for the quota, 5xx is
/// transient, 429 waits a moment.
struct TestRules;

impl Rules for TestRules {
    fn vendor(&self) -> &'static str {
        "Acme"
    }

    fn classify(&self, reply: &Reply, now: SystemTime) -> Verdict {
        match reply.status.as_u16() {
            200..=299 => Verdict::Answer,
            401 => Verdict::Refresh {
                always: false,
                otherwise: Box::new(Verdict::Permanent("refused again".into())),
            },
            409 => Verdict::Pause(PauseOrder {
                reason: "quota".into(),
                until: Some(now + Duration::from_secs(60)),
                cause: PauseCause::Quota,
            }),
            403 => Verdict::Pause(PauseOrder {
                reason: "a scope is missing".into(),
                until: None,
                cause: PauseCause::Credentials,
            }),
            429 => Verdict::Wait(Some(Duration::from_millis(10))),
            s if s >= 500 => Verdict::Transient(format!("answered {s}")),
            _ => Verdict::Answer,
        }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_sends: 5,
            max_retries: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }
}

/// Tokens `t1`, `t2`, …: each refresh makes the next.
#[derive(Default)]
struct Counter(Mutex<u32>);

#[async_trait]
impl Credentials for Counter {
    async fn token(&self) -> Result<SecretString> {
        Ok(SecretString::from(format!(
            "t{}",
            *self.0.lock().unwrap() + 1
        )))
    }

    async fn refresh(&self, _refused: &SecretString) -> Option<Result<SecretString>> {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        Some(Ok(SecretString::from(format!("t{}", *n + 1))))
    }
}

async fn engine() -> Engine<TestRules> {
    let state = Arc::new(MemoryStateStore::default());
    Engine {
        name: "acme".into(),
        rules: TestRules,
        http: reqwest::Client::new(),
        credentials: Arc::new(Counter::default()),
        pause: PauseGate::load("acme", state, "account", true)
            .await
            .unwrap(),
        budget: None,
        slots: None,
        meter: Default::default(),
    }
}

async fn send(script: &[u16], repeat: Repeat) -> (Result<u16>, Vec<String>, Engine<TestRules>) {
    let (vendor, url) = Vendor::start(script).await;
    let e = engine().await;
    let got = e
        .send(Call::new(Method::POST, url, repeat))
        .await
        .map(|a| a.status.as_u16());
    (got, vendor.sends(), e)
}

#[tokio::test]
async fn a_call_safe_to_repeat_is_retried_through_transient_failures_up_to_the_policy() {
    let (got, sends, engine) = send(&[503, 502], Repeat::Safe).await;
    assert_eq!(got.unwrap(), 200);
    assert_eq!(sends.len(), 3);
    // The console's count of calls is the calls that went out, retries included.
    assert_eq!(engine.usage().sent, 3);
    let (got, sends, _) = send(&[503, 503, 503], Repeat::Safe).await;
    let e = got.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(sends.len(), 3, "two retries, then the failure: {e}");
}

#[tokio::test]
async fn a_create_is_sent_once_whatever_the_failure() {
    let (got, sends, _) = send(&[502], Repeat::Once).await;
    let e = got.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.message(), "Acme POST /x: answered 502");
    assert_eq!(sends.len(), 1);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_call_replayed_once() {
    let (got, sends, _) = send(&[401], Repeat::Once).await;
    assert_eq!(
        got.unwrap(),
        200,
        "a 401 was not done: replaying even a create is safe"
    );
    assert_eq!(sends, ["Bearer t1", "Bearer t2"]);
    let (got, sends, _) = send(&[401, 401], Repeat::Safe).await;
    let e = got.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().contains("refused again"), "{e}");
    assert_eq!(sends.len(), 2);
}

#[tokio::test]
async fn a_pause_stops_the_connector_and_no_call_goes_out_while_it_lasts() {
    let (got, sends, e) = send(&[409], Repeat::Safe).await;
    let err = got.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert_eq!(sends.len(), 1);
    let (vendor, url) = Vendor::start(&[]).await;
    let again = e.send(Call::new(Method::GET, url, Repeat::Safe)).await;
    assert!(
        again
            .unwrap_err()
            .message()
            .contains("connector paused: quota")
    );
    assert!(vendor.sends().is_empty());
}

#[tokio::test]
async fn an_optional_call_refused_for_credentials_fails_alone_and_pauses_nothing() {
    let (vendor, url) = Vendor::start(&[403]).await;
    let e = engine().await;
    let got = e
        .send(Call::new(Method::GET, url.clone(), Repeat::Safe).optional())
        .await;
    let err = got.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.message().contains("a scope is missing"), "{err}");
    assert_eq!(vendor.sends().len(), 1);
    assert!(e.pause.check().is_ok(), "the connector still delivers");
    // The same refusal to a call deliveries need pauses the connector.
    let (_vendor, url) = Vendor::start(&[403]).await;
    let got = e.send(Call::new(Method::GET, url, Repeat::Safe)).await;
    assert!(got.is_err());
    assert!(e.pause.check().is_err(), "paused for the admin");
    // An optional call that spends the quota pauses it as any other.
    let (got, _, e) = {
        let (vendor, url) = Vendor::start(&[409]).await;
        let e = engine().await;
        let got = e
            .send(Call::new(Method::GET, url, Repeat::Safe).optional())
            .await;
        (got, vendor, e)
    };
    assert!(matches!(
        got.unwrap_err().kind(),
        ErrorKind::RateLimited { .. }
    ));
    assert!(e.pause.check().is_err(), "a spent quota is everyone's");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_counts_toward_the_sends() {
    let (got, sends, _) = send(&[429, 429], Repeat::Once).await;
    assert_eq!(got.unwrap(), 200);
    assert_eq!(sends.len(), 3);
    let (got, sends, _) = send(&[429; 6], Repeat::Safe).await;
    let e = got.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::RateLimited { .. }), "{e}");
    assert_eq!(sends.len(), 5, "max_sends");
}

/// A token that is the password of Basic authentication (Zendesk's API tokens).
struct Basic;

#[async_trait]
impl Credentials for Basic {
    async fn token(&self) -> Result<SecretString> {
        Ok(SecretString::from("api-token"))
    }

    async fn refresh(&self, _refused: &SecretString) -> Option<Result<SecretString>> {
        None
    }

    fn basic_user(&self) -> Option<&str> {
        Some("agent@acme.example/token")
    }
}

#[tokio::test]
async fn a_basic_credential_is_sent_as_basic_and_a_refusal_is_not_refreshed() {
    let (vendor, url) = Vendor::start(&[200, 401]).await;
    let mut e = engine().await;
    e.credentials = Arc::new(Basic);
    e.send(Call::new(Method::GET, url.clone(), Repeat::Safe))
        .await
        .unwrap();
    // base64("agent@acme.example/token:api-token")
    assert_eq!(
        vendor.sends(),
        ["Basic YWdlbnRAYWNtZS5leGFtcGxlL3Rva2VuOmFwaS10b2tlbg=="]
    );
    let err = e
        .send(Call::new(Method::GET, url, Repeat::Safe))
        .await
        .unwrap_err();
    assert!(err.message().contains("refused again"), "{err}");
    assert_eq!(vendor.sends().len(), 2, "nothing to refresh: one send");
}
