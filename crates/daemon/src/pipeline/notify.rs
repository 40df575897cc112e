//! The outgoing webhook (`[notifications.webhook]`): once a media is stored and delivered, one
//! signed JSON POST says so — to a chat tool (the `text` field is what Slack's and Mattermost's
//! incoming webhooks show) or to the admin's own script. Sent once per media: the `notify`
//! checkpoint records it. A receiver that is down is tried again with the job's backoff; one that
//! refuses the POST (a 4xx) is logged and not asked again.
//!
//! Signature: `X-Wa2crm-Timestamp` (Unix seconds) and `X-Wa2crm-Signature: sha256=<hex>`, the
//! HMAC-SHA256 with the shared secret of `{timestamp}.{body}`; receivers should also refuse a
//! timestamp more than a few minutes old.

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wa2crm_core::{Error, MediaFilter, MediaKind, MediaRecord};
use wa2crm_queue::{Job, Step};

use super::Pipeline;
use super::deliver::DeliveredCheckpoint;
use super::record::{checkpoint, media_record};
use super::steps::{Failure, save};
use crate::config::WebhookNotifyConfig;

/// How long the receiver may take to answer.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
pub struct Notifier {
    http: reqwest::Client,
    url: String,
    secret: SecretString,
    filter: MediaFilter,
}

impl Notifier {
    pub fn new(c: &WebhookNotifyConfig) -> anyhow::Result<Notifier> {
        Ok(Notifier {
            http: wa2crm_rest::client::http_client(TIMEOUT)?,
            url: c.url.clone(),
            secret: c.secret.clone(),
            filter: MediaFilter {
                kinds: c.kinds.clone(),
                tags: c.tags.clone(),
            },
        })
    }

    /// Whether this media is one the admin wants to hear of.
    pub fn wants(&self, r: &MediaRecord) -> bool {
        self.filter.matches(r)
    }

