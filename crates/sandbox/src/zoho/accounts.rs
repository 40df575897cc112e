//! The accounts server's token endpoint (`POST /oauth/v2/token`), as Zoho answers it: every
//! answer is 200, a refusal too, with `error` in the body — `invalid_client`, `invalid_code` (a
//! dead refresh token), or `Access Denied` when a refresh token has minted 10 access tokens in
//! the last 10 minutes (zoho.com/crm/developer/docs/api/v8/token-validity.html; Zoho's "Kaizen
//! #43 – Tokens and Limitations": "The status code for the requests that are made after exceeding
//! the allowed limit remains 200").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Shared, lock};

const REFRESH_WINDOW: Duration = Duration::from_secs(600);
const REFRESHES_PER_WINDOW: usize = 10;
/// "A maximum of 15 active access tokens can be stored per refresh token".
const LIVE_TOKENS: usize = 15;

pub(super) fn router(s: Shared) -> Router {
    Router::new()
        .route("/oauth/v2/token", post(token))
        .with_state(s)
}

/// The parameters, from the query string (as Zoho's examples send them) and the form body.
fn params(query: Option<String>, body: &[u8]) -> HashMap<String, String> {
    let mut p: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(q) = query {
        p.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    p
}

async fn token(
    State(s): State<Shared>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> axum::Json<Value> {
    let p = params(query, &body);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let mut i = lock(&s);
    i.counts.refreshes += 1;
    let now = Instant::now();
    while i
        .refresh_times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= REFRESH_WINDOW)
    {
        i.refresh_times.pop_front();
    }
    let refused = |i: &mut super::Inner, error: &str| {
        i.counts.refused_refreshes += 1;
        axum::Json(json!({"error": error}))
    };
    if get("grant_type") != "refresh_token" {
        return refused(&mut i, "unsupported_grant_type");
    }
    if get("client_id") != i.config.client_id || get("client_secret") != i.config.client_secret {
        return refused(&mut i, "invalid_client");
    }
    if i.refresh_token.is_empty() || get("refresh_token") != i.refresh_token {
        return refused(&mut i, "invalid_code");
    }
    if i.refresh_times.len() >= REFRESHES_PER_WINDOW {
        i.counts.refused_refreshes += 1;
        return axum::Json(json!({"error": "Access Denied",
            "error_description": "You have made too many requests continuously. Please try again after some time.",
            "status": "failure"}));
    }
    i.refresh_times.push_back(now);
    let token = format!("1000.{:032x}", fastrand::u128(..));
    let ttl = i.config.token_ttl;
    i.access_tokens.push_back((token.clone(), now + ttl));
    while i.access_tokens.len() > LIVE_TOKENS {
        i.access_tokens.pop_front();
    }
    axum::Json(json!({
        "access_token": token,
        "scope": i.config.scopes.join(" "),
        "api_domain": i.api_url,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    }))
}
