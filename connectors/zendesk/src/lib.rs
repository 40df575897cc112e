//! The Zendesk Support connector: customers' media as internal notes on their tickets.
//!
//! Where the data goes: [`deliver`] finds the sender among the account's end users by phone
//! ([`requester`]) or makes them, picks their ticket by `ticket_policy` ([`tickets`]) and adds the
//! media of one sender as one internal note ([`note`]), with the files uploaded when asked, the
//! tag rules' tags and the mapped custom ticket fields ([`fields`]) — each call sent by [`api`]
//! through the shared engine under [`rules`], with [`auth`]'s credentials. [`schema`] is `check`
//! and `provision`; [`erase`] is erasure, retention and consent, by redaction ([`redaction`]).
//! Facts and their sources: docs/vendors/zendesk.md.

pub mod api;
pub mod auth;
pub mod config;
pub mod deliver;
mod erase;
pub mod fields;
pub mod note;
pub mod redaction;
pub mod requester;
pub mod rules;
mod schema;
pub mod tickets;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wa2crm_core::{
    CheckReport, Connector, ConnectorContext, Delivered, EraseReport, Error, MediaRecord,
    MediaSource, Phone, Plan, Result, StateStore, TypedFactory,
};
use wa2crm_rest::limit::RequestBudget;

pub use config::ZendeskConfig;
pub use rules::ZendeskRules;

use crate::fields::CustomField;

/// How many media one delivery takes: grouped by sender, one update each.
const MAX_BATCH: usize = 50;

pub struct Zendesk {
    name: String,
    state: Arc<dyn StateStore>,
    config: ZendeskConfig,
    api: api::Api,
    media: Option<Arc<dyn MediaSource>>,
    /// The account's custom ticket fields as last read.
    ticket_fields: tokio::sync::Mutex<Option<Vec<CustomField>>>,
}

impl Zendesk {
    pub async fn new(
        name: &str,
        config: ZendeskConfig,
        context: &ConnectorContext,
    ) -> Result<Self> {
        let api = api::connect(name, &config, context).await?;
        Ok(Zendesk {
            name: name.to_owned(),
            state: context.state.clone(),
            config,
            api,
            media: context.media.clone(),
            ticket_fields: tokio::sync::Mutex::new(None),
        })
    }

    fn deliverer<'a>(&'a self, fields: &'a [CustomField]) -> deliver::Deliverer<'a> {
        deliver::Deliverer {
            name: &self.name,
            config: &self.config,
            api: &self.api,
            state: self.state.clone(),
            country: self.config.country(),
            media: self.media.clone(),
            fields,
        }
    }

    async fn deliver_batch(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
        let fields = match self.fields_for_mapping().await {
            Ok(f) => f,
            Err(e) => return batch.iter().map(|_| Err(e.for_another())).collect(),
        };
        let deliverer = self.deliverer(&fields);
        let groups = deliver::by_sender(batch);
        // Senders are independent: their updates overlap (the account's budget bounds the rate).
        let results = futures_util::future::join_all(
            groups
                .iter()
                .map(|(sender, media)| deliverer.deliver_sender(sender, media)),
        )
        .await;
        let mut by_id = std::collections::BTreeMap::new();
        for ((_, media), result) in groups.iter().zip(results) {
            match result {
                Ok(delivered) => {
                    for (m, d) in media.iter().zip(delivered) {
                        by_id.insert(m.message_id.as_str(), Ok(d));
                    }
                }
                Err(e) => {
                    for m in media {
                        by_id.insert(m.message_id.as_str(), Err(e.for_another()));
                    }
                }
            }
        }
        batch
            .iter()
            .map(|r| {
                by_id
                    .remove(r.message_id.as_str())
                    .unwrap_or_else(|| Err(Error::transient("the media was not delivered")))
            })
            .collect()
    }

    /// The custom ticket fields, read again once when a mapped title is not among them (an
    /// admin may have just made it); still missing, the batch fails for the admin to act on.
    async fn fields_for_mapping(&self) -> Result<Vec<CustomField>> {
        let mut fields = self.ticket_fields(false).await?;
        let missing = |fields: &[CustomField]| {
            self.config
                .fields
                .iter()
                .find_map(|(a, title)| fields::find(fields, title).err().map(|e| (a, e)))
        };
        if missing(&fields).is_some() {
            fields = self.ticket_fields(true).await?;
        }
        match missing(&fields) {
            Some((attribute, e)) => Err(Error::permanent(format!(
                "connectors.{}.fields.{attribute}: {e}",
                self.name
            ))),
            None => Ok(fields),
        }
    }
}

#[async_trait]
impl Connector for Zendesk {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn concurrency(&self) -> usize {
        2
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
        self.check_account().await
    }

    async fn provision(&self, dry_run: bool) -> Result<Plan> {
        self.provision_account(dry_run).await
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

    /// The ticket in Zendesk's agent workspace (`crm_id` is the ticket's id).
    fn record_url(&self, delivered: &wa2crm_core::Delivered) -> Option<String> {
        let id: u64 = delivered.crm_id.parse().ok()?;
        self.api
            .url(&format!("agent/tickets/{id}"))
            .ok()
            .map(String::from)
    }
}

/// Builds `type = "zendesk"` connectors.
pub struct ZendeskFactory;

#[async_trait]
impl TypedFactory for ZendeskFactory {
    type Config = ZendeskConfig;

    async fn build_typed(
        &self,
        name: &str,
        config: ZendeskConfig,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>> {
        Ok(Arc::new(Zendesk::new(name, config, context).await?))
    }
}

#[cfg(test)]
mod tests;
