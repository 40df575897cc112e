//! Shared REST plumbing for the vendor clients, filled in with the first connector.
//!
//! What lives here: the one reqwest client setup (rustls, explicit User-Agent, timeouts, no
//! redirects for token endpoints), GCRA rate limiting with governor corrected by the vendors'
//! rate-limit headers, classification of every response into the core error kinds (including "200
//! with errors inside"), short in-process retries with backon, and a token cache whose refresh is
//! single-flight across workers.
