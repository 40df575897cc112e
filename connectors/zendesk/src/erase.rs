//! A person's media out of Zendesk (erasure), a media's link out of its note (retention), and the
//! consent a requester gave. The user and the tickets stay: they are the helpdesk's records.
//! What goes is redacted (permanent, also in closed tickets): the note's text or its links, the
//! attached file, and the mapped custom ticket fields wa2crm filled.

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{EraseReport, MediaRecord, Phone, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zendesk;
use crate::api::Comment;
use crate::deliver::refused;
use crate::note;
use crate::redaction;

impl Zendesk {
    async fn notes_on(&self, ticket: u64) -> Result<Vec<Comment>> {
        Ok(self.api.comments(ticket, true).await?.unwrap_or_default())
    }

    async fn redact_text(&self, ticket: u64, comment: u64, html_body: String) -> Result<()> {
        let a = self
            .api
            .call(
                Method::PUT,
                &format!("/api/v2/comment_redactions/{comment}"),
                Some(&json!({"ticket_id": ticket, "html_body": html_body})),
                // Redacting what is already redacted changes nothing.
                Repeat::Safe,
            )
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(refused(
                &format!("the redaction of comment {comment} on ticket {ticket}"),
                &a,
            ))
        }
    }

    async fn redact_attachment(&self, ticket: u64, comment: u64, attachment: u64) -> Result<()> {
        let a = self
            .api
            .call(
                Method::PUT,
                &format!(
                    "/api/v2/tickets/{ticket}/comments/{comment}/attachments/{attachment}/redact"
                ),
                Some(&json!({})),
                Repeat::Safe,
            )
            .await?;
        if a.status.is_success() || a.status.as_u16() == 404 {
            Ok(())
        } else {
            Err(refused(
                &format!("the redaction of attachment {attachment}"),
                &a,
            ))
        }
    }

    /// The mapped custom fields of `ticket` emptied (not when nothing is mapped).
    async fn clear_fields(&self, ticket: u64) -> Result<()> {
        let fields = self.ticket_fields(false).await?;
        let entries: Vec<Value> = self
            .config
            .fields
            .iter()
            .filter_map(|(_, title)| crate::fields::find(&fields, title).ok())
            .map(|f| json!({"id": f.id, "value": null}))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let a = self
            .api
            .call(
                Method::PUT,
                &format!("/api/v2/tickets/{ticket}"),
                Some(&json!({"ticket": {"custom_fields": entries}})),
                Repeat::Safe,
            )
            .await?;
        // A closed ticket keeps its fields: Zendesk allows no update of it.
        if a.status.is_success() || a.status.as_u16() == 422 {
            Ok(())
        } else {
            Err(refused(
                &format!("clearing the fields of ticket {ticket}"),
                &a,
            ))
        }
    }

    /// The end users this number belongs to: the one wa2crm wrote to, and every end user search
    /// finds with the number in any of its forms.
    async fn people(&self, subject: &Phone) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .state
            .get_state(&self.name, &format!("requester:{subject}"))
            .await?
            .and_then(|v| v.parse().ok())
            .into_iter()
            .collect();
        let country = self.config.country();
        for user in self.deliverer(&[]).users_by_phone(subject).await? {
            if let Some(c) = crate::requester::candidate(&user)
                && c.phones
                    .iter()
                    .any(|p| wa2crm_core::phone_match::same_person(subject, p, country))
                && let Ok(id) = c.id.parse::<u64>()
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    pub(crate) async fn erase_person(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport> {
        let mut report = EraseReport::default();
        for person in self.people(subject).await? {
            let tickets = self
                .deliverer(&[])
                .tickets_of(person)
                .await?
                .unwrap_or_default();
            for ticket in tickets {
                let mut touched = false;
                for n in self.notes_on(ticket.id).await? {
                    // wa2crm's notes only, and only while they still say something.
                    if !n.body.lines().any(|l| l.trim().starts_with("wa2crm: ")) {
                        continue;
                    }
                    touched = true;
                    report.removed.push(format!(
                        "ticket {} comment {}: the WhatsApp media note{}",
                        ticket.id,
                        n.id,
                        match n.attachments.len() {
                            0 => String::new(),
                            k => format!(" and {k} attached file(s)"),
                        }
                    ));
                    if dry_run {
                        continue;
                    }
                    for (attachment, _) in &n.attachments {
                        self.redact_attachment(ticket.id, n.id, *attachment).await?;
                    }
                    self.redact_text(ticket.id, n.id, redaction::mark_all(&n.html_body))
                        .await?;
                }
                if touched && !dry_run {
                    self.clear_fields(ticket.id).await?;
                }
            }
            if !dry_run {
                self.state
                    .delete_state(&self.name, &format!("ticket:{person}"))
                    .await?;
            }
        }
        if !dry_run {
            self.state
                .delete_state(&self.name, &format!("requester:{subject}"))
                .await?;
        }
        Ok(report)
    }

    /// Retention: each record's note loses its links (`delete`: its whole block) and its attached
    /// file; the ticket's mapped fields are emptied while they still show this media.
    pub(crate) async fn expire_media(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport> {
        let mut report = EraseReport::default();
        for r in records {
            let Some(ticket) = self
                .state
                .get_state(&self.name, &format!("writing:{}", r.message_id))
                .await?
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            for n in self.notes_on(ticket).await? {
                if !note::is_note_of(&n.body, &r.message_id) {
                    continue;
                }
                let urls: Vec<&str> = [Some(r.file_url.as_str()), r.rendition_url.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                let marked = if delete {
                    redaction::mark_block(&n.html_body, &note::marker(&r.message_id))
                } else {
                    redaction::mark_urls(&n.html_body, &urls)
                };
                let files: Vec<u64> = n
                    .attachments
                    .iter()
                    .filter(|(_, name)| name == r.stored_file_name())
                    .map(|(id, _)| *id)
                    .collect();
                if marked.is_none() && files.is_empty() {
                    continue;
                }
                report.removed.push(format!(
                    "ticket {ticket} comment {}: {} of {}",
                    n.id,
                    if delete { "the note" } else { "the links" },
                    r.message_id
                ));
                if dry_run {
                    continue;
                }
                for f in files {
                    self.redact_attachment(ticket, n.id, f).await?;
                }
                if let Some(html) = marked {
                    self.redact_text(ticket, n.id, html).await?;
                }
            }
            if !dry_run && self.shows(ticket, &r.file_url).await? {
                self.clear_fields(ticket).await?;
            }
        }
        Ok(report)
    }

    /// Whether the ticket's mapped `file_url` field still shows this link.
    async fn shows(&self, ticket: u64, file_url: &str) -> Result<bool> {
        let Some(title) = self
            .config
            .fields
            .get(wa2crm_core::CanonicalAttribute::FileUrl)
        else {
            return Ok(false);
        };
        let fields = self.ticket_fields(false).await?;
        let Ok(field) = crate::fields::find(&fields, title) else {
            return Ok(false);
        };
        let a = self.api.get(&format!("/api/v2/tickets/{ticket}")).await?;
        Ok(a.status.is_success()
            && a.body["ticket"]["custom_fields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["id"] == field.id && f["value"] == file_url))
    }

    /// Whether the requester ticked the consent checkbox (`consent_field`); a person the account
    /// does not know has not consented.
    pub(crate) async fn consent_of(&self, subject: &Phone) -> Result<Option<bool>> {
        let Some(key) = &self.config.consent_field else {
            return Ok(None);
        };
        for person in self.people(subject).await? {
            let a = self.api.get(&format!("/api/v2/users/{person}")).await?;
            if !a.status.is_success() {
                return Err(refused(&format!("reading user {person}"), &a));
            }
            if a.body["user"]["user_fields"][key.as_str()] == true {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }
}
