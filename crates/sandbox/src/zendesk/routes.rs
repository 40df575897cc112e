//! The simulator's routes; behaviours and their sources in mod.rs and docs/vendors/zendesk.md.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Attachment, Comment, Shared, Ticket, Upload, User, ZendeskSim, lock};

const MINUTE: Duration = Duration::from_secs(60);
/// "30 updates per 10 minutes per user per ticket".
const TICKET_UPDATES: usize = 30;
const TICKET_WINDOW: Duration = Duration::from_secs(600);

pub(super) fn router(s: Shared) -> Router {
    Router::new()
        .route("/api/v2/users/create_or_update", post(create_or_update))
        .route("/api/v2/users/{id}", get(show_user))
        .route("/api/v2/users/{id}/tickets/requested", get(requested))
        .route("/api/v2/search", get(search))
        .route("/api/v2/tickets", post(create_ticket))
        .route("/api/v2/tickets/{id}", get(show_ticket).put(update_ticket))
        .route("/api/v2/tickets/{id}/comments", get(comments))
        .route(
            "/api/v2/uploads",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .merge(super::admin::router())
        .merge(super::redact::router())
        .merge(super::oauth::router())
        .layer(axum::middleware::from_fn_with_state(
            s.clone(),
            super::faults::inject,
        ))
        .layer(axum::middleware::map_response(crate::hang::hold_marked))
        .with_state(s)
}

/// Auth and the per-minute limit, before any route's own work: `Err` is the answer to give.
/// The `user:password` of an HTTP Basic `Authorization` header.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
}

pub(super) fn admit(s: &Shared, headers: &HeaderMap) -> Result<Limit, Box<Response>> {
    let mut i = lock(s);
    let expected = format!("{}/token:{}", i.config.email, i.config.api_token);
    let given = basic_credentials(headers);
    let now = Instant::now();
    while i
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= MINUTE)
    {
        i.window.pop_front();
    }
    let max = i.config.requests_per_minute;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| i.access_tokens.get(t.trim()).is_some_and(|end| *end > now));
    if !bearer && given.as_deref() != Some(expected.as_str()) {
        i.counts.unauthenticated += 1;
        return Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response(),
        ));
    }
    if i.window.len() >= max {
        i.counts.rate_limited += 1;
        let oldest = i.window.front().copied().unwrap_or(now);
        let wait = MINUTE
            .saturating_sub(now.duration_since(oldest))
            .as_secs()
            .max(1);
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            "Number of allowed API requests per minute exceeded",
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        put_limit(&mut r, max, 0);
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        return Err(Box::new(r));
    }
    i.window.push_back(now);
    i.counts.api_calls += 1;
    Ok(Limit {
        max,
        remaining: max - i.window.len(),
    })
}

/// [`admit`], then the body as JSON: one that is not JSON is 400.
pub(super) fn admit_json(
    s: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Limit, Value), Box<Response>> {
    let limit = admit(s, headers)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok((limit, v)),
        Err(_) => Err(Box::new(answer(
            limit,
            StatusCode::BAD_REQUEST,
            json!({"error": "Unprocessable Entity"}),
        ))),
    }
}

pub(super) struct Limit {
    max: usize,
    remaining: usize,
}

fn put_limit(r: &mut Response, max: usize, remaining: usize) {
    for (name, value) in [("x-rate-limit", max), ("x-rate-limit-remaining", remaining)] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            r.headers_mut().insert(name, v);
        }
    }
}

pub(super) fn answer(limit: Limit, status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    put_limit(&mut r, limit.max, limit.remaining);
    r
}

pub(super) fn not_found(limit: Limit) -> Response {
    answer(
        limit,
        StatusCode::NOT_FOUND,
        json!({"error": "RecordNotFound", "description": "Not found"}),
    )
}

pub(super) fn invalid(limit: Limit, field: &str, description: &str) -> Response {
    answer(
        limit,
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
            "details": {field: [{"description": description}]}}),
    )
}

fn bad_token(limit: Limit, token: &str) -> Response {
    invalid(
        limit,
        "uploads",
        &format!("Uploads: {token} is not a valid upload token"),
    )
}

