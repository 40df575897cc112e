//! What a client without credentials can make the daemon spend, bounded, with the real binary:
//! slow-loris connections are cut off after the header timeout and never lock the others out for
//! long, a body sent too slowly is cut off, a flood of `/metrics` scrapes takes nothing from the
//! webhooks, `/readyz` names the place that fails and never its error, and `server.admin_listen`
//! takes the observability routes off the public listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wa2crm_e2e::{Daemon, NO_GRAPH, config_toml, eventually, free_port, post_webhook, sign};
use wa2crm_sandbox::webhooks::{self, samples};

/// A daemon whose `[server]` section has `limits` added.
async fn daemon(limits: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_toml(dir.path(), port, NO_GRAPH, "").replacen(
        "[server]\n",
        &format!("[server]\n{limits}\n"),
        1,
    );
    let d = Daemon::start(dir.path(), &config, port).await;
    (dir, d)
}

fn webhook(i: usize) -> Vec<u8> {
    webhooks::single_message_body(
        &samples()[i % samples().len()],
        &format!("wamid.dos.{i}"),
        1_750_000_000,
    )
}

/// Whether the server closed `stream` (or reset it) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An error page (408) before the close: keep reading to the end.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_is_cut_off_and_never_locks_out_a_webhook() {
    let (_dir, d) = daemon("header_timeout_seconds = 2\nmax_connections = 8").await;
    // Every connection slot taken by a client that sends its headers a byte at a time, never
    // finishing them.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .unwrap();
        slow.push(s);
    }
    // A real webhook waits for a slot, which the header timeout frees.
    let started = Instant::now();
    let body = webhook(0);
    let status = post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "locked out for {:?}",
        started.elapsed()
    );
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "a connection that never finished its headers was kept open"
        );
    }
    assert_eq!(d.total_jobs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_cut_off() {
    let (_dir, d) = daemon("body_timeout_seconds = 2").await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(
        b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000\r\n\r\n{\"object\":",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was kept waiting for its body");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    assert_eq!(d.total_jobs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_flood_takes_nothing_from_the_webhooks() {
    let (_dir, d) = daemon("").await;
    let client = reqwest::Client::new();
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = d.url("/metrics");
            tokio::spawn(async move {
                let mut answered = (0u32, 0u32);
                for _ in 0..150 {
                    match client.get(&url).send().await.map(|r| r.status().as_u16()) {
                        Ok(200) => answered.0 += 1,
                        Ok(503) => answered.1 += 1,
                        other => panic!("/metrics answered {other:?}"),
                    }
                }
                answered
            })
        })
        .collect();
    for i in 0..50 {
        let body = webhook(i);
        let status = post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
        assert_eq!(status, 200, "webhook {i} during the flood");
    }
    let mut served = 0;
    for f in flood {
        served += f.await.unwrap().0;
    }
    assert!(served > 0, "scrapes were served too");
    assert_eq!(d.total_jobs(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_failing_place_and_never_its_error() {
    let (dir, d) = daemon("").await;
    assert_eq!(reqwest::get(d.url("/readyz")).await.unwrap().status(), 200);
    // The storage goes away: its directory becomes a file.
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::remove_dir_all(&media).unwrap();
    std::fs::write(&media, b"not a directory").unwrap();
    eventually(Duration::from_secs(10), "not ready", async || {
        reqwest::get(d.url("/readyz")).await.unwrap().status() == 503
    })
    .await;
    let body = reqwest::get(d.url("/readyz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "not ready: storage\n");
    assert!(d.log().contains("Not ready: the storage does not answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listen_takes_metrics_and_readiness_off_the_public_listener() {
    let admin = free_port();
    let (_dir, d) = daemon(&format!("admin_listen = \"127.0.0.1:{admin}\"")).await;
    for path in ["/metrics", "/readyz"] {
        assert_eq!(
            reqwest::get(d.url(path)).await.unwrap().status(),
            404,
            "{path} on the public listener"
        );
        eventually(Duration::from_secs(10), path, async || {
            reqwest::get(format!("http://127.0.0.1:{admin}{path}"))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    assert_eq!(reqwest::get(d.url("/healthz")).await.unwrap().status(), 200);
}