    async fn send(&self, body: &[u8], timestamp: i64) -> Result<u16, Error> {
        let answer = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Wa2crm-Timestamp", timestamp.to_string())
            .header(
                "X-Wa2crm-Signature",
                signature(&self.secret, timestamp, body),
            )
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| wa2crm_rest::classify::from_reqwest("notification webhook", e))?;
        let status = answer.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else if wa2crm_rest::classify::is_transient(status) || status.as_u16() == 429 {
            Err(Error::transient(format!(
                "notification webhook answered {status}; trying again later"
            )))
        } else {
            Err(Error::permanent(format!(
                "notification webhook refused the POST with {status}"
            )))
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "{timestamp}.{body}").
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    // An HMAC key may have any length: new_from_slice cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a customer wrote (their profile name, a caption), made inert for a chat tool's markup:
/// no mention (`<!channel>`, `<@U…>` in Slack; `@channel`, `@here`, `@all` in Mattermost and
/// Teams), no link (`<url|text>`, `[text](url)`, or a bare URL the tool would link), no
/// formatting that spans the line, and on one line of at most `max` characters. Slack shows
/// `&amp;`, `&lt;`, `&gt;` as the characters; markdown tools do too.
pub fn chat_safe(text: &str, max: usize) -> String {
    const JOINER: char = '\u{2060}'; // WORD JOINER: invisible, and breaks the token it sits in
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if count >= max {
            out.push('…');
            break;
        }
        count += 1;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A mention needs its word right after the @; links need their brackets.
            '@' => {
                out.push('@');
                out.push(JOINER);
            }
            '[' => out.push('［'),
            ']' => out.push('］'),
            '*' | '_' | '~' | '`' | '|' => {
                out.push('\\');
                out.push(c);
            }
            ':' if chars.peek() == Some(&'/') => {
                out.push(':');
                out.push(JOINER);
            }
            '.' if out.to_ascii_lowercase().ends_with("www") => {
                out.push(JOINER);
                out.push('.');
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The JSON a receiver gets.
pub fn payload(r: &MediaRecord, delivered: &DeliveredCheckpoint) -> Value {
    let kind = match r.media_type {
        MediaKind::Voice => "voice note",
        other => other.as_str(),
    };
    let from = match &r.sender_name {
        Some(n) => format!("{} ({})", chat_safe(n, 80), r.sender),
        None => r.sender.to_string(),
    };
    let length = r.length().map(|l| format!(", {l}")).unwrap_or_default();
    let tags = if r.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", r.tags.join(", "))
    };
    let caption = r
        .caption
        .as_deref()
        .map(|c| format!(" “{}”", chat_safe(c, 200)))
        .unwrap_or_default();
    json!({
        "event": "media.delivered",
        "text": format!("New WhatsApp {kind} from {from}{length}{tags}{caption}: {}", r.file_url),
        "message_id": r.message_id,
        "sender": r.sender.as_str(),
        "sender_name": r.sender_name,
        "media_type": r.media_type,
        "mime_type": r.mime_type,
        "size_bytes": r.size_bytes,
        "duration_seconds": r.duration_seconds,
        "tags": r.tags,
        "caption": r.caption,
        "file_name": r.file_name,
        "file_url": r.file_url,
        "received_at": r.received_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "sha256": r.sha256,
        "crm": delivered.iter().map(|(name, d)| (name.clone(), json!(d.crm_id))).collect::<serde_json::Map<_, _>>(),
    })
}

pub(super) async fn run(p: &Pipeline, job: &mut Job) -> Result<(), Failure> {
    let Some(notifier) = &p.notifier else {
        return Ok(());
    };
    if Step::Notify.of(&job.checkpoints).is_some() {
        return Ok(());
    }
    let Some(record) = media_record(&job.event, &job.checkpoints) else {
        return Ok(());
    };
    if !notifier.wants(&record) {
        return Ok(());
    }
    super::steps::unless_fenced(&p.jobs, job).await?;
    let delivered: DeliveredCheckpoint = checkpoint(job, Step::Deliver).unwrap_or_default();
    let body = payload(&record, &delivered).to_string();
    let timestamp = p.jobs.clock.now_ms() / 1000;
    match notifier.send(body.as_bytes(), timestamp).await {
        Ok(status) => save(&p.jobs, job, Step::Notify, &json!({"status": status})).await,
        Err(e) if !e.kind().is_retryable() => {
            tracing::warn!(job = job.id, error = %e, "Notification not sent; it is not tried again.");
            save(&p.jobs, job, Step::Notify, &json!({"refused": e.message()})).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::Phone;

    fn record(kind: MediaKind, tags: &[&str]) -> MediaRecord {
        MediaRecord {
            message_id: "wamid.1".into(),
            file_url: "https://wa2crm.example.com/media/tok".into(),
            storage_uri: "file:///m/k.ogg".into(),
            media_type: kind,
            mime_type: "audio/ogg".into(),
            size_bytes: 6542,
            duration_seconds: Some(83.2),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            caption: None,
            file_name: None,
            sender: Phone::parse("+4915123456789").unwrap(),
            sender_name: Some("Jürgen".into()),
            received_at: time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap(),
            sha256: "ab".repeat(32),
            rendition_url: None,
        }
    }

    #[test]
    fn kinds_and_tags_filter_what_is_sent() {
        let n = |kinds: Vec<MediaKind>, tags: Vec<&str>| {
            Notifier::new(&WebhookNotifyConfig {
                url: "https://hooks.example.com/x".into(),
                secret: SecretString::from("0123456789abcdef"),
                kinds,
                tags: tags.into_iter().map(str::to_owned).collect(),
            })
            .unwrap()
        };
        assert!(n(vec![], vec![]).wants(&record(MediaKind::Image, &[])));
        let voice_only = n(vec![MediaKind::Voice], vec![]);
        assert!(voice_only.wants(&record(MediaKind::Voice, &[])));
        assert!(!voice_only.wants(&record(MediaKind::Video, &[])));
        let urgent = n(vec![], vec!["urgent"]);
        assert!(urgent.wants(&record(MediaKind::Video, &["vip", "urgent"])));
        assert!(!urgent.wants(&record(MediaKind::Video, &["vip"])));
    }

    #[test]
    fn the_payload_reads_well_in_a_chat_and_the_signature_covers_time_and_body() {
        let delivered = DeliveredCheckpoint::from([(
            "hubspot".to_owned(),
            wa2crm_core::Delivered::new("1001", true),
        )]);
        let p = payload(&record(MediaKind::Voice, &["urgent"]), &delivered);
        assert_eq!(
            p["text"],
            "New WhatsApp voice note from Jürgen (+4915123456789), 1:23 [urgent]: https://wa2crm.example.com/media/tok"
        );
        assert_eq!(p["crm"]["hubspot"], "1001");
        assert_eq!(p["received_at"], "2026-09-21T14:13:20Z");
        let secret = SecretString::from("0123456789abcdef");
        let s = signature(&secret, 1_790_000_000, b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64, "{s}");
        assert_ne!(
            s,
            signature(&secret, 1_790_000_001, b"{}"),
            "the time is signed"
        );
        assert_ne!(
            s,
            signature(&secret, 1_790_000_000, b"{ }"),
            "the body is signed"
        );
        // Computed independently: printf '1790000000.{}' | openssl dgst -sha256 -hmac 0123456789abcdef
        assert_eq!(
            s,
            "sha256=3d02334942fff50e279f641c1b104ff5f49380d94ff307bb92b1e03f5aee6ff0"
        );
    }

    /// A customer's profile name and caption, written to ping everyone or to dress up a link,
    /// reach the chat as plain text.
    #[test]
    fn a_hostile_name_or_caption_cannot_ping_link_or_break_lines() {
        let mut r = record(MediaKind::Image, &[]);
        r.sender_name = Some(
            "<!channel> @here <https://evil.example|Invoice> [pay](https://evil.example)".into(),
        );
        r.caption = Some("*urgent*\nVisit www.evil.example or https://evil.example @all".into());
        let text = payload(&r, &DeliveredCheckpoint::new())["text"]
            .as_str()
            .unwrap()
            .to_owned();
        for bad in [
            "<!channel>",
            "<https",
            "@here",
            "@all",
            "](",
            "[pay",
            "https://evil",
            "www.evil",
            "\n",
            "*urgent*",
        ] {
            assert!(!text.contains(bad), "{bad:?} in {text:?}");
        }
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(
            text.ends_with(": https://wa2crm.example.com/media/tok"),
            "{text}"
        );
        assert_eq!(
            chat_safe("Jürgen Weiß & Söhne", 80),
            "Jürgen Weiß &amp; Söhne"
        );
        assert_eq!(
            chat_safe(&"a".repeat(300), 10),
            format!("{}…", "a".repeat(10))
        );
    }
}
