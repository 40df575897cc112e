//! The connector as the daemon uses it: check, provision, delivery with mapped fields, erasure,
//! retention and consent, against the simulator.

use std::sync::Arc;

use serde_json::json;
use wa2crm_core::{Connector, ConnectorContext, Delivered, MemoryStateStore, Phone};
use wa2crm_sandbox::zendesk::{ZendeskSim, ZendeskSimConfig};

use super::{Bytes10, EMAIL, TOKEN, media};
use crate::{Zendesk, ZendeskConfig};

const SENDER: &str = "+4915112345678";

async fn connector(extra: serde_json::Value) -> (ZendeskSim, Zendesk) {
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.search_lag = std::time::Duration::from_secs(3600);
    c.requests_per_minute = 2500;
    let sim = ZendeskSim::start(c).await.unwrap();
    let mut table = json!({"type": "zendesk", "base_url": sim.url(), "email": EMAIL,
        "api_token": TOKEN, "upload": true, "requests_per_minute": 2500,
        "fields": {"media_type": "Media type", "duration_seconds": "Length (s)",
                   "file_url": "Media link", "size_bytes": "Size"}});
    for (k, v) in extra.as_object().unwrap() {
        table[k] = v.clone();
    }
    let config = ZendeskConfig::from_value(&table).unwrap();
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()))
        .with_media(Some(Arc::new(Bytes10)));
    let zendesk = Zendesk::new("zd", config, &context).await.unwrap();
    (sim, zendesk)
}

fn sender() -> Phone {
    Phone::parse(SENDER).unwrap()
}

#[tokio::test]
async fn check_names_what_is_missing_and_provision_creates_it() {
    let (sim, zd) = connector(
        json!({"group_id": 999_999, "consent_field": "whatsapp_consent",
        "number_field": "whatsapp_number"}),
    )
    .await;
    sim.add_ticket_field("Size", "checkbox");
    let report = zd.check().await.unwrap();
    assert_eq!(
        report.reached.as_deref(),
        Some(format!("Zendesk account {} as {EMAIL} (admin)", sim.url()).as_str())
    );
    let text = report.problems.join("\n");
    for expected in [
        "fields.media_type: the account has no custom ticket field titled \"Media type\"",
        "fields.size_bytes: the ticket field \"Size\" is of type checkbox",
        "group_id: the account has no group 999999",
        "consent_field: the account has no user field with the key \"whatsapp_consent\"",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    let plan = zd.provision(true).await.unwrap();
    assert_eq!(plan.actions.len(), 5, "{:?}", plan.actions);
    assert!(sim.ticket_fields().len() == 1, "a dry run creates nothing");
    zd.provision(false).await.unwrap();
    let types: Vec<(String, String)> = sim
        .ticket_fields()
        .into_iter()
        .map(|f| (f.title, f.field_type))
        .collect();
    assert!(types.contains(&("Length (s)".into(), "decimal".into())));
    assert!(types.contains(&("Media link".into(), "text".into())));
    let user_fields: Vec<String> = sim
        .user_fields()
        .into_iter()
        .map(|f| format!("{} {}", f.key.unwrap(), f.field_type))
        .collect();
    assert_eq!(
        user_fields,
        ["whatsapp_consent checkbox", "whatsapp_number text"]
    );
    let left = zd.check().await.unwrap().problems;
    assert_eq!(
        left.len(),
        2,
        "the wrong type and the group are the admin's: {left:?}"
    );
}

#[tokio::test]
async fn mapped_fields_show_the_latest_media_and_a_missing_field_is_the_admins_to_fix() {
    let (sim, zd) = connector(json!({})).await;
    let failed = zd.deliver(&[media("wamid.1", SENDER)]).await;
    let e = failed[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), wa2crm_core::ErrorKind::Permanent);
    assert!(e.message().contains("run `wa2crm provision`"), "{e}");
    zd.provision(false).await.unwrap();
    let mut second = media("wamid.2", SENDER);
    second.duration_seconds = Some(61.0);
    let out = zd.deliver(&[media("wamid.1", SENDER), second]).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let ticket = &sim.tickets()[0];
    let field = |title: &str| {
        let id = sim
            .ticket_fields()
            .into_iter()
            .find(|f| f.title == title)
            .unwrap()
            .id;
        ticket.custom_fields[&id].clone()
    };
    assert_eq!(
        field("Media link"),
        "https://wa2crm.example.com/media/wamid.2"
    );
    assert_eq!(field("Length (s)"), 61.0);
    assert_eq!(field("Size"), 2_000_000);
    assert_eq!(field("Media type"), "video");
}

