//! `[connectors.NAME]` with `type = "salesforce"`, and its pure checks.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use wa2crm_core::{CanonicalAttribute, FieldMapping};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    #[serde(rename = "type")]
    pub connector_type: String,
    /// `https://login.salesforce.com`, `https://test.salesforce.com`, or the My Domain URL
    /// (required for client credentials).
    #[serde(default = "default_login_url")]
    pub login_url: String,
    pub client_id: String,
    /// JWT bearer flow: the integration user and the connected app's private key.
    pub username: Option<String>,
    pub private_key_file: Option<PathBuf>,
    /// The key itself (from `$CREDENTIALS_DIRECTORY/connectors.NAME.private_key`).
    pub private_key: Option<SecretString>,
    /// Refresh-token flow (with `refresh_token`) or client credentials (without).
    pub client_secret: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The media object: one record per media.
    pub object: String,
    /// Unique external-ID field of `object` holding the WhatsApp message id.
    pub external_id: String,
    /// Lookup field from `object` to Contact.
    pub contact_lookup: String,
    /// Unique external-ID field on Contact holding the sender's +E164 number.
    pub contact_key: String,
    /// Re-authenticate after this long even if Salesforce has not said the session ended.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// The share of the org's daily API allocation wa2crm never uses (0.0–0.9).
    #[serde(default = "default_reserve")]
    pub daily_reserve: f64,
    /// Requests in flight at once (long-running requests count against an org-wide limit of 25).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
    /// The contact's boolean consent field/property (`policy.consent = "crm_field"`): media of a
    /// person without it ticked is neither stored nor written.
    pub consent_field: Option<String>,
    /// A call without an answer after this many seconds is abandoned and counted as a transient
    /// failure (1–600).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// A Task per new media for the Contact's owner (`[connectors.NAME.task]`).
    pub task: Option<wa2crm_core::TaskConfig>,
    /// The Activity custom field holding the message id, which keeps tasks from being doubled.
    #[serde(default = "default_task_key")]
    pub task_key: String,
    /// Also upload each file as a ContentVersion on its media record (Salesforce Files), so it
    /// previews and plays inside Salesforce.
    #[serde(default)]
    pub files: bool,
    /// The integration user's permission set (Id `0PS…`): `provision` grants it read and edit on
    /// the fields it creates, which are invisible to the integration user until then.
    pub permission_set: Option<String>,
    /// Finding the Contacts and Leads the org already has (`[connectors.NAME.match]`).
    #[serde(rename = "match", default)]
    pub matching: MatchConfig,
    #[serde(default)]
    pub fields: FieldMapping,
}

/// `[connectors.NAME.match]`: a sender without a Contact by `contact_key` is looked for with a
/// SOSL phone search among these objects before a Contact is created.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Off: senders are found by `contact_key` only, and a Contact created for each new one.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where to look, in order: `Contact`, `Lead`. A Contact found gets `contact_key`; a sender
    /// found only as a Lead gets the media record looked up to the Lead (`lead_lookup`).
    #[serde(default = "default_objects")]
    pub objects: Vec<String>,
    /// The country a number written without one is read in (`0151 …` in `DE`).
    pub default_country: Option<String>,
    /// Several records of the first object hold the number: `most_recent` (the owned, most
    /// recently modified one) or `skip` (none).
    #[serde(default)]
    pub several: wa2crm_core::matching::Several,
    /// Without a match: create a Contact (true), or dead-letter the media as unmatched until
    /// the record exists and it is replayed (false).
    #[serde(default = "yes")]
    pub create: bool,
    /// The media object's Lookup(Lead) field, which `provision` creates.
    #[serde(default = "default_lead_lookup")]
    pub lead_lookup: String,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            enabled: true,
            objects: default_objects(),
            default_country: None,
            several: Default::default(),
            create: true,
            lead_lookup: default_lead_lookup(),
        }
    }
}

impl MatchConfig {
    pub fn country(&self) -> Option<wa2crm_core::phone_match::DefaultCountry> {
        self.default_country.as_deref().and_then(|c| c.parse().ok())
    }

