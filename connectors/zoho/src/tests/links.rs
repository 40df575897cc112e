//! The console's links to the Contact or Lead a media is on (crates: connectors/zoho/src/org.rs).

use super::*;
use wa2crm_core::{Delivered, StateStore};

/// The simulator's org (crates/sandbox/src/zoho/settings.rs).
const DOMAIN_NAME: &str = "org60000001";

async fn linking(sim: ZohoSim) -> World {
    let mut w = world_on(sim, json!({})).await;
    w.zoho.org.set_web_host("crm.zoho.eu");
    w
}

#[tokio::test]
async fn a_media_links_to_its_contact_or_lead_and_a_restart_remembers_the_org() {
    let w = linking(org().await).await;
    let lead = w.sim.add_record(
        "Leads",
        json!({"Last_Name": "Lead", "Phone": "+4915199999999"}),
    );
    let guess = Delivered {
        contact: Some("Contacts:1".into()),
        ..Delivered::new("1", true)
    };
    assert_eq!(w.zoho.record_url(&guess), None, "no org known yet");

    let got = w
        .zoho
        .deliver(&[
            media("wamid.1", "+4915112345678"),
            media("wamid.2", "+4915199999999"),
        ])
        .await;
    let got: Vec<Delivered> = got.into_iter().map(Result::unwrap).collect();
    let contact = &w.sim.records("Contacts")[0].id;
    assert_eq!(
        got[0].contact.as_deref(),
        Some(&*format!("Contacts:{contact}"))
    );
    let links: Vec<_> = got.iter().map(|d| w.zoho.record_url(d)).collect();
    assert_eq!(
        links,
        [
            Some(format!(
                "https://crm.zoho.eu/crm/{DOMAIN_NAME}/tab/Contacts/{contact}"
            )),
            Some(format!(
                "https://crm.zoho.eu/crm/{DOMAIN_NAME}/tab/Leads/{lead}"
            )),
        ]
    );
    // Asked once: a further media of a known sender is its upsert alone.
    let before = w.sim.counts().api_calls;
    w.zoho
        .deliver(&[media("wamid.3", "+4915112345678")])
        .await
        .into_iter()
        .for_each(|r| drop(r.unwrap()));
    assert_eq!(w.sim.counts().api_calls - before, 1);

    // Ids that are not Zoho's, or another module, make no link.
    for hostile in ["Contacts:1/../../settings", "Accounts:1", "Contacts:", "1"] {
        let d = Delivered {
            contact: Some(hostile.into()),
            ..Delivered::new("1", true)
        };
        assert_eq!(w.zoho.record_url(&d), None, "{hostile}");
    }
    assert_eq!(w.zoho.record_url(&Delivered::new("1", true)), None);

    // A restarted daemon links at once, without asking.
    let context = ConnectorContext::new(w.state.clone());
    let mut again = Zoho::new("zoho", table(&w.sim, json!({})), &context)
        .await
        .unwrap();
    again.org.set_web_host("crm.zoho.eu");
    assert_eq!(again.record_url(&got[0]), links[0]);
    let kept = w.state.get_state("zoho", "org_web_app").await.unwrap();
    assert!(kept.unwrap().contains(DOMAIN_NAME));
    // Other credentials open another org.
    let mut other = Zoho::new(
        "zoho",
        table(&w.sim, json!({"client_id": "1000.OTHER"})),
        &context,
    )
    .await
    .unwrap();
    other.org.set_web_host("crm.zoho.eu");
    assert_eq!(other.record_url(&got[0]), None);
}

/// Without `ZohoCRM.org.READ` there are no links, and deliveries go on: the look-up is the one
/// call whose scope refusal pauses nothing.
#[tokio::test]
async fn without_the_org_scope_media_is_delivered_without_links() {
    let mut c = ZohoSimConfig::new(CLIENT, SECRET, REFRESH);
    c.scopes.retain(|s| s != "ZohoCRM.org.READ");
    let w = linking(org_with(c).await).await;
    for id in ["wamid.1", "wamid.2"] {
        let got = w.zoho.deliver(&[media(id, "+4915112345678")]).await;
        let d = got.into_iter().next().unwrap().unwrap();
        assert!(d.contact.is_some());
        assert_eq!(w.zoho.record_url(&d), None);
    }
    assert_eq!(w.sim.records("WhatsApp_Media").len(), 2, "still delivering");
}
