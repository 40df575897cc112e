use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "pat-na1-sim";

async fn post(
    sim: &HubSpotSim,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", sim.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn unique(name: &str) -> PropertyDef {
    let mut p = PropertyDef::new(name, "string", "text");
    p.unique = true;
    p
}

#[tokio::test]
async fn upsert_creates_then_updates_and_reports_bad_items_in_a_207() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property("contacts", unique("whatsapp_id"));
    sim.define_property("contacts", PropertyDef::new("wa_size", "number", "number"));
    let body = |size: &str| {
        json!({"inputs": [
            {"idProperty": "whatsapp_id", "id": "+491701234567", "properties": {"wa_size": "12"}},
            {"idProperty": "whatsapp_id", "id": "+491701234568", "properties": {"wa_size": size}},
        ]})
    };
    let (status, headers, first) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        body("13"),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["results"][0]["new"], true);
    assert_eq!(headers["x-hubspot-ratelimit-max"], "100");
    assert_eq!(headers["x-hubspot-ratelimit-remaining"], "99");
    assert_eq!(headers["x-hubspot-ratelimit-daily-remaining"], "249999");

    let (status, _, second) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        body("lots"),
    )
    .await;
    assert_eq!(status, 207, "{second}");
    assert_eq!(second["results"][0]["new"], false);
    assert_eq!(second["numErrors"], 1);
    assert_eq!(second["errors"][0]["context"]["ids"][0], "+491701234568");
    assert_eq!(sim.records("contacts").len(), 2);

    let (status, _, unknown) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        json!({"inputs": [
        {"idProperty": "whatsapp_id", "id": "+491701234567", "properties": {"nope": "1"}}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("Property \\\"nope\\\" does not exist"),
        "{unknown}"
    );
    assert_eq!(unknown["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn the_rolling_window_answers_429_with_the_policy() {
    let mut config = HubSpotSimConfig::private_app(TOKEN);
    config.limits.max_per_interval = 5;
    config.limits.interval = Duration::from_secs(60);
    let sim = HubSpotSim::start(config).await.unwrap();
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for _ in 0..6 {
        let r = reqwest::Client::new()
            .get(format!("{}/crm/v3/properties/contacts", sim.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        last = r.json().await.unwrap();
    }
    // 5 per window and, at 5 per 60 s, a secondly limit of 1: the second call is already refused.
    assert_eq!(statuses[0], 200);
    assert!(statuses[1..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(last["errorType"], "RATE_LIMIT");
    assert!(["SECONDLY", "TEN_SECONDLY_ROLLING"].contains(&last["policyName"].as_str().unwrap()));
    assert_eq!(sim.counts().too_many_requests, 5);
}

#[tokio::test]
async fn oauth_tokens_expire_and_refresh_tokens_rotate_and_die() {
    let sim = HubSpotSim::start(HubSpotSimConfig::oauth(OAuthApp {
        client_id: "cid".into(),
        client_secret: "cs".into(),
        refresh_token: "rt0".into(),
        token_ttl: Duration::from_secs(1800),
        rotate_refresh_token: true,
    }))
    .await
    .unwrap();
    let refresh = |rt: &str| {
        reqwest::Client::new()
            .post(format!("{}/oauth/v3/token", sim.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "cid"),
                ("client_secret", "cs"),
                ("refresh_token", rt),
            ])
            .send()
    };
    let t: Value = refresh("rt0").await.unwrap().json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t["expires_in"], 1800);
    assert_ne!(t["refresh_token"], "rt0");
    let (status, headers, _) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/read",
        &access,
        json!({"inputs": []}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers.get("x-hubspot-ratelimit-daily").is_none(),
        "OAuth apps have no daily limit"
    );

    sim.expire_access_tokens();
    let (status, headers, body) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/read",
        &access,
        json!({"inputs": []}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");
    assert_eq!(headers["x-hubspot-auth-failure"], "401 Unauthorized");

    let old = refresh("rt0").await.unwrap();
    assert_eq!(old.status().as_u16(), 400);
    let body: Value = old.json().await.unwrap();
    assert_eq!(body["status"], "BAD_REFRESH_TOKEN");
}

#[tokio::test]
async fn missing_scopes_are_named() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.set_scopes(&["crm.objects.contacts.read"]);
    let (status, _, body) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        json!({"inputs": []}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["category"], "MISSING_SCOPES");
    assert_eq!(
        body["errors"][0]["context"]["requiredGranularScopes"][0],
        "crm.objects.contacts.write"
    );
}

#[tokio::test]
async fn notes_need_a_timestamp_and_associate_with_type_202() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property("contacts", unique("whatsapp_id"));
    sim.define_property("notes", unique("wa_message_id"));
    let (_, _, c) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        json!({"inputs": [
        {"idProperty": "whatsapp_id", "id": "+1", "properties": {}}]}),
    )
    .await;
    let contact = c["results"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, n) = post(&sim, "/crm/v3/objects/notes/batch/upsert", TOKEN, json!({"inputs": [
        {"idProperty": "wa_message_id", "id": "wamid.a", "properties": {"hs_note_body": "x"}},
        {"idProperty": "wa_message_id", "id": "wamid.b", "properties": {"hs_note_body": "x", "hs_timestamp": "2026-11-22T10:00:00.000Z"}}]})).await;
    assert_eq!(status, 207, "{n}");
    let note = n["results"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, a) = post(&sim, "/crm/v4/associations/notes/contacts/batch/create", TOKEN, json!({"inputs": [
        {"from": {"id": note}, "to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]})).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        sim.association_types("notes", &note, "contacts", &contact),
        vec![202]
    );
    assert_eq!(sim.associated("contacts", &contact, "notes"), vec![note]);
}

/// A batch read returns what it was asked for and the three properties HubSpot always adds, not
/// the unique property it read by (hubspot-api-python #357), with `null` for a property asked
/// for that has no value.
#[tokio::test]
async fn a_batch_read_returns_only_what_was_asked_for() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.define_property("contacts", unique("whatsapp_id"));
    sim.define_property(
        "contacts",
        PropertyDef::new("wa_media_consent", "bool", "booleancheckbox"),
    );
    let id = sim.add_record(
        "contacts",
        &[
            ("whatsapp_id", "+4915112345678"),
            ("wa_media_consent", "true"),
        ],
    );
    let (status, _, answer) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/read",
        TOKEN,
        json!({"idProperty": "whatsapp_id", "inputs": [{"id": "+4915112345678"}],
            "properties": ["wa_media_consent", "firstname"]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let props = answer["results"][0]["properties"].as_object().unwrap();
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "createdate",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "wa_media_consent"
        ]
    );
    assert_eq!(props["hs_object_id"], json!(id));
    assert_eq!(props["firstname"], Value::Null);
}

/// HubSpot requires options on an enumeration property.
#[tokio::test]
async fn an_enumeration_without_options_is_refused() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let (status, _, answer) = post(
        &sim,
        "/crm/v3/properties/contacts",
        TOKEN,
        json!({"name": "wa_tags", "label": "Tags", "type": "enumeration", "fieldType": "checkbox",
            "groupName": "contactinformation", "options": []}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["category"], "VALIDATION_ERROR");
}

/// A refresh whose client goes away before the answer (a killed daemon) stops counting as in
/// flight, so a test waiting for quiet at the token endpoint is not kept waiting by the dead.
#[tokio::test]
async fn an_abandoned_refresh_is_not_counted_in_flight() {
    let sim = HubSpotSim::start(HubSpotSimConfig::oauth(OAuthApp {
        client_id: "cid".into(),
        client_secret: "cs".into(),
        refresh_token: "rt0".into(),
        token_ttl: Duration::from_secs(1800),
        rotate_refresh_token: false,
    }))
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(5))
        .build()
        .unwrap();
    let abandoned = client
        .post(format!("{}/oauth/v3/token", sim.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "cid"),
            ("client_secret", "cs"),
            ("refresh_token", "rt0"),
        ])
        .send()
        .await;
    assert!(abandoned.is_err(), "the client gave up before the answer");
    drop(client);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sim.refreshes_in_flight() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "an abandoned refresh stays in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The calculated searchable phone properties: the national significant number of `phone`
/// and `mobilephone` however they were typed, the international form when the country is
/// written, read-only, found by `IN`; an `IN` of more than 100 values is refused.
#[tokio::test]
async fn numbers_are_searchable_through_their_calculated_properties() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let intl = sim.add_record("contacts", &[("phone", "+49 151 1234 5678")]);
    let national = sim.add_record("contacts", &[("mobilephone", "0151 12345678")]);
    let other = sim.add_record("contacts", &[("phone", "+1 (415) 555-0134")]);
    let search = |values: Vec<String>, property: &str| {
        json!({"filterGroups": [{"filters": [
            {"propertyName": property, "operator": "IN", "values": values}]}],
            "properties": ["phone", "mobilephone",
                "hs_searchable_calculated_phone_number",
                "hs_searchable_calculated_international_phone_number"]})
    };
    let (status, _, found) = post(
        &sim,
        "/crm/v3/objects/contacts/search",
        TOKEN,
        search(
            vec!["15112345678".into()],
            "hs_searchable_calculated_phone_number",
        ),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["results"][0]["id"], intl.as_str());
    assert_eq!(
        found["results"][0]["properties"]["hs_searchable_calculated_international_phone_number"],
        "4915112345678"
    );
    let (_, _, mobile) = post(
        &sim,
        "/crm/v3/objects/contacts/search",
        TOKEN,
        search(
            vec!["15112345678".into()],
            "hs_searchable_calculated_mobile_number",
        ),
    )
    .await;
    assert_eq!(mobile["results"][0]["id"], national.as_str(), "{mobile}");
    let (_, _, us) = post(
        &sim,
        "/crm/v3/objects/contacts/search",
        TOKEN,
        search(
            vec!["4155550134".into()],
            "hs_searchable_calculated_phone_number",
        ),
    )
    .await;
    assert_eq!(us["results"][0]["id"], other.as_str(), "{us}");
    let too_many = (0..101).map(|i| format!("{i}")).collect();
    let (status, _, _) = post(
        &sim,
        "/crm/v3/objects/contacts/search",
        TOKEN,
        search(too_many, "hs_searchable_calculated_phone_number"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, refused) = post(
        &sim,
        "/crm/v3/objects/contacts/batch/upsert",
        TOKEN,
        json!({"inputs": [{"idProperty": "hs_object_id", "id": intl,
            "properties": {"hs_searchable_calculated_phone_number": "1"}}]}),
    )
    .await;
    assert!(status == 400 || status == 207, "{refused}");
    assert!(refused.to_string().contains("READ_ONLY_VALUE"), "{refused}");
}
