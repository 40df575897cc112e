//! Faults for chaos tests: a share of API calls fail at random, as a vendor's do — refused before
//! the work (502, 503, a plain-text 429 with `Retry-After: 1`), or done and then answered 500, or
//! done and never answered (the caller's timeout ends it; crate::hang).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, lock};

enum Fault {
    Before(StatusCode),
    RateLimited,
    AnsweredLost,
    Hang,
}

pub(super) async fn inject(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let fault = {
        let mut i = lock(&s);
        let rate = i.fault_rate;
        let fault = (fastrand::f64() < rate).then(|| match fastrand::usize(..5) {
            0 => Fault::Before(StatusCode::BAD_GATEWAY),
            1 => Fault::Before(StatusCode::SERVICE_UNAVAILABLE),
            2 => Fault::RateLimited,
            3 => Fault::AnsweredLost,
            _ => Fault::Hang,
        });
        if fault.is_some() {
            i.counts.faults += 1;
        }
        fault
    };
    match fault {
        None => next.run(request).await,
        Some(Fault::Before(status)) => (
            status,
            axum::Json(json!({"error": "ServiceUnavailable", "description": "Try again later"})),
        )
            .into_response(),
        Some(Fault::RateLimited) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                "Number of allowed API requests per minute exceeded",
            )
                .into_response();
            let h = r.headers_mut();
            h.insert("content-type", HeaderValue::from_static("text/plain"));
            h.insert("retry-after", HeaderValue::from_static("1"));
            r
        }
        Some(Fault::AnsweredLost) => {
            let _done = next.run(request).await;
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": "InternalError"})),
            )
                .into_response()
        }
        Some(Fault::Hang) => {
            let done = next.run(request).await;
            lock(&s).counts.hung += 1;
            crate::hang::hang(done)
        }
    }
}
