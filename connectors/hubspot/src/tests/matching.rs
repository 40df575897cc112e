//! Media of a customer the portal already has lands on that contact, found by number in any
//! format, and the contact gets `contact_key` so no later media searches again; no match
//! creates one (or, with `create = false`, waits); several matches are decided by the rule.

use super::*;

fn search_calls(sim: &HubSpotSim) -> u64 {
    sim.counts()
        .calls
        .iter()
        .filter(|(route, _)| route.ends_with(" search"))
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test]
async fn an_existing_contact_is_found_by_number_and_stamped() {
    let s = provisioned(json!({"match": {"default_country": "DE"}})).await;
    let existing = s.sim.add_record(
        "contacts",
        &[
            ("firstname", "Jürgen"),
            ("lastname", "Weiß"),
            ("mobilephone", "0151 1234 5678"),
            ("hubspot_owner_id", "77"),
        ],
    );
    let delivered = ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    assert_eq!(s.sim.records("contacts").len(), 1, "no second contact");
    let contact = s
        .sim
        .find("contacts", "whatsapp_id", "+4915112345678")
        .unwrap();
    assert_eq!(contact.id, existing, "stamped with contact_key");
    assert_eq!(contact.properties["firstname"], "Jürgen", "the name kept");
    assert!(contact.properties.contains_key("wa_media_url"));
    assert_ne!(delivered[0].crm_id, "");
    assert_eq!(search_calls(&s.sim), 1);
    // Later media go by key: no search.
    ok(s.hs.deliver(&[record("wamid.2", "+4915112345678")]).await);
    assert_eq!(search_calls(&s.sim), 1);
    assert_eq!(
        s.state
            .get_state("hs", keys::MATCHED)
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
}

/// Many senders, one search; WhatsApp's quirks (Brazil's ninth digit) and custom number
/// properties count; strangers get new contacts.
#[tokio::test]
async fn a_batch_of_senders_costs_one_search() {
    let s = provisioned(
        json!({"match": {"fields": ["phone", "mobilephone", "hs_whatsapp_phone_number"]}}),
    )
    .await;
    let br = s
        .sim
        .add_record("contacts", &[("phone", "+55 11 98765-4321")]);
    let wa = s
        .sim
        .add_record("contacts", &[("hs_whatsapp_phone_number", "+14155550134")]);
    let batch = [
        record("wamid.a", "+551187654321"),
        record("wamid.b", "+14155550134"),
        record("wamid.c", "+4915199999999"),
    ];
    ok(s.hs.deliver(&batch).await);
    assert_eq!(search_calls(&s.sim), 1);
    assert_eq!(s.sim.records("contacts").len(), 3, "one new contact only");
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+551187654321")
            .unwrap()
            .id,
        br
    );
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+14155550134")
            .unwrap()
            .id,
        wa
    );
}

#[tokio::test]
async fn several_candidates_are_decided_by_the_rule() {
    let s = provisioned(json!({})).await;
    let _old = s
        .sim
        .add_record("contacts", &[("phone", "+49 151 12345678")]);
    let owned = s.sim.add_record(
        "contacts",
        &[("phone", "+4915112345678"), ("hubspot_owner_id", "7")],
    );
    ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+4915112345678")
            .unwrap()
            .id,
        owned,
        "the owned one"
    );
    assert_eq!(
        s.state
            .get_state("hs", keys::MATCHED_AMONG_SEVERAL)
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    let last = s
        .state
        .get_state("hs", keys::LAST_SEVERAL)
        .await
        .unwrap()
        .unwrap();
    assert!(
        last.contains("2 contacts") && !last.contains("12345678"),
        "{last}"
    );

    let skip = provisioned(json!({"match": {"several": "skip"}})).await;
    skip.sim
        .add_record("contacts", &[("phone", "+4915112345678")]);
    skip.sim
        .add_record("contacts", &[("mobilephone", "+4915112345678")]);
    ok(skip
        .hs
        .deliver(&[record("wamid.1", "+4915112345678")])
        .await);
    assert_eq!(
        skip.sim.records("contacts").len(),
        3,
        "a new one: none taken"
    );
}

#[tokio::test]
async fn without_create_an_unknown_sender_waits_as_unmatched() {
    let s = provisioned(json!({"match": {"create": false}})).await;
    let results = s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await;
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(
        e.message()
            .starts_with("unmatched: no HubSpot contact has the number +4915112345678"),
        "{e}"
    );
    assert!(e.message().contains("replay"), "{e}");
    assert!(s.sim.records("contacts").is_empty());
    // Once an admin creates the contact, the replay delivers onto it.
    let made = s
        .sim
        .add_record("contacts", &[("phone", "+49 151 12345678")]);
    ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+4915112345678")
            .unwrap()
            .id,
        made
    );
}

/// A contact wa2crm created a moment ago is not searchable yet; its unique key still keeps a
/// second one from being made.
#[tokio::test]
async fn the_search_lag_makes_no_duplicate() {
    let s = provisioned(json!({})).await;
    s.sim.set_search_lag(Duration::from_secs(3600));
    ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    ok(s.hs.deliver(&[record("wamid.2", "+4915112345678")]).await);
    assert_eq!(s.sim.records("contacts").len(), 1);
}

#[tokio::test]
async fn matching_off_finds_by_key_only() {
    let s = provisioned(json!({"match": {"enabled": false}})).await;
    s.sim.add_record("contacts", &[("phone", "+4915112345678")]);
    ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    assert_eq!(search_calls(&s.sim), 0);
    assert_eq!(s.sim.records("contacts").len(), 2);
}

#[tokio::test]
async fn check_names_missing_number_properties_and_says_how_it_matches() {
    let s = provisioned(json!({"match": {"fields": ["phone", "wa_private_number"]}})).await;
    let report = s.hs.check().await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.starts_with(
            "connectors.hs.match.fields: contacts have no property \"wa_private_number\""
        )),
        "{report:?}"
    );
    let s = provisioned(json!({"match": {"default_country": "AT", "create": false}})).await;
    let report = s.hs.check().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert!(
        report.notes[0].contains("by phone, mobilephone, hs_whatsapp_phone_number")
            && report.notes[0].contains("read as AT")
            && report.notes[0].contains("waits, dead-lettered as unmatched"),
        "{report:?}"
    );
}

/// A contact matched and stamped, then deleted in HubSpot: the next media looks for the sender
/// again (here: another contact holding the number) instead of failing on the gone one.
#[tokio::test]
async fn a_matched_contact_deleted_since_is_looked_for_again() {
    let s = provisioned(json!({})).await;
    let first = s.sim.add_record("contacts", &[("phone", "+4915112345678")]);
    ok(s.hs.deliver(&[record("wamid.1", "+4915112345678")]).await);
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+4915112345678")
            .unwrap()
            .id,
        first
    );
    s.sim.remove_record("contacts", &first);
    let second = s
        .sim
        .add_record("contacts", &[("mobilephone", "+49 151 12345678")]);
    ok(s.hs.deliver(&[record("wamid.2", "+4915112345678")]).await);
    assert_eq!(
        s.sim
            .find("contacts", "whatsapp_id", "+4915112345678")
            .unwrap()
            .id,
        second
    );
}
