//! The one error type every stage returns, carrying what the queue must do about it.

use std::time::Duration;

/// What kind of failure this is, which decides the job's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A network error, timeout or 5xx: retry with backoff.
    Transient,
    /// The vendor said slow down (429, daily quota): wait at least `retry_after` when known.
    RateLimited { retry_after: Option<Duration> },
    /// The credentials expired: refresh them once, then retry.
    AuthExpired,
    /// Retrying cannot help (bad mapping, missing scope, file too large): dead-letter with the reason.
    Permanent,
    /// The thing addressed does not exist (expired media id, deleted record).
    NotFound,
}

impl ErrorKind {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Transient | ErrorKind::RateLimited { .. } | ErrorKind::AuthExpired
        )
    }
}

/// A failure with its kind, a message meant for an admin, and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// For a transient failure that knows when it may clear (media a vendor has not made
    /// available yet): the queue tries again after this instead of its usual backoff.
    retry_in: Option<Duration>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry_in: None,
            source: None,
        }
    }

    /// Sets when the queue should try again, in place of its backoff (see [`Error::retry_in`]).
    pub fn with_retry_in(mut self, wait: Duration) -> Self {
        self.retry_in = Some(wait);
        self
    }

    /// The wait this failure asks for instead of the queue's backoff, if it knows one.
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Transient, message)
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Error::new(ErrorKind::RateLimited { retry_after }, message)
    }

    pub fn auth_expired(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::AuthExpired, message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Permanent, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The same failure for another item of a batch: kind, message and wait (the source cannot
    /// be cloned and stays with the first).
    pub fn for_another(&self) -> Error {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            retry_in: self.retry_in,
            source: None,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The wait the vendor asked for, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_whether_to_retry() {
        assert!(ErrorKind::Transient.is_retryable());
        assert!(ErrorKind::AuthExpired.is_retryable());
        assert!(ErrorKind::RateLimited { retry_after: None }.is_retryable());
        assert!(!ErrorKind::Permanent.is_retryable());
        assert!(!ErrorKind::NotFound.is_retryable());
    }

    #[test]
    fn retry_after_only_on_rate_limits() {
        let e = Error::rate_limited("429 TEN_SECONDLY_ROLLING", Some(Duration::from_secs(10)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(10)));
        assert_eq!(Error::transient("x").retry_after(), None);
        let io = std::io::Error::other("reset");
        let e = Error::transient("connection lost").with_source(io);
        assert_eq!(e.to_string(), "connection lost");
        assert!(std::error::Error::source(&e).is_some());
    }
}
