//! From a verified Twilio webhook (its form parameters) to one `MediaEvent` per `MediaUrl{N}`.
//!
//! Twilio sends no hash, size, duration or file name; the body text accompanies the media and is
//! kept as its caption. The message id of the N-th file is `{MessageSid}-{N}`, so a redelivered
//! webhook maps onto the same jobs.

use time::OffsetDateTime;
use wa2crm_core::{MediaEvent, MediaKind, MediaRef, Phone, Source};

use crate::meta::ParsedWebhook;

/// The answer Twilio expects: TwiML that does nothing (no reply to the customer).
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

/// WhatsApp allows at most 10 files per message; a larger NumMedia is not believed.
const MAX_MEDIA: usize = 10;

/// The parameters of a form body, in the order sent, none left out (all of them are signed).
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// What a content type from WhatsApp is: `audio/ogg` is a recorded voice note (WhatsApp records
/// Opus in Ogg; forwarded audio files arrive as MPEG, AAC, AMR), `image/webp` a sticker.
pub fn kind_of(content_type: &str) -> MediaKind {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "audio/ogg" | "audio/opus" => MediaKind::Voice,
        "image/webp" => MediaKind::Sticker,
        m if m.starts_with("audio/") => MediaKind::Audio,
        m if m.starts_with("video/") => MediaKind::Video,
        m if m.starts_with("image/") => MediaKind::Image,
        _ => MediaKind::Document,
    }
}

/// Parses a webhook whose signature was checked. Messages without media are counted as
/// `non_media`; a media message without a usable sender or id as `invalid`, with the reason.
pub fn parse_form(params: &[(String, String)], received_at: OffsetDateTime) -> ParsedWebhook {
    let mut out = ParsedWebhook::default();
    let count = get(params, "NumMedia")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    if count == 0 {
        // A text, a location, a status callback: nothing to copy.
        out.skipped.non_media += 1;
        return out;
    }
    let Some(sid) = get(params, "MessageSid").or_else(|| get(params, "SmsSid")) else {
        out.skipped.invalid += 1;
        out.problems
            .push("Twilio media message without MessageSid".into());
        return out;
    };
    let sender = get(params, "WaId")
        .map(|w| format!("+{}", w.trim_start_matches('+')))
        .or_else(|| get(params, "From").map(str::to_owned));
    let sender = match sender.as_deref().map(Phone::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            out.skipped.invalid += 1;
            out.problems.push(format!(
                "Twilio message {sid}: sender is not a phone number: {e}"
            ));
            return out;
        }
        None => {
            out.skipped.invalid += 1;
            out.problems
                .push(format!("Twilio message {sid}: no WaId nor From"));
            return out;
        }
    };
    let to = get(params, "To")
        .map(|t| t.strip_prefix("whatsapp:").unwrap_or(t).to_owned())
        .unwrap_or_default();
    if count > MAX_MEDIA {
        out.problems.push(format!(
            "Twilio message {sid}: NumMedia {count} is more than WhatsApp allows; reading {MAX_MEDIA}"
        ));
    }
    for n in 0..count.min(MAX_MEDIA) {
        let Some(url) = get(params, &format!("MediaUrl{n}")) else {
            out.skipped.invalid += 1;
            out.problems.push(format!(
                "Twilio message {sid}: NumMedia is {count} but MediaUrl{n} is missing"
            ));
            continue;
        };
        let mime = get(params, &format!("MediaContentType{n}")).map(str::to_owned);
        out.events.push(MediaEvent {
            source: Source::Twilio,
            message_id: format!("{sid}-{n}"),
            phone_number_id: to.clone(),
            sender: sender.clone(),
            sender_name: get(params, "ProfileName").map(str::to_owned),
            kind: mime.as_deref().map_or(MediaKind::Document, kind_of),
            mime_type: mime,
            sha256: None,
            caption: get(params, "Body").map(str::to_owned),
            file_name: None,
            timestamp: received_at,
            media: MediaRef::Url {
                url: url.to_owned(),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_event_per_media_url_with_sender_name_and_caption() {
        let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let p = form(&[
            ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
            ("AccountSid", "AC1"),
            ("From", "whatsapp:+4917012345678"),
            ("To", "whatsapp:+14155238886"),
            ("WaId", "4917012345678"),
            ("ProfileName", "Ana López"),
            ("Body", "the broken part"),
            ("NumMedia", "2"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM0/Media/ME0",
            ),
            ("MediaContentType0", "audio/ogg"),
            (
                "MediaUrl1",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM0/Media/ME1",
            ),
            ("MediaContentType1", "video/mp4"),
            ("SomethingNew", "ignored but signed"),
        ]);
        let parsed = parse_form(&p, at);
        assert_eq!(parsed.events.len(), 2);
        let voice = &parsed.events[0];
        assert_eq!(voice.message_id, "MM0123456789abcdef0123456789abcdef-0");
        assert_eq!(voice.kind, MediaKind::Voice);
        assert_eq!(voice.sender.as_str(), "+4917012345678");
        assert_eq!(voice.sender_name.as_deref(), Some("Ana López"));
        assert_eq!(voice.phone_number_id, "+14155238886");
        assert_eq!(voice.caption.as_deref(), Some("the broken part"));
        assert_eq!(voice.timestamp, at);
        assert!(matches!(&voice.media, MediaRef::Url { url } if url.ends_with("/ME0")));
        assert_eq!(parsed.events[1].kind, MediaKind::Video);
        assert_eq!(
            parsed.events[1].message_id,
            "MM0123456789abcdef0123456789abcdef-1"
        );
    }

    #[test]
    fn the_sender_falls_back_to_from_and_bad_input_is_counted() {
        let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let p = form(&[
            ("MessageSid", "MM1"),
            ("From", "whatsapp:+14155550123"),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/x"),
            ("MediaContentType0", "application/pdf"),
        ]);
        let e = &parse_form(&p, at).events[0];
        assert_eq!(e.sender.as_str(), "+14155550123");
        assert_eq!(e.kind, MediaKind::Document);

        let text = parse_form(
            &form(&[("MessageSid", "MM2"), ("NumMedia", "0"), ("Body", "hi")]),
            at,
        );
        assert_eq!((text.events.len(), text.skipped.non_media), (0, 1));
        let no_sender = parse_form(
            &form(&[("MessageSid", "MM3"), ("NumMedia", "1"), ("MediaUrl0", "u")]),
            at,
        );
        assert_eq!(no_sender.skipped.invalid, 1);
        assert!(
            no_sender.problems[0].contains("MM3"),
            "{:?}",
            no_sender.problems
        );
        let missing_url = parse_form(
            &form(&[
                ("MessageSid", "MM4"),
                ("WaId", "14155550123"),
                ("NumMedia", "2"),
                ("MediaUrl1", "u"),
            ]),
            at,
        );
        assert_eq!(
            (missing_url.events.len(), missing_url.skipped.invalid),
            (1, 1)
        );
        assert_eq!(missing_url.events[0].message_id, "MM4-1");
    }

    #[test]
    fn kinds_follow_the_content_type() {
        assert_eq!(kind_of("audio/ogg; codecs=opus"), MediaKind::Voice);
        assert_eq!(kind_of("audio/mpeg"), MediaKind::Audio);
        assert_eq!(kind_of("audio/amr"), MediaKind::Audio);
        assert_eq!(kind_of("image/jpeg"), MediaKind::Image);
        assert_eq!(kind_of("image/webp"), MediaKind::Sticker);
        assert_eq!(kind_of("video/3gpp"), MediaKind::Video);
        assert_eq!(kind_of("application/pdf"), MediaKind::Document);
    }
}
