//! What an HTTP failure means for the job: retry soon, wait, or give up.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use wa2crm_core::Error;

/// Statuses worth retrying as they are: timeouts, overload, and the 5xx a vendor sends "like a
/// cheaper 429" under load, including Cloudflare's 52x edge errors.
pub fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 500..=599)
}

/// `Retry-After` in seconds, when the answer has one (HTTP dates are rare from APIs and ignored).
/// The longest wait a `Retry-After` is taken at: a vendor (or something posing as one) asking
/// for days would otherwise park every job of a connector for that long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A request that never got an answer: worth retrying, except a request we could not even build.
pub fn from_reqwest(what: &str, e: reqwest::Error) -> Error {
    if e.is_builder() {
        Error::permanent(format!("{what}: {e}")).with_source(e)
    } else {
        // The message names the host, never the headers, so no token can leak through it.
        Error::transient(format!("{what}: {}", describe(&e))).with_source(e)
    }
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off or could not be read"
    } else {
        "the request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn transient_statuses() {
        for s in [408u16, 500, 502, 503, 504, 521, 524] {
            assert!(is_transient(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400u16, 401, 403, 404, 409, 413, 429] {
            assert!(!is_transient(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("31536000"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "a year is an hour");
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999999"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
