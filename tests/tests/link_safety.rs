//! A customer's file never runs as a page on wa2crm's origin: documents that are HTML, SVG or
//! XML come out of their link as downloads of `application/octet-stream`, a polyglot that sniffs
//! as an image is shown only as an image, and every answer forbids sniffing and sandboxes the
//! document. Through the real binary, from the webhook to the link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use wa2crm_core::MediaKind;
use wa2crm_e2e::{ACCESS_TOKEN, Daemon, LINK_SECRET, config_toml, free_port, post_webhook, sign};
use wa2crm_media::link::LinkSigner;
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::samples;
use wa2crm_sandbox::webhooks;

const TS: i64 = 1_790_000_000; // 2026-09-21

/// The hostile files: (message id, what the customer's phone declared, file name, bytes).
fn hostile() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let jpeg = samples::all()
        .into_iter()
        .find(|s| s.file == "image.jpg")
        .unwrap();
    let mut polyglot = jpeg.bytes.to_vec();
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    vec![
        (
            "wamid.html",
            "text/html",
            "invoice.html",
            b"<!DOCTYPE html><html><body><script>fetch('/metrics')</script></body></html>".to_vec(),
        ),
        (
            "wamid.svg",
            "image/svg+xml",
            "logo.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#
                .to_vec(),
        ),
        (
            "wamid.xml",
            "application/xml",
            "order.xml",
            br#"<?xml version="1.0"?><html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(1)</html:script>"#
                .to_vec(),
        ),
        ("wamid.polyglot", "image/jpeg", "photo.jpg", polyglot),
    ]
}

fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(stored_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_download_and_a_polyglot_shows_only_as_an_image() {
    let sim = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = Daemon::start(
        dir.path(),
        &config_toml(dir.path(), port, &sim.url(), ""),
        port,
    )
    .await;
    let files = hostile();
    let mut messages = Vec::new();
    for (id, mime, name, bytes) in &files {
        let media_id = format!("m-{id}");
        let digest = sim.add_media(&media_id, bytes.clone(), mime);
        let kind = if *id == "wamid.polyglot" {
            MediaKind::Image
        } else {
            MediaKind::Document
        };
        let sample = webhooks::Sample {
            kind,
            mime_type: (*mime).into(),
            caption: None,
            file_name: Some((*name).into()),
        };
        let mut m = webhooks::message_json(&sample, id, &media_id, TS);
        let t = m["type"].as_str().unwrap().to_owned();
        m[&t]["sha256"] = digest.into();
        messages.push(m);
    }
    let body = webhooks::webhook_body(messages);
    let client = reqwest::Client::new();
    assert_eq!(
        post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
        reqwest::StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = d.status()["queue"]["counts"].clone();
        if c["done"] == files.len() as u64 {
            break;
        }
        assert_eq!(c["dead"], 0, "{c}\n{}", d.log());
        assert!(Instant::now() < deadline, "{c}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let media = dir.path().join("media");
    let signer = LinkSigner::new(LINK_SECRET.as_bytes());
    let stored = stored_files(&media);
    assert_eq!(stored.len(), files.len(), "{stored:?}");
    for (_, _, _, bytes) in &files {
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(bytes))
        };
        let path = stored
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&digest)
            })
            .unwrap();
        let key = path
            .strip_prefix(&media)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let r = client
            .get(d.url(&format!("/media/{}", signer.token(&key))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{key}");
        assert_eq!(h["content-security-policy"], "sandbox", "{key}");
        let image = bytes.starts_with(&[0xff, 0xd8]);
        if image {
            assert_eq!(h[CONTENT_TYPE], "image/jpeg", "{key}");
            assert!(
                h[CONTENT_DISPOSITION]
                    .to_str()
                    .unwrap()
                    .starts_with("inline;"),
                "{key}"
            );
        } else {
            assert_eq!(h[CONTENT_TYPE], "application/octet-stream", "{key}");
            assert!(
                h[CONTENT_DISPOSITION]
                    .to_str()
                    .unwrap()
                    .starts_with("attachment;"),
                "{key}: {:?}",
                h[CONTENT_DISPOSITION]
            );
        }
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..], "{key}");
    }
}

