//! The media pipeline through the real binary: links that play in a browser (Range, type,
//! disposition), and SIGKILL at random moments losing nothing, duplicating nothing, leaving no
//! spool file behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use wa2crm_e2e::{ACCESS_TOKEN, Daemon, LINK_SECRET, config_toml, free_port, post_webhook, sign};
use wa2crm_media::link::LinkSigner;
use wa2crm_sandbox::graph::{Fault, GraphSim};
use wa2crm_sandbox::samples::{self, SampleMedia};
use wa2crm_sandbox::webhooks;

const TS: i64 = 1_790_000_000; // 2026-09-21

fn body_for(sim: &GraphSim, s: &SampleMedia, message_id: &str) -> Vec<u8> {
    let media_id = format!("m-{message_id}");
    let digest = sim.add_media(&media_id, s.bytes, &s.mime_type);
    let sample = webhooks::Sample {
        kind: s.kind,
        mime_type: s.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut m = webhooks::message_json(&sample, message_id, &media_id, TS);
    let key = m["type"].as_str().unwrap().to_owned();
    m[&key]["sha256"] = digest.into();
    webhooks::webhook_body(vec![m])
}

/// Polls `status` until every job is done or dead, failing after `within`.
async fn wait_settled(d: &Daemon, jobs: u64, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let c = d.status()["queue"]["counts"].clone();
        let settled = c["done"].as_u64().unwrap() + c["dead"].as_u64().unwrap();
        if settled == jobs && c["queued"] == 0 && c["running"] == 0 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "jobs not settled in {within:?}: {c}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// The simulator serves from this runtime while the test waits on the binary: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_voice_note_plays_from_its_link() {
    let sim = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = Daemon::start(
        dir.path(),
        &config_toml(dir.path(), port, &sim.url(), ""),
        port,
    )
    .await;
    let voice = samples::all()
        .into_iter()
        .find(|s| s.file == "voice.ogg")
        .unwrap();
    let body = body_for(&sim, &voice, "wamid.play");
    let client = reqwest::Client::new();
    assert_eq!(
        post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
        StatusCode::OK
    );
    let c = wait_settled(&d, 1, Duration::from_secs(30)).await;
    assert_eq!(c["done"], 1, "{c}");

    let key = format!("2026/09/21/{}.ogg", voice.sha256);
    let token = LinkSigner::new(LINK_SECRET.as_bytes()).token(&key);
    let link = d.url(&format!("/media/{token}"));
    let full = client.get(&link).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()[CONTENT_TYPE], "audio/ogg");
    assert_eq!(
        full.headers()[CONTENT_DISPOSITION],
        format!("inline; filename=\"{}.ogg\"", voice.sha256).as_str()
    );
    assert_eq!(full.bytes().await.unwrap().as_ref(), voice.bytes);

    // Browsers seek in audio with Range requests.
    let part = client
        .get(&link)
        .header(RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[CONTENT_RANGE],
        format!("bytes 100-199/{}", voice.size).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &voice.bytes[100..200]);

    // A forged or altered token, and a deleted object, are 404.
    let forged = LinkSigner::new(b"not-the-link-secret!").token(&key);
    for bad in [forged, format!("{token}x"), "nonsense".into()] {
        let r = client
            .get(d.url(&format!("/media/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    std::fs::remove_file(dir.path().join("media").join(&key)).unwrap();
    assert_eq!(
        client.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

// The simulator serves from this runtime while the test waits on the binary: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let sim = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = Daemon::start(
        dir.path(),
        &config_toml(dir.path(), port, &sim.url(), ""),
        port,
    )
    .await;
    let all = samples::all();
    let client = reqwest::Client::new();
    // Every sample twice (two customers sending the same file): 24 jobs, 12 distinct files.
    let mut jobs = 0;
    for round in 0..2 {
        for (i, s) in all.iter().enumerate() {
            let body = body_for(&sim, s, &format!("wamid.k{round}.{i}"));
            assert_eq!(
                post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await,
                StatusCode::OK
            );
            jobs += 1;
        }
    }
    // Slow downloads make the kills land in the middle of the work.
    sim.fail_downloads((0..16).map(|_| Fault::Slow(150)));
    let mut rng = 0x2545F4914F6CDD1Du64;
    for _ in 0..5 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(20 + rng % 200)).await;
        d.kill();
        d.restart().await;
    }
    let c = wait_settled(&d, jobs, Duration::from_secs(120)).await;
    assert_eq!(c["done"], jobs, "{c}\n{}", d.log());
    let objects = files_under(&dir.path().join("media"));
    assert_eq!(
        objects.len(),
        all.len(),
        "one object per distinct file: {objects:?}"
    );
    for s in &all {
        let ext = s.file.rsplit('.').next().unwrap();
        let p = dir
            .path()
            .join(format!("media/2026/09/21/{}.{ext}", s.sha256));
        assert_eq!(std::fs::read(&p).unwrap(), s.bytes, "{}", s.file);
    }
    let spooled: Vec<_> = files_under(&dir.path().join("spool"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(spooled.is_empty(), "spool files left: {spooled:?}");
    let run_dirs = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    assert_eq!(
        run_dirs, 1,
        "only the live process's spool directory remains"
    );
}
