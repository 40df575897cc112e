//! `[connectors.NAME]` with `type = "zendesk"`.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use wa2crm_core::FieldMapping;

/// Which ticket a customer's media goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketPolicy {
    /// The requester's most recent ticket that is not solved or closed, else a new one.
    #[default]
    OpenOrNew,
    /// A new ticket for every media.
    NewPerMedia,
    /// `#1234` in the caption picks the ticket; without one (or if it is not the requester's),
    /// as `open_or_new`.
    TicketIdFromCaption,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    #[serde(rename = "type")]
    pub connector_type: String,
    /// `acme` for https://acme.zendesk.com.
    pub subdomain: Option<String>,
    /// The account's URL, instead of `subdomain` (a host mapped to Zendesk, the sandbox).
    pub base_url: Option<String>,
    /// API token authentication: the agent the token acts as, and the token.
    pub email: Option<String>,
    pub api_token: Option<SecretString>,
    /// OAuth with the refresh-token grant: each refresh rotates both tokens.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    /// The plan's account-wide limit (Team 200, Growth and Professional 400, Enterprise 700).
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    #[serde(default)]
    pub ticket_policy: TicketPolicy,
    /// Where new tickets go.
    pub group_id: Option<u64>,
    pub brand_id: Option<u64>,
    pub ticket_form_id: Option<u64>,
    /// A new ticket's subject; `{name}` is the sender's profile name (or number).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The file is uploaded too, so agents play it inside Zendesk (up to `max_upload_bytes`;
    /// a larger one goes as its link only, and the note says so).
    #[serde(default)]
    pub upload: bool,
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    /// The key of the requester's checkbox user field that says they consented.
    pub consent_field: Option<String>,
    /// The key of a text user field the WhatsApp number (+E164) is written to, when a requester
    /// is made or found (`provision` creates it).
    pub number_field: Option<String>,
    /// How senders are found among the account's end users (`[connectors.NAME.match]`).
    #[serde(rename = "match", default)]
    pub matching: MatchConfig,
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Canonical attribute = the title of a custom ticket field.
    #[serde(default)]
    pub fields: FieldMapping,
}

/// `[connectors.NAME.match]`: every WhatsApp form of the sender's number is searched among the
/// end users' phone numbers and verified locally.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// The country a number written without one is read in (`0151 …` in `DE`).
    pub default_country: Option<String>,
    /// Several end users hold the number: `most_recent` or `skip` (a new requester is made).
    #[serde(default)]
    pub several: wa2crm_core::matching::Several,
}

fn default_requests_per_minute() -> u32 {
    200
}

fn default_subject() -> String {
    "WhatsApp media from {name}".into()
}

/// Zendesk's documented attachment limit is 50 MB; an account may set it lower.
fn default_max_upload_bytes() -> u64 {
    50 * 1024 * 1024
}

fn default_linger_ms() -> u64 {
    500
}

fn default_timeout_seconds() -> u64 {
    60
}

/// How the connector authenticates.
#[derive(Debug)]
pub enum AuthConfig<'a> {
    /// Basic `{email}/token:{api_token}`.
    ApiToken {
        email: &'a str,
        token: &'a SecretString,
    },
    OAuth {
        client_id: &'a str,
        client_secret: &'a SecretString,
        refresh_token: &'a SecretString,
    },
}