async fn create_or_update(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let u = &body["user"];
    let text = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_owned);
    let (external_id, email) = (text("external_id"), text("email"));
    let Some(name) = text("name") else {
        return invalid(limit, "name", "Name:  is too short (minimum one character)");
    };
    let mut i = lock(&s);
    let user_fields = match super::admin::user_fields_of(&i, &u["user_fields"]) {
        Ok(f) => f,
        Err(e) => {
            drop(i);
            return invalid(limit, "user_fields", &e);
        }
    };
    let lag = i.config.search_lag;
    let found = i
        .users
        .values()
        .find(|x| external_id.is_some() && x.external_id == external_id)
        .or_else(|| {
            i.users
                .values()
                .find(|x| email.is_some() && x.email == email)
        })
        .map(|x| x.id);
    let updated_at = i.now_text();
    let (status, id) = match found {
        Some(id) => (StatusCode::OK, id),
        None => (StatusCode::CREATED, i.next_id()),
    };
    let user = i.users.entry(id).or_insert_with(|| User {
        id,
        name: name.clone(),
        role: "end-user".into(),
        email: None,
        phone: None,
        external_id: None,
        searchable_at: Instant::now(),
        updated_at: updated_at.clone(),
        user_fields: Default::default(),
    });
    user.user_fields.extend(user_fields);
    user.name = name;
    if external_id.is_some() {
        user.external_id = external_id;
    }
    if email.is_some() {
        user.email = email;
    }
    if let Some(phone) = text("phone") {
        user.phone = Some(phone);
    }
    user.updated_at = updated_at;
    // A new or changed user is indexed for search only after a while.
    user.searchable_at = Instant::now() + lag;
    let json = ZendeskSim::user_json(user);
    drop(i);
    answer(limit, status, json!({"user": json}))
}

async fn show_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    match id.parse::<u64>().ok().and_then(|id| i.users.get(&id)) {
        Some(u) => {
            let json = ZendeskSim::user_json(u);
            drop(i);
            answer(limit, StatusCode::OK, json!({"user": json}))
        }
        None => not_found(limit),
    }
}

/// `type:user phone:VALUE` (the value quoted or not): users whose phone is exactly the value,
/// once indexed. Other queries find nothing (the simulator plays the part wa2crm uses).
async fn search(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let query = q.get("query").cloned().unwrap_or_default();
    let phone = query
        .strip_prefix("type:user ")
        .and_then(|rest| rest.trim().strip_prefix("phone:"))
        .map(|p| p.trim_matches('"').to_owned());
    let i = lock(&s);
    let now = Instant::now();
    let results: Vec<Value> = match phone {
        Some(p) => i
            .users
            .values()
            .filter(|u| u.searchable_at <= now && u.phone.as_deref() == Some(p.as_str()))
            .map(|u| {
                let mut j = ZendeskSim::user_json(u);
                j["result_type"] = "user".into();
                j
            })
            .collect(),
        None => Vec::new(),
    };
    drop(i);
    let count = results.len();
    answer(
        limit,
        StatusCode::OK,
        json!({"results": results, "count": count, "next_page": null}),
    )
}

fn ticket_json(t: &Ticket) -> Value {
    let custom_fields: Vec<Value> = t
        .custom_fields
        .iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({"id": t.id, "requester_id": t.requester_id, "subject": t.subject, "status": t.status,
        "tags": t.tags, "updated_at": t.updated_at, "custom_fields": custom_fields})
}

async fn requested(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    let Some(uid) = id.parse::<u64>().ok().filter(|id| i.users.contains_key(id)) else {
        drop(i);
        return not_found(limit);
    };
    let tickets: Vec<Value> = i
        .tickets
        .values()
        .filter(|t| t.requester_id == uid)
        .map(ticket_json)
        .collect();
    drop(i);
    answer(
        limit,
        StatusCode::OK,
        json!({"tickets": tickets, "next_page": null}),
    )
}

