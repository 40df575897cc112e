//! An admin's first hour, on the real binary: secrets kept as README says (files named after
//! their key, out of the config file) are found by every command, commands that only read the
//! queue need none, `check` tries every WhatsApp source's credentials and names a host that
//! does not answer with the key that set it, and a problem is printed once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use wa2crm_e2e::{ACCESS_TOKEN, APP_SECRET, Daemon, config_toml, free_port, hubspot_section};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::twilio::TwilioSim;

const PHONE_NUMBER_ID: &str = "106540352242922";
const D360_KEY: &str = "d360-key-5b1c";
const TWILIO_ACCOUNT: &str = "AC0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const TWILIO_TOKEN: &str = "twilio-token-8e7d";
const HS_TOKEN: &str = "pat-na1-first-hour";

/// `wa2crm <args> --config <path>`: (success, stdout + stderr).
fn wa2crm(args: &[&str], config: &std::path::Path) -> (bool, String) {
    let out = Command::new(wa2crm_e2e::binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_files_and_every_source_checked() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    graph.add_phone_number(PHONE_NUMBER_ID, "+49 30 1234567", "Acme GmbH");
    let d360 = GraphSim::start_d360(D360_KEY).await.unwrap();
    let twilio = TwilioSim::start(TWILIO_ACCOUNT, TWILIO_TOKEN)
        .await
        .unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    d360.set_webhook_url(&format!("http://127.0.0.1:{port}/webhooks/d360"));
    let sources = format!(
        r#"
[sources.d360]
base_url = "{d360}"
webhook_header = "X-Token"
webhook_header_value = "header-value-77"
[sources.twilio]
account_sid = "{TWILIO_ACCOUNT}"
webhook_url = "http://127.0.0.1:{port}/webhooks/twilio"
api_url = "{twilio}"
[[routes]]
source = "meta"
number = "{PHONE_NUMBER_ID}"
connectors = ["hubspot"]
{hubspot}"#,
        d360 = d360.url(),
        twilio = twilio.api_url(),
        hubspot = hubspot_section(&hs.url(), ""),
    );
    // The secrets leave the file for files named after their keys, as README says.
    let full = config_toml(dir.path(), port, &graph.url(), &sources);
    let without_secrets = full
        .replace(&format!("app_secret = \"{APP_SECRET}\"\n"), "")
        .replace(&format!("access_token = \"{ACCESS_TOKEN}\"\n"), "");
    let d = Daemon::new(dir.path(), &without_secrets, port);
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    for (key, value) in [
        ("sources.meta.app_secret", APP_SECRET),
        ("sources.meta.access_token", ACCESS_TOKEN),
        ("sources.d360.api_key", D360_KEY),
        ("sources.twilio.auth_token", TWILIO_TOKEN),
        ("connectors.hubspot.token", HS_TOKEN),
    ] {
        std::fs::write(secrets.join(key), format!("{value}\n")).unwrap();
    }
    let with_secrets = ["--credentials-dir", secrets.to_str().unwrap()];

    // Without them, every missing secret is named once, with where it may go.
    let (ok, out) = wa2crm(&["check"], &d.config_path);
    assert!(!ok, "{out}");
    assert_eq!(
        out.matches("sources.meta.app_secret: is missing").count(),
        1,
        "printed once: {out}"
    );
    assert!(
        out.contains("sources.twilio.auth_token: is missing"),
        "{out}"
    );
    assert!(
        out.contains("/etc/wa2crm/secrets/sources.meta.app_secret"),
        "{out}"
    );
    // Reading the queue needs no secret at all.
    let (ok, out) = wa2crm(&["status"], &d.config_path);
    assert!(ok, "{out}");

    let provision = [&["provision"][..], &with_secrets[..]].concat();
    let (ok, out) = wa2crm(&provision, &d.config_path);
    assert!(ok, "{out}");
    let check = [&["check"][..], &with_secrets[..]].concat();
    let (ok, out) = wa2crm(&check, &d.config_path);
    assert!(ok, "{out}");
    for line in [
        "ok   sources.meta: routes[0].number 106540352242922 is +49 30 1234567 (Acme GmbH)",
        "ok   sources.d360: the key works; 360dialog sends this number's webhooks to",
        "ok   sources.twilio: account AC0f1e2d3c4b5a69788796a5b4c3d2e1f0 (wa2crm sandbox)",
        "ok   connectors.hubspot:",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }

    // Wrong credentials for each source: each named at its key, on its own line.
    for (key, value) in [
        ("sources.meta.access_token", "revoked"),
        ("sources.d360.api_key", "wrong"),
        ("sources.twilio.auth_token", "wrong"),
    ] {
        std::fs::write(secrets.join(key), value).unwrap();
    }
    let (ok, out) = wa2crm(&check, &d.config_path);
    assert!(!ok, "{out}");
    for line in [
        "FAIL sources.meta.access_token: Meta refused the token",
        "FAIL sources.d360.api_key: 360dialog refused the key",
        "FAIL sources.twilio.auth_token: Twilio refused account_sid",
        "3 problem(s)",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    std::fs::write(secrets.join("sources.meta.access_token"), ACCESS_TOKEN).unwrap();
    std::fs::write(secrets.join("sources.d360.api_key"), D360_KEY).unwrap();
    std::fs::write(secrets.join("sources.twilio.auth_token"), TWILIO_TOKEN).unwrap();

    // A route naming a number the token cannot read; a webhook set elsewhere at 360dialog; a
    // CRM host that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    d360.set_webhook_url("https://old-integration.example.com/hook");
    std::fs::write(
        &d.config_path,
        without_secrets
            .replace(
                &format!("number = \"{PHONE_NUMBER_ID}\""),
                "number = \"999\"",
            )
            .replace(&hs.url(), &format!("http://{silent_addr}")),
    )
    .unwrap();
    let (ok, out) = wa2crm(&check, &d.config_path);
    assert!(!ok, "{out}");
    for line in [
        "FAIL routes[0].number: the access token cannot read phone_number_id 999",
        "FAIL sources.d360: 360dialog sends this number's webhooks to https://old-integration.example.com/hook",
        &format!(
            "FAIL connectors.hubspot.base_url: cannot reach {silent_addr} (no answer within 5 s)"
        ),
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    drop(silent);
}

/// `status` tells the truth: whether a daemon runs and since when, and a connector is
/// "delivering" only while one runs and its last call succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_whether_a_daemon_is_running() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_toml(
        dir.path(),
        port,
        &graph.url(),
        &hubspot_section(&hs.url(), &format!("token = \"{HS_TOKEN}\"")),
    );
    let mut d = Daemon::new(dir.path(), &config, port);
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok, "{out}");
    let (ok, out) = d.cli(&["status"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("daemon: NOT RUNNING (none has run on this queue yet)"),
        "{out}"
    );
    assert!(
        out.contains("connector hubspot: not delivering: no daemon is running"),
        "{out}"
    );

    d.restart().await;
    let (_, out) = d.cli(&["status"]);
    assert!(out.contains("daemon: running since "), "{out}");
    assert!(
        out.contains("connector hubspot: waiting: nothing delivered yet"),
        "{out}"
    );
    let body = wa2crm_e2e::distinct_image_webhook(&graph, "st", 1, "+4915111111111");
    assert_eq!(
        wa2crm_e2e::post_webhook(
            d.client(),
            &d.url("/webhooks/whatsapp"),
            &body,
            wa2crm_e2e::sign(&body)
        )
        .await,
        reqwest::StatusCode::OK
    );
    wa2crm_e2e::eventually(
        std::time::Duration::from_secs(30),
        "the connector delivering",
        async || d.status()["connectors"][0]["state"] == "delivering",
    )
    .await;
    assert_eq!(d.status()["daemon"]["running"], true);

    d.terminate();
    let status = d.status();
    assert_eq!(status["daemon"]["running"], false, "{status}");
    assert!(status["daemon"]["last_seen"].is_string(), "{status}");
    assert_eq!(status["connectors"][0]["state"], "stopped", "{status}");
    let (_, out) = d.cli(&["status"]);
    assert!(out.contains("daemon: NOT RUNNING (last seen "), "{out}");
}
