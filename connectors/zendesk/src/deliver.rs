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
use wa2crm_core::phone_match::{DefaultCountry, whatsapp_forms};
use wa2crm_core::{Delivered, Error, MediaRecord, MediaSource, Phone, Result, StateStore};
use wa2crm_rest::engine::Repeat;

use crate::api::{Answer, Api};
use crate::config::{TicketPolicy, ZendeskConfig};
use crate::fields::CustomField;
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
    /// The account's custom ticket fields (for the mapped ones' ids and types).
    pub fields: &'a [CustomField],
}

enum Upload {
    Token(String),
    TooLarge,
    Off,
}

/// What `writing:{message_id}` holds while a new ticket is being made for the media.
const NEW_TICKET: &str = "new";

pub(crate) fn refused(what: &str, a: &Answer) -> Error {
    Error::permanent(format!(
        "Zendesk refused {what}: {} ({})",
        describe(&a.body),
        a.status
    ))
}

/// The requester, and whether this delivery made them (then they have no tickets yet).
struct Requester {
    id: u64,
    made: bool,
    /// Where it is remembered (`requester:{sender}`).
    key: String,
}

/// The ticket a write went to, remembered per requester as `ticket:{id}` = `{ticket} {updated_at}`:
/// the next media goes there with a safe update, which Zendesk refuses (409) if anyone changed
/// the ticket since — then the requester's tickets are read and the choice made afresh.
struct Remembered {
    id: u64,
    stamp: String,
}

