//! The connector against the HubSpot simulator: every write path, partial failures, auth and
//! limits. Black-box tests of the daemon live in tests/.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wa2crm_core::state::keys;
use wa2crm_core::{ErrorKind, MemoryStateStore, StateStore};
use wa2crm_sandbox::hubspot::{Fault, HubSpotSim, HubSpotSimConfig, OAuthApp, PropertyDef};

use super::*;
use crate::values::tests::record;

const TOKEN: &str = "pat-na1-test";

fn fields() -> Value {
    json!({"file_url": "wa_media_url", "media_type": "wa_media_type", "mime_type": "wa_media_mime",
        "size_bytes": "wa_media_size", "duration_seconds": "wa_media_duration", "tags": "wa_media_tags",
        "received_at": "wa_media_received_at"})
}

fn config(sim: &HubSpotSim, extra: Value) -> Value {
    let mut c = json!({"type": "hubspot", "base_url": sim.url(), "token": TOKEN,
        "contact_key": "whatsapp_id", "note": true, "fields": fields()});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

struct Setup {
    sim: HubSpotSim,
    hs: Arc<dyn Connector>,
    state: Arc<MemoryStateStore>,
}

async fn build(sim: HubSpotSim, config: Value) -> Setup {
    let state = Arc::new(MemoryStateStore::default());
    let context = ConnectorContext {
        state: state.clone(),
        media: Some(Arc::new(Files)),
    };
    let hs = HubSpotFactory.build("hs", &config, &context).await.unwrap();
    Setup { sim, hs, state }
}

/// A provisioned Starter portal.
async fn provisioned(extra: Value) -> Setup {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let c = config(&sim, extra);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    s
}

/// A provisioned Enterprise portal with the `p_whatsapp_media` custom object: one record per
/// media, by message id, with `more` fields mapped besides the usual ones; no notes.
async fn custom_object_portal(more: Value) -> Setup {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.add_custom_object("p_whatsapp_media");
    let mut f = fields();
    f["message_id"] = json!("wa_message_id");
    for (k, v) in more.as_object().unwrap() {
        f[k] = v.clone();
    }
    let c = config(
        &sim,
        json!({"object": "p_whatsapp_media", "note": false, "fields": f}),
    );
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    s
}

fn ok(results: Vec<Result<Delivered>>) -> Vec<Delivered> {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("delivery failed: {e}")))
        .collect()
}

#[tokio::test]
async fn contacts_get_the_latest_media_and_a_note_each_and_a_rerun_changes_nothing() {
    let s = provisioned(json!({})).await;
    let a1 = record("wamid.a1", "+491701234567");
    let mut a2 = record("wamid.a2", "+491701234567");
    a2.received_at += time::Duration::minutes(5);
    a2.mime_type = "video/mp4".into();
    let mut b = record("wamid.b", "+14155550123");
    b.sender_name = None;
    let batch = vec![a1.clone(), a2.clone(), b.clone()];
    let first = ok(s.hs.deliver(&batch).await);
    assert!(first.iter().all(|d| d.created), "{first:?}");

    let ana = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    assert_eq!(ana.properties["firstname"], "Ana");
    assert_eq!(ana.properties["lastname"], "María López");
    assert_eq!(
        ana.properties["wa_media_mime"], "video/mp4",
        "the newest media wins"
    );
    assert_eq!(ana.properties["wa_media_size"], "48213");
    assert_eq!(ana.properties["wa_media_duration"], "42.4");
    assert_eq!(ana.properties["wa_media_type"], "voice");
    assert_eq!(ana.properties["wa_media_tags"], "urgent;product-issue");
    assert_eq!(
        ana.properties["wa_media_received_at"],
        "2026-11-22T10:05:00.123Z"
    );
    assert_eq!(ana.properties["wa_media_url"], a2.file_url);
    let bob = s
        .sim
        .find("contacts", "whatsapp_id", "+14155550123")
        .unwrap();
    assert_eq!(bob.properties.get("firstname"), None);

    let notes = s.sim.associated("contacts", &ana.id, "notes");
    assert_eq!(notes.len(), 2);
    let note = s.sim.find("notes", "wa_message_id", "wamid.a1").unwrap();
    assert_eq!(first[0].crm_id, note.id);
    assert_eq!(note.properties["hs_timestamp"], "2026-11-22T10:00:00.123Z");
    assert!(note.properties["hs_note_body"].contains("Play the voice note"));
    assert_eq!(
        s.sim
            .association_types("notes", &note.id, "contacts", &ana.id),
        vec![202]
    );

    // A CRM user renames the contact; an old media is delivered again (a replay).
    s.sim
        .set_property("contacts", &ana.id, "firstname", "Anita");
    let again = ok(s.hs.deliver(std::slice::from_ref(&a1)).await);
    assert!(!again[0].created);
    assert_eq!(again[0].crm_id, note.id);
    let ana = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    assert_eq!(
        ana.properties["firstname"], "Anita",
        "the CRM's name is never overwritten"
    );
    assert_eq!(
        ana.properties["wa_media_mime"], "video/mp4",
        "an older media never overwrites a newer one"
    );
    assert_eq!(s.sim.records("notes").len(), 3);
    assert_eq!(s.sim.records("contacts").len(), 2);
}

