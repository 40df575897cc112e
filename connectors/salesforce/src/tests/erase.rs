use super::writes_support::*;
use wa2crm_core::{Connector, Phone};

#[tokio::test]
async fn erase_deletes_that_persons_media_records_and_is_harmless_twice() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    for r in sf
        .deliver_batch(&[
            record("wamid.1", "+491701234567", Some("Ana")),
            record("wamid.2", "+491701234567", Some("Ana")),
            record("wamid.3", "+14155550123", None),
        ])
        .await
    {
        r.unwrap();
    }
    let ana = Phone::parse("+491701234567").unwrap();
    let dry = sf.erase(&ana, true).await.unwrap();
    assert_eq!(
        sim.records("WhatsApp_Media__c").len(),
        3,
        "a dry run removes nothing"
    );
    let report = sf.erase(&ana, false).await.unwrap();
    assert_eq!(report.removed, dry.removed, "the dry run said what goes");
    assert_eq!(report.removed.len(), 1, "{:?}", report.removed);
    assert!(
        report.removed[0].starts_with("2 WhatsApp_Media__c record(s) of Contact 003"),
        "{:?}",
        report.removed
    );
    assert_eq!(
        sim.records("WhatsApp_Media__c").len(),
        1,
        "others keep theirs"
    );
    assert!(
        sim.find("Contact", "WhatsApp_Id__c", "+491701234567")
            .is_some(),
        "the Contact stays"
    );
    assert!(sf.erase(&ana, false).await.unwrap().removed.is_empty());
    assert!(
        sf.erase(&Phone::parse("+12025550100").unwrap(), false)
            .await
            .unwrap()
            .removed
            .is_empty()
    );
}
