//! A Graph API media simulator: `GET /{version}/{media_id}` and the download URLs it hands out,
//! behaving as Meta's do (sources in crates/sandbox/README.md): Bearer token required on both, URLs that
//! expire (5 minutes by default), downloads refused without a User-Agent, Graph-shaped JSON
//! errors, and faults a test can inject (5xx, 429, expired or truncated or corrupted downloads).
//!
//! Started with [`GraphSim::start_d360`] it plays 360dialog's proxy of the same API instead:
//! `GET /{media_id}` and the download path on its own host, both with the `D360-API-KEY` header,
//! resolve answers naming Meta's `lookaside.fbsbx.com` (which clients must replace with the
//! 360dialog host), and a number's media lookups blocked for an hour after five failed ones.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the simulator answers the next matching request with instead of the real thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// That HTTP status with a Graph-shaped error body (429 carries Graph's throttling code).
    Status(u16),
    /// The download URL handed out is already expired.
    ExpiredUrl,
    /// The download body stops halfway (the connection drops).
    Truncate,
    /// One byte of the download is flipped.
    Corrupt,
    /// The download body arrives slowly: half, a pause of this many milliseconds, the rest.
    Slow(u64),
    /// No answer at all, ever: only the caller's timeout ends the request.
    Hang,
}

/// How many requests of each kind the simulator served, for tests that count calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub resolves: u64,
    pub downloads: u64,
    pub unauthorized: u64,
    /// 360dialog: lookups refused because of earlier failed ones.
    pub blocked: u64,
    /// Requests left without an answer (`Fault::Hang`).
    pub hung: u64,
}

struct Media {
    bytes: Bytes,
    mime: String,
    /// Base64, computed once: hashing a large file on every resolve would bill the simulator's
    /// time to whoever measures the client.
    sha256: String,
    phone_number_id: Option<String>,
}

struct Inner {
    token: String,
    media: HashMap<String, Media>,
    url_ttl: Duration,
    resolve_faults: VecDeque<Fault>,
    download_faults: VecDeque<Fault>,
    counts: Counts,
    /// Playing 360dialog: API key header, its URL shapes, the failed-lookup block.
    d360: bool,
    failed_lookups: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    /// The share of requests that fail at random (chaos tests), besides the queued faults.
    fault_rate: f64,
    /// Meta: the business numbers the token may read, by phone_number_id: (display number,
    /// verified name).
    phone_numbers: HashMap<String, (String, String)>,
    /// 360dialog: the webhook URL configured for the number.
    webhook_url: Option<String>,
}

/// A random transient fault for a resolve: a 5xx or an expired URL. (Not Graph's throttling: a
/// 429 without Retry-After rightly makes wa2crm wait a minute, which chaos runs cannot afford at
/// 10 %; queued `Status(429)` faults test it.)
fn random_resolve_fault() -> Fault {
    [
        Fault::Status(500),
        Fault::Status(503),
        Fault::ExpiredUrl,
        Fault::Hang,
    ][fastrand::usize(..4)]
}

/// A random transient fault for a download: a 5xx, a dropped connection, a slow body, silence.
fn random_download_fault() -> Fault {
    [
        Fault::Status(502),
        Fault::Truncate,
        Fault::Slow(300),
        Fault::Hang,
    ][fastrand::usize(..4)]
}

/// 360dialog: five failed media lookups within an hour block lookups for an hour.
const D360_FAILURES: usize = 5;
const D360_BLOCK: Duration = Duration::from_secs(3600);

