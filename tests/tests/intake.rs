//! Webhook intake through the real binary: what is stored, what is refused, what survives a kill.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use wa2crm_e2e::{
    APP_SECRET, Daemon, NO_GRAPH, VERIFY_TOKEN, config_toml, eventually, free_port, post_webhook,
    sign,
};
use wa2crm_sandbox::webhooks::{self, samples};

async fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No Graph API: the jobs stay in the queue, retrying, which is all intake tests look at.
    let d = Daemon::start(
        dir.path(),
        &config_toml(dir.path(), port, NO_GRAPH, ""),
        port,
    )
    .await;
    (dir, d)
}

const ACCEPTED: &str = "wa2crm_media_events_total{source=\"meta\",outcome=\"accepted\"}";
const DUPLICATE: &str = "wa2crm_media_events_total{source=\"meta\",outcome=\"duplicate\"}";

#[tokio::test]
async fn a_signed_webhook_of_every_kind_becomes_one_job_each() {
    let (_dir, d) = daemon().await;
    let client = reqwest::Client::new();
    let messages = samples()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            webhooks::message_json(s, &format!("wamid.k{i}"), &format!("m{i}"), 1_750_000_000)
        })
        .collect();
    let body = webhooks::webhook_body(messages);
    let url = d.url("/webhooks/whatsapp");
    assert_eq!(
        post_webhook(&client, &url, &body, sign(&body)).await,
        StatusCode::OK
    );
    assert_eq!(d.total_jobs(), 6);
    assert_eq!(d.metric(ACCEPTED).await, 6.0);
    let received = "wa2crm_webhooks_received_total{source=\"meta\"}";
    assert_eq!(d.metric(received).await, 1.0);
    // The queue's gauges are read in the background every few seconds, not at each scrape.
    eventually(
        Duration::from_secs(15),
        "the queue gauges count 6 jobs",
        async || {
            let metrics = d.metrics().await;
            let depth: f64 = ["queued", "running", "done", "dead"]
                .iter()
                .map(|s| metrics.get(&format!("wa2crm_queue_jobs{{state=\"{s}\"}}")))
                .sum();
            depth == 6.0
        },
    )
    .await;
}

