//! Logs go to the journal when systemd runs us (it sets `JOURNAL_STREAM`), to stderr otherwise.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The installed filter, for [`set_filter`]; `None` when `RUST_LOG` chose it (it stays).
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber; `RUST_LOG` filters, `default_level` when it is unset.
pub fn init(default_level: &str) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let chosen_by_env = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default_level));
    let (filter, handle) = reload::Layer::new(filter);
    if !chosen_by_env {
        let _ = FILTER.set(handle);
    }
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry
                    .with(journald.with_syslog_identifier("wa2crm".into()))
                    .init();
                return;
            }
            Err(e) => eprintln!("wa2crm: journald unavailable ({e}); logging to stderr"),
        }
    }
    // Colours only for a person at a terminal, not for log files and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        )
        .init();
}

/// Changes what is logged from now on (the sandbox hushes what it does on purpose), unless
/// `RUST_LOG` chose the filter.
pub fn set_filter(directives: &str) {
    if let Some(handle) = FILTER.get() {
        let _ = handle.reload(EnvFilter::new(directives));
    }
}
