//! Twilio's WhatsApp channel: form-encoded webhooks signed with `X-Twilio-Signature`, one job per
//! `MediaUrl{N}`, and media fetched from Twilio's API with HTTP Basic auth.

mod media;
mod parse;
mod signature;

pub use media::{DEFAULT_MEDIA_WAIT, TwilioMedia, media_not_found};
pub use parse::{EMPTY_TWIML, form_params, parse_form};
pub use signature::{SignatureError, sign, verify_signature};
