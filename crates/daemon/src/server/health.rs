//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process answers: nothing more is claimed.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the queue database answers; storage joins this check with the media pipeline.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready: the queue database does not answer.");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: queue: {e}\n"),
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    // Queue depth is read at scrape time, so it is right even with several instances writing.
    match state.store.counts().await {
        Ok(counts) => crate::metrics::queue_depth(&counts),
        Err(e) => tracing::warn!(error = %e, "Cannot read queue depth for /metrics."),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