    /// Whether senders may be linked to Leads.
    pub fn leads(&self) -> bool {
        self.enabled && self.objects.iter().any(|o| o == "Lead")
    }
}

fn yes() -> bool {
    true
}
fn default_objects() -> Vec<String> {
    vec!["Contact".into(), "Lead".into()]
}
fn default_lead_lookup() -> String {
    "Lead__c".into()
}

fn default_login_url() -> String {
    "https://login.salesforce.com".into()
}
fn default_api_version() -> String {
    "v62.0".into()
}
fn default_session_minutes() -> u64 {
    90
}
fn default_reserve() -> f64 {
    0.2
}
fn default_max_concurrent() -> usize {
    4
}
fn default_task_key() -> String {
    "WA_Message_Id__c".into()
}
fn default_linger() -> u64 {
    200
}
fn default_timeout() -> u64 {
    wa2crm_rest::client::DEFAULT_TIMEOUT.as_secs()
}

/// Which OAuth flow the keys describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    JwtBearer,
    RefreshToken,
    ClientCredentials,
}

impl SalesforceConfig {
    /// How long one call may take.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds)
    }

    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }

    /// Which org's credentials these are: the login host, the connected app, the user, the
    /// flow. State kept for another (a session, a pause) is not used: moving from a sandbox org
    /// to production never writes into the sandbox with a cached session.
    pub fn account(&self) -> String {
        let flow = match self.flow() {
            Some(Flow::JwtBearer) => "jwt",
            Some(Flow::RefreshToken) => "refresh",
            Some(Flow::ClientCredentials) => "client",
            None => "",
        };
        wa2crm_rest::token::account_fingerprint(&[
            self.login_url.trim_end_matches('/'),
            &self.client_id,
            self.username.as_deref().unwrap_or(""),
            flow,
        ])
    }

    pub fn flow(&self) -> Option<Flow> {
        let key = self.private_key_file.is_some() || self.private_key.is_some();
        match (
            key,
            self.username.is_some(),
            self.client_secret.is_some(),
            self.refresh_token.is_some(),
        ) {
            (true, true, false, false) => Some(Flow::JwtBearer),
            (false, false, true, true) => Some(Flow::RefreshToken),
            (false, false, true, false) => Some(Flow::ClientCredentials),
            _ => None,
        }
    }

    /// `/services/data/vXX.X`
    pub fn data_path(&self) -> String {
        format!("/services/data/{}", self.api_version)
    }

    /// Why no flow is recognised, named at the key that is missing or in the way.
    fn flow_problem(&self) -> (&'static str, String) {
        const FLOWS: &str = "set one flow: `username` + `private_key_file` (JWT bearer), \
                             `client_secret` + `refresh_token` (refresh token), or `client_secret` \
                             alone (client credentials, with login_url your My Domain URL)";
        let key = self.private_key_file.is_some() || self.private_key.is_some();
        let user = self.username.is_some();
        let secret = self.client_secret.is_some();
        if key || user {
            // Meant the JWT bearer flow.
            if secret || self.refresh_token.is_some() {
                let extra = if secret {
                    "client_secret"
                } else {
                    "refresh_token"
                };
                return (
                    extra,
                    format!(
                        "the JWT bearer flow (username + private key) takes no `{extra}`: \
                         remove it, or remove username and the key; {FLOWS}"
                    ),
                );
            }
            if !key {
                return (
                    "private_key_file",
                    "is missing: the JWT bearer flow signs with the connected app's private key \
                     (or put the key itself in the credential file connectors.NAME.private_key)"
                        .into(),
                );
            }
            return (
                "username",
                "is missing: the JWT bearer flow logs in as the integration user".into(),
            );
        }
        if self.refresh_token.is_some() {
            return (
                "client_secret",
                "is missing: the refresh-token flow needs the connected app's consumer secret"
                    .into(),
            );
        }
        ("client_secret", format!("is missing: {FLOWS}"))
    }

    /// Every problem as (key under the connector's table, what is wrong). No I/O.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, m: String| p.push((k.to_owned(), m));
        match self.flow() {
            None => {
                let (key, problem) = self.flow_problem();
                add(key, problem);
            }
            Some(Flow::ClientCredentials)
                if self.login_url.contains("://login.salesforce.com")
                    || self.login_url.contains("://test.salesforce.com") =>
            {
                add(
                    "login_url",
                    "client credentials need your My Domain URL (https://NAME.my.salesforce.com), \
                     not login or test.salesforce.com"
                        .into(),
                )
            }
            _ => {}
        }
        for (key, secret) in [
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
            ("private_key", &self.private_key),
        ] {
            use secrecy::ExposeSecret;
            if let Some(problem) = secret
                .as_ref()
                .and_then(|s| wa2crm_core::config_problem::secret_problem(s.expose_secret()))
            {
                add(key, problem.into());
            }
        }
        if self.client_id.trim().is_empty() || self.client_id.contains("...") {
            add(
                "client_id",
                "is empty or a placeholder: the connected app's consumer key".into(),
            );
        }
        if self.private_key_file.is_some() && self.private_key.is_some() {
            add(
                "private_key",
                "set private_key_file or private_key, not both".into(),
            );
        }
        match wa2crm_core::endpoint::check(&self.login_url) {
            Ok(u) if u.path() == "/" => {}
            Ok(_) => add(
                "login_url",
                format!(
                    "{:?} is not a base URL like https://login.salesforce.com",
                    self.login_url
                ),
            ),
            Err(e) => add("login_url", e),
        }
        let v = self
            .api_version
            .strip_prefix('v')
            .and_then(|n| n.parse::<f64>().ok());
        if !v.is_some_and(|n| n >= 46.0) {
            add(
                "api_version",
                format!(
                    "{:?}: wa2crm needs v46.0 or newer (collections upsert)",
                    self.api_version
                ),
            );
        }
        for (key, value) in [
            ("object", &self.object),
            ("external_id", &self.external_id),
            ("contact_lookup", &self.contact_lookup),
            ("contact_key", &self.contact_key),
        ] {
            if value.trim().is_empty() {
                add(key, "names no field or object".into());
            } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                add(
                    key,
                    format!("{value:?} is not an API name (letters, digits, _)"),
                );
            }
        }
        let m = &self.matching;
        if let Some(country) = &m.default_country
            && let Err(e) = country.parse::<wa2crm_core::phone_match::DefaultCountry>()
        {
            add("match.default_country", e);
        }
        for o in &m.objects {
            if o != "Contact" && o != "Lead" {
                add(
                    "match.objects",
                    format!("{o:?}: wa2crm looks for senders among \"Contact\" and \"Lead\""),
                );
            }
        }
        if m.enabled && m.objects.is_empty() {
            add(
                "match.objects",
                "names no object: \"Contact\", \"Lead\", or set enabled = false".into(),
            );
        }
        if m.leads()
            && !m
                .lead_lookup
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            add(
                "match.lead_lookup",
                format!(
                    "{:?} is not an API name (letters, digits, _)",
                    m.lead_lookup
                ),
            );
        }
        if !(1..=1440).contains(&self.session_minutes) {
            add(
                "session_minutes",
                format!("{} is outside 1–1440", self.session_minutes),
            );
        }
        if !(0.0..=0.9).contains(&self.daily_reserve) {
            add(
                "daily_reserve",
                format!("{} is outside 0.0–0.9", self.daily_reserve),
            );
        }
        if !(1..=25).contains(&self.max_concurrent) {
            add(
                "max_concurrent",
                format!("{} is outside 1–25", self.max_concurrent),
            );
        }
        for (key, problem) in self.task.iter().flat_map(|t| t.validate()) {
            add(&key, problem);
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
        if self.fields.is_empty() {
            add(
                "fields",
                "maps no attribute: nothing would be written".into(),
            );
        }
        for problem in self.fields.validate() {
            add(&format!("fields.{}", problem.attribute), problem.problem);
        }
        for (attribute, field) in self.fields.iter() {
            if field == self.external_id && attribute != CanonicalAttribute::MessageId {
                add(
                    &format!("fields.{attribute}"),
                    format!("writes into external_id {field:?}, which holds the message id"),
                );
            }
            if field == self.contact_lookup {
                add(
                    &format!("fields.{attribute}"),
                    format!("writes into contact_lookup {field:?}, which links the Contact"),
                );
            }
        }
        p
    }
}

