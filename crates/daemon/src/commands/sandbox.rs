//! `wa2crm sandbox`: the real intake on a throwaway queue, fed with signed samples.
//!
//! At this stage of wa2crm the pipeline ends at the durable queue, so the sandbox shows the jobs
//! the samples became; the media steps and CRM simulators extend it as they land.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wa2crm_queue::{JobInfo, JobStore, SystemClock};
use wa2crm_sandbox::webhooks;

use crate::config::MetaIntake;
use crate::server::{self, AppState};

/// The app secret the sandbox signs with; printed, since it protects nothing.
pub const SANDBOX_APP_SECRET: &str = "sandbox-app-secret";
const SANDBOX_VERIFY_TOKEN: &str = "sandbox-verify-token";

pub async fn main(serve: bool, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("wa2crm-sandbox-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let queue_url = format!("sqlite://{}/queue.db", dir.path().display());
    let store: Arc<dyn JobStore> =
        Arc::new(wa2crm_queue::SqliteJobStore::open(&queue_url, Arc::new(SystemClock)).await?);
    let router = server::router(
        AppState {
            store: store.clone(),
            meta: Some(MetaIntake {
                app_secret: SecretString::from(SANDBOX_APP_SECRET),
                verify_token: SecretString::from(SANDBOX_VERIFY_TOKEN),
            }),
            metrics: crate::metrics::install(),
        },
        1024 * 1024,
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    let server = tokio::spawn(server::serve(listener, router, async move {
        shutdown.cancelled().await
    }));
    let url = format!("http://{addr}/webhooks/whatsapp");
    println!("wa2crm sandbox: intake on {url}, queue {queue_url}\n");

    let client = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let samples = webhooks::samples();
    let mut ids = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let message_id = format!("wamid.sandbox.{}.{i}", sample.kind);
        let status = post(
            &client,
            &url,
            &webhooks::single_message_body(sample, &message_id, now),
        )
        .await?;
        println!(
            "POST {:<8} signed webhook -> {status}",
            sample.kind.as_str()
        );
        ids.push(message_id);
    }
    // Meta redelivers: the same webhook again must not add a job.
    let first = &samples[0];
    let status = post(
        &client,
        &url,
        &webhooks::single_message_body(first, &ids[0], now),
    )
    .await?;
    println!(
        "POST {:<8} the same webhook again -> {status} (a duplicate: no new job)",
        first.kind.as_str()
    );
    let status = client
        .post(&url)
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(webhooks::single_message_body(first, "wamid.forged", now))
        .send()
        .await?
        .status();
    println!(
        "POST {:<8} with a forged signature -> {status} (nothing stored)\n",
        first.kind.as_str()
    );

    let mut jobs = Vec::new();
    for id in &ids {
        if let Some(job) = store.find("meta", id).await? {
            jobs.push(job);
        }
    }
    print!("{}", render_jobs(&jobs));
    let counts = store.counts().await?;
    println!(
        "\nqueue: {} job(s) queued, {} in all",
        counts.queued,
        counts.queued + counts.running + counts.done + counts.dead
    );

    if serve {
        let sample_path = dir.path().join("voice-note-webhook.json");
        let body = webhooks::single_message_body(first, "wamid.try-me", now);
        std::fs::write(&sample_path, &body)?;
        println!(
            "\nThe sandbox keeps running (Ctrl-C stops it). Webhook URL: {url}\n\
             App secret: {SANDBOX_APP_SECRET}   Verify token: {SANDBOX_VERIFY_TOKEN}\n\
             Try it:\n  curl -sS -X POST '{url}' -H 'Content-Type: application/json' \\\n    \
             -H 'X-Hub-Signature-256: {}' \\\n    --data-binary @{}\n\
             Sign your own body: printf %s \"$BODY\" | openssl dgst -sha256 -hmac {SANDBOX_APP_SECRET}",
            webhooks::signature(SANDBOX_APP_SECRET, &body),
            sample_path.display(),
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    stop.cancel();
    server.await??;
    Ok(ExitCode::SUCCESS)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
) -> anyhow::Result<reqwest::StatusCode> {
    Ok(client
        .post(url)
        .header("Content-Type", "application/json")
        .header(
            "X-Hub-Signature-256",
            webhooks::signature(SANDBOX_APP_SECRET, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .with_context(|| format!("cannot reach the sandbox intake at {url}"))?
        .status())
}

fn render_jobs(jobs: &[JobInfo]) -> String {
    let mut out = format!(
        "{:<4} {:<8} {:<8} {:<15} {:<24} {:<28} {}\n",
        "job", "state", "kind", "sender", "mime", "message id", "caption / file"
    );
    for j in jobs {
        let e = &j.event;
        let extra = match (&e.caption, &e.file_name) {
            (Some(c), Some(f)) => format!("{c} / {f}"),
            (Some(c), None) => c.clone(),
            (None, Some(f)) => f.clone(),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "{:<4} {:<8} {:<8} {:<15} {:<24} {:<28} {}\n",
            j.id,
            j.state.as_str(),
            e.kind.as_str(),
            e.sender.as_str(),
            e.mime_type.as_deref().unwrap_or("-"),
            e.message_id,
            extra
        ));
    }
    out
}
