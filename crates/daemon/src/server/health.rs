//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process answers: nothing more is claimed.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the queue database and the storage answer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ping().await {
        problems.push(format!("queue: {e}"));
    }
    if let Some(media) = &state.media
        && let Err(e) = media.storage.check().await
    {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let text = problems.join("; ");
        tracing::warn!("Not ready: {text}.");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {text}\n"),
        )
            .into_response()
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
