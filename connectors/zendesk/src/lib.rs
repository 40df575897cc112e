//! The Zendesk Support connector (in progress: its configuration and what Zendesk's answers mean;
//! the delivery, the simulator and the registry line follow). Facts and their sources:
//! docs/vendors/zendesk.md.

pub mod api;
pub mod auth;
pub mod config;
pub mod deliver;
pub mod note;
pub mod requester;
pub mod rules;
pub mod tickets;

pub use config::ZendeskConfig;
pub use rules::ZendeskRules;

#[cfg(test)]
mod tests;