#[tokio::test]
async fn a_custom_object_gets_one_record_per_media_associated_to_the_contact() {
    let s = custom_object_portal(json!({"caption": "wa_caption"})).await;
    let batch = vec![
        record("wamid.1", "+491701234567"),
        record("wamid.2", "+491701234567"),
    ];
    let delivered = ok(s.hs.deliver(&batch).await);
    let media = s.sim.records("p_whatsapp_media");
    assert_eq!(media.len(), 2);
    let one = s
        .sim
        .find("p_whatsapp_media", "wa_message_id", "wamid.1")
        .unwrap();
    assert_eq!(delivered[0].crm_id, one.id);
    assert_eq!(one.properties["wa_caption"], "<b>broken</b>");
    let contact = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    assert_eq!(
        contact.properties.get("wa_media_url"),
        None,
        "media fields live on the records"
    );
    let mut linked = s
        .sim
        .associated("contacts", &contact.id, "p_whatsapp_media");
    linked.sort();
    let mut ids: Vec<String> = media.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    assert_eq!(linked, ids);
    ok(s.hs.deliver(&batch).await);
    assert_eq!(s.sim.records("p_whatsapp_media").len(), 2);
}

#[tokio::test]
async fn expired_media_leaves_notes_as_a_trace_and_clears_only_contacts_still_showing_it() {
    let s = provisioned(json!({})).await;
    // Each media has its own link (its stored object's).
    let with_link = |id: &str, phone: &str| {
        let mut r = record(id, phone);
        r.file_url = format!("https://wa2crm.example.com/media/{id}");
        r
    };
    let a1 = with_link("wamid.a1", "+491701234567");
    let mut a2 = with_link("wamid.a2", "+491701234567");
    a2.received_at += time::Duration::minutes(5);
    let b = with_link("wamid.b", "+14155550123");
    ok(s.hs.deliver(&[a1.clone(), a2.clone(), b.clone()]).await);
    let expiring = [a1.clone(), b.clone()];

    let dry = s.hs.expire(&expiring, false, true).await.unwrap();
    assert_eq!(
        dry.removed,
        [
            "1 contact(s): latest-media properties cleared",
            "2 note(s) reduced to a line saying the media was removed"
        ]
    );
    let body = |id: &str| {
        s.sim.find("notes", "wa_message_id", id).unwrap().properties["hs_note_body"].clone()
    };
    assert!(
        body("wamid.a1").contains(&a1.file_url),
        "a dry run changes nothing"
    );

    let done = s.hs.expire(&expiring, false, false).await.unwrap();
    assert_eq!(done.removed, dry.removed);
    assert!(body("wamid.a1").contains("Removed on") && !body("wamid.a1").contains(&a1.file_url));
    assert!(body("wamid.b").contains("Removed on"));
    assert!(
        body("wamid.a2").contains(&a2.file_url),
        "a newer media is kept"
    );
    let contact = |phone: &str| {
        s.sim
            .find("contacts", "whatsapp_id", phone)
            .unwrap()
            .properties
    };
    assert_eq!(
        contact("+491701234567")["wa_media_url"],
        a2.file_url,
        "it shows the newer one"
    );
    assert!(!contact("+14155550123").contains_key("wa_media_url"));
    assert_eq!(s.sim.records("notes").len(), 3, "clear keeps the notes");

    let deleted = s.hs.expire(&expiring, true, false).await.unwrap();
    assert_eq!(deleted.removed, ["2 note(s) deleted"]);
    assert_eq!(s.sim.records("notes").len(), 1);
    assert!(
        s.hs.expire(&expiring, true, false)
            .await
            .unwrap()
            .removed
            .is_empty()
    );
}

