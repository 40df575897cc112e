//! What every call to the API domain passes before its route: the token (`Zoho-oauthtoken`), its
//! scopes, the org's credits for the rolling 24 hours and its calls in flight — and, for chaos
//! tests, random faults. Sources: zoho.com/crm/developer/docs/api/v8/api-limits.html (credits per
//! edition, concurrency per edition, 429 TOO_MANY_REQUESTS), …/v8/oauth-overview.html (the header),
//! …/v8/scopes.html (OAUTH_SCOPE_MISMATCH).

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Inner, Shared, lock};

pub(super) fn api_router(s: Shared) -> Router {
    Router::new()
        .merge(super::records::router())
        .merge(super::coql::router())
        .merge(super::settings::router())
        .layer(from_fn_with_state(s.clone(), faults))
        .layer(from_fn_with_state(s.clone(), admit))
        .layer(axum::middleware::map_response(crate::hang::hold_marked))
        .with_state(s)
}

/// Zoho's error shape: `{"code", "details", "message", "status": "error"}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    (
        status,
        axum::Json(
            json!({"code": code, "details": details, "message": message, "status": "error"}),
        ),
    )
        .into_response()
}

/// The scope a call needs, as `(family, operation)`: `("modules.contacts", "CREATE")`.
fn needed_scope(method: &Method, path: &str) -> (String, &'static str) {
    let op = match *method {
        Method::GET => "READ",
        Method::DELETE => "DELETE",
        Method::PUT | Method::PATCH => "UPDATE",
        _ => "CREATE",
    };
    let parts: Vec<&str> = path.trim_start_matches("/crm/v8/").split('/').collect();
    match parts.as_slice() {
        ["coql", ..] => ("coql".into(), "READ"),
        ["settings", sub, ..] => (format!("settings.{sub}"), op),
        ["users", ..] => ("users".into(), "READ"),
        ["org", ..] => ("org".into(), "READ"),
        [_, _, "Attachments", ..] => ("modules.attachments".into(), op),
        [module, ..] => (format!("modules.{}", module.to_lowercase()), op),
        [] => ("modules".into(), op),
    }
}

/// `ZohoCRM.modules.ALL` covers `modules.contacts.CREATE`; `ZohoCRM.settings.ALL` covers
/// `settings.fields.READ`; `….ALL` covers every operation of its family.
fn granted(scopes: &[String], family: &str, op: &str) -> bool {
    let top = family.split('.').next().unwrap_or(family);
    scopes.iter().any(|s| {
        let s = s.strip_prefix("ZohoCRM.").unwrap_or(s);
        s == format!("{top}.ALL")
            || s == format!("{family}.ALL")
            || s == format!("{family}.{op}")
            // CREATE and UPDATE are both WRITE.
            || (s == format!("{family}.WRITE") && matches!(op, "CREATE" | "UPDATE"))
    })
}

fn with_credit_headers(mut r: Response, i: &mut Inner) -> Response {
    if i.config.credit_headers {
        let used = i.credits_used(Instant::now());
        let limit = i.config.credits_per_day;
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit));
        h.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(limit.saturating_sub(used)),
        );
    }
    r
}

/// Frees a call's place among those in flight however it ends (a client that gives up drops it).
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut i = lock(&self.0);
        i.in_flight = i.in_flight.saturating_sub(1);
    }
}

async fn admit(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let slot = {
        let mut i = lock(&s);
        i.counts.api_calls += 1;
        let now = Instant::now();
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let live = i
            .access_tokens
            .iter()
            .any(|(t, end)| *t == token && *end > now);
        if !live {
            i.counts.unauthenticated += 1;
            let r = error(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "invalid oauth token",
                json!({}),
            );
            return with_credit_headers(r, &mut i);
        }
        let (family, op) = needed_scope(request.method(), request.uri().path());
        if !granted(&i.config.scopes, &family, op) {
            let r = error(
                StatusCode::UNAUTHORIZED,
                "OAUTH_SCOPE_MISMATCH",
                "invalid oauth scope to access this URL",
                json!({"required_scope": format!("ZohoCRM.{family}.{op}")}),
            );
            return with_credit_headers(r, &mut i);
        }
        let taken = i.slots_taken_for > 0;
        i.slots_taken_for = i.slots_taken_for.saturating_sub(1);
        if taken || i.in_flight >= i.config.max_concurrent {
            i.counts.too_many_requests += 1;
            i.counts.over_concurrency += 1;
            let r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "concurrency limit exceeded",
                json!({}),
            );
            return with_credit_headers(r, &mut i);
        }
        if i.credits_used(now) >= i.config.credits_per_day {
            i.counts.too_many_requests += 1;
            let r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "the org's API credits for the last 24 hours are used up",
                json!({}),
            );
            return with_credit_headers(r, &mut i);
        }
        i.credits.push_back((now, 1));
        i.counts.credits_used += 1;
        i.in_flight += 1;
        i.counts.max_in_flight = i.counts.max_in_flight.max(i.in_flight);
        InFlight(s.clone())
    };
    let response = next.run(request).await;
    drop(slot);
    with_credit_headers(response, &mut lock(&s))
}

enum Fault {
    Before(StatusCode),
    AnsweredLost,
    Hang,
}

async fn faults(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let fault = {
        let mut i = lock(&s);
        let fault = (fastrand::f64() < i.fault_rate).then(|| match fastrand::usize(..4) {
            0 => Fault::Before(StatusCode::BAD_GATEWAY),
            1 => Fault::Before(StatusCode::SERVICE_UNAVAILABLE),
            2 => Fault::AnsweredLost,
            _ => Fault::Hang,
        });
        if fault.is_some() {
            i.counts.faults += 1;
        }
        fault
    };
    match fault {
        None => next.run(request).await,
        Some(Fault::Before(status)) => error(status, "INTERNAL_ERROR", "try again", json!({})),
        Some(Fault::AnsweredLost) => {
            let _done = next.run(request).await;
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "internal error",
                json!({}),
            )
        }
        Some(Fault::Hang) => {
            let done = next.run(request).await;
            lock(&s).counts.hung += 1;
            crate::hang::hang(done)
        }
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn broad_scopes_cover_narrow_ones() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let all = s(&["ZohoCRM.modules.ALL"]);
        let (f, op) = needed_scope(&Method::POST, "/crm/v8/Contacts/upsert");
        assert_eq!((f.as_str(), op), ("modules.contacts", "CREATE"));
        assert!(granted(&all, &f, op));
        assert!(!granted(&s(&["ZohoCRM.modules.leads.ALL"]), &f, op));
        assert!(granted(&s(&["ZohoCRM.modules.contacts.WRITE"]), &f, op));
        let (f, op) = needed_scope(&Method::GET, "/crm/v8/settings/fields");
        assert!(granted(&s(&["ZohoCRM.settings.ALL"]), &f, op));
        assert!(granted(&s(&["ZohoCRM.settings.fields.READ"]), &f, op));
        assert!(!granted(&all, &f, op));
        let (f, op) = needed_scope(&Method::POST, "/crm/v8/WhatsApp_Media/57/Attachments");
        assert_eq!(f, "modules.attachments");
        assert!(granted(&all, &f, op));
    }
}
