use super::writes_support::*;
use super::*;
use wa2crm_core::{Delivered, MediaRecord};
use wa2crm_sandbox::salesforce::FieldDef;

#[tokio::test]
async fn media_records_are_upserted_and_looked_up_to_contacts_created_only_when_new() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    let batch = vec![
        record("wamid.1", "+491701234567", Some("Ana María López")),
        record("wamid.2", "+491701234567", Some("Ana María López")),
        record("wamid.3", "+14155550123", None),
    ];
    let first: Vec<Delivered> = sf
        .deliver_batch(&batch)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(first.iter().all(|d| d.created));
    let calls = sim.counts().api_calls;
    assert_eq!(
        calls, 3,
        "composite (query, upsert: fails on new contacts), a phone search for the new senders, \
         composite (create contacts, upsert)"
    );

    let ana = sim
        .find("Contact", "WhatsApp_Id__c", "+491701234567")
        .unwrap();
    assert_eq!(ana["FirstName"], "Ana María");
    assert_eq!(ana["LastName"], "López");
    let bob = sim
        .find("Contact", "WhatsApp_Id__c", "+14155550123")
        .unwrap();
    assert_eq!(
        bob["LastName"], "+14155550123",
        "LastName is required: the number stands in"
    );

    let m = sim.find(OBJECT, "WA_Message_Id__c", "wamid.1").unwrap();
    assert_eq!(m["Id"], first[0].crm_id.as_str());
    // The console's deep link: the record in Lightning, on the session's instance.
    let link = sf.record_url(&first[0]).unwrap();
    assert!(
        link.ends_with(&format!("/lightning/r/{}/view", first[0].crm_id))
            && link.starts_with("http"),
        "{link}"
    );
    assert_eq!(sf.record_url(&Delivered::new("../../setup", true)), None);
    assert!(sf.usage().unwrap().sent > 0);
    assert_eq!(m["Contact__c"], ana["Id"]);
    assert_eq!(m["Size_Bytes__c"], 6542);
    assert_eq!(m["Duration_Seconds__c"], 3.2);
    assert_eq!(m["Received_At__c"], "2026-11-22T10:00:00.000Z");
    assert_eq!(m["Tags__c"], "urgent;vip");
    assert_eq!(m["Media_Type__c"], "voice");
    assert_eq!(m["Caption__c"], Value::Null);

    let again: Vec<Delivered> = sf
        .deliver_batch(&batch)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(again.iter().all(|d| !d.created));
    assert_eq!(again[0].crm_id, first[0].crm_id);
    assert_eq!(
        sim.counts().api_calls - calls,
        1,
        "known contacts: one composite call (query and upsert)"
    );
    assert_eq!(sim.records(OBJECT).len(), 3);
    assert_eq!(sim.records("Contact").len(), 2);
}

#[tokio::test]
async fn a_contact_salesforce_refuses_fails_only_that_senders_media() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    sf.deliver_batch(&[record("wamid.known", "+14155550123", None)])
        .await[0]
        .as_ref()
        .unwrap();
    // The admin made a field required on Contact: new contacts now fail.
    sim.add_field(
        "Contact",
        FieldDef {
            required: true,
            ..FieldDef::new("Region__c", "string")
        },
    );
    let results = sf
        .deliver_batch(&[
            record("wamid.a", "+14155550123", None),
            record("wamid.b", "+491701234567", Some("Ana")),
        ])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().contains("contact +491701234567"), "{e}");
    assert!(
        e.message()
            .contains("REQUIRED_FIELD_MISSING: Required fields are missing: [Region__c]"),
        "{e}"
    );
}

#[tokio::test]
async fn a_field_the_integration_user_cannot_see_fails_the_batch_with_its_name() {
    let sim = org().await;
    sim.add_field(
        OBJECT,
        FieldDef {
            visible: false,
            ..FieldDef::new("Caption__c", "textarea")
        },
    );
    let sf = connector(&config(&sim)).await;
    for r in sf
        .deliver_batch(&[record("wamid.1", "+14155550123", None)])
        .await
    {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(
            e.message()
                .contains("INVALID_FIELD: No such column 'Caption__c'"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn batches_over_200_go_in_several_calls() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    let batch: Vec<MediaRecord> = (0..250)
        .map(|i| {
            record(
                &format!("wamid.{i}"),
                &format!("+1415555{:04}", i % 220),
                None,
            )
        })
        .collect();
    for r in sf.deliver_batch(&batch).await {
        r.unwrap();
    }
    assert_eq!(sim.records(OBJECT).len(), 250);
    assert_eq!(sim.records("Contact").len(), 220);
    // Two chunks of ≤ 200, each with new senders: two composite calls each, and phone searches
    // for the new senders: the first chunk's 200 in two (a search query stays under 4,000
    // characters), the second chunk's 20 in one.
    assert_eq!(sim.counts().api_calls, 4 + 3);
}

#[tokio::test]
async fn a_record_salesforce_refuses_fails_only_its_own_job_with_the_rule_named() {
    let sim = org().await;
    let sf = connector(&config(&sim)).await;
    sf.deliver_batch(&[record("wamid.known", "+14155550123", None)])
        .await[0]
        .as_ref()
        .unwrap();
    sim.add_validation_rule(
        OBJECT,
        "WA_Message_Id__c",
        json!("wamid.refused-known"),
        "Media from this campaign is not accepted",
    );
    sim.add_validation_rule(
        OBJECT,
        "WA_Message_Id__c",
        json!("wamid.refused-new"),
        "Media from this campaign is not accepted",
    );
    let before = sim.counts().api_calls;
    let results = sf
        .deliver_batch(&[
            record("wamid.ok-known", "+14155550123", None),
            record("wamid.refused-known", "+14155550123", None),
            record("wamid.ok-new", "+491701234567", Some("Ana")),
            record("wamid.refused-new", "+491701234568", None),
        ])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[2].is_ok(), "{:?}", results[2]);
    for refused in [&results[1], &results[3]] {
        let e = refused.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent, "{e}");
        assert!(
            e.message().contains(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION: Media from this campaign is not accepted"
            ),
            "{e}"
        );
    }
    assert_eq!(
        sim.counts().api_calls - before,
        3,
        "composite, a phone search for the new senders, composite"
    );
    assert!(
        sim.find(OBJECT, "WA_Message_Id__c", "wamid.ok-new")
            .is_some()
    );
    assert!(
        sim.find(OBJECT, "WA_Message_Id__c", "wamid.refused-new")
            .is_none()
    );
    assert_eq!(
        sim.records("Contact").len(),
        3,
        "the refused record's new sender still got a Contact"
    );
}
