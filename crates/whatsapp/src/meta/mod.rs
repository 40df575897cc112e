//! Meta's WhatsApp Cloud API webhooks (360dialog forwards the same format).

mod parse;
mod payload;
mod signature;
mod subscribe;

pub use parse::{ParseError, ParsedWebhook, SkipCounts, parse_webhook};
pub use signature::{SignatureError, sign, verify_signature};
pub use subscribe::{SubscribeError, SubscribeQuery, verify_subscription};
