//! Redaction, as the agent workspace endpoints do it. Sources: developer.zendesk.com ticket
//! comments, "Redact Ticket Comment In Agent Workspace" (`PUT /api/v2/comment_redactions/{id}`
//! with `ticket_id` and the comment's `html_body`, the parts to remove wrapped in `<redact>`, an
//! anchor removed by a `redact` attribute on its tag; characters become ▇; permanent) and
//! ticket-attachments, "Redact Comment Attachment" (the file replaced by an empty
//! `redacted.txt`); support.zendesk.com 4408835158682.
//!
//! Strict readings: the submitted html_body, without the `<redact>` tags and `redact`
//! attributes, must be the comment's html_body exactly (else 422: an edit is not a redaction);
//! a URL in a plain-text comment is rendered as a link, so a link's text wrapped alone leaves the
//! link (`href`) in place.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::put;
use serde_json::{Value, json};

use super::routes::{admit, admit_json, answer, invalid, not_found};
use super::{Attachment, Shared, lock};

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v2/comment_redactions/{id}", put(redact_comment))
        .route(
            "/api/v2/tickets/{ticket}/comments/{comment}/attachments/{attachment}/redact",
            put(redact_attachment),
        )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain-text comment as Zendesk renders it: one `<div>`, `<br>` for line breaks, and each
/// `http(s)://` address as a link.
pub(super) fn html_of(body: &str) -> String {
    let lines: Vec<String> = body
        .split('\n')
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    if word.starts_with("https://") || word.starts_with("http://") {
                        let w = escape(word);
                        format!("<a href=\"{w}\" rel=\"noopener noreferrer\">{w}</a>")
                    } else {
                        escape(word)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "<div class=\"zd-comment\" dir=\"auto\">{}</div>",
        lines.join("<br>")
    )
}

enum Token<'a> {
    Tag(&'a str),
    Text(&'a str),
}

fn tokens(html: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            out.push(Token::Tag(&rest[..=end]));
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '<')
            .map_or(rest.len(), |(i, _)| i);
        out.push(Token::Text(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn is_redact_attribute_tag(tag: &str) -> bool {
    tag.starts_with("<a ") && (tag.ends_with(" redact>") || tag.contains(" redact "))
}

/// The html_body without the redaction marks: what must equal the comment's.
fn unmarked(html: &str) -> String {
    tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Token::Tag("<redact>" | "</redact>") => None,
            Token::Tag(tag) if is_redact_attribute_tag(tag) => Some(
                tag.replacen(" redact>", ">", 1)
                    .replacen(" redact ", " ", 1),
            ),
            Token::Tag(tag) => Some(tag.to_owned()),
            Token::Text(text) => Some(text.to_owned()),
        })
        .collect()
}

/// The marked html_body applied: redacted text as ▇ (an entity is one character), links marked
/// `redact` gone (their text stays unless redacted too).
fn applied(html: &str) -> String {
    let mut out = String::new();
    let (mut redacting, mut dropping_anchor) = (false, false);
    for t in tokens(html) {
        match t {
            Token::Tag("<redact>") => redacting = true,
            Token::Tag("</redact>") => redacting = false,
            Token::Tag(tag) if is_redact_attribute_tag(tag) => dropping_anchor = true,
            Token::Tag("</a>") if dropping_anchor => dropping_anchor = false,
            Token::Tag(tag) => out.push_str(tag),
            Token::Text(text) if redacting => {
                let mut chars = text.chars();
                while let Some(c) = chars.next() {
                    if c == '&' {
                        // One entity, one character.
                        for c in chars.by_ref() {
                            if c == ';' {
                                break;
                            }
                        }
                    }
                    out.push('▇');
                }
            }
            Token::Text(text) => out.push_str(text),
        }
    }
    out
}

/// The plain body of an html_body.
fn body_of(html: &str) -> String {
    tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Token::Tag("<br>") => Some("\n".to_owned()),
            Token::Tag(_) => None,
            Token::Text(text) => Some(
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            ),
        })
        .collect()
}

async fn redact_comment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let ticket_id = body.get("ticket_id").and_then(Value::as_u64);
    let Some(html) = body.get("html_body").and_then(Value::as_str) else {
        return invalid(limit, "html_body", "Html body: cannot be blank");
    };
    let mut i = lock(&s);
    let comment = id.parse::<u64>().ok().and_then(|cid| {
        i.tickets
            .get_mut(&ticket_id?)?
            .comments
            .iter_mut()
            .find(|c| c.id == cid)
    });
    let Some(comment) = comment else {
        drop(i);
        return not_found(limit);
    };
    if unmarked(html) != comment.html_body {
        drop(i);
        return invalid(
            limit,
            "html_body",
            "Html body: may only add redact tags to the comment's html_body",
        );
    }
    comment.html_body = applied(html);
    comment.body = body_of(&comment.html_body);
    let json = json!({"id": comment.id, "body": comment.body, "html_body": comment.html_body});
    drop(i);
    answer(limit, StatusCode::OK, json!({"comment": json}))
}

async fn redact_attachment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((ticket, comment, attachment)): Path<(String, String, String)>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let ids = (
        ticket.parse::<u64>().ok(),
        comment.parse::<u64>().ok(),
        attachment.parse::<u64>().ok(),
    );
    let mut i = lock(&s);
    let found = match ids {
        (Some(t), Some(c), Some(a)) => i
            .tickets
            .get_mut(&t)
            .and_then(|t| t.comments.iter_mut().find(|x| x.id == c))
            .and_then(|c| c.attachments.iter_mut().find(|x| x.id == a)),
        _ => None,
    };
    let Some(found) = found else {
        drop(i);
        return not_found(limit);
    };
    *found = Attachment {
        id: found.id,
        file_name: "redacted.txt".into(),
        content_type: "text/plain".into(),
        size: 0,
    };
    let json = json!({"id": found.id, "file_name": found.file_name, "size": 0});
    drop(i);
    answer(limit, StatusCode::OK, json!({"attachment": json}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_comment_renders_links_and_lines() {
        assert_eq!(
            html_of("Open: https://x.example/m?a=1&b=2\n<b>hi</b>"),
            "<div class=\"zd-comment\" dir=\"auto\">Open: <a href=\"https://x.example/m?a=1&amp;b=2\" \
             rel=\"noopener noreferrer\">https://x.example/m?a=1&amp;b=2</a><br>&lt;b&gt;hi&lt;/b&gt;</div>"
        );
    }

    #[test]
    fn redaction_blanks_marked_text_and_drops_marked_links() {
        let html = html_of("Open: https://x.example/m\nkeep");
        let marked = html
            .replace(
                "rel=\"noopener noreferrer\">",
                "rel=\"noopener noreferrer\" redact><redact>",
            )
            .replace("</a>", "</redact></a>");
        assert_eq!(unmarked(&marked), html);
        let after = applied(&marked);
        assert!(!after.contains("href"), "{after}");
        assert_eq!(body_of(&after), format!("Open: {}\nkeep", "▇".repeat(19)));
        // The text alone redacted: the link itself stays.
        let text_only = html.replace(
            ">https://x.example/m<",
            "><redact>https://x.example/m</redact><",
        );
        assert!(applied(&text_only).contains("href=\"https://x.example/m\""));
    }
}
