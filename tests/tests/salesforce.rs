//! The real binary delivering into the Salesforce simulator: check and provision from the CLI,
//! then webhook → Contact + media record with its lookup, with sessions ending under load; a
//! record Salesforce refuses among others that land; the daily reserve pausing deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use wa2crm_e2e::{ACCESS_TOKEN, Daemon, config_toml, free_port, post_webhook, sign};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::salesforce::{SANDBOX_PRIVATE_KEY, SalesforceSim, SalesforceSimConfig};
use wa2crm_sandbox::samples;
use wa2crm_sandbox::webhooks;

const TS: i64 = 1_790_000_000; // 2026-09-21T14:13:20Z
use wa2crm_e2e::{SF_CLIENT as CLIENT, SF_USER as USER};

fn section(sim: &SalesforceSim, key_path: &std::path::Path, permission_set: &str) -> String {
    wa2crm_e2e::salesforce_section(&sim.url(), key_path, permission_set)
}

fn webhook(graph: &GraphSim, i: usize, sender: &str) -> Vec<u8> {
    let s = samples::all()
        .into_iter()
        .find(|s| s.file == "voice.ogg")
        .unwrap();
    let media_id = format!("m-{i}");
    let digest = graph.add_media(&media_id, s.bytes, &s.mime_type);
    let sample = webhooks::Sample {
        kind: s.kind,
        mime_type: s.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut m = webhooks::message_json(&sample, &format!("wamid.sf.{i}"), &media_id, TS + i as i64);
    m["from"] = sender.trim_start_matches('+').into();
    m["audio"]["sha256"] = digest.into();
    webhooks::webhook_body(vec![m])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_notes_become_media_records_looked_up_to_their_contacts_across_ended_sessions() {
    let (graph, sf, mut d, _dir) = org_and_daemon(100_000).await;
    let (ok, out) = d.cli(&["check"]);
    assert!(
        !ok && out.contains("FAIL connectors.salesforce: Contact.WhatsApp_Id__c: missing"),
        "{out}"
    );
    let (ok, out) = d.cli(&["provision"]);
    assert!(
        ok && out.contains("did create WhatsApp_Media__c.Contact__c (Lookup)"),
        "{out}"
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");

    d.restart().await;
    let client = reqwest::Client::new();
    let n = 30;
    for i in 0..n {
        if i == n / 2 {
            // The org's admin shortens the session timeout: every session ends now.
            sf.expire_sessions();
        }
        let body = webhook(&graph, i, &format!("+1415555{:04}", i % 5));
        let status = post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
        assert_eq!(status, 200);
    }
    d.wait_done(n).await;
    assert_eq!(sf.records("WhatsApp_Media__c").len(), n);
    assert_eq!(sf.records("Contact").len(), 5);
    let contact = sf
        .find("Contact", "WhatsApp_Id__c", "+14155550003")
        .unwrap();
    let media = sf
        .find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.sf.3")
        .unwrap();
    assert_eq!(media["Contact__c"], contact["Id"]);
    assert_eq!(media["Media_Type__c"], "voice");
    assert_eq!(media["Received_At__c"], "2026-09-21T14:13:23.000Z");
    let link = media["Media_Url__c"].as_str().unwrap();
    assert_eq!(
        reqwest::get(link).await.unwrap().status(),
        200,
        "the link plays"
    );
    let counts = sf.counts();
    assert_eq!(counts.max_concurrent_logins, 1, "{counts:?}");
    assert!(
        counts.logins >= 2 && counts.failed_logins == 0,
        "{counts:?}"
    );
}

/// An org with the media object (its fields not yet provisioned) and a daemon configured for it.
async fn org_and_daemon(allocation: u64) -> (GraphSim, SalesforceSim, Daemon, tempfile::TempDir) {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let mut config = SalesforceSimConfig::new(CLIENT, USER);
    config.daily_allocation = allocation;
    let permission_set = config.permission_set.clone();
    let sf = SalesforceSim::start(config).await.unwrap();
    sf.add_object("WhatsApp_Media__c");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("salesforce.key");
    std::fs::write(&key, SANDBOX_PRIVATE_KEY).unwrap();
    let port = free_port();
    let extra = section(&sf, &key, &permission_set);
    let d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );
    (graph, sf, d, dir)
}

/// A provisioned org and a running daemon delivering into it.
async fn provisioned(allocation: u64) -> (GraphSim, SalesforceSim, Daemon, tempfile::TempDir) {
    let (graph, sf, mut d, dir) = org_and_daemon(allocation).await;
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok, "{out}");
    d.restart().await;
    (graph, sf, d, dir)
}

async fn post_all(d: &Daemon, graph: &GraphSim, ids: std::ops::Range<usize>) {
    let client = reqwest::Client::new();
    for i in ids {
        let body = webhook(graph, i, &format!("+1415555{:04}", i % 3));
        let status = post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_salesforce_refuses_dead_letters_only_its_own_job_with_the_rule_named() {
    let (graph, sf, d, _dir) = provisioned(100_000).await;
    sf.add_validation_rule(
        "WhatsApp_Media__c",
        "WA_Message_Id__c",
        json!("wamid.sf.2"),
        "Media of closed cases is not accepted",
    );
    post_all(&d, &graph, 0..6).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = d.status();
        let c = &s["queue"]["counts"];
        if c["done"] == 5 && c["dead"] == 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dead = &status["dead_letters"][0];
    assert_eq!(dead["message_id"], "wamid.sf.2");
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("salesforce")
            && reason.contains(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION: Media of closed cases is not accepted"
            ),
        "{reason}"
    );
    assert_eq!(sf.records("WhatsApp_Media__c").len(), 5);
    assert!(
        sf.find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.sf.2")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_reserve_pauses_deliveries_before_the_orgs_last_calls() {
    let (graph, sf, d, _dir) = provisioned(1000).await;
    // 20 % reserved for the org's other integrations: wa2crm stops at 800 of 1000.
    sf.set_api_usage(796);
    post_all(&d, &graph, 0..30).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = d.status();
        if s["connectors"][0]["paused"] == true {
            break s;
        }
        assert!(Instant::now() < deadline, "never paused: {s}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = status["connectors"][0]["pause_reason"].as_str().unwrap();
    assert!(
        reason.contains("of its 1000 daily API calls")
            && reason.contains("reserved for its other integrations"),
        "{reason}"
    );
    // Media arriving during the pause are stored and wait: batching may have delivered all of
    // the first 30 in the calls left before the reserve, these 10 cannot have gone out.
    post_all(&d, &graph, 30..40).await;
    // Every job is either delivered or waiting; none is given up on.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = d.status()["queue"]["counts"].clone();
        assert_eq!(c["dead"], 0, "{c}");
        if c["running"] == 0 && c["queued"].as_u64().unwrap() >= 10 {
            assert_eq!(
                c["queued"].as_u64().unwrap() + c["done"].as_u64().unwrap(),
                40,
                "{c}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{c}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What was in flight when the pause began may land; nothing is sent after it.
    let used = sf.api_usage();
    assert!(used <= 800 + 4, "{used} calls: the reserve was eaten into");
    let (_, text) = d.cli(&["status"]);
    assert!(
        text.contains("connector salesforce: PAUSED until"),
        "{text}"
    );
    assert_eq!(sf.api_usage(), used);
}
