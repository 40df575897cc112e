//! A Zoho CRM simulator (API v8). Sources are in the "Zoho CRM" section of README.md and in
//! crates/sandbox/README.md; where Zoho's reference is unclear the least forgiving reading is
//! taken and said so next to the behaviour.
//!
//! Two listeners, as Zoho has two hosts: the accounts server ([`ZohoSim::accounts_url`], the
//! data centre's `accounts.zoho.*`) answers only `POST /oauth/v2/token`, and the API domain
//! ([`ZohoSim::api_url`], `www.zohoapis.*`) answers only `/crm/v8/…`. The token answer names the
//! API domain (`api_domain`); a call sent to the accounts host is 404.
//!
//! - Tokens (accounts.rs): the refresh-token grant answers an access token for an hour and
//!   `api_domain`; a refresh token mints at most 10 access tokens in 10 minutes, and past that
//!   Zoho answers **200** with `{"error": "Access Denied"}`; a dead refresh token is 200 with
//!   `{"error": "invalid_code"}`. At most 15 access tokens live per refresh token (the 16th retires
//!   the oldest). Calls take `Authorization: Zoho-oauthtoken …` only (`Bearer` is 401
//!   INVALID_TOKEN, strict).
//! - Limits (gate.rs): credits per rolling 24 hours (1 a call; COQL with LIMIT over 200 costs 2 or
//!   3), and at most `max_concurrent` calls in flight; past either, 429 TOO_MANY_REQUESTS without
//!   `Retry-After`. Every answer carries `X-RATELIMIT-LIMIT` and `X-RATELIMIT-REMAINING` (the
//!   credits) unless `credit_headers` is off.
//! - Scopes (gate.rs): a call outside the token's scopes is 401 OAUTH_SCOPE_MISMATCH.
//! - Records (records.rs): insert, update, upsert (≤ 100 a call, by `duplicate_check_fields`,
//!   which must be unique fields), delete (≤ 100 ids), every record checked against its module's
//!   fields and types; results per record with Zoho's codes; 200 when all succeed, 207 when some
//!   do, 400 when none does.
//! - COQL (coql.rs): `select … from … where … limit`, `in` with up to 50 values, up to 25
//!   criteria, more than two of them only with brackets; no match is 204 with no body.
//! - Settings (settings.rs): modules, fields (listed and created), the current user, the org.
//! - Notes and attachments (records.rs): notes on a parent record; files up to 20 MB attached to a
//!   record, listed (with `fields`) and deleted.
//! - Faults (gate.rs), for chaos tests: a share of calls refused before the work, or done and then
//!   answered 500 or never answered.

mod accounts;
mod coql;
mod gate;
mod records;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ZohoSimConfig {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// An access token's life (`expires_in`: 3600 s).
    pub token_ttl: Duration,
    /// The scopes the refresh token was granted.
    pub scopes: Vec<String>,
    /// Credits per rolling 24 hours (the edition's allowance).
    pub credits_per_day: u64,
    /// Calls in flight at once (Free 5, Standard 10, Professional 15, Enterprise 20, Ultimate 25).
    pub max_concurrent: usize,
    /// Whether answers carry `X-RATELIMIT-LIMIT` and `X-RATELIMIT-REMAINING`.
    pub credit_headers: bool,
    /// The largest attachment (20 MB).
    pub attachment_limit: u64,
}

impl ZohoSimConfig {
    pub fn new(client_id: &str, client_secret: &str, refresh_token: &str) -> Self {
        ZohoSimConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            refresh_token: refresh_token.into(),
            token_ttl: Duration::from_secs(3600),
            scopes: [
                "ZohoCRM.modules.ALL",
                "ZohoCRM.settings.ALL",
                "ZohoCRM.coql.READ",
                "ZohoCRM.users.READ",
                "ZohoCRM.org.READ",
            ]
            .map(String::from)
            .to_vec(),
            credits_per_day: 100_000,
            max_concurrent: 15,
            credit_headers: true,
            attachment_limit: 20 * 1024 * 1024,
        }
    }
}

/// What the simulator was asked, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls to the API domain (every one, answered or refused).
    pub api_calls: u64,
    pub credits_used: u64,
    pub too_many_requests: u64,
    pub over_concurrency: u64,
    pub unauthenticated: u64,
    pub refreshes: u64,
    /// Refreshes answered "Access Denied" (over 10 in 10 minutes) or `invalid_code`.
    pub refused_refreshes: u64,
    pub max_in_flight: usize,
    pub upserts: u64,
    pub coql: u64,
    pub faults: u64,
    pub hung: u64,
}

