//! No configured secret — nor a token a vendor issued — appears in anything wa2crm prints: its log
//! (at debug level), `status` in both forms, `check`, `/metrics`, or the answers to refused
//! webhooks. The run goes through every source and both CRMs, with OAuth tokens expiring under
//! load, a refused webhook per source, and a dead letter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::{
    ACCESS_TOKEN, APP_SECRET, Daemon, LINK_SECRET, VERIFY_TOKEN, config_toml, free_port,
    hubspot_section, post_webhook, salesforce_org, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, OAuthApp};
use wa2crm_sandbox::salesforce::SANDBOX_PRIVATE_KEY;
use wa2crm_sandbox::twilio::{Inbound, TwilioSim, signed_form, webhook_params};
use wa2crm_sandbox::{samples, webhooks};

const HS_CLIENT_SECRET: &str = "hs-client-secret-5f1e";
const NOTIFY_SECRET: &str = "notify-secret-9c2a71d0";
const HS_REFRESH: &str = "hs-refresh-token-8c2d";
const D360_KEY: &str = "d360-api-key-77aa";
const D360_HEADER_VALUE: &str = "d360-header-value-19bd";
const TWILIO_ACCOUNT: &str = "AC5ec7e75ec7e75ec7e75ec7e75ec7e75e";
const TWILIO_TOKEN: &str = "twilio-auth-token-0c4f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_printed() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let d360 = GraphSim::start_d360(D360_KEY).await.unwrap();
    let twilio = TwilioSim::start(TWILIO_ACCOUNT, TWILIO_TOKEN)
        .await
        .unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::oauth(OAuthApp {
        client_id: "secrets-client".into(),
        client_secret: HS_CLIENT_SECRET.into(),
        refresh_token: HS_REFRESH.into(),
        token_ttl: Duration::from_secs(2),
        rotate_refresh_token: true,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_sf, salesforce) = salesforce_org(dir.path()).await;
    let catcher = wa2crm_sandbox::catcher::WebhookCatcher::start()
        .await
        .unwrap();
    let port = free_port();
    let webhook_url = format!("http://127.0.0.1:{port}/webhooks/twilio");
    let extra = format!(
        r#"
[sources.d360]
api_key = "{D360_KEY}"
base_url = "{d360}"
webhook_header = "X-Token"
webhook_header_value = "{D360_HEADER_VALUE}"
[sources.twilio]
account_sid = "{TWILIO_ACCOUNT}"
auth_token = "{TWILIO_TOKEN}"
webhook_url = "{webhook_url}"
api_url = "{twilio}"
[notifications.webhook]
url = "{catcher}"
secret = "{NOTIFY_SECRET}"
{hubspot}{salesforce}"#,
        catcher = catcher.url(),
        d360 = d360.url(),
        twilio = twilio.api_url(),
        hubspot = hubspot_section(
            &hs.url(),
            &format!(
                "client_id = \"secrets-client\"\nclient_secret = \"{HS_CLIENT_SECRET}\"\nrefresh_token = \"{HS_REFRESH}\""
            )
        ),
    );
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );
    let (ok, provisioned) = d.cli(&["provision"]);
    assert!(ok, "{provisioned}");
    d.restart_with_env(&[("RUST_LOG", "debug")]).await;

    let client = reqwest::Client::new();
    let mut answers = String::new();
    let image = samples::all()
        .into_iter()
        .find(|s| s.file == "image.jpg")
        .unwrap();
    let sample = webhooks::Sample {
        kind: image.kind,
        mime_type: image.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut expected = 0;
    for i in 0..12 {
        let digest = graph.add_media(&format!("sec-{i}"), image.bytes, &image.mime_type);
        let mut m = webhooks::message_json(
            &sample,
            &format!("wamid.sec.{i}"),
            &format!("sec-{i}"),
            1_790_000_000 + i,
        );
        m["image"]["sha256"] = digest.into();
        let body = webhooks::webhook_body(vec![m]);
        assert_eq!(
            post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
            200
        );
        expected += 1;
    }
    // One whose file WhatsApp no longer has: a dead letter with its reason.
    let m = webhooks::message_json(&sample, "wamid.sec.gone", "never-uploaded", 1_790_000_100);
    let body = webhooks::webhook_body(vec![m]);
    assert_eq!(
        post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
        200
    );
    // 360dialog, right and wrong.
    let d360_digest = d360.add_media("sec-d360", image.bytes, &image.mime_type);
    let mut m = webhooks::message_json(&sample, "wamid.sec.d360", "sec-d360", 1_790_000_200);
    m["image"]["sha256"] = d360_digest.into();
    let body = webhooks::webhook_body(vec![m]);
    for value in ["wrong", D360_HEADER_VALUE] {
        let r = client
            .post(d.url("/webhooks/d360"))
            .header("X-Token", value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        answers.push_str(&r.text().await.unwrap());
    }
    expected += 1;
    // Twilio, right and wrong (a proxy's URL change, whose error names URLs).
    let params = webhook_params(
        TWILIO_ACCOUNT,
        &Inbound {
            message_sid: "MMsecrets",
            from: "+4917012345678",
            to: "+14155238886",
            profile_name: None,
            body: None,
            media: vec![(
                twilio.add_media("MMsecrets", image.bytes, "image/jpeg"),
                "image/jpeg".into(),
            )],
        },
    );
    for url in [
        webhook_url.replace("http://", "https://"),
        webhook_url.clone(),
    ] {
        let (body, signature) = signed_form(TWILIO_TOKEN, &url, &params);
        let r = client
            .post(d.url("/webhooks/twilio"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        answers.push_str(&r.text().await.unwrap());
    }
    expected += 1;
    // A forged Meta signature and a wrong verify token.
    let forged = client
        .post(d.url("/webhooks/whatsapp"))
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(b"{}".to_vec())
        .send()
        .await
        .unwrap();
    answers.push_str(&forged.text().await.unwrap());
    let handshake = client
        .get(d.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"))
        .send()
        .await
        .unwrap();
    answers.push_str(&handshake.text().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let c = d.status()["queue"]["counts"].clone();
        if c["done"] == expected && c["dead"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{c}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hs.counts().refreshes >= 2,
        "tokens expired and were refreshed during the run"
    );

    let (_, status_text) = d.cli(&["status"]);
    let status_json = d.status().to_string();
    let (_, check) = d.cli(&["check"]);
    let metrics = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    d.terminate();
    let everything = [
        ("the log", d.log()),
        ("status", status_text),
        ("status --json", status_json),
        ("check", check),
        ("provision", provisioned),
        ("/metrics", metrics),
        ("webhook answers", answers),
    ];
    let key_line = SANDBOX_PRIVATE_KEY
        .lines()
        .nth(3)
        .expect("a PEM body line")
        .to_owned();
    let mut secrets = vec![
        ("sources.meta.app_secret", APP_SECRET.to_owned()),
        ("sources.meta.verify_token", VERIFY_TOKEN.to_owned()),
        ("sources.meta.access_token", ACCESS_TOKEN.to_owned()),
        ("storage.link_secret", LINK_SECRET.to_owned()),
        ("sources.d360.api_key", D360_KEY.to_owned()),
        (
            "sources.d360.webhook_header_value",
            D360_HEADER_VALUE.to_owned(),
        ),
        ("sources.twilio.auth_token", TWILIO_TOKEN.to_owned()),
        ("hubspot client_secret", HS_CLIENT_SECRET.to_owned()),
        ("notifications.webhook.secret", NOTIFY_SECRET.to_owned()),
        ("hubspot refresh_token", HS_REFRESH.to_owned()),
        ("salesforce private key", key_line),
        // What the vendors issued during the run.
        ("a HubSpot access token", "sim-at-".to_owned()),
        ("a rotated HubSpot refresh token", "sim-rt-".to_owned()),
        ("a Salesforce session", "00Dsim000000001!".to_owned()),
    ];
    if let Some(current) = hs.current_refresh_token() {
        secrets.push(("the current HubSpot refresh token", current));
    }
    for (where_, text) in &everything {
        assert!(text.len() > 20, "{where_} printed nothing to check");
        for (what, secret) in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} appears in {where_}:\n{text}"
            );
        }
    }
}
