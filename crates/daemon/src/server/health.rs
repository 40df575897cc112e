//! Liveness, readiness and Prometheus metrics.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process answers: nothing more is claimed.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// A readiness check and when it was made.
#[derive(Debug, Clone)]
pub struct Readiness {
    at: Instant,
    /// The places that did not answer (`queue`, `storage`); empty when ready.
    failing: Vec<&'static str>,
}

/// How long a readiness check is reused.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// Ready when the queue database and the storage answer. The answer names the place that does
/// not, never its error (which goes to the journal): this route may face the internet.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut last = state.readiness.lock().await;
    let fresh = last.as_ref().filter(|r| r.at.elapsed() < READINESS_TTL);
    let failing = match fresh {
        Some(r) => r.failing.clone(),
        None => {
            let mut failing = Vec::new();
            if let Err(e) = state.store.ping().await {
                tracing::warn!(error = %e, "Not ready: the queue database does not answer.");
                failing.push("queue");
            }
            if let Some(media) = &state.media
                && let Err(e) = media.storage.check().await
            {
                tracing::warn!(error = %e, "Not ready: the storage does not answer.");
                failing.push("storage");
            }
            *last = Some(Readiness {
                at: Instant::now(),
                failing: failing.clone(),
            });
            failing
        }
    };
    drop(last);
    if failing.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", failing.join(", ")),
        )
            .into_response()
    }
}

/// The gauges of the queue are refreshed in the background (`systemd::spawn_queue_watch`), so a
/// scrape reads nothing from the database, however often it comes.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
