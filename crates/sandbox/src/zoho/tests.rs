#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

async fn sim() -> (ZohoSim, reqwest::Client, String) {
    let sim = ZohoSim::start(ZohoSimConfig::new("1000.client", "secret", "1000.refresh"))
        .await
        .unwrap();
    sim.add_module("WhatsApp_Media");
    let mut key = Field::new("WA_Message_Id", "text");
    key.unique = true;
    sim.add_field("WhatsApp_Media", key);
    let mut contact = Field::new("Contact", "lookup");
    contact.lookup = Some("Contacts".into());
    sim.add_field("WhatsApp_Media", contact);
    let http = reqwest::Client::new();
    let token = fetch_token(&sim, &http).await;
    (sim, http, token)
}

async fn fetch_token(sim: &ZohoSim, http: &reqwest::Client) -> String {
    let a: Value = http
        .post(format!(
            "{}/oauth/v2/token?grant_type=refresh_token&client_id=1000.client&client_secret=secret&refresh_token=1000.refresh",
            sim.accounts_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["api_domain"], sim.api_url());
    a["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    http: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http
        .request(method, url)
        .header("Authorization", format!("Zoho-oauthtoken {token}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let a = r.send().await.unwrap();
    let status = a.status().as_u16();
    (status, a.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn upsert_inserts_then_updates_and_answers_each_record() {
    let (sim, http, token) = sim().await;
    let contact = sim.add_record(
        "Contacts",
        json!({"Last_Name": "Ada", "Mobile": "+4915112345678"}),
    );
    let url = format!("{}/crm/v8/WhatsApp_Media/upsert", sim.api_url());
    let body = json!({"duplicate_check_fields": ["WA_Message_Id"], "data": [
        {"Name": "video", "WA_Message_Id": "wamid.1", "Contact": {"id": contact}},
        {"Name": "audio", "WA_Message_Id": "wamid.2", "Contact": {"id": "5725767999999999999"}},
        {"WA_Message_Id": "wamid.3"},
        {"Name": "x", "WA_Message_Id": "wamid.4", "Size": 3},
    ]});
    let (status, a) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url.clone(),
        Some(body),
    )
    .await;
    assert_eq!(status, 207, "{a}");
    let codes: Vec<&str> = a["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "SUCCESS",
            "INVALID_DATA",
            "MANDATORY_NOT_FOUND",
            "INVALID_DATA"
        ]
    );
    assert_eq!(a["data"][0]["action"], "insert");
    assert_eq!(a["data"][1]["details"]["api_name"], "Contact");
    let again = json!({"duplicate_check_fields": ["WA_Message_Id"], "data": [{"Name": "video 2", "WA_Message_Id": "wamid.1"}]});
    let (status, a) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url.clone(),
        Some(again),
    )
    .await;
    assert_eq!(
        (status, a["data"][0]["action"].as_str()),
        (200, Some("update"))
    );
    assert_eq!(sim.records("WhatsApp_Media").len(), 1);
    let not_unique = json!({"duplicate_check_fields": ["Name"], "data": [{"Name": "v"}]});
    let (status, a) = call(&http, &token, reqwest::Method::POST, url, Some(not_unique)).await;
    assert_eq!((status, a["code"].as_str()), (400, Some("INVALID_DATA")));
}

#[tokio::test]
async fn coql_finds_by_in_and_answers_204_when_nothing_matches() {
    let (sim, http, token) = sim().await;
    sim.add_record(
        "Contacts",
        json!({"Last_Name": "Ada", "Mobile": "+4915112345678"}),
    );
    let url = format!("{}/crm/v8/coql", sim.api_url());
    let q = |w: &str| json!({"select_query": format!("select id, Mobile from Contacts where {w} limit 200")});
    let (status, a) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url.clone(),
        Some(q(
            "(Phone in ('+4915112345678') or Mobile in ('+4915112345678'))",
        )),
    )
    .await;
    assert_eq!((status, a["info"]["count"].as_u64()), (200, Some(1)), "{a}");
    let (status, _) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url.clone(),
        Some(q("Mobile = '+1'")),
    )
    .await;
    assert_eq!(status, 204);
    let (status, a) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url.clone(),
        Some(q("Phone = '1' or Mobile = '1' or Phone = '2'")),
    )
    .await;
    assert_eq!((status, a["code"].as_str()), (400, Some("SYNTAX_ERROR")));
    let (status, a) = call(
        &http,
        &token,
        reqwest::Method::POST,
        url,
        Some(q("Description = 'x'")),
    )
    .await;
    assert_eq!((status, a["code"].as_str()), (400, Some("INVALID_QUERY")));
}

#[tokio::test]
async fn tokens_are_zoho_oauthtoken_only_and_refreshes_are_limited() {
    let (sim, http, token) = sim().await;
    let url = format!("{}/crm/v8/org", sim.api_url());
    let bearer = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status(), 401);
    let (status, _) = call(&http, &token, reqwest::Method::GET, url, None).await;
    assert_eq!(status, 200);
    let accounts_host = http
        .get(format!("{}/crm/v8/org", sim.accounts_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        accounts_host.status(),
        404,
        "the accounts server has no API"
    );
    for _ in 0..9 {
        fetch_token(&sim, &http).await;
    }
    let denied: Value = http
        .post(format!("{}/oauth/v2/token", sim.accounts_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "1000.client"),
            ("client_secret", "secret"),
            ("refresh_token", "1000.refresh"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(denied["error"], "Access Denied", "the 11th in ten minutes");
    sim.revoke_refresh_token();
    let dead = http
        .post(format!("{}/oauth/v2/token?grant_type=refresh_token&client_id=1000.client&client_secret=secret&refresh_token=1000.refresh", sim.accounts_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(dead.status(), 200, "Zoho refuses with 200");
    assert_eq!(dead.json::<Value>().await.unwrap()["error"], "invalid_code");
}

#[tokio::test]
async fn credits_run_out_with_429_and_the_headers_count_down() {
    let (sim, http, token) = sim().await;
    let left = sim.credits_left();
    sim.spend_credits(left - 1);
    let url = format!("{}/crm/v8/org", sim.api_url());
    let a = http
        .get(&url)
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    assert_eq!(a.headers()["x-ratelimit-remaining"], "0");
    let a = http
        .get(&url)
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 429);
    assert!(a.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn fields_are_created_from_labels_and_scopes_are_enforced() {
    let (sim, http, token) = sim().await;
    let url = format!(
        "{}/crm/v8/settings/fields?module=WhatsApp_Media",
        sim.api_url()
    );
    let body = json!({"fields": [{"field_label": "WA Size", "data_type": "bigint"},
        {"field_label": "WA Message Id", "data_type": "text"}, {"field_label": "X", "data_type": "formula"}]});
    let (status, a) = call(&http, &token, reqwest::Method::POST, url, Some(body)).await;
    assert_eq!(status, 400, "{a}");
    let codes: Vec<&str> = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["SUCCESS", "DUPLICATE_DATA", "INVALID_DATA"]);
    assert_eq!(
        sim.module("WhatsApp_Media")
            .unwrap()
            .field("WA_Size")
            .unwrap()
            .data_type,
        "bigint"
    );
}
