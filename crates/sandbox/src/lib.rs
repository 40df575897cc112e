//! Simulators of the vendors wa2crm talks to, and the samples that drive them.
//!
//! Today: signed Cloud API webhook bodies for every media kind ([`webhooks`]), exactly as Meta
//! sends them, used by the end-to-end tests, the ingest benchmark and `wa2crm sandbox`. The Graph
//! API media endpoints, HubSpot and Salesforce simulators join here with the issues that need them.

pub mod webhooks;