#[tokio::test]
async fn a_task_for_the_contacts_owner_per_new_voice_note_once_and_erased_with_the_rest() {
    let s = provisioned(json!({"task": {"kinds": ["voice"], "due_hours": 48}})).await;
    let key = s
        .sim
        .property("tasks", "wa_message_id")
        .expect("provisioned");
    assert!(key.unique);
    let ana = s.sim.add_record(
        "contacts",
        &[
            ("whatsapp_id", "+491701234567"),
            ("hubspot_owner_id", "7001"),
        ],
    );
    let voice = record("wamid.v", "+491701234567");
    let mut image = record("wamid.i", "+491701234567");
    image.media_type = wa2crm_core::MediaKind::Image;
    let mut bob = record("wamid.b", "+14155550123");
    bob.sender_name = None;
    let batch = [voice.clone(), image, bob];
    ok(s.hs.deliver(&batch).await);
    ok(s.hs.deliver(&batch).await);
    assert_eq!(
        s.sim.records("tasks").len(),
        2,
        "voice notes only, once each"
    );
    let task = s.sim.find("tasks", "wa_message_id", "wamid.v").unwrap();
    let p = &task.properties;
    assert_eq!(p["hubspot_owner_id"], "7001", "for the contact's owner");
    assert_eq!(
        p["hs_task_subject"],
        "WhatsApp voice note from Ana María López (+491701234567)"
    );
    assert_eq!(
        p["hs_timestamp"], "2026-11-24T10:00:00.123Z",
        "due 48 h after arrival"
    );
    assert_eq!(p["hs_task_status"], "NOT_STARTED");
    assert!(p["hs_task_body"].contains("href=\"https://wa2crm.example.com/media/tok&amp;en\""));
    assert_eq!(
        s.sim.association_types("tasks", &task.id, "contacts", &ana),
        vec![204]
    );
    let unowned = s.sim.find("tasks", "wa_message_id", "wamid.b").unwrap();
    assert!(!unowned.properties.contains_key("hubspot_owner_id"));

    let report =
        s.hs.erase(&Phone::parse("+491701234567").unwrap(), false)
            .await
            .unwrap();
    assert!(
        report
            .removed
            .contains(&format!("1 task(s) on contact {ana} deleted")),
        "{:?}",
        report.removed
    );
    assert_eq!(s.sim.records("tasks").len(), 1);
}

#[tokio::test]
async fn expired_media_records_of_a_custom_object_are_cleared_or_deleted() {
    let s = custom_object_portal(json!({})).await;
    let (r1, r2) = (
        record("wamid.1", "+491701234567"),
        record("wamid.2", "+491701234567"),
    );
    ok(s.hs.deliver(&[r1.clone(), r2.clone()]).await);
    let cleared =
        s.hs.expire(std::slice::from_ref(&r1), false, false)
            .await
            .unwrap();
    assert_eq!(cleared.removed, ["1 p_whatsapp_media record(s) cleared"]);
    let one = s
        .sim
        .find("p_whatsapp_media", "wa_message_id", "wamid.1")
        .unwrap();
    assert!(
        !one.properties.contains_key("wa_media_url"),
        "{:?}",
        one.properties
    );
    let deleted = s.hs.expire(&[r1, r2], true, false).await.unwrap();
    assert_eq!(deleted.removed, ["2 p_whatsapp_media record(s) deleted"]);
    assert!(s.sim.records("p_whatsapp_media").is_empty());
}

#[tokio::test]
async fn one_bad_item_in_a_207_fails_only_its_own_job_with_hubspots_message() {
    let s = provisioned(json!({})).await;
    // An admin narrowed the media type options: "voice" is no longer allowed.
    let mut def = s.sim.property("contacts", "wa_media_type").unwrap();
    def.options.retain(|o| o != "voice");
    s.sim.define_property("contacts", def);
    let good = {
        let mut r = record("wamid.ok", "+14155550123");
        r.media_type = wa2crm_core::MediaKind::Image;
        r
    };
    let bad = record("wamid.bad", "+491701234567");
    let results = s.hs.deliver(&[good, bad]).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(
        e.message()
            .contains("voice was not one of the allowed options"),
        "{e}"
    );
    assert!(e.message().contains("+491701234567"), "{e}");
}

