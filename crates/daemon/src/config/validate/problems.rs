//! Problems gathered while a configuration is checked, each under its dotted key, and the checks
//! several sections share (URLs, endpoints, secrets, durations).

use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::config::explain::ConfigError;

pub(super) struct Problems(pub(super) Vec<ConfigError>);

impl Problems {
    pub(super) fn add(&mut self, key: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError::new(key, problem));
    }

    /// A secret that is empty or a placeholder copied from an example.
    pub(super) fn secret(&mut self, key: &str, value: &SecretString) {
        if let Some(problem) = wa2crm_core::config_problem::secret_problem(value.expose_secret()) {
            self.add(key, problem);
        }
    }

    pub(super) fn url(&mut self, key: &str, value: &str, schemes: &[&str]) -> Option<Url> {
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
    pub(super) fn endpoint(&mut self, key: &str, value: &str) -> Option<Url> {
        match wa2crm_core::endpoint::check(value) {
            Ok(u) => Some(u),
            Err(e) => {
                self.add(key, e);
                None
            }
        }
    }

    pub(super) fn duration(&mut self, key: &str, value: Option<&str>) -> Option<Duration> {
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