/// A running simulator; it stops when dropped.
pub struct GraphSim {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for GraphSim {
    fn drop(&mut self) {
        self._server.abort();
    }
}

const SIGNING_KEY: &[u8] = b"graph-sim-url-signing";

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock already failed; keep serving for the others.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl GraphSim {
    /// Starts on 127.0.0.1 with a free port; `token` is the access token it accepts.
    pub async fn start(token: &str) -> std::io::Result<GraphSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), token).await
    }

    pub async fn start_on(addr: SocketAddr, token: &str) -> std::io::Result<GraphSim> {
        Self::serve(addr, token, false).await
    }

    /// Plays 360dialog; `api_key` is the `D360-API-KEY` it accepts. Its `url()` is the
    /// `base_url` to configure.
    pub async fn start_d360(api_key: &str) -> std::io::Result<GraphSim> {
        Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), api_key, true).await
    }

    async fn serve(addr: SocketAddr, token: &str, d360: bool) -> std::io::Result<GraphSim> {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_owned(),
            media: HashMap::new(),
            url_ttl: Duration::from_secs(300),
            resolve_faults: VecDeque::new(),
            download_faults: VecDeque::new(),
            counts: Counts::default(),
            d360,
            failed_lookups: VecDeque::new(),
            blocked_until: None,
            fault_rate: 0.0,
            phone_numbers: HashMap::new(),
            webhook_url: None,
        }));
        let app = Router::new().route("/whatsapp_business/attachments/", get(download));
        let app = if d360 {
            app.route("/v1/configs/webhook", get(d360_webhook_config))
                .route("/{media_id}", get(resolve_d360))
        } else {
            app.route("/{version}/{media_id}", get(resolve))
        };
        let app = app
            .with_state(SimState {
                inner: inner.clone(),
            })
            .layer(axum::middleware::map_response(crate::hang::hold_marked));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GraphSim {
            inner,
            addr,
            _server: server,
        })
    }

    /// The `graph_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes a file available under `media_id`; returns its sha256 as Meta writes it (base64).
    pub fn add_media(&self, media_id: &str, bytes: impl Into<Bytes>, mime: &str) -> String {
        let bytes = bytes.into();
        let digest = STANDARD.encode(Sha256::digest(&bytes));
        lock(&self.inner).media.insert(
            media_id.to_owned(),
            Media {
                bytes,
                mime: mime.to_owned(),
                sha256: digest.clone(),
                phone_number_id: None,
            },
        );
        digest
    }

    /// The same, answerable only with this `phone_number_id` (as Meta checks it).
    pub fn add_media_for(
        &self,
        media_id: &str,
        bytes: impl Into<Bytes>,
        mime: &str,
        phone_number_id: &str,
    ) -> String {
        let digest = self.add_media(media_id, bytes, mime);
        if let Some(m) = lock(&self.inner).media.get_mut(media_id) {
            m.phone_number_id = Some(phone_number_id.to_owned());
        }
        digest
    }

    /// Meta: a business number the token may read (`GET /{version}/{phone_number_id}`).
    pub fn add_phone_number(&self, phone_number_id: &str, display: &str, verified_name: &str) {
        lock(&self.inner).phone_numbers.insert(
            phone_number_id.to_owned(),
            (display.to_owned(), verified_name.to_owned()),
        );
    }

    /// 360dialog: the webhook URL set for the number (`POST /v1/configs/webhook`).
    pub fn set_webhook_url(&self, url: &str) {
        lock(&self.inner).webhook_url = Some(url.to_owned());
    }

    /// How long download URLs stay valid (Meta: 5 minutes).
    pub fn set_url_ttl(&self, ttl: Duration) {
        lock(&self.inner).url_ttl = ttl;
    }

    /// The next resolves answer with these faults, one each, in order.
    pub fn fail_resolves(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner).resolve_faults.extend(faults);
    }

    /// The next downloads answer with these faults, one each, in order.
    pub fn fail_downloads(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner).download_faults.extend(faults);
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts
    }

    /// From now on this share of resolves and downloads fails with a random transient fault
    /// (5xx, an expired URL, a dropped connection, a slow body).
    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.inner).fault_rate = rate.clamp(0.0, 1.0);
    }
}

#[derive(Clone)]
struct SimState {
    inner: Arc<Mutex<Inner>>,
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": if code == 190 { "OAuthException" } else { "GraphMethodException" },
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    }});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            graph_error(status, 4, "(#4) Application request limit reached")
        }
        s if s.is_server_error() => graph_error(
            s,
            2,
            "An unexpected error has occurred. Please retry your request later.",
        ),
        s => graph_error(s, 100, "Invalid parameter"),
    }
}

