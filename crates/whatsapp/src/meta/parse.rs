//! From a verified Cloud API webhook body to one `MediaEvent` per media message.

use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use wa2crm_core::{MediaEvent, MediaKind, MediaRef, Phone, Source};

use super::payload::{Contact, MediaObject, Message, Payload};

/// What one webhook POST contained.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedWebhook {
    /// One per media message, in the order they appeared.
    pub events: Vec<MediaEvent>,
    pub skipped: SkipCounts,
    /// Why each `invalid` message was skipped, for the log.
    pub problems: Vec<String>,
}

/// Items that were not media messages, by reason. None of them is an error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SkipCounts {
    /// Delivery receipts (`statuses[]`) of messages the business sent.
    pub statuses: u64,
    /// `errors[]` entries Meta reports about the account or app.
    pub errors: u64,
    /// Messages that carry no file: text, reactions, locations, unknown or unsupported types.
    pub non_media: u64,
    /// Media messages that cannot be processed: no id, no media id, no valid sender.
    pub invalid: u64,
    /// Changes of another `field` than `messages` (group updates, account updates, …).
    pub other_changes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("webhook body is not JSON of the Cloud API shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("webhook object is {0:?}, not \"whatsapp_business_account\"")]
    UnexpectedObject(String),
}

/// Parses a webhook body that already passed the signature check.
///
/// `received_at` stands in for a message whose timestamp is missing or unreadable: the file is
/// still worth keeping, and the time it reached us is the next best fact.
pub fn parse_webhook(
    source: Source,
    body: &[u8],
    received_at: OffsetDateTime,
) -> Result<ParsedWebhook, ParseError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if let Some(object) = payload.object.as_deref()
        && object != "whatsapp_business_account"
    {
        return Err(ParseError::UnexpectedObject(object.to_owned()));
    }
    let mut out = ParsedWebhook::default();
    for entry in payload.entry {
        for change in entry.changes {
            if change.field.as_deref().is_some_and(|f| f != "messages") {
                out.skipped.other_changes += 1;
                continue;
            }
            let Some(value) = change.value else { continue };
            out.skipped.statuses += value.statuses.len() as u64;
            out.skipped.errors += value.errors.len() as u64;
            let phone_number_id = value
                .metadata
                .and_then(|m| m.phone_number_id)
                .unwrap_or_default();
            let contacts: Vec<Contact> = value
                .contacts
                .into_iter()
                .filter_map(|c| serde_json::from_str(c.get()).ok())
                .collect();
            for raw in value.messages {
                match decode_message(source, &raw, &phone_number_id, &contacts, received_at) {
                    Decoded::Media(event) => out.events.push(*event),
                    Decoded::NotMedia => out.skipped.non_media += 1,
                    Decoded::Invalid(why) => {
                        out.skipped.invalid += 1;
                        out.problems.push(why);
                    }
                }
            }
        }
    }
    Ok(out)
}

enum Decoded {
    Media(Box<MediaEvent>),
    NotMedia,
    Invalid(String),
}

fn decode_message(
    source: Source,
    raw: &RawValue,
    phone_number_id: &str,
    contacts: &[Contact],
    received_at: OffsetDateTime,
) -> Decoded {
    let message: Message = match serde_json::from_str(raw.get()) {
        Ok(m) => m,
        Err(e) => return Decoded::Invalid(format!("message of unreadable shape: {e}")),
    };
    let Some((kind, media)) = media_of(&message) else {
        return Decoded::NotMedia;
    };
    let Some(message_id) = message.id.clone().filter(|id| !id.is_empty()) else {
        return Decoded::Invalid(format!("{kind} message without an id"));
    };
    let Some(media_id) = media.id.clone().filter(|id| !id.is_empty()) else {
        return Decoded::Invalid(format!("{kind} message {message_id} has no media id"));
    };
    // `from` is the sender; a payload without it still names the sender in its single contact.
    let from = message.from.clone().or_else(|| match contacts {
        [only] => only.wa_id.clone(),
        _ => None,
    });
    let sender = match from.as_deref().map(Phone::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Decoded::Invalid(format!("{kind} message {message_id}: sender: {e}"));
        }
        None => return Decoded::Invalid(format!("{kind} message {message_id} has no sender")),
    };
    let sender_name = contacts
        .iter()
        .find(|c| {
            c.wa_id
                .as_deref()
                .and_then(|w| Phone::parse(w).ok())
                .is_some_and(|p| p == sender)
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| p.name.clone())
        .filter(|n| !n.trim().is_empty());
    let timestamp = message
        .timestamp
        .as_ref()
        .and_then(|t| match t {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(received_at);
    Decoded::Media(Box::new(MediaEvent {
        source,
        message_id,
        phone_number_id: phone_number_id.to_owned(),
        sender,
        sender_name,
        kind,
        mime_type: media.mime_type.clone().filter(|m| !m.is_empty()),
        sha256: media.sha256.clone().filter(|s| !s.is_empty()),
        caption: media.caption.clone().filter(|c| !c.is_empty()),
        file_name: media.filename.clone().filter(|f| !f.is_empty()),
        timestamp,
        media: MediaRef::GraphMedia {
            media_id,
            url: media.url.clone(),
        },
    }))
}

/// The kind and media object of a media message; `None` for anything that carries no file.
fn media_of(m: &Message) -> Option<(MediaKind, &MediaObject)> {
    match m.kind.as_deref()? {
        "audio" => {
            let a = m.audio.as_ref()?;
            let kind = if a.voice == Some(true) {
                MediaKind::Voice
            } else {
                MediaKind::Audio
            };
            Some((kind, a))
        }
        "video" => Some((MediaKind::Video, m.video.as_ref()?)),
        "image" => Some((MediaKind::Image, m.image.as_ref()?)),
        "document" => Some((MediaKind::Document, m.document.as_ref()?)),
        "sticker" => Some((MediaKind::Sticker, m.sticker.as_ref()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
