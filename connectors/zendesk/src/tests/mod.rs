//! The delivery against the Zendesk simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use wa2crm_core::{ConnectorContext, MediaKind, MediaRecord, MemoryStateStore, Phone, StateStore};
use wa2crm_sandbox::zendesk::{ZendeskSim, ZendeskSimConfig};

use crate::api::{Api, connect};
use crate::config::ZendeskConfig;
use crate::deliver::{Deliverer, by_sender};

mod account;

/// Every stored file is the same ten bytes.
pub(super) struct Bytes10;

#[async_trait::async_trait]
impl wa2crm_core::MediaSource for Bytes10 {
    async fn open(&self, _record: &MediaRecord) -> wa2crm_core::Result<wa2crm_core::MediaBody> {
        let chunk: std::io::Result<bytes::Bytes> = Ok(bytes::Bytes::from_static(b"0123456789"));
        Ok(wa2crm_core::MediaBody {
            size: 10,
            stream: Box::pin(futures_util::stream::iter([chunk])),
        })
    }
}

pub(super) const EMAIL: &str = "agent@acme.example";
pub(super) const TOKEN: &str = "sim-zendesk-token-3e8a1b2c9d7f";

struct World {
    sim: ZendeskSim,
    api: Api,
    config: ZendeskConfig,
    state: Arc<MemoryStateStore>,
}

async fn world() -> World {
    world_with(json!({})).await
}

async fn world_with(extra: serde_json::Value) -> World {
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.search_lag = std::time::Duration::from_secs(3600);
    // The highest plan's pace: these tests are about what is written, not how fast.
    c.requests_per_minute = 2500;
    let sim = ZendeskSim::start(c).await.unwrap();
    let mut table = json!({"type": "zendesk", "base_url": sim.url(), "email": EMAIL,
        "api_token": TOKEN, "requests_per_minute": 2500});
    for (k, v) in extra.as_object().unwrap() {
        table[k] = v.clone();
    }
    let config = ZendeskConfig::from_value(&table).unwrap();
    let state = Arc::new(MemoryStateStore::default());
    let api = connect("zd", &config, &ConnectorContext::new(state.clone()))
        .await
        .unwrap();
    World {
        sim,
        api,
        config,
        state,
    }
}

impl World {
    /// The account's end users (the agent the token acts as is a user too).
    fn end_users(&self) -> Vec<wa2crm_sandbox::zendesk::User> {
        self.sim
            .users()
            .into_iter()
            .filter(|u| u.role == "end-user")
            .collect()
    }

    fn deliverer(&self) -> Deliverer<'_> {
        Deliverer {
            name: "zd",
            config: &self.config,
            api: &self.api,
            state: self.state.clone(),
            country: None,
            media: Some(Arc::new(Bytes10)),
            fields: &[],
        }
    }

    async fn deliver(&self, batch: &[MediaRecord]) -> Vec<String> {
        let mut ids = Vec::new();
        for (sender, media) in by_sender(batch) {
            for d in self
                .deliverer()
                .deliver_sender(sender, &media)
                .await
                .unwrap()
            {
                ids.push(d.crm_id);
            }
        }
        ids
    }
}

pub(super) fn media(id: &str, sender: &str) -> MediaRecord {
    MediaRecord {
        message_id: id.into(),
        file_url: format!("https://wa2crm.example.com/media/{id}"),
        storage_uri: format!("file:///media/{id}.mp4"),
        media_type: MediaKind::Video,
        mime_type: "video/mp4".into(),
        size_bytes: 2_000_000,
        duration_seconds: Some(12.0),
        tags: vec!["Product Issue".into()],
        caption: None,
        file_name: None,
        sender: Phone::parse(sender).unwrap(),
        sender_name: Some("Jürgen".into()),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        sha256: "ab".into(),
        rendition_url: None,
    }
}

#[tokio::test]
async fn a_new_customer_gets_one_user_and_one_ticket_and_later_media_join_it() {
    let w = world().await;
    let first = w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    assert_eq!(w.end_users().len(), 1);
    let tickets = w.sim.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(first, [tickets[0].id.to_string()]);
    assert_eq!(tickets[0].subject, "WhatsApp media from Jürgen");
    assert!(!tickets[0].comments[0].public, "an internal note");
    assert_eq!(tickets[0].tags, ["product_issue"]);

    let before = w.sim.counts();
    let second = w.deliver(&[media("wamid.2", "+4915112345678")]).await;
    assert_eq!(second, first, "the open ticket takes it");
    assert_eq!(w.sim.tickets()[0].comments.len(), 2);
    assert_eq!(w.end_users().len(), 1);
    assert_eq!(
        w.sim.counts().api_calls - before.api_calls,
        1,
        "the requester and their ticket remembered: one safe update"
    );
}