#[tokio::test]
async fn batches_are_split_when_hubspot_refuses_their_size() {
    let s = provisioned(json!({})).await;
    s.sim.set_batch_limit(10);
    let batch: Vec<_> = (0..25)
        .map(|i| record(&format!("wamid.{i}"), &format!("+1415555{i:04}")))
        .collect();
    let delivered = ok(s.hs.deliver(&batch).await);
    assert_eq!(delivered.len(), 25);
    assert_eq!(s.sim.records("contacts").len(), 25);
    assert_eq!(s.sim.records("notes").len(), 25);
}

#[tokio::test]
async fn an_unknown_property_fails_each_record_with_the_name_of_the_property() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property("contacts", unique("whatsapp_id"));
    let c = config(
        &sim,
        json!({"note": false, "fields": {"file_url": "wa_nope"}}),
    );
    let s = build(sim, c).await;
    let results =
        s.hs.deliver(&[
            record("wamid.1", "+14155550123"),
            record("wamid.2", "+14155550124"),
        ])
        .await;
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(
            e.message()
                .contains("Property \\\"wa_nope\\\" does not exist"),
            "{e}"
        );
    }
}

fn unique(name: &str) -> PropertyDef {
    let mut p = PropertyDef::new(name, "string", "text");
    p.unique = true;
    p
}

#[tokio::test]
async fn new_tags_become_options_of_a_checkbox_property_first() {
    let s = provisioned(json!({})).await;
    let tags = s.sim.property("contacts", "wa_media_tags").unwrap();
    assert_eq!(
        (tags.kind.as_str(), tags.field_type.as_str()),
        ("enumeration", "checkbox")
    );
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    let tags = s.sim.property("contacts", "wa_media_tags").unwrap();
    assert_eq!(tags.options, vec!["product-issue", "urgent"]);
    let mut r = record("wamid.2", "+14155550123");
    r.tags = vec!["urgent".into(), "vip".into()];
    r.received_at += time::Duration::hours(1);
    ok(s.hs.deliver(&[r]).await);
    let tags = s.sim.property("contacts", "wa_media_tags").unwrap();
    assert_eq!(tags.options, vec!["product-issue", "urgent", "vip"]);
    let c = s
        .sim
        .find("contacts", "whatsapp_id", "+14155550123")
        .unwrap();
    assert_eq!(c.properties["wa_media_tags"], "urgent;vip");
}

#[tokio::test]
async fn check_names_every_problem_and_provision_fixes_what_it_can_twice_safely() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property(
        "contacts",
        PropertyDef::new("whatsapp_id", "string", "text"),
    );
    sim.define_property(
        "contacts",
        PropertyDef::new("wa_media_size", "string", "text"),
    );
    sim.set_scopes(&[
        "crm.objects.contacts.read",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.objects.contacts.write",
    ]);
    let c = config(&sim, json!({}));
    let s = build(sim, c).await;
    let report = s.hs.check().await.unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains("contacts.whatsapp_id: does not have unique values"),
        "{text}"
    );
    assert!(
        text.contains("contacts.wa_media_size: is of type string"),
        "{text}"
    );
    assert!(
        text.contains("contacts.wa_media_url: missing; `wa2crm provision` creates it"),
        "{text}"
    );
    assert!(text.contains("notes.wa_message_id: missing"), "{text}");
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.starts_with("connectors.hs: ")),
        "{text}"
    );

    let dry = s.hs.provision(true).await.unwrap();
    assert!(
        dry.actions
            .iter()
            .any(|a| a == "create contacts.wa_media_url (string/text)"),
        "{:?}",
        dry.actions
    );
    assert!(
        s.sim.property("contacts", "wa_media_url").is_none(),
        "a dry run creates nothing"
    );
    let plan = s.hs.provision(false).await.unwrap();
    assert!(
        plan.actions
            .iter()
            .any(|a| a == "create notes.wa_message_id (string/text, unique)"),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| a.starts_with("left alone contacts.wa_media_size")),
        "{:?}",
        plan.actions
    );
    assert!(s.sim.property("notes", "wa_message_id").unwrap().unique);
    let twice = s.hs.provision(false).await.unwrap();
    assert!(
        twice.actions.iter().all(|a| a.starts_with("left alone")),
        "{:?}",
        twice.actions
    );
    let report = s.hs.check().await.unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}

