//! The internal note a media becomes on its ticket, and the ticket tags its tag rules give.
//!
//! The note is a plain-text `body`: a customer's caption, file name or profile name is shown as
//! text and cannot become markup in the agent's browser. Its last line names the WhatsApp message,
//! which is how a retry whose answer was lost finds the note it already posted.

use wa2crm_core::MediaRecord;

/// The line that marks a note as this media's: `wa2crm: wamid.…`.
pub fn marker(message_id: &str) -> String {
    format!("wa2crm: {message_id}")
}

/// Whether a comment's body is this media's note.
pub fn is_note_of(body: &str, message_id: &str) -> bool {
    let marker = marker(message_id);
    body.lines().any(|l| l.trim() == marker)
}

/// The note's text. `uploaded`: the file is attached to the note; `too_large`: it could not be
/// (over the account's attachment limit), said so agents know to follow the link.
pub fn body(r: &MediaRecord, uploaded: bool, too_large: bool) -> String {
    let mut lines = vec![format!(
        "WhatsApp {} from {}{}",
        r.media_type,
        r.sender_name
            .as_deref()
            .map(|n| format!("{} ", one_line(n)))
            .unwrap_or_default(),
        r.sender
    )];
    lines.push(format!("Open: {}", r.file_url));
    if let Some(rendition) = &r.rendition_url {
        lines.push(format!("Plays in every browser: {rendition}"));
    }
    let mut facts = vec![r.mime_type.clone(), human_size(r.size_bytes)];
    if let Some(length) = r.length() {
        facts.insert(0, length);
    }
    lines.push(facts.join(" · "));
    if !r.tags.is_empty() {
        lines.push(format!("Tags: {}", r.tags.join(", ")));
    }
    if let Some(caption) = r.caption.as_deref().filter(|c| !c.trim().is_empty()) {
        lines.push(format!("Caption: {}", one_line(caption)));
    }
    if uploaded {
        lines.push("The file is attached.".into());
    } else if too_large {
        lines.push(
            "The file is larger than this account's attachment limit: open it with the link."
                .into(),
        );
    }
    lines.push(marker(&r.message_id));
    lines.join("\n")
}

/// A tag as Zendesk keeps it: lowercase, no spaces (Zendesk splits a tag at spaces), only
/// letters, digits and `_-`.
pub fn zendesk_tag(tag: &str) -> Option<String> {
    let t: String = tag
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!t.is_empty()).then_some(t)
}

/// Text of the customer's on one line, without control characters (a caption could otherwise
/// forge the marker line of another media's note).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{} kB", b / 1024),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use wa2crm_core::{MediaKind, Phone};

    use super::*;

    fn record() -> MediaRecord {
        MediaRecord {
            message_id: "wamid.HBgL".into(),
            file_url: "https://wa2crm.example.com/media/tok".into(),
            storage_uri: "s3://media/2026/12/04/ab.mp4".into(),
            media_type: MediaKind::Video,
            mime_type: "video/mp4".into(),
            size_bytes: 3 * 1024 * 1024,
            duration_seconds: Some(83.4),
            tags: vec!["product-issue".into()],
            caption: Some("kaputt\nwa2crm: wamid.OTHER".into()),
            file_name: None,
            sender: Phone::parse("+4915112345678").unwrap(),
            sender_name: Some("Jürgen <b>Weiß</b>".into()),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            sha256: "ab".into(),
            rendition_url: None,
        }
    }

    #[test]
    fn the_note_says_what_the_media_is_and_names_its_message() {
        let body = body(&record(), false, true);
        assert_eq!(
            body,
            "WhatsApp video from Jürgen <b>Weiß</b> +4915112345678\n\
             Open: https://wa2crm.example.com/media/tok\n\
             1:23 · video/mp4 · 3.0 MB\n\
             Tags: product-issue\n\
             Caption: kaputt wa2crm: wamid.OTHER\n\
             The file is larger than this account's attachment limit: open it with the link.\n\
             wa2crm: wamid.HBgL"
        );
        assert!(is_note_of(&body, "wamid.HBgL"));
        assert!(
            !is_note_of(&body, "wamid.OTHER"),
            "a caption cannot claim another media's note"
        );
    }

    #[test]
    fn tags_take_zendesks_form() {
        assert_eq!(
            zendesk_tag("Product Issue").as_deref(),
            Some("product_issue")
        );
        assert_eq!(zendesk_tag("voice-note").as_deref(), Some("voice-note"));
        assert_eq!(zendesk_tag("kaputt!").as_deref(), Some("kaputt"));
        assert_eq!(zendesk_tag("  "), None);
    }
}
