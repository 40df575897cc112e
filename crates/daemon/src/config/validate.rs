//! Pure checks of a loaded [`Config`]: no network, no files. Every problem names its key.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use wa2crm_core::{FieldMapping, Phone, Source, TagRule, TagRules};

use wa2crm_media::link::LinkSigner;

use super::explain::{ConfigError, ConfigErrors};
use super::{Config, Consent, TagRuleConfig};
use crate::retention::RetentionPolicy;

/// A configuration that passed validation, resolved into the typed values `run` builds from:
/// nothing here is parsed or checked again.
#[derive(Debug)]
pub struct Validated {
    pub listen: SocketAddr,
    /// `server.public_url`: the base of the links written into CRM fields.
    pub public_url: Url,
    /// `storage.link_secret` (and the previous ones, and `link_lifetime`): signs media links.
    pub links: LinkSigner,
    /// `[retention]`; `None`: media is kept forever.
    pub retention: Option<RetentionPolicy>,
    /// `server.admin_listen`: where `/metrics` and `/readyz` go instead.
    pub admin_listen: Option<SocketAddr>,
    pub limits: crate::server::limits::Limits,
    /// `[[tags]]`, compiled.
    pub tags: TagRules,
    pub max_body_bytes: usize,
    pub meta: Option<MetaIntake>,
    pub d360: Option<D360Intake>,
    pub twilio: Option<TwilioIntake>,
    pub config: Config,
}

/// The secrets the Meta webhook routes check requests with.
#[derive(Debug, Clone)]
pub struct MetaIntake {
    pub app_secret: SecretString,
    pub verify_token: SecretString,
}

/// How `POST /webhooks/d360` knows a request comes from 360dialog.
#[derive(Debug, Clone)]
pub enum D360Intake {
    /// `x-360dialog-signature`: HMAC-SHA256 of the body with the partner secret.
    Signature(SecretString),
    /// A header the operator configured at 360dialog, compared in constant time.
    Header {
        name: axum::http::HeaderName,
        value: SecretString,
    },
}

/// What `POST /webhooks/twilio` checks requests with.
#[derive(Debug, Clone)]
pub struct TwilioIntake {
    pub auth_token: SecretString,
    pub webhook_url: String,
}

struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError::new(key, problem));
    }

    /// A secret that is empty or a placeholder copied from an example.
    fn secret(&mut self, key: &str, value: &SecretString) {
        if let Some(problem) = wa2crm_core::config_problem::secret_problem(value.expose_secret()) {
            self.add(key, problem);
        }
    }

    fn url(&mut self, key: &str, value: &str, schemes: &[&str]) -> Option<Url> {
        if value.starts_with('/') && schemes.contains(&"file") {
            self.add(
                key,
                format!("{value:?} has no scheme: for a directory write file://{value}"),
            );
            return None;
        }
        if !value.contains(':') {
            self.add(
                key,
                format!(
                    "{value:?} has no scheme: write it like {}",
                    schemes
                        .iter()
                        .map(|s| format!("{s}://…"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            );
            return None;
        }
        match Url::parse(value) {
            Ok(u) if schemes.contains(&u.scheme()) => Some(u),
            Ok(u) => {
                self.add(
                    key,
                    format!(
                        "{value:?} has scheme {:?}; expected {}",
                        u.scheme(),
                        schemes.join(" or ")
                    ),
                );
                None
            }
            Err(e) => {
                self.add(key, format!("{value:?} is not a URL: {e}"));
                None
            }
        }
    }

    /// A URL wa2crm sends credentials or data to, or hands out: https, or http on loopback.
    fn endpoint(&mut self, key: &str, value: &str) -> Option<Url> {
        match wa2crm_core::endpoint::check(value) {
            Ok(u) => Some(u),
            Err(e) => {
                self.add(key, e);
                None
            }
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>) -> Option<Duration> {
        let value = value?;
        match humantime::parse_duration(value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.add(
                    key,
                    format!("{value:?} is not a duration like \"90d\" or \"12h\": {e}"),
                );
                None
            }
        }
    }
}

/// Checks everything `run` relies on and returns it in usable form, or every problem found.
pub fn validate(config: Config) -> Result<Validated, ConfigErrors> {
    let mut p = Problems(Vec::new());

    let listen = match config.server.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.add(
                "server.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    config.server.listen
                ),
            );
            None
        }
    };
    let admin_listen = match config
        .server
        .admin_listen
        .as_deref()
        .map(str::parse::<SocketAddr>)
    {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            p.add(
                "server.admin_listen",
                "is not an address like 127.0.0.1:9090 (keep it on loopback or a private network)",
            );
            None
        }
    };
    for (key, value) in [
        (
            "server.header_timeout_seconds",
            config.server.header_timeout_seconds,
        ),
        (
            "server.body_timeout_seconds",
            config.server.body_timeout_seconds,
        ),
        (
            "server.max_connections",
            config.server.max_connections as u64,
        ),
        ("server.max_requests", config.server.max_requests as u64),
    ] {
        if value == 0 {
            p.add(key, "must be at least 1");
        }
    }
    let limits = crate::server::limits::Limits {
        header_timeout: Duration::from_secs(config.server.header_timeout_seconds),
        body_timeout: Duration::from_secs(config.server.body_timeout_seconds),
        max_connections: config.server.max_connections,
        max_requests: config.server.max_requests,
    };
    let public_url = match &config.server.public_url {
        None => {
            p.add(
                "server.public_url",
                "is missing: the links written into CRM fields start with it (e.g. https://wa2crm.example.com)",
            );
            None
        }
        Some(url) => match p.endpoint("server.public_url", url) {
            Some(u) if u.query().is_some() || u.fragment().is_some() => {
                p.add(
                    "server.public_url",
                    "must be a base URL without ?query or #fragment",
                );
                None
            }
            u => u,
        },
    };
    let max_body = config.server.max_body_bytes;
    if !(1024..=64 * 1024 * 1024).contains(&max_body) {
        p.add(
            "server.max_body_bytes",
            format!("{max_body} is outside 1024 ..= 67108864"),
        );
    }

    let q = &config.queue.url;
    if let Some(path) = q.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        let path = path.split('?').next().unwrap_or(path);
        if !path.starts_with('/') {
            p.add(
                "queue.url",
                format!(
                    "{q:?} is a relative path: the database would be created wherever wa2crm \
                     happens to start. Write an absolute one with three slashes, like \
                     sqlite:///var/lib/wa2crm/queue.db"
                ),
            );
        }
    } else if !(q.starts_with("postgres:") || q.starts_with("postgresql:")) {
        p.add(
            "queue.url",
            format!("{q:?}: expected sqlite:///path/queue.db or postgres://user@host/db"),
        );
    }
    if !(1..=1000).contains(&config.queue.max_attempts) {
        p.add(
            "queue.max_attempts",
            format!("{} is outside 1 ..= 1000", config.queue.max_attempts),
        );
    }
    if !(2..=3600).contains(&config.queue.lease_seconds) {
        p.add(
            "queue.lease_seconds",
            format!("{} is outside 2 ..= 3600", config.queue.lease_seconds),
        );
    }
    if !(1..=256).contains(&config.queue.workers) {
        p.add(
            "queue.workers",
            format!("{} is outside 1 ..= 256", config.queue.workers),
        );
    }

    p.url(
        "storage.url",
        &config.storage.url,
        &wa2crm_media::store::SCHEMES,
    );
    let links = link_signer(&mut p, &config.storage);

    if config.media.max_bytes == 0 {
        p.add("media.max_bytes", "must be greater than 0");
    }
    if !config.media.spool_dir.is_absolute() {
        p.add(
            "media.spool_dir",
            format!(
                "{} is not an absolute path",
                config.media.spool_dir.display()
            ),
        );
    }

    let sources = &config.sources;
    if sources.meta.is_none() && sources.d360.is_none() && sources.twilio.is_none() {
        p.add(
            "sources",
            "no source configured: add [sources.meta], [sources.d360] or [sources.twilio]",
        );
    }
    if let Some(meta) = &sources.meta {
        p.secret("sources.meta.app_secret", &meta.app_secret);
        p.secret("sources.meta.verify_token", &meta.verify_token);
        match &meta.access_token {
            Some(t) => p.secret("sources.meta.access_token", t),
            None => p.add(
                "sources.meta.access_token",
                "is missing: media is downloaded from the Graph API with it",
            ),
        }
        p.endpoint("sources.meta.graph_url", &meta.graph_url);
        let v = meta.api_version.strip_prefix('v').unwrap_or("");
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !v
            .split_once('.')
            .is_some_and(|(a, b)| numeric(a) && numeric(b))
        {
            p.add(
                "sources.meta.api_version",
                format!(
                    "{:?} is not a Graph API version like \"v21.0\"",
                    meta.api_version
                ),
            );
        }
    }
    let d360 = sources.d360.as_ref().and_then(|d| {
        p.secret("sources.d360.api_key", &d.api_key);
        p.endpoint("sources.d360.base_url", &d.base_url);
        d360_intake(&mut p, d)
    });
    if let Some(t) = &sources.twilio {
        if !t.account_sid.starts_with("AC") {
            p.add(
                "sources.twilio.account_sid",
                format!("{:?} does not start with AC", t.account_sid),
            );
        }
        p.secret("sources.twilio.auth_token", &t.auth_token);
        p.endpoint("sources.twilio.webhook_url", &t.webhook_url);
        p.endpoint("sources.twilio.api_url", &t.api_url);
    }

    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        let configured = match route.source {
            Source::Meta => sources.meta.is_some(),
            Source::D360 => sources.d360.is_some(),
            Source::Twilio => sources.twilio.is_some(),
        };
        if !configured {
            p.add(
                format!("{key}.source"),
                format!("{} has no [sources.{}] section", route.source, route.source),
            );
        }
        let any = route.number.trim() == "*";
        if route.number.trim().is_empty() {
            p.add(format!("{key}.number"), "is empty");
        } else if any {
        } else if route.source == Source::Twilio {
            if let Some(problem) = twilio_number_problem(&route.number) {
                p.add(format!("{key}.number"), problem);
            }
        } else if let Some(problem) = phone_number_id_problem(route.source, &route.number) {
            p.add(format!("{key}.number"), problem);
        }
        if route.connectors.is_empty() && route.number.trim() != "*" {
            p.add(
                format!("{key}.connectors"),
                "names no connector (only a catch-all route, number = \"*\", may stop events)",
            );
        }
        for c in &route.connectors {
            if !config.connectors.contains_key(c) {
                p.add(
                    format!("{key}.connectors"),
                    format!("{c:?} is not a [connectors.{c}] section"),
                );
            }
        }
    }

    if !(1..=600).contains(&config.media.read_timeout_seconds) {
        p.add(
            "media.read_timeout_seconds",
            format!("{} is outside 1–600", config.media.read_timeout_seconds),
        );
    }

    if let Some(w) = &config.notifications.webhook {
        p.endpoint("notifications.webhook.url", &w.url);
        if w.secret.expose_secret().len() < 16 {
            p.add(
                "notifications.webhook.secret",
                "is shorter than 16 characters; receivers could not trust the signature. Generate one with: openssl rand -base64 32",
            );
        }
    }

    let tags = tag_rules(&mut p, &config.tags);

    if config.policy.consent == Consent::CrmField {
        let registry = crate::connectors::registry();
        for (name, table) in &config.connectors {
            // A table that does not parse is reported by its own validation.
            let settings =
                crate::connectors::factory_of(&registry, table).and_then(|f| f.settings(table));
            if settings.is_some_and(|s| s.consent_field.is_none()) {
                p.add(
                    format!("connectors.{name}.consent_field"),
                    "is missing: policy.consent = \"crm_field\" needs each connector's boolean consent field",
                );
            }
        }
    }
    if config.policy.consent == Consent::Allowlist && config.policy.consent_allowlist.is_none() {
        p.add(
            "policy.consent_allowlist",
            "consent = \"allowlist\" needs the path of the allowlist file",
        );
    }

    let retention = match config.retention.as_ref().map(RetentionPolicy::from_config) {
        None => None,
        Some(Ok(policy)) => policy,
        Some(Err(problems)) => {
            for (key, problem) in problems {
                p.add(key, problem);
            }
            None
        }
    };

    for (name, table) in &config.connectors {
        validate_connector(&mut p, name, table);
    }

    let (Some(listen), Some(public_url), Some(links), true) =
        (listen, public_url, links, p.0.is_empty())
    else {
        return Err(ConfigErrors(p.0));
    };
    let meta = config.sources.meta.as_ref().map(|m| MetaIntake {
        app_secret: m.app_secret.clone(),
        verify_token: m.verify_token.clone(),
    });
    let twilio = config.sources.twilio.as_ref().map(|t| TwilioIntake {
        auth_token: t.auth_token.clone(),
        webhook_url: t.webhook_url.clone(),
    });
    Ok(Validated {
        listen,
        public_url,
        links,
        retention,
        admin_listen,
        limits,
        tags,
        max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
        meta,
        d360,
        twilio,
        config,
    })
}