#[tokio::test]
async fn a_ticket_an_agent_solved_meanwhile_does_not_take_the_next_media() {
    let w = world().await;
    let first = w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let solved: u64 = first[0].parse().unwrap();
    w.sim.set_status(solved, "solved");
    let second = w.deliver(&[media("wamid.2", "+4915112345678")]).await;
    assert_ne!(second, first, "a new ticket");
    let tickets = w.sim.tickets();
    let old = tickets.iter().find(|t| t.id == solved).unwrap();
    assert_eq!(old.status, "solved", "not reopened");
    assert_eq!(old.comments.len(), 1);
    // An agent's comment on the open ticket: the safe update notices, the ticket still takes it.
    let open: u64 = second[0].parse().unwrap();
    w.sim.set_status(open, "pending");
    let third = w.deliver(&[media("wamid.3", "+4915112345678")]).await;
    assert_eq!(third, second);
}

#[tokio::test]
async fn a_closed_ticket_is_left_alone_and_a_new_one_opened() {
    let w = world().await;
    let first = w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let closed: u64 = first[0].parse().unwrap();
    w.sim.set_status(closed, "closed");
    let second = w.deliver(&[media("wamid.2", "+4915112345678")]).await;
    assert_ne!(second, first);
    let old = w
        .sim
        .tickets()
        .into_iter()
        .find(|t| t.id == closed)
        .unwrap();
    assert_eq!(old.comments.len(), 1);
}

#[tokio::test]
async fn a_requester_deleted_in_zendesk_is_found_again_not_dead_lettered() {
    for policy in ["new_per_media", "open_or_new"] {
        let w = world_with(json!({"ticket_policy": policy})).await;
        w.deliver(&[media("wamid.1", "+4915112345678")]).await;
        let old = w.end_users().remove(0);
        w.sim.delete_user(old.id);
        // Without a remembered ticket: the requester's tickets are read (open_or_new), or a
        // ticket is made for them (new_per_media); Zendesk answers 404 or 422 either way.
        w.state
            .delete_state("zd", &format!("ticket:{}", old.id))
            .await
            .unwrap();
        let sender = Phone::parse("+4915112345678").unwrap();
        let m = media("wamid.2", "+4915112345678");
        let e = w
            .deliverer()
            .deliver_sender(&sender, &[&m])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), wa2crm_core::ErrorKind::Transient, "{policy}: {e}");
        // The retry makes the requester anew and delivers.
        let ids = w.deliver(&[m]).await;
        let new = w.end_users().remove(0);
        assert_ne!(new.id, old.id, "{policy}");
        let t = w
            .sim
            .tickets()
            .into_iter()
            .find(|t| t.id.to_string() == ids[0])
            .unwrap();
        assert_eq!(t.requester_id, new.id, "{policy}");
    }
}

#[tokio::test]
async fn new_per_media_opens_a_ticket_for_each_without_reading_the_others() {
    let w = world_with(json!({"ticket_policy": "new_per_media"})).await;
    let a = w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let before = w.sim.counts().api_calls;
    let b = w.deliver(&[media("wamid.2", "+4915112345678")]).await;
    assert_ne!(a, b);
    assert_eq!(
        w.sim.counts().api_calls - before,
        1,
        "one new ticket, nothing read"
    );
}

#[tokio::test]
async fn a_caption_names_the_customers_own_ticket_only() {
    let w = world_with(json!({"ticket_policy": "ticket_id_from_caption"})).await;
    let user = w.sim.add_user("Jürgen", Some("+4915112345678"), None);
    let own_old = w.sim.add_ticket(user, "pending");
    let own_latest = w.sim.add_ticket(user, "open");
    let stranger = w.sim.add_user("Someone else", Some("+4917000000000"), None);
    let strangers = w.sim.add_ticket(stranger, "open");
    let mut m = media("wamid.1", "+4915112345678");
    m.caption = Some(format!("see #{strangers}"));
    assert_eq!(
        w.deliver(&[m]).await,
        [own_latest.to_string()],
        "another requester's ticket: the default"
    );
    let mut m = media("wamid.2", "+4915112345678");
    m.caption = Some(format!("same fault as #{own_old}"));
    assert_eq!(w.deliver(&[m]).await, [own_old.to_string()]);
    let t = w
        .sim
        .tickets()
        .into_iter()
        .find(|t| t.id == strangers)
        .unwrap();
    assert!(t.comments.is_empty());
}

