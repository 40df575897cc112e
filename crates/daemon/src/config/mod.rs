//! The configuration file, as admins write it (docs/ARCHITECTURE.md, "The public contract";
//! every key in README, "Configuration reference").
//!
//! Loading ([`load`]) layers the TOML file, `WA2CRM__SECTION__KEY` environment variables and
//! systemd credential files; [`validate`] then checks everything without touching the network or
//! the disk, so that `wa2crm run` and `wa2crm check` report every problem at once, each naming its
//! key.

mod explain;
mod load;
mod validate;
mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use wa2crm_core::{MediaKind, Source};

pub use explain::{ConfigError, ConfigErrors};
pub use load::{DEFAULT_CREDENTIALS_DIR, credentials_dirs, load, load_str};
pub use validate::{D360Intake, MetaIntake, TwilioIntake, Validated, validate};
pub use views::{
    MappingView, NotifyFilter, QueueView, load_mapping_view, load_mapping_view_str, load_queue_view,
};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/wa2crm/wa2crm.toml";

/// Where a command reads its configuration: the file, and the directories of credential files
/// (`/etc/wa2crm/secrets` or `--credentials-dir`, then systemd's `$CREDENTIALS_DIRECTORY`).
#[derive(Debug, Clone)]
pub struct ConfigLocation {
    pub file: PathBuf,
    pub credentials_dirs: Vec<PathBuf>,
}

impl ConfigLocation {
    /// `file`, with the credentials directories resolved from `given` and the environment.
    pub fn new(file: PathBuf, given: Option<&std::path::Path>) -> Self {
        ConfigLocation {
            credentials_dirs: credentials_dirs(given),
            file,
        }
    }

    pub fn load(&self) -> Result<Config, ConfigErrors> {
        load(&self.file, &self.credentials_dirs)
    }

    pub fn load_queue_view(&self) -> Result<QueueView, ConfigErrors> {
        load_queue_view(&self.file, &self.credentials_dirs)
    }

    pub fn load_mapping_view(&self) -> Result<MappingView, ConfigErrors> {
        load_mapping_view(&self.file, &self.credentials_dirs)
    }

