//! Attribute values as HubSpot stores them: every property value is a string; numbers in plain
//! decimal, datetimes as ISO 8601 in UTC with milliseconds, tags `;`-joined (the separator of a
//! multi-checkbox property, used for a text property too so both read the same), and the note
//! body as HTML.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wa2crm_core::connector::AttributeValue;
use wa2crm_core::{FieldMapping, MediaRecord};

use crate::Props;

pub fn encode(value: &AttributeValue<'_>) -> String {
    match value {
        AttributeValue::Text(s) => (*s).to_owned(),
        AttributeValue::Integer(n) => n.to_string(),
        AttributeValue::Number(x) => number(*x),
        AttributeValue::List(items) => items.join(";"),
        AttributeValue::DateTime(t) => datetime(*t),
    }
}

/// Up to three decimals, no trailing zeros: 3.52, 12, 0.5.
pub fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// ISO 8601 in UTC, always with milliseconds: `2026-11-22T09:00:00.000Z`.
pub fn datetime(t: OffsetDateTime) -> String {
    wa2crm_core::timestamp::iso_millis(t)
}

/// A HubSpot datetime value: epoch milliseconds or ISO 8601.
pub fn parse_datetime(v: &str) -> Option<OffsetDateTime> {
    if let Ok(ms) = v.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok();
    }
    OffsetDateTime::parse(v, &Rfc3339).ok()
}

/// The mapped properties of one record; attributes the record lacks are sent empty, which clears
/// what an older media left there (a voice note has no caption).
pub fn mapped(fields: &FieldMapping, record: &MediaRecord) -> Props {
    fields
        .iter()
        .map(|(attribute, property)| {
            let value = record
                .attribute(attribute)
                .map(|v| encode(&v))
                .unwrap_or_default();
            (property.to_owned(), value)
        })
        .collect()
}

/// `firstname` and `lastname` from a WhatsApp profile name: the first word, and the rest.
pub fn names(profile: &str) -> Props {
    let profile = profile.trim();
    let mut p = Props::new();
    match profile.split_once(char::is_whitespace) {
        Some((first, rest)) => {
            p.insert("firstname".into(), first.to_owned());
            p.insert("lastname".into(), rest.trim().to_owned());
        }
        None if !profile.is_empty() => {
            p.insert("firstname".into(), profile.to_owned());
        }
        None => {}
    }
    p
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// What a note says once retention removed its media: that it was there, and when it went.
pub fn expired_note_body(r: &MediaRecord, today: &str) -> String {
    let kind = match r.media_type.as_str() {
        "voice" => "voice note",
        other => other,
    };
    format!(
        "<p><strong>WhatsApp {kind}</strong> from {}</p><p>Removed on {today} after the retention \
         period; the file and its details are no longer kept.</p>",
        r.sender
    )
}

/// The timeline note: what arrived, from whom, how long and big, its tags and caption, and the
/// link that plays it.
pub fn note_body(r: &MediaRecord) -> String {
    let kind = match r.media_type.as_str() {
        "voice" => "voice note",
        other => other,
    };
    let from = match &r.sender_name {
        Some(n) => format!("{} ({})", escape(n), r.sender),
        None => r.sender.to_string(),
    };
    let mut facts = Vec::new();
    facts.extend(r.length());
    facts.push(size(r.size_bytes));
    facts.push(escape(&r.mime_type));
    let mut body = format!(
        "<p><strong>WhatsApp {kind}</strong> from {from}</p><p>{}</p>",
        facts.join(" · ")
    );
    if !r.tags.is_empty() {
        body.push_str(&format!("<p>Tags: {}</p>", escape(&r.tags.join(", "))));
    }
    if let Some(c) = &r.caption {
        body.push_str(&format!("<p>“{}”</p>", escape(c)));
    }
    if let Some(f) = &r.file_name {
        body.push_str(&format!("<p>File: {}</p>", escape(f)));
    }
    let verb = match r.media_type.as_str() {
        "voice" | "audio" | "video" => "Play",
        _ => "Open",
    };
    body.push_str(&format!(
        "<p><a href=\"{}\">{verb} the {kind}</a>",
        escape(&r.file_url)
    ));
    if let Some(u) = &r.rendition_url {
        let format = if r.media_type.as_str() == "video" {
            "MP4"
        } else {
            "MP3"
        };
        body.push_str(&format!(" · <a href=\"{}\">{format}</a>", escape(u)));
    }
    body.push_str("</p>");
    body
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;
    use wa2crm_core::{MediaKind, Phone};

    pub fn record(id: &str, sender: &str) -> MediaRecord {
        MediaRecord {
            message_id: id.into(),
            file_url: "https://wa2crm.example.com/media/tok&en".into(),
            storage_uri: "file:///m/k".into(),
            media_type: MediaKind::Voice,
            mime_type: "audio/ogg".into(),
            size_bytes: 48_213,
            duration_seconds: Some(42.4),
            tags: vec!["urgent".into(), "product-issue".into()],
            caption: Some("<b>broken</b>".into()),
            file_name: None,
            sender: Phone::parse(sender).unwrap(),
            sender_name: Some("Ana María López".into()),
            received_at: datetime!(2026-11-22 10:00:00.123456 UTC),
            sha256: "ab".repeat(32),
            rendition_url: None,
        }
    }

    #[test]
    fn values_are_strings_hubspot_accepts() {
        assert_eq!(encode(&AttributeValue::Integer(48213)), "48213");
        assert_eq!(number(3.52), "3.52");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.0004), "0");
        assert_eq!(number(1.0 / 3.0), "0.333");
        assert_eq!(
            datetime(datetime!(2026-11-22 10:00:00.123456 +01:00)),
            "2026-11-22T09:00:00.123Z"
        );
        assert_eq!(
            datetime(datetime!(2026-11-22 10:00 UTC)),
            "2026-11-22T10:00:00.000Z"
        );
        assert_eq!(
            parse_datetime("2026-11-22T09:00:00.123Z"),
            Some(datetime!(2026-11-22 09:00:00.123 UTC))
        );
        assert_eq!(
            parse_datetime("1763802000123"),
            Some(datetime!(2025-11-22 09:00:00.123 UTC))
        );
        let tags = vec!["a".to_string(), "b".to_string()];
        assert_eq!(encode(&AttributeValue::List(&tags)), "a;b");
    }

    #[test]
    fn names_split_first_word_from_the_rest() {
        let n = names(" Ana María López ");
        assert_eq!(n["firstname"], "Ana");
        assert_eq!(n["lastname"], "María López");
        assert_eq!(names("Ana").get("lastname"), None);
        assert!(names("  ").is_empty());
    }

    #[test]
    fn the_note_says_what_arrived_and_escapes_user_text() {
        let body = note_body(&record("wamid.1", "+491701234567"));
        assert!(
            body.contains("WhatsApp voice note</strong> from Ana María López (+491701234567)"),
            "{body}"
        );
        assert!(body.contains("0:42 · 47.1 KB · audio/ogg"), "{body}");
        assert!(body.contains("Tags: urgent, product-issue"), "{body}");
        assert!(body.contains("&lt;b&gt;broken&lt;/b&gt;"), "{body}");
        assert!(
            body.contains("href=\"https://wa2crm.example.com/media/tok&amp;en\""),
            "{body}"
        );
    }
}