/// Meta: `Authorization: Bearer <token>`; 360dialog: `D360-API-KEY: <key>`.
fn credentials_ok(inner: &Inner, headers: &HeaderMap) -> bool {
    if inner.d360 {
        return headers.get("d360-api-key").and_then(|v| v.to_str().ok()) == Some(&inner.token);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(inner.token.as_str())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn url_hash(mid: &str, ext: u64) -> String {
    let mut m =
        Hmac::<Sha256>::new_from_slice(SIGNING_KEY).expect("HMAC accepts keys of any length");
    m.update(format!("{mid}|{ext}").as_bytes());
    hex::encode(&m.finalize().into_bytes()[..12])
}

#[derive(Deserialize)]
struct ResolveQuery {
    phone_number_id: Option<String>,
}

async fn resolve(
    State(state): State<SimState>,
    Path((_version, media_id)): Path<(String, String)>,
    Query(q): Query<ResolveQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = other_node(&state, &media_id, &headers) {
        return answer;
    }
    answer_resolve(&state, &media_id, q.phone_number_id.as_deref(), &headers)
}

/// The Graph nodes besides media that wa2crm reads (`check`): `me`, the token's (system) user,
/// as Graph's User node answers it (`id`, `name`); a business number by its phone_number_id, with
/// the default fields of Meta's spec (`getPhoneNumberById`: id, display_phone_number,
/// verified_name, quality_rating). An id that is neither falls through to the media lookup,
/// whose unknown id is Graph's 400 code 100, as for any object the token cannot read.
fn other_node(state: &SimState, id: &str, headers: &HeaderMap) -> Option<Response> {
    let inner = lock(&state.inner);
    let node = if id == "me" {
        json!({"id": "100000000000001", "name": "wa2crm system user"})
    } else {
        let (display, name) = inner.phone_numbers.get(id)?;
        json!({"id": id, "display_phone_number": display, "verified_name": name,
               "quality_rating": "GREEN"})
    };
    if !credentials_ok(&inner, headers) {
        // The spec's 401: code 190, "Invalid OAuth access token".
        return Some(graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token",
        ));
    }
    Some(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            node.to_string(),
        )
            .into_response(),
    )
}

