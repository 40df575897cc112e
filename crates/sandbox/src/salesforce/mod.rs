//! A Salesforce simulator (work in progress: the OAuth token endpoint and sessions so far).
//!
//! Token endpoint (`POST /services/oauth2/token`, form-encoded):
//! - JWT bearer: the assertion's RS256 signature is checked against the connected app's
//!   certificate (public key), and its claims as Salesforce checks them: `iss` = the consumer key,
//!   `sub` = a pre-authorized user, `aud` = the login host, `exp` in the future and at most
//!   3 minutes away. Answers carry no `refresh_token`, `issued_at` or `signature`.
//! - Refresh token, optionally rotating (the old one dies with each refresh).
//! - Client credentials.
//!
//! Failures answer 400 with `{"error": "invalid_grant", "error_description": …}` in Salesforce's
//! words. Answers have no `expires_in`: a session simply stops working after its lifetime, and
//! API calls then answer 401 `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`.
//! Every API answer carries `Sforce-Limit-Info: api-usage=N/M`; past the daily allocation calls
//! answer 403 REQUEST_LIMIT_EXCEEDED.

mod composite;
pub mod model;
mod routes;
mod search;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The connected app and the org the simulator plays.
#[derive(Debug, Clone)]
pub struct SalesforceSimConfig {
    pub client_id: String,
    /// For the refresh-token and client-credentials flows.
    pub client_secret: String,
    /// The certificate's public key (PEM) that JWT assertions must be signed for.
    pub public_key_pem: String,
    /// Users pre-authorized for the JWT flow.
    pub usernames: Vec<String>,
    /// The `aud` JWT assertions must name; `None`: the simulator's own URL.
    pub audience: Option<String>,
    pub refresh_token: Option<String>,
    pub rotate_refresh_token: bool,
    /// How long a session works (the org's session timeout).
    pub session_ttl: Duration,
    /// The org's daily API allocation.
    pub daily_allocation: u64,
    /// The integration user's permission set, which FieldPermissions must name.
    pub permission_set: String,
    /// The org's id (`00D…`, in every session and the identity URL) and name.
    pub org_id: String,
    pub org_name: String,
}

/// The bundled sandbox key pair (crates/sandbox/keys): its public half, for the simulator.
pub const SANDBOX_PUBLIC_KEY: &str = include_str!("../../keys/salesforce-sandbox.pub.pem");
/// Its private half, for `wa2crm sandbox` and tests; it protects nothing.
pub const SANDBOX_PRIVATE_KEY: &str = include_str!("../../keys/salesforce-sandbox.key");

