//! The connector against the Zoho simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use wa2crm_core::{
    Connector, ConnectorContext, ErrorKind, MediaKind, MediaRecord, MemoryStateStore, Phone,
};
use wa2crm_sandbox::zoho::{Field, ZohoSim, ZohoSimConfig};

use crate::{Zoho, ZohoConfig};

mod links;
mod org;

pub(super) const CLIENT: &str = "1000.WA2CRMTEST";
pub(super) const SECRET: &str = "3e8a1b2c9d7f4e6a5b0c1d2e3f4a5b6c";
pub(super) const REFRESH: &str = "1000.e3b0c44298fc1c149afbf4c8996fb924.27ae41e4649b934c";

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

pub(super) struct World {
    pub sim: ZohoSim,
    pub zoho: Zoho,
    pub state: Arc<MemoryStateStore>,
}

/// An org with the media module and every field the default configuration needs.
pub(super) async fn org() -> ZohoSim {
    org_with(ZohoSimConfig::new(CLIENT, SECRET, REFRESH)).await
}

pub(super) async fn org_with(c: ZohoSimConfig) -> ZohoSim {
    let sim = ZohoSim::start(c).await.unwrap();
    sim.add_module("WhatsApp_Media");
    let field = |api: &str, t: &str, unique: bool, lookup: Option<&str>| {
        let mut f = Field::new(api, t);
        f.unique = unique;
        f.custom = true;
        f.lookup = lookup.map(str::to_owned);
        f
    };
    sim.add_field("WhatsApp_Media", field("WA_Message_Id", "text", true, None));
    sim.add_field("WhatsApp_Media", field("WA_Sender", "text", false, None));
    sim.add_field(
        "WhatsApp_Media",
        field("Contact", "lookup", false, Some("Contacts")),
    );
    sim.add_field(
        "WhatsApp_Media",
        field("Lead", "lookup", false, Some("Leads")),
    );
    sim.add_field("WhatsApp_Media", field("WA_Link", "website", false, None));
    sim.add_field("WhatsApp_Media", field("WA_Size", "bigint", false, None));
    sim.add_field(
        "WhatsApp_Media",
        field("WA_Received", "datetime", false, None),
    );
    sim.add_field("WhatsApp_Media", field("WA_Tags", "textarea", false, None));
    sim.add_field("Contacts", field("WhatsApp_Number", "text", true, None));
    sim.add_field("Contacts", field("WA_Consent", "boolean", false, None));
    sim
}

pub(super) fn table(sim: &ZohoSim, extra: Value) -> ZohoConfig {
    let mut t = json!({"type": "zoho", "accounts_url": sim.accounts_url(), "client_id": CLIENT,
        "client_secret": SECRET, "refresh_token": REFRESH, "max_concurrent": 5,
        "fields": {"file_url": "WA_Link", "size_bytes": "WA_Size", "received_at": "WA_Received",
            "tags": "WA_Tags"}});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    ZohoConfig::from_value(&t).unwrap()
}

pub(super) async fn world_on(sim: ZohoSim, extra: Value) -> World {
    let config = table(&sim, extra);
    let state = Arc::new(MemoryStateStore::default());
    let context = ConnectorContext::new(state.clone()).with_media(Some(Arc::new(Bytes10)));
    let zoho = Zoho::new("zoho", config, &context).await.unwrap();
    World { sim, zoho, state }
}

pub(super) async fn world() -> World {
    world_on(org().await, json!({})).await
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
        tags: vec!["Product Issue".into(), "Warranty".into()],
        caption: Some("it\nbroke".into()),
        file_name: None,
        sender: Phone::parse(sender).unwrap(),
        sender_name: Some("Jürgen".into()),
        received_at: time::macros::datetime!(2026-12-04 21:00:00.5 UTC),
        sha256: "ab".into(),
        rendition_url: None,
    }
}

fn ids(results: Vec<wa2crm_core::Result<wa2crm_core::Delivered>>) -> Vec<(String, bool)> {
    results
        .into_iter()
        .map(|r| {
            let d = r.unwrap();
            (d.crm_id, d.created)
        })
        .collect()
}