    /// `errors`, one per line under a heading naming the file.
    pub fn report(&self, errors: &ConfigErrors) -> String {
        format!(
            "{} has {} problem(s):\n{}",
            self.file.display(),
            errors.0.len(),
            errors
                .0
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub tags: Vec<TagRuleConfig>,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Connector instances by name; each table's `type` picks the connector crate that reads it.
    #[serde(default)]
    pub connectors: BTreeMap<String, serde_json::Value>,
}

/// `[console]`: the operators' web pages (daemon/src/console).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub enabled: bool,
    /// Which listener serves `/console`.
    pub on: ConsoleListener,
    /// Who may log in: user name → argon2 hash (PHC string, `wa2crm hash-password` makes one).
    pub users: BTreeMap<String, SecretString>,
    /// How long a login lasts without use.
    pub session_minutes: u64,
    /// The country a number typed nationally in a search is read in (ISO 3166, `DE`); unset:
    /// the first connector's `match.default_country`.
    pub default_country: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            on: ConsoleListener::Admin,
            users: BTreeMap::new(),
            session_minutes: 8 * 60,
            default_country: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleListener {
    /// `server.admin_listen`, with `/metrics` and `/readyz`.
    Admin,
    /// `server.listen`, with the webhooks: only behind a reverse proxy that guards it.
    Main,
}

/// What logs may say of the people whose media passes through.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Phone numbers appear masked in logs (`+49151…789`) unless this is true.
    pub show_phone_numbers: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// The base of the links written into CRM fields.
    pub public_url: Option<String>,
    /// Webhook bodies larger than this are answered 413.
    pub max_body_bytes: u64,
    /// Where `/metrics` and `/readyz` (and the console) are served instead of `listen`, so they
    /// need not face the internet; unset: on `listen`.
    pub admin_listen: Option<String>,
    /// A client must send a request's headers within this, and its body within the next.
    pub header_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
    /// Connections open at once, and requests handled at once (beyond: 503 with Retry-After).
    pub max_connections: usize,
    pub max_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = crate::server::limits::Limits::default();
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            admin_listen: None,
            header_timeout_seconds: limits.header_timeout.as_secs(),
            body_timeout_seconds: limits.body_timeout.as_secs(),
            max_connections: limits.max_connections,
            max_requests: limits.max_requests,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub url: String,
    pub workers: u32,
    /// A job failing transiently this many times is dead-lettered with its last error.
    pub max_attempts: u32,
    /// The longest wait between two attempts of a failing job (the wait starts at 5 s and
    /// doubles): a shorter one finds a recovered CRM sooner, at the price of more calls to a
    /// dead one.
    pub retry_max_seconds: u64,
    /// How long a worker's claim on a job lasts without a heartbeat: after a crash, the job is
    /// taken over this long after the last heartbeat.
    pub lease_seconds: u64,
    /// A warning is logged while the oldest unfinished job has waited longer than this: a CRM
    /// or the storage is down, or the workers cannot keep up.
    pub backlog_warning_seconds: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            url: "sqlite:///var/lib/wa2crm/queue.db".into(),
            workers: 8,
            max_attempts: 30,
            retry_max_seconds: 3600,
            lease_seconds: 60,
            backlog_warning_seconds: 600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub url: String,
    /// Passed to object_store as they are (endpoint, region, credentials, …).
    pub options: BTreeMap<String, String>,
    /// The HMAC key of `/media/{token}` links.
    pub link_secret: Option<SecretString>,
    /// Secrets `link_secret` was rotated away from: the links they made keep working.
    pub previous_link_secrets: Vec<SecretString>,
    /// How long a new link works (`"365d"`); unset: as long as its media is kept.
    pub link_lifetime: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: "file:///var/lib/wa2crm/media".into(),
            options: BTreeMap::new(),
            link_secret: None,
            previous_link_secrets: Vec::new(),
            link_lifetime: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub max_bytes: u64,
    pub spool_dir: PathBuf,
    /// A media lookup or download silent this many seconds is abandoned and retried.
    pub read_timeout_seconds: u64,
    /// Also store an MP3 (audio) or MP4 H.264/AAC (video) rendition made with ffmpeg.
    pub transcode: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: 100 * 1024 * 1024,
            spool_dir: PathBuf::from("/var/cache/wa2crm"),
            read_timeout_seconds: 60,
            transcode: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub meta: Option<MetaSourceConfig>,
    pub d360: Option<D360SourceConfig>,
    pub twilio: Option<TwilioSourceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSourceConfig {
    /// Signs every webhook (`X-Hub-Signature-256`).
    pub app_secret: SecretString,
    /// Echoed in the subscription handshake.
    pub verify_token: SecretString,
    /// Bearer token for the Graph API media endpoints.
    pub access_token: Option<SecretString>,
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
}

fn default_graph_url() -> String {
    "https://graph.facebook.com".into()
}

fn default_api_version() -> String {
    "v21.0".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D360SourceConfig {
    pub api_key: SecretString,
    #[serde(default = "default_d360_url")]
    pub base_url: String,
    /// The partner secret 360dialog signs webhooks with (`x-360dialog-signature`).
    pub webhook_secret: Option<SecretString>,
    /// Otherwise a header the operator set along with the webhook URL, and its secret value.
    pub webhook_header: Option<String>,
    pub webhook_header_value: Option<SecretString>,
}

fn default_d360_url() -> String {
    "https://waba-v2.360dialog.io".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSourceConfig {
    pub account_sid: String,
    pub auth_token: SecretString,
    /// The exact public URL Twilio signs.
    pub webhook_url: String,
    /// Delete the media at Twilio once it is safely in storage.
    #[serde(default)]
    pub delete_after_copy: bool,
    /// Twilio's API, where media is fetched with the account's credentials (the sandbox's own).
    #[serde(default = "default_twilio_api_url")]
    pub api_url: String,
    /// For this long after the webhook, a 404 for its media means Twilio has not made it
    /// available yet, and the download is tried again; after it, the media is gone.
    #[serde(default = "default_twilio_media_wait")]
    pub media_wait_seconds: u64,
}

fn default_twilio_media_wait() -> u64 {
    wa2crm_whatsapp::twilio::DEFAULT_MEDIA_WAIT.as_secs()
}

fn default_twilio_api_url() -> String {
    "https://api.twilio.com".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub source: Source,
    /// Meta (and 360dialog) phone_number_id, or a +E164 number for Twilio; `*` matches every
    /// number of the source (a route with `connectors = []` then stops unrouted events).
    pub number: String,
    pub connectors: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagRuleConfig {
    pub name: String,
    /// A regular expression matched against the caption.
    pub caption: Option<String>,
    #[serde(default)]
    pub kinds: Vec<MediaKind>,
    #[serde(default)]
    pub senders: Vec<String>,
    pub min_duration: Option<String>,
    pub max_duration: Option<String>,
    /// A regular expression matched against the file name.
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    #[default]
    None,
    CrmField,
    Allowlist,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub consent: Consent,
    pub consent_allowlist: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    #[default]
    Clear,
    Delete,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub default: Option<String>,
    pub audio: Option<String>,
    pub voice: Option<String>,
    pub video: Option<String>,
    pub image: Option<String>,
    pub document: Option<String>,
    pub sticker: Option<String>,
    #[serde(default)]
    pub on_expiry: OnExpiry,
    /// How often `run` applies the policy (default `1h`).
    pub interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A JSON POST per new media, signed, for chat tools and scripts.
    pub webhook: Option<WebhookNotifyConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotifyConfig {
    pub url: String,
    /// Signs every POST (HMAC-SHA256 of `{timestamp}.{body}`).
    pub secret: SecretString,
    /// Only media of these kinds; empty: every kind.
    #[serde(default)]
    pub kinds: Vec<MediaKind>,
    /// Only media with at least one of these tags; empty: any media.
    #[serde(default)]
    pub tags: Vec<String>,
}
