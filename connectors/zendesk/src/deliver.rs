//! A sender's media onto their ticket, exactly once.
//!
//! The requester: remembered from an earlier media, else found among the account's end users by
//! phone (every WhatsApp form of the number, verified locally), else made with
//! `users/create_or_update` keyed by `external_id` = the +E164 number — which also finds a user an
//! earlier attempt made but search has not indexed yet, so no person is made twice.
//!
//! The ticket: chosen by `ticket_policy` among the requester's own tickets.
//!
//! The note: one update a ticket carries the batch's media of that sender together (Zendesk allows
//! 30 updates per ticket per 10 minutes, and one update takes one comment), each media with its own
//! marker line. A comment cannot be upserted, so before a write whose answer may have been lost
//! (a ticket recorded as "being written" for the media) the ticket's comments are read and the
//! media already there are not posted again.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::matching::Several;
use wa2crm_core::phone_match::{DefaultCountry, whatsapp_forms};
use wa2crm_core::{Delivered, Error, MediaRecord, MediaSource, Phone, Result, StateStore};
use wa2crm_rest::engine::Repeat;

use crate::api::{Answer, Api};
use crate::config::ZendeskConfig;
use crate::note;
use crate::rules::describe;
use crate::tickets::{self, TicketChoice, TicketSummary};

pub struct Deliverer<'a> {
    pub name: &'a str,
    pub config: &'a ZendeskConfig,
    pub api: &'a Api,
    pub state: Arc<dyn StateStore>,
    pub country: Option<DefaultCountry>,
    /// The stored files, for `upload = true`.
    pub media: Option<Arc<dyn MediaSource>>,
}

enum Upload {
    Token(String),
    TooLarge,
    Off,
}

/// What `writing:{message_id}` holds while a new ticket is being made for the media.
const NEW_TICKET: &str = "new";

fn refused(what: &str, a: &Answer) -> Error {
    Error::permanent(format!(
        "Zendesk refused {what}: {} ({})",
        describe(&a.body),
        a.status
    ))
}

