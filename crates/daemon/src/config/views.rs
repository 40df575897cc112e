//! The parts of a configuration a command can use without the rest: what `status`, `replay`
//! and `retention --dry-run` read (no secret), and what the sandbox takes of an admin's file
//! (the mapping, before any account exists).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::explain::{ConfigError, ConfigErrors};
use super::explain::{humane, typed};
use super::load::{layered, read};
use super::{
    LoggingConfig, PolicyConfig, QueueConfig, RetentionConfig, StorageConfig, TagRuleConfig,
};

/// What `status`, `replay` and `retention --dry-run` read: the queue, the connectors' names,
/// logging, the storage and the retention policy. They need no secret, and a problem elsewhere
/// in the file must not hide the queue from whoever investigates it; an unreadable credentials
/// directory is skipped (it may hold `queue.url`, then the queue says so).
#[derive(Debug, Default)]
pub struct QueueView {
    pub queue: QueueConfig,
    pub connectors: Vec<String>,
    pub logging: LoggingConfig,
    pub storage: StorageConfig,
    pub retention: Option<RetentionConfig>,
}

pub fn load_queue_view(path: &Path, credentials: &[PathBuf]) -> Result<QueueView, ConfigErrors> {
    let text = read(path)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dirs: Vec<&Path> = credentials.iter().map(PathBuf::as_path).collect();
    let layered = match layered(&text, env.clone(), &dirs) {
        Ok(l) => l,
        // Credentials unreadable here (another user's directory): the file and environment.
        Err(_) if !dirs.is_empty() => layered(&text, env, &[])?,
        Err(e) => return Err(e),
    };
    fn section<T: serde::de::DeserializeOwned>(
        layered: &config::Config,
        key: &str,
        text: &str,
    ) -> Result<Option<T>, ConfigErrors> {
        match layered.get::<T>(key) {
            Ok(v) => Ok(Some(v)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(e) => Err(ConfigErrors(vec![humane(&e.to_string())]).located(text)),
        }
    }
    Ok(QueueView {
        queue: section(&layered, "queue", &text)?.unwrap_or_default(),
        connectors: layered
            .get::<BTreeMap<String, serde_json::Value>>("connectors")
            .map(|c| c.into_keys().collect())
            .unwrap_or_default(),
        logging: section(&layered, "logging", &text)?.unwrap_or_default(),
        storage: section(&layered, "storage", &text)?.unwrap_or_default(),
        retention: section(&layered, "retention", &text)?,
    })
}

/// What the sandbox takes from a configuration: the mapping and what decides what is written.
/// No source and no secret is needed: an admin tries the mapping before having the accounts.
#[derive(Debug, Default)]
pub struct MappingView {
    pub tags: Vec<TagRuleConfig>,
    pub policy: PolicyConfig,
    /// `[notifications.webhook]`'s filters, when there is one.
    pub notifications: Option<NotifyFilter>,
    pub connectors: BTreeMap<String, serde_json::Value>,
    pub has_routes: bool,
}

/// Which media a notification webhook announces.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NotifyFilter {
    #[serde(default)]
    pub kinds: Vec<wa2crm_core::MediaKind>,
    #[serde(default)]
    pub tags: Vec<String>,
}

pub fn load_mapping_view(
    path: &Path,
    credentials: &[PathBuf],
) -> Result<MappingView, ConfigErrors> {
    let text = read(path)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dirs: Vec<&Path> = credentials.iter().map(PathBuf::as_path).collect();
    mapping_view(&text, layered(&text, env, &dirs)?)
}

/// The same from TOML text alone (the bundled example).
pub fn load_mapping_view_str(toml: &str) -> Result<MappingView, ConfigErrors> {
    mapping_view(toml, layered(toml, HashMap::new(), &[])?)
}

fn mapping_view(text: &str, layered: config::Config) -> Result<MappingView, ConfigErrors> {
    let mut problems = Vec::new();
    let mut view = MappingView::default();
    match layered.get::<Vec<config::Value>>("tags") {
        Ok(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match typed::<TagRuleConfig>(item, &format!("tags[{i}]")) {
                    Ok(rule) => view.tags.push(rule),
                    Err(e) => problems.push(e),
                }
            }
        }
        Err(config::ConfigError::NotFound(_)) => {}
        Err(e) => problems.push(humane(&e.to_string())),
    }
    if let Ok(value) = layered.get::<config::Value>("policy") {
        match typed::<PolicyConfig>(value, "policy") {
            Ok(policy) => view.policy = policy,
            Err(e) => problems.push(e),
        }
    }
    if let Ok(value) = layered.get::<config::Value>("notifications.webhook") {
        // Only the filters: the URL and secret are the sandbox's own.
        let filter = value
            .into_table()
            .map(|mut t| {
                t.retain(|k, _| k == "kinds" || k == "tags");
                config::Value::from(t)
            })
            .map_err(|e| ConfigError::new("notifications.webhook", e.to_string()));
        match filter {
            Ok(value) => match typed::<NotifyFilter>(value, "notifications.webhook") {
                Ok(f) => view.notifications = Some(f),
                Err(e) => problems.push(e),
            },
            Err(e) => problems.push(e),
        }
    }
    match layered.get::<BTreeMap<String, serde_json::Value>>("connectors") {
        Ok(c) => view.connectors = c,
        Err(config::ConfigError::NotFound(_)) => {}
        Err(e) => problems.push(humane(&e.to_string())),
    }
    view.has_routes = layered
        .get::<Vec<config::Value>>("routes")
        .is_ok_and(|r| !r.is_empty());
    if problems.is_empty() {
        Ok(view)
    } else {
        Err(ConfigErrors(problems).located(text))
    }
}
