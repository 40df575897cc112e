//! The HubSpot connector: stored media into a HubSpot portal.
//!
//! Where the data goes: [`deliver`] upserts the sender's contact by the unique `contact_key`
//! property, then writes the media as the contact's latest-media properties, as a custom-object
//! record, and/or as a timeline note — through [`batch`] calls of up to 100 inputs, each sent by
//! [`api`] within the portal's limits with a live token ([`auth`]). [`schema`] compares the mapping
//! with the portal (`check`) and creates what is missing (`provision`); [`erase`] removes a
//! person's media data.

mod api;
mod auth;
mod batch;
pub mod config;
mod deliver;
mod erase;
mod expire;
mod files;
mod matching;
mod portal;
mod rules;
mod schema;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::rules::HubSpotRules;
use wa2crm_core::{
    CheckReport, Connector, ConnectorContext, Delivered, EraseReport, Error, MediaRecord, Phone,
    Plan, Result, TypedFactory,
};
use wa2crm_rest::engine::Engine;
use wa2crm_rest::limit::RequestBudget;
use wa2crm_rest::pause::PauseGate;

pub use config::HubSpotConfig;

/// Property name → value, as HubSpot takes them.
pub type Props = BTreeMap<String, String>;

/// CRM search requests a second: HubSpot's changelog says search "will remain limited to 4
/// requests per second" (some report 5; 4 is safe).
const SEARCH_PER_SECOND: u32 = 4;

pub struct HubSpot {
    name: String,
    /// Shared with `status` and other instances: match counts.
    state: Arc<dyn wa2crm_core::StateStore>,
    config: HubSpotConfig,
    api: api::Api,
    /// The tags property: whether it is a multi-checkbox, and its options as last seen.
    tag_options: Mutex<Option<(bool, BTreeSet<String>)>>,
    /// Where uploads read the files from.
    media: Option<Arc<dyn wa2crm_core::MediaSource>>,
    /// The configured tag rules' names: the options `provision` gives a new tags property.
    tag_names: Vec<String>,
    /// The portal's web app, for the console's links to contacts.
    portal: portal::PortalLinks,
}

impl HubSpot {
    pub async fn new(
        name: &str,
        config: HubSpotConfig,
        context: &ConnectorContext,
    ) -> Result<Self> {
        let problems = config.validate();
        if let Some((key, problem)) = problems.first() {
            return Err(Error::permanent(format!(
                "connectors.{name}.{key}: {problem}"
            )));
        }
        let http = wa2crm_rest::client::http_client(config.timeout())?;
        let account = config.account();
        let base = reqwest::Url::parse(&format!("{}/", config.base_url.trim_end_matches('/')))
            .map_err(|e| Error::permanent(format!("connectors.{name}.base_url: {e}")))?;
        let auth = match config.auth() {
            Some(config::AuthConfig::Token(t)) => auth::Auth::Static(t.clone()),
            Some(config::AuthConfig::OAuth {
                client_id,
                client_secret,
                refresh_token,
            }) => {
                let token_url = base
                    .join("oauth/v3/token")
                    .map_err(|e| Error::permanent(format!("connectors.{name}.base_url: {e}")))?;
                let cache = wa2crm_rest::oauth::refresh_cache(
                    wa2crm_rest::oauth::RefreshClient {
                        http: http.clone(),
                        token_url,
                        client_id,
                        client_secret,
                        refresh_token,
                    },
                    auth::REFRESH,
                    context.state.clone(),
                    name,
                    &account,
                    context.check_only,
                )
                .await?;
                auth::Auth::OAuth(cache)
            }
            None => {
                return Err(Error::permanent(format!(
                    "connectors.{name}: no credentials"
                )));
            }
        };
        let utc_offset = config
            .utc_offset()
            .map_err(|e| Error::permanent(format!("connectors.{name}.portal_utc_offset: {e}")))?;
        let auth = Arc::new(auth);
        let api = api::Api {
            base,
            auth: auth.clone(),
            engine: Engine {
                name: name.to_owned(),
                rules: HubSpotRules {
                    oauth: auth.is_oauth(),
                    daily_reserve: config.daily_reserve,
                    utc_offset,
                },
                http,
                credentials: auth,
                pause: PauseGate::load(name, context.state.clone(), &account, !context.check_only)
                    .await?,
                // Shared with every instance on the same queue database: one portal, one quota.
                budget: Some(
                    RequestBudget::new(config.requests_per_10s, Duration::from_secs(10))
                        .shared(context.state.clone(), name),
                ),
                slots: None,
                meter: Default::default(),
            },
            search_budget: RequestBudget::new(SEARCH_PER_SECOND, Duration::from_secs(1))
                .shared(context.state.clone(), &format!("{name}/search")),
        };
        Ok(HubSpot {
            name: name.to_owned(),
            state: context.state.clone(),
            config,
            api,
            tag_options: Mutex::new(None),
            media: context.media.clone(),
            tag_names: context.tag_names.clone(),
            portal: portal::PortalLinks::load(
                name,
                context.state.clone(),
                &account,
                !context.check_only,
            )
            .await?,
        })
    }

    /// How many OAuth refreshes this connector made (for tests and the sandbox).
    pub fn refreshes(&self) -> u64 {
        self.api.auth.refreshes()
    }
}

#[async_trait]
impl Connector for HubSpot {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        batch::MAX_BATCH
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    fn linger(&self) -> Duration {
        Duration::from_millis(self.config.linger_ms)
    }

    fn rate_bound(&self) -> bool {
        self.api
            .engine
            .budget
            .as_ref()
            .is_some_and(RequestBudget::saturated)
    }

    async fn check(&self) -> Result<CheckReport> {
        self.check_schema().await
    }

    async fn provision(&self, dry_run: bool) -> Result<Plan> {
        self.provision_schema(dry_run).await
    }

    async fn deliver(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
        self.deliver_batch(batch).await
    }

    async fn erase(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport> {
        self.erase_person(subject, dry_run).await
    }

    async fn expire(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport> {
        self.expire_media(records, delete, dry_run).await
    }

    async fn consent(&self, subject: &Phone) -> Result<Option<bool>> {
        self.consent_of(subject).await
    }

    fn usage(&self) -> Option<wa2crm_core::Usage> {
        Some(self.api.engine.usage())
    }

    /// The contact the media is on, in the portal's web app (known after a first delivery).
    fn record_url(&self, delivered: &Delivered) -> Option<String> {
        self.portal.contact_url(delivered.contact.as_deref()?)
    }
}

/// Builds `type = "hubspot"` connectors.
pub struct HubSpotFactory;

#[async_trait]
impl TypedFactory for HubSpotFactory {
    type Config = HubSpotConfig;

    async fn build_typed(
        &self,
        name: &str,
        config: HubSpotConfig,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>> {
        Ok(Arc::new(HubSpot::new(name, config, context).await?))
    }
}

#[cfg(test)]
mod tests;
