//! WhatsApp sources: where customer media enters wa2crm.
//!
//! A webhook body is first authenticated ([`meta::verify_signature`] over the raw bytes), then
//! parsed ([`meta::parse_webhook`]) into one [`wa2crm_core::MediaEvent`] per media message; the
//! daemon queues those events, keyed by source and message id. Everything that is not customer
//! media (statuses, errors, text, reactions, unknown types) is counted and skipped, never an error,
//! because a webhook answered with an error is redelivered by Meta for days.

pub mod d360;
pub mod media;
pub mod meta;
pub mod twilio;
