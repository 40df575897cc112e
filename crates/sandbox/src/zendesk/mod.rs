//! A Zendesk Support simulator. Sources are in
//! docs/vendors/zendesk.md; where Zendesk's reference is unclear the least forgiving reading is
//! taken and said so next to the behaviour.
//!
//! - Auth: HTTP Basic `{email}/token:{api_token}` for the configured agent; anything else answers
//!   401 `{"error": "Couldn't authenticate you"}`.
//! - Limits: every answer carries `X-Rate-Limit` and `X-Rate-Limit-Remaining` for a rolling minute
//!   (the least forgiving reading of "per minute"); past it, 429 with a plain-text body and
//!   `Retry-After` in seconds. A ticket takes at most 30 updates per 10 minutes from one user
//!   (429 too).
//! - Users: `POST /api/v2/users/create_or_update` matches `external_id`, then `email` (201 when
//!   made, 200 when updated); `GET /api/v2/search?query=type:user phone:…` finds users only after
//!   the search lag (new users are not indexed at once).
//! - Uploads: `POST /api/v2/uploads?filename=…` with the raw file; the token attaches it to one
//!   comment (`uploads`) within an hour; an unknown or expired token makes the comment 422
//!   (strict: Zendesk deletes unattached uploads and does not say what a late token gets); a file
//!   over `attachment_limit` is 413 (strict: the answer's shape is not documented).
//! - Tickets: `POST /api/v2/tickets` with its first comment; `PUT /api/v2/tickets/{id}` adds a
//!   comment and `additional_tags`; a closed ticket answers 422 RecordInvalid;
//!   `GET /api/v2/users/{id}/tickets/requested`; `GET /api/v2/tickets/{id}/comments`. Tags are
//!   lowercased and split at spaces (strict: Zendesk tags hold no spaces). `safe_update` with an
//!   `updated_stamp` that is not the ticket's `updated_at` is 409 `UpdateConflict`.
//! - Custom fields (admin.rs): `ticket_fields` and `user_fields`, listed and created; a ticket's
//!   `custom_fields` and a user's `user_fields` must name existing fields and hold values of their
//!   type, else 422 (strict: Zendesk documents the types, not what a mismatch gets).
//! - OAuth (oauth.rs): `POST /oauth/tokens` with `grant_type=refresh_token` answers a new access
//!   token and a new refresh token and deletes the previous ones (rotation); a Bearer token that
//!   is unknown, deleted or expired is 401 like a wrong API token.
//! - Faults (faults.rs), for chaos tests: a share of calls refused before the work, or done and
//!   then answered 500 or never answered.
//! - Redaction (redact.rs): `PUT /api/v2/comment_redactions/{id}` with the comment's `html_body`
//!   whose parts to remove are wrapped in `<redact>`; the html_body without the tags must be the
//!   comment's (strict); redacted characters become ▇ in `body` and `html_body`. An attachment's
//!   redaction replaces it with an empty `redacted.txt`.

mod admin;
mod faults;
mod oauth;
mod redact;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ZendeskSimConfig {
    /// The agent the API token acts as.
    pub email: String,
    pub api_token: String,
    /// The account's limit per minute (Team 200, Growth/Professional 400, Enterprise 700).
    pub requests_per_minute: usize,
    /// How long a new or changed user takes to be found by search.
    pub search_lag: Duration,
    /// The largest file an upload takes (50 MB; Zendesk does not raise it for any plan).
    pub attachment_limit: u64,
    /// An OAuth client whose refresh token `POST /oauth/tokens` takes (oauth.rs).
    pub oauth: Option<OAuthClient>,
}

/// An OAuth client of the account and the refresh token it was given.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// How long an access token lives (`expires_in`).
    pub token_ttl: Duration,
}

impl ZendeskSimConfig {
    pub fn new(email: &str, api_token: &str) -> Self {
        ZendeskSimConfig {
            email: email.into(),
            api_token: api_token.into(),
            requests_per_minute: 200,
            search_lag: Duration::from_secs(10),
            attachment_limit: 50 * 1024 * 1024,
            oauth: None,
        }
    }
}