impl Deliverer<'_> {
    /// One sender's media, in one update of their ticket (or one new ticket); one result per
    /// media, in order.
    pub async fn deliver_sender(
        &self,
        sender: &Phone,
        media: &[&MediaRecord],
    ) -> Result<Vec<Delivered>> {
        let requester = self.requester(sender, media).await?;
        let mut listed: Option<Vec<TicketSummary>> = None;
        // A media already on a ticket (an attempt whose answer was lost) is not posted again.
        let mut done: BTreeMap<&str, Delivered> = BTreeMap::new();
        let mut pending: Vec<&MediaRecord> = Vec::new();
        for m in media {
            // Where an earlier attempt was writing it: a ticket, or a new ticket (whose id the
            // lost answer would have told): then any of the requester's tickets may hold it.
            let candidates: Vec<u64> = match self.earlier_ticket(m).await?.as_deref() {
                None => Vec::new(),
                Some(NEW_TICKET) => self
                    .listed(&requester, &mut listed)
                    .await?
                    .iter()
                    .map(|t| t.id)
                    .collect(),
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
                Some(ticket) => {
                    done.insert(&m.message_id, Delivered::new(ticket.to_string(), false));
                }
                None => pending.push(m),
            }
        }
        if !pending.is_empty() {
            let (ticket, created) = self.write(sender, &requester, &pending, listed).await?;
            for m in &pending {
                done.insert(&m.message_id, Delivered::new(ticket.to_string(), created));
            }
        }
        media
            .iter()
            .map(|m| {
                done.remove(m.message_id.as_str())
                    .ok_or_else(|| Error::transient("a media of the batch was not written"))
            })
            .collect()
    }

    /// The pending media as one comment on the ticket `ticket_policy` picks: the ticket's id and
    /// whether it was made.
    async fn write(
        &self,
        sender: &Phone,
        requester: &Requester,
        pending: &[&MediaRecord],
        mut listed: Option<Vec<TicketSummary>>,
    ) -> Result<(u64, bool)> {
        let mut uploads: Vec<String> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for m in pending {
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
        let comment = json!({"body": notes.join("\n\n"), "public": false, "uploads": uploads});
        let tags: Vec<String> = pending
            .iter()
            .flat_map(|m| m.tags.iter())
            .filter_map(|t| note::zendesk_tag(t))
            .collect();
        // The latest media's values (the batch is in arrival order).
        let latest = pending[pending.len() - 1];
        let custom_fields = crate::fields::entries(latest, &self.config.fields, self.fields)
            .map_err(|e| Error::permanent(format!("fields: {e}")))?;
        let caption = pending.iter().find_map(|m| m.caption.as_deref());
        let policy = self.config.ticket_policy;
        let update = json!({"ticket": {
            "comment": comment,
            "additional_tags": tags,
            "custom_fields": custom_fields,
            "safe_update": true,
        }});

        // The ticket the last media went to, if the policy would pick it without a listing.
        if let Some(last) = self.remembered(requester.id).await?
            && match policy {
                TicketPolicy::OpenOrNew => true,
                TicketPolicy::TicketIdFromCaption => caption
                    .and_then(tickets::ticket_id_in_caption)
                    .is_none_or(|id| id == last.id),
                TicketPolicy::NewPerMedia => false,
            }
            && let Some(id) = self
                .update(pending, requester, last.id, &last.stamp, &update, true)
                .await?
        {
            return Ok((id, false));
        }

        let choice = match policy {
            TicketPolicy::NewPerMedia => TicketChoice::New,
            // Made just now: no tickets yet.
            _ if requester.made && listed.is_none() => TicketChoice::New,
            _ => tickets::choose(policy, caption, self.listed(requester, &mut listed).await?),
        };
        match choice {
            TicketChoice::Existing(id) => {
                let stamp = listed
                    .iter()
                    .flatten()
                    .find(|t| t.id == id)
                    .map(|t| t.updated_at.clone())
                    .unwrap_or_default();
                match self
                    .update(pending, requester, id, &stamp, &update, false)
                    .await?
                {
                    Some(id) => Ok((id, false)),
                    None => Err(Error::transient(format!(
                        "ticket {id} changed while its media were being added; tried again"
                    ))),
                }
            }
            TicketChoice::New => {
                let name = pending[0]
                    .sender_name
                    .clone()
                    .unwrap_or_else(|| sender.to_string());
                let mut ticket = json!({
                    "requester_id": requester.id,
                    "subject": self.config.subject.replace("{name}", &name),
                    "comment": update["ticket"]["comment"],
                    "tags": update["ticket"]["additional_tags"],
                    "custom_fields": update["ticket"]["custom_fields"],
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
                self.writing_to(pending, NEW_TICKET).await?;
                let a = self
                    .api
                    .call(
                        Method::POST,
                        "/api/v2/tickets",
                        Some(&json!({"ticket": ticket})),
                        // A lost answer is looked for by its markers before a second post.
                        Repeat::Once,
                    )
                    .await?;
                if a.status.as_u16() == 422 && describe(&a.body).contains("requester") {
                    return Err(self.forget(requester).await);
                }
                if !a.status.is_success() {
                    return Err(refused("the new ticket", &a));
                }
                let id = self.wrote(requester, pending, &a).await?;
                Ok((id, true))
            }
        }
    }

    /// A safe update of ticket `id` as it was at `stamp`: `None` when it changed since, so the
    /// caller chooses again. A `remembered` ticket may also have been closed (422) or deleted
    /// (404) since; a ticket just listed that refuses the update (422) names what is wrong with
    /// it (a field value), for the admin.
    async fn update(
        &self,
        pending: &[&MediaRecord],
        requester: &Requester,
        id: u64,
        stamp: &str,
        update: &Value,
        remembered: bool,
    ) -> Result<Option<u64>> {
        let mut update = update.clone();
        update["ticket"]["updated_stamp"] = stamp.into();
        self.writing(pending, id).await?;
        let a = self
            .api
            .call(
                Method::PUT,
                &format!("/api/v2/tickets/{id}"),
                Some(&update),
                // A lost answer is looked for by its markers before a second post.
                Repeat::Once,
            )
            .await?;
        match a.status.as_u16() {
            s if (200..300).contains(&s) => Ok(Some(self.wrote(requester, pending, &a).await?)),
            409 | 404 => Ok(None),
            422 if remembered => Ok(None),
            _ => Err(refused(&format!("the update of ticket {id}"), &a)),
        }
    }

    /// After a write: the ticket's id, remembered for the requester's next media with the
    /// `updated_at` the answer gave.
    async fn wrote(
        &self,
        requester: &Requester,
        pending: &[&MediaRecord],
        a: &Answer,
    ) -> Result<u64> {
        let id = a.body["ticket"]["id"]
            .as_u64()
            .ok_or_else(|| Error::transient("Zendesk answered a ticket write without its id"))?;
        self.writing(pending, id).await?;
        let stamp = a.body["ticket"]["updated_at"].as_str().unwrap_or_default();
        self.state
            .put_state(
                self.name,
                &format!("ticket:{}", requester.id),
                &format!("{id} {stamp}"),
            )
            .await?;
        Ok(id)
    }

    async fn remembered(&self, requester: u64) -> Result<Option<Remembered>> {
        Ok(self
            .state
            .get_state(self.name, &format!("ticket:{requester}"))
            .await?
            .and_then(|v| {
                let (id, stamp) = v.split_once(' ')?;
                Some(Remembered {
                    id: id.parse().ok()?,
                    stamp: stamp.to_owned(),
                })
            }))
    }

    /// The requester's tickets, read once per delivery.
    async fn listed<'l>(
        &self,
        requester: &Requester,
        listed: &'l mut Option<Vec<TicketSummary>>,
    ) -> Result<&'l [TicketSummary]> {
        if listed.is_none() {
            match self.tickets_of(requester.id).await? {
                Some(tickets) => *listed = Some(tickets),
                None => return Err(self.forget(requester).await),
            }
        }
        Ok(listed.as_deref().unwrap_or_default())
    }

    /// A remembered requester Zendesk no longer has (deleted, or merged into another user): it is
    /// forgotten, and the next attempt finds or makes the requester again.
    async fn forget(&self, requester: &Requester) -> Error {
        for key in [requester.key.clone(), format!("ticket:{}", requester.id)] {
            if let Err(e) = self.state.delete_state(self.name, &key).await {
                return e;
            }
        }
        Error::transient(format!(
            "Zendesk no longer has user {} (deleted or merged); the requester is looked up again",
            requester.id
        ))
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

    /// The requester: remembered, found by phone, or made.
    async fn requester(&self, sender: &Phone, media: &[&MediaRecord]) -> Result<Requester> {
        let key = format!("requester:{sender}");
        if let Some(id) = self
            .state
            .get_state(self.name, &key)
            .await?
            .and_then(|v| v.parse().ok())
        {
            return Ok(Requester {
                id,
                made: false,
                key,
            });
        }
        let users = self.users_by_phone(sender).await?;
        let several = self.config.matching.several;
        let requester =
            match crate::requester::choose(sender, &users, self.country, several).record() {
                Some(c) => Requester {
                    id: c.id.parse().map_err(|_| {
                        Error::transient("Zendesk answered a user without a numeric id")
                    })?,
                    made: false,
                    key: key.clone(),
                },
                None => {
                    let name = media
                        .iter()
                        .find_map(|m| m.sender_name.clone())
                        .unwrap_or_else(|| sender.to_string());
                    let mut user = json!({"name": name, "external_id": sender.as_str(),
                    "phone": sender.as_str(), "role": "end-user"});
                    if let Some(key) = &self.config.number_field {
                        user["user_fields"] = json!({key: sender.as_str()});
                    }
                    let a = self
                        .api
                        .call(
                            Method::POST,
                            "/api/v2/users/create_or_update",
                            Some(&json!({"user": user})),
                            // Keyed by external_id: sent twice, it finds the user it made.
                            Repeat::Safe,
                        )
                        .await?;
                    if !a.status.is_success() {
                        return Err(refused("the requester", &a));
                    }
                    Requester {
                        id: a.body["user"]["id"].as_u64().ok_or_else(|| {
                            Error::transient("Zendesk answered a user without its id")
                        })?,
                        // 201: made now; 200: an earlier attempt (or someone) made it, and it may
                        // have tickets.
                        made: a.status.as_u16() == 201,
                        key: key.clone(),
                    }
                }
            };
        self.state
            .put_state(self.name, &key, &requester.id.to_string())
            .await?;
        Ok(requester)
    }

    /// The users search finds by any WhatsApp form of the number, with and without `+`
    /// (verified by the caller: search matches loosely, and only end users count).
    pub async fn users_by_phone(&self, sender: &Phone) -> Result<Vec<Value>> {
        let mut users: Vec<Value> = Vec::new();
        for form in whatsapp_forms(sender) {
            for written in [form.as_str(), form.digits()] {
                let query = format!("type:user phone:\"{written}\"");
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
                for user in a.body["results"].as_array().into_iter().flatten() {
                    // Both forms may find the same user: once is one candidate.
                    if !users.iter().any(|u| u["id"] == user["id"]) {
                        users.push(user.clone());
                    }
                }
            }
        }
        Ok(users)
    }

    /// The tickets `requester` requested; `None` when Zendesk has no such user.
    pub async fn tickets_of(&self, requester: u64) -> Result<Option<Vec<TicketSummary>>> {
        let a = self
            .api
            .get(&format!("/api/v2/users/{requester}/tickets/requested"))
            .await?;
        if a.status.as_u16() == 404 {
            return Ok(None);
        }
        if !a.status.is_success() {
            return Err(refused("the requester's tickets", &a));
        }
        Ok(Some(
            a.body["tickets"]
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
                .collect(),
        ))
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
        Ok(self
            .api
            .comments(ticket, false)
            .await?
            .into_iter()
            .flatten()
            .any(|c| note::is_note_of(&c.body, message_id)))
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