impl ZendeskConfig {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }

    /// `https://{subdomain}.zendesk.com`, or `base_url`.
    pub fn base_url(&self) -> Option<String> {
        match (&self.subdomain, &self.base_url) {
            (Some(s), None) => Some(format!("https://{}.zendesk.com", s.trim())),
            (None, Some(u)) => Some(u.trim_end_matches('/').to_owned()),
            _ => None,
        }
    }

    pub fn auth(&self) -> Option<AuthConfig<'_>> {
        match (
            &self.email,
            &self.api_token,
            &self.client_id,
            &self.client_secret,
            &self.refresh_token,
        ) {
            (Some(email), Some(token), None, None, None) => {
                Some(AuthConfig::ApiToken { email, token })
            }
            (None, None, Some(id), Some(secret), Some(refresh)) => Some(AuthConfig::OAuth {
                client_id: id,
                client_secret: secret,
                refresh_token: refresh,
            }),
            _ => None,
        }
    }

    /// Which account's credentials these are: the account's URL, the agent or OAuth client, and
    /// the credential itself (hashed by the fingerprint). State kept for another account (a
    /// token, a pause) is not used.
    pub fn account(&self) -> String {
        use secrecy::ExposeSecret;
        let base = self.base_url().unwrap_or_default();
        match self.auth() {
            Some(AuthConfig::ApiToken { email, token }) => {
                wa2crm_rest::token::account_fingerprint(&[&base, email, token.expose_secret()])
            }
            Some(AuthConfig::OAuth {
                client_id,
                refresh_token,
                ..
            }) => wa2crm_rest::token::account_fingerprint(&[
                &base,
                client_id,
                refresh_token.expose_secret(),
            ]),
            None => wa2crm_rest::token::account_fingerprint(&[&base]),
        }
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
        match (&self.subdomain, &self.base_url) {
            (None, None) => add(
                "subdomain",
                "is missing: the part before .zendesk.com of the account's address".into(),
            ),
            (Some(_), Some(_)) => add(
                "base_url",
                "set either subdomain or base_url, not both".into(),
            ),
            (Some(s), None) => {
                let ok = !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    add(
                        "subdomain",
                        format!(
                            "{s:?} is not a Zendesk subdomain: write only the name, like acme for \
                             https://acme.zendesk.com"
                        ),
                    );
                }
            }
            (None, Some(u)) => {
                if let Err(e) = wa2crm_core::endpoint::check(u) {
                    add("base_url", e);
                }
            }
        }
        if self.auth().is_none() {
            add(
                "api_token",
                "give email and api_token (Admin Center → Apps and integrations → Zendesk API), or \
                 client_id, client_secret and refresh_token (OAuth), not parts of both"
                    .into(),
            );
        }
        if let Some(email) = &self.email
            && !email.contains('@')
        {
            add(
                "email",
                format!("{email:?} is not the email address of the agent the token acts as"),
            );
        }
        for (key, secret) in [
            ("api_token", &self.api_token),
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ] {
            if let Some(s) = secret
                && let Some(problem) = wa2crm_core::config_problem::secret_problem(
                    secrecy::ExposeSecret::expose_secret(s),
                )
            {
                add(key, problem.to_owned());
            }
        }
        if !(1..=2500).contains(&self.requests_per_minute) {
            add(
                "requests_per_minute",
                format!(
                    "{} is outside 1 ..= 2500 (the High Volume add-on's limit)",
                    self.requests_per_minute
                ),
            );
        }
        if let Some(country) = &self.matching.default_country
            && let Err(e) = country.parse::<wa2crm_core::phone_match::DefaultCountry>()
        {
            add("match.default_country", e);
        }
        for (key, value) in [
            ("consent_field", &self.consent_field),
            ("number_field", &self.number_field),
        ] {
            if let Some(v) = value
                && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            {
                add(
                    key,
                    format!(
                        "{v:?} is not a user field key (letters, digits and _; Admin Center → \
                         People → Configuration → User fields shows each field's key)"
                    ),
                );
            }
        }
        if self.subject.trim().is_empty() {
            add("subject", "is empty".into());
        }
        for problem in self.fields.validate() {
            add(&format!("fields.{}", problem.attribute), problem.problem);
        }
        p
    }
}

impl wa2crm_core::ConnectorConfig for ZendeskConfig {
    const TYPE: &'static str = "zendesk";

    fn problems(&self) -> Vec<(String, String)> {
        self.validate()
    }

    fn endpoint(&self) -> Option<(&'static str, String)> {
        let key = if self.subdomain.is_some() {
            "subdomain"
        } else {
            "base_url"
        };
        self.base_url().map(|u| (key, u))
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

    fn config(extra: serde_json::Value) -> Result<ZendeskConfig, String> {
        let mut table = json!({"type": "zendesk", "subdomain": "acme",
            "email": "agent@acme.example", "api_token": "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                table.as_object_mut().unwrap().remove(k);
            } else {
                table[k] = v.clone();
            }
        }
        ZendeskConfig::from_value(&table)
    }

    fn keys(c: &ZendeskConfig) -> Vec<String> {
        c.validate().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn an_api_token_and_a_subdomain_are_enough() {
        let c = config(json!({})).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.base_url().unwrap(), "https://acme.zendesk.com");
        assert!(matches!(c.auth(), Some(AuthConfig::ApiToken { .. })));
        assert_eq!(c.ticket_policy, TicketPolicy::OpenOrNew);
        assert_eq!(c.requests_per_minute, 200);
        let other =
            config(json!({"api_token": "9ZcNj2LzwEJbVvQeTqk7r3uAxYm4sHdP0GfKo1Bi"})).unwrap();
        assert_ne!(
            c.account(),
            other.account(),
            "another token is another account"
        );
    }

    #[test]
    fn each_mistake_is_named_at_its_key() {
        let c = config(
            json!({"subdomain": "https://acme.zendesk.com", "email": "agent",
            "requests_per_minute": 0}),
        )
        .unwrap();
        assert_eq!(keys(&c), ["subdomain", "email", "requests_per_minute"]);
        let c = config(json!({"base_url": "https://support.acme.example"})).unwrap();
        assert_eq!(keys(&c), ["base_url"], "subdomain and base_url both set");
        let c = config(json!({"client_id": "wa2crm"})).unwrap();
        assert_eq!(
            keys(&c),
            ["api_token"],
            "parts of both ways to authenticate"
        );
        let c = config(json!({"api_token": "changeme"})).unwrap();
        assert_eq!(keys(&c), ["api_token"], "a placeholder");
        assert!(config(json!({"ticket_policy": "newest"})).is_err());
    }

    #[test]
    fn oauth_takes_the_three_values() {
        let c = config(json!({"email": null, "api_token": null, "client_id": "wa2crm",
            "client_secret": "3e8a1b2c9d7f4e6a5b0c1d2e3f4a5b6c", "refresh_token": "e3b0c44298fc1c149afbf4c8996fb924"}))
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert!(matches!(c.auth(), Some(AuthConfig::OAuth { .. })));
    }
}