/// What the simulator was asked, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub api_calls: u64,
    pub rate_limited: u64,
    pub unauthenticated: u64,
    pub ticket_updates: u64,
    pub comments: u64,
    pub uploads: u64,
    /// Calls failed at random (`set_fault_rate`), and of those, done but never answered.
    pub faults: u64,
    pub hung: u64,
    pub refreshes: u64,
    pub failed_refreshes: u64,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    /// When search finds it (created or changed, plus the lag).
    pub searchable_at: Instant,
    pub updated_at: String,
    /// Custom user field key → value.
    pub user_fields: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub author_id: u64,
    pub body: String,
    /// The body as Zendesk renders it (what redaction edits).
    pub html_body: String,
    pub public: bool,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: u64,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

/// A file uploaded and not yet attached: its token dies after an hour.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub attachment: Attachment,
    pub expires: Instant,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: u64,
    pub requester_id: u64,
    pub subject: String,
    pub status: String,
    pub tags: Vec<String>,
    pub comments: Vec<Comment>,
    pub updated_at: String,
    /// Custom ticket field id → value.
    pub custom_fields: BTreeMap<u64, Value>,
    /// When each update of the last ten minutes came (the per-ticket limit).
    updates: VecDeque<Instant>,
}

/// A custom ticket or user field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub id: u64,
    /// `text`, `textarea`, `integer`, `decimal`, `checkbox`, `date`, …
    pub field_type: String,
    pub title: String,
    /// User fields only: the key `user_fields` are written under.
    pub key: Option<String>,
}

pub(crate) struct Inner {
    config: ZendeskSimConfig,
    users: BTreeMap<u64, User>,
    ticket_fields: Vec<CustomField>,
    user_fields: Vec<CustomField>,
    /// Ids of the account's groups, brands and ticket forms.
    groups: Vec<u64>,
    brands: Vec<u64>,
    forms: Vec<u64>,
    tickets: BTreeMap<u64, Ticket>,
    uploads: BTreeMap<String, Upload>,
    /// When each call of the last minute came.
    window: VecDeque<Instant>,
    counts: Counts,
    /// The share of calls that fail at random (chaos tests).
    fault_rate: f64,
    /// OAuth: the refresh token that works now, and the live access tokens with their ends.
    refresh_token: Option<String>,
    access_tokens: BTreeMap<String, Instant>,
    next_id: u64,
    /// A logical clock for `updated_at` (RFC 3339, one second a step), so order is exact.
    ticks: u64,
    agent_id: u64,
}

impl Inner {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn now_text(&mut self) -> String {
        self.ticks += 1;
        let t = time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_790_000_000 + self.ticks as i64);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct ZendeskSim {
    inner: Shared,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ZendeskSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ZendeskSim {
    pub async fn start(config: ZendeskSimConfig) -> std::io::Result<ZendeskSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let mut inner = Inner {
            config,
            users: BTreeMap::new(),
            ticket_fields: Vec::new(),
            user_fields: Vec::new(),
            groups: Vec::new(),
            brands: Vec::new(),
            forms: Vec::new(),
            tickets: BTreeMap::new(),
            uploads: BTreeMap::new(),
            window: VecDeque::new(),
            counts: Counts::default(),
            fault_rate: 0.0,
            refresh_token: None,
            access_tokens: BTreeMap::new(),
            next_id: 1000,
            ticks: 0,
            agent_id: 0,
        };
        inner.refresh_token = inner.config.oauth.as_ref().map(|o| o.refresh_token.clone());
        let agent_id = inner.next_id();
        let email = inner.config.email.clone();
        let updated_at = inner.now_text();
        inner.users.insert(
            agent_id,
            User {
                id: agent_id,
                name: "wa2crm integration".into(),
                role: "admin".into(),
                email: Some(email),
                phone: None,
                external_id: None,
                searchable_at: Instant::now(),
                updated_at,
                user_fields: BTreeMap::new(),
            },
        );
        inner.agent_id = agent_id;
        let inner = Arc::new(Mutex::new(inner));
        let app = routes::router(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ZendeskSim {
            inner,
            addr,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, this share of calls fails at random (see faults.rs).
    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.inner).fault_rate = rate.clamp(0.0, 1.0);
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts.clone()
    }

    pub fn users(&self) -> Vec<User> {
        lock(&self.inner).users.values().cloned().collect()
    }

    pub fn tickets(&self) -> Vec<Ticket> {
        lock(&self.inner).tickets.values().cloned().collect()
    }

    /// An end user the account already has, searchable at once (made long ago).
    pub fn add_user(&self, name: &str, phone: Option<&str>, external_id: Option<&str>) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        let updated_at = i.now_text();
        i.users.insert(
            id,
            User {
                id,
                name: name.into(),
                role: "end-user".into(),
                email: None,
                phone: phone.map(str::to_owned),
                external_id: external_id.map(str::to_owned),
                searchable_at: Instant::now(),
                updated_at,
                user_fields: BTreeMap::new(),
            },
        );
        id
    }

    /// A ticket the account already has for `requester_id`.
    pub fn add_ticket(&self, requester_id: u64, status: &str) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        let updated_at = i.now_text();
        i.tickets.insert(
            id,
            Ticket {
                id,
                requester_id,
                subject: "Existing ticket".into(),
                status: status.into(),
                tags: Vec::new(),
                comments: Vec::new(),
                updated_at,
                custom_fields: BTreeMap::new(),
                updates: VecDeque::new(),
            },
        );
        id
    }