/// How `POST /webhooks/d360` will know 360dialog, checked and built in one pass. Unauthenticated
/// intake would let anyone make wa2crm look up made-up media ids, and 360dialog blocks a number's
/// media for an hour after five failed lookups.
fn d360_intake(p: &mut Problems, d: &super::D360SourceConfig) -> Option<D360Intake> {
    match (
        &d.webhook_secret,
        &d.webhook_header,
        &d.webhook_header_value,
    ) {
        (Some(secret), None, None) => {
            p.secret("sources.d360.webhook_secret", secret);
            Some(D360Intake::Signature(secret.clone()))
        }
        (None, Some(name), Some(value)) => {
            p.secret("sources.d360.webhook_header_value", value);
            match axum::http::HeaderName::from_bytes(name.trim().as_bytes()) {
                Ok(name) => Some(D360Intake::Header {
                    name,
                    value: value.clone(),
                }),
                Err(_) => {
                    p.add(
                        "sources.d360.webhook_header",
                        format!("{name:?} is not a header name"),
                    );
                    None
                }
            }
        }
        (None, None, None) => {
            p.add(
                "sources.d360",
                "set webhook_secret (360dialog's signature) or webhook_header and webhook_header_value \
                 (a header configured with the webhook URL): without either, anyone could post events",
            );
            None
        }
        (Some(_), _, _) => {
            p.add(
                "sources.d360.webhook_secret",
                "set either webhook_secret or webhook_header/webhook_header_value, not both",
            );
            None
        }
        (None, _, _) => {
            p.add(
                "sources.d360",
                "webhook_header and webhook_header_value go together",
            );
            None
        }
    }
}

