//! Cloud API webhook bodies as Meta sends them, and their signatures.

use serde_json::{Value, json};
use wa2crm_core::MediaKind;

/// The business number the samples are addressed to (a Meta `phone_number_id`).
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// The customer who sends every sample.
pub const SENDER_WA_ID: &str = "4915123456789";
pub const SENDER_NAME: &str = "Jürgen Weiß";

/// One sample media message.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: MediaKind,
    pub mime_type: String,
    pub caption: Option<String>,
    pub file_name: Option<String>,
}

/// One sample of every media kind a customer can send.
pub fn samples() -> Vec<Sample> {
    let s = |kind, mime_type: &str, caption: Option<&str>, file_name: Option<&str>| Sample {
        kind,
        mime_type: mime_type.to_owned(),
        caption: caption.map(str::to_owned),
        file_name: file_name.map(str::to_owned),
    };
    vec![
        s(MediaKind::Voice, "audio/ogg; codecs=opus", None, None),
        s(MediaKind::Audio, "audio/mpeg", None, None),
        s(
            MediaKind::Video,
            "video/mp4",
            Some("Die Tür ist kaputt"),
            None,
        ),
        s(MediaKind::Image, "image/jpeg", Some("Rechnung März"), None),
        s(
            MediaKind::Document,
            "application/pdf",
            Some("Vertrag"),
            Some("vertrag-4711.pdf"),
        ),
        s(MediaKind::Sticker, "image/webp", None, None),
    ]
}

/// The `messages[]` item of a sample with the given ids.
pub fn message_json(sample: &Sample, message_id: &str, media_id: &str, timestamp: i64) -> Value {
    let (type_name, mut media) = match sample.kind {
        MediaKind::Voice => ("audio", json!({ "voice": true })),
        MediaKind::Audio => ("audio", json!({ "voice": false })),
        MediaKind::Sticker => ("sticker", json!({ "animated": false })),
        other => (other.as_str(), json!({})),
    };
    media["id"] = json!(media_id);
    media["mime_type"] = json!(sample.mime_type);
    media["sha256"] = json!("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=");
    media["url"] = json!(format!(
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={media_id}&ext={}&hash=ATuq",
        timestamp + 300
    ));
    if let Some(c) = &sample.caption {
        media["caption"] = json!(c);
    }
    if let Some(f) = &sample.file_name {
        media["filename"] = json!(f);
    }
    let mut m = json!({
        "from": SENDER_WA_ID,
        "id": message_id,
        "timestamp": timestamp.to_string(),
        "type": type_name,
    });
    m[type_name] = media;
    m
}

/// A whole webhook body carrying `messages`, as one entry and one change.
pub fn webhook_body(messages: Vec<Value>) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
                    "contacts": [{ "profile": { "name": SENDER_NAME }, "wa_id": SENDER_WA_ID }],
                    "messages": messages
                }
            }]
        }]
    });
    body.to_string().into_bytes()
}

/// A body with one media message of `sample`'s kind.
pub fn single_message_body(sample: &Sample, message_id: &str, timestamp: i64) -> Vec<u8> {
    let media_id = format!("media-{message_id}");
    webhook_body(vec![message_json(sample, message_id, &media_id, timestamp)])
}

/// The `X-Hub-Signature-256` value for `body`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    wa2crm_whatsapp::meta::sign(app_secret.as_bytes(), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::Source;

    #[test]
    fn samples_parse_back_to_their_kinds() {
        let samples = samples();
        let messages = samples
            .iter()
            .enumerate()
            .map(|(i, s)| message_json(s, &format!("wamid.s{i}"), &format!("m{i}"), 1_750_000_000))
            .collect();
        let body = webhook_body(messages);
        let parsed = wa2crm_whatsapp::meta::parse_webhook(
            Source::Meta,
            &body,
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let kinds: Vec<_> = parsed.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, samples.iter().map(|s| s.kind).collect::<Vec<_>>());
        assert!(
            parsed
                .events
                .iter()
                .all(|e| e.sender_name.as_deref() == Some(SENDER_NAME))
        );
        let sig = signature("s3cret", &body);
        assert_eq!(
            wa2crm_whatsapp::meta::verify_signature(b"s3cret", &body, Some(&sig)),
            Ok(())
        );
    }
}
