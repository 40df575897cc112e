//! Tokens, limits, check, provision, erasure, retention and consent against the simulator.

use std::sync::atomic::Ordering;

use serde_json::json;
use wa2crm_core::{Connector, Phone};
use wa2crm_sandbox::zoho::{ZohoSim, ZohoSimConfig};

use super::*;

#[tokio::test]
async fn calls_go_to_the_api_domain_the_token_names_with_one_refresh() {
    let w = world().await;
    let batch: Vec<MediaRecord> = (0..20)
        .map(|i| media(&format!("wamid.{i}"), "+4915112345678"))
        .collect();
    let (a, b) = tokio::join!(w.zoho.deliver(&batch[..10]), w.zoho.deliver(&batch[10..]));
    assert!(a.iter().chain(&b).all(Result::is_ok));
    let c = w.sim.counts();
    assert_eq!(c.refreshes, 1, "one token for every call");
    assert!(c.max_in_flight <= 5, "{c:?}");
}

#[tokio::test]
async fn a_dead_refresh_token_pauses_with_what_to_do() {
    let w = world().await;
    w.sim.revoke_refresh_token();
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    let e = got[0].as_ref().unwrap_err();
    assert!(e.message().contains("invalid_code"), "{}", e.message());
    let paused = w.zoho.api.engine.pause.check().unwrap_err();
    assert!(
        paused.message().contains("Make a new one"),
        "{}",
        paused.message()
    );
}

#[tokio::test]
async fn the_credit_reserve_pauses_deliveries() {
    let mut c = ZohoSimConfig::new(CLIENT, SECRET, REFRESH);
    c.credits_per_day = 1000;
    let w = world_on(org_with(c).await, json!({})).await;
    // Five calls deliver the first media; the last leaves 200 of 1000, the 20 % reserve.
    w.sim.spend_credits(795);
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    assert!(
        got.iter().all(Result::is_ok),
        "the first calls are below the reserve"
    );
    let e = w.zoho.api.engine.pause.check().unwrap_err();
    assert!(e.message().contains("daily_reserve"), "{}", e.message());
    let spent = w.sim.counts().api_calls;
    let got = w.zoho.deliver(&[media("wamid.2", "+4915112345678")]).await;
    assert!(got[0].is_err());
    assert_eq!(w.sim.counts().api_calls, spent, "nothing sent while paused");
}

#[tokio::test]
async fn a_429_with_credits_left_is_waited_out() {
    let w = world().await;
    // Other integrations hold every concurrent call for the next two calls.
    w.sim.take_slots_for(2);
    let got = w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    assert_eq!(w.sim.counts().over_concurrency, 2);
    assert!(w.zoho.api.engine.rules.credits_left.load(Ordering::Acquire) > 0);
    assert!(w.zoho.api.engine.pause.check().is_ok(), "no pause for it");
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 1);
}

#[tokio::test]
async fn check_names_each_problem_and_provision_fixes_the_fields() {
    let sim = ZohoSim::start(ZohoSimConfig::new(CLIENT, SECRET, REFRESH))
        .await
        .unwrap();
    let config = json!({"consent_field": "WA_Consent"});
    let w = world_on(sim, config.clone()).await;
    let report = w.zoho.check().await.unwrap();
    assert!(
        report
            .reached
            .as_deref()
            .unwrap()
            .contains("Acme (simulated)")
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("Create New Module")),
        "{report:?}"
    );
    assert!(
        w.zoho
            .provision(false)
            .await
            .unwrap_err()
            .message()
            .contains("Create New Module")
    );

    w.sim.add_module("WhatsApp_Media");
    let report = w.zoho.check().await.unwrap();
    let missing: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.contains("run `wa2crm provision`"))
        .collect();
    // The module's 4 own fields and 4 mapped ones, contact_key and consent_field on Contacts.
    assert_eq!(missing.len(), 10, "{report:#?}");
    let plan = w.zoho.provision(true).await.unwrap();
    assert_eq!(plan.actions.len(), 10);
    assert!(
        w.sim
            .module("WhatsApp_Media")
            .unwrap()
            .field("WA_Message_Id")
            .is_none(),
        "a dry run"
    );
    w.zoho.provision(false).await.unwrap();
    let report = w.zoho.check().await.unwrap();
    assert!(report.problems.is_empty(), "{report:#?}");
    let key = w
        .sim
        .module("WhatsApp_Media")
        .unwrap()
        .field("WA_Message_Id")
        .cloned()
        .unwrap();
    assert!(key.unique);
    assert!(w.zoho.deliver(&[media("wamid.1", "+4915112345678")]).await[0].is_ok());

    // A field of the wrong type, and a key that allows duplicates, are each named.
    w.sim.add_field(
        "WhatsApp_Media",
        wa2crm_sandbox::zoho::Field::new("WA_Message_Id", "text"),
    );
    w.sim.add_field(
        "WhatsApp_Media",
        wa2crm_sandbox::zoho::Field::new("WA_Received", "integer"),
    );
    let report = w.zoho.check().await.unwrap();
    assert_eq!(report.problems.len(), 2, "{report:#?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("Do not allow duplicate values"))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("WA_Received is integer"))
    );
}