#[tokio::test]
async fn check_reports_missing_scopes_and_a_bad_token() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.set_scopes(&["crm.objects.contacts.read", "crm.schemas.contacts.read"]);
    let c = config(&sim, json!({}));
    let s = build(sim, c).await;
    let text = s.hs.check().await.unwrap().problems.join("\n");
    assert!(
        text.contains("lacks the scope crm.objects.contacts.write"),
        "{text}"
    );

    let c = config(&s.sim, json!({"token": "pat-na1-wrong"}));
    let bad = HubSpotFactory
        .build(
            "bad",
            &c,
            &ConnectorContext {
                state: s.state.clone(),
                media: None,
            },
        )
        .await
        .unwrap();
    let text = bad.check().await.unwrap().problems.join("\n");
    assert!(
        text.contains("HubSpot rejects the credentials (INVALID_AUTHENTICATION"),
        "{text}"
    );
    assert!(text.contains("private app token"), "{text}");
}

#[tokio::test]
async fn erase_clears_the_contacts_media_and_removes_the_notes_twice_harmlessly() {
    let s = provisioned(json!({})).await;
    ok(s.hs
        .deliver(&[
            record("wamid.1", "+491701234567"),
            record("wamid.2", "+14155550123"),
        ])
        .await);
    let ana = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    // A note a salesperson wrote by hand stays.
    s.sim
        .set_property("contacts", &ana.id, "wa_media_mime", "audio/ogg");
    let phone = Phone::parse("+491701234567").unwrap();
    let dry = s.hs.erase(&phone, true).await.unwrap();
    assert_eq!(dry.removed.len(), 2, "{:?}", dry.removed);
    assert!(
        s.sim.find("notes", "wa_message_id", "wamid.1").is_some(),
        "a dry run removes nothing"
    );
    let report = s.hs.erase(&phone, false).await.unwrap();
    assert_eq!(report.removed, dry.removed, "the dry run said what goes");
    let ana = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    assert_eq!(ana.properties.get("wa_media_url"), None);
    assert_eq!(
        ana.properties.get("firstname").map(String::as_str),
        Some("Ana")
    );
    assert!(s.sim.find("notes", "wa_message_id", "wamid.1").is_none());
    assert!(
        s.sim.find("notes", "wa_message_id", "wamid.2").is_some(),
        "others keep theirs"
    );
    let again = s.hs.erase(&phone, false).await.unwrap();
    assert!(again.removed.is_empty(), "{:?}", again.removed);
    let nobody =
        s.hs.erase(&Phone::parse("+12025550100").unwrap(), false)
            .await
            .unwrap();
    assert!(nobody.removed.is_empty());
}

#[tokio::test]
async fn the_contacts_consent_checkbox_says_whether_media_may_be_kept() {
    let s = provisioned(json!({"consent_field": "wa_media_consent"})).await;
    let prop = s
        .sim
        .property("contacts", "wa_media_consent")
        .expect("provisioned");
    assert_eq!(
        (prop.kind.as_str(), prop.field_type.as_str()),
        ("bool", "booleancheckbox")
    );
    assert!(s.hs.check().await.unwrap().problems.is_empty());
    let ana = Phone::parse("+491701234567").unwrap();
    assert_eq!(
        s.hs.consent(&ana).await.unwrap(),
        Some(false),
        "unknown: no consent"
    );
    ok(s.hs.deliver(&[record("wamid.1", "+491701234567")]).await);
    assert_eq!(s.hs.consent(&ana).await.unwrap(), Some(false), "not ticked");
    let contact = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    s.sim
        .set_property("contacts", &contact.id, "wa_media_consent", "true");
    assert_eq!(s.hs.consent(&ana).await.unwrap(), Some(true));
    let plain = provisioned(json!({})).await;
    assert_eq!(plain.hs.consent(&ana).await.unwrap(), None);
}

fn oauth_sim_config(ttl: Duration) -> HubSpotSimConfig {
    HubSpotSimConfig::oauth(OAuthApp {
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        refresh_token: "rt-0".into(),
        token_ttl: ttl,
        rotate_refresh_token: true,
    })
}

fn oauth_config(sim: &HubSpotSim) -> Value {
    let mut c = config(
        sim,
        json!({"client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-0"}),
    );
    c.as_object_mut().unwrap().remove("token");
    c
}

