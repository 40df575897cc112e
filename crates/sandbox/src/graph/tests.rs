use super::*;

async fn sim() -> GraphSim {
    GraphSim::start("tok").await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("test")
        .build()
        .unwrap()
}

async fn resolve(sim: &GraphSim, id: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}/v21.0/{id}?phone_number_id=PN", sim.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn resolves_then_serves_the_bytes_with_the_token() {
    let sim = sim().await;
    let digest = sim.add_media("42", &b"ogg bytes"[..], "audio/ogg; codecs=opus");
    let r = resolve(&sim, "42", "tok").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["sha256"], digest);
    assert_eq!(body["file_size"], "9");
    assert_eq!(body["mime_type"], "audio/ogg; codecs=opus");
    let url = body["url"].as_str().unwrap();
    let ok = client().get(url).bearer_auth("tok").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap().as_ref(), b"ogg bytes");
    // Without the token, or without a User-Agent, the download is refused.
    assert_eq!(client().get(url).send().await.unwrap().status(), 401);
    let no_ua = reqwest::Client::new()
        .get(url)
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(no_ua.status(), 400);
    assert_eq!(sim.counts().resolves, 1);
    assert_eq!(sim.counts().downloads, 3);
}

#[tokio::test]
async fn graph_shaped_errors() {
    let sim = sim().await;
    let r = resolve(&sim, "42", "wrong").await;
    assert_eq!(r.status(), 401);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 190);
    let r = resolve(&sim, "nope", "tok").await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 100);
    sim.add_media_for("7", &b"x"[..], "image/png", "OTHER");
    assert_eq!(
        resolve(&sim, "7", "tok").await.status(),
        400,
        "wrong phone_number_id"
    );
    sim.fail_resolves([Fault::Status(503), Fault::Status(429)]);
    sim.add_media("8", &b"x"[..], "image/png");
    assert_eq!(resolve(&sim, "8", "tok").await.status(), 503);
    let throttled = resolve(&sim, "8", "tok").await;
    assert_eq!(throttled.status(), 429);
    let e: serde_json::Value = throttled.json().await.unwrap();
    assert_eq!(e["error"]["code"], 4);
    assert_eq!(resolve(&sim, "8", "tok").await.status(), 200);
}

#[tokio::test]
async fn expired_truncated_and_corrupted_downloads() {
    let sim = sim().await;
    sim.add_media("1", vec![7u8; 1000], "video/mp4");
    sim.fail_resolves([Fault::ExpiredUrl]);
    let url = resolve(&sim, "1", "tok")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let url = resolve(&sim, "1", "tok")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.fail_downloads([Fault::Truncate, Fault::Corrupt]);
    let cut = client().get(&url).bearer_auth("tok").send().await.unwrap();
    assert!(
        cut.bytes().await.is_err(),
        "a truncated body is an error for the client"
    );
    let bad = client()
        .get(&url)
        .bearer_auth("tok")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bad.len(), 1000);
    assert_ne!(bad.as_ref(), &[7u8; 1000][..]);
    let tampered = url.replace("hash=", "hash=00");
    assert_eq!(
        client()
            .get(&tampered)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn as_360dialog_the_client_fetches_metas_url_from_its_host_with_the_key() {
    use secrecy::SecretString;
    use wa2crm_whatsapp::media::GraphMedia;
    let sim = GraphSim::start_d360("d360-key").await.unwrap();
    sim.add_media("77", &b"voice"[..], "audio/ogg");
    let client = GraphMedia::d360(&sim.url(), SecretString::from("d360-key")).unwrap();
    let resolved = client.resolve("77", "ignored").await.unwrap();
    assert!(
        resolved
            .url
            .starts_with("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=77"),
        "360dialog passes Meta's URL through: {}",
        resolved.url
    );
    let bytes = client
        .download(&resolved.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"voice");
    assert_eq!(
        sim.counts().downloads,
        1,
        "fetched from 360dialog, not from Meta"
    );

    let wrong = GraphMedia::d360(&sim.url(), SecretString::from("nope")).unwrap();
    let e = wrong.resolve("77", "").await.unwrap_err();
    assert_eq!(e.kind(), wa2crm_core::ErrorKind::Permanent);
    assert!(e.message().contains("sources.d360.api_key"), "{e}");
}

#[tokio::test]
async fn as_360dialog_five_failed_lookups_block_the_number_for_an_hour() {
    use secrecy::SecretString;
    use wa2crm_whatsapp::media::GraphMedia;
    let sim = GraphSim::start_d360("k").await.unwrap();
    sim.add_media("ok", &b"x"[..], "image/jpeg");
    let client = GraphMedia::d360(&sim.url(), SecretString::from("k")).unwrap();
    for i in 0..5 {
        let e = client
            .resolve(&format!("missing-{i}"), "")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), wa2crm_core::ErrorKind::Permanent, "{e}");
        assert!(e.message().contains("Not retried"), "{e}");
    }
    let e = client.resolve("ok", "").await.unwrap_err();
    assert!(
        matches!(e.kind(), wa2crm_core::ErrorKind::RateLimited { .. }),
        "{e}"
    );
    assert_eq!(sim.counts().blocked, 1);
}

#[tokio::test]
async fn a_business_number_and_the_tokens_user_are_readable_with_the_token_only() {
    let sim = sim().await;
    sim.add_phone_number("106540352242922", "+49 30 1234567", "Acme GmbH");
    let get = |path: &str, token: &str| {
        client()
            .get(format!("{}/v21.0/{path}", sim.url()))
            .bearer_auth(token)
            .send()
    };
    let r = get("106540352242922", "tok").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["display_phone_number"], "+49 30 1234567");
    assert_eq!(body["verified_name"], "Acme GmbH");
    let r = get("106540352242922", "bad").await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        190
    );
    // A number the token cannot read is any unknown object.
    let r = get("4915123456789", "tok").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        100
    );
    assert_eq!(get("me", "tok").await.unwrap().status(), 200);
    assert_eq!(get("me", "bad").await.unwrap().status(), 401);
}

#[tokio::test]
async fn d360_webhook_config_needs_the_key() {
    let sim = GraphSim::start_d360("key").await.unwrap();
    sim.set_webhook_url("https://wa2crm.example.com/webhooks/d360");
    let get = |key: &str| {
        client()
            .get(format!("{}/v1/configs/webhook", sim.url()))
            .header("D360-API-KEY", key)
            .send()
    };
    let r = get("key").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["url"],
        "https://wa2crm.example.com/webhooks/d360"
    );
    assert_eq!(get("wrong").await.unwrap().status(), 401);
}
