use super::writes_support::*;

#[tokio::test]
async fn expired_media_records_are_cleared_or_deleted() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    let (r1, r2) = (
        record("wamid.1", "+491701234567", Some("Ana")),
        record("wamid.2", "+491701234567", Some("Ana")),
    );
    for r in sf.deliver_batch(&[r1.clone(), r2.clone()]).await {
        r.unwrap();
    }
    let dry = sf
        .expire_media(std::slice::from_ref(&r1), false, true)
        .await
        .unwrap();
    assert_eq!(dry.removed, ["1 WhatsApp_Media__c record(s) cleared"]);
    let one = || {
        sim.find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.1")
            .unwrap()
    };
    assert!(
        one()["Media_Url__c"].is_string(),
        "a dry run changes nothing"
    );
    sf.expire_media(std::slice::from_ref(&r1), false, false)
        .await
        .unwrap();
    let cleared = one();
    assert!(
        cleared.get("Media_Url__c").is_none_or(|v| v.is_null()),
        "{cleared:?}"
    );
    assert!(cleared["Contact__c"].is_string(), "still on the Contact");
    let deleted = sf
        .expire_media(&[r1.clone(), r2], true, false)
        .await
        .unwrap();
    assert_eq!(deleted.removed, ["2 WhatsApp_Media__c record(s) deleted"]);
    assert!(sim.records("WhatsApp_Media__c").is_empty());
    assert!(
        sf.expire_media(&[r1], true, false)
            .await
            .unwrap()
            .removed
            .is_empty()
    );
}