impl SalesforceSimConfig {
    /// A connected app with the sandbox certificate and one pre-authorized integration user.
    pub fn new(client_id: &str, username: &str) -> Self {
        SalesforceSimConfig {
            client_id: client_id.into(),
            client_secret: "sandbox-client-secret".into(),
            public_key_pem: SANDBOX_PUBLIC_KEY.into(),
            usernames: vec![username.into()],
            audience: None,
            refresh_token: None,
            rotate_refresh_token: false,
            session_ttl: Duration::from_secs(2 * 3600),
            daily_allocation: 100_000,
            permission_set: "0PSsim000000001AAA".into(),
            org_id: "00Dsim000000001AAA".into(),
            org_name: "wa2crm Sandbox Org".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// API calls answered (token endpoint excluded), counted against the daily allocation.
    pub api_calls: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub invalid_session: u64,
    /// The most logins ever in flight at once (1: single-flight held).
    pub max_concurrent_logins: u64,
    /// Calls carried out whose answer was never sent (random faults).
    pub hung: u64,
}

pub use model::FieldDef;

pub(crate) struct Inner {
    pub config: SalesforceSimConfig,
    pub org: model::Org,
    pub sessions: HashMap<String, Instant>,
    pub api_usage: u64,
    pub counts: Counts,
    pub logins_in_flight: u64,
    pub next: u64,
    /// The share of API calls that fail at random (chaos tests).
    pub fault_rate: f64,
}

pub struct SalesforceSim {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SalesforceSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock already failed; keep serving the others.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl SalesforceSim {
    pub async fn start(config: SalesforceSimConfig) -> std::io::Result<SalesforceSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let org = model::Org::new(&config.org_id, &config.org_name);
        let inner = Arc::new(Mutex::new(Inner {
            config,
            org,
            sessions: HashMap::new(),
            api_usage: 0,
            counts: Counts::default(),
            logins_in_flight: 0,
            next: 0,
            fault_rate: 0.0,
        }));
        // A trailing slash names the same resource (`/sobjects/Contact/`), as Salesforce takes it;
        // the path is trimmed before routing.
        let app = tower::Layer::layer(
            &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
            routes::router(inner.clone(), format!("http://{addr}")),
        );
        let server = tokio::spawn(async move {
            let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
            let _ = axum::serve(listener, app).await;
        });
        Ok(SalesforceSim {
            inner,
            addr,
            server,
        })
    }

    /// The `login_url` to configure (the simulator is also the instance).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every session ends now (the admin changed the timeout, or revoked them).
    pub fn expire_sessions(&self) {
        let now = Instant::now();
        for v in lock(&self.inner).sessions.values_mut() {
            *v = now;
        }
    }

    pub fn set_session_ttl(&self, ttl: Duration) {
        lock(&self.inner).config.session_ttl = ttl;
    }

    /// The refresh token the simulator accepts now (after rotations).
    pub fn current_refresh_token(&self) -> Option<String> {
        lock(&self.inner).config.refresh_token.clone()
    }

    pub fn revoke_refresh_token(&self) {
        lock(&self.inner).config.refresh_token = None;
    }

    /// From now on this share of API calls fails at random: 503 before the work is done, 503
    /// after it (the answer is lost, the write happened), or the session ends (401).
    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.inner).fault_rate = rate.clamp(0.0, 1.0);
    }

    pub fn set_api_usage(&self, used: u64) {
        lock(&self.inner).api_usage = used;
    }

    /// The org's API calls in the rolling 24 hours, as `Sforce-Limit-Info` reports them.
    pub fn api_usage(&self) -> u64 {
        lock(&self.inner).api_usage
    }

    /// Creates a custom object (in Salesforce: once, in Setup).
    pub fn add_object(&self, name: &str) {
        lock(&self.inner).org.add_object(name);
    }

    pub fn add_field(&self, object: &str, field: FieldDef) {
        lock(&self.inner).org.add_field(object, field);
    }

    /// A validation rule: records of `object` whose `field` equals `equals` are refused with
    /// FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`, one record at a time as Salesforce does.
    pub fn add_validation_rule(
        &self,
        object: &str,
        field: &str,
        equals: serde_json::Value,
        message: &str,
    ) {
        lock(&self.inner).org.rules.push(model::ValidationRule {
            object: object.into(),
            field: field.into(),
            equals,
            message: message.into(),
        });
    }

    /// A record as an admin enters it in Salesforce (no validation, searchable at once); its Id.
    pub fn add_record(&self, object: &str, fields: &[(&str, serde_json::Value)]) -> String {
        let values = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        lock(&self.inner).org.add_record(object, values)
    }

    /// How long records written through the API stay invisible to SOSL (default 60 s).
    pub fn set_search_lag(&self, lag: std::time::Duration) {
        lock(&self.inner).org.search_lag = lag;
    }

    /// Every record of an object, by Id.
    pub fn records(&self, object: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        lock(&self.inner)
            .org
            .objects
            .get(object)
            .map(|o| o.records.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Sets one field of one record, as a user editing it in Salesforce would.
    pub fn set_field(&self, object: &str, id: &str, field: &str, value: serde_json::Value) {
        if let Some(r) = lock(&self.inner)
            .org
            .objects
            .get_mut(object)
            .and_then(|o| o.records.get_mut(id))
        {
            r.insert(field.to_owned(), value);
        }
    }

    /// The record whose `field` holds `value`.
    pub fn find(
        &self,
        object: &str,
        field: &str,
        value: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.records(object)
            .into_iter()
            .find(|r| r.get(field).and_then(|v| v.as_str()) == Some(value))
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts.clone()
    }
}

#[cfg(test)]
mod tests;