/// The same file sent by two people: erasing one revokes that person's link though the file is
/// kept for the other, their number leaves the queue (only a keyed hash stays), and after
/// `link_secret` is rotated the links already in the CRM keep working while the old secret is
/// listed in `previous_link_secrets`, and stop when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_die_with_their_media_and_survive_a_rotation_while_listed() {
    use wa2crm_e2e::{distinct_image_webhook, hubspot_section, stored_files};
    use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
    const TOKEN: &str = "pat-na1-links";
    let (ana, ben) = ("+4915111111111", "+4915122222222");
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_toml(
        dir.path(),
        port,
        &graph.url(),
        &hubspot_section(&hs.url(), &format!("token = \"{TOKEN}\"")),
    );
    let mut d = Daemon::start_provisioned(dir.path(), &config, port).await;
    // Both send the same picture (the same tag makes the same bytes), in messages of their own.
    for (i, who) in [(1, ana), (2, ben)] {
        let mut body: serde_json::Value =
            serde_json::from_slice(&distinct_image_webhook(&graph, "same", 0, who)).unwrap();
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] =
            format!("wamid.same.{i}").into();
        let body = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
            reqwest::StatusCode::OK
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.status()["queue"]["counts"]["done"] != 2 {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_files(dir.path()), 1, "one file for both");
    let link = |who: &str| {
        hs.find("contacts", "whatsapp_id", who).unwrap().properties["wa_media_url"].clone()
    };
    let (ana_link, ben_link) = (link(ana), link(ben));
    assert_ne!(ana_link, ben_link, "a link per media, not per file");
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status() };
    assert_eq!(status(ana_link.clone()).await, 200);

    let (ok, out) = d.cli(&["erase", "--phone", ana]);
    assert!(ok, "{out}");
    assert!(out.contains("kept 1 object(s)"), "{out}");
    assert_eq!(stored_files(dir.path()), 1, "kept for Ben");
    assert_eq!(status(ana_link.clone()).await, 404, "Ana's link is revoked");
    assert_eq!(status(ben_link.clone()).await, 200, "Ben's still plays");
    // Her number is nowhere in the queue's rows, only a keyed hash of it.
    let db = std::fs::read(dir.path().join("queue.db")).unwrap();
    let wal = std::fs::read(dir.path().join("queue.db-wal")).unwrap_or_default();
    let digits = ana.trim_start_matches('+').as_bytes();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(digits.len()).any(|w| w == digits),
            "the erased number is still in the queue database's files"
        );
    }
    let (ok, again) = d.cli(&["erase", "--phone", ana]);
    assert!(ok, "{again}");
    assert!(
        again.contains("1 job(s) of this number were erased before"),
        "{again}"
    );

    // Rotation: a new secret, the old one listed.
    d.terminate();
    let rotated = config.replace(
        &format!("link_secret = \"{LINK_SECRET}\""),
        "link_secret = \"the-new-link-secret-2026-12\"",
    );
    let listed = rotated.replace(
        "link_secret = \"the-new-link-secret-2026-12\"",
        &format!(
            "link_secret = \"the-new-link-secret-2026-12\"\nprevious_link_secrets = [\"{LINK_SECRET}\"]"
        ),
    );
    std::fs::write(&d.config_path, &listed).unwrap();
    d.restart().await;
    assert_eq!(
        status(ben_link.clone()).await,
        200,
        "the old secret is listed"
    );
    d.terminate();
    std::fs::write(&d.config_path, &rotated).unwrap();
    d.restart().await;
    assert_eq!(status(ben_link).await, 404, "no longer listed");
}
