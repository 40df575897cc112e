//! `wa2crm sandbox`: the real daemon on a throwaway directory, fed with signed sample webhooks
//! whose media is served by the bundled Graph API simulator.
//!
//! Everything that runs is the production code (`run`, the intake, the workers, the storage, the
//! HubSpot and Salesforce connectors); only WhatsApp and the CRMs are simulated. The CRM mappings
//! are the example configuration's (deploy/wa2crm.example.toml), provisioned into the simulators
//! first ([`crms`]); the report shows, per mapped field, what landed.

mod crms;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wa2crm_core::MediaKind;
use wa2crm_queue::JobInfo;
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::{samples, webhooks};

use crate::pipeline::media_record;

/// The app secret the sandbox signs with; printed, since it protects nothing.
pub const SANDBOX_APP_SECRET: &str = "sandbox-app-secret";
const SANDBOX_VERIFY_TOKEN: &str = "sandbox-verify-token";
const SANDBOX_ACCESS_TOKEN: &str = "sandbox-access-token";

pub async fn main(serve: bool, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("wa2crm-sandbox-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let graph = GraphSim::start(SANDBOX_ACCESS_TOKEN).await?;
    // The port must be known before the config is written: public_url contains it.
    let addr = if listen.port() == 0 {
        let probe = std::net::TcpListener::bind(listen)?;
        probe.local_addr()?
    } else {
        listen
    };
    let d = dir.path().display();
    let toml = format!(
        r#"
[server]
listen = "{addr}"
public_url = "http://{addr}"
[queue]
url = "sqlite://{d}/queue.db"
workers = 4
[storage]
url = "file://{d}/media"
link_secret = "sandbox-link-secret-0123456789"
[media]
spool_dir = "{d}/spool"
[sources.meta]
app_secret = "{SANDBOX_APP_SECRET}"
verify_token = "{SANDBOX_VERIFY_TOKEN}"
access_token = "{SANDBOX_ACCESS_TOKEN}"
graph_url = "{graph}"
"#,
        graph = graph.url()
    );
    let mut config = crate::config::load_str(&toml, Default::default(), None)?;
    let crms = crms::Crms::start().await?;
    for (name, table) in &crms.tables {
        config.connectors.insert(name.clone(), table.clone());
    }
    let validated = crate::config::validate(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let queue_url = validated.config.queue.url.clone();
    let stop = CancellationToken::new();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(super::run::run(validated, stop.clone(), move |a| {
        let _ = bound_tx.send(a);
    }));
    let bound = bound_rx.await.context("the sandbox daemon did not start")?;
    let url = format!("http://{bound}/webhooks/whatsapp");
    println!(
        "wa2crm sandbox: daemon on http://{bound}, Graph API simulator on {}, files under {d}",
        graph.url()
    );
    println!("{}", crms.provisioned);

    let client = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let samples = samples::all();
    let mut ids = Vec::new();
    for (i, media) in samples.iter().enumerate() {
        let media_id = format!("sandbox-media-{i}");
        let sha256 = graph.add_media(&media_id, media.bytes, &media.mime_type);
        let message_id = format!("wamid.sandbox.{i}.{}", media.file);
        let mut message = webhooks::message_json(&sample_for(media), &message_id, &media_id, now);
        let key = message["type"].as_str().unwrap_or("audio").to_owned();
        message[&key]["sha256"] = sha256.into();
        let body = webhooks::webhook_body(vec![message]);
        let status = post(&client, &url, &body).await?;
        println!("POST {:<17} signed webhook -> {status}", media.file);
        ids.push(message_id);
    }
    let again = webhooks::webhook_body(vec![webhooks::message_json(
        &sample_for(&samples[0]),
        &ids[0],
        "sandbox-media-0",
        now,
    )]);
    println!(
        "POST {:<17} the same webhook again -> {} (a duplicate: no new job)",
        samples[0].file,
        post(&client, &url, &again).await?
    );
    let forged = client
        .post(&url)
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(again.clone())
        .send()
        .await?
        .status();
    println!(
        "POST {:<17} with a forged signature -> {forged} (nothing stored)\n",
        samples[0].file
    );

    let store = super::open_queue(&queue_url).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs = loop {
        let mut jobs = Vec::new();
        for id in &ids {
            if let Some(j) = store.find("meta", id).await? {
                jobs.push(j);
            }
        }
        let settled = jobs.iter().all(|j| {
            matches!(
                j.state,
                wa2crm_queue::JobState::Done | wa2crm_queue::JobState::Dead
            )
        });
        if settled && jobs.len() == ids.len() {
            break jobs;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sample jobs did not finish within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    print!("{}", render(&jobs));
    print!("{}", crms.render(&jobs));

    if serve {
        println!(
            "\nThe sandbox keeps running (Ctrl-C stops it). Webhook URL: {url}\n\
             App secret: {SANDBOX_APP_SECRET}   Verify token: {SANDBOX_VERIFY_TOKEN}\n\
             Post your own payloads signed with the app secret, for example:\n  \
             BODY=$(cat my-webhook.json)\n  \
             SIG=$(printf %s \"$BODY\" | openssl dgst -sha256 -hmac {SANDBOX_APP_SECRET} | sed 's/^.* //')\n  \
             curl -sS -X POST '{url}' -H 'Content-Type: application/json' \\\n    \
             -H \"X-Hub-Signature-256: sha256=$SIG\" --data-binary \"$BODY\""
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    stop.cancel();
    daemon.await??;
    Ok(ExitCode::SUCCESS)
}

fn sample_for(media: &samples::SampleMedia) -> webhooks::Sample {
    let caption = match media.kind {
        MediaKind::Video => Some("Die Tür ist kaputt"),
        MediaKind::Image => Some("Rechnung März"),
        MediaKind::Document => Some("Vertrag"),
        _ => None,
    };
    webhooks::Sample {
        kind: media.kind,
        mime_type: media.mime_type.clone(),
        caption: caption.map(str::to_owned),
        file_name: (media.kind == MediaKind::Document).then(|| "vertrag-4711.pdf".to_owned()),
    }
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

fn render(jobs: &[JobInfo]) -> String {
    let mut out = String::new();
    for j in jobs {
        let e = &j.event;
        out.push_str(&format!(
            "job {} · {} · {} · {}\n",
            j.id,
            e.kind,
            e.sender,
            j.state.as_str()
        ));
        match media_record(e, &j.checkpoints) {
            Some(r) => {
                let duration = r
                    .duration_seconds
                    .map_or_else(|| "-".to_owned(), |d| format!("{d:.3} s"));
                out.push_str(&format!(
                    "    mime_type {}  size_bytes {}  duration {}  sha256 {}…\n    storage_uri {}\n    file_url {}\n",
                    r.mime_type,
                    r.size_bytes,
                    duration,
                    &r.sha256[..16],
                    r.storage_uri,
                    r.file_url
                ));
                if let Some(c) = &r.caption {
                    out.push_str(&format!("    caption {c}\n"));
                }
            }
            None => out.push_str(&format!(
                "    not stored: {}\n",
                j.dead_reason
                    .as_deref()
                    .or(j.last_error.as_deref())
                    .unwrap_or("-")
            )),
        }
    }
    out
}
