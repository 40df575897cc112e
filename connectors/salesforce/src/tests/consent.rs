use super::writes_support::*;
use serde_json::json;
use wa2crm_core::Phone;

#[tokio::test]
async fn the_contacts_checkbox_says_whether_media_may_be_kept() {
    let sim = org().await;
    let mut c = config(&sim);
    c["consent_field"] = json!("WhatsApp_Consent__c");
    c["permission_set"] = json!("0PSsim000000001AAA");
    let sf = connector(&c).await;
    let problems = sf.check_schema().await.unwrap().problems.join("\n");
    assert!(problems.contains("WhatsApp_Consent__c"), "{problems}");
    let plan = sf.provision_schema(false).await.unwrap();
    assert!(
        plan.actions
            .iter()
            .any(|a| a.contains("Contact.WhatsApp_Consent__c")),
        "{plan:?}"
    );
    let ana = Phone::parse("+491701234567").unwrap();
    assert_eq!(
        sf.consent_of(&ana).await.unwrap(),
        Some(false),
        "no Contact: no consent"
    );
    for r in sf
        .deliver_batch(&[record("wamid.1", "+491701234567", Some("Ana"))])
        .await
    {
        r.unwrap();
    }
    assert_eq!(
        sf.consent_of(&ana).await.unwrap(),
        Some(false),
        "not ticked"
    );
    let contact = sim
        .find("Contact", "WhatsApp_Id__c", "+491701234567")
        .unwrap();
    let id = contact["Id"].as_str().unwrap();
    sim.set_field("Contact", id, "WhatsApp_Consent__c", json!(true));
    assert_eq!(sf.consent_of(&ana).await.unwrap(), Some(true));
    let without = connector(&config(&sim)).await;
    assert_eq!(without.consent_of(&ana).await.unwrap(), None);
}