#[tokio::test]
async fn oauth_tokens_expiring_every_two_seconds_are_refreshed_one_at_a_time_under_load() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(2)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(7) {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let hs = s.hs.clone();
                let r = record(
                    &format!("wamid.{n}.{i}"),
                    &format!("+1415555{:04}", n * 8 + i),
                );
                tokio::spawn(async move { hs.deliver(&[r]).await })
            })
            .collect();
        for t in tasks {
            ok(t.await.unwrap());
        }
        n += 1;
    }
    let counts = s.sim.counts();
    assert!(counts.refreshes >= 3, "{counts:?}");
    assert_eq!(counts.max_concurrent_refreshes, 1, "{counts:?}");
    assert_eq!(counts.failed_refreshes, 0, "{counts:?}");
    // The rotated refresh token was stored before use and is the one HubSpot accepts now.
    let stored = s
        .state
        .get_state("hs", wa2crm_rest::refresh::REFRESH_TOKEN_KEY)
        .await
        .unwrap()
        .unwrap();
    let current = s.sim.current_refresh_token().unwrap();
    assert!(stored.contains(&current), "{stored} vs {current}");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_replayed_and_a_restart_uses_the_rotated_token()
 {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c.clone()).await;
    s.hs.provision(false).await.unwrap();
    s.sim.expire_access_tokens();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    let counts = s.sim.counts();
    assert_eq!(counts.refreshes, 2, "{counts:?}");
    assert_eq!(counts.unauthorized, 1, "{counts:?}");
    // A new process with the same config (its refresh token long rotated away) and the stored one.
    let restarted = HubSpotFactory
        .build(
            "hs",
            &c,
            &ConnectorContext {
                state: s.state.clone(),
                media: None,
            },
        )
        .await
        .unwrap();
    ok(restarted
        .deliver(&[record("wamid.2", "+14155550123")])
        .await);
    assert_eq!(s.sim.counts().failed_refreshes, 0);
}

#[tokio::test]
async fn a_token_expiring_on_its_way_again_and_again_is_refreshed_each_time_never_paused() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    let before = s.sim.counts().refreshes;
    s.sim.inject([
        Fault::ExpiredToken,
        Fault::ExpiredToken,
        Fault::ExpiredToken,
    ]);
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert_eq!(s.sim.counts().refreshes - before, 3, "{:?}", s.sim.counts());
    assert!(
        s.state
            .get_state("hs", keys::PAUSE_REASON)
            .await
            .unwrap()
            .is_none(),
        "an expired token is no reason to pause"
    );
}

#[tokio::test]
async fn a_dead_refresh_token_pauses_the_connector_and_says_what_to_do() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.sim.revoke_refresh_token();
    let results = s.hs.deliver(&[record("wamid.1", "+14155550123")]).await;
    let e = results[0].as_ref().unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::RateLimited { .. }),
        "jobs wait, they are not dead-lettered: {e}"
    );
    assert!(e.message().contains("BAD_REFRESH_TOKEN"), "{e}");
    assert!(e.message().contains("Re-authorize the app"), "{e}");
    let reason = s
        .state
        .get_state("hs", keys::PAUSE_REASON)
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("Re-authorize"), "{reason}");
    // Paused: no more refresh attempts until the admin acts.
    s.hs.deliver(&[record("wamid.2", "+14155550123")]).await;
    assert_eq!(s.sim.counts().failed_refreshes, 1);
}

#[tokio::test]
async fn secondly_429s_and_5xx_are_waited_out_and_the_batch_lands() {
    let s = provisioned(json!({})).await;
    s.sim.inject([
        Fault::RateLimit("SECONDLY"),
        Fault::Status(502),
        Fault::RateLimit("SECONDLY"),
        Fault::Status(500),
    ]);
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(s.sim.find("notes", "wa_message_id", "wamid.1").is_some());
}

#[tokio::test]
async fn calls_hubspot_never_answers_are_abandoned_at_the_timeout_and_replayed_once() {
    let s = provisioned(json!({"timeout_seconds": 1})).await;
    // Each call is carried out and left unanswered: the contact upsert, then the note upsert.
    s.sim.inject([Fault::Hang, Fault::Hang]);
    let start = std::time::Instant::now();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(s.sim.counts().hung, 2);
    // Replaying what was done already doubled nothing.
    assert_eq!(s.sim.records("notes").len(), 1);
    assert_eq!(s.sim.records("contacts").len(), 1);
}

