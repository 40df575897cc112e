//! Media of customers the CRMs already have lands on their records, on the real binary: a
//! HubSpot contact whose number was typed nationally, a Salesforce Lead, a Brazilian whose
//! WhatsApp id lacks the ninth digit her records have; a stranger gets new records. `status`
//! counts the matches; erasure and retention still find the media on the matched records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, distinct_image_webhook, eventually, free_port,
    hubspot_section, post_webhook, salesforce_org, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};

const HS_TOKEN: &str = "pat-na1-existing";
const JUERGEN: &str = "+4915123456789";
const ANA: &str = "+551187654321";
const SAM: &str = "+14155550199";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_lands_on_the_records_the_crms_already_have() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sf, salesforce) = salesforce_org(dir.path()).await;
    let hs_juergen = hs.add_record(
        "contacts",
        &[("firstname", "Jürgen"), ("mobilephone", "0151 23456789")],
    );
    let hs_ana = hs.add_record("contacts", &[("phone", "+55 11 98765-4321")]);
    let sf_lead = sf.add_record(
        "Lead",
        &[
            ("LastName", serde_json::json!("Weiß")),
            ("Company", serde_json::json!("Weiß GmbH")),
            ("Phone", serde_json::json!("+49 151 2345 6789")),
        ],
    );
    let sf_ana = sf.add_record(
        "Contact",
        &[
            ("LastName", serde_json::json!("Souza")),
            ("MobilePhone", serde_json::json!("+55 (11) 98765-4321")),
        ],
    );
    let port = free_port();
    let extra = format!(
        "[retention]\nimage = \"1h\"\n{}[connectors.hubspot.match]\ndefault_country = \"DE\"\n{salesforce}[connectors.salesforce.match]\ndefault_country = \"DE\"\n",
        hubspot_section(&hs.url(), &format!("token = \"{HS_TOKEN}\"")),
    );
    let mut d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    )
    .await;
    for (i, sender) in [JUERGEN, ANA, SAM].iter().enumerate() {
        let body = distinct_image_webhook(&graph, "ex", i, sender);
        assert_eq!(
            post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
            reqwest::StatusCode::OK
        );
    }
    eventually(
        Duration::from_secs(60),
        "three media delivered",
        async || d.status()["queue"]["counts"]["done"] == 3,
    )
    .await;

    // HubSpot: the existing contacts, stamped; a new one for the stranger.
    assert_eq!(
        hs.find("contacts", "whatsapp_id", JUERGEN).unwrap().id,
        hs_juergen
    );
    assert_eq!(hs.find("contacts", "whatsapp_id", ANA).unwrap().id, hs_ana);
    assert_eq!(hs.records("contacts").len(), 3);
    // Salesforce: Jürgen's media on his Lead, Ana's on her Contact, Sam a new Contact.
    let media = |id: &str| {
        sf.find("WhatsApp_Media__c", "WA_Message_Id__c", id)
            .unwrap()
    };
    assert_eq!(media("wamid.ex.0")["Lead__c"], serde_json::json!(sf_lead));
    assert_eq!(media("wamid.ex.1")["Contact__c"], serde_json::json!(sf_ana));
    assert!(sf.find("Contact", "WhatsApp_Id__c", SAM).is_some());
    assert_eq!(sf.records("Contact").len(), 2);

    let (_, out) = d.cli(&["status"]);
    assert!(
        out.contains("  senders found among existing records: 2"),
        "{out}"
    );

    // Erasure finds Jürgen's media on his contact and on his Lead; both records stay.
    let (ok, out) = d.cli(&["erase", "--phone", JUERGEN]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "WhatsApp_Media__c record(s) of Lead {sf_lead} deleted"
        )),
        "{out}"
    );
    assert!(
        sf.find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.ex.0")
            .is_none()
    );
    assert!(sf.find("Lead", "Id", &sf_lead).is_some());
    let contact = hs.find("contacts", "whatsapp_id", JUERGEN).unwrap();
    assert_eq!(contact.id, hs_juergen);
    assert!(
        !contact.properties.contains_key("wa_media_url"),
        "{contact:?}"
    );

    // Retention finds Ana's media on her matched records.
    d.terminate();
    let config = std::fs::read_to_string(&d.config_path)
        .unwrap()
        .replace("image = \"1h\"", "image = \"1s\"");
    std::fs::write(&d.config_path, config).unwrap();
    let mut gone = false;
    for _ in 0..100 {
        let (ok, out) = d.cli(&["retention"]);
        assert!(ok, "{out}");
        if out.contains("wamid.ex.1") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "retention never took Ana's media");
    let ana = hs.find("contacts", "whatsapp_id", ANA).unwrap();
    assert!(!ana.properties.contains_key("wa_media_url"), "{ana:?}");
}
