//! The token endpoint and the API routes, each API call behind the session and the daily
//! allocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Inner, lock};

#[derive(Clone)]
struct Sim {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

pub fn router(inner: Arc<Mutex<Inner>>, url: String) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/{version}/limits", get(limits))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/search", get(search))
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{version}/sobjects/ContentVersion",
            post(create_content_version),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            axum::routing::delete(collections_delete)
                .post(collections_create)
                .patch(collections_update),
        )
        .route("/services/data/{version}/composite", post(composite))
        .route(
            "/services/data/{version}/tooling/sobjects/CustomField",
            post(create_custom_field),
        )
        .route(
            "/services/data/{version}/sobjects/FieldPermissions",
            post(grant_field),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}/{field}",
            axum::routing::patch(collections_upsert),
        )
        .with_state(Sim { inner, url })
        .layer(axum::middleware::map_response(crate::hang::hold_marked))
}

fn json_response(status: StatusCode, body: Value, headers: HeaderMap) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response();
    r.headers_mut().extend(headers);
    r
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks an assertion as Salesforce does; `Err` is the `error_description`.
fn check_assertion(assertion: &str, i: &Inner, url: &str) -> Result<String, &'static str> {
    let key = DecodingKey::from_rsa_pem(i.config.public_key_pem.as_bytes())
        .map_err(|_| "the connected app has no usable certificate")?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[&i.config.client_id]);
    v.set_audience(&[i.config.audience.as_deref().unwrap_or(url)]);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(assertion, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidAudience => "audience is invalid",
            K::InvalidIssuer => "client identifier invalid",
            K::ExpiredSignature => "expired authorization code",
            K::InvalidSignature | K::InvalidAlgorithm => "invalid assertion",
            _ => "invalid assertion",
        }
    })?;
    if data.claims.exp > now_secs() + 180 {
        return Err("invalid assertion: exp is more than 3 minutes away");
    }
    let sub = data.claims.sub.unwrap_or_default();
    if !i.config.usernames.contains(&sub) {
        return Err("user hasn't approved this consumer");
    }
    Ok(sub)
}

async fn token(State(s): State<Sim>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    {
        let mut i = lock(&s.inner);
        // The client first (Salesforce Help, "OAuth 2.0 Authorization Errors"): an unknown
        // consumer key is `invalid_client_id` "client identifier invalid", a wrong secret
        // `invalid_client` "invalid client credentials"; then the grant: `invalid_grant`.
        let client = || {
            if field("client_id") != i.config.client_id {
                Err(("invalid_client_id", "client identifier invalid"))
            } else if field("client_secret") != i.config.client_secret {
                Err(("invalid_client", "invalid client credentials"))
            } else {
                Ok(())
            }
        };
        let verdict: Result<(), (&str, &str)> = match field("grant_type") {
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
                check_assertion(field("assertion"), &i, &s.url)
                    .map(|_| ())
                    .map_err(|d| ("invalid_grant", d))
            }
            "refresh_token" => client().and_then(|()| {
                if i.config.refresh_token.as_deref() != Some(field("refresh_token")) {
                    Err(("invalid_grant", "expired access/refresh token"))
                } else {
                    Ok(())
                }
            }),
            "client_credentials" => client(),
            _ => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
                    HeaderMap::new(),
                );
            }
        };
        if let Err((error, description)) = verdict {
            i.counts.failed_logins += 1;
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": error, "error_description": description}),
                HeaderMap::new(),
            );
        }
        i.logins_in_flight += 1;
        i.counts.max_concurrent_logins = i.counts.max_concurrent_logins.max(i.logins_in_flight);
    }
    // Counted in flight until answered or until the client goes away (a killed process): the
    // guard goes with this future either way.
    let in_flight = LoginInFlight(s.inner.clone());
    // A login takes a moment; overlapping logins show in the counts.
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(in_flight);
    let mut i = lock(&s.inner);
    i.counts.logins += 1;
    i.next += 1;
    // Salesforce's session ids start with the org's 15-character id.
    let org15: String = i.config.org_id.chars().take(15).collect();
    let token = format!("{org15}!AR{:06}.{:08x}", i.next, fastrand::u32(..));
    let ttl = i.config.session_ttl;
    i.sessions.insert(token.clone(), Instant::now() + ttl);
    let mut body = json!({
        "access_token": token,
        "instance_url": s.url,
        "id": format!("{}/id/{}/005sim000000001AAA", s.url, i.config.org_id),
        "token_type": "Bearer",
        "scope": "api",
    });
    match field("grant_type") {
        "refresh_token" => {
            body["issued_at"] = json!(format!("{}", now_secs() * 1000));
            body["signature"] = json!("c2ltdWxhdGVkLXNpZ25hdHVyZQ==");
            if i.config.rotate_refresh_token {
                let new = format!("5Aep8sim{:06}{:08x}", i.next, fastrand::u32(..));
                i.config.refresh_token = Some(new.clone());
                body["refresh_token"] = json!(new);
            }
        }
        "client_credentials" => {
            body["token_format"] = json!("opaque");
            body["issued_at"] = json!(format!("{}", now_secs() * 1000));
        }
        _ => {}
    }
    json_response(StatusCode::OK, body, HeaderMap::new())
}

/// One login being answered; it stops counting when dropped, answered or abandoned.
struct LoginInFlight(Arc<Mutex<Inner>>);

impl Drop for LoginInFlight {
    fn drop(&mut self) {
        let mut i = lock(&self.0);
        i.logins_in_flight = i.logins_in_flight.saturating_sub(1);
    }
}

