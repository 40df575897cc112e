//! Tasks for the contact's owner.

use super::*;

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
