//! Writes: contacts, latest media, notes, custom-object records, partial failures, tag options.

use super::*;

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
async fn the_console_links_to_the_contact_and_a_restart_remembers_the_portal() {
    use wa2crm_sandbox::hubspot::PORTAL_ID;
    let s = provisioned(json!({})).await;
    let ana = "+491701234567";
    let asked = |s: &Setup| s.sim.counts().calls.get("GET account details").copied();
    let guess = Delivered {
        contact: Some("1".into()),
        ..Delivered::new("1", true)
    };
    assert_eq!(s.hs.record_url(&guess), None, "no portal known yet");

    let delivered = ok(s.hs.deliver(&[record("wamid.1", ana)]).await);
    let contact = s.sim.find("contacts", "whatsapp_id", ana).unwrap();
    let note = s.sim.find("notes", "wa_message_id", "wamid.1").unwrap();
    assert_eq!(delivered[0].crm_id, note.id, "the media's own record");
    assert_eq!(delivered[0].contact.as_deref(), Some(contact.id.as_str()));
    let link = format!(
        "https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-1/{}",
        contact.id
    );
    assert_eq!(s.hs.record_url(&delivered[0]).as_deref(), Some(&*link));
    assert_eq!(asked(&s), Some(1));
    ok(s.hs.deliver(&[record("wamid.2", ana)]).await);
    assert_eq!(asked(&s), Some(1), "asked once");

    // Ids that are not HubSpot's, or no contact, make no link.
    let hostile = Delivered {
        contact: Some("1/../../settings".into()),
        ..Delivered::new("1", true)
    };
    assert_eq!(s.hs.record_url(&hostile), None);
    assert_eq!(
        s.hs.record_url(&Delivered::new(note.id.clone(), true)),
        None
    );

    // A restarted daemon links at once, without asking; other credentials are another portal.
    let context = ConnectorContext::new(s.state.clone());
    let again = HubSpotFactory
        .build("hs", &config(&s.sim, json!({})), &context)
        .await
        .unwrap();
    assert_eq!(again.record_url(&delivered[0]).as_deref(), Some(&*link));
    assert_eq!(asked(&s), Some(1));
    let other = HubSpotFactory
        .build(
            "hs",
            &config(&s.sim, json!({"token": "pat-na1-other"})),
            &context,
        )
        .await
        .unwrap();
    assert_eq!(other.record_url(&delivered[0]), None);
}

#[tokio::test]
async fn a_portal_answering_a_foreign_ui_host_gets_no_links() {
    let s = provisioned(json!({})).await;
    s.sim.set_ui_domain("app.hubspot.com.evil.example");
    let delivered = ok(s.hs.deliver(&[record("wamid.1", "+491701234567")]).await);
    assert!(delivered[0].contact.is_some());
    assert_eq!(s.hs.record_url(&delivered[0]), None);
}