impl Deliverer<'_> {
    /// One sender's media, in one update of their ticket (or one new ticket).
    pub async fn deliver_sender(
        &self,
        sender: &Phone,
        media: &[&MediaRecord],
    ) -> Result<Vec<Delivered>> {
        let requester = self.requester(sender, media).await?;
        let caption = media.iter().find_map(|m| m.caption.as_deref());
        let theirs = self.tickets_of(requester).await?;
        let choice = tickets::choose(self.config.ticket_policy, caption, &theirs);
        // A media already on a ticket (an attempt whose answer was lost) is not posted again.
        let mut pending: Vec<&MediaRecord> = Vec::new();
        let mut done: Vec<Delivered> = Vec::new();
        for m in media {
            // Where an earlier attempt was writing it: a ticket, or a new ticket (whose id the
            // lost answer would have told): then any of the requester's tickets may hold it.
            let candidates: Vec<u64> = match self.earlier_ticket(m).await?.as_deref() {
                None => Vec::new(),
                Some(NEW_TICKET) => theirs.iter().map(|t| t.id).collect(),
                Some(id) => id.parse().into_iter().collect(),
            };
            let mut found = None;
            for ticket in candidates {
                if self.note_exists(ticket, &m.message_id).await? {
                    found = Some(ticket);
                    break;
                }
            }
            match found {
                Some(ticket) => done.push(Delivered {
                    crm_id: ticket.to_string(),
                    created: false,
                }),
                None => pending.push(m),
            }
        }
        if pending.is_empty() {
            return Ok(done);
        }
        let mut uploads: Vec<String> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for m in &pending {
            let (uploaded, too_large) = match self.upload(m).await? {
                Upload::Token(token) => {
                    uploads.push(token);
                    (true, false)
                }
                Upload::TooLarge => (false, true),
                Upload::Off => (false, false),
            };
            notes.push(note::body(m, uploaded, too_large));
        }
        let body = notes.join("\n\n");
        let tags: Vec<String> = pending
            .iter()
            .flat_map(|m| m.tags.iter())
            .filter_map(|t| note::zendesk_tag(t))
            .collect();
        let ticket = match choice {
            TicketChoice::Existing(id) => {
                self.writing(&pending, id).await?;
                let a = self
                    .api
                    .call(
                        Method::PUT,
                        &format!("/api/v2/tickets/{id}"),
                        Some(&json!({"ticket": {
                            "comment": {"body": body, "public": false, "uploads": uploads},
                            "additional_tags": tags,
                        }})),
                        // A lost answer is looked for by its markers before a second post.
                        Repeat::Once,
                    )
                    .await?;
                if !a.status.is_success() {
                    return Err(refused(&format!("the update of ticket {id}"), &a));
                }
                id
            }
            TicketChoice::New => {
                let name = pending[0]
                    .sender_name
                    .clone()
                    .unwrap_or_else(|| sender.to_string());
                let mut ticket = json!({
                    "requester_id": requester,
                    "subject": self.config.subject.replace("{name}", &name),
                    "comment": {"body": body, "public": false, "uploads": uploads},
                    "tags": tags,
                });
                for (key, value) in [
                    ("group_id", self.config.group_id),
                    ("brand_id", self.config.brand_id),
                    ("ticket_form_id", self.config.ticket_form_id),
                ] {
                    if let Some(v) = value {
                        ticket[key] = v.into();
                    }
                }
                self.writing_to(&pending, NEW_TICKET).await?;
                let a = self
                    .api
                    .call(
                        Method::POST,
                        "/api/v2/tickets",
                        Some(&json!({"ticket": ticket})),
                        Repeat::Once,
                    )
                    .await?;
                if !a.status.is_success() {
                    return Err(refused("the new ticket", &a));
                }
                let id = a.body["ticket"]["id"].as_u64().ok_or_else(|| {
                    Error::transient("Zendesk answered a new ticket without its id")
                })?;
                self.writing(&pending, id).await?;
                id
            }
        };
        done.extend(pending.iter().map(|_| Delivered {
            crm_id: ticket.to_string(),
            created: matches!(choice, TicketChoice::New),
        }));
        Ok(done)
    }

    /// The file into Zendesk, when `upload = true` and it fits the attachment limit.
    async fn upload(&self, m: &MediaRecord) -> Result<Upload> {
        if !self.config.upload {
            return Ok(Upload::Off);
        }
        if m.size_bytes > self.config.max_upload_bytes {
            return Ok(Upload::TooLarge);
        }
        let media = self.media.clone().ok_or_else(|| {
            Error::permanent(
                "upload = true, but this process has no storage to read the files from",
            )
        })?;
        let make = || {
            let media = media.clone();
            Box::pin(async move {
                let body = media.open(m).await?;
                Ok(reqwest::Body::wrap_stream(body.stream))
            })
                as std::pin::Pin<
                    Box<dyn std::future::Future<Output = Result<reqwest::Body>> + Send + '_>,
                >
        };
        let a = self
            .api
            .upload(m.stored_file_name(), &m.mime_type, &make)
            .await?;
        if !a.status.is_success() {
            return Err(refused(
                &format!("the upload of {}", m.stored_file_name()),
                &a,
            ));
        }
        a.body["upload"]["token"]
            .as_str()
            .map(|t| Upload::Token(t.to_owned()))
            .ok_or_else(|| Error::transient("Zendesk answered an upload without its token"))
    }

    /// The requester's user id.
    async fn requester(&self, sender: &Phone, media: &[&MediaRecord]) -> Result<u64> {
        let key = format!("requester:{sender}");
        if let Some(id) = self
            .state
            .get_state(self.name, &key)
            .await?
            .and_then(|v| v.parse().ok())
        {
            return Ok(id);
        }
        let mut users: Vec<Value> = Vec::new();
        for form in whatsapp_forms(sender) {
            let query = format!("type:user phone:\"{form}\"");
            let mut url = self.api.url("/api/v2/search")?;
            url.query_pairs_mut().append_pair("query", &query);
            let a = self
                .api
                .engine
                .send(wa2crm_rest::engine::Call::new(
                    Method::GET,
                    url,
                    Repeat::Safe,
                ))
                .await?;
            if !a.status.is_success() {
                return Err(refused("the user search", &a));
            }
            users.extend(a.body["results"].as_array().into_iter().flatten().cloned());
        }
        let id = match crate::requester::choose(sender, &users, self.country, Several::MostRecent)
            .record()
        {
            Some(c) => {
                c.id.parse()
                    .map_err(|_| Error::transient("Zendesk answered a user without a numeric id"))?
            }
            None => {
                let name = media
                    .iter()
                    .find_map(|m| m.sender_name.clone())
                    .unwrap_or_else(|| sender.to_string());
                let a = self
                    .api
                    .call(
                        Method::POST,
                        "/api/v2/users/create_or_update",
                        Some(
                            &json!({"user": {"name": name, "external_id": sender.as_str(),
                            "phone": sender.as_str(), "role": "end-user"}}),
                        ),
                        // Keyed by external_id: sent twice, it finds the user it made.
                        Repeat::Safe,
                    )
                    .await?;
                if !a.status.is_success() {
                    return Err(refused("the requester", &a));
                }
                a.body["user"]["id"]
                    .as_u64()
                    .ok_or_else(|| Error::transient("Zendesk answered a user without its id"))?
            }
        };
        self.state
            .put_state(self.name, &key, &id.to_string())
            .await?;
        Ok(id)
    }

    async fn tickets_of(&self, requester: u64) -> Result<Vec<TicketSummary>> {
        let a = self
            .api
            .get(&format!("/api/v2/users/{requester}/tickets/requested"))
            .await?;
        if !a.status.is_success() {
            return Err(refused("the requester's tickets", &a));
        }
        Ok(a.body["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(TicketSummary {
                    id: t["id"].as_u64()?,
                    status: t["status"].as_str()?.to_owned(),
                    updated_at: t["updated_at"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// Records, before the write, which ticket the media are being written to.
    async fn writing(&self, media: &[&MediaRecord], ticket: u64) -> Result<()> {
        self.writing_to(media, &ticket.to_string()).await
    }

    async fn writing_to(&self, media: &[&MediaRecord], ticket: &str) -> Result<()> {
        for m in media {
            self.state
                .put_state(self.name, &format!("writing:{}", m.message_id), ticket)
                .await?;
        }
        Ok(())
    }

    async fn earlier_ticket(&self, m: &MediaRecord) -> Result<Option<String>> {
        self.state
            .get_state(self.name, &format!("writing:{}", m.message_id))
            .await
    }

    async fn note_exists(&self, ticket: u64, message_id: &str) -> Result<bool> {
        let a = self
            .api
            .get(&format!("/api/v2/tickets/{ticket}/comments"))
            .await?;
        if !a.status.is_success() {
            return Err(refused(&format!("the comments of ticket {ticket}"), &a));
        }
        Ok(a.body["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["body"].as_str())
            .any(|b| note::is_note_of(b, message_id)))
    }
}

/// The batch by sender, in the order their first media came.
pub fn by_sender(batch: &[MediaRecord]) -> Vec<(&Phone, Vec<&MediaRecord>)> {
    let mut order: Vec<&Phone> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<&MediaRecord>> = BTreeMap::new();
    for r in batch {
        if !groups.contains_key(r.sender.as_str()) {
            order.push(&r.sender);
        }
        groups.entry(r.sender.as_str()).or_default().push(r);
    }
    order
        .into_iter()
        .map(|p| (p, groups.remove(p.as_str()).unwrap_or_default()))
        .collect()
}