#[tokio::test]
async fn a_new_requester_gets_the_whatsapp_number_in_the_mapped_user_field() {
    let w = world_with(json!({"number_field": "whatsapp_number"})).await;
    w.sim.add_user_field("whatsapp_number", "text");
    w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let user = w.end_users().remove(0);
    assert_eq!(user.user_fields["whatsapp_number"], "+4915112345678");
    assert_eq!(user.external_id.as_deref(), Some("+4915112345678"));
}

#[tokio::test]
async fn an_existing_customer_found_by_phone_gets_the_media_on_their_open_ticket() {
    let w = world().await;
    let user = w.sim.add_user("Jürgen Weiß", Some("+4915112345678"), None);
    w.sim.add_ticket(user, "solved");
    let open = w.sim.add_ticket(user, "open");
    let ids = w.deliver(&[media("wamid.1", "+4915112345678")]).await;
    assert_eq!(ids, [open.to_string()]);
    assert_eq!(w.end_users().len(), 1, "no second user");
}

#[tokio::test]
async fn media_arriving_together_go_in_one_update() {
    let w = world().await;
    let user = w.sim.add_user("Jürgen", Some("+4915112345678"), None);
    let open = w.sim.add_ticket(user, "open");
    let before = w.sim.counts().ticket_updates;
    w.deliver(&[
        media("wamid.1", "+4915112345678"),
        media("wamid.2", "+4915112345678"),
        media("wamid.3", "+4915112345678"),
    ])
    .await;
    assert_eq!(w.sim.counts().ticket_updates - before, 1);
    let ticket = w.sim.tickets().into_iter().find(|t| t.id == open).unwrap();
    let note = &ticket.comments[0].body;
    for id in ["wamid.1", "wamid.2", "wamid.3"] {
        assert!(crate::note::is_note_of(note, id), "{id} in {note}");
    }
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_does_not_post_the_note_twice() {
    let w = world().await;
    let user = w.sim.add_user("Jürgen", Some("+4915112345678"), None);
    let open = w.sim.add_ticket(user, "open");
    let batch = [media("wamid.1", "+4915112345678")];
    w.deliver(&batch).await;
    // The answer was lost: the job runs again with the same media.
    let again = w.deliver(&batch).await;
    assert_eq!(again, [open.to_string()]);
    let ticket = w.sim.tickets().into_iter().find(|t| t.id == open).unwrap();
    assert_eq!(ticket.comments.len(), 1, "one note for one media");
    // A media recorded as being written but not there (the write failed) is posted.
    w.state
        .put_state("zd", "writing:wamid.9", &open.to_string())
        .await
        .unwrap();
    w.deliver(&[media("wamid.9", "+4915112345678")]).await;
    let ticket = w.sim.tickets().into_iter().find(|t| t.id == open).unwrap();
    assert_eq!(ticket.comments.len(), 2);
}

#[tokio::test]
async fn a_new_ticket_whose_answer_was_lost_is_not_made_twice() {
    let w = world().await;
    let batch = [media("wamid.1", "+4915112345678")];
    let first = w.deliver(&batch).await;
    // The answer of the ticket's creation was lost: only "a new ticket" was recorded.
    w.state
        .put_state("zd", "writing:wamid.1", "new")
        .await
        .unwrap();
    let again = w.deliver(&batch).await;
    assert_eq!(again, first);
    assert_eq!(w.sim.tickets().len(), 1, "no second ticket");
    assert_eq!(w.sim.tickets()[0].comments.len(), 1);
}

#[tokio::test]
async fn with_upload_the_file_is_attached_to_its_note_unless_it_is_over_the_limit() {
    let w = world_with(json!({"upload": true, "max_upload_bytes": 5_000_000})).await;
    let mut big = media("wamid.big", "+4915112345678");
    big.size_bytes = 6_000_000;
    w.deliver(&[media("wamid.1", "+4915112345678"), big]).await;
    let ticket = &w.sim.tickets()[0];
    let comment = &ticket.comments[0];
    assert_eq!(comment.attachments.len(), 1, "the small file only");
    assert_eq!(comment.attachments[0].file_name, "wamid.1.mp4");
    assert_eq!(comment.attachments[0].content_type, "video/mp4");
    assert!(comment.body.contains("The file is attached."));
    assert!(
        comment
            .body
            .contains("larger than this account's attachment limit")
    );
    assert_eq!(w.sim.counts().uploads, 1);
}
