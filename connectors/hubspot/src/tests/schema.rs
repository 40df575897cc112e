//! check and provision, scopes and tokens, the consent checkbox.

use super::*;

#[tokio::test]
async fn check_names_every_problem_and_provision_fixes_what_it_can_twice_safely() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property(
        "contacts",
        PropertyDef::new("whatsapp_id", "string", "text"),
    );
    sim.define_property(
        "contacts",
        PropertyDef::new("wa_media_size", "string", "text"),
    );
    sim.set_scopes(&[
        "crm.objects.contacts.read",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.objects.contacts.write",
    ]);
    let c = config(&sim, json!({}));
    let s = build(sim, c).await;
    let report = s.hs.check().await.unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains("contacts.whatsapp_id: does not have unique values"),
        "{text}"
    );
    assert!(
        text.contains("contacts.wa_media_size: is of type string"),
        "{text}"
    );
    assert!(
        text.contains("contacts.wa_media_url: missing; `wa2crm provision` creates it"),
        "{text}"
    );
    assert!(text.contains("notes.wa_message_id: missing"), "{text}");
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.starts_with("connectors.hs: ")),
        "{text}"
    );

    let dry = s.hs.provision(true).await.unwrap();
    assert!(
        dry.actions
            .iter()
            .any(|a| a == "create contacts.wa_media_url (string/text)"),
        "{:?}",
        dry.actions
    );
    assert!(
        s.sim.property("contacts", "wa_media_url").is_none(),
        "a dry run creates nothing"
    );
    let plan = s.hs.provision(false).await.unwrap();
    assert!(
        plan.actions
            .iter()
            .any(|a| a == "create notes.wa_message_id (string/text, unique)"),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| a.starts_with("left alone contacts.wa_media_size")),
        "{:?}",
        plan.actions
    );
    assert!(s.sim.property("notes", "wa_message_id").unwrap().unique);
    let twice = s.hs.provision(false).await.unwrap();
    assert!(
        twice.actions.iter().all(|a| a.starts_with("left alone")),
        "{:?}",
        twice.actions
    );
    let report = s.hs.check().await.unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}

#[tokio::test]
async fn check_reports_missing_scopes_and_a_bad_token() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.set_scopes(&["crm.objects.contacts.read", "crm.schemas.contacts.read"]);
    let c = config(&sim, json!({}));
    let s = build(sim, c).await;
    let text = s.hs.check().await.unwrap().problems.join("\n");
    assert!(
        text.contains("lacks the scope crm.objects.contacts.write"),
        "{text}"
    );

    let c = config(&s.sim, json!({"token": "pat-na1-wrong"}));
    let bad = HubSpotFactory
        .build("bad", &c, &ConnectorContext::new(s.state.clone()))
        .await
        .unwrap();
    let text = bad.check().await.unwrap().problems.join("\n");
    assert!(
        text.contains("HubSpot rejects the credentials (INVALID_AUTHENTICATION"),
        "{text}"
    );
    assert!(text.contains("private app token"), "{text}");
}

#[tokio::test]
async fn the_contacts_consent_checkbox_says_whether_media_may_be_kept() {
    let s = provisioned(json!({"consent_field": "wa_media_consent"})).await;
    let prop = s
        .sim
        .property("contacts", "wa_media_consent")
        .expect("provisioned");
    assert_eq!(
        (prop.kind.as_str(), prop.field_type.as_str()),
        ("bool", "booleancheckbox")
    );
    assert!(s.hs.check().await.unwrap().problems.is_empty());
    let ana = Phone::parse("+491701234567").unwrap();
    assert_eq!(
        s.hs.consent(&ana).await.unwrap(),
        Some(false),
        "unknown: no consent"
    );
    ok(s.hs.deliver(&[record("wamid.1", "+491701234567")]).await);
    assert_eq!(s.hs.consent(&ana).await.unwrap(), Some(false), "not ticked");
    let contact = s
        .sim
        .find("contacts", "whatsapp_id", "+491701234567")
        .unwrap();
    s.sim
        .set_property("contacts", &contact.id, "wa_media_consent", "true");
    assert_eq!(s.hs.consent(&ana).await.unwrap(), Some(true));
    let plain = provisioned(json!({})).await;
    assert_eq!(plain.hs.consent(&ana).await.unwrap(), None);
}

/// HubSpot requires options on an enumeration: the tags checkbox is created with one per tag
/// rule, or with a placeholder when there are none, and check does not ask for either.
#[tokio::test]
async fn provision_creates_the_tags_checkbox_with_the_rules_as_options() {
    for (rules, expected) in [
        (
            vec!["urgent".to_owned(), "product-issue".to_owned()],
            vec!["urgent", "product-issue"],
        ),
        (vec![], vec![crate::schema::NO_TAGS_OPTION]),
    ] {
        let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
            .await
            .unwrap();
        let c = config(&sim, json!({}));
        let state = Arc::new(MemoryStateStore::default());
        let hs = HubSpotFactory
            .build(
                "hs",
                &c,
                &ConnectorContext::new(state).with_tag_names(rules.clone()),
            )
            .await
            .unwrap();
        hs.provision(false).await.unwrap();
        let tags = sim.property("contacts", "wa_media_tags").unwrap();
        assert_eq!(
            (tags.kind.as_str(), tags.options.clone()),
            (
                "enumeration",
                expected.iter().map(|o| o.to_string()).collect()
            ),
            "rules {rules:?}"
        );
        assert_eq!(hs.check().await.unwrap().problems, Vec::<String>::new());
    }
}
