//! HubSpot's routes, each behind the [`gate`](super::gate).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::gate::{Bucket, rate_limit_body};
use super::model::{Answer, Portal, canonical_type, error_body};
use super::{Fault, Inner, lock};

type Shared = State<Arc<Mutex<Inner>>>;

pub fn router(inner: Arc<Mutex<Inner>>) -> Router {
    Router::new()
        .route("/oauth/v3/token", post(token))
        .route("/oauth/v1/access-tokens/{token}", get(access_token_info))
        .route(
            "/oauth/v2/private-apps/get/access-token-info",
            post(private_token_info),
        )
        .route(
            "/crm/v3/properties/{object}",
            get(list_properties).post(create_property),
        )
        .route("/crm/v3/properties/{object}/groups", post(create_group))
        .route(
            "/crm/v3/properties/{object}/{name}",
            get(get_property).patch(update_property),
        )
        .route("/crm/v3/objects/{object}/batch/{op}", post(batch))
        .route("/crm/v3/objects/{object}/search", post(search))
        .route("/crm/v3/objects/{object}", post(create_object))
        .route(
            "/crm/v3/objects/{object}/{id}",
            get(get_object).patch(patch_object),
        )
        .route(
            "/crm/v4/associations/{from}/{to}/batch/create",
            post(associate_labelled),
        )
        .route(
            "/crm/v4/associations/{from}/{to}/batch/associate/default",
            post(associate_default),
        )
        .route(
            "/crm/v4/objects/{from}/{id}/associations/{to}",
            get(list_associations),
        )
        .route("/account-info/v3/details", get(account_details))
        .route("/files/v3/files", post(upload_file))
        .route(
            "/files/v3/files/{id}/gdpr-delete",
            axum::routing::delete(delete_file),
        )
        .with_state(inner)
        .layer(axum::middleware::map_response(crate::hang::hold_marked))
}

fn respond((status, body): Answer, headers: HeaderMap) -> Response {
    let mut r = if body.is_null() {
        status.into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
            body.to_string(),
        )
            .into_response()
    };
    r.headers_mut().extend(headers);
    r
}

/// The simulated portal's id: the token-info answers and the account details name the same one.
pub const PORTAL_ID: u64 = 12345678;

/// The scope of calls any valid token may make: the account details need only `oauth`, which
/// every app has.
const ANY_SCOPE: &str = "";

fn scope(object: &str, write: bool, schema: bool) -> String {
    let family = match canonical_type(object).as_str() {
        "contacts" | "notes" | "tasks" => "contacts",
        _ => "custom",
    };
    format!(
        "crm.{}.{family}.{}",
        if schema { "schemas" } else { "objects" },
        if write { "write" } else { "read" }
    )
}

/// Faults first, then the gate, then the data; the answer leaves after the configured latency.
async fn api(
    inner: &Mutex<Inner>,
    headers: &HeaderMap,
    label: &str,
    scope: &str,
    bucket: Bucket,
    op: impl FnOnce(&mut Portal) -> Answer,
) -> Response {
    let response = answer(inner, headers, label, scope, bucket, op);
    let latency = lock(inner).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

fn answer(
    inner: &Mutex<Inner>,
    headers: &HeaderMap,
    label: &str,
    scope: &str,
    bucket: Bucket,
    op: impl FnOnce(&mut Portal) -> Answer,
) -> Response {
    let mut i = lock(inner);
    *i.counts.calls.entry(label.to_owned()).or_default() += 1;
    if i.outage {
        i.counts.refused_in_outage += 1;
        return respond(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                error_body("SERVICE_UNAVAILABLE", "Service Unavailable"),
            ),
            HeaderMap::new(),
        );
    }
    let rate = i.fault_rate;
    let oauth = i.oauth.is_some();
    let random = || {
        (fastrand::f64() < rate).then(|| match fastrand::usize(..5) {
            0 => Fault::Status(502),
            1 => Fault::Status(503),
            2 => Fault::RateLimit("SECONDLY"),
            3 => Fault::Hang,
            _ if oauth => Fault::ExpiredToken,
            _ => Fault::Status(500),
        })
    };
    if let Some(fault) = i.faults.pop_front().or_else(random) {
        return match fault {
            Fault::Hang => return_after_gate(i, headers, scope, bucket, op, true),
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                respond(
                    (status, error_body("INTERNAL_ERROR", "Internal Error")),
                    HeaderMap::new(),
                )
            }
            Fault::ExpiredToken => {
                i.counts.unauthorized += 1;
                let r = super::gate::expired_token(Duration::ZERO);
                respond((r.status, r.body), r.headers)
            }
            Fault::RateLimit(policy) => {
                i.counts.too_many_requests += 1;
                let message = format!("You have reached your {} limit.", policy.to_lowercase());
                respond(
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        rate_limit_body(policy, &message),
                    ),
                    HeaderMap::new(),
                )
            }
        };
    }
    return_after_gate(i, headers, scope, bucket, op, false)
}