#[tokio::test]
async fn the_same_webhook_five_times_some_concurrently_is_one_job() {
    let (_dir, d) = daemon().await;
    let client = reqwest::Client::new();
    let body = webhooks::single_message_body(&samples()[0], "wamid.five", 1_750_000_000);
    let url = d.url("/webhooks/whatsapp");
    for _ in 0..2 {
        assert_eq!(
            post_webhook(&client, &url, &body, sign(&body)).await,
            StatusCode::OK
        );
    }
    let mut racers = Vec::new();
    for _ in 0..3 {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        racers.push(tokio::spawn(async move {
            post_webhook(&client, &url, &body, sign(&body)).await
        }));
    }
    for r in racers {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(d.total_jobs(), 1);
    assert_eq!(d.metric(ACCEPTED).await, 1.0);
    assert_eq!(d.metric(DUPLICATE).await, 4.0);
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let (_dir, d) = daemon().await;
    let client = reqwest::Client::new();
    let body = webhooks::single_message_body(&samples()[1], "wamid.forged", 1_750_000_000);
    let url = d.url("/webhooks/whatsapp");
    let wrong_key = Some(wa2crm_sandbox::webhooks::signature(
        "not-the-app-secret",
        &body,
    ));
    assert_eq!(
        post_webhook(&client, &url, &body, wrong_key).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_webhook(&client, &url, &body, None).await,
        StatusCode::UNAUTHORIZED
    );
    // A valid signature of another body does not carry over.
    let other = webhooks::single_message_body(&samples()[1], "wamid.other", 1_750_000_000);
    assert_eq!(
        post_webhook(&client, &url, &body, sign(&other)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(d.total_jobs(), 0);
    let rejected = "wa2crm_webhooks_rejected_total{source=\"meta\",reason=\"signature\"}";
    assert_eq!(d.metric(rejected).await, 3.0);
}

#[tokio::test]
async fn a_job_answered_200_survives_sigkill() {
    let (_dir, mut d) = daemon().await;
    let client = reqwest::Client::new();
    let body = webhooks::single_message_body(&samples()[2], "wamid.kill", 1_750_000_000);
    let url = d.url("/webhooks/whatsapp");
    assert_eq!(
        post_webhook(&client, &url, &body, sign(&body)).await,
        StatusCode::OK
    );
    d.kill();
    d.restart().await;
    assert_eq!(d.total_jobs(), 1);
    // It is the same job: Meta redelivering after the crash adds nothing.
    assert_eq!(
        post_webhook(&client, &url, &body, sign(&body)).await,
        StatusCode::OK
    );
    assert_eq!(d.metric(DUPLICATE).await, 1.0);
    assert_eq!(d.total_jobs(), 1);
}

#[tokio::test]
async fn oversized_unparseable_and_unicode_bodies() {
    let (_dir, d) = daemon().await;
    let client = reqwest::Client::new();
    let url = d.url("/webhooks/whatsapp");

    let big = vec![b' '; 70_000];
    assert_eq!(
        post_webhook(&client, &url, &big, sign(&big)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let too_large = "wa2crm_webhooks_rejected_total{source=\"meta\",reason=\"too_large\"}";
    assert_eq!(d.metric(too_large).await, 1.0);

    // Signed but not Cloud API JSON: acknowledged so Meta stops resending, and counted.
    let junk = b"{\"object\": \"whatsapp_business_account\", \"entry\": 5}";
    assert_eq!(
        post_webhook(&client, &url, junk, sign(junk)).await,
        StatusCode::OK
    );
    let unparseable = "wa2crm_webhooks_unparseable_total{source=\"meta\"}";
    assert_eq!(d.metric(unparseable).await, 1.0);

    // Meta signs the \u-escaped form of non-ASCII payloads; the raw bytes arrive.
    let raw = String::from_utf8(webhooks::single_message_body(
        &samples()[2],
        "wamid.ü",
        1_750_000_000,
    ))
    .unwrap();
    assert!(raw.contains("Tür"));
    let escaped: String = raw
        .chars()
        .flat_map(|c| {
            if (c as u32) <= 0x7e {
                vec![c.to_string()]
            } else {
                c.encode_utf16(&mut [0; 2])
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect();
    let sig = Some(wa2crm_sandbox::webhooks::signature(
        APP_SECRET,
        escaped.as_bytes(),
    ));
    assert_eq!(
        post_webhook(&client, &url, raw.as_bytes(), sig).await,
        StatusCode::OK
    );
    assert_eq!(d.total_jobs(), 1);
}

#[tokio::test]
async fn subscription_handshake_health_and_graceful_stop() {
    let (_dir, mut d) = daemon().await;
    let ok = reqwest::get(d.url(&format!(
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    )))
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"], "text/plain");
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = reqwest::get(
        d.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    let ready = reqwest::get(d.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let status = d.terminate();
    assert!(
        status.success(),
        "SIGTERM must end the daemon cleanly: {status}\n{}",
        d.log()
    );
}

#[tokio::test]
async fn a_config_error_stops_run_with_each_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"nowhere\"\npublic_url = \"https://x\"\n[queue]\nworkers = 0\n\
         [storage]\nlink_secret = \"0123456789abcdef\"\n\
         [sources.meta]\napp_secret = \"\"\nverify_token = \"v\"\naccess_token = \"t\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(wa2crm_e2e::binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [
        "server.listen: \"nowhere\" is not an address",
        "queue.workers: 0 is outside",
        "sources.meta.app_secret: is empty",
    ] {
        assert!(err.contains(line), "{line:?} missing from:\n{err}");
    }
}