/// A comment as the ticket's update or creation gives it: `body` required, `public` by default
/// true (Zendesk's default: an API comment is public unless said otherwise).
/// `Err` names an upload token that is unknown or expired.
fn comment_of(i: &mut super::Inner, c: &Value) -> Option<Result<Comment, String>> {
    let body = c.get("body").and_then(Value::as_str)?.to_owned();
    let now = Instant::now();
    let mut attachments = Vec::new();
    for token in c
        .get("uploads")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match i.uploads.remove(token) {
            Some(u) if u.expires > now => attachments.push(u.attachment),
            _ => return Some(Err(token.to_owned())),
        }
    }
    Some(Ok(Comment {
        id: i.next_id(),
        author_id: i.agent_id,
        html_body: super::redact::html_of(&body),
        body,
        public: c.get("public").and_then(Value::as_bool).unwrap_or(true),
        attachments,
    }))
}

async fn upload(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(file_name) = q.get("filename").filter(|f| !f.is_empty()).cloned() else {
        return invalid(limit, "filename", "Filename: cannot be blank");
    };
    let mut i = lock(&s);
    if body.len() as u64 > i.config.attachment_limit {
        drop(i);
        return answer(
            limit,
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "AttachmentTooLarge", "description": "The file is too large"}),
        );
    }
    let attachment = Attachment {
        id: i.next_id(),
        file_name,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned(),
        size: body.len() as u64,
    };
    let token = format!("sim-upload-{:016x}", fastrand::u64(..));
    i.uploads.insert(
        token.clone(),
        Upload {
            attachment: attachment.clone(),
            expires: Instant::now() + Duration::from_secs(3600),
        },
    );
    i.counts.uploads += 1;
    drop(i);
    answer(
        limit,
        StatusCode::CREATED,
        json!({"upload": {"token": token, "attachment": {"id": attachment.id,
            "file_name": attachment.file_name, "content_type": attachment.content_type,
            "size": attachment.size}}}),
    )
}

