//! The fidelity suites: each simulator driven by the vendor's own client (HubSpot's
//! `hubspot-api-client`, Salesforce's `simple-salesforce`, both from PyPI) through every endpoint
//! the connectors use, asserting what the vendor documents. The suites are pytest files in
//! `crates/sandbox/fidelity/`; this test starts the simulators they need, hands them their URLs
//! and credentials in `WA2CRM_FIDELITY`, and fails with pytest's report when any assertion does.
//!
//! The Python clients live in the project's `.venv` (scripts/test.sh installs them from
//! `crates/sandbox/fidelity/requirements.txt`); `WA2CRM_FIDELITY_PYTHON` names another
//! interpreter. Without one this test fails, saying how to get it: it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, Limits, OAuthApp};
use wa2crm_sandbox::salesforce::{SalesforceSim, SalesforceSimConfig};

const TOKEN: &str = "pat-na1-fidelity";

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("WA2CRM_FIDELITY_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the vendors' clients at {}: run scripts/test.sh, or \
         `python3 -m venv .venv && .venv/bin/pip install -r crates/sandbox/fidelity/requirements.txt`",
        venv.display()
    );
    venv
}

fn private_app(per_10s: u32, daily: Option<u64>) -> HubSpotSimConfig {
    let mut c = HubSpotSimConfig::private_app(TOKEN);
    c.limits = Limits {
        max_per_interval: per_10s,
        interval: Duration::from_secs(10),
        daily,
    };
    c
}

fn oauth(ttl: Duration) -> HubSpotSimConfig {
    HubSpotSimConfig::oauth(OAuthApp {
        client_id: "fidelity-client".into(),
        client_secret: "fidelity-secret".into(),
        refresh_token: "fidelity-refresh".into(),
        token_ttl: ttl,
        rotate_refresh_token: false,
    })
}

async fn run_suite(file: &str, sims: serde_json::Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fidelity");
    let python = python();
    // pytest in a blocking thread: the simulators keep answering on this runtime meanwhile.
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let file = file.to_owned();
        move || {
            std::process::Command::new(python)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &file])
                .current_dir(dir)
                .env("WA2CRM_FIDELITY", sims.to_string())
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdin(Stdio::null())
                .output()
                .expect("pytest could not be started")
        }
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{file}:\n{report}");
    // pytest's own closing line, e.g. "27 passed in 1.2s": the suite ran and passed.
    assert!(report.contains(" passed"), "{file} ran no test:\n{report}");
    println!("{file}: {}", report.lines().last().unwrap_or(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_simulator_against_hubspots_own_client() {
    let hubspot = HubSpotSim::start(private_app(10_000, Some(1_000_000)))
        .await
        .unwrap();
    let mut narrow = private_app(10_000, Some(1_000_000));
    narrow.scopes = vec![
        "crm.objects.contacts.read".into(),
        "crm.schemas.contacts.read".into(),
    ];
    let narrow = HubSpotSim::start(narrow).await.unwrap();
    let oauth_app = HubSpotSim::start(oauth(Duration::from_secs(1800)))
        .await
        .unwrap();
    let expiring = HubSpotSim::start(oauth(Duration::ZERO)).await.unwrap();
    let daily = HubSpotSim::start(private_app(10_000, Some(3)))
        .await
        .unwrap();
    let burst = HubSpotSim::start(private_app(100, Some(250_000)))
        .await
        .unwrap();
    let searching = HubSpotSim::start(private_app(10_000, Some(1_000_000)))
        .await
        .unwrap();
    searching.set_search_lag(Duration::from_millis(300));
    searching.add_record("contacts", &[("phone", "+49 151 23456789")]);
    searching.add_record("contacts", &[("phone", "0151 23456789")]);
    let search_burst = HubSpotSim::start(private_app(10_000, Some(1_000_000)))
        .await
        .unwrap();
    let app = |s: &HubSpotSim| {
        json!({"url": s.url(), "client_id": "fidelity-client", "client_secret": "fidelity-secret",
            "refresh_token": "fidelity-refresh"})
    };
    run_suite(
        "test_hubspot.py",
        json!({
            "hubspot": {"url": hubspot.url(), "token": TOKEN},
            "hubspot_narrow": {"url": narrow.url(), "token": TOKEN},
            "hubspot_oauth": app(&oauth_app),
            "hubspot_expiring": app(&expiring),
            "hubspot_daily": {"url": daily.url(), "token": TOKEN, "daily": 3},
            "hubspot_burst": {"url": burst.url(), "token": TOKEN, "per_10s": 100},
            "hubspot_search": {"url": searching.url(), "token": TOKEN},
            "hubspot_search_burst": {"url": search_burst.url(), "token": TOKEN},
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_simulator_against_simple_salesforce() {
    let config = SalesforceSimConfig::new("fidelity-app", "integration@example.com");
    let (secret, permission_set) = (config.client_secret.clone(), config.permission_set.clone());
    let org = SalesforceSim::start(config.clone()).await.unwrap();
    org.add_object("WhatsApp_Media__c");
    let mut small = config;
    small.daily_allocation = 3;
    let small = SalesforceSim::start(small).await.unwrap();
    let login = |s: &SalesforceSim| {
        json!({"url": s.url(), "client_id": "fidelity-app", "client_secret": secret,
            "permission_set": permission_set})
    };
    let mut small_login = login(&small);
    small_login["allocation"] = json!(3);
    run_suite(
        "test_salesforce.py",
        json!({"salesforce": login(&org), "salesforce_small": small_login}),
    )
    .await;
}
