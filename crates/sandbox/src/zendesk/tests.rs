#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const EMAIL: &str = "agent@acme.example";
const TOKEN: &str = "sim-token";

async fn sim(rpm: usize) -> ZendeskSim {
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.requests_per_minute = rpm;
    c.search_lag = Duration::from_secs(3600);
    ZendeskSim::start(c).await.unwrap()
}

async fn call(
    sim: &ZendeskSim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.url()))
        .basic_auth(format!("{EMAIL}/token"), Some(TOKEN));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let a = r.send().await.unwrap();
    let status = a.status().as_u16();
    let headers = a.headers().clone();
    (status, headers, a.text().await.unwrap())
}

#[tokio::test]
async fn wrong_credentials_are_refused_in_zendesks_words() {
    let sim = sim(200).await;
    let a = reqwest::Client::new()
        .get(format!("{}/api/v2/users/1", sim.url()))
        .basic_auth(format!("{EMAIL}/token"), Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 401);
    assert_eq!(
        a.text().await.unwrap(),
        r#"{"error":"Couldn't authenticate you"}"#
    );
}

#[tokio::test]
async fn the_minute_runs_out_with_a_plain_text_429() {
    let sim = sim(3).await;
    for left in [2, 1, 0] {
        let (s, h, _) = call(&sim, reqwest::Method::GET, "/api/v2/users/1", None).await;
        assert_eq!(s, 404);
        assert_eq!(h["x-rate-limit-remaining"], left.to_string().as_str());
        assert_eq!(h["x-rate-limit"], "3");
    }
    let (s, h, body) = call(&sim, reqwest::Method::GET, "/api/v2/users/1", None).await;
    assert_eq!(s, 429);
    assert_eq!(h["content-type"], "text/plain");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(body, "Number of allowed API requests per minute exceeded");
}

#[tokio::test]
async fn users_are_upserted_by_external_id_and_searchable_only_after_the_lag() {
    let sim = sim(200).await;
    let user = json!({"user": {"name": "Jürgen", "external_id": "+4915112345678", "phone": "+4915112345678"}});
    let (s, _, body) = call(
        &sim,
        reqwest::Method::POST,
        "/api/v2/users/create_or_update",
        Some(user.clone()),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, _, _) = call(
        &sim,
        reqwest::Method::POST,
        "/api/v2/users/create_or_update",
        Some(user),
    )
    .await;
    assert_eq!(s, 200, "the same external_id: updated, not a second user");
    assert_eq!(
        sim.users().iter().filter(|u| u.role == "end-user").count(),
        1
    );
    let (_, _, found) = call(
        &sim,
        reqwest::Method::GET,
        "/api/v2/search?query=type:user%20phone:%2B4915112345678",
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&found).unwrap()["count"],
        0,
        "not indexed yet"
    );
    let old = sim.add_user("Ana", Some("+5511987654321"), None);
    let (_, _, found) = call(
        &sim,
        reqwest::Method::GET,
        "/api/v2/search?query=type:user%20phone:%2B5511987654321",
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&found).unwrap()["results"][0]["id"],
        old
    );
}

#[tokio::test]
async fn tickets_take_comments_until_closed_and_30_updates_in_ten_minutes() {
    let sim = sim(1000).await;
    let requester = sim.add_user("Jürgen", Some("+4915112345678"), None);
    let (s, _, body) = call(
        &sim,
        reqwest::Method::POST,
        "/api/v2/tickets",
        Some(json!({"ticket": {
        "requester_id": requester, "subject": "WhatsApp media from Jürgen",
        "comment": {"body": "first", "public": false}, "tags": ["Product Issue"]}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["ticket"]["id"]
        .as_u64()
        .unwrap();
    for n in 0..30 {
        let (s, _, body) = call(&sim, reqwest::Method::PUT, &format!("/api/v2/tickets/{id}"), Some(json!({"ticket": {
            "comment": {"body": format!("note {n}"), "public": false}, "additional_tags": ["voice-note"]}}))).await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, h, _) = call(
        &sim,
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{id}"),
        Some(json!({"ticket": {
        "comment": {"body": "one too many"}}})),
    )
    .await;
    assert_eq!(s, 429);
    assert!(h.contains_key("retry-after"));
    let t = &sim.tickets()[0];
    assert_eq!(t.comments.len(), 31);
    assert!(t.comments.iter().all(|c| !c.public));
    assert_eq!(
        t.tags,
        ["product", "issue", "voice-note"],
        "a space separates tags"
    );

    let closed = sim.add_ticket(requester, "closed");
    let (s, _, body) = call(
        &sim,
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{closed}"),
        Some(json!({"ticket": {
        "comment": {"body": "late"}}})),
    )
    .await;
    assert_eq!(s, 422);
    assert!(body.contains("closed prevents ticket update"), "{body}");
    let (_, _, listed) = call(
        &sim,
        reqwest::Method::GET,
        &format!("/api/v2/users/{requester}/tickets/requested"),
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap()["tickets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn an_upload_attaches_once_to_one_comment_and_a_file_over_the_limit_is_refused() {
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.attachment_limit = 10;
    let sim = ZendeskSim::start(c).await.unwrap();
    let up = |bytes: &'static [u8]| {
        reqwest::Client::new()
            .post(format!("{}/api/v2/uploads?filename=clip.mp4", sim.url()))
            .basic_auth(format!("{EMAIL}/token"), Some(TOKEN))
            .header("content-type", "video/mp4")
            .body(bytes)
            .send()
    };
    let a = up(b"0123456789").await.unwrap();
    assert_eq!(a.status(), 201);
    let token = a.json::<Value>().await.unwrap()["upload"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(up(b"0123456789A").await.unwrap().status(), 413);
    let requester = sim.add_user("Jürgen", None, None);
    let ticket = json!({"ticket": {"requester_id": requester, "subject": "s",
        "comment": {"body": "see the clip", "public": false, "uploads": [token]}}});
    let (s, _, body) = call(
        &sim,
        reqwest::Method::POST,
        "/api/v2/tickets",
        Some(ticket.clone()),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let t = &sim.tickets()[0];
    assert_eq!(t.comments[0].attachments[0].file_name, "clip.mp4");
    assert_eq!(t.comments[0].attachments[0].size, 10);
    let (s, _, body) = call(&sim, reqwest::Method::POST, "/api/v2/tickets", Some(ticket)).await;
    assert_eq!(s, 422, "a token attaches once: {body}");
}
