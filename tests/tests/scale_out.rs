//! Three `wa2crm run` processes on one PostgreSQL queue and one storage, fed one webhook stream
//! through all of them: the work is shared, a killed instance's jobs are taken over when their
//! leases expire, HubSpot's rate limit holds for the three together, and OAuth refreshes happen
//! one at a time across them, with a rotating refresh token never spent twice.
//!
//! Needs the PostgreSQL server at $WA2CRM_TEST_DATABASE_URL (default 127.0.0.1:5432, user
//! postgres); the test fails, never skips, when it cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, distinct_image_webhook, free_port, hubspot_section,
    post_webhook, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig, OAuthApp};

fn server_url() -> String {
    std::env::var("WA2CRM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema of its own on the test server; the queue URL that selects it.
async fn fresh_queue() -> String {
    let url = server_url();
    let schema = format!(
        "wa2crm_test_scale_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut admin = PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is required for this test and could not be reached: {e}")
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_the_quota_and_one_token() {
    let queue = fresh_queue().await;
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let mut portal = HubSpotSimConfig::oauth(OAuthApp {
        client_id: "scale-client".into(),
        client_secret: "scale-client-secret".into(),
        refresh_token: "scale-refresh-0".into(),
        token_ttl: Duration::from_secs(3),
        rotate_refresh_token: true,
    });
    // The portal allows 150 per 10 s (15 a second); each instance is configured for 100. Three
    // instances pacing themselves alone would send up to 300.
    portal.limits.max_per_interval = 150;
    let hs = HubSpotSim::start(portal).await.unwrap();
    let storage = tempfile::tempdir().unwrap();
    let auth = "client_id = \"scale-client\"\nclient_secret = \"scale-client-secret\"\nrefresh_token = \"scale-refresh-0\"";

    let mut dirs = Vec::new();
    let mut daemons = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let toml = config_toml(
            dir.path(),
            port,
            &graph.url(),
            &hubspot_section(&hs.url(), auth),
        )
        .replace(
            &format!("sqlite://{}/queue.db", dir.path().display()),
            &queue,
        )
        .replace(
            &format!("file://{}/media", dir.path().display()),
            &format!("file://{}", storage.path().display()),
        );
        daemons.push(Daemon::new(dir.path(), &toml, port));
        dirs.push(dir);
    }
    let (ok, out) = daemons[0].cli(&["provision"]);
    assert!(ok, "{out}");
    for d in &mut daemons {
        d.restart().await;
    }

    let client = reqwest::Client::new();
    let n = 45usize;
    for i in 0..n {
        let body = distinct_image_webhook(&graph, "scale", i, &format!("+1415555{:04}", i % 9));
        if i == n / 3 {
            // One instance dies with work in hand; its leases expire and the others take over.
            daemons[1].kill();
        }
        let target = if daemons[i % 3].is_running() {
            i % 3
        } else {
            (i + 1) % 3
        };
        let status = post_webhook(
            &client,
            &daemons[target].url("/webhooks/whatsapp"),
            &body,
            sign(&body),
        )
        .await;
        assert_eq!(status, 200);
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = daemons[0].status();
        let c = &s["queue"]["counts"];
        assert_eq!(c["dead"], 0, "{s}\n{}", daemons[0].log());
        if c["done"] == n as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{s}\n{}\n{}",
            daemons[0].log(),
            daemons[2].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly once: one note per media, one object per file.
    let notes = hs.records("notes");
    let ids: BTreeSet<String> = notes
        .iter()
        .map(|r| r.properties["wa_message_id"].clone())
        .collect();
    assert_eq!(
        (notes.len(), ids.len()),
        (n, n),
        "a note missing or doubled"
    );
    let objects = walk(storage.path());
    assert_eq!(objects, n, "one stored object per file");
    // The work was shared by the instances that stayed up.
    for i in [0, 2] {
        assert!(
            daemons[i].log().contains("Media delivered."),
            "instance {i} delivered nothing:\n{}",
            daemons[i].log()
        );
    }
    let counts = hs.counts();
    assert_eq!(
        counts.too_many_requests, 0,
        "the three instances together exceeded the portal's limit: {counts:?}"
    );
    assert!(counts.refreshes >= 2, "{counts:?}");
    assert_eq!(counts.max_concurrent_refreshes, 1, "{counts:?}");
    assert_eq!(
        counts.failed_refreshes, 0,
        "a rotated refresh token was spent twice: {counts:?}"
    );
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}