/// A field of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub api_name: String,
    /// `text`, `textarea`, `website`, `integer`, `bigint`, `double`, `datetime`, `phone`,
    /// `email`, `boolean`, `lookup`, `multiselectpicklist`.
    pub data_type: String,
    pub unique: bool,
    pub mandatory: bool,
    pub custom: bool,
    /// For `lookup`: the module it points to.
    pub lookup: Option<String>,
    /// For `text`: the longest value.
    pub length: usize,
    /// For `multiselectpicklist`: the values it takes.
    pub pick_list: Vec<String>,
}

impl Field {
    pub fn new(api_name: &str, data_type: &str) -> Field {
        Field {
            api_name: api_name.into(),
            data_type: data_type.into(),
            unique: false,
            mandatory: false,
            custom: false,
            lookup: None,
            length: if data_type == "textarea" { 32_000 } else { 255 },
            pick_list: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Module {
    pub api_name: String,
    pub fields: Vec<Field>,
}

impl Module {
    pub fn field(&self, api_name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.api_name == api_name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub module: String,
    pub values: BTreeMap<String, Value>,
    pub modified: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    pub module: String,
    pub parent_id: String,
    pub file_name: String,
    pub size: u64,
}

pub(crate) struct Inner {
    config: ZohoSimConfig,
    modules: BTreeMap<String, Module>,
    records: BTreeMap<String, Record>,
    attachments: BTreeMap<String, Attachment>,
    /// The refresh token that works, and the access tokens it minted (newest last) with their ends.
    refresh_token: String,
    access_tokens: VecDeque<(String, Instant)>,
    /// When each refresh of the last ten minutes came.
    refresh_times: VecDeque<Instant>,
    /// Credits spent in the last 24 hours, oldest first.
    credits: VecDeque<(Instant, u64)>,
    in_flight: usize,
    counts: Counts,
    fault_rate: f64,
    /// Calls still to be refused as if other integrations held every concurrent slot.
    slots_taken_for: u64,
    next_id: u64,
    /// A logical clock for `Modified_Time`, so order is exact.
    ticks: u64,
    api_url: String,
}

impl Inner {
    /// Zoho's ids: 19 digits.
    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("5725767{:012}", self.next_id)
    }

    fn now_text(&mut self) -> String {
        self.ticks += 1;
        let t = time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_790_000_000 + self.ticks as i64);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    fn credits_used(&mut self, now: Instant) -> u64 {
        let day = Duration::from_secs(86_400);
        while self
            .credits
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= day)
        {
            self.credits.pop_front();
        }
        self.credits.iter().map(|(_, c)| c).sum()
    }
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The modules every org has, with the fields the connector meets.
fn standard_modules() -> BTreeMap<String, Module> {
    let person = |name: &str| {
        let mut last = Field::new("Last_Name", "text");
        last.mandatory = true;
        Module {
            api_name: name.into(),
            fields: vec![
                Field::new("First_Name", "text"),
                last,
                Field::new("Email", "email"),
                Field::new("Phone", "phone"),
                Field::new("Mobile", "phone"),
                Field::new("Description", "textarea"),
                Field::new("Modified_Time", "datetime"),
            ],
        }
    };
    let mut parent = Field::new("Parent_Id", "lookup");
    parent.mandatory = true;
    let notes = Module {
        api_name: "Notes".into(),
        fields: vec![
            Field::new("Note_Title", "text"),
            Field::new("Note_Content", "textarea"),
            parent,
            Field::new("Modified_Time", "datetime"),
        ],
    };
    [person("Contacts"), person("Leads"), notes]
        .into_iter()
        .map(|m| (m.api_name.clone(), m))
        .collect()
}

pub struct ZohoSim {
    inner: Shared,
    accounts_addr: SocketAddr,
    api_addr: SocketAddr,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ZohoSim {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

impl ZohoSim {
    pub async fn start(config: ZohoSimConfig) -> std::io::Result<ZohoSim> {
        let bind = || tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)));
        let (accounts, api) = (bind().await?, bind().await?);
        let (accounts_addr, api_addr) = (accounts.local_addr()?, api.local_addr()?);
        let inner = Arc::new(Mutex::new(Inner {
            refresh_token: config.refresh_token.clone(),
            config,
            modules: standard_modules(),
            records: BTreeMap::new(),
            attachments: BTreeMap::new(),
            access_tokens: VecDeque::new(),
            refresh_times: VecDeque::new(),
            credits: VecDeque::new(),
            in_flight: 0,
            counts: Counts::default(),
            fault_rate: 0.0,
            slots_taken_for: 0,
            next_id: 0,
            ticks: 0,
            api_url: format!("http://{api_addr}"),
        }));
        let accounts_app = accounts::router(inner.clone());
        let api_app = gate::api_router(inner.clone());
        let servers = vec![
            tokio::spawn(async move {
                let _ = axum::serve(accounts, accounts_app).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(api, api_app).await;
            }),
        ];
        Ok(ZohoSim {
            inner,
            accounts_addr,
            api_addr,
            servers,
        })
    }

    /// The data centre's accounts server (`https://accounts.zoho.eu`).
    pub fn accounts_url(&self) -> String {
        format!("http://{}", self.accounts_addr)
    }

    /// The API domain token answers name (`https://www.zohoapis.eu`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.inner).fault_rate = rate.clamp(0.0, 1.0);
    }

    /// The next `calls` calls are refused with the concurrency 429, as when the org's other
    /// integrations hold every slot (an instrument: a test need not race calls to see it).
    pub fn take_slots_for(&self, calls: u64) {
        lock(&self.inner).slots_taken_for = calls;
    }

    pub fn counts(&self) -> Counts {
        lock(&self.inner).counts.clone()
    }

    /// Credits left in the rolling 24 hours.
    pub fn credits_left(&self) -> u64 {
        let mut i = lock(&self.inner);
        let used = i.credits_used(Instant::now());
        i.config.credits_per_day.saturating_sub(used)
    }

    /// The records of a module, oldest first.
    pub fn records(&self, module: &str) -> Vec<Record> {
        lock(&self.inner)
            .records
            .values()
            .filter(|r| r.module == module)
            .cloned()
            .collect()
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        lock(&self.inner).attachments.values().cloned().collect()
    }

    pub fn module(&self, api_name: &str) -> Option<Module> {
        lock(&self.inner).modules.get(api_name).cloned()
    }

    /// A custom module an admin made (Setup → Customization → Modules), with its mandatory
    /// `Name` field.
    pub fn add_module(&self, api_name: &str) {
        let mut name = Field::new("Name", "text");
        name.mandatory = true;
        lock(&self.inner).modules.insert(
            api_name.into(),
            Module {
                api_name: api_name.into(),
                fields: vec![name, Field::new("Modified_Time", "datetime")],
            },
        );
    }

    /// A field an admin made by hand.
    pub fn add_field(&self, module: &str, field: Field) {
        if let Some(m) = lock(&self.inner).modules.get_mut(module) {
            m.fields.retain(|f| f.api_name != field.api_name);
            m.fields.push(field);
        }
    }

    /// A record the org already has (a Contact or Lead someone entered).
    pub fn add_record(&self, module: &str, values: Value) -> String {
        let mut i = lock(&self.inner);
        let id = i.next_id();
        let modified = i.now_text();
        let values = values
            .as_object()
            .map(|o| o.clone().into_iter().collect())
            .unwrap_or_default();
        i.records.insert(
            id.clone(),
            Record {
                id: id.clone(),
                module: module.into(),
                values,
                modified,
            },
        );
        id
    }

    /// A record deleted in Zoho (an admin merged or removed it).
    pub fn delete_record(&self, id: &str) {
        lock(&self.inner).records.remove(id);
    }

    /// Sets a value as a user would (a consent checkbox ticked).
    pub fn set_value(&self, id: &str, field: &str, value: Value) {
        let mut i = lock(&self.inner);
        let modified = i.now_text();
        if let Some(r) = i.records.get_mut(id) {
            r.values.insert(field.into(), value);
            r.modified = modified;
        }
    }

    /// The refresh token an admin revoked: refreshes answer `invalid_code` from now on.
    pub fn revoke_refresh_token(&self) {
        lock(&self.inner).refresh_token = String::new();
    }

    /// Spends credits as the org's other integrations do.
    pub fn spend_credits(&self, credits: u64) {
        lock(&self.inner)
            .credits
            .push_back((Instant::now(), credits));
    }
}