fn tags_of(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        // A space separates tags: "Product Issue" is two tags (strict reading; see README).
        .flat_map(|t| {
            t.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn create_ticket(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let t = &body["ticket"];
    let mut i = lock(&s);
    let Some(requester_id) = t
        .get("requester_id")
        .and_then(Value::as_u64)
        .filter(|id| i.users.contains_key(id))
    else {
        drop(i);
        return invalid(limit, "requester", "Requester: is invalid");
    };
    let custom_fields = match super::admin::custom_fields_of(&i, &t["custom_fields"]) {
        Ok(f) => f,
        Err(e) => {
            drop(i);
            return invalid(limit, "custom_fields", &e);
        }
    };
    let comment = match t.get("comment").and_then(|c| comment_of(&mut i, c)) {
        Some(Ok(c)) => c,
        Some(Err(token)) => {
            drop(i);
            return bad_token(limit, &token);
        }
        None => {
            drop(i);
            return invalid(limit, "base", "Description: cannot be blank");
        }
    };
    let id = i.next_id();
    let updated_at = i.now_text();
    let ticket = Ticket {
        id,
        requester_id,
        subject: t
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        status: "new".into(),
        tags: tags_of(&t["tags"]),
        comments: vec![comment.clone()],
        updated_at,
        custom_fields,
        updates: Default::default(),
    };
    i.counts.comments += 1;
    let json = ticket_json(&ticket);
    i.tickets.insert(id, ticket);
    drop(i);
    answer(
        limit,
        StatusCode::CREATED,
        json!({"ticket": json, "audit": {"events": [{"type": "Comment", "id": comment.id}]}}),
    )
}

async fn show_ticket(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    match id.parse::<u64>().ok().and_then(|id| i.tickets.get(&id)) {
        Some(t) => {
            let json = ticket_json(t);
            drop(i);
            answer(limit, StatusCode::OK, json!({"ticket": json}))
        }
        None => not_found(limit),
    }
}

async fn update_ticket(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let t = &body["ticket"];
    let mut i = lock(&s);
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| i.tickets.contains_key(id))
    else {
        drop(i);
        return not_found(limit);
    };
    let now = Instant::now();
    {
        let ticket = i.tickets.get_mut(&id).expect("checked above");
        while ticket
            .updates
            .front()
            .is_some_and(|u| now.duration_since(*u) >= TICKET_WINDOW)
        {
            ticket.updates.pop_front();
        }
        if ticket.status == "closed" {
            drop(i);
            return invalid(limit, "status", "Status: closed prevents ticket update");
        }
        // Protecting against update collisions: the ticket changed since the stamp given.
        if t.get("safe_update").and_then(Value::as_bool) == Some(true)
            && t.get("updated_stamp").and_then(Value::as_str) != Some(ticket.updated_at.as_str())
        {
            drop(i);
            return answer(
                limit,
                StatusCode::CONFLICT,
                json!({"error": "UpdateConflict",
                    "description": "Safe Update prevented the update due to outdated ticket data. Please fetch the latest ticket data and try again."}),
            );
        }
        if ticket.updates.len() >= TICKET_UPDATES {
            drop(i);
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "TooManyRequests",
                    "description": "You have exceeded the limit of 30 updates per 10 minutes for this ticket"})),
            )
                .into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("60"));
            return r;
        }
    }
    let custom_fields = match super::admin::custom_fields_of(&i, &t["custom_fields"]) {
        Ok(f) => f,
        Err(e) => {
            drop(i);
            return invalid(limit, "custom_fields", &e);
        }
    };
    let comment = match t.get("comment").and_then(|c| comment_of(&mut i, c)) {
        Some(Ok(c)) => Some(c),
        Some(Err(token)) => {
            drop(i);
            return bad_token(limit, &token);
        }
        None => None,
    };
    let updated_at = i.now_text();
    i.counts.ticket_updates += 1;
    if comment.is_some() {
        i.counts.comments += 1;
    }
    let ticket = i.tickets.get_mut(&id).expect("checked above");
    ticket.updates.push_back(now);
    let mut events = Vec::new();
    if let Some(c) = comment {
        events.push(json!({"type": "Comment", "id": c.id}));
        ticket.comments.push(c);
        // A comment on a solved ticket reopens it.
        if ticket.status == "solved" || ticket.status == "new" {
            ticket.status = "open".into();
        }
    }
    for tag in tags_of(&t["additional_tags"]) {
        if !ticket.tags.contains(&tag) {
            ticket.tags.push(tag);
        }
    }
    ticket.custom_fields.extend(custom_fields);
    ticket.updated_at = updated_at;
    let json = ticket_json(ticket);
    drop(i);
    answer(
        limit,
        StatusCode::OK,
        json!({"ticket": json, "audit": {"events": events}}),
    )
}

/// Comments, 100 a page (`page`, `next_page` as a full URL), oldest first unless
/// `sort_order=desc` (Ticket Comments API: "List Comments" sorts by creation, ascending by
/// default; offset pagination's page size is 100).
async fn comments(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    const PAGE: usize = 100;
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let desc = q.get("sort_order").map(String::as_str) == Some("desc");
    let i = lock(&s);
    let Some(t) = id.parse::<u64>().ok().and_then(|id| i.tickets.get(&id)) else {
        drop(i);
        return not_found(limit);
    };
    let mut all: Vec<&Comment> = t.comments.iter().collect();
    if desc {
        all.reverse();
    }
    let list: Vec<Value> = all
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|c| {
            let attachments: Vec<Value> = c
                .attachments
                .iter()
                .map(|a| {
                    json!({"id": a.id, "file_name": a.file_name,
                    "content_type": a.content_type, "size": a.size})
                })
                .collect();
            json!({"id": c.id, "author_id": c.author_id, "body": c.body,
                "html_body": c.html_body, "public": c.public, "attachments": attachments})
        })
        .collect();
    let next_page = (all.len() > page * PAGE).then(|| {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!(
            "http://{host}/api/v2/tickets/{id}/comments?page={}{}",
            page + 1,
            if desc { "&sort_order=desc" } else { "" }
        )
    });
    let count = all.len();
    drop(i);
    answer(
        limit,
        StatusCode::OK,
        json!({"comments": list, "next_page": next_page, "count": count}),
    )
}
