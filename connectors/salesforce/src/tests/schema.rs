use super::*;
use wa2crm_sandbox::salesforce::FieldDef;

#[tokio::test]
async fn check_names_every_gap_and_provision_creates_and_grants_the_fields_twice_safely() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    sim.add_object("WhatsApp_Media__c");
    // An existing message-id field that is not a unique external ID, and a wrong type.
    sim.add_field(
        "WhatsApp_Media__c",
        FieldDef::new("WA_Message_Id__c", "string"),
    );
    sim.add_field(
        "WhatsApp_Media__c",
        FieldDef::new("Size_Bytes__c", "string"),
    );
    let mut c = jwt_config(&sim);
    c["fields"] = json!({"file_url": "Media_Url__c", "size_bytes": "Size_Bytes__c", "received_at": "Received_At__c"});
    c["permission_set"] = json!("0PSsim000000001AAA");
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
        .await
        .unwrap();

    let text = sf.check_schema().await.unwrap().problems.join("\n");
    assert!(
        text.contains("Contact.WhatsApp_Id__c: missing, or invisible"),
        "{text}"
    );
    assert!(
        text.contains("WhatsApp_Media__c.WA_Message_Id__c: must be a unique External ID"),
        "{text}"
    );
    assert!(
        text.contains("WhatsApp_Media__c.Size_Bytes__c: is of type string"),
        "{text}"
    );
    assert!(
        text.contains("WhatsApp_Media__c.Contact__c: missing"),
        "{text}"
    );
    assert!(
        text.contains("WhatsApp_Media__c.Media_Url__c: missing"),
        "{text}"
    );

    let dry = sf.provision_schema(true).await.unwrap();
    assert!(
        dry.actions
            .contains(&"create Contact.WhatsApp_Id__c (Text, unique external ID)".to_string()),
        "{:?}",
        dry.actions
    );
    assert!(
        sf.check_schema().await.unwrap().problems.len() >= 5,
        "a dry run changes nothing"
    );

    let plan = sf.provision_schema(false).await.unwrap();
    assert!(plan.actions.contains(&"grant read/edit on WhatsApp_Media__c.Media_Url__c to permission set 0PSsim000000001AAA".to_string()), "{:?}", plan.actions);
    assert!(
        plan.actions
            .iter()
            .any(|a| a.starts_with("left alone WhatsApp_Media__c.Size_Bytes__c")),
        "{:?}",
        plan.actions
    );
    let twice = sf.provision_schema(false).await.unwrap();
    assert!(
        twice.actions.iter().all(|a| a.starts_with("left alone")),
        "{:?}",
        twice.actions
    );
    let left: Vec<String> = sf.check_schema().await.unwrap().problems;
    assert_eq!(
        left.len(),
        2,
        "only what provision must not change: {left:?}"
    );
}

#[tokio::test]
async fn without_a_permission_set_provision_says_what_to_grant_and_check_still_sees_the_gap() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    sim.add_object("WhatsApp_Media__c");
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let sf = Salesforce::new(
        "sf",
        SalesforceConfig::from_value(&jwt_config(&sim)).unwrap(),
        &context,
    )
    .await
    .unwrap();
    let plan = sf.provision_schema(false).await.unwrap();
    assert!(
        plan.actions.iter().any(|a| a.contains(
            "grant the integration user read/edit on WhatsApp_Media__c.Media_Url__c yourself"
        )),
        "{:?}",
        plan.actions
    );
    let text = sf.check_schema().await.unwrap().problems.join("\n");
    assert!(
        text.contains("Media_Url__c: missing, or invisible to the integration user"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_custom_object_is_named_once() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let sf = Salesforce::new(
        "sf",
        SalesforceConfig::from_value(&jwt_config(&sim)).unwrap(),
        &context,
    )
    .await
    .unwrap();
    let problems = sf.check_schema().await.unwrap().problems;
    let about_object: Vec<&String> = problems
        .iter()
        .filter(|p| p.contains("does not exist"))
        .collect();
    assert_eq!(about_object.len(), 1, "{problems:?}");
    assert!(
        about_object[0].contains("WhatsApp_Media__c"),
        "{problems:?}"
    );
}
