//! `[connectors.NAME]` with `type = "hubspot"`: what the admin writes, and the pure checks it must
//! pass before anything is built.

use secrecy::SecretString;
use serde::Deserialize;
use time::UtcOffset;
use wa2crm_core::{CanonicalAttribute, FieldMapping};

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotConfig {
    #[serde(rename = "type")]
    pub connector_type: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// A private-app token or service key, sent as Bearer.
    pub token: Option<SecretString>,
    /// OAuth: refreshed through `/oauth/v3/token` before `expires_in` runs out.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    /// The unique contact property holding the sender's +E164 number.
    pub contact_key: String,
    /// `contacts`: the mapped properties are the contact's latest media; anything else is a
    /// custom object type with one record per media, associated to the contact.
    #[serde(default = "default_object")]
    pub object: String,
    /// A timeline note per media on the contact.
    #[serde(default)]
    pub note: bool,
    /// The unique note property holding the WhatsApp message id, which makes notes idempotent.
    #[serde(default = "default_note_key")]
    pub note_key: String,
    /// A task for the contact's owner per new media (`[connectors.NAME.task]`).
    pub task: Option<wa2crm_core::TaskConfig>,
    /// The unique task property holding the message id, which makes tasks idempotent.
    #[serde(default = "default_note_key")]
    pub task_key: String,
    /// Also upload the file to HubSpot Files (private) and attach it to the note.
    #[serde(default)]
    pub upload: bool,
    /// The HubSpot Files folder uploads go to.
    #[serde(default = "default_folder")]
    pub upload_folder: String,
    /// Requests per ten seconds this connector may send: 100 (Free/Starter), 190 (Pro,
    /// Enterprise), 250 (with the API limit increase).
    #[serde(default = "default_rate")]
    pub requests_per_10s: u32,
    /// The share of the portal's daily quota left for its other integrations (0.0–0.9).
    #[serde(default = "default_reserve")]
    pub daily_reserve: f64,
    /// The portal's time zone as a UTC offset, e.g. "-05:00": HubSpot resets the daily quota at
    /// its midnight.
    #[serde(default = "default_offset")]
    pub portal_utc_offset: String,
    /// The property group `provision` creates the properties in.
    #[serde(default = "default_group")]
    pub property_group: String,
    /// How long a delivery waits for more records to fill a batch, in milliseconds.
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
    /// Batches in flight at once; their calls overlap within the rate limit, hiding HubSpot's
    /// latency (a batch call takes 100–500 ms, the limit allows one call every 100 ms).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The contact's boolean consent field/property (`policy.consent = "crm_field"`): media of a
    /// person without it ticked is neither stored nor written.
    pub consent_field: Option<String>,
    /// A call without an answer after this many seconds is abandoned and counted as a transient
    /// failure (1–600).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Finding the contacts the portal already has by their numbers (`[connectors.NAME.match]`).
    #[serde(rename = "match", default)]
    pub matching: MatchConfig,
    #[serde(default)]
    pub fields: FieldMapping,
}

/// `[connectors.NAME.match]`: a sender without a contact by `contact_key` is looked for among
/// the contacts by these number properties before a new one is created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Off: senders are found by `contact_key` only, and a new contact made for each new one.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The contact properties holding numbers. `phone` and `mobilephone` are searched through
    /// HubSpot's calculated searchable forms; others as written (E.164).
    #[serde(default = "default_match_fields")]
    pub fields: Vec<String>,
    /// The country a number written without one is read in (`0151 …` in `DE`).
    pub default_country: Option<String>,
    /// Several contacts hold the number: `most_recent` (the owned, most recently modified one)
    /// or `skip` (none).
    #[serde(default)]
    pub several: wa2crm_core::matching::Several,
    /// Without a match: create a contact (true), or keep the media waiting, dead-lettered as
    /// unmatched, until someone creates the contact and replays it (false).
    #[serde(default = "yes")]
    pub create: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            enabled: true,
            fields: default_match_fields(),
            default_country: None,
            several: Default::default(),
            create: true,
        }
    }
}

impl MatchConfig {
    pub fn country(&self) -> Option<wa2crm_core::phone_match::DefaultCountry> {
        self.default_country.as_deref().and_then(|c| c.parse().ok())
    }
}

fn yes() -> bool {
    true
}
fn default_match_fields() -> Vec<String> {
    ["phone", "mobilephone", "hs_whatsapp_phone_number"]
        .map(String::from)
        .to_vec()
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}
fn default_object() -> String {
    "contacts".into()
}
fn default_note_key() -> String {
    "wa_message_id".into()
}
fn default_rate() -> u32 {
    100
}
fn default_reserve() -> f64 {
    0.1
}
fn default_offset() -> String {
    "+00:00".into()
}
fn default_group() -> String {
    "whatsapp_media".into()
}
fn default_folder() -> String {
    "/wa2crm".into()
}
fn default_linger() -> u64 {
    200
}
fn default_timeout() -> u64 {
    wa2crm_rest::client::DEFAULT_TIMEOUT.as_secs()
}
fn default_concurrency() -> usize {
    4
}

