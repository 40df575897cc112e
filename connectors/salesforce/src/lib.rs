//! The Salesforce connector.
//!
//! Where the data goes: one record of the configured custom object per media, upserted by its
//! external ID through sObject Collections, with the Contact looked up by its external ID, within
//! the org's daily API allocation. [`config`] is what the admin writes; [`auth`] logs in (JWT
//! bearer, refresh token, client credentials); [`api`] sends each call on the session.

pub mod api;
pub mod auth;
mod composite;
pub mod config;
mod erase;
mod expire;
mod files;
mod matching;
mod rules;
mod schema;
mod tasks;
mod writes;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use wa2crm_core::{
    CheckReport, Connector, ConnectorContext, Delivered, EraseReport, Error, MediaRecord, Phone,
    Plan, Result, TypedFactory,
};
use wa2crm_rest::engine::Engine;
use wa2crm_rest::pause::PauseGate;

use crate::rules::SalesforceRules;

pub use config::SalesforceConfig;

/// A Salesforce org wa2crm writes into.
pub struct Salesforce {
    pub name: String,
    /// Shared with `status` and other instances: senders matched to records, match counts.
    state: Arc<dyn wa2crm_core::StateStore>,
    pub config: SalesforceConfig,
    pub api: api::Api,
    /// Where `files = true` reads the files from.
    media: Option<Arc<dyn wa2crm_core::MediaSource>>,
}

impl Salesforce {
    pub async fn new(
        name: &str,
        config: SalesforceConfig,
        context: &ConnectorContext,
    ) -> Result<Self> {
        let api = connect(name, &config, context).await?;
        Ok(Salesforce {
            name: name.to_owned(),
            state: context.state.clone(),
            config,
            api,
            media: context.media.clone(),
        })
    }
}

/// The API client a configuration describes.
pub async fn connect(
    name: &str,
    config: &SalesforceConfig,
    context: &ConnectorContext,
) -> Result<api::Api> {
    if let Some((key, problem)) = config.validate().first() {
        return Err(Error::permanent(format!(
            "connectors.{name}.{key}: {problem}"
        )));
    }
    let http = wa2crm_rest::client::http_client(config.timeout())?;
    let source =
        auth::SessionSource::new(config, http.clone(), context.state.clone(), name).await?;
    let instance_url = Arc::clone(&source.instance_url);
    let account = config.account();
    let pause = PauseGate::load(name, context.state.clone(), &account, !context.check_only).await?;
    let sessions = Arc::new(auth::session_cache(
        source,
        Duration::from_secs(config.session_minutes * 60),
        context.state.clone(),
        name,
        &account,
        context.check_only,
    ));
    Ok(api::Api {
        engine: Engine {
            name: name.to_owned(),
            rules: SalesforceRules {
                daily_reserve: config.daily_reserve,
                // A pause an earlier run recorded is a usage pause (the others end with the process).
                usage_pause: Arc::new(AtomicBool::new(pause.current().is_some())),
            },
            http,
            credentials: sessions.clone(),
            pause,
            budget: None,
            slots: Some(Semaphore::new(config.max_concurrent)),
            meter: Default::default(),
        },
        sessions,
        instance_url,
        limits_look: tokio::sync::Mutex::new(()),
        data_path: config.data_path(),
    })
}

#[async_trait]
impl Connector for Salesforce {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        writes::MAX_RECORDS
    }

    /// Two batches in flight: Salesforce's latency hidden, a sender's Contact never created twice
    /// at once (a sender keeps to one lane).
    fn concurrency(&self) -> usize {
        2
    }

    fn linger(&self) -> Duration {
        Duration::from_millis(self.config.linger_ms)
    }

    async fn check(&self) -> Result<CheckReport> {
        match self.check_schema().await {
            // A login that fails is a problem to report, not an error of `check` itself.
            Err(e) => Ok(CheckReport {
                problems: vec![format!("connectors.{}: {}", self.name, e.message())],
                ..CheckReport::default()
            }),
            ok => ok,
        }
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

    /// The record in Lightning, on the instance the session opened (unknown before one did).
    fn record_url(&self, delivered: &wa2crm_core::Delivered) -> Option<String> {
        let crm_id = delivered.crm_id.as_str();
        if !(crm_id.len() == 15 || crm_id.len() == 18)
            || !crm_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        let instance = self.api.instance_url.read().ok()?.clone()?;
        instance
            .join(&format!("lightning/r/{crm_id}/view"))
            .ok()
            .map(String::from)
    }
}

/// Builds `type = "salesforce"` connectors.
pub struct SalesforceFactory;

#[async_trait]
impl TypedFactory for SalesforceFactory {
    type Config = SalesforceConfig;

    async fn build_typed(
        &self,
        name: &str,
        config: SalesforceConfig,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>> {
        Ok(Arc::new(Salesforce::new(name, config, context).await?))
    }
}

#[cfg(test)]
mod tests;
