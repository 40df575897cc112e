//! `POST /oauth/tokens` for the refresh-token grant. Sources: developer.zendesk.com "OAuth Tokens
//! for Grant Types" (the JSON request with `grant_type`, `refresh_token`, `client_id`,
//! `client_secret`; the answer with `access_token`, `refresh_token`, `expires_in`) and
//! support.zendesk.com 9182123625370 (a refresh deletes the previous access and refresh tokens).
//! A form-encoded request (RFC 6749 §6, which the OAuth 2 endpoint implements) is read too.
//! A refresh token used twice is `invalid_grant` (400), a wrong client `invalid_client` (401).

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Shared, lock};

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/oauth/tokens", post(token))
}

fn refused(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let params: Value = if form {
        let pairs: serde_json::Map<String, Value> = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        Value::Object(pairs)
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let text = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or_default();
    // The client may also authenticate with HTTP Basic (RFC 6749 §2.3.1).
    let basic = super::routes::basic_credentials(&headers).and_then(|b| {
        let (id, secret) = b.split_once(':')?;
        Some((
            form_urlencoded::parse(id.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<String>(),
            form_urlencoded::parse(secret.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<String>(),
        ))
    });
    let (client_id, client_secret) = match basic {
        Some((id, secret)) => (id, secret),
        None => (
            text("client_id").to_owned(),
            text("client_secret").to_owned(),
        ),
    };
    let mut i = lock(&s);
    let Some(client) = i.config.oauth.clone() else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    if client_id != client.client_id || client_secret != client.client_secret {
        i.counts.failed_refreshes += 1;
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if text("grant_type") != "refresh_token" {
        i.counts.failed_refreshes += 1;
        return refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
        );
    }
    if i.refresh_token.as_deref() != Some(text("refresh_token")) {
        i.counts.failed_refreshes += 1;
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        );
    }
    i.counts.refreshes += 1;
    let n = i.counts.refreshes;
    let access = format!("zd-access-{n}-{:016x}", fastrand::u64(..));
    let refresh = format!("zd-refresh-{n}-{:016x}", fastrand::u64(..));
    // The previous tokens are deleted.
    i.access_tokens.clear();
    i.access_tokens
        .insert(access.clone(), Instant::now() + client.token_ttl);
    i.refresh_token = Some(refresh.clone());
    (
        StatusCode::OK,
        axum::Json(json!({"access_token": access, "refresh_token": refresh,
            "token_type": "bearer", "scope": "read write",
            "expires_in": client.token_ttl.as_secs()})),
    )
        .into_response()
}
