//! `[connectors.NAME]` with `type = "zoho"`, and its pure checks.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use wa2crm_core::FieldMapping;

/// Zoho's data centres and their accounts servers (README.md, "Zoho CRM": sources).
pub const DATA_CENTRES: &[(&str, &str)] = &[
    ("com", "https://accounts.zoho.com"),
    ("eu", "https://accounts.zoho.eu"),
    ("in", "https://accounts.zoho.in"),
    ("com.au", "https://accounts.zoho.com.au"),
    ("jp", "https://accounts.zoho.jp"),
    ("ca", "https://accounts.zohocloud.ca"),
    ("com.cn", "https://accounts.zoho.com.cn"),
    ("sa", "https://accounts.zoho.sa"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoConfig {
    #[serde(rename = "type")]
    pub connector_type: String,
    /// Where the org lives: `com`, `eu`, `in`, `com.au`, `jp`, `ca`, `com.cn`, `sa`.
    pub data_centre: Option<String>,
    /// The accounts server's URL, instead of `data_centre` (the sandbox).
    pub accounts_url: Option<String>,
    /// A self client's or server-based client's id and secret, and the refresh token it was given.
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    /// The custom module holding one record per media.
    #[serde(default = "default_module")]
    pub module: String,
    /// Its unique text field holding the WhatsApp message id (the upsert's duplicate check).
    #[serde(default = "default_message_id_field")]
    pub message_id_field: String,
    /// Its text field holding the sender's +E164 number (what erasure finds a person's media by).
    #[serde(default = "default_sender_field")]
    pub sender_field: String,
    /// Its lookup fields to Contacts and to Leads.
    #[serde(default = "default_contact_lookup")]
    pub contact_lookup: String,
    #[serde(default = "default_lead_lookup")]
    pub lead_lookup: String,
    /// A unique text field on Contacts holding the +E164 number of Contacts wa2crm made: a
    /// Contact is made by upserting on it, so a retry never makes a second one.
    #[serde(default = "default_contact_key")]
    pub contact_key: String,
    /// How senders are found among the org's Contacts and Leads (`[connectors.NAME.match]`).
    #[serde(rename = "match", default)]
    pub matching: MatchConfig,
    /// A Note on the Contact (or Lead) per media, with its link.
    #[serde(default)]
    pub note: bool,
    /// The file attached to its media record too, so it opens inside Zoho (up to
    /// `max_attachment_bytes`; a larger one keeps its link only).
    #[serde(default)]
    pub attach: bool,
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// The share of the org's credits for the rolling 24 hours wa2crm leaves to other integrations.
    #[serde(default = "default_reserve")]
    pub daily_reserve: f64,
    /// Calls in flight at once: the edition's concurrency limit is shared with the org's other
    /// integrations (Free 5, Standard 10, Professional 15, Enterprise 20, Ultimate 25).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// The Contact's boolean field that says the person consented (`policy.consent = "crm_field"`).
    pub consent_field: Option<String>,
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Canonical attribute = the API name of a field of `module`.
    #[serde(default)]
    pub fields: FieldMapping,
}

/// `[connectors.NAME.match]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// The country a number written without one is read in (`0151 …` in `DE`).
    pub default_country: Option<String>,
    /// Several Contacts (or Leads) hold the number: `most_recent` or `skip`.
    #[serde(default)]
    pub several: wa2crm_core::matching::Several,
    /// A sender found only as a Lead gets the media on the Lead; off: Leads are not looked at.
    #[serde(default = "yes")]
    pub leads: bool,
    /// Without a match: make a Contact (true), or dead-letter the media as unmatched (false).
    #[serde(default = "yes")]
    pub create: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            default_country: None,
            several: Default::default(),
            leads: true,
            create: true,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_module() -> String {
    "WhatsApp_Media".into()
}
fn default_message_id_field() -> String {
    "WA_Message_Id".into()
}
fn default_sender_field() -> String {
    "WA_Sender".into()
}
fn default_contact_lookup() -> String {
    "Contact".into()
}
fn default_lead_lookup() -> String {
    "Lead".into()
}
fn default_contact_key() -> String {
    "WhatsApp_Number".into()
}
/// Zoho's attachment limit (20 MB).
fn default_max_attachment_bytes() -> u64 {
    20 * 1024 * 1024
}
fn default_reserve() -> f64 {
    0.2
}
/// The Free edition's limit, so no edition is exceeded out of the box.
fn default_max_concurrent() -> usize {
    5
}
fn default_linger_ms() -> u64 {
    500
}
fn default_timeout_seconds() -> u64 {
    60
}

/// Whether `name` can be an API name: letters, digits and `_`, starting with a letter.
fn api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ZohoConfig {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }

    /// The accounts server tokens come from.
    pub fn accounts_url(&self) -> Option<String> {
        match (&self.data_centre, &self.accounts_url) {
            (Some(dc), None) => DATA_CENTRES
                .iter()
                .find(|(d, _)| *d == dc.trim().trim_start_matches('.'))
                .map(|(_, u)| (*u).to_owned()),
            (None, Some(u)) => Some(u.trim_end_matches('/').to_owned()),
            _ => None,
        }
    }

    /// Which org's credentials these are; state kept for another (a token, a pause) is not used.
    pub fn account(&self) -> String {
        use secrecy::ExposeSecret;
        wa2crm_rest::token::account_fingerprint(&[
            &self.accounts_url().unwrap_or_default(),
            &self.client_id,
            self.refresh_token.expose_secret(),
        ])
    }

    pub fn country(&self) -> Option<wa2crm_core::phone_match::DefaultCountry> {
        self.matching.default_country.as_deref()?.parse().ok()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// Every problem the types alone do not catch, under its key.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, m: String| p.push((k.to_owned(), m));
        let centres = DATA_CENTRES
            .iter()
            .map(|(d, _)| *d)
            .collect::<Vec<_>>()
            .join(", ");
        match (&self.data_centre, &self.accounts_url) {
            (None, None) => add(
                "data_centre",
                format!(
                    "is missing: where the org lives, one of {centres} (the end of the address you log in at)"
                ),
            ),
            (Some(_), Some(_)) => add(
                "accounts_url",
                "set either data_centre or accounts_url, not both".into(),
            ),
            (Some(dc), None) => {
                if self.accounts_url().is_none() {
                    add("data_centre", format!("{dc:?} is not one of {centres}"));
                }
            }
            (None, Some(u)) => {
                if let Err(e) = wa2crm_core::endpoint::check(u) {
                    add("accounts_url", e);
                }
            }
        }
        if self.client_id.trim().is_empty() {
            add("client_id", "is empty".into());
        }
        for (key, secret) in [
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ] {
            if let Some(problem) = wa2crm_core::config_problem::secret_problem(
                secrecy::ExposeSecret::expose_secret(secret),
            ) {
                add(key, problem.to_owned());
            }
        }
        for (key, value) in [
            ("module", &self.module),
            ("message_id_field", &self.message_id_field),
            ("sender_field", &self.sender_field),
            ("contact_lookup", &self.contact_lookup),
            ("lead_lookup", &self.lead_lookup),
            ("contact_key", &self.contact_key),
        ] {
            if !api_name(value) {
                add(
                    key,
                    format!(
                        "{value:?} is not an API name (letters, digits and _; Setup → Developer Hub → \
                         APIs and SDKs → API Names lists them)"
                    ),
                );
            }
        }
        if let Some(c) = &self.consent_field
            && !api_name(c)
        {
            add("consent_field", format!("{c:?} is not an API name"));
        }
        if !(0.0..=0.9).contains(&self.daily_reserve) {
            add(
                "daily_reserve",
                format!("{} is outside 0.0 ..= 0.9", self.daily_reserve),
            );
        }
        if !(1..=25).contains(&self.max_concurrent) {
            add(
                "max_concurrent",
                format!(
                    "{} is outside 1 ..= 25 (the Ultimate edition's limit)",
                    self.max_concurrent
                ),
            );
        }
        if !(1..=600).contains(&self.timeout_seconds) {
            add(
                "timeout_seconds",
                format!("{} is outside 1 ..= 600", self.timeout_seconds),
            );
        }
        if let Some(country) = &self.matching.default_country
            && let Err(e) = country.parse::<wa2crm_core::phone_match::DefaultCountry>()
        {
            add("match.default_country", e);
        }
        for problem in self.fields.validate() {
            add(&format!("fields.{}", problem.attribute), problem.problem);
        }
        for (attribute, field) in self.fields.iter() {
            if !api_name(field) {
                add(
                    &format!("fields.{attribute}"),
                    format!("{field:?} is not an API name"),
                );
            }
        }
        p
    }
}

impl wa2crm_core::ConnectorConfig for ZohoConfig {
    const TYPE: &'static str = "zoho";

    fn problems(&self) -> Vec<(String, String)> {
        self.validate()
    }

    fn endpoint(&self) -> Option<(&'static str, String)> {
        let key = if self.data_centre.is_some() {
            "data_centre"
        } else {
            "accounts_url"
        };
        self.accounts_url().map(|u| (key, u))
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
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn config(extra: serde_json::Value) -> Result<ZohoConfig, String> {
        let mut table = json!({"type": "zoho", "data_centre": "eu", "client_id": "1000.ABC",
            "client_secret": "3e8a1b2c9d7f4e6a5b0c1d2e3f4a5b6c",
            "refresh_token": "1000.e3b0c44298fc1c149afbf4c8996fb924.27ae41e4649b934ca495991b7852b855"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                table.as_object_mut().unwrap().remove(k);
            } else {
                table[k] = v.clone();
            }
        }
        ZohoConfig::from_value(&table)
    }

    fn keys(c: &ZohoConfig) -> Vec<String> {
        c.validate().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_data_centre_and_a_refresh_token_are_enough() {
        let c = config(json!({})).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.accounts_url().unwrap(), "https://accounts.zoho.eu");
        assert_eq!(
            (c.module.as_str(), c.max_concurrent, c.daily_reserve),
            ("WhatsApp_Media", 5, 0.2)
        );
        let ca = config(json!({"data_centre": "ca"})).unwrap();
        assert_eq!(ca.accounts_url().unwrap(), "https://accounts.zohocloud.ca");
        assert_ne!(
            c.account(),
            ca.account(),
            "another data centre is another org"
        );
    }

    #[test]
    fn each_mistake_is_named_at_its_key() {
        let c = config(json!({"data_centre": "de", "module": "WhatsApp Media",
            "max_concurrent": 40, "daily_reserve": 1.5, "refresh_token": "changeme"}))
        .unwrap();
        assert_eq!(
            keys(&c),
            [
                "data_centre",
                "refresh_token",
                "module",
                "daily_reserve",
                "max_concurrent"
            ]
        );
        let c = config(json!({"accounts_url": "https://accounts.zoho.eu"})).unwrap();
        assert_eq!(keys(&c), ["accounts_url"], "both set");
        let c = config(json!({"data_centre": null})).unwrap();
        assert_eq!(keys(&c), ["data_centre"]);
        assert!(config(json!({"note": "yes"})).is_err());
        assert!(config(json!({"unknown": 1})).is_err());
    }
}