/// How the connector authenticates.
pub enum AuthConfig<'a> {
    Token(&'a SecretString),
    OAuth {
        client_id: &'a str,
        client_secret: &'a SecretString,
        refresh_token: &'a SecretString,
    },
}

impl HubSpotConfig {
    /// How long one call may take.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds)
    }

    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }

    pub fn is_contacts(&self) -> bool {
        self.object == "contacts"
    }

    pub fn auth(&self) -> Option<AuthConfig<'_>> {
        match (
            &self.token,
            &self.client_id,
            &self.client_secret,
            &self.refresh_token,
        ) {
            (Some(t), None, None, None) => Some(AuthConfig::Token(t)),
            (None, Some(id), Some(secret), Some(refresh)) => Some(AuthConfig::OAuth {
                client_id: id,
                client_secret: secret,
                refresh_token: refresh,
            }),
            _ => None,
        }
    }

    /// Which portal's credentials these are: the API host and the app, or a hash of the
    /// private-app token. State kept for another account (a token, a pause) is not used.
    pub fn account(&self) -> String {
        use secrecy::ExposeSecret;
        use sha2::Digest;
        let credential = match self.auth() {
            Some(AuthConfig::Token(t)) => hex::encode(sha2::Sha256::digest(t.expose_secret())),
            Some(AuthConfig::OAuth {
                client_id,
                refresh_token,
                ..
            }) => format!(
                "{client_id}:{}",
                hex::encode(sha2::Sha256::digest(refresh_token.expose_secret()))
            ),
            None => String::new(),
        };
        wa2crm_rest::token::account_fingerprint(&[self.base_url.trim_end_matches('/'), &credential])
    }

    pub fn utc_offset(&self) -> Result<UtcOffset, String> {
        let format =
            time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        UtcOffset::parse(&self.portal_utc_offset, &format).map_err(|_| {
            format!(
                "{:?} is not a UTC offset like \"+01:00\" or \"-05:00\"",
                self.portal_utc_offset
            )
        })
    }

    /// What is wrong with the credentials given, named at the key to fix.
    fn auth_problem(&self) -> Option<(&'static str, String)> {
        let oauth = [
            ("client_id", self.client_id.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("refresh_token", self.refresh_token.is_some()),
        ];
        let any_oauth = oauth.iter().any(|(_, set)| *set);
        match (self.token.is_some(), any_oauth) {
            (false, false) => Some((
                "token",
                "is missing: set `token` (a private app's access token, pat-…), or for OAuth \
                 `client_id`, `client_secret` and `refresh_token`; a secret may also go in its \
                 credential file"
                    .into(),
            )),
            (true, true) => Some((
                "token",
                "set either `token` (a private app) or `client_id`, `client_secret` and \
                 `refresh_token` (OAuth), not both"
                    .into(),
            )),
            (true, false) => None,
            (false, true) => oauth.iter().find(|(_, set)| !set).map(|(key, _)| {
                (
                    *key,
                    "is missing: OAuth needs all of `client_id`, `client_secret` and \
                     `refresh_token`"
                        .into(),
                )
            }),
        }
    }

    /// Every problem, as (key under the connector's table, what is wrong). No I/O.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, m: String| p.push((k.to_owned(), m));
        if let Some((key, problem)) = self.auth_problem() {
            add(key, problem);
        }
        for (key, secret) in [
            ("token", &self.token),
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ] {
            use secrecy::ExposeSecret;
            if let Some(problem) = secret
                .as_ref()
                .and_then(|s| wa2crm_core::config_problem::secret_problem(s.expose_secret()))
            {
                add(key, problem.into());
            }
        }
        if let Err(e) = wa2crm_core::endpoint::check(&self.base_url) {
            add("base_url", e);
        }
        if self.contact_key.trim().is_empty() {
            add("contact_key", "names no property".into());
        }
        if self.object.trim().is_empty() {
            add("object", "names no object type".into());
        }
        if self.note && self.note_key.trim().is_empty() {
            add("note_key", "names no property".into());
        }
        if self.upload && !self.note {
            add(
                "upload",
                "uploaded files are attached to the timeline note: set `note = true` too".into(),
            );
        }
        if self.upload && !self.upload_folder.starts_with('/') {
            add(
                "upload_folder",
                format!("{:?} must start with /", self.upload_folder),
            );
        }
        if !(1..=250).contains(&self.requests_per_10s) {
            add(
                "requests_per_10s",
                format!("{} is outside 1–250", self.requests_per_10s),
            );
        }
        if !(0.0..=0.9).contains(&self.daily_reserve) {
            add(
                "daily_reserve",
                format!("{} is outside 0.0–0.9", self.daily_reserve),
            );
        }
        if let Err(e) = self.utc_offset() {
            add("portal_utc_offset", e);
        }
        if !(1..=16).contains(&self.concurrency) {
            add(
                "concurrency",
                format!("{} is outside 1–16", self.concurrency),
            );
        }
        for (key, problem) in self.task.iter().flat_map(|t| t.validate()) {
            add(&key, problem);
        }
        if let Some(country) = &self.matching.default_country
            && let Err(e) = country.parse::<wa2crm_core::phone_match::DefaultCountry>()
        {
            add("match.default_country", e);
        }
        if self.matching.enabled && self.matching.fields.is_empty() {
            add(
                "match.fields",
                "names no property: list the contact properties holding numbers, or set \
                 enabled = false"
                    .into(),
            );
        }
        if let Some(f) = self
            .matching
            .fields
            .iter()
            .find(|f| **f == self.contact_key)
        {
            add(
                "match.fields",
                format!("{f:?} is contact_key itself: contacts are already found by it"),
            );
        }
        if !(1..=600).contains(&self.timeout_seconds) {
            add(
                "timeout_seconds",
                format!("{} is outside 1–600", self.timeout_seconds),
            );
        }
        if self.linger_ms > 10_000 {
            add(
                "linger_ms",
                "more than 10 seconds would hold every delivery back".into(),
            );
        }
        if self.fields.is_empty() && !self.note {
            add(
                "fields",
                "maps no attribute and `note` is off: nothing would be written".into(),
            );
        }
        if !self.is_contacts() && self.fields.get(CanonicalAttribute::MessageId).is_none() {
            add(
                "fields.message_id",
                format!(
                    "is required with object = {:?}: records are upserted by that unique property",
                    self.object
                ),
            );
        }
        for problem in self.fields.validate() {
            add(&format!("fields.{}", problem.attribute), problem.problem);
        }
        if let Some(f) = self.fields.iter().find(|(_, f)| *f == self.contact_key)
            && self.is_contacts()
        {
            add(
                &format!("fields.{}", f.0),
                format!(
                    "writes into contact_key {:?}, the contact's identity",
                    self.contact_key
                ),
            );
        }
        p
    }
}

