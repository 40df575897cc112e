//! A HubSpot simulator: the CRM v3 objects, properties and v4 associations endpoints wa2crm uses,
//! the OAuth v3 token endpoint with expiring access tokens and (optionally) rotating refresh
//! tokens, and HubSpot's rate limits, headers and error bodies (see [`gate`] and [`model`]).
//! Tests, benchmarks and `wa2crm sandbox` run the real connector against it.

mod gate;
pub mod model;
mod routes;
mod search;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use gate::Limits;
pub use model::{PropertyDef, Record, SimFile};
pub use routes::PORTAL_ID;

/// The OAuth app the simulator accepts refreshes from.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Access tokens live this long (HubSpot: `expires_in` = 1800 s).
    pub token_ttl: Duration,
    /// Each refresh hands out a new refresh token and retires the old one.
    pub rotate_refresh_token: bool,
}

#[derive(Debug, Clone)]
pub struct HubSpotSimConfig {
    /// A private-app token accepted as Bearer; `None` for an OAuth-only portal.
    pub private_token: Option<String>,
    pub oauth: Option<OAuthApp>,
    /// Granted scopes; every call needs its own.
    pub scopes: Vec<String>,
    pub limits: Limits,
}

/// Every scope wa2crm may need.
pub const ALL_SCOPES: [&str; 9] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.objects.custom.read",
    "crm.objects.custom.write",
    "crm.schemas.custom.read",
    "crm.schemas.custom.write",
    "files",
];

impl HubSpotSimConfig {
    /// A Starter portal with a private-app token: 100 requests per 10 s, 250,000 a day.
    pub fn private_app(token: &str) -> Self {
        HubSpotSimConfig {
            private_token: Some(token.into()),
            oauth: None,
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            limits: Limits {
                max_per_interval: 100,
                interval: Duration::from_secs(10),
                daily: Some(250_000),
            },
        }
    }

    /// An OAuth app: 100 requests per 10 s and no daily limit.
    pub fn oauth(app: OAuthApp) -> Self {
        HubSpotSimConfig {
            private_token: None,
            oauth: Some(app),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            limits: Limits {
                max_per_interval: 100,
                interval: Duration::from_secs(10),
                daily: None,
            },
        }
    }
}

/// An answer the simulator gives the next API call instead of the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// That status with HubSpot's error body (500: "Internal Error", 502/503/504).
    Status(u16),
    /// A 429 naming this policy (`TEN_SECONDLY_ROLLING`, `SECONDLY`, `DAILY`).
    RateLimit(&'static str),
    /// A 401 EXPIRED_AUTHENTICATION, as when a token expires on its way to HubSpot.
    ExpiredToken,
    /// The call is carried out and its answer never sent: only the caller's timeout ends it.
    Hang,
}

/// What the simulator has served, for tests and benchmarks that count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// API calls admitted (everything but the token endpoint), by `METHOD route`.
    pub calls: BTreeMap<String, u64>,
    pub too_many_requests: u64,
    pub unauthorized: u64,
    /// API calls answered 503 during an outage.
    pub refused_in_outage: u64,
    /// Calls carried out whose answer was never sent (`Fault::Hang`).
    pub hung: u64,
    pub refreshes: u64,
    pub failed_refreshes: u64,
    /// The most refreshes ever in flight at once (1 means single-flight held).
    pub max_concurrent_refreshes: u64,
}

