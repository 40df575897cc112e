//! The Zoho CRM connector.
//!
//! Where the data goes: [`deliver`] finds each sender's Contact or Lead ([`matching`]) or makes a
//! Contact, then upserts one record per media in the configured custom module, looked up to it;
//! when asked, a Note on the Contact ([`notes`]) and the file attached to the record
//! ([`files`]). Every call goes through [`api`] — the shared engine under [`rules`], with
//! [`auth`]'s tokens, to the API domain of the org's data centre. [`schema`] is `check` and
//! `provision`; [`erase`] is erasure, retention and consent. Facts and their sources: README.md,
//! "Zoho CRM".

pub mod api;
pub mod auth;
pub mod config;
pub mod deliver;
mod erase;
mod files;
pub mod matching;
pub mod notes;
mod org;
pub mod rules;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wa2crm_core::{
    CheckReport, Connector, ConnectorContext, Delivered, EraseReport, MediaRecord, MediaSource,
    Phone, Plan, Result, StateStore, TypedFactory,
};

pub use config::ZohoConfig;

use crate::deliver::ModuleField;

pub struct Zoho {
    name: String,
    state: Arc<dyn StateStore>,
    config: ZohoConfig,
    api: api::Api,
    media: Option<Arc<dyn MediaSource>>,
    /// The media module's fields as last read.
    module_fields: tokio::sync::Mutex<Option<Vec<ModuleField>>>,
    /// The org's web address, for the console's links to Contacts and Leads.
    org: org::OrgLinks,
}

impl Zoho {
    pub async fn new(name: &str, config: ZohoConfig, context: &ConnectorContext) -> Result<Self> {
        let api = api::connect(name, &config, context).await?;
        let org =
            org::OrgLinks::load(name, context.state.clone(), &config, !context.check_only).await?;
        Ok(Zoho {
            name: name.to_owned(),
            state: context.state.clone(),
            config,
            api,
            media: context.media.clone(),
            module_fields: tokio::sync::Mutex::new(None),
            org,
        })
    }
}

#[async_trait]
impl Connector for Zoho {
    fn name(&self) -> &str {
        &self.name
    }

    /// One upsert takes 100 records.
    fn max_batch(&self) -> usize {
        api::MAX_RECORDS
    }

    /// Two batches in flight: Zoho's latency hidden, a sender's Contact never made twice at once
    /// (a sender keeps to one lane).
    fn concurrency(&self) -> usize {
        2
    }

    fn linger(&self) -> Duration {
        Duration::from_millis(self.config.linger_ms)
    }

    async fn check(&self) -> Result<CheckReport> {
        match self.check_org().await {
            // Credentials that fail are a problem to report, not an error of `check` itself.
            Err(e) => Ok(CheckReport {
                problems: vec![format!("connectors.{}: {}", self.name, e.message())],
                ..CheckReport::default()
            }),
            ok => ok,
        }
    }

    async fn provision(&self, dry_run: bool) -> Result<Plan> {
        self.provision_org(dry_run).await
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

    /// The Contact or Lead the media is on, in the org's web app (known after a first
    /// delivery).
    fn record_url(&self, delivered: &Delivered) -> Option<String> {
        self.org.parent_url(delivered.contact.as_deref()?)
    }
}

/// Builds `type = "zoho"` connectors.
pub struct ZohoFactory;

#[async_trait]
impl TypedFactory for ZohoFactory {
    type Config = ZohoConfig;

    async fn build_typed(
        &self,
        name: &str,
        config: ZohoConfig,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>> {
        Ok(Arc::new(Zoho::new(name, config, context).await?))
    }
}

#[cfg(test)]
mod tests;
