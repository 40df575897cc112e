//! One module per CLI command.

pub mod check;
pub mod erase;
pub mod hash_password;
pub mod provision;
pub mod replay;
pub mod retention;
pub mod run;
pub mod sandbox;
pub mod status;

use std::sync::Arc;

use anyhow::Context;
use wa2crm_queue::{JobStore, SystemClock};

use crate::config::{self, ConfigLocation, Validated};

/// Loads and validates the configuration. Problems are returned with every key listed, each
/// with its line in the file where it has one.
pub fn load_config(location: &ConfigLocation) -> anyhow::Result<Validated> {
    let config = location
        .load()
        .map_err(|errors| anyhow::anyhow!(location.report(&errors)))?;
    // Before anything is logged with a number in it.
    wa2crm_core::phone::show_in_logs(config.logging.show_phone_numbers);
    let text = std::fs::read_to_string(&location.file).unwrap_or_default();
    config::validate(config)
        .map_err(|errors| anyhow::anyhow!(location.report(&errors.located(&text))))
}

/// Opens the queue a configuration names, applying migrations.
pub async fn open_queue(url: &str) -> anyhow::Result<Arc<dyn JobStore>> {
    wa2crm_queue::open(url, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the queue at {}", redact_url(url)))
}

pub use wa2crm_queue::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://wa:hunter2@db/wa2crm"),
            "postgres://wa:***@db/wa2crm"
        );
        assert_eq!(
            redact_url("postgres://db/wa2crm?user=wa&password=hunter2&sslmode=require"),
            "postgres://db/wa2crm?user=wa&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/wa2crm/queue.db"),
            "sqlite:///var/lib/wa2crm/queue.db"
        );
        assert!(!redact_url("postgres//wa:hunter2@db").contains("hunter2"));
    }

    /// A queue that cannot be opened says where, never with what password.
    #[tokio::test]
    async fn a_queue_error_never_prints_the_password() {
        for url in [
            "postgres://wa:hunter2@db:port/wa2crm",
            "postgres://db/wa2crm?user=wa&password=hunter2&sslmode=sometimes",
            "mysql://wa:hunter2@db/wa2crm",
        ] {
            let e = format!("{:#}", open_queue(url).await.err().unwrap());
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