/// 360dialog's `GET /v1/configs/webhook`: the number's webhook URL with a valid
/// `D360-API-KEY`, 401 with the Messaging API's `{"error": …}` otherwise (its OpenAPI,
/// docs.360dialog.com "Messaging API" reference: "Unauthorized - Invalid or missing
/// D360-API-KEY"). Integrators probe the key with it (e.g. a `GET /v1/configs/webhook`
/// connection test).
async fn d360_webhook_config(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let inner = lock(&state.inner);
    if !credentials_ok(&inner, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "Invalid api key"}).to_string(),
        )
            .into_response();
    }
    let body = match &inner.webhook_url {
        Some(url) => json!({"url": url}),
        None => json!({}),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn resolve_d360(
    State(state): State<SimState>,
    Path(media_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Instant::now();
    {
        let mut inner = lock(&state.inner);
        if inner.blocked_until.is_some_and(|until| until > now) {
            inner.counts.blocked += 1;
            return graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                4,
                "Media lookups for this number are blocked for one hour after five failed requests",
            );
        }
    }
    let response = answer_resolve(&state, &media_id, None, &headers);
    if response.status().is_client_error() {
        let mut inner = lock(&state.inner);
        inner.failed_lookups.push_back(now);
        while inner
            .failed_lookups
            .front()
            .is_some_and(|t| now.duration_since(*t) > D360_BLOCK)
        {
            inner.failed_lookups.pop_front();
        }
        if inner.failed_lookups.len() >= D360_FAILURES {
            inner.blocked_until = Some(now + D360_BLOCK);
        }
    }
    response
}

fn answer_resolve(
    state: &SimState,
    media_id: &str,
    phone_number_id: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let media_id = media_id.to_owned();
    let mut inner = lock(&state.inner);
    inner.counts.resolves += 1;
    if !credentials_ok(&inner, headers) {
        inner.counts.unauthorized += 1;
        return graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Error validating access token: Session has expired.",
        );
    }
    let rate = inner.fault_rate;
    let fault = inner
        .resolve_faults
        .pop_front()
        .or_else(|| (fastrand::f64() < rate).then(random_resolve_fault));
    if let Some(Fault::Status(s)) = fault {
        return fault_response(s);
    }
    if fault == Some(Fault::Hang) {
        inner.counts.hung += 1;
        return crate::hang::hang(fault_response(504));
    }
    let Some(media) = inner.media.get(&media_id) else {
        return unknown_object(&media_id);
    };
    if let (Some(owner), Some(asked)) = (&media.phone_number_id, phone_number_id)
        && owner != asked
    {
        return unknown_object(&media_id);
    }
    let ttl = inner.url_ttl.as_secs();
    let ext = if fault == Some(Fault::ExpiredUrl) {
        now_secs().saturating_sub(1)
    } else {
        now_secs() + ttl
    };
    // Meta hands out URLs on its own host (here: the simulator's); 360dialog passes Meta's
    // lookaside URL through unchanged, and clients fetch its path from 360dialog.
    let origin = if inner.d360 {
        "https://lookaside.fbsbx.com".to_owned()
    } else {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    };
    let body = json!({
        "messaging_product": "whatsapp",
        "url": format!("{origin}/whatsapp_business/attachments/?mid={media_id}&ext={ext}&hash={}", url_hash(&media_id, ext)),
        "mime_type": media.mime,
        "sha256": media.sha256,
        // Meta's spec types file_size as a string; its examples show numbers. Serve the spec's.
        "file_size": media.bytes.len().to_string(),
        "id": media_id,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unknown_object(media_id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        100,
        &format!(
            "Unsupported get request. Object with ID '{media_id}' does not exist, cannot be \
             loaded due to missing permissions, or does not support this operation."
        ),
    )
}

#[derive(Deserialize)]
struct DownloadQuery {
    mid: String,
    ext: u64,
    hash: String,
}

async fn download(
    State(state): State<SimState>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let (bytes, mime, fault) = {
        let mut inner = lock(&state.inner);
        inner.counts.downloads += 1;
        if !credentials_ok(&inner, &headers) {
            inner.counts.unauthorized += 1;
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
        if headers.get(header::USER_AGENT).is_none() {
            return (
                StatusCode::BAD_REQUEST,
                "<html><body>Sorry, something went wrong.</body></html>",
            )
                .into_response();
        }
        if q.hash != url_hash(&q.mid, q.ext) {
            return (StatusCode::FORBIDDEN, "URL signature mismatch").into_response();
        }
        if q.ext < now_secs() {
            return (StatusCode::NOT_FOUND, "URL expired").into_response();
        }
        let rate = inner.fault_rate;
        let fault = inner
            .download_faults
            .pop_front()
            .or_else(|| (fastrand::f64() < rate).then(random_download_fault));
        if let Some(Fault::Status(s)) = fault {
            return fault_response(s);
        }
        if fault == Some(Fault::Hang) {
            inner.counts.hung += 1;
            return crate::hang::hang(fault_response(504));
        }
        let Some(media) = inner.media.get(&q.mid) else {
            return (StatusCode::NOT_FOUND, "Not found").into_response();
        };
        (media.bytes.clone(), media.mime.clone(), fault)
    };
    let length = bytes.len();
    let body = match fault {
        Some(Fault::Truncate) => {
            // Headers and the first half go out; the connection then drops, as a real reset
            // does. The pause lets the first half reach the client before the error.
            let half = bytes.slice(..length / 2);
            let stream = futures_util::stream::iter([true, false]).then(move |first| {
                let half = half.clone();
                async move {
                    if first {
                        Ok(half)
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::other("connection reset by simulator"))
                    }
                }
            });
            Body::from_stream(stream)
        }
        Some(Fault::Slow(ms)) => {
            let (first, rest) = (bytes.slice(..length / 2), bytes.slice(length / 2..));
            let stream = futures_util::stream::iter([Some(first), None, Some(rest)]).then(
                move |part| async move {
                    match part {
                        Some(b) => Ok::<_, std::io::Error>(b),
                        None => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            Ok(Bytes::new())
                        }
                    }
                },
            );
            Body::from_stream(stream)
        }
        Some(Fault::Corrupt) => {
            let mut v = bytes.to_vec();
            if let Some(b) = v.get_mut(length / 2) {
                *b ^= 0xFF;
            }
            Body::from(v)
        }
        _ => Body::from(bytes),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
