//! Simulators of the vendors wa2crm talks to, and the samples that drive them.
//!
//! [`webhooks`]: signed Cloud API webhook bodies for every media kind, as Meta sends them.
//! [`graph`]: the Graph API media endpoints (resolve, download) with their auth, expiry and faults.
//! [`samples`]: real media files with a manifest of their true sizes, digests and durations.
//! The HubSpot and Salesforce simulators join here with the connector issues.

pub mod graph;
pub mod samples;
pub mod webhooks;
