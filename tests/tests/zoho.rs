//! The real binary delivering into the Zoho simulator: check names the missing module, then the
//! missing fields, provision makes them; webhooks → each sender's Contact or Lead found however
//! its number is written (or a Contact made), one media record per media looked up to it, a Note
//! with the link and the file attached; erasure from the CLI removes a person's records and Notes
//! and keeps their Contact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, free_port, post_distinct_images, zoho_org, zoho_section,
};
use wa2crm_sandbox::graph::GraphSim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_media_land_on_their_contacts_and_erasure_removes_them() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let zoho = zoho_org().await;
    // A customer the sales team knows, their number written the German way, and a lead.
    let known = zoho.add_record(
        "Contacts",
        json!({"Last_Name": "Weiß", "Phone": "01511 2345678"}),
    );
    let lead = zoho.add_record(
        "Leads",
        json!({"Last_Name": "Lee", "Mobile": "+1 415-555-0101"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(
            dir.path(),
            port,
            &graph.url(),
            &zoho_section(&zoho.accounts_url()),
        ),
        port,
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(!ok && out.contains("Create New Module"), "{out}");
    zoho.add_module("WhatsApp_Media");
    let (ok, out) = d.cli(&["check"]);
    assert!(!ok && out.contains("has no field WA_Message_Id"), "{out}");
    let (ok, out) = d.cli(&["provision"]);
    assert!(
        ok && out.contains("create text field WhatsApp_Media.WA_Message_Id (no duplicates)"),
        "{out}"
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");
    d.restart().await;

    let senders = ["+4915112345678", "+14155550101", "+14155550102"];
    let n = 12;
    post_distinct_images(&d, &graph, "zo", n, &senders).await;
    d.wait_done(n).await;
    let records = zoho.records("WhatsApp_Media");
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r.values["WA_Message_Id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("wamid.zo.{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "one record per media");
    let to_known = records
        .iter()
        .filter(|r| r.values.get("Contact").and_then(|c| c["id"].as_str()) == Some(known.as_str()))
        .count();
    let to_lead = records
        .iter()
        .filter(|r| r.values.get("Lead").and_then(|c| c["id"].as_str()) == Some(lead.as_str()))
        .count();
    assert_eq!(
        (to_known, to_lead),
        (4, 4),
        "the known Contact and the Lead were found"
    );
    assert_eq!(
        zoho.records("Contacts").len(),
        2,
        "one Contact made for the third sender"
    );
    assert_eq!(zoho.records("Notes").len(), n);
    assert_eq!(zoho.attachments().len(), n, "every file attached");
    let first = records
        .iter()
        .find(|r| r.values["WA_Message_Id"] == "wamid.zo.0")
        .unwrap();
    assert_eq!(first.values["WA_Type"], "image");
    let link = first.values["WA_Link"].as_str().unwrap().to_owned();
    assert_eq!(
        reqwest::get(&link).await.unwrap().status(),
        200,
        "the link plays"
    );

    let (ok, out) = d.cli(&["erase", "--phone", "+4915112345678"]);
    assert!(ok, "{out}");
    assert_eq!(zoho.records("WhatsApp_Media").len(), n - 4);
    assert_eq!(zoho.records("Notes").len(), n - 4);
    assert_eq!(zoho.attachments().len(), n - 4);
    assert!(
        zoho.records("Contacts").iter().any(|c| c.id == known),
        "the Contact stays"
    );
}
