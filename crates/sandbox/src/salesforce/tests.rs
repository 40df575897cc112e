use serde_json::{Value, json};

use super::model::FieldDef;
use super::*;

const V: &str = "/services/data/v62.0";

async fn login(sim: &SalesforceSim) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", sim.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "cid"),
            ("client_secret", "sandbox-client-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

async fn composite(sim: &SalesforceSim, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{V}/composite", sim.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn org() -> (SalesforceSim, String) {
    let sim = SalesforceSim::start(SalesforceSimConfig::new("cid", "wa2crm@example.com"))
        .await
        .unwrap();
    sim.add_field("Contact", FieldDef::new("WA__c", "string").external_id());
    let token = login(&sim).await;
    (sim, token)
}

fn upsert(reference: &str, phones: &[&str]) -> Value {
    let records: Vec<Value> = phones
        .iter()
        .map(|p| json!({"attributes": {"type": "Contact"}, "WA__c": p, "LastName": p}))
        .collect();
    json!({"method": "PATCH", "url": format!("{V}/composite/sobjects/Contact/WA__c"),
           "referenceId": reference, "body": {"allOrNone": false, "records": records}})
}

#[tokio::test]
async fn subrequests_run_in_order_as_one_api_call() {
    let (sim, token) = org().await;
    let query = json!({"method": "GET", "referenceId": "lookup",
        "url": format!("{V}/query?q=SELECT%20Id%2C%20WA__c%20FROM%20Contact%20WHERE%20WA__c%20IN%20%28%27%2B1%27%29")});
    let before = sim.counts().api_calls;
    let mut again = query.clone();
    again["referenceId"] = json!("again");
    let (status, body) = composite(
        &sim,
        &token,
        json!({"allOrNone": false, "compositeRequest": [query, upsert("create", &["+1"]), again]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.counts().api_calls - before, 1);
    let parts = body["compositeResponse"].as_array().unwrap();
    assert_eq!(parts[0]["referenceId"], "lookup");
    assert_eq!(parts[0]["body"]["totalSize"], 0, "before the upsert");
    assert_eq!(parts[1]["httpStatusCode"], 200);
    assert_eq!(parts[1]["body"][0]["created"], true);
    assert_eq!(parts[2]["body"]["totalSize"], 1, "after it");
}

#[tokio::test]
async fn all_or_none_rolls_back_and_halts_the_rest() {
    let (sim, token) = org().await;
    let bad = json!({"method": "PATCH", "url": format!("{V}/composite/sobjects/Nope__c/WA__c"),
        "referenceId": "bad", "body": {"records": []}});
    let (status, body) = composite(
        &sim,
        &token,
        json!({"allOrNone": true, "compositeRequest": [upsert("first", &["+1"]), bad, upsert("third", &["+2"])]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let parts = body["compositeResponse"].as_array().unwrap();
    assert_eq!(parts[1]["body"][0]["errorCode"], "INVALID_TYPE");
    for i in [0, 2] {
        assert_eq!(parts[i]["httpStatusCode"], 400);
        assert_eq!(parts[i]["body"][0]["errorCode"], "PROCESSING_HALTED");
    }
    assert!(
        sim.records("Contact").is_empty(),
        "the first upsert was rolled back"
    );

    // Without allOrNone each subrequest stands alone.
    let (_, body) = composite(
        &sim,
        &token,
        json!({"compositeRequest": [upsert("first", &["+1"]), {"method": "PATCH", "referenceId": "bad",
            "url": format!("{V}/composite/sobjects/Nope__c/WA__c"), "body": {"records": []}}]}),
    )
    .await;
    assert_eq!(body["compositeResponse"][0]["httpStatusCode"], 200);
    assert_eq!(body["compositeResponse"][1]["httpStatusCode"], 400);
    assert_eq!(sim.records("Contact").len(), 1);
}

#[tokio::test]
async fn limits_versions_and_references_are_enforced() {
    let (sim, token) = org().await;
    let six: Vec<Value> = (0..6).map(|i| upsert(&format!("u{i}"), &["+1"])).collect();
    let (status, body) = composite(&sim, &token, json!({"compositeRequest": six})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .contains("5 query or sObject Collections")
    );

    let mut other_version = upsert("u", &["+1"]);
    other_version["url"] = json!("/services/data/v58.0/composite/sobjects/Contact/WA__c");
    let (status, _) = composite(&sim, &token, json!({"compositeRequest": [other_version]})).await;
    assert_eq!(status, 400);

    let mut reference = upsert("u", &["+1"]);
    reference["body"]["records"][0]["LastName"] = json!("@{earlier.id}");
    let (status, body) = composite(&sim, &token, json!({"compositeRequest": [reference]})).await;
    assert_eq!(status, 400);
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .contains("does not resolve references")
    );
    assert!(sim.records("Contact").is_empty());
}

#[tokio::test]
async fn a_validation_rule_refuses_only_its_record() {
    let (sim, token) = org().await;
    sim.add_validation_rule(
        "Contact",
        "LastName",
        json!("+2"),
        "Last name cannot be a number",
    );
    let (_, body) = composite(
        &sim,
        &token,
        json!({"compositeRequest": [upsert("u", &["+1", "+2", "+3"])]}),
    )
    .await;
    let results = &body["compositeResponse"][0]["body"];
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[1]["success"], false);
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    assert_eq!(
        results[1]["errors"][0]["message"],
        "Last name cannot be a number"
    );
    assert_eq!(results[2]["success"], true);
    assert_eq!(sim.records("Contact").len(), 2);
}

/// SOSL phone searches: digits compared whatever the formatting, Contacts and Leads in one
/// call, reserved characters refused unescaped, records written through the API found only
/// after the search lag.
#[tokio::test]
async fn sosl_finds_numbers_in_phone_fields_once_indexed() {
    let (sim, token) = org().await;
    let contact = sim.add_record(
        "Contact",
        &[
            ("LastName", json!("Weiß")),
            ("Phone", json!("+49 151 1234 5678")),
        ],
    );
    let lead = sim.add_record(
        "Lead",
        &[
            ("LastName", json!("Lead")),
            ("Company", json!("Acme")),
            ("MobilePhone", json!("0151 12345678")),
        ],
    );
    let search = |q: &str| {
        let q = q.to_owned();
        let token = token.clone();
        let url = sim.url();
        async move {
            let url =
                reqwest::Url::parse_with_params(&format!("{url}{V}/search"), [("q", q)]).unwrap();
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, found) = search(
        "FIND {4915112345678 OR 015112345678} IN PHONE FIELDS RETURNING \
         Contact(Id, Phone, OwnerId, LastModifiedDate), Lead(Id, MobilePhone, IsConverted)",
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let ids: Vec<&str> = found["searchRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![contact.as_str(), lead.as_str()], "{found}");
    assert_eq!(found["searchRecords"][1]["attributes"]["type"], "Lead");
    // A part of the number is no match; an unescaped + is malformed.
    let (_, none) = search("FIND {15112345678} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(none["searchRecords"].as_array().unwrap().len(), 0, "{none}");
    let (status, bad) = search("FIND {+4915112345678} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(status, 400);
    assert_eq!(bad[0]["errorCode"], "MALFORMED_SEARCH");
    // Written through the API: not searchable until the index catches up.
    let (status, _) = composite(
        &sim,
        &token,
        json!({"compositeRequest": [
        {"method": "PATCH", "url": format!("{V}/composite/sobjects/Contact/WA__c"),
         "referenceId": "c", "body": {"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "WA__c": "+14155550134", "LastName": "New",
             "Phone": "(415) 555-0134"}]}}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, hidden) = search("FIND {4155550134} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(
        hidden["searchRecords"].as_array().unwrap().len(),
        0,
        "{hidden}"
    );
    sim.set_search_lag(std::time::Duration::ZERO);
    let (_, shown) = search("FIND {4155550134} IN PHONE FIELDS RETURNING Contact(Id)").await;
    assert_eq!(
        shown["searchRecords"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
}
