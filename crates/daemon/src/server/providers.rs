//! `POST /webhooks/d360` and `POST /webhooks/twilio`: the Business Solution Providers.
//!
//! 360dialog forwards Cloud API webhooks unchanged; they are authenticated by its optional
//! signature or by a header the operator configured, then read as Meta's. Twilio posts a form
//! signed over the exact public URL; it is answered with empty TwiML, so the customer gets no
//! automatic reply, and with 403 when the signature fails (Twilio logs error 11200/57012).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use wa2crm_core::Source;
use wa2crm_whatsapp::{d360, twilio};

use super::AppState;
use super::webhooks::{cloud_api_events, not_configured, readable, refused, store};
use crate::config::D360Intake;
use crate::metrics;

const TWILIO_SIGNATURE: &str = "x-twilio-signature";

pub async fn d360_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let src = Source::D360.as_str();
    metrics::received(src);
    let Some(intake) = &state.d360 else {
        return not_configured();
    };
    let body = match readable(src, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Err(why) = d360_authentic(intake, &headers, &body) {
        return refused(src, StatusCode::UNAUTHORIZED, &why, body.len());
    }
    cloud_api_events(&state, Source::D360, &body).await
}

fn d360_authentic(intake: &D360Intake, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let result = match intake {
        D360Intake::Signature(secret) => d360::verify_signature(
            secret.expose_secret().as_bytes(),
            body,
            headers
                .get(d360::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok()),
        ),
        D360Intake::Header { name, value } => d360::verify_header(
            name.as_str(),
            value.expose_secret().as_bytes(),
            headers.get(name).map(|v| v.as_bytes()),
        ),
    };
    result.map_err(|e| e.to_string())
}

pub async fn twilio_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let src = Source::Twilio.as_str();
    metrics::received(src);
    let Some(intake) = &state.twilio else {
        return not_configured();
    };
    let body = match readable(src, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // Every parameter, in the order sent, including ones wa2crm does not know: all are signed.
    let params = twilio::form_params(&body);
    let signature = headers.get(TWILIO_SIGNATURE).and_then(|v| v.to_str().ok());
    if let Err(e) = twilio::verify_signature(
        intake.auth_token.expose_secret(),
        &intake.webhook_url,
        &params,
        signature,
    ) {
        return refused(src, StatusCode::FORBIDDEN, &e.to_string(), body.len());
    }
    let parsed = twilio::parse_form(&params, OffsetDateTime::now_utc());
    match store(&state, Source::Twilio, &parsed).await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml")],
            twilio::EMPTY_TWIML,
        )
            .into_response(),
        Err(r) => *r,
    }
}
