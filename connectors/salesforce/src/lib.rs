//! The Salesforce connector, filled in by the Salesforce issue.
//!
//! It will write one custom-object record per media (upserted by an external id, looked up to the
//! Contact by its external-id phone field) through sObject Collections, authenticate with the JWT
//! bearer or refresh-token flow, and keep a reserve of the org's daily API allocation.