/// The session and the daily allocation, for every API call: `Ok` carries `Sforce-Limit-Info`.
fn admit(inner: &Mutex<Inner>, headers: &HeaderMap) -> Result<HeaderMap, Box<Response>> {
    let mut i = lock(inner);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if i.sessions
        .get(token)
        .is_none_or(|until| *until <= Instant::now())
    {
        i.counts.invalid_session += 1;
        return Err(Box::new(json_response(
            StatusCode::UNAUTHORIZED,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
            HeaderMap::new(),
        )));
    }
    if i.api_usage >= i.config.daily_allocation {
        return Err(Box::new(json_response(
            StatusCode::FORBIDDEN,
            json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
            limit_info(&i),
        )));
    }
    i.api_usage += 1;
    i.counts.api_calls += 1;
    Ok(limit_info(&i))
}

fn limit_info(i: &Inner) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "api-usage={}/{}",
        i.api_usage, i.config.daily_allocation
    )) {
        h.insert("sforce-limit-info", v);
    }
    h
}

async fn limits(State(s): State<Sim>, headers: HeaderMap) -> Response {
    let h = match admit(&s.inner, &headers) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let i = lock(&s.inner);
    let body = json!({"DailyApiRequests": {"Max": i.config.daily_allocation,
        "Remaining": i.config.daily_allocation.saturating_sub(i.api_usage)}});
    json_response(StatusCode::OK, body, h)
}

/// Runs `op` on the org behind the session and the allocation.
fn api(
    s: &Sim,
    headers: &HeaderMap,
    op: impl FnOnce(&mut super::model::Org) -> super::model::Answer,
) -> Response {
    let h = match admit(&s.inner, headers) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let unavailable = || {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!([{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
            HeaderMap::new(),
        )
    };
    let mut i = lock(&s.inner);
    let fault = (fastrand::f64() < i.fault_rate).then(|| fastrand::u8(..4));
    match fault {
        Some(0) => return unavailable(),
        Some(1) => {
            // The session ends under the caller.
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_owned();
            i.sessions.remove(&token);
            i.counts.invalid_session += 1;
            return json_response(
                StatusCode::UNAUTHORIZED,
                json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
                HeaderMap::new(),
            );
        }
        _ => {}
    }
    let (status, body) = op(&mut i.org);
    match fault {
        // Done, but the answer is lost on the way: the caller must not write twice.
        Some(2) => return unavailable(),
        // Done, and no answer ever comes: the caller's timeout must end it, and the same rule holds.
        Some(3) => {
            i.counts.hung += 1;
            return crate::hang::hang(unavailable());
        }
        _ => {}
    }
    json_response(status, body, h)
}

async fn query(
    State(s): State<Sim>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let soql = q.get("q").cloned().unwrap_or_default();
    api(&s, &headers, |org| org.query(&soql))
}

async fn search(
    State(s): State<Sim>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let sosl = q.get("q").cloned().unwrap_or_default();
    api(&s, &headers, |org| org.search(&sosl))
}

async fn describe(
    State(s): State<Sim>,
    axum::extract::Path((_, object)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(&s, &headers, |org| org.describe(&object))
}

async fn collections_upsert(
    State(s): State<Sim>,
    axum::extract::Path((_, object, field)): axum::extract::Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match json_body(&body) {
        Ok(body) => api(&s, &headers, |org| {
            org.collections_upsert(&object, &field, &body)
        }),
        Err(r) => *r,
    }
}

fn json_body(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice::<Value>(body).map_err(|_| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            json!([{"message": "The request body is not valid JSON", "errorCode": "JSON_PARSER_ERROR"}]),
            HeaderMap::new(),
        ))
    })
}

async fn collections_create(
    State(s): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match json_body(&body) {
        Ok(body) => api(&s, &headers, |org| org.collections_create(&body)),
        Err(r) => *r,
    }
}

async fn collections_update(
    State(s): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match json_body(&body) {
        Ok(body) => api(&s, &headers, |org| org.collections_update(&body)),
        Err(r) => *r,
    }
}

async fn composite(
    State(s): State<Sim>,
    axum::extract::Path(version): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!([{"message": "The request body is not valid JSON", "errorCode": "JSON_PARSER_ERROR"}]),
            HeaderMap::new(),
        );
    };
    // The whole composite call is one API call against the allocation.
    api(&s, &headers, |org| {
        super::composite::run(org, &version, &body)
    })
}

async fn create_custom_field(
    State(s): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api(&s, &headers, |org| org.create_custom_field(&body))
}

async fn grant_field(
    State(s): State<Sim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let permission_set = lock(&s.inner).config.permission_set.clone();
    api(&s, &headers, |org| org.grant_field(&body, &permission_set))
}

async fn collections_delete(
    State(s): State<Sim>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let ids = q.get("ids").cloned().unwrap_or_default();
    let ids: Vec<&str> = ids.split(',').filter(|i| !i.is_empty()).collect();
    api(&s, &headers, |org| org.collections_delete(&ids))
}

async fn create_content_version(
    State(s): State<Sim>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    let (mut entity, mut size) = (Value::Null, None);
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let Ok(data) = field.bytes().await else {
            break;
        };
        match name.as_str() {
            "entity_content" => entity = serde_json::from_slice(&data).unwrap_or(Value::Null),
            "VersionData" => size = Some(data.len() as u64),
            _ => {}
        }
    }
    let Some(size) = size else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!([{"message": "Required fields are missing: [VersionData]", "errorCode": "REQUIRED_FIELD_MISSING"}]),
            HeaderMap::new(),
        );
    };
    api(&s, &headers, |org| {
        org.create_content_version(&entity, size)
    })
}