#[tokio::test]
async fn a_value_zendesk_refuses_fails_its_media_with_the_field_named() {
    let (sim, zd) = connector(json!({})).await;
    sim.add_ticket_field("Size", "checkbox");
    zd.provision(false).await.unwrap();
    let out = zd.deliver(&[media("wamid.1", SENDER)]).await;
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), wa2crm_core::ErrorKind::Permanent, "{e}");
    assert!(
        e.message()
            .contains("Size: \"2000000\" is not a valid checkbox value"),
        "{e}"
    );
}

#[tokio::test]
async fn erasure_redacts_the_persons_notes_and_files_and_keeps_user_and_tickets() {
    let (sim, zd) = connector(json!({})).await;
    zd.provision(false).await.unwrap();
    let user = sim.add_user("Jürgen", Some(SENDER), None);
    let theirs = sim.add_ticket(user, "open");
    let other = sim.add_user("Other", Some("+4917000000000"), None);
    sim.add_ticket(other, "open");
    zd.deliver(&[media("wamid.1", SENDER)]).await[0]
        .as_ref()
        .unwrap();
    zd.deliver(&[media("wamid.9", "+4917000000000")]).await[0]
        .as_ref()
        .unwrap();
    let dry = zd.erase(&sender(), true).await.unwrap();
    assert_eq!(dry.removed.len(), 1, "{:?}", dry.removed);
    let done = zd.erase(&sender(), false).await.unwrap();
    assert_eq!(done.removed, dry.removed);
    let tickets = sim.tickets();
    let t = tickets.iter().find(|t| t.id == theirs).unwrap();
    let note = &t.comments[0];
    assert!(!note.body.contains("wa2crm"), "{}", note.body);
    assert!(
        !note.html_body.contains("href"),
        "the link's address goes too"
    );
    assert_eq!(note.attachments[0].file_name, "redacted.txt");
    assert!(t.custom_fields.values().all(serde_json::Value::is_null));
    let others = tickets.iter().find(|t| t.requester_id == other).unwrap();
    assert!(
        others.comments[0].body.contains("wa2crm: wamid.9"),
        "another person's note stays"
    );
    assert_eq!(sim.users().len(), 3, "the agent and both end users stay");
    assert!(
        zd.erase(&sender(), false).await.unwrap().removed.is_empty(),
        "nothing more to find"
    );
}

#[tokio::test]
async fn a_note_pages_back_in_a_long_conversation_is_still_found_and_erased() {
    let (sim, zd) = connector(json!({})).await;
    zd.provision(false).await.unwrap();
    let first = zd.deliver(&[media("wamid.old", SENDER)]).await;
    let ticket: u64 = first[0].as_ref().unwrap().crm_id.parse().unwrap();
    for n in 0..150 {
        sim.add_comment(ticket, &format!("reply {n}"));
    }
    let out = zd.deliver(&[media("wamid.new", SENDER)]).await;
    assert_eq!(out[0].as_ref().unwrap().crm_id, ticket.to_string());
    // The console's deep link opens the ticket in the agent workspace.
    assert_eq!(
        zd.record_url(out[0].as_ref().unwrap()),
        Some(format!(
            "{}/agent/tickets/{ticket}",
            sim.url().trim_end_matches('/')
        ))
    );
    assert_eq!(zd.record_url(&Delivered::new("../admin", true)), None);
    let usage = zd.usage().unwrap();
    assert!(usage.sent > 0 && usage.allowed.is_some(), "{usage:?}");
    let removed = zd.erase(&sender(), false).await.unwrap().removed;
    assert_eq!(
        removed.len(),
        2,
        "both notes, one past the first page: {removed:?}"
    );
    let t = sim.tickets().into_iter().find(|t| t.id == ticket).unwrap();
    assert!(t.comments.iter().all(|c| !c.body.contains("wa2crm: ")));
}