/// The media links' signer: the secret, the previous ones still accepted, the lifetime.
fn link_signer(p: &mut Problems, storage: &super::StorageConfig) -> Option<LinkSigner> {
    let secret = match &storage.link_secret {
        None => {
            p.add(
                "storage.link_secret",
                "is missing: it signs the media links. Generate one with: openssl rand -base64 32",
            );
            None
        }
        Some(secret) if secret.expose_secret().len() < 16 => {
            p.add(
                "storage.link_secret",
                "is shorter than 16 characters; anyone could forge media links. \
                 Generate one with: openssl rand -base64 32",
            );
            None
        }
        Some(secret) => Some(secret),
    };
    for (i, previous) in storage.previous_link_secrets.iter().enumerate() {
        if previous.expose_secret().len() < 16 {
            p.add(
                format!("storage.previous_link_secrets[{i}]"),
                "is shorter than 16 characters; links made with it could be forged",
            );
        }
    }
    let lifetime = p.duration("storage.link_lifetime", storage.link_lifetime.as_deref());
    if lifetime.is_some_and(|d| d < Duration::from_secs(3600)) {
        p.add(
            "storage.link_lifetime",
            "is shorter than an hour: links in the CRM would die before anyone opens them",
        );
    }
    Some(
        LinkSigner::new(secret?.expose_secret().as_bytes())
            .with_previous(
                storage
                    .previous_link_secrets
                    .iter()
                    .map(|s| s.expose_secret().as_bytes()),
            )
            .with_lifetime(lifetime),
    )
}

/// A Twilio route's number: the business number in +E164, as Twilio's `To` carries it.
fn twilio_number_problem(number: &str) -> Option<String> {
    let n = number.trim().trim_start_matches("whatsapp:");
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    if !n.starts_with('+') && !n.starts_with("00") && digits.starts_with('0') {
        // A national number: the country cannot be known, the form can.
        let national = n.trim_start_matches('0');
        return Some(format!(
            "{number:?} is written the national way; write it with its country code instead of \
             the leading 0, like +49 {national} for a German number"
        ));
    }
    Phone::parse(number).err().map(|e| e.to_string())
}