#[tokio::test]
async fn erasure_removes_the_media_and_notes_and_keeps_the_contact() {
    let w = world_on(org().await, json!({"note": true, "attach": true})).await;
    let ada = media("wamid.1", "+4915112345678");
    let other = media("wamid.2", "+4915198765432");
    ids(w
        .zoho
        .deliver(&[ada.clone(), media("wamid.3", "+4915112345678"), other])
        .await);
    // A note a salesperson wrote stays.
    let contact = w.sim.records("Contacts")[0].id.clone();
    w.sim.add_record("Notes", json!({"Note_Title": "Called back", "Parent_Id": {"module": {"api_name": "Contacts"}, "id": contact}}));
    let dry = w.zoho.erase(&ada.sender, true).await.unwrap();
    assert!(dry.removed[0].contains("would delete 2"), "{dry:?}");
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 3);
    w.zoho.erase(&ada.sender, false).await.unwrap();
    let left = w.sim.records("WhatsApp_Media");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].values["WA_Message_Id"], "wamid.2");
    let notes: Vec<String> = w
        .sim
        .records("Notes")
        .iter()
        .map(|n| n.values["Note_Title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notes, ["WhatsApp video · wamid.2", "Called back"]);
    assert_eq!(w.sim.attachments().len(), 1);
    assert_eq!(w.sim.records("Contacts").len(), 2, "the Contacts stay");
}

#[tokio::test]
async fn retention_deletes_or_clears_one_media() {
    let w = world_on(org().await, json!({"note": true, "attach": true})).await;
    let (a, b) = (
        media("wamid.1", "+4915112345678"),
        media("wamid.2", "+4915112345678"),
    );
    ids(w.zoho.deliver(&[a.clone(), b.clone()]).await);
    w.zoho
        .expire(std::slice::from_ref(&a), false, false)
        .await
        .unwrap();
    let records = w.sim.records("WhatsApp_Media");
    assert_eq!(records.len(), 2);
    assert!(
        !records[0].values.contains_key("WA_Link"),
        "the link is cleared"
    );
    assert!(records[1].values.contains_key("WA_Link"));
    assert_eq!(w.sim.attachments().len(), 1);
    let notes = w.sim.records("Notes");
    assert!(
        notes[0].values["Note_Content"]
            .as_str()
            .unwrap()
            .contains("removed")
    );
    assert!(
        !notes[0].values["Note_Content"]
            .as_str()
            .unwrap()
            .contains("https://")
    );
    w.zoho
        .expire(std::slice::from_ref(&b), true, false)
        .await
        .unwrap();
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 1);
    assert_eq!(w.sim.records("Notes").len(), 1);
}

#[tokio::test]
async fn consent_is_the_contacts_checkbox() {
    let sim = org().await;
    let ada = sim.add_record(
        "Contacts",
        json!({"Last_Name": "Ada", "Mobile": "+4915112345678"}),
    );
    let w = world_on(sim, json!({"consent_field": "WA_Consent"})).await;
    let p = Phone::parse("+4915112345678").unwrap();
    assert_eq!(w.zoho.consent(&p).await.unwrap(), Some(false));
    w.sim.set_value(&ada, "WA_Consent", json!(true));
    assert_eq!(w.zoho.consent(&p).await.unwrap(), Some(true));
    let nobody = Phone::parse("+4915100000000").unwrap();
    assert_eq!(w.zoho.consent(&nobody).await.unwrap(), None);
}

#[tokio::test]
async fn check_names_a_missing_scope() {
    let mut c = ZohoSimConfig::new(CLIENT, SECRET, REFRESH);
    c.scopes.retain(|s| s != "ZohoCRM.coql.READ");
    let w = world_on(org_with(c).await, json!({})).await;
    let report = w.zoho.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("OAUTH_SCOPE_MISMATCH") && p.contains("ZohoCRM.coql.READ")),
        "{report:#?}"
    );
    assert!(report.reached.is_some(), "the credentials themselves work");
}

#[tokio::test]
async fn without_leads_the_module_needs_no_lead_lookup() {
    let sim = ZohoSim::start(ZohoSimConfig::new(CLIENT, SECRET, REFRESH))
        .await
        .unwrap();
    sim.add_module("WhatsApp_Media");
    let w = world_on(sim, json!({"match": {"leads": false}, "note": true})).await;
    w.zoho.provision(false).await.unwrap();
    assert!(
        w.sim
            .module("WhatsApp_Media")
            .unwrap()
            .field("Lead")
            .is_none()
    );
    let report = w.zoho.check().await.unwrap();
    assert!(report.problems.is_empty(), "{report:#?}");
    let (a, b) = (
        media("wamid.1", "+4915112345678"),
        media("wamid.2", "+4915112345678"),
    );
    let got = w.zoho.deliver(&[a.clone(), b.clone()]).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    w.zoho
        .expire(std::slice::from_ref(&a), true, false)
        .await
        .unwrap();
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 1);
    w.zoho.erase(&b.sender, false).await.unwrap();
    assert!(w.sim.records("WhatsApp_Media").is_empty());
    assert!(w.sim.records("Notes").is_empty());
}
