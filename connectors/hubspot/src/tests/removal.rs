//! Erasure and retention.

use super::*;

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