#[tokio::test]
async fn retention_takes_the_link_or_the_whole_block_of_one_media() {
    let (sim, zd) = connector(json!({})).await;
    zd.provision(false).await.unwrap();
    let (a, b) = (media("wamid.a", SENDER), media("wamid.b", SENDER));
    let out = zd.deliver(&[a.clone(), b.clone()]).await;
    assert!(out.iter().all(Result::is_ok));
    assert!(
        zd.expire(std::slice::from_ref(&a), false, true)
            .await
            .unwrap()
            .removed
            .len()
            == 1
    );
    zd.expire(std::slice::from_ref(&a), false, false)
        .await
        .unwrap();
    let body = sim.tickets()[0].comments[0].body.clone();
    assert!(!body.contains(&a.file_url), "{body}");
    assert!(body.contains("wa2crm: wamid.a"), "clear leaves a trace");
    assert!(body.contains(&b.file_url), "the other media's link stays");
    assert!(
        zd.expire(std::slice::from_ref(&a), false, false)
            .await
            .unwrap()
            .removed
            .is_empty(),
        "nothing more to find"
    );
    zd.expire(std::slice::from_ref(&b), true, false)
        .await
        .unwrap();
    let comment = sim.tickets()[0].comments[0].clone();
    assert!(!comment.body.contains("wamid.b"), "{}", comment.body);
    assert!(
        comment
            .attachments
            .iter()
            .all(|f| f.file_name == "redacted.txt")
    );
    let ticket = &sim.tickets()[0];
    assert!(
        ticket
            .custom_fields
            .values()
            .all(serde_json::Value::is_null),
        "the fields showed wamid.b"
    );
}

#[tokio::test]
async fn consent_is_the_requesters_checkbox() {
    let (sim, zd) = connector(json!({"consent_field": "whatsapp_consent"})).await;
    zd.provision(false).await.unwrap();
    assert_eq!(zd.consent(&sender()).await.unwrap(), Some(false), "unknown");
    let user = sim.add_user("Jürgen", Some(SENDER), None);
    assert_eq!(zd.consent(&sender()).await.unwrap(), Some(false));
    sim.set_user_field(user, "whatsapp_consent", json!(true));
    assert_eq!(zd.consent(&sender()).await.unwrap(), Some(true));
}

#[tokio::test]
async fn oauth_refresh_tokens_rotate_and_the_stored_one_outlives_a_restart() {
    use wa2crm_sandbox::zendesk::OAuthClient;
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.search_lag = std::time::Duration::from_secs(3600);
    c.requests_per_minute = 2500;
    c.oauth = Some(OAuthClient {
        client_id: "wa2crm".into(),
        client_secret: "zd-oauth-secret-3e8a1b2c9d7f".into(),
        refresh_token: "zd-refresh-initial-6b1f0c2e".into(),
        token_ttl: std::time::Duration::from_secs(1800),
    });
    let sim = ZendeskSim::start(c).await.unwrap();
    let config = ZendeskConfig::from_value(&json!({"type": "zendesk", "base_url": sim.url(),
        "client_id": "wa2crm", "client_secret": "zd-oauth-secret-3e8a1b2c9d7f",
        "refresh_token": "zd-refresh-initial-6b1f0c2e", "requests_per_minute": 2500}))
    .unwrap();
    let state = Arc::new(MemoryStateStore::default());
    let build = |state: Arc<MemoryStateStore>| {
        let config = config.clone();
        async move {
            Zendesk::new("zd", config, &ConnectorContext::new(state))
                .await
                .unwrap()
        }
    };
    let first = build(state.clone()).await;
    assert!(first.deliver(&[media("wamid.1", SENDER)]).await[0].is_ok());
    assert_eq!(sim.counts().refreshes, 1);
    drop(first);
    // The configured refresh token was rotated away; a restart uses the one stored.
    let again = build(state.clone()).await;
    assert!(again.deliver(&[media("wamid.2", SENDER)]).await[0].is_ok());
    assert_eq!(sim.counts().failed_refreshes, 0, "{:?}", sim.counts());
    // A process without the stored one is refused, and says what to do.
    let lost = build(Arc::new(MemoryStateStore::default())).await;
    let e = lost
        .deliver(&[media("wamid.3", SENDER)])
        .await
        .remove(0)
        .unwrap_err();
    assert!(
        e.message()
            .contains("Authorize wa2crm's OAuth client again"),
        "{e}"
    );
}
