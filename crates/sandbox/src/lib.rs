//! Simulators of the vendors wa2crm talks to, and the samples that drive them.
//!
//! [`webhooks`]: signed Cloud API webhook bodies for every media kind, as Meta sends them.
//! [`graph`]: the Graph API media endpoints (resolve, download) with their auth, expiry and faults.
//! [`samples`]: real media files with a manifest of their true sizes, digests and durations.
//! [`hubspot`]: the HubSpot CRM, properties, associations and OAuth endpoints with their limits.
//! [`salesforce`]: the Salesforce org: tokens, sessions, limits, queries, collections, composite.
//! [`twilio`]: Twilio's media resources and storage redirects, and its signed webhooks.
//! [`graph`] also plays 360dialog's proxy of the media API.
//! [`zendesk`]: Zendesk Support's users, tickets and comments with its limits.
//! [`zoho`]: Zoho CRM's accounts server and API domain: tokens, credits, records, COQL, fields.
//! [`catcher`]: a receiver for wa2crm's outgoing notification webhooks.

pub mod catcher;
pub mod graph;
mod hang;
pub mod hubspot;
pub mod salesforce;
pub mod samples;
pub mod twilio;
pub mod webhooks;
pub mod zendesk;
pub mod zoho;
