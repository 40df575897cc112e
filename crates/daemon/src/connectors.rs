//! The CRM connectors a configuration names, built through the registry of connector crates, and
//! which of them serve which WhatsApp number (`[[routes]]`).

use std::collections::BTreeMap;
use std::sync::Arc;

use wa2crm_core::{
    Connector, ConnectorContext, ConnectorFactory, ConnectorRegistry, MediaEvent, MediaSource,
    StateStore,
};

use crate::config::{Config, RouteConfig};

/// Every connector type this build can construct.
pub fn registry() -> ConnectorRegistry {
    let mut r = ConnectorRegistry::new();
    r.register(Arc::new(wa2crm_hubspot::HubSpotFactory));
    r.register(Arc::new(wa2crm_salesforce::SalesforceFactory));
    r.register(Arc::new(wa2crm_zendesk::ZendeskFactory));
    r.register(Arc::new(wa2crm_zoho::ZohoFactory));
    r
}

/// The factory a connector table's `type` names, if this build has one.
pub fn factory_of<'r>(
    registry: &'r ConnectorRegistry,
    table: &serde_json::Value,
) -> Option<&'r Arc<dyn ConnectorFactory>> {
    registry.get(type_of(table))
}

/// A connector table's `type`: the one key the daemon reads from a table itself, to pick the
/// crate that reads the rest.
pub fn type_of(table: &serde_json::Value) -> &str {
    table.get("type").and_then(|t| t.as_str()).unwrap_or("")
}

/// The context connectors of `config` are built with: the state store, the stored files (for
/// uploads), the tag rules' names.
pub fn context(
    config: &Config,
    state: Arc<dyn StateStore>,
    media: Option<Arc<dyn MediaSource>>,
) -> ConnectorContext {
    let mut tag_names: Vec<String> = config.tags.iter().map(|t| t.name.clone()).collect();
    tag_names.sort();
    tag_names.dedup();
    ConnectorContext::new(state)
        .with_media(media)
        .with_tag_names(tag_names)
}

/// Builds each configured connector, each with its own result: `check` goes on with the others
/// when one cannot be built.
pub async fn build_each(
    config: &Config,
    context: &ConnectorContext,
) -> Vec<(String, anyhow::Result<Arc<dyn Connector>>)> {
    let registry = registry();
    let mut out = Vec::new();
    for (name, table) in &config.connectors {
        let kind = type_of(table);
        let built = match registry.get(kind) {
            None => Err(anyhow::anyhow!(
                "connectors.{name}: the {kind} connector is not available in this version of \
                 wa2crm; remove [connectors.{name}] (and its routes) to run without it"
            )),
            Some(factory) => factory
                .build(name, table, context)
                .await
                .map_err(|e| anyhow::anyhow!("{e}")),
        };
        out.push((name.clone(), built));
    }
    out
}

/// Builds every configured connector. A type the config accepts but this build cannot construct
/// is an error now, not jobs that wait forever.
pub async fn build_all(
    config: &Config,
    state: Arc<dyn StateStore>,
    media: Option<Arc<dyn MediaSource>>,
) -> anyhow::Result<BTreeMap<String, Arc<dyn Connector>>> {
    let context = context(config, state, media);
    let mut out = BTreeMap::new();
    for (name, built) in build_each(config, &context).await {
        out.insert(name, built?);
    }
    Ok(out)
}

/// Which connectors receive an event: those of the first route matching its source and number
/// (`*`: any number of that source), otherwise all of them.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<(String, String, Vec<String>)>,
    all: Vec<String>,
}

impl Routes {
    pub fn new(routes: &[RouteConfig], all: impl IntoIterator<Item = String>) -> Self {
        Routes {
            routes: routes
                .iter()
                .map(|r| {
                    let number = r.number.trim();
                    // Twilio's numbers as they arrive (+E164), however the admin wrote them.
                    let number = match (r.source, wa2crm_core::Phone::parse(number)) {
                        (wa2crm_core::Source::Twilio, Ok(p)) => p.as_str().to_owned(),
                        _ => number.to_owned(),
                    };
                    (r.source.as_str().to_owned(), number, r.connectors.clone())
                })
                .collect(),
            all: all.into_iter().collect(),
        }
    }

    pub fn for_event(&self, e: &MediaEvent) -> &[String] {
        self.routes
            .iter()
            .find(|(source, number, _)| {
                source == e.source.as_str() && (*number == e.phone_number_id || number == "*")
            })
            .map(|(_, _, c)| c.as_slice())
            .unwrap_or(&self.all)
    }
}
