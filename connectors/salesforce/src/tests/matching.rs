//! Media of a customer the org already has lands on that Contact (found by number, stamped
//! with `contact_key`), or on their Lead when they are only a Lead; strangers get a Contact, or
//! wait with `create = false`; a remembered Lead that is deleted is looked for again.

use super::writes_support::*;
use super::*;
use wa2crm_sandbox::salesforce::FieldDef;

/// The org of `writes_support`, with the Lead lookup `provision` makes.
async fn org_with_leads() -> SalesforceSim {
    let sim = org().await;
    sim.add_field(
        OBJECT,
        FieldDef {
            reference_to: Some("Lead".into()),
            ..FieldDef::new("Lead__c", "reference")
        },
    );
    sim.set_search_lag(Duration::ZERO);
    sim
}

async fn connector_with(
    sim: &SalesforceSim,
    matching: Value,
) -> (Salesforce, Arc<MemoryStateStore>) {
    let mut c = config(sim);
    c["match"] = matching;
    let state = Arc::new(MemoryStateStore::default());
    let context = ConnectorContext::new(state.clone());
    let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
        .await
        .unwrap();
    (sf, state)
}

#[tokio::test]
async fn an_existing_contact_is_found_by_number_and_stamped() {
    let sim = org_with_leads().await;
    let existing = sim.add_record(
        "Contact",
        &[
            ("LastName", json!("Weiß")),
            ("MobilePhone", json!("0151 12345678")),
            ("OwnerId", json!("005owner")),
        ],
    );
    let (sf, state) = connector_with(&sim, json!({"default_country": "DE"})).await;
    let results = sf
        .deliver_batch(&[record("wamid.1", "+4915112345678", Some("J W"))])
        .await;
    results[0].as_ref().unwrap();
    assert_eq!(sim.records("Contact").len(), 1, "no second Contact");
    let media = sim.find(OBJECT, "WA_Message_Id__c", "wamid.1").unwrap();
    assert_eq!(media["Contact__c"], json!(existing));
    let contact = sim.find("Contact", "Id", &existing).unwrap();
    assert_eq!(contact["WhatsApp_Id__c"], "+4915112345678", "stamped");
    assert_eq!(contact["LastName"], "Weiß", "what the CRM holds stays");
    assert_eq!(
        state
            .get_state("sf", keys::MATCHED)
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    // Later media go by key: one call, no search.
    let before = sim.counts().api_calls;
    sf.deliver_batch(&[record("wamid.2", "+4915112345678", None)])
        .await[0]
        .as_ref()
        .unwrap();
    assert_eq!(sim.counts().api_calls - before, 1);
}

#[tokio::test]
async fn a_sender_who_is_only_a_lead_gets_the_media_on_the_lead() {
    let sim = org_with_leads().await;
    let lead = sim.add_record(
        "Lead",
        &[
            ("LastName", json!("Lead")),
            ("Company", json!("Acme")),
            ("Phone", json!("+55 11 98765-4321")),
        ],
    );
    // A converted Lead is its Contact now, and is no candidate.
    sim.add_record(
        "Lead",
        &[
            ("LastName", json!("Old")),
            ("Company", json!("Acme")),
            ("Phone", json!("+1 415 555 0134")),
            ("IsConverted", json!(true)),
        ],
    );
    let (sf, state) = connector_with(&sim, json!({})).await;
    let results = sf
        .deliver_batch(&[
            record("wamid.br", "+551187654321", None),
            record("wamid.us", "+14155550134", None),
        ])
        .await;
    for r in &results {
        r.as_ref().unwrap();
    }
    let media = sim.find(OBJECT, "WA_Message_Id__c", "wamid.br").unwrap();
    assert_eq!(media["Lead__c"], json!(lead));
    assert!(media["Contact__c"].is_null(), "{media:?}");
    assert_eq!(
        sim.records("Contact").len(),
        1,
        "a Contact only for the stranger"
    );
    assert!(
        state
            .get_state("sf", "match:+551187654321")
            .await
            .unwrap()
            .is_some_and(|v| v.starts_with("Lead:"))
    );
    // Remembered: the next media needs no search.
    let before = sim.counts().api_calls;
    sf.deliver_batch(&[record("wamid.br2", "+551187654321", None)])
        .await[0]
        .as_ref()
        .unwrap();
    assert_eq!(sim.counts().api_calls - before, 1);
    assert_eq!(
        sim.find(OBJECT, "WA_Message_Id__c", "wamid.br2").unwrap()["Lead__c"],
        json!(lead)
    );
}

#[tokio::test]
async fn without_create_a_stranger_waits_as_unmatched() {
    let sim = org_with_leads().await;
    let (sf, _) = connector_with(&sim, json!({"create": false})).await;
    let results = sf
        .deliver_batch(&[record("wamid.1", "+4915112345678", None)])
        .await;
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(
        e.message()
            .starts_with("unmatched: no Salesforce Contact or Lead has the number +4915112345678"),
        "{e}"
    );
    assert!(sim.records("Contact").is_empty());
    assert!(sim.records(OBJECT).is_empty());
}

#[tokio::test]
async fn several_contacts_are_decided_by_the_rule() {
    let sim = org_with_leads().await;
    sim.add_record(
        "Contact",
        &[
            ("LastName", json!("A")),
            ("Phone", json!("+49 151 12345678")),
        ],
    );
    let owned = sim.add_record(
        "Contact",
        &[
            ("LastName", json!("B")),
            ("Phone", json!("+4915112345678")),
            ("OwnerId", json!("005x")),
        ],
    );
    let (sf, state) = connector_with(&sim, json!({})).await;
    sf.deliver_batch(&[record("wamid.1", "+4915112345678", None)])
        .await[0]
        .as_ref()
        .unwrap();
    assert_eq!(
        sim.find(OBJECT, "WA_Message_Id__c", "wamid.1").unwrap()["Contact__c"],
        json!(owned)
    );
    assert_eq!(
        state
            .get_state("sf", keys::MATCHED_AMONG_SEVERAL)
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
}

/// A Lead remembered for a sender and deleted since: the next try looks for the sender again.
#[tokio::test]
async fn a_remembered_lead_that_is_gone_is_forgotten() {
    let sim = org_with_leads().await;
    let (sf, state) = connector_with(&sim, json!({})).await;
    state
        .put_state("sf", "match:+4915112345678", "Lead:00Qsim000000009999AAA")
        .await
        .unwrap();
    let results = sf
        .deliver_batch(&[record("wamid.1", "+4915112345678", None)])
        .await;
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(
        state
            .get_state("sf", "match:+4915112345678")
            .await
            .unwrap()
            .is_none()
    );
    // The retry finds nobody and creates the Contact.
    sf.deliver_batch(&[record("wamid.1", "+4915112345678", None)])
        .await[0]
        .as_ref()
        .unwrap();
    assert_eq!(sim.records("Contact").len(), 1);
}

/// A Lead-only sender's task goes to the Lead, for the Lead's owner.
#[tokio::test]
async fn a_lead_only_senders_task_goes_to_the_lead() {
    let sim = org_with_leads().await;
    sim.add_field("Task", FieldDef::new("WA_Message_Id__c", "string"));
    let lead = sim.add_record(
        "Lead",
        &[
            ("LastName", json!("Lead")),
            ("Company", json!("Acme")),
            ("Phone", json!("+4915112345678")),
            ("OwnerId", json!("005leadowner")),
        ],
    );
    let mut c = config(&sim);
    c["task"] = json!({"due_hours": 24});
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
        .await
        .unwrap();
    sf.deliver_batch(&[record("wamid.1", "+4915112345678", None)])
        .await[0]
        .as_ref()
        .unwrap();
    let task = sim.find("Task", "WA_Message_Id__c", "wamid.1").unwrap();
    assert_eq!(task["WhoId"], json!(lead));
    assert_eq!(task["OwnerId"], "005leadowner");
}

/// Erasure finds a Lead-only sender's media through the Lead, and forgets the match.
#[tokio::test]
async fn erasure_finds_the_media_on_a_matched_lead() {
    let sim = org_with_leads().await;
    let lead = sim.add_record(
        "Lead",
        &[
            ("LastName", json!("Lead")),
            ("Company", json!("Acme")),
            ("Phone", json!("+4915112345678")),
        ],
    );
    let (sf, state) = connector_with(&sim, json!({})).await;
    for r in sf
        .deliver_batch(&[
            record("wamid.1", "+4915112345678", None),
            record("wamid.2", "+4915112345678", None),
        ])
        .await
    {
        r.unwrap();
    }
    let subject = wa2crm_core::Phone::parse("+4915112345678").unwrap();
    let report = sf.erase_person(&subject, false).await.unwrap();
    assert!(
        report
            .removed
            .iter()
            .any(|l| l == &format!("2 {OBJECT} record(s) of Lead {lead} deleted")),
        "{report:?}"
    );
    assert!(sim.records(OBJECT).is_empty());
    assert!(sim.find("Lead", "Id", &lead).is_some(), "the Lead stays");
    assert!(
        state
            .get_state("sf", "match:+4915112345678")
            .await
            .unwrap()
            .is_none()
    );
}