impl wa2crm_core::ConnectorConfig for SalesforceConfig {
    const TYPE: &'static str = "salesforce";

    fn problems(&self) -> Vec<(String, String)> {
        self.validate()
    }

    fn endpoint(&self) -> Option<(&'static str, String)> {
        Some(("login_url", self.login_url.clone()))
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

    fn base() -> serde_json::Value {
        json!({"type": "salesforce", "client_id": "3MVG9", "username": "int@example.com",
            "private_key_file": "/etc/wa2crm/salesforce.key", "object": "WhatsApp_Media__c",
            "external_id": "WA_Message_Id__c", "contact_lookup": "Contact__c",
            "contact_key": "WhatsApp_Id__c", "fields": {"file_url": "Media_Url__c"}})
    }

    #[test]
    fn the_design_example_is_valid_and_picks_the_jwt_flow() {
        let c = SalesforceConfig::from_value(&base()).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.flow(), Some(Flow::JwtBearer));
        assert_eq!(c.data_path(), "/services/data/v62.0");
    }

    #[test]
    fn flows_are_told_apart_and_mixtures_refused() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("username");
        v.as_object_mut().unwrap().remove("private_key_file");
        v["client_secret"] = json!("s");
        v["refresh_token"] = json!("r");
        assert_eq!(
            SalesforceConfig::from_value(&v).unwrap().flow(),
            Some(Flow::RefreshToken)
        );
        v.as_object_mut().unwrap().remove("refresh_token");
        let c = SalesforceConfig::from_value(&v).unwrap();
        assert_eq!(c.flow(), Some(Flow::ClientCredentials));
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["login_url"], "client credentials need My Domain");
        let mut mixed = base();
        mixed["client_secret"] = json!("s");
        let keys: Vec<String> = SalesforceConfig::from_value(&mixed)
            .unwrap()
            .validate()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["client_secret"], "the JWT flow takes no secret");
        // Each half-configured flow is blamed on the key that is missing.
        let mut no_key = base();
        no_key.as_object_mut().unwrap().remove("private_key_file");
        let problems = SalesforceConfig::from_value(&no_key).unwrap().validate();
        assert_eq!(problems[0].0, "private_key_file", "{problems:?}");
        assert!(problems[0].1.starts_with("is missing"), "{problems:?}");
        let mut no_user = base();
        no_user.as_object_mut().unwrap().remove("username");
        assert_eq!(
            SalesforceConfig::from_value(&no_user).unwrap().validate()[0].0,
            "username"
        );
        let mut refresh_only = base();
        refresh_only.as_object_mut().unwrap().remove("username");
        refresh_only
            .as_object_mut()
            .unwrap()
            .remove("private_key_file");
        refresh_only["refresh_token"] = json!("r");
        assert_eq!(
            SalesforceConfig::from_value(&refresh_only)
                .unwrap()
                .validate()[0]
                .0,
            "client_secret"
        );
        let mut placeholder = base();
        placeholder.as_object_mut().unwrap().remove("username");
        placeholder
            .as_object_mut()
            .unwrap()
            .remove("private_key_file");
        placeholder["client_secret"] = json!("...");
        placeholder["refresh_token"] = json!("r");
        let problems = SalesforceConfig::from_value(&placeholder)
            .unwrap()
            .validate();
        assert_eq!(problems[0].0, "client_secret", "{problems:?}");
        assert!(problems[0].1.contains("placeholder"), "{problems:?}");
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let mut v = base();
        v["api_version"] = json!("v45.0");
        v["object"] = json!("WhatsApp Media");
        v["daily_reserve"] = json!(1.5);
        v["fields"] = json!({"file_url": "WA_Message_Id__c", "caption": "Contact__c"});
        let keys: Vec<String> = SalesforceConfig::from_value(&v)
            .unwrap()
            .validate()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for k in [
            "api_version",
            "object",
            "daily_reserve",
            "fields.file_url",
            "fields.caption",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
        }
    }
}
