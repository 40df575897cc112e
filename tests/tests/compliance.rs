//! Admin and compliance, with the real binary: consent decided by a CRM field, erasure of one
//! person across the CRMs, the storage and the queue, and retention (the CLI's dry run, the CLI,
//! and `run`'s schedule).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, distinct_image_webhook, free_port, hubspot_section,
    post_webhook, salesforce_org, sign, stored_files,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};

const TOKEN: &str = "pat-na1-compliance";
const ANA: &str = "+4915111111111";
const BEN: &str = "+4915122222222";

async fn hubspot() -> HubSpotSim {
    HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap()
}

fn hubspot_crm(hs: &HubSpotSim, extra_keys: &str) -> String {
    hubspot_section(&hs.url(), &format!("token = \"{TOKEN}\""))
        .replace("linger_ms = 100", &format!("linger_ms = 100\n{extra_keys}"))
}

async fn post(d: &Daemon, body: &[u8]) {
    let status = post_webhook(
        &reqwest::Client::new(),
        &d.url("/webhooks/whatsapp"),
        body,
        sign(body),
    )
    .await;
    assert_eq!(status, 200);
}

/// Polls until `done` jobs are done (none dead), failing with the log after 30 s.
async fn wait_done(d: &Daemon, done: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = d.status()["queue"]["counts"].clone();
        assert_eq!(c["dead"], 0, "{c}\n{}", d.log());
        if c["done"].as_u64() == Some(done) {
            return;
        }
        assert!(Instant::now() < deadline, "{c}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_in_the_crm_decides_which_media_is_taken() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = hubspot().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[policy]\nconsent = \"crm_field\"\n{}",
        hubspot_crm(&hs, "consent_field = \"wa_media_consent\"")
    );
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok && out.contains("wa_media_consent"), "{out}");
    d.restart().await;

    // Ana is not a contact yet: nothing of hers is fetched, stored or written.
    post(&d, &distinct_image_webhook(&graph, "c", 1, ANA)).await;
    wait_done(&d, 1).await;
    assert_eq!(graph.counts().resolves, 0, "not even looked up");
    assert_eq!(stored_files(dir.path()), 0);
    assert!(hs.records("notes").is_empty());
    assert_eq!(
        d.metric("wa2crm_media_not_taken_total{reason=\"no_consent\"}")
            .await,
        1.0
    );
    assert!(d.log().contains("skipped: no consent"), "{}", d.log());
    // The log names her by a masked number only ([logging] show_phone_numbers is off).
    assert!(d.log().contains("+49151…111"), "{}", d.log());
    assert!(!d.log().contains(ANA), "{}", d.log());
    assert_eq!(d.status()["queue"]["done_not_taken"], 1);

    // Her contact, entered by a salesperson, without and then with the consent box ticked.
    let id = hs.add_record("contacts", &[("whatsapp_id", ANA), ("firstname", "Ana")]);
    post(&d, &distinct_image_webhook(&graph, "c", 2, ANA)).await;
    wait_done(&d, 2).await;
    assert!(hs.records("notes").is_empty(), "the box is not ticked");
    hs.set_property("contacts", &id, "wa_media_consent", "true");
    post(&d, &distinct_image_webhook(&graph, "c", 3, ANA)).await;
    wait_done(&d, 3).await;
    assert!(hs.find("notes", "wa_message_id", "wamid.c.3").is_some());
    assert_eq!(hs.records("notes").len(), 1);
    assert_eq!(stored_files(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_one_persons_media_everywhere_and_twice_is_harmless() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = hubspot().await;
    let dir = tempfile::tempdir().unwrap();
    let (sf, salesforce) = salesforce_org(dir.path()).await;
    let port = free_port();
    let crms = format!("{}{salesforce}", hubspot_crm(&hs, ""));
    let d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &crms),
        port,
    )
    .await;
    for (i, who) in [(1, ANA), (2, ANA), (3, BEN)] {
        post(&d, &distinct_image_webhook(&graph, "e", i, who)).await;
    }
    wait_done(&d, 3).await;
    assert_eq!(hs.records("notes").len(), 3);
    assert_eq!(sf.records("WhatsApp_Media__c").len(), 3);
    assert_eq!(stored_files(dir.path()), 3);
    let link = |who: &str| {
        hs.find("contacts", "whatsapp_id", who).unwrap().properties["wa_media_url"].clone()
    };
    let (ana_link, ben_link) = (link(ANA), link(BEN));
    assert_eq!(status_of(&ana_link).await, 200);

    let (ok, dry) = d.cli(&["erase", "--phone", "+49 151 1111 1111", "--dry-run"]);
    assert!(ok, "{dry}");
    assert!(dry.contains("dry run"), "{dry}");
    assert!(
        dry.contains("connectors.hubspot: (dry run) 2 note(s) on contact"),
        "{dry}"
    );
    assert!(
        dry.contains("connectors.salesforce: (dry run) 2 WhatsApp_Media__c record(s)"),
        "{dry}"
    );
    assert!(dry.contains("storage: would delete 2 object(s)"), "{dry}");
    assert!(dry.contains("queue: would scrub 2 job(s)"), "{dry}");
    assert_eq!(hs.records("notes").len(), 3, "a dry run changes nothing");
    assert_eq!(stored_files(dir.path()), 3);

    let (ok, out) = d.cli(&["erase", "--phone", ANA]);
    assert!(ok, "{out}");
    assert!(out.contains("storage: deleted 2 object(s)"), "{out}");
    assert!(out.contains("queue: scrubbed 2 job(s)"), "{out}");
    assert!(hs.find("notes", "wa_message_id", "wamid.e.1").is_none());
    assert!(
        hs.find("notes", "wa_message_id", "wamid.e.3").is_some(),
        "Ben keeps his"
    );
    let ana_contact = hs.find("contacts", "whatsapp_id", ANA).unwrap();
    assert!(!ana_contact.properties.contains_key("wa_media_url"));
    let records = sf.records("WhatsApp_Media__c");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["WA_Message_Id__c"], "wamid.e.3");
    assert_eq!(stored_files(dir.path()), 1);
    assert_eq!(status_of(&ana_link).await, 404, "her link is dead");
    assert_eq!(status_of(&ben_link).await, 200);

    assert_eq!(d.status()["queue"]["done_media_removed"], 2);
    let (ok, again) = d.cli(&["erase", "--phone", ANA]);
    assert!(ok, "{again}");
    for place in [
        "connectors.hubspot",
        "connectors.salesforce",
        "storage",
        "queue",
    ] {
        assert!(
            again.contains(&format!("{place}: nothing found")),
            "{again}"
        );
    }
    // A redelivered webhook of an erased message is still a duplicate: nothing comes back.
    post(&d, &distinct_image_webhook(&graph, "e", 1, ANA)).await;
    assert_eq!(d.total_jobs(), 3);
    assert_eq!(stored_files(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_media_is_removed_by_the_cli_and_on_schedule() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = hubspot().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |interval: &str| {
        let extra = format!(
            "[retention]\nimage = \"1s\"\non_expiry = \"clear\"\ninterval = \"{interval}\"\n{}",
            hubspot_crm(&hs, "")
        );
        config_toml(dir.path(), port, &graph.url(), &extra)
    };
    // No pass of its own during the first part: the CLI does them.
    let mut d = Daemon::start_provisioned(dir.path(), &config("1h"), port).await;
    post(&d, &distinct_image_webhook(&graph, "r", 1, ANA)).await;
    wait_done(&d, 1).await;
    let link = hs.find("contacts", "whatsapp_id", ANA).unwrap().properties["wa_media_url"].clone();

    let deadline = Instant::now() + Duration::from_secs(30);
    let dry = loop {
        let (ok, out) = d.cli(&["retention", "--dry-run"]);
        assert!(ok, "{out}");
        if out.contains("wamid.r.1") {
            break out;
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dry.contains("older than 1s (retention.image)"), "{dry}");
    assert!(
        dry.contains("would remove the media of 1 job(s), 1 stored object(s)"),
        "{dry}"
    );
    assert_eq!(stored_files(dir.path()), 1, "a dry run changes nothing");

    let (ok, out) = d.cli(&["retention"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("connectors.hubspot: 1 contact(s): latest-media properties cleared"),
        "{out}"
    );
    assert!(
        out.contains("connectors.hubspot: 1 note(s) reduced"),
        "{out}"
    );
    assert_eq!(stored_files(dir.path()), 0);
    assert_eq!(status_of(&link).await, 404);
    let note = hs.find("notes", "wa_message_id", "wamid.r.1").unwrap();
    let body = &note.properties["hs_note_body"];
    assert!(
        body.contains("Removed on") && !body.contains(&link),
        "{body}"
    );
    assert!(
        !hs.find("contacts", "whatsapp_id", ANA)
            .unwrap()
            .properties
            .contains_key("wa_media_url")
    );
    let (_, again) = d.cli(&["retention"]);
    assert!(again.contains("removed the media of 0 job(s)"), "{again}");

    // `run` on a one-second schedule does the same by itself.
    d.terminate();
    std::fs::write(&d.config_path, config("1s")).unwrap();
    d.restart().await;
    post(&d, &distinct_image_webhook(&graph, "r", 2, BEN)).await;
    wait_done(&d, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_files(dir.path()) > 0 {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.log().contains("Media removed by retention.") {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hs.find("notes", "wa_message_id", "wamid.r.2")
            .unwrap()
            .properties["hs_note_body"]
            .contains("Removed on")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivered_media_is_announced_once_signed_even_when_the_receiver_was_down() {
    use wa2crm_sandbox::catcher::WebhookCatcher;
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = hubspot().await;
    let catcher = WebhookCatcher::start().await.unwrap();
    // Down for the first media's first try.
    catcher.answer([503]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = "notify-secret-0123456789";
    let extra = format!(
        "[notifications.webhook]\nurl = \"{}\"\nsecret = \"{secret}\"\nkinds = [\"image\"]\n{}",
        catcher.url(),
        hubspot_crm(&hs, "")
    );
    let d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    )
    .await;
    post(&d, &distinct_image_webhook(&graph, "n", 1, ANA)).await;
    post(&d, &distinct_image_webhook(&graph, "n", 2, BEN)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while catcher.caught().len() < 2 {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_done(&d, 2).await;
    let caught = catcher.caught();
    assert_eq!(caught.len(), 2, "once each");
    let mut ids = Vec::new();
    for c in &caught {
        let ts: i64 = c.headers["x-wa2crm-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let expected =
            wa2crm::pipeline::notification_signature(&secret.to_owned().into(), ts, &c.body);
        assert_eq!(c.headers["x-wa2crm-signature"].to_str().unwrap(), expected);
        let body: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
        let note = hs.find(
            "notes",
            "wa_message_id",
            body["message_id"].as_str().unwrap(),
        );
        assert!(note.is_some(), "announced after delivery: {body}");
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("New WhatsApp image from Jürgen Weiß (+49151"),
            "{body}"
        );
        assert!(body["crm"]["hubspot"].is_string(), "{body}");
        assert_eq!(status_of(body["file_url"].as_str().unwrap()).await, 200);
        ids.push(body["message_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["wamid.n.1", "wamid.n.2"]);
}
