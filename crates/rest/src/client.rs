//! The HTTP client every vendor connector uses.

use std::time::Duration;

use wa2crm_core::Error;

/// Sent on every vendor call, so their logs name us.
pub const USER_AGENT: &str = concat!("wa2crm/", env!("CARGO_PKG_VERSION"));

/// How long a vendor call may take by default (a connector's `timeout_seconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A client with explicit timeouts and no redirects: a vendor API that redirects is misconfigured,
/// and following it would send the Bearer token to wherever it points. A call that has not been
/// answered within `timeout` is abandoned as a transient failure: callers retry only what is safe
/// to repeat, since the vendor may have done the work and lost the answer.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| Error::permanent(format!("cannot build the HTTP client: {e}")).with_source(e))
}