#[tokio::test]
async fn a_ten_secondly_429_holds_every_request_for_the_window() {
    let s = provisioned(json!({})).await;
    s.sim.inject([Fault::RateLimit("TEN_SECONDLY_ROLLING")]);
    let start = std::time::Instant::now();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert!(
        start.elapsed() >= Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_daily_limit_and_the_reserve_pause_until_the_portals_midnight() {
    let s = provisioned(json!({"daily_reserve": 0.1})).await;
    s.sim.set_daily_used(250_000 - 25_000 - 8);
    // Deliveries go on until a call leaves no more than 10 % of the day's calls; then the
    // connector stops before the reserve, within a delivery or two.
    let mut failure = None;
    for i in 0..4 {
        if let Err(e) =
            s.hs.deliver(&[record(&format!("wamid.{i}"), "+14155550123")])
                .await
                .remove(0)
        {
            failure = Some(e);
            break;
        }
    }
    let e = failure.expect("the reserve stops deliveries");
    assert!(
        e.message().contains("reserved for its other integrations"),
        "{e}"
    );
    assert!(e.message().contains("(UTC+00:00)"), "{e}");
    let before = s.sim.counts().total_calls();
    s.hs.deliver(&[record("wamid.9", "+14155550123")])
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(
        s.sim.counts().total_calls(),
        before,
        "paused: no call at all"
    );
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(86_400),
        "{wait:?}"
    );
    let until = s
        .state
        .get_state("hs", keys::PAUSED_UNTIL_MS)
        .await
        .unwrap();
    assert!(until.is_some());

    let s = provisioned(json!({"daily_reserve": 0.0})).await;
    s.sim.inject([Fault::RateLimit("DAILY")]);
    let e =
        s.hs.deliver(&[record("wamid.1", "+14155550123")])
            .await
            .remove(0)
            .unwrap_err();
    assert!(e.message().contains("daily API limit"), "{e}");
    assert!(matches!(
        e.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(_)
        }
    ));
}

/// Stored files for upload tests: every record's bytes are its message id, repeated.
struct Files;

#[async_trait::async_trait]
impl wa2crm_core::MediaSource for Files {
    async fn open(&self, record: &MediaRecord) -> Result<wa2crm_core::MediaBody> {
        if record.message_id.contains("gone") {
            return Err(Error::not_found("the stored file is gone"));
        }
        let bytes = bytes_of(record);
        let size = bytes.len() as u64;
        let chunks: Vec<std::io::Result<bytes::Bytes>> = bytes
            .chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        Ok(wa2crm_core::MediaBody {
            size,
            stream: Box::pin(futures_util::stream::iter(chunks)),
        })
    }
}

fn bytes_of(record: &MediaRecord) -> Vec<u8> {
    record.message_id.as_bytes().repeat(500)
}

#[tokio::test]
async fn uploads_go_private_into_files_attached_to_the_note_once_and_erase_deletes_them() {
    let s = provisioned(json!({"upload": true})).await;
    let mut a = record("wamid.up.1", "+491701234567");
    a.storage_uri = format!("file:///m/2026/11/22/{}.ogg", "ab".repeat(32));
    let mut gone = record("wamid.up.gone", "+491701234567");
    gone.storage_uri = format!("file:///m/2026/11/22/{}.ogg", "cd".repeat(32));
    let results = s.hs.deliver(&[a.clone(), gone]).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        s.sim
            .find("notes", "wa_message_id", "wamid.up.gone")
            .is_none(),
        "no note without its file"
    );

    let files = s.sim.files();
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    assert_eq!(f.access, "PRIVATE");
    assert_eq!(f.folder, "/wa2crm");
    assert_eq!(f.name, format!("{}.ogg", "ab".repeat(32)));
    assert_eq!(f.size, bytes_of(&a).len() as u64);
    let note = s.sim.find("notes", "wa_message_id", "wamid.up.1").unwrap();
    assert_eq!(note.properties["hs_attachment_ids"], f.id);

    ok(s.hs.deliver(std::slice::from_ref(&a)).await);
    assert_eq!(s.sim.files().len(), 1, "a re-run gets the same file back");

    let report =
        s.hs.erase(&Phone::parse("+491701234567").unwrap(), false)
            .await
            .unwrap();
    assert!(
        report
            .removed
            .contains(&"1 file(s) in HubSpot Files deleted".to_string()),
        "{:?}",
        report.removed
    );
    assert!(s.sim.files().is_empty());
}
