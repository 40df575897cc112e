//! The real binary delivering into the HubSpot simulator: check and provision from the CLI,
//! webhook → contact, properties and a timeline note, OAuth expiry under load with 429 storms,
//! and a dead refresh token that pauses the connector and shows in `status`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;
use wa2crm_e2e::{ACCESS_TOKEN, Daemon, config_toml, eventually, free_port, post_webhook, sign};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{Fault, HubSpotSim, HubSpotSimConfig, OAuthApp};
use wa2crm_sandbox::samples::{self, SampleMedia};

const TS: i64 = 1_790_000_000; // 2026-09-21
const HS_TOKEN: &str = "pat-na1-e2e";

fn hubspot_section(sim: &HubSpotSim, auth: &str) -> String {
    wa2crm_e2e::hubspot_section(&sim.url(), auth)
}

fn webhook(graph: &GraphSim, s: &SampleMedia, message_id: &str, sender: &str, ts: i64) -> Vec<u8> {
    wa2crm_e2e::media_webhook(graph, s, message_id, sender, ts, None)
}

async fn post(d: &Daemon, body: &[u8]) -> u16 {
    let client = reqwest::Client::new();
    post_webhook(&client, &d.url("/webhooks/whatsapp"), body, sign(body))
        .await
        .as_u16()
}