impl wa2crm_core::ConnectorConfig for HubSpotConfig {
    const TYPE: &'static str = "hubspot";

    fn problems(&self) -> Vec<(String, String)> {
        self.validate()
    }

    fn endpoint(&self) -> Option<(&'static str, String)> {
        Some(("base_url", self.base_url.clone()))
    }

    fn settings(&self) -> wa2crm_core::ConnectorSettings {
        wa2crm_core::ConnectorSettings {
            consent_field: self.consent_field.clone(),
            fields: self.fields.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wa2crm_core::ConnectorFactory;

    fn base() -> serde_json::Value {
        json!({"type": "hubspot", "token": "pat-x", "contact_key": "whatsapp_id",
            "fields": {"file_url": "wa_media_url"}})
    }

    #[test]
    fn a_minimal_config_is_valid_with_defaults() {
        let c = HubSpotConfig::from_value(&base()).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(c.is_contacts());
        assert_eq!(c.requests_per_10s, 100);
        assert_eq!(c.utc_offset().unwrap(), UtcOffset::UTC);
    }

    #[test]
    fn credentials_are_told_apart() {
        let problems = |patch: serde_json::Value| {
            let mut v = base();
            v.as_object_mut().unwrap().remove("token");
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            HubSpotConfig::from_value(&v).unwrap().validate()
        };
        let none = problems(json!({}));
        assert_eq!(none[0].0, "token");
        assert!(none[0].1.starts_with("is missing"), "{none:?}");
        assert!(!none[0].1.contains("not both"), "{none:?}");
        let both = problems(json!({"token": "pat-x", "client_id": "c"}));
        assert!(both[0].1.contains("not both"), "{both:?}");
        let half = problems(json!({"client_id": "c", "client_secret": "s"}));
        assert_eq!(half[0].0, "refresh_token", "{half:?}");
        let placeholder = problems(json!({"token": "pat-..."}));
        assert_eq!(placeholder[0].0, "token");
        assert!(placeholder[0].1.contains("placeholder"), "{placeholder:?}");
        assert!(problems(json!({"token": ""}))[0].1.contains("empty"));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let c = HubSpotConfig::from_value(&json!({"type": "hubspot", "token": "t", "client_id": "c",
            "contact_key": "", "object": "p_media", "requests_per_10s": 0, "daily_reserve": 2.0,
            "portal_utc_offset": "EST", "upload": true, "fields": {"file_url": "u", "sha256": "u"}}))
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        for k in [
            "token",
            "contact_key",
            "requests_per_10s",
            "daily_reserve",
            "portal_utc_offset",
            "upload",
            "fields.message_id",
            "fields.sha256",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut v = base();
        v["contact_kee"] = json!("x");
        let e = HubSpotConfig::from_value(&v).unwrap_err();
        assert!(e.contains("contact_kee"), "{e}");
        let problems = crate::HubSpotFactory.validate("h", &v);
        assert_eq!(problems[0].0, "contact_kee", "{problems:?}");
    }
}