#[tokio::test]
async fn a_new_sender_gets_a_contact_and_each_media_one_record_looked_up_to_it() {
    let w = world().await;
    let got = ids(w
        .zoho
        .deliver(&[
            media("wamid.1", "+4915112345678"),
            media("wamid.2", "+4915112345678"),
        ])
        .await);
    let contacts = w.sim.records("Contacts");
    assert_eq!(contacts.len(), 1, "one Contact for the sender");
    let c = &contacts[0];
    assert_eq!(c.values["Last_Name"], "Jürgen");
    assert_eq!(c.values["Mobile"], "+4915112345678");
    assert_eq!(c.values["WhatsApp_Number"], "+4915112345678");
    let records = w.sim.records("WhatsApp_Media");
    assert_eq!(records.len(), 2);
    assert_eq!(
        got,
        records
            .iter()
            .map(|r| (r.id.clone(), true))
            .collect::<Vec<_>>()
    );
    let r = &records[0].values;
    assert_eq!(r["Name"], "WhatsApp video from Jürgen");
    assert_eq!(r["WA_Message_Id"], "wamid.1");
    assert_eq!(r["WA_Sender"], "+4915112345678");
    assert_eq!(r["Contact"]["id"], c.id.as_str());
    assert_eq!(r["WA_Link"], "https://wa2crm.example.com/media/wamid.1");
    assert_eq!(r["WA_Size"], 2_000_000);
    assert_eq!(r["WA_Received"], "2026-12-04T21:00:00+00:00");
    assert_eq!(r["WA_Tags"], "Product Issue; Warranty");

    // Again (a retry): the same records are updated, nothing is added, the sender is remembered.
    let before = w.sim.counts();
    let again = ids(w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await);
    assert_eq!(again, [(records[0].id.clone(), false)]);
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 2);
    let after = w.sim.counts();
    assert_eq!(
        after.coql, before.coql,
        "no lookup for a sender seen before"
    );
    assert_eq!(after.api_calls - before.api_calls, 1, "one upsert");
}

#[tokio::test]
async fn existing_contacts_and_leads_are_found_however_the_number_is_written() {
    let sim = org().await;
    let ada = sim.add_record(
        "Contacts",
        json!({"Last_Name": "Ada", "Phone": "+49 1511 2345678"}),
    );
    let bob = sim.add_record(
        "Leads",
        json!({"Last_Name": "Bob", "Mobile": "015198765432"}),
    );
    let w = world_on(sim, json!({"match": {"default_country": "DE"}})).await;
    let got = w
        .zoho
        .deliver(&[
            media("wamid.a", "+4915112345678"),
            media("wamid.b", "+4915198765432"),
        ])
        .await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    assert_eq!(w.sim.records("Contacts").len(), 1, "no Contact made");
    let records = w.sim.records("WhatsApp_Media");
    assert_eq!(records[0].values["Contact"]["id"], ada.as_str());
    assert_eq!(records[1].values["Lead"]["id"], bob.as_str());
    assert!(!records[1].values.contains_key("Contact"));
    assert_eq!(
        w.sim.counts().coql,
        2,
        "one query for Contacts, one for Leads"
    );
}

#[tokio::test]
async fn a_hundred_new_senders_cost_eleven_calls() {
    let w = world().await;
    let batch: Vec<MediaRecord> = (0..100)
        .map(|i| media(&format!("wamid.{i}"), &format!("+1415555{i:04}")))
        .collect();
    let got = w.zoho.deliver(&batch).await;
    assert!(got.iter().all(Result::is_ok));
    let c = w.sim.counts();
    // The media module's fields (read once), four queries each for Contacts and for Leads
    // (every written form of 25 numbers in one), the Contacts' upsert, the media upsert.
    assert_eq!(
        (c.coql, c.upserts, c.api_calls, c.credits_used),
        (8, 2, 11, 11),
        "{c:?}"
    );
    assert_eq!(w.sim.records("Contacts").len(), 100);
}

#[tokio::test]
async fn without_create_an_unknown_sender_waits_as_unmatched() {
    let w = world_on(org().await, json!({"match": {"create": false}})).await;
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let e = got.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().starts_with("unmatched:"), "{}", e.message());
    assert!(w.sim.records("Contacts").is_empty());
}

#[tokio::test]
async fn a_contact_deleted_in_zoho_is_looked_up_again() {
    let w = world().await;
    ids(w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await);
    let first = w.sim.records("Contacts")[0].id.clone();
    w.sim.delete_record(&first);
    let got = w.zoho.deliver(&[media("wamid.2", "+4915112345678")]).await;
    let e = got.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{}", e.message());
    let got = ids(w.zoho.deliver(&[media("wamid.2", "+4915112345678")]).await);
    let second = w.sim.records("Contacts")[0].id.clone();
    assert_ne!(first, second);
    let record = w
        .sim
        .records("WhatsApp_Media")
        .into_iter()
        .find(|r| r.id == got[0].0)
        .unwrap();
    assert_eq!(record.values["Contact"]["id"], second.as_str());
}

