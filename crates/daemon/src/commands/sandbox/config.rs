//! The configuration the sandbox runs on, written as a file an admin can use: every command
//! (`check`, `status`, `provision`, `replay`, `erase`) works with it against the running
//! sandbox. The mapping, tag rules, consent policy and notifications are the admin's (or the
//! example's); everything that reaches the outside — credentials, URLs, the Salesforce key — is
//! the simulators'.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::{
    SANDBOX_ACCESS_TOKEN, SANDBOX_APP_SECRET, SANDBOX_D360_HEADER, SANDBOX_D360_HEADER_VALUE,
    SANDBOX_D360_KEY, SANDBOX_TWILIO_ACCOUNT, SANDBOX_TWILIO_TOKEN, SANDBOX_VERIFY_TOKEN,
};
use crate::config::{Consent, MappingView, PolicyConfig, TagRuleConfig};

/// Where the simulators and the daemon listen.
pub struct Endpoints {
    pub daemon: SocketAddr,
    pub graph: String,
    pub d360: String,
    pub twilio: String,
    /// The receiver of `[notifications.webhook]`, when the admin's configuration has one.
    pub notifications: Option<String>,
    /// The argon2 hash of the console's one-time password (user `sandbox`).
    pub console_hash: String,
}

/// The parts of the admin's configuration the sandbox keeps, in the file's form.
#[derive(Serialize)]
struct Kept<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [TagRuleConfig],
    policy: &'a PolicyConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    notifications: Option<Notifications<'a>>,
    connectors: BTreeMap<String, toml::Value>,
}

#[derive(Serialize)]
struct Notifications<'a> {
    webhook: Webhook<'a>,
}

#[derive(Serialize)]
struct Webhook<'a> {
    url: &'a str,
    secret: &'a str,
    kinds: Vec<wa2crm_core::MediaKind>,
    tags: &'a [String],
}

/// The sandbox's configuration text for `base` (the admin's or the example's), with the
/// connector tables the simulators answer to; a Salesforce key is written beside it.
pub fn compose(
    dir: &Path,
    at: &Endpoints,
    base: &MappingView,
    connectors: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> anyhow::Result<String> {
    let d = dir.display();
    let addr = at.daemon;
    let own = format!(
        r#"# wa2crm sandbox: the daemon on {addr}, WhatsApp and the CRMs simulated.
# Every command works with this file while the sandbox runs, e.g.
#   wa2crm check --config {d}/wa2crm.toml
[server]
listen = "{addr}"
public_url = "http://{addr}"
[queue]
url = "sqlite://{d}/queue.db"
workers = 4
[storage]
url = "file://{d}/media"
link_secret = "sandbox-link-secret-0123456789"
[media]
spool_dir = "{d}/spool"
[sources.meta]
app_secret = "{SANDBOX_APP_SECRET}"
verify_token = "{SANDBOX_VERIFY_TOKEN}"
access_token = "{SANDBOX_ACCESS_TOKEN}"
graph_url = "{graph}"
[sources.d360]
api_key = "{SANDBOX_D360_KEY}"
base_url = "{d360}"
webhook_header = "{SANDBOX_D360_HEADER}"
webhook_header_value = "{SANDBOX_D360_HEADER_VALUE}"
[sources.twilio]
account_sid = "{SANDBOX_TWILIO_ACCOUNT}"
auth_token = "{SANDBOX_TWILIO_TOKEN}"
webhook_url = "http://{addr}/webhooks/twilio"
api_url = "{twilio}"
[console]
enabled = true
on = "main"
users = {{ sandbox = "{console_hash}" }}
"#,
        console_hash = at.console_hash,
        graph = at.graph,
        d360 = at.d360,
        twilio = at.twilio,
    );
    let mut tables = BTreeMap::new();
    for (name, mut table) in connectors {
        // The key as a file beside the configuration, as an admin keeps it.
        if let Some(pem) = table
            .as_object_mut()
            .and_then(|t| t.remove("private_key"))
            .and_then(|k| k.as_str().map(str::to_owned))
        {
            let key = dir.join(format!("connectors.{name}.key"));
            write_private(&key, &pem)?;
            table["private_key_file"] = key.display().to_string().into();
        }
        let table = toml::Value::try_from(&table)
            .with_context(|| format!("connectors.{name} cannot be written as TOML"))?;
        tables.insert(name, table);
    }
    let mut policy = PolicyConfig {
        consent: base.policy.consent,
        consent_allowlist: base.policy.consent_allowlist.clone(),
    };
    if policy.consent == Consent::CrmField {
        // The simulators' contacts do not exist before the samples arrive: nobody could consent.
        policy.consent = Consent::None;
    }
    let notifications = match (&base.notifications, &at.notifications) {
        (Some(w), Some(url)) => Some(Notifications {
            webhook: Webhook {
                url,
                secret: "sandbox-notification-secret-0123",
                kinds: w.kinds.clone(),
                tags: &w.tags,
            },
        }),
        _ => None,
    };
    let kept = Kept {
        tags: &base.tags,
        policy: &policy,
        notifications,
        connectors: tables,
    };
    let kept = toml::to_string(&kept).context("the sandbox's configuration cannot be written")?;
    Ok(format!("{own}{kept}"))
}

/// Writes `text` readable by this user only: it holds (the sandbox's) credentials.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<PathBuf> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_owned())
}