async fn wait_done(d: &Daemon, jobs: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let c = d.status()["queue"]["counts"].clone();
        if c["done"].as_u64().unwrap() == jobs {
            return;
        }
        assert!(
            c["dead"].as_u64().unwrap() == 0,
            "dead letters: {}\n{}",
            d.status(),
            d.log()
        );
        assert!(
            Instant::now() < deadline,
            "not done in {within:?}: {c}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sample(kind: &str) -> SampleMedia {
    samples::all()
        .into_iter()
        .find(|s| s.file.starts_with(kind))
        .unwrap_or_else(|| panic!("no sample {kind}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_provision_then_a_voice_note_lands_on_the_contact_with_a_note() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = hubspot_section(&hs, &format!("token = \"{HS_TOKEN}\"\nupload = true"));
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );

    let (ok, out) = d.cli(&["check"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL connectors.hubspot: contacts.whatsapp_id: missing"),
        "{out}"
    );
    assert!(
        out.contains("FAIL connectors.hubspot: notes.wa_message_id: missing"),
        "{out}"
    );
    let (ok, out) = d.cli(&["provision", "--dry-run"]);
    assert!(
        ok && out.contains("would create contacts.whatsapp_id (string/text, unique)"),
        "{out}"
    );
    assert!(hs.property("contacts", "whatsapp_id").is_none());
    let (ok, out) = d.cli(&["provision"]);
    assert!(
        ok && out.contains("did create notes.wa_message_id"),
        "{out}"
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok   connectors.hubspot: HubSpot portal 12345678, mapping matches the CRM"),
        "{out}"
    );

    d.restart().await;
    let voice = samples::all()
        .into_iter()
        .find(|s| s.kind == wa2crm_core::MediaKind::Voice)
        .unwrap();
    let video = sample("video");
    let sender = "+4915112345678";
    let body = webhook(&graph, &voice, "wamid.voice", sender, TS);
    assert_eq!(post(&d, &body).await, 200);
    let body = webhook(&graph, &video, "wamid.video", sender, TS + 60);
    assert_eq!(post(&d, &body).await, 200);
    wait_done(&d, 2, Duration::from_secs(30)).await;

    let contact = hs
        .find("contacts", "whatsapp_id", sender)
        .expect("the contact was created");
    let p = &contact.properties;
    assert_eq!(p["wa_media_type"], "video", "the latest media: {p:?}");
    assert_eq!(p["wa_media_mime"], "video/mp4");
    assert_eq!(p["wa_media_size"], video.bytes.len().to_string());
    assert_eq!(p["wa_media_received_at"], "2026-09-21T14:14:20.000Z");
    let link = &p["wa_media_url"];
    let played = reqwest::get(link).await.unwrap();
    assert_eq!(played.status(), 200);
    assert_eq!(played.bytes().await.unwrap().len(), video.bytes.len());

    let notes = hs.associated("contacts", &contact.id, "notes");
    assert_eq!(notes.len(), 2);
    let note = hs.find("notes", "wa_message_id", "wamid.voice").unwrap();
    assert_eq!(
        hs.association_types("notes", &note.id, "contacts", &contact.id),
        vec![202]
    );
    let body = &note.properties["hs_note_body"];
    assert!(body.contains("WhatsApp voice note"), "{body}");
    assert!(
        body.contains(&format!("{}", voice.bytes.len() / 1024)),
        "{body}"
    );
    assert_eq!(note.properties["hs_timestamp"], "2026-09-21T14:13:20.000Z");
    // upload = true: the stored file itself, private in HubSpot Files, attached to its note.
    let files = hs.files();
    assert_eq!(files.len(), 2, "{files:?}");
    let attached = files
        .iter()
        .find(|f| f.id == note.properties["hs_attachment_ids"])
        .expect("the note's attachment is in HubSpot Files");
    assert_eq!(attached.access, "PRIVATE");
    assert_eq!(attached.size, voice.bytes.len() as u64);

    let status = d.status();
    assert_eq!(status["connectors"][0]["name"], "hubspot");
    assert_eq!(status["connectors"][0]["paused"], false);
    assert!(
        status["connectors"][0]["last_success"].is_string(),
        "{status}"
    );
    // The queue's gauges are read in the background every few seconds.
    eventually(
        Duration::from_secs(15),
        "nothing waits, and the backlog age says so",
        async || {
            d.metrics()
                .await
                .0
                .contains("\nwa2crm_queue_backlog_seconds 0")
        },
    )
    .await;
    assert!(
        d.metric("wa2crm_deliveries_total{connector=\"hubspot\",outcome=\"ok\"}")
            .await
            >= 2.0
    );
}

fn oauth(ttl: Duration) -> HubSpotSimConfig {
    HubSpotSimConfig::oauth(OAuthApp {
        client_id: "e2e-client".into(),
        client_secret: "e2e-client-secret".into(),
        refresh_token: "e2e-refresh-0".into(),
        token_ttl: ttl,
        rotate_refresh_token: true,
    })
}

const OAUTH_AUTH: &str = "client_id = \"e2e-client\"\nclient_secret = \"e2e-client-secret\"\nrefresh_token = \"e2e-refresh-0\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expiring_every_two_seconds_and_429_storms_lose_and_double_nothing() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(oauth(Duration::from_secs(2)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = hubspot_section(&hs, OAUTH_AUTH);
    let mut d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    )
    .await;
    let image = sample("image");
    let n = 40u64;
    let start = Instant::now();
    for i in 0..n {
        if i % 10 == 5 {
            hs.inject([
                Fault::RateLimit("SECONDLY"),
                Fault::Status(502),
                Fault::RateLimit("SECONDLY"),
            ]);
        }
        let body = webhook(
            &graph,
            &image,
            &format!("wamid.{i}"),
            &format!("+1415555{:04}", i % 7),
            TS + i as i64,
        );
        assert_eq!(post(&d, &body).await, 200);
        tokio::time::sleep(Duration::from_millis(150)).await; // a steady trickle over several token lifetimes
    }
    wait_done(&d, n, Duration::from_secs(60)).await;
    assert!(start.elapsed() > Duration::from_secs(4));
    let counts = hs.counts();
    assert!(counts.refreshes >= 2, "{counts:?}");
    assert_eq!(counts.max_concurrent_refreshes, 1, "{counts:?}");
    assert_eq!(counts.failed_refreshes, 0, "{counts:?}");
    assert!(counts.too_many_requests >= 4, "{counts:?}");
    assert_eq!(
        hs.records("notes").len() as u64,
        n,
        "one note per media, no duplicate"
    );
    assert_eq!(hs.records("contacts").len(), 7);

    // A restart picks up the rotated refresh token the daemon stored.
    d.terminate();
    d.restart().await;
    let body = webhook(
        &graph,
        &image,
        "wamid.after-restart",
        "+14155550000",
        TS + 1000,
    );
    assert_eq!(post(&d, &body).await, 200);
    wait_done(&d, n + 1, Duration::from_secs(30)).await;
    assert_eq!(hs.counts().failed_refreshes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_pauses_the_connector_and_status_says_what_to_do() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(oauth(Duration::from_secs(1800)))
        .await
        .unwrap();
    hs.revoke_refresh_token();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = hubspot_section(&hs, OAUTH_AUTH);
    let d = Daemon::start(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    )
    .await;
    let body = webhook(&graph, &sample("image"), "wamid.paused", "+14155550123", TS);
    assert_eq!(post(&d, &body).await, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status: Value = loop {
        let s = d.status();
        if s["connectors"][0]["paused"] == true {
            break s;
        }
        assert!(Instant::now() < deadline, "never paused: {s}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = status["connectors"][0]["pause_reason"].as_str().unwrap();
    assert!(
        reason.contains("BAD_REFRESH_TOKEN") && reason.contains("Re-authorize"),
        "{reason}"
    );
    assert_eq!(
        status["queue"]["counts"]["dead"], 0,
        "the job waits, it is not dead-lettered"
    );
    let (_, text) = d.cli(&["status"]);
    assert!(
        text.contains("connector hubspot: PAUSED until an admin acts"),
        "{text}"
    );
    assert!(d.log().contains("Connector paused"), "{}", d.log());
    assert_eq!(
        hs.counts().failed_refreshes,
        1,
        "no refresh storm while paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_hubspot_refuses_dead_letters_only_its_own_job_with_the_property_named() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = hubspot_section(&hs, &format!("token = \"{HS_TOKEN}\""));
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok, "{out}");
    // An admin narrowed the media type's options: images are no longer allowed.
    let mut def = hs.property("contacts", "wa_media_type").unwrap();
    def.options.retain(|o| o != "image");
    hs.define_property("contacts", def);
    d.restart().await;
    let body = webhook(&graph, &sample("voice.ogg"), "wamid.ok", "+14155550001", TS);
    assert_eq!(post(&d, &body).await, 200);
    let body = webhook(
        &graph,
        &sample("image"),
        "wamid.refused",
        "+14155550002",
        TS,
    );
    assert_eq!(post(&d, &body).await, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = d.status();
        let c = &s["queue"]["counts"];
        if c["done"] == 1 && c["dead"] == 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dead = &status["dead_letters"][0];
    assert_eq!(dead["message_id"], "wamid.refused");
    let last_error = status["connectors"][0]["last_error"].as_str().unwrap_or("");
    assert!(
        !last_error.is_empty(),
        "status shows the last error: {status}"
    );
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("hubspot: contact +14155550002: HubSpot refused the contacts record"),
        "{reason}"
    );
    assert!(
        reason.contains("INVALID_OPTION") && reason.contains("wa_media_type"),
        "{reason}"
    );
    assert!(hs.find("notes", "wa_message_id", "wamid.ok").is_some());
    assert!(hs.find("notes", "wa_message_id", "wamid.refused").is_none());
}
