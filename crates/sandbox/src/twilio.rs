//! A Twilio simulator for its WhatsApp channel: media resources under
//! `/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}` that need HTTP Basic
//! auth and answer 302 to a signed URL on a separate storage host (another origin, as Twilio's
//! storage is), `DELETE …/Media/{MediaSid}.json`, and the webhooks Twilio sends: form parameters
//! (with the ones wa2crm does not read) signed with `X-Twilio-Signature` for the URL they go to.
//!
//! The storage host records whether a request ever carried an `Authorization` header, so tests
//! can show the credentials never leave Twilio's API host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::json;

/// What the simulator served, for tests that count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub media_requests: u64,
    pub unauthorized: u64,
    pub storage_downloads: u64,
    /// Requests to the storage host that carried an `Authorization` header: must stay 0.
    pub credentials_on_storage: u64,
    pub deleted: u64,
    /// Requests for media still propagating, answered 404.
    pub not_yet: u64,
}

struct Media {
    bytes: Bytes,
    content_type: String,
    /// Until then the media resource answers 404, as Twilio's does for a few seconds after the
    /// webhook while a new asset propagates (Chatwoot PR #15504: "Twilio can briefly return a
    /// 404 for valid inbound WhatsApp media while the asset propagates").
    available_at: Instant,
}

struct Inner {
    account_sid: String,
    auth_token: String,
    /// By media sid.
    media: HashMap<String, Media>,
    storage_url: String,
    counts: Counts,
    next: u64,
    /// How long new media answers 404 before it can be fetched.
    propagation: Duration,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock already failed; keep serving the others.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulator; it stops when dropped.
pub struct TwilioSim {
    inner: Arc<Mutex<Inner>>,
    api: SocketAddr,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TwilioSim {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

type Sim = Arc<Mutex<Inner>>;

impl TwilioSim {
    pub async fn start(account_sid: &str, auth_token: &str) -> std::io::Result<TwilioSim> {
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let storage_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = api_listener.local_addr()?;
        let storage = storage_listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            media: HashMap::new(),
            storage_url: format!("http://{storage}"),
            counts: Counts::default(),
            next: 0,
            propagation: Duration::ZERO,
        }));
        let api_app = Router::new()
            .route("/2010-04-01/Accounts/{account}", get(fetch_account))
            .route(
                "/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}",
                get(media_resource).delete(delete_media),
            )
            .with_state(inner.clone());
        let storage_app = Router::new()
            .route("/media/{media}", get(storage_download))
            .with_state(inner.clone());
        let servers = vec![
            tokio::spawn(async move {
                let _ = axum::serve(api_listener, api_app).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(storage_listener, storage_app).await;
            }),
        ];
        Ok(TwilioSim {
            inner,
            api,
            servers,
        })
    }

    /// The `api_url` to configure (Twilio's is `https://api.twilio.com`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// Stores a file received in `message_sid`; returns its `MediaUrl`.
    pub fn add_media(
        &self,
        message_sid: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
    ) -> String {
        let mut i = lock(&self.inner);
        i.next += 1;
        let sid = format!("ME{:032x}", i.next);
        let available_at = Instant::now() + i.propagation;
        i.media.insert(
            sid.clone(),
            Media {
                bytes: bytes.into(),
                content_type: content_type.to_owned(),
                available_at,
            },
        );
        format!(
            "http://{}/2010-04-01/Accounts/{}/Messages/{message_sid}/Media/{sid}",
            self.api, i.account_sid
        )
    }

    /// Media added from now on answers 404 for this long before it can be fetched, as Twilio's
    /// does while a new asset propagates.
    pub fn set_propagation_delay(&self, delay: Duration) {
        lock(&self.inner).propagation = delay;
    }

    /// Media resources requested while still propagating (answered 404).
    pub fn not_yet_answered(&self) -> u64 {
        lock(&self.inner).counts.not_yet
    }

