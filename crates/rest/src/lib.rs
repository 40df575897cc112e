//! Shared REST plumbing for the vendor clients (HubSpot, Salesforce).
//!
//! - [`client`]: the one reqwest client setup (rustls, explicit User-Agent, timeouts, no redirects).
//! - [`limit`]: a GCRA request budget (governor) that 429s and the vendors' headers can hold back.
//! - [`token`]: an access-token cache whose refresh is single-flight across every worker.
//! - [`oauth`]: the RFC 6749 refresh-token and client-credentials exchanges, through `oauth2`.
//! - [`refresh`]: a refresh token the vendor may rotate, persisted before use.
//! - [`pause`]: a connector-wide pause (daily quota spent, dead refresh token) that is persisted so
//!   `status` can say why and until when.
//! - [`classify`]: HTTP failures mapped to the core error kinds.
//! - [`verdict`]: what a vendor's answer means, decided by each vendor's pure [`verdict::Rules`].
//! - [`engine`]: one call, sent the same way for every vendor, acting on those verdicts.
//! - [`learned`]: a fact about the vendor's account learned once and kept (the console's links).

pub mod classify;
pub mod client;
pub mod engine;
pub mod learned;
pub mod limit;
pub mod meter;
pub mod oauth;
pub mod pause;
pub mod refresh;
pub mod token;
pub mod verdict;
