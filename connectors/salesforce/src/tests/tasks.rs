use super::writes_support::*;
use serde_json::json;
use wa2crm_core::{Connector, MediaKind, Phone};

#[tokio::test]
async fn a_task_per_new_voice_note_for_the_contacts_owner_never_twice() {
    let sim = org().await;
    let mut c = config(&sim);
    c["task"] = json!({"kinds": ["voice"], "due_hours": 48});
    c["permission_set"] = json!("0PSsim000000001AAA");
    let sf = connector(&c).await;
    let plan = sf.provision_schema(false).await.unwrap();
    assert!(
        plan.actions
            .iter()
            .any(|a| a.contains("Task.WA_Message_Id__c")),
        "{plan:?}"
    );
    let ana = record("wamid.1", "+491701234567", Some("Ana"));
    let mut photo = record("wamid.2", "+491701234567", Some("Ana"));
    photo.media_type = MediaKind::Image;
    for r in sf.deliver_batch(&[ana.clone(), photo.clone()]).await {
        r.unwrap();
    }
    let contact = sim
        .find("Contact", "WhatsApp_Id__c", "+491701234567")
        .unwrap();
    let contact_id = contact["Id"].as_str().unwrap().to_owned();
    // The account manager takes the Contact over; the next voice note's task is theirs.
    sim.set_field(
        "Contact",
        &contact_id,
        "OwnerId",
        json!("005sim000000042AAA"),
    );
    let later = record("wamid.3", "+491701234567", Some("Ana"));
    for _ in 0..2 {
        for r in sf
            .deliver_batch(&[ana.clone(), photo.clone(), later.clone()])
            .await
        {
            r.unwrap();
        }
    }
    let tasks = sim.records("Task");
    assert_eq!(tasks.len(), 2, "voice notes only, once each: {tasks:?}");
    let first = sim.find("Task", "WA_Message_Id__c", "wamid.1").unwrap();
    assert_eq!(first["WhoId"], contact_id.as_str());
    assert_eq!(first["OwnerId"], "005sim000000001AAA", "the owner then");
    assert_eq!(
        first["Subject"],
        "WhatsApp voice note from Ana (+491701234567)"
    );
    assert_eq!(
        first["ActivityDate"], "2026-11-24",
        "due 48 h after arrival"
    );
    assert_eq!(first["Status"], "Not Started");
    assert!(
        first["Description"]
            .as_str()
            .unwrap()
            .ends_with(&ana.file_url)
    );
    let second = sim.find("Task", "WA_Message_Id__c", "wamid.3").unwrap();
    assert_eq!(second["OwnerId"], "005sim000000042AAA");

    let cleared = sf
        .expire_media(std::slice::from_ref(&ana), false, false)
        .await
        .unwrap();
    assert!(
        cleared
            .removed
            .contains(&"1 task(s) without the link".to_string()),
        "{cleared:?}"
    );
    let first = sim.find("Task", "WA_Message_Id__c", "wamid.1").unwrap();
    assert!(
        !first["Description"]
            .as_str()
            .unwrap()
            .contains(&ana.file_url)
    );
    let erased = sf
        .erase(&Phone::parse("+491701234567").unwrap(), false)
        .await
        .unwrap();
    assert!(
        erased
            .removed
            .iter()
            .any(|l| l.starts_with("2 task(s) of Contact")),
        "{erased:?}"
    );
    assert!(sim.records("Task").is_empty());
}
