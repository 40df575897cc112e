//! Uploads to HubSpot Files.

use super::*;

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