    /// How many media resources Twilio still holds.
    pub fn media_count(&self) -> usize {
        lock(&self.inner).media.len()
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"code": code, "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(i: &Inner, headers: &HeaderMap) -> bool {
    let expected = STANDARD.encode(format!("{}:{}", i.account_sid, i.auth_token));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        == Some(expected.as_str())
}

async fn media_resource(
    State(s): State<Sim>,
    Path((account, _message, media)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut i = lock(&s);
    i.counts.media_requests += 1;
    if !authorized(&i, &headers) || account != i.account_sid {
        i.counts.unauthorized += 1;
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let propagating = i
        .media
        .get(&media)
        .is_some_and(|m| Instant::now() < m.available_at);
    if propagating {
        i.counts.not_yet += 1;
    }
    if propagating || !i.media.contains_key(&media) {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Media/{media} was not found"
            ),
        );
    }
    // Twilio answers with a short-lived signed URL on its storage.
    let location = format!(
        "{}/media/{media}?Expires=1790000300&Signature=sim",
        i.storage_url
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `GET /2010-04-01/Accounts/{Sid}.json`: the account, with HTTP Basic `AccountSid:AuthToken`
/// (twilio.com/docs/iam/api/account, "Fetch an Account resource"); bad credentials are 401 code
/// 20003 "Authenticate" (twilio.com/docs/api/errors/20003). Only the `.json` form is served: the
/// bare path answers XML at Twilio, which wa2crm never asks for.
async fn fetch_account(
    State(s): State<Sim>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut i = lock(&s);
    let Some(sid) = account.strip_suffix(".json") else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    if !authorized(&i, &headers) || sid != i.account_sid {
        i.counts.unauthorized += 1;
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let body = json!({"sid": sid, "friendly_name": "wa2crm sandbox", "status": "active",
                      "type": "Full"});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn storage_download(
    State(s): State<Sim>,
    Path(media): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut i = lock(&s);
    i.counts.storage_downloads += 1;
    if headers.contains_key(header::AUTHORIZATION) {
        i.counts.credentials_on_storage += 1;
        // S3 refuses a request that carries both a signed query and an Authorization header.
        return (
            StatusCode::BAD_REQUEST,
            "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
        )
            .into_response();
    }
    match i.media.get(&media) {
        Some(m) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, m.content_type.clone()),
                (header::CONTENT_LENGTH, m.bytes.len().to_string()),
            ],
            m.bytes.clone(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response(),
    }
}

async fn delete_media(
    State(s): State<Sim>,
    Path((account, _message, media)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut i = lock(&s);
    if !authorized(&i, &headers) || account != i.account_sid {
        i.counts.unauthorized += 1;
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let sid = media.strip_suffix(".json").unwrap_or(&media).to_owned();
    if i.media.remove(&sid).is_some() {
        i.counts.deleted += 1;
        StatusCode::NO_CONTENT.into_response()
    } else {
        twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Media/{sid}.json was not found"
            ),
        )
    }
}

/// One incoming WhatsApp message with files, as Twilio posts it.
pub struct Inbound<'a> {
    pub message_sid: &'a str,
    /// `+E164`.
    pub from: &'a str,
    pub to: &'a str,
    pub profile_name: Option<&'a str>,
    pub body: Option<&'a str>,
    /// (MediaUrl, MediaContentType)
    pub media: Vec<(String, String)>,
}

/// The form parameters Twilio sends for `m`, including ones wa2crm does not read.
pub fn webhook_params(account_sid: &str, m: &Inbound<'_>) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("SmsMessageSid".into(), m.message_sid.into()),
        ("NumMedia".into(), m.media.len().to_string()),
        ("SmsSid".into(), m.message_sid.into()),
        ("SmsStatus".into(), "received".into()),
        ("Body".into(), m.body.unwrap_or("").into()),
        ("To".into(), format!("whatsapp:{}", m.to)),
        ("NumSegments".into(), "1".into()),
        ("MessageType".into(), "image".into()),
        ("ReferralNumMedia".into(), "0".into()),
        ("MessageSid".into(), m.message_sid.into()),
        ("AccountSid".into(), account_sid.into()),
        ("From".into(), format!("whatsapp:{}", m.from)),
        ("WaId".into(), m.from.trim_start_matches('+').into()),
        ("ApiVersion".into(), "2010-04-01".into()),
    ];
    if let Some(name) = m.profile_name {
        p.push(("ProfileName".into(), name.into()));
    }
    for (n, (url, content_type)) in m.media.iter().enumerate() {
        p.push((format!("MediaContentType{n}"), content_type.clone()));
        p.push((format!("MediaUrl{n}"), url.clone()));
    }
    p
}

/// The form body and its `X-Twilio-Signature` for posting `params` to `url`.
pub fn signed_form(auth_token: &str, url: &str, params: &[(String, String)]) -> (String, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    (body, wa2crm_whatsapp::twilio::sign(auth_token, url, params))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use wa2crm_whatsapp::twilio::TwilioMedia;

    use super::*;

    #[tokio::test]
    async fn the_account_is_fetched_with_its_own_credentials_as_json() {
        let sim = TwilioSim::start("AC1", "tok").await.unwrap();
        let client = reqwest::Client::new();
        let get = |path: &str, user: &str, password: &str| {
            client
                .get(format!("{}/2010-04-01/Accounts/{path}", sim.api_url()))
                .basic_auth(user, Some(password))
                .send()
        };
        let r = get("AC1.json", "AC1", "tok").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["status"],
            "active"
        );
        let r = get("AC1.json", "AC1", "wrong").await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 20003);
        assert_eq!(get("AC2.json", "AC1", "tok").await.unwrap().status(), 401);
        assert_eq!(get("AC1", "AC1", "tok").await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn media_needs_basic_auth_redirects_to_storage_and_can_be_deleted() {
        let sim = TwilioSim::start("AC1", "tok").await.unwrap();
        let url = sim.add_media("MM1", &b"ogg"[..], "audio/ogg");
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = plain.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], 20003);

        let client = TwilioMedia::new(&sim.api_url(), "AC1", SecretString::from("tok")).unwrap();
        let bytes = client
            .download(&url, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"ogg");
        let c = sim.counts();
        assert_eq!((c.storage_downloads, c.credentials_on_storage), (1, 0));

        client.delete(&url).await.unwrap();
        assert_eq!(sim.media_count(), 0);
        client.delete(&url).await.unwrap();
        assert_eq!(sim.counts().deleted, 1, "already gone counts as deleted");
        let e = client
            .download(&url, time::OffsetDateTime::now_utc())
            .await
            .unwrap_err();
        assert!(e.message().contains("404"), "{e}");
    }
}
