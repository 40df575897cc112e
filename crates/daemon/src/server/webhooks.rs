//! `GET` and `POST /webhooks/whatsapp`: Meta's subscription handshake and its event deliveries,
//! and what every source's intake shares: reading the body, refusing, storing the events.
//!
//! The answers are chosen for how Meta behaves: anything but 200 is redelivered for days, so a
//! signed body we cannot read is acknowledged (and counted), while a bad signature gets 401 and
//! nothing is stored. A 200 goes out only after the jobs are durably committed; if the commit
//! fails the answer is 500, and Meta's redelivery is what saves the file.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use wa2crm_core::Source;
use wa2crm_queue::Enqueued;
use wa2crm_whatsapp::meta::{self, SubscribeQuery};

use super::AppState;
use crate::metrics;

const SIGNATURE_HEADER: &str = "x-hub-signature-256";

pub async fn meta_subscribe(
    State(state): State<AppState>,
    Query(query): Query<SubscribeQuery>,
) -> Response {
    let Some(intake) = &state.meta else {
        return not_configured();
    };
    match meta::verify_subscription(&query, intake.verify_token.expose_secret()) {
        Ok(challenge) => {
            tracing::info!("Meta webhook subscription verified.");
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "text/plain")],
                challenge.to_owned(),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "Meta webhook subscription refused.");
            (StatusCode::FORBIDDEN, format!("{e}\n")).into_response()
        }
    }
}

pub async fn meta_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ingest(state, Source::Meta, headers, body).await
}

pub(super) fn not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "this source is not configured: add its [sources.*] section\n",
    )
        .into_response()
}

async fn ingest(
    state: AppState,
    source: Source,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let src = source.as_str();
    metrics::received(src);
    let Some(intake) = &state.meta else {
        return not_configured();
    };
    let body = match readable(src, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = meta::verify_signature(
        intake.app_secret.expose_secret().as_bytes(),
        &body,
        signature,
    ) {
        return refused(src, StatusCode::UNAUTHORIZED, &e.to_string(), body.len());
    }
    cloud_api_events(&state, source, &body).await
}

/// The body, or the answer to a body that could not be read (too large, cut off).
pub(super) fn readable(
    src: &'static str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "unreadable"
        };
        metrics::rejected(src, reason);
        tracing::warn!(source = src, %status, "Webhook body refused: {}.", rejection.body_text());
        Box::new(rejection.into_response())
    })
}

/// A request that failed its authentication: counted, logged, answered, nothing stored.
pub(super) fn refused(src: &'static str, status: StatusCode, why: &str, bytes: usize) -> Response {
    metrics::rejected(src, "signature");
    tracing::warn!(source = src, error = %why, bytes, "Webhook refused: bad signature.");
    (status, format!("{why}\n")).into_response()
}

/// A Cloud API body (Meta's or 360dialog's) that passed its check: parsed and stored.
pub(super) async fn cloud_api_events(state: &AppState, source: Source, body: &[u8]) -> Response {
    let src = source.as_str();
    let parsed = match meta::parse_webhook(source, body, OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err(e) => {
            metrics::unparseable(src);
            tracing::error!(source = src, error = %e, bytes = body.len(),
                "Signed webhook could not be read; acknowledged so it is not resent.");
            return (StatusCode::OK, "unreadable body acknowledged\n").into_response();
        }
    };
    match store(state, source, &parsed).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(r) => *r,
    }
}

/// Counts what was skipped and commits the events; `Err` is the answer when the commit failed.
pub(super) async fn store(
    state: &AppState,
    source: Source,
    parsed: &meta::ParsedWebhook,
) -> Result<(), Box<Response>> {
    let src = source.as_str();
    let s = parsed.skipped;
    metrics::skipped(src, "status", s.statuses);
    metrics::skipped(src, "error", s.errors);
    metrics::skipped(src, "non_media", s.non_media);
    metrics::skipped(src, "invalid", s.invalid);
    metrics::skipped(src, "other_change", s.other_changes);
    for problem in &parsed.problems {
        tracing::warn!(source = src, "Media message skipped: {problem}.");
    }
    match state.store.enqueue(&parsed.events).await {
        Ok(results) => {
            let accepted = results
                .iter()
                .filter(|r| matches!(r, Enqueued::Inserted(_)))
                .count() as u64;
            let duplicate = results.len() as u64 - accepted;
            metrics::media_events(src, "accepted", accepted);
            if accepted > 0 {
                state.wake.notify_waiters();
            }
            metrics::media_events(src, "duplicate", duplicate);
            if accepted + duplicate > 0 {
                tracing::debug!(source = src, accepted, duplicate, "Webhook stored.");
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(source = src, error = %e,
                "Webhook not stored; answered 500 so the sender delivers it again.");
            Err(Box::new(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not stored, retry later\n",
                )
                    .into_response(),
            ))
        }
    }
}
