//! The audit log of replays and erasures (the queue's `audit_log` table), written the same way
//! from the console and the CLI.

use wa2crm_core::Phone;
use wa2crm_queue::{AuditEntry, JobStore};

/// Who ran a command: `cli:` and the login name (the one `sudo` was run from, if any).
pub fn cli_user() -> String {
    format!(
        "cli:{}",
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

/// Appends one entry, stamped now. A failure to write is logged and never undoes the act.
pub async fn record(store: &dyn JobStore, who: &str, action: &str, subject: &str, detail: String) {
    let entry = AuditEntry {
        at_ms: wa2crm_core::state::now_ms(),
        who: who.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
    };
    if let Err(e) = store.audit(&entry).await {
        tracing::warn!(action, "Could not write to the audit log: {e}");
    }
}

/// An erasure, under the number masked (`+49151…789`): the log outlives the erasure, the number
/// must not.
pub async fn erasure(store: &dyn JobStore, who: &str, phone: &Phone, failed: bool) {
    let detail = if failed {
        "erasure ran; a place failed (run it again to finish)"
    } else {
        "erased from every CRM, the storage and the queue"
    };
    record(store, who, "erase", &phone.masked(), detail.into()).await;
}