/// A Meta or 360dialog route names the number by its `phone_number_id` (the webhook's
/// `metadata.phone_number_id`), a number Meta assigns, not the phone number itself.
fn phone_number_id_problem(source: Source, number: &str) -> Option<String> {
    let n = number.trim();
    if n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let looks_like_phone = n.starts_with('+')
        || n.starts_with("whatsapp:")
        || n.chars()
            .all(|c| c.is_ascii_digit() || " -().+".contains(c));
    Some(if looks_like_phone {
        format!(
            "{number:?} is a phone number; {source} routes name the number by its \
             phone_number_id (digits only, shown in WhatsApp Manager under Phone numbers, and in \
             every webhook as metadata.phone_number_id)"
        )
    } else {
        format!("{number:?} is not a phone_number_id (digits only)")
    })
}

/// `[[tags]]` compiled: regular expressions, durations and numbers, each problem at its key.
fn tag_rules(p: &mut Problems, configured: &[TagRuleConfig]) -> TagRules {
    let mut rules = Vec::new();
    for (i, tag) in configured.iter().enumerate() {
        let key = format!("tags[{i}]");
        let name = tag.name.trim();
        if name.is_empty() {
            p.add(format!("{key}.name"), "is empty");
        } else if name.contains(';') {
            // Tags travel `;`-joined into CRM fields (multi-select values).
            p.add(
                format!("{key}.name"),
                format!("{name:?} contains ';', which separates tags in CRM fields"),
            );
        }
        let mut regex = |field: &str, value: &Option<String>| {
            let value = value.as_deref()?;
            match regex::Regex::new(value) {
                Ok(r) => Some(r),
                Err(e) => {
                    p.add(
                        format!("{key}.{field}"),
                        format!("{value:?} is not a regular expression: {e}"),
                    );
                    None
                }
            }
        };
        let caption = regex("caption", &tag.caption);
        let file_name = regex("file_name", &tag.file_name);
        let min_duration = p.duration(&format!("{key}.min_duration"), tag.min_duration.as_deref());
        let max_duration = p.duration(&format!("{key}.max_duration"), tag.max_duration.as_deref());
        if let (Some(min), Some(max)) = (min_duration, max_duration)
            && min > max
        {
            p.add(
                format!("{key}.min_duration"),
                "is longer than max_duration: the rule could never match",
            );
        }
        let mut senders = Vec::new();
        for s in &tag.senders {
            match Phone::parse(s) {
                Ok(phone) => senders.push(phone),
                Err(e) => p.add(format!("{key}.senders"), e.to_string()),
            }
        }
        rules.push(TagRule {
            name: name.to_owned(),
            caption,
            kinds: tag.kinds.clone(),
            senders,
            min_duration,
            max_duration,
            file_name,
        });
    }
    TagRules(rules)
}

/// The parts of a connector table every connector shares: its type and its field mapping. The
/// rest is the connector crate's to check.
fn validate_connector(p: &mut Problems, name: &str, table: &serde_json::Value) {
    let key = format!("connectors.{name}");
    let Some(obj) = table.as_object() else {
        p.add(key, "must be a table");
        return;
    };
    let registry = crate::connectors::registry();
    let types = registry.types().collect::<Vec<_>>().join(", ");
    let kind = obj.get("type").and_then(|t| t.as_str());
    match kind {
        Some(t) if registry.get(t).is_some() => {}
        Some(t) => p.add(
            format!("{key}.type"),
            format!("unknown connector type {t:?}; expected one of {types}"),
        ),
        None => p.add(
            format!("{key}.type"),
            format!("is missing; expected one of {types}"),
        ),
    }
    // A connector crate checks its whole table; for a type without one, the shared parts.
    if let Some(factory) = kind.and_then(|k| registry.get(k)) {
        for (sub, problem) in factory.validate(name, table) {
            let at = if sub.is_empty() {
                key.clone()
            } else {
                format!("{key}.{sub}")
            };
            p.add(at, problem);
        }
        return;
    }
    match obj.get("fields") {
        None => p.add(
            format!("{key}.fields"),
            "is missing: map at least file_url to a CRM field",
        ),
        Some(fields) => match serde_json::from_value::<FieldMapping>(fields.clone()) {
            Err(e) => p.add(format!("{key}.fields"), e.to_string()),
            Ok(mapping) => {
                for problem in mapping.validate() {
                    p.add(
                        format!("{key}.fields.{}", problem.attribute),
                        problem.problem,
                    );
                }
            }
        },
    }
}