/// The gate, then the data; with `hang`, the write is done and its answer never sent.
fn return_after_gate(
    mut i: std::sync::MutexGuard<'_, Inner>,
    headers: &HeaderMap,
    scope: &str,
    bucket: Bucket,
    op: impl FnOnce(&mut Portal) -> Answer,
    hang: bool,
) -> Response {
    let scope = Some(scope).filter(|s| *s != ANY_SCOPE);
    match i.gate.admit(headers, scope, bucket) {
        Err(r) => {
            match r.status {
                StatusCode::TOO_MANY_REQUESTS => i.counts.too_many_requests += 1,
                StatusCode::UNAUTHORIZED => i.counts.unauthorized += 1,
                _ => {}
            }
            respond((r.status, r.body), r.headers)
        }
        Ok(h) => {
            let answer = respond(op(&mut i.portal), h);
            if hang {
                i.counts.hung += 1;
                crate::hang::hang(answer)
            } else {
                answer
            }
        }
    }
}

fn json_body(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid input JSON on line 1: {e}"))
}

fn bad_json(message: &str) -> Response {
    respond(
        (
            StatusCode::BAD_REQUEST,
            error_body("VALIDATION_ERROR", message),
        ),
        HeaderMap::new(),
    )
}

async fn list_properties(
    State(s): Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
) -> Response {
    api(
        &s,
        &headers,
        "GET properties",
        &scope(&object, false, true),
        Bucket::Standard,
        |p| p.properties_json(&object),
    )
    .await
}

async fn create_property(
    State(s): Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    api(
        &s,
        &headers,
        "POST properties",
        &scope(&object, true, true),
        Bucket::Standard,
        |p| p.create_property(&object, &body),
    )
    .await
}