    /// A user as the JSON Zendesk answers with.
    pub(crate) fn user_json(u: &User) -> Value {
        serde_json::json!({"id": u.id, "name": u.name, "role": u.role, "email": u.email,
            "phone": u.phone, "external_id": u.external_id, "updated_at": u.updated_at,
            "user_fields": u.user_fields})
    }

    /// A group, brand and ticket form the account has (admins make them in Admin Center).
    pub fn add_group(&self) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        i.groups.push(id);
        id
    }

    pub fn add_brand(&self) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        i.brands.push(id);
        id
    }

    pub fn add_form(&self) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        i.forms.push(id);
        id
    }

    /// A custom ticket field an admin made by hand.
    pub fn add_ticket_field(&self, title: &str, field_type: &str) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        i.ticket_fields.push(CustomField {
            id,
            field_type: field_type.into(),
            title: title.into(),
            key: None,
        });
        id
    }

    /// A custom user field an admin made by hand.
    pub fn add_user_field(&self, key: &str, field_type: &str) -> u64 {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        i.user_fields.push(CustomField {
            id,
            field_type: field_type.into(),
            title: key.into(),
            key: Some(key.into()),
        });
        id
    }

    pub fn ticket_fields(&self) -> Vec<CustomField> {
        lock(&self.inner).ticket_fields.clone()
    }

    pub fn user_fields(&self) -> Vec<CustomField> {
        lock(&self.inner).user_fields.clone()
    }

    /// Sets a user field as an agent would (a consent checkbox ticked).
    pub fn set_user_field(&self, user: u64, key: &str, value: Value) {
        if let Some(u) = lock(&self.inner).users.get_mut(&user) {
            u.user_fields.insert(key.into(), value);
        }
    }

    /// An admin deletes the user (their tickets stay, as Zendesk keeps a deleted requester's).
    pub fn delete_user(&self, user: u64) {
        lock(&self.inner).users.remove(&user);
    }

    /// An agent's public reply on the ticket.
    pub fn add_comment(&self, ticket: u64, body: &str) {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        let author_id = i.agent_id;
        let now = i.now_text();
        if let Some(t) = i.tickets.get_mut(&ticket) {
            t.comments.push(Comment {
                id,
                author_id,
                body: body.into(),
                html_body: redact::html_of(body),
                public: true,
                attachments: Vec::new(),
            });
            t.updated_at = now;
        }
    }

    /// An agent changes the ticket (solves it, say): its `updated_at` moves on.
    pub fn set_status(&self, ticket: u64, status: &str) {
        let mut i = lock(&self.inner);
        let now = i.now_text();
        if let Some(t) = i.tickets.get_mut(&ticket) {
            t.status = status.into();
            t.updated_at = now;
        }
    }
}