#[tokio::test]
async fn a_record_zoho_refuses_fails_alone_with_the_field_named() {
    let sim = org().await;
    // An admin changed the size field to a small integer: 3 GB does not fit.
    sim.add_field("WhatsApp_Media", Field::new("WA_Size", "integer"));
    let w = world_on(sim, json!({})).await;
    let mut big = media("wamid.big", "+4915112345678");
    big.size_bytes = 3_000_000_000;
    let got = w
        .zoho
        .deliver(&[media("wamid.ok", "+4915112345678"), big])
        .await;
    assert!(got[0].is_ok());
    let e = got[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().contains("WA_Size"), "{}", e.message());
}

#[tokio::test]
async fn a_mapped_field_the_module_lacks_is_named_before_anything_is_written() {
    let w = world_on(org().await, json!({"fields": {"caption": "WA_Caption"}})).await;
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let e = got[0].as_ref().unwrap_err();
    assert!(
        e.message().contains("fields.caption") && e.message().contains("WA_Caption"),
        "{}",
        e.message()
    );
    assert!(w.sim.records("WhatsApp_Media").is_empty());
}

#[tokio::test]
async fn notes_and_attachments_are_made_once_even_when_an_answer_was_lost() {
    let w = world_on(org().await, json!({"note": true, "attach": true})).await;
    let m = media("wamid.1", "+4915112345678");
    ids(w.zoho.deliver(std::slice::from_ref(&m)).await);
    let notes = w.sim.records("Notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].values["Note_Title"], "WhatsApp video · wamid.1");
    let content = notes[0].values["Note_Content"].as_str().unwrap();
    assert!(
        content.starts_with("https://wa2crm.example.com/media/wamid.1\n"),
        "{content}"
    );
    assert!(
        content.contains("Caption: it broke"),
        "customer text on one line: {content}"
    );
    assert_eq!(
        notes[0].values["Parent_Id"]["module"]["api_name"],
        "Contacts"
    );
    assert_eq!(w.sim.attachments().len(), 1);
    assert_eq!(w.sim.attachments()[0].file_name, "wamid.1.mp4");

    // The answers were lost: the marks still say "writing". The retry looks, and adds nothing.
    use wa2crm_core::StateStore;
    w.state
        .put_state("zoho", "note:wamid.1", "writing")
        .await
        .unwrap();
    w.state
        .put_state("zoho", "file:wamid.1", "writing")
        .await
        .unwrap();
    ids(w.zoho.deliver(std::slice::from_ref(&m)).await);
    assert_eq!(w.sim.records("Notes").len(), 1);
    assert_eq!(w.sim.attachments().len(), 1);
    // A mark lost with its answer: the retry writes.
    w.state.delete_state("zoho", "note:wamid.1").await.unwrap();
    w.sim.delete_record(&notes[0].id);
    ids(w.zoho.deliver(std::slice::from_ref(&m)).await);
    assert_eq!(w.sim.records("Notes").len(), 1);
}

#[tokio::test]
async fn customer_text_is_inert_in_names_and_notes() {
    let w = world_on(org().await, json!({"note": true})).await;
    let mut m = media("wamid.1", "+4915112345678");
    m.sender_name = Some("<img src=x onerror=alert(1)>\nBob".into());
    m.caption = Some("<script>alert(1)</script>".into());
    ids(w.zoho.deliver(&[m]).await);
    let contact = &w.sim.records("Contacts")[0];
    let record = &w.sim.records("WhatsApp_Media")[0];
    let note = &w.sim.records("Notes")[0];
    for text in [
        contact.values["Last_Name"].as_str().unwrap(),
        record.values["Name"].as_str().unwrap(),
        note.values["Note_Content"].as_str().unwrap(),
    ] {
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
    }
    assert_eq!(
        contact.values["Last_Name"],
        "‹img src=x onerror=alert(1)› Bob"
    );
}

#[tokio::test]
async fn a_long_caption_is_cut_to_its_field_not_refused() {
    let w = world_on(org().await, json!({"fields": {"caption": "WA_Caption"}})).await;
    // A text field of 255 characters, as an admin may make it.
    w.sim.add_field(
        "WhatsApp_Media",
        wa2crm_sandbox::zoho::Field::new("WA_Caption", "text"),
    );
    let mut m = media("wamid.1", "+4915112345678");
    m.caption = Some("ä".repeat(1000));
    let got = w.zoho.deliver(&[m]).await;
    assert!(got[0].is_ok(), "{got:?}");
    let caption = w.sim.records("WhatsApp_Media")[0].values["WA_Caption"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(caption.chars().count(), 255);
    assert!(caption.ends_with('…'));
}

#[tokio::test]
async fn a_file_over_the_limit_keeps_its_link_only() {
    let w = world_on(
        org().await,
        json!({"attach": true, "max_attachment_bytes": 5}),
    )
    .await;
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    assert!(got[0].is_ok());
    assert!(w.sim.attachments().is_empty());
}
