//! One media message as it arrived from a WhatsApp source, before anything was fetched.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Phone;

/// Which WhatsApp provider delivered the event; part of the job's idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Meta's WhatsApp Cloud API.
    Meta,
    /// 360dialog, which forwards Cloud API webhooks and proxies media.
    D360,
    /// Twilio's WhatsApp channel.
    Twilio,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Meta, Source::D360, Source::Twilio];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Meta => "meta",
            Source::D360 => "d360",
            Source::Twilio => "twilio",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown source {s:?}; expected one of meta, d360, twilio"))
    }
}

/// What a customer sent. `Voice` is a recorded voice note (`audio` with `voice: true`), kept apart
/// from `Audio` (a forwarded or attached audio file) because CRM users treat them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Voice,
    Video,
    Image,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [MediaKind; 6] = [
        MediaKind::Audio,
        MediaKind::Voice,
        MediaKind::Video,
        MediaKind::Image,
        MediaKind::Document,
        MediaKind::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Voice => "voice",
            MediaKind::Video => "video",
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MediaKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown media kind {s:?}; expected one of audio, voice, video, image, document, sticker"
                )
            })
    }
}

/// Where the file lives at the source, until wa2crm has copied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaRef {
    /// A Graph API media id (Meta, 360dialog): resolved to a short-lived URL before download. The
    /// webhook's own `url`, when present, is kept only as a hint: it may already have expired.
    GraphMedia {
        media_id: String,
        url: Option<String>,
    },
    /// A direct URL (Twilio's `MediaUrl{N}`).
    Url { url: String },
}

/// One media message from a customer, normalized across sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaEvent {
    pub source: Source,
    /// The source's unique id for this media item (a `wamid`, or Twilio's `MessageSid` plus index);
    /// with `source` it is the idempotency key of the whole pipeline.
    pub message_id: String,
    /// The business number that received it: Meta's `phone_number_id`, or Twilio's `To` number.
    pub phone_number_id: String,
    pub sender: Phone,
    pub sender_name: Option<String>,
    pub kind: MediaKind,
    /// The MIME type the source declared; the file's own bytes decide later.
    pub mime_type: Option<String>,
    /// The sha256 the source declared, as it was written (Meta: base64; some tools: hex).
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub file_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub media: MediaRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in MediaKind::ALL {
            assert_eq!(k.as_str().parse::<MediaKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
        }
        assert!("gif".parse::<MediaKind>().is_err());
    }

    #[test]
    fn event_serializes_to_stable_json() {
        let e = MediaEvent {
            source: Source::Meta,
            message_id: "wamid.1".into(),
            phone_number_id: "1234".into(),
            sender: Phone::parse("16505551234").unwrap(),
            sender_name: Some("Sheena".into()),
            kind: MediaKind::Voice,
            mime_type: Some("audio/ogg; codecs=opus".into()),
            sha256: None,
            caption: None,
            file_name: None,
            timestamp: OffsetDateTime::from_unix_timestamp(1_749_416_383).unwrap(),
            media: MediaRef::GraphMedia {
                media_id: "42".into(),
                url: None,
            },
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["timestamp"], "2025-06-08T20:59:43Z");
        assert_eq!(json["media"]["type"], "graph_media");
        assert_eq!(json["sender"], "+16505551234");
        let back: MediaEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }
}