async fn get_property(
    State(s): Shared,
    Path((object, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(
        &s,
        &headers,
        "GET property",
        &scope(&object, false, true),
        Bucket::Standard,
        |p| p.property_json(&object, &name),
    )
    .await
}

async fn update_property(
    State(s): Shared,
    Path((object, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    api(
        &s,
        &headers,
        "PATCH property",
        &scope(&object, true, true),
        Bucket::Standard,
        |p| p.update_property(&object, &name, &body),
    )
    .await
}

async fn create_group(
    State(s): Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    api(
        &s,
        &headers,
        "POST property group",
        &scope(&object, true, true),
        Bucket::Standard,
        |p| p.create_group(&object, &body),
    )
    .await
}

async fn batch(
    State(s): Shared,
    Path((object, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    let label = format!("POST {} batch/{op}", canonical_type(&object));
    let write = op != "read";
    api(
        &s,
        &headers,
        &label,
        &scope(&object, write, false),
        Bucket::Standard,
        |p| match op.as_str() {
            "upsert" => p.batch_upsert(&object, &body),
            "read" => p.batch_read(&object, &body),
            "archive" => p.batch_archive(&object, &body),
            other => (
                StatusCode::NOT_FOUND,
                error_body("NOT_FOUND", &format!("batch/{other} is not simulated")),
            ),
        },
    )
    .await
}

async fn create_object(
    State(s): Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    let label = format!("POST {}", canonical_type(&object));
    api(
        &s,
        &headers,
        &label,
        &scope(&object, true, false),
        Bucket::Standard,
        |p| p.create_one(&object, &body),
    )
    .await
}

async fn search(
    State(s): Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    let label = format!("POST {} search", canonical_type(&object));
    let now = Instant::now();
    api(
        &s,
        &headers,
        &label,
        &scope(&object, false, false),
        Bucket::Search,
        |p| p.search(&object, &body, now),
    )
    .await
}

async fn get_object(
    State(s): Shared,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let wanted: Vec<String> = q
        .get("properties")
        .map(|p| p.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let label = format!("GET {}", canonical_type(&object));
    api(
        &s,
        &headers,
        &label,
        &scope(&object, false, false),
        Bucket::Standard,
        |p| {
            p.get_one(
                &object,
                &id,
                q.get("idProperty").map(String::as_str),
                &wanted,
            )
        },
    )
    .await
}

async fn patch_object(
    State(s): Shared,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    let label = format!("PATCH {}", canonical_type(&object));
    api(
        &s,
        &headers,
        &label,
        &scope(&object, true, false),
        Bucket::Standard,
        |p| p.patch_one(&object, &id, q.get("idProperty").map(String::as_str), &body),
    )
    .await
}

async fn associate_labelled(
    State(s): Shared,
    Path((from, to)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    api(
        &s,
        &headers,
        "POST associations batch/create",
        &scope(&from, true, false),
        Bucket::Exempt,
        |p| p.associate(&from, &to, &body, false),
    )
    .await
}

async fn associate_default(
    State(s): Shared,
    Path((from, to)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&e),
    };
    api(
        &s,
        &headers,
        "POST associations batch/associate/default",
        &scope(&from, true, false),
        Bucket::Exempt,
        |p| p.associate(&from, &to, &body, true),
    )
    .await
}

async fn list_associations(
    State(s): Shared,
    Path((from, id, to)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    api(
        &s,
        &headers,
        "GET associations",
        &scope(&from, false, false),
        Bucket::Standard,
        |p| {
            let id: u64 = id.parse().unwrap_or(0);
            let results: Vec<Value> = p
                .associated(&from, id, &to)
                .into_iter()
                .map(|t| {
                    let types: Vec<Value> = p
                    .association_types(&from, id, &to, t)
                    .into_iter()
                    .map(|ty| json!({"category": "HUBSPOT_DEFINED", "typeId": ty, "label": null}))
                    .collect();
                    json!({"toObjectId": t, "associationTypes": types})
                })
                .collect();
            (StatusCode::OK, json!({"results": results}))
        },
    )
    .await
}

/// `POST /oauth/v3/token`, form-encoded: the refresh grant.
async fn token(State(s): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let bad = |status: &str, message: &str| {
        respond(
            (
                StatusCode::BAD_REQUEST,
                json!({"status": status, "message": message, "correlationId": super::model::correlation_id()}),
            ),
            HeaderMap::new(),
        )
    };
    let delay = {
        let mut i = lock(&s);
        let Some(app) = i.oauth.clone() else {
            return bad("BAD_CLIENT_ID", "This portal has no OAuth app");
        };
        if field("grant_type") != "refresh_token" {
            return bad("BAD_GRANT_TYPE", "grant_type must be refresh_token here");
        }
        if field("client_id") != app.client_id || field("client_secret") != app.client_secret {
            i.counts.failed_refreshes += 1;
            return bad(
                "BAD_CLIENT_ID",
                "missing or invalid client_id or client_secret",
            );
        }
        if field("refresh_token") != app.refresh_token {
            i.counts.failed_refreshes += 1;
            return respond(
                (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked",
                        "status": "BAD_REFRESH_TOKEN", "message": "refresh token is invalid, expired or revoked",
                        "correlationId": super::model::correlation_id()}),
                ),
                HeaderMap::new(),
            );
        }
        i.refreshes_in_flight += 1;
        i.counts.max_concurrent_refreshes =
            i.counts.max_concurrent_refreshes.max(i.refreshes_in_flight);
        app.token_ttl
    };
    // Counted in flight until answered or until the client goes away: a client that
    // disconnects (a killed process) drops this future, and with it the guard.
    let in_flight = InFlight(s.clone());
    // A token endpoint takes a moment; overlapping refreshes show up in the counts.
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(in_flight);
    let mut i = lock(&s);
    i.counts.refreshes += 1;
    i.next_token += 1;
    let n = i.next_token;
    let access = format!("sim-at-{n}-{:08x}", fastrand::u32(..));
    i.gate
        .oauth_tokens
        .insert(access.clone(), Instant::now() + delay);
    let refresh = match i.oauth.as_mut() {
        Some(app) if app.rotate_refresh_token => {
            app.refresh_token = format!("sim-rt-{n}-{:08x}", fastrand::u32(..));
            app.refresh_token.clone()
        }
        Some(app) => app.refresh_token.clone(),
        None => String::new(),
    };
    respond(
        (
            StatusCode::OK,
            json!({"access_token": access, "refresh_token": refresh, "expires_in": delay.as_secs(),
                "token_type": "bearer", "token_use": "access_token", "hub_id": PORTAL_ID, "user_id": 1,
                "scopes": i.gate.scopes}),
        ),
        HeaderMap::new(),
    )
}

/// One refresh being answered; it stops counting when dropped, answered or abandoned.
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut i = lock(&self.0);
        i.refreshes_in_flight = i.refreshes_in_flight.saturating_sub(1);
    }
}

async fn access_token_info(State(s): Shared, Path(token): Path<String>) -> Response {
    let i = lock(&s);
    match i.gate.oauth_tokens.get(&token) {
        Some(exp) if *exp > Instant::now() => respond(
            (
                StatusCode::OK,
                json!({"token": token, "user": "integration@example.com", "user_id": 1, "hub_id": PORTAL_ID,
                    "scopes": i.gate.scopes, "token_type": "access", "app_id": 1,
                    "expires_in": exp.duration_since(Instant::now()).as_secs()}),
            ),
            HeaderMap::new(),
        ),
        _ => respond(
            (
                StatusCode::NOT_FOUND,
                error_body("NOT_FOUND", "Token not found"),
            ),
            HeaderMap::new(),
        ),
    }
}

async fn private_token_info(State(s): Shared, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key = body.get("tokenKey").and_then(Value::as_str).unwrap_or("");
    let i = lock(&s);
    if i.gate.private_token.as_deref() == Some(key) && !key.is_empty() {
        respond(
            (
                StatusCode::OK,
                json!({"userId": 1, "hubId": PORTAL_ID, "appId": 1, "scopes": i.gate.scopes}),
            ),
            HeaderMap::new(),
        )
    } else {
        respond(
            (
                StatusCode::UNAUTHORIZED,
                error_body(
                    "INVALID_AUTHENTICATION",
                    "The token is not a valid private app token",
                ),
            ),
            HeaderMap::new(),
        )
    }
}

/// `GET /account-info/v3/details`: the portal's id, time zone and where its web app is
/// (HubSpot's account information API reference, "Retrieve account details": `portalId`,
/// `uiDomain`, `dataHostingLocation`, … all required in the answer). An ordinary API call: the
/// token is checked and the call counts toward the limits.
async fn account_details(State(s): Shared, headers: HeaderMap) -> Response {
    api(
        &s,
        &headers,
        "GET account details",
        ANY_SCOPE,
        Bucket::Standard,
        |p| {
            (
                StatusCode::OK,
                json!({"portalId": PORTAL_ID, "accountType": "STANDARD", "timeZone": "US/Eastern",
                    "companyCurrency": "USD", "additionalCurrencies": [], "utcOffset": "-05:00",
                    "utcOffsetMilliseconds": -18_000_000, "uiDomain": p.ui_domain,
                    "dataHostingLocation": "na1"}),
            )
        },
    )
    .await
}

/// `POST /files/v3/files`, multipart: `file`, `fileName`, `folderPath`, `options` (JSON with the
/// required `access`). `RETURN_EXISTING` in `EXACT_FOLDER` answers an identical file (same name
/// and bytes in the folder) with the existing one.
async fn upload_file(State(s): Shared, headers: HeaderMap, mut form: Multipart) -> Response {
    let (mut bytes, mut name, mut folder, mut options) =
        (None, None, String::from("/"), Value::Null);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let field_name = field.name().unwrap_or("").to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let Ok(data) = field.bytes().await else {
                    return bad_json("the multipart body broke off");
                };
                match field_name.as_str() {
                    "file" => {
                        if name.is_none() {
                            name = file_name;
                        }
                        bytes = Some(data);
                    }
                    "fileName" => name = Some(String::from_utf8_lossy(&data).into_owned()),
                    "folderPath" => folder = String::from_utf8_lossy(&data).into_owned(),
                    "options" => options = serde_json::from_slice(&data).unwrap_or(Value::Null),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return bad_json(&format!("invalid multipart body: {e}")),
        }
    }
    // Auth, scope and limits first; the answer then carries the gate's headers.
    let gate = api(
        &s,
        &headers,
        "POST files",
        "files",
        Bucket::Standard,
        |_| (StatusCode::OK, Value::Null),
    )
    .await;
    if gate.status() != StatusCode::OK {
        return gate;
    }
    let Some(access) = options
        .get("access")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return bad_json(
            "options.access is required (PUBLIC_INDEXABLE, PUBLIC_NOT_INDEXABLE, PRIVATE)",
        );
    };
    let (Some(bytes), Some(name)) = (bytes, name) else {
        return bad_json("file is required");
    };
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut i = lock(&s);
    let reuse = options
        .get("duplicateValidationStrategy")
        .and_then(Value::as_str)
        == Some("RETURN_EXISTING");
    let existing = i
        .portal
        .files
        .iter()
        .find(|f| reuse && f.folder == folder && f.name == name && f.sha256 == sha256)
        .cloned();
    // 201 either way: the upload's one documented success (Files v3 reference; the official
    // clients map no other status to a file).
    let (status, file) = match existing {
        Some(f) => (StatusCode::CREATED, f),
        None => {
            i.next_token += 1;
            let f = super::SimFile {
                id: (200_000_000 + i.next_token).to_string(),
                name,
                folder,
                access,
                size: bytes.len() as u64,
                sha256,
            };
            i.portal.files.push(f.clone());
            (StatusCode::CREATED, f)
        }
    };
    let extension = file
        .name
        .rsplit_once('.')
        .map(|(_, e)| e.to_owned())
        .unwrap_or_default();
    let mut headers = gate.headers().clone();
    headers.remove(header::CONTENT_TYPE);
    respond(
        (
            status,
            json!({"id": file.id, "name": file.name, "extension": extension, "size": file.size,
                "access": file.access, "path": format!("{}/{}", file.folder.trim_end_matches('/'), file.name),
                "archived": false, "createdAt": "2026-11-22T00:00:00.000Z", "updatedAt": "2026-11-22T00:00:00.000Z"}),
        ),
        headers,
    )
}

async fn delete_file(State(s): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    api(
        &s,
        &headers,
        "DELETE file",
        "files",
        Bucket::Standard,
        move |p| {
            let before = p.files.len();
            p.files.retain(|f| f.id != id);
            let gone = before != p.files.len();
            if gone {
                (StatusCode::NO_CONTENT, Value::Null)
            } else {
                (
                    StatusCode::NOT_FOUND,
                    error_body("OBJECT_NOT_FOUND", "File not found"),
                )
            }
        },
    )
    .await
}