impl Counts {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

pub(crate) struct Inner {
    pub portal: model::Portal,
    pub gate: gate::Gate,
    pub oauth: Option<OAuthApp>,
    pub faults: VecDeque<Fault>,
    pub counts: Counts,
    pub refreshes_in_flight: u64,
    pub next_token: u64,
    /// Added to every API answer: HubSpot's batch calls take a few hundred milliseconds.
    pub latency: Duration,
    /// The share of API calls that fail at random (chaos tests), besides the injected faults.
    pub fault_rate: f64,
    /// HubSpot is down: every API call answers 503.
    pub outage: bool,
}

pub struct HubSpotSim {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for HubSpotSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A test that panicked while holding the lock already failed; keep serving the others.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl HubSpotSim {
    pub async fn start(config: HubSpotSimConfig) -> std::io::Result<HubSpotSim> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn start_on(
        addr: SocketAddr,
        config: HubSpotSimConfig,
    ) -> std::io::Result<HubSpotSim> {
        let inner = Arc::new(Mutex::new(Inner {
            portal: model::Portal::new(),
            gate: gate::Gate::new(config.private_token, config.scopes, config.limits),
            oauth: config.oauth,
            faults: VecDeque::new(),
            counts: Counts::default(),
            refreshes_in_flight: 0,
            next_token: 0,
            latency: Duration::ZERO,
            fault_rate: 0.0,
            outage: false,
        }));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = routes::router(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(HubSpotSim {
            inner,
            addr,
            server,
        })
    }

    /// The `base_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Defines a custom object type (HubSpot: created once through the schemas API).
    pub fn add_custom_object(&self, name: &str) {
        lock(&self.inner).portal.add_custom_type(name);
    }

    /// The web app host the account details answer (`app-eu1.hubspot.com` for a portal in the
    /// EU; anything, to test what a client trusts).
    pub fn set_ui_domain(&self, domain: &str) {
        lock(&self.inner).portal.ui_domain = domain.to_owned();
    }

    /// Creates a property directly, as an admin would in HubSpot's settings.
    pub fn define_property(&self, object: &str, def: PropertyDef) {
        let mut inner = lock(&self.inner);
        let t = model::canonical_type(object);
        if let Some(o) = inner.portal.types.get_mut(&t) {
            o.groups.insert(def.group.clone());
            o.properties.insert(def.name.clone(), def);
            o.reindex();
        }
    }

    pub fn property(&self, object: &str, name: &str) -> Option<PropertyDef> {
        let inner = lock(&self.inner);
        inner
            .portal
            .types
            .get(&model::canonical_type(object))?
            .properties
            .get(name)
            .cloned()
    }

    /// Every record of a type.
    pub fn records(&self, object: &str) -> Vec<Record> {
        lock(&self.inner).portal.records(object)
    }

    /// The record whose `property` holds `value`.
    pub fn find(&self, object: &str, property: &str, value: &str) -> Option<Record> {
        lock(&self.inner).portal.find(object, property, value)
    }

    /// Creates a record as a CRM user would (a contact entered by hand); returns its id.
    pub fn add_record(&self, object: &str, properties: &[(&str, &str)]) -> String {
        let mut inner = lock(&self.inner);
        let t = model::canonical_type(object);
        inner.portal.next_id += 1;
        let id = inner.portal.next_id;
        if let Some(o) = inner.portal.types.get_mut(&t) {
            o.write(
                id,
                properties
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
            // Entered before wa2crm came: long since indexed for search.
            o.written_at.remove(&id);
        }
        id.to_string()
    }

    /// How long a record written through the API stays out of search results (default
    /// [`search::DEFAULT_SEARCH_LAG`]).
    pub fn set_search_lag(&self, lag: Duration) {
        lock(&self.inner).portal.search_lag = lag;
    }

    /// Deletes a record as a CRM user would.
    pub fn remove_record(&self, object: &str, id: &str) {
        let mut inner = lock(&self.inner);
        let t = model::canonical_type(object);
        if let (Some(o), Ok(id)) = (inner.portal.types.get_mut(&t), id.parse()) {
            o.remove(id);
        }
    }

    /// Changes a record as a CRM user would (to check wa2crm does not overwrite it).
    pub fn set_property(&self, object: &str, id: &str, property: &str, value: &str) {
        let mut inner = lock(&self.inner);
        let t = model::canonical_type(object);
        let id = id.parse().unwrap_or(0);
        if let Some(o) = inner.portal.types.get_mut(&t)
            && o.records.contains_key(&id)
        {
            o.write(id, [(property.to_owned(), value.to_owned())].into());
        }
    }

    /// Ids of the `to` records associated with a `from` record.
    pub fn associated(&self, from: &str, id: &str, to: &str) -> Vec<String> {
        lock(&self.inner)
            .portal
            .associated(from, id.parse().unwrap_or(0), to)
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    }

    /// The association type ids between two records (202: note → contact).
    pub fn association_types(&self, from: &str, id: &str, to: &str, to_id: &str) -> Vec<u32> {
        lock(&self.inner)
            .portal
            .association_types(
                from,
                id.parse().unwrap_or(0),
                to,
                to_id.parse().unwrap_or(0),
            )
            .into_iter()
            .collect()
    }

    /// The next API calls answer with these faults, one each, in order.
    /// From now on this share of API calls fails with a random transient fault: 502, 503, a
    /// SECONDLY 429, or (OAuth) an expired token.
    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.inner).fault_rate = rate.clamp(0.0, 1.0);
    }

    /// HubSpot goes down (every API call answers 503) or comes back.
    pub fn set_outage(&self, down: bool) {
        lock(&self.inner).outage = down;
    }

    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner).faults.extend(faults);
    }

    /// Every OAuth access token handed out so far stops working now.
    pub fn expire_access_tokens(&self) {
        let now = std::time::Instant::now();
        for v in lock(&self.inner).gate.oauth_tokens.values_mut() {
            *v = now;
        }
    }

    /// The refresh token is revoked (the app was uninstalled): refreshes fail BAD_REFRESH_TOKEN.
    pub fn revoke_refresh_token(&self) {
        if let Some(app) = lock(&self.inner).oauth.as_mut() {
            app.refresh_token = format!("revoked-{}", app.refresh_token);
        }
    }

    /// The refresh token the simulator accepts now (after rotations).
    pub fn current_refresh_token(&self) -> Option<String> {
        lock(&self.inner)
            .oauth
            .as_ref()
            .map(|a| a.refresh_token.clone())
    }

    pub fn set_token_ttl(&self, ttl: Duration) {
        if let Some(app) = lock(&self.inner).oauth.as_mut() {
            app.token_ttl = ttl;
        }
    }

    /// Every API answer takes this long (HubSpot's batch calls: 100–500 ms).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner).latency = latency;
    }

    pub fn set_daily_used(&self, used: u64) {
        lock(&self.inner).gate.daily_used = used;
    }

    /// The largest batch accepted (HubSpot: 100; some endpoints fewer).
    pub fn set_batch_limit(&self, n: usize) {
        lock(&self.inner).portal.batch_limit = n;
    }

    pub fn set_scopes(&self, scopes: &[&str]) {
        lock(&self.inner).gate.scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Every file in HubSpot Files.
    pub fn files(&self) -> Vec<SimFile> {
        lock(&self.inner).portal.files.clone()
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts.clone()
    }

    /// Token refreshes being answered right now (each takes the simulator 30 ms).
    pub fn refreshes_in_flight(&self) -> u64 {
        lock(&self.inner).refreshes_in_flight
    }
}
