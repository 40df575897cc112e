//! The everyday move from a Salesforce sandbox org to production: the admin changes `login_url`
//! (and the app and user) in the configuration. Nothing kept for the first org — its session in
//! the queue database, a pause — may be used for the second: `check` authenticates afresh and
//! names the org it reached, the daemon writes into the org the configuration names, and an
//! unreachable org is a failing check, never a stale `ok`. With the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, SF_CLIENT, SF_USER, config_toml, distinct_image_webhook, free_port,
    post_webhook, salesforce_section, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::salesforce::{SANDBOX_PRIVATE_KEY, SalesforceSim, SalesforceSimConfig};

async fn org(id: &str, name: &str) -> SalesforceSim {
    let mut config = SalesforceSimConfig::new(SF_CLIENT, SF_USER);
    config.org_id = id.into();
    config.org_name = name.into();
    let sim = SalesforceSim::start(config).await.unwrap();
    sim.add_object("WhatsApp_Media__c");
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_org_in_the_config_is_never_reached_with_the_old_orgs_session() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let sandbox = org("00Dsandbox000001AAA", "Acme (sandbox)").await;
    let production = org("00Dproduction001AAA", "Acme").await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("salesforce.key");
    std::fs::write(&key, SANDBOX_PRIVATE_KEY).unwrap();
    let permission_set = SalesforceSimConfig::new(SF_CLIENT, SF_USER).permission_set;
    let port = free_port();
    let config_for = |sim: &SalesforceSim| {
        config_toml(
            dir.path(),
            port,
            &graph.url(),
            &salesforce_section(&sim.url(), &key, &permission_set),
        )
    };
    let mut d = Daemon::start_provisioned(dir.path(), &config_for(&sandbox), port).await;
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Salesforce org 00Dsandbox000001AAA \"Acme (sandbox)\""),
        "{out}"
    );
    let body = distinct_image_webhook(&graph, "org", 1, "+4915111111111");
    assert_eq!(
        post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
        reqwest::StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox.records("WhatsApp_Media__c").is_empty() {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.terminate();

    // Production: the session of the sandbox org is still in the queue database.
    std::fs::write(&d.config_path, config_for(&production)).unwrap();
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok, "{out}");
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Salesforce org 00Dproduction001AAA \"Acme\""),
        "{out}"
    );
    assert!(!out.contains("sandbox"), "{out}");
    d.restart().await;
    let body = distinct_image_webhook(&graph, "org", 2, "+4915111111111");
    assert_eq!(
        post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
        reqwest::StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while production.records("WhatsApp_Media__c").is_empty() {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sandbox.records("WhatsApp_Media__c").len(),
        1,
        "nothing more written into the sandbox org"
    );
    d.terminate();

    // An org that cannot be reached is a failing check, not an `ok` from a cached session.
    std::fs::write(
        &d.config_path,
        config_for(&production).replace(&production.url(), "http://127.0.0.1:9"),
    )
    .unwrap();
    let (ok, out) = d.cli(&["check"]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL connectors.salesforce"), "{out}");
}
