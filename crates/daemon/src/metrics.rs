//! What wa2crm counts, in one place, so names stay consistent and are all described.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use wa2crm_queue::{JobState, StateCounts};

pub const WEBHOOKS_RECEIVED: &str = "wa2crm_webhooks_received_total";
pub const WEBHOOKS_REJECTED: &str = "wa2crm_webhooks_rejected_total";
pub const WEBHOOKS_UNPARSEABLE: &str = "wa2crm_webhooks_unparseable_total";
pub const MEDIA_EVENTS: &str = "wa2crm_media_events_total";
pub const ITEMS_SKIPPED: &str = "wa2crm_webhook_items_skipped_total";
pub const QUEUE_JOBS: &str = "wa2crm_queue_jobs";
pub const BACKLOG_SECONDS: &str = "wa2crm_queue_backlog_seconds";
pub const JOB_OUTCOMES: &str = "wa2crm_job_outcomes_total";
pub const DELIVERIES: &str = "wa2crm_deliveries_total";
pub const DELIVERY_BATCH_SIZE: &str = "wa2crm_delivery_batch_size";
pub const DELIVERY_SECONDS: &str = "wa2crm_delivery_seconds";
pub const MEDIA_NOT_TAKEN: &str = "wa2crm_media_not_taken_total";
pub const MEDIA_REMOVED: &str = "wa2crm_media_removed_total";

/// Installs the Prometheus recorder as the process's global one, once; later calls (a test
/// process may start several servers) get the same handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("A metrics recorder was already installed; /metrics may be empty.");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        WEBHOOKS_RECEIVED,
        "Webhook POSTs received, by source, before any check."
    );
    describe_counter!(
        WEBHOOKS_REJECTED,
        "Webhook POSTs refused, by source and reason (signature, too_large, unreadable)."
    );
    describe_counter!(
        WEBHOOKS_UNPARSEABLE,
        "Signed webhook bodies that were not Cloud API JSON; answered 200 so Meta stops resending."
    );
    describe_counter!(
        MEDIA_EVENTS,
        "Media messages found in webhooks, by source and outcome (accepted, duplicate)."
    );
    describe_counter!(
        ITEMS_SKIPPED,
        "Webhook items that were not customer media, by source and reason."
    );
    describe_gauge!(QUEUE_JOBS, "Jobs in the queue by state.");
    describe_gauge!(
        BACKLOG_SECONDS,
        "How long the oldest unfinished job has waited (0 when none waits)."
    );
    describe_counter!(
        JOB_OUTCOMES,
        "Job attempts by outcome (done, retry, dead, lease_lost, interrupted, queue_error)."
    );
    describe_counter!(
        DELIVERIES,
        "Records handed to a connector, by connector and outcome (ok, failed)."
    );
    describe_histogram!(
        DELIVERY_BATCH_SIZE,
        "Records per connector deliver call: how well batches fill."
    );
    describe_counter!(
        MEDIA_NOT_TAKEN,
        "Media jobs ended without fetching the file, by reason (no_consent)."
    );
    describe_counter!(
        MEDIA_REMOVED,
        "Stored media removed, by reason (retention, erasure)."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        "Time of one connector deliver call, rate-limit waits included."
    );
}

pub fn media_skipped(reason: &'static str) {
    counter!(MEDIA_NOT_TAKEN, "reason" => reason).increment(1);
}

pub fn media_removed(reason: &'static str, n: u64) {
    counter!(MEDIA_REMOVED, "reason" => reason).increment(n);
}

pub fn received(source: &'static str) {
    counter!(WEBHOOKS_RECEIVED, "source" => source).increment(1);
}

pub fn rejected(source: &'static str, reason: &'static str) {
    counter!(WEBHOOKS_REJECTED, "source" => source, "reason" => reason).increment(1);
}

pub fn unparseable(source: &'static str) {
    counter!(WEBHOOKS_UNPARSEABLE, "source" => source).increment(1);
}

pub fn media_events(source: &'static str, outcome: &'static str, n: u64) {
    if n > 0 {
        counter!(MEDIA_EVENTS, "source" => source, "outcome" => outcome).increment(n);
    }
}

pub fn skipped(source: &'static str, reason: &'static str, n: u64) {
    if n > 0 {
        counter!(ITEMS_SKIPPED, "source" => source, "reason" => reason).increment(n);
    }
}

pub fn queue_depth(counts: &StateCounts) {
    for state in [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
    ] {
        gauge!(QUEUE_JOBS, "state" => state.as_str()).set(counts.get(state) as f64);
    }
    gauge!(QUEUE_JOBS, "state" => "retrying").set(counts.retrying as f64);
    let waited = counts
        .oldest_waiting_ms
        .map_or(0, |t| (wa2crm_core::state::now_ms() - t).max(0));
    gauge!(BACKLOG_SECONDS).set(waited as f64 / 1000.0);
}

pub fn job_outcome(outcome: &'static str) {
    counter!(JOB_OUTCOMES, "outcome" => outcome).increment(1);
}

pub fn delivery(connector: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!(DELIVERIES, "connector" => connector.to_owned(), "outcome" => outcome).increment(1);
}

pub fn delivery_batch(connector: &str, size: usize, took: std::time::Duration) {
    histogram!(DELIVERY_BATCH_SIZE, "connector" => connector.to_owned()).record(size as f64);
    histogram!(DELIVERY_SECONDS, "connector" => connector.to_owned()).record(took.as_secs_f64());
}
