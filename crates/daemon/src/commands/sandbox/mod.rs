//! `wa2crm sandbox`: the real daemon on a throwaway directory, fed with signed sample webhooks
//! whose media is served by the bundled simulators: every sample through Meta's Cloud API, and
//! one each through 360dialog and Twilio.
//!
//! Everything that runs is the production code (`run`, the intake, the workers, the storage, the
//! HubSpot and Salesforce connectors); only WhatsApp and the CRMs are simulated. The CRM mappings,
//! tag rules, consent policy and notifications are the admin's (`--config`) or the example
//! configuration's (deploy/wa2crm.example.toml); the mappings are provisioned into one simulator
//! per connector first ([`crms`]); the report shows, per mapped field, what landed.

mod crms;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wa2crm_core::MediaKind;
use wa2crm_queue::JobInfo;
use wa2crm_sandbox::catcher::WebhookCatcher;
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::twilio::{Inbound, TwilioSim, signed_form, webhook_params};
use wa2crm_sandbox::{samples, webhooks};

use crate::pipeline::media_record;

/// The app secret the sandbox signs with; printed, since it protects nothing.
pub const SANDBOX_APP_SECRET: &str = "sandbox-app-secret";
const SANDBOX_VERIFY_TOKEN: &str = "sandbox-verify-token";
const SANDBOX_ACCESS_TOKEN: &str = "sandbox-access-token";
const SANDBOX_D360_KEY: &str = "sandbox-d360-api-key";
const SANDBOX_D360_HEADER: &str = "X-Sandbox-Token";
const SANDBOX_D360_HEADER_VALUE: &str = "sandbox-d360-header-secret";
const SANDBOX_TWILIO_ACCOUNT: &str = "AC00000000000000000000000000sandbox";
const SANDBOX_TWILIO_TOKEN: &str = "sandbox-twilio-auth-token";

pub async fn main(
    admin_config: Option<&crate::config::ConfigLocation>,
    serve: bool,
    listen: SocketAddr,
) -> anyhow::Result<ExitCode> {
    // What the admin configured (or the example): mappings, tags, policy, notifications. Only
    // what touches the outside world is swapped for the sandbox's own.
    let (base, whose) = match admin_config {
        Some(location) => (
            location
                .load()
                .map_err(|e| anyhow::anyhow!(location.report(&e)))?,
            "your mapping",
        ),
        None => (crms::example()?, "the example mapping"),
    };
    let dir = tempfile::Builder::new()
        .prefix("wa2crm-sandbox-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let graph = GraphSim::start(SANDBOX_ACCESS_TOKEN).await?;
    let d360 = GraphSim::start_d360(SANDBOX_D360_KEY).await?;
    let twilio = TwilioSim::start(SANDBOX_TWILIO_ACCOUNT, SANDBOX_TWILIO_TOKEN).await?;
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
[sources.d360]
api_key = "{SANDBOX_D360_KEY}"
base_url = "{d360}"
webhook_header = "{SANDBOX_D360_HEADER}"
webhook_header_value = "{SANDBOX_D360_HEADER_VALUE}"
[sources.twilio]
account_sid = "{SANDBOX_TWILIO_ACCOUNT}"
auth_token = "{SANDBOX_TWILIO_TOKEN}"
webhook_url = "http://{addr}/webhooks/twilio"
api_url = "{twilio}"
"#,
        graph = graph.url(),
        d360 = d360.url(),
        twilio = twilio.api_url(),
    );
    let mut config = crate::config::load_str(&toml, Default::default(), None)
        .map_err(|e| anyhow::anyhow!("the sandbox's own configuration: {e}"))?;
    let tag_names: Vec<String> = base.tags.iter().map(|t| t.name.clone()).collect();
    let crms = crms::Crms::start(&base.connectors, &tag_names, whose).await?;
    for (name, table) in crms.tables() {
        config.connectors.insert(name.clone(), table.clone());
    }
    config.tags = base.tags;
    config.policy = base.policy;
    if config.policy.consent == crate::config::Consent::CrmField {
        // The simulators' contacts do not exist before the samples arrive: nobody could consent.
        println!(
            "policy.consent = \"crm_field\": taken as given in the sandbox, whose CRM contacts are \
             created by the samples themselves."
        );
        config.policy.consent = crate::config::Consent::None;
    }
    let catcher = match base.notifications.webhook {
        Some(mut webhook) => {
            let catcher = WebhookCatcher::start().await?;
            webhook.url = catcher.url();
            config.notifications.webhook = Some(webhook);
            Some(catcher)
        }
        None => None,
    };
    if !base.routes.is_empty() {
        println!("[[routes]] are left out: every sample goes to every connector.");
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
    let mut ids: Vec<(&str, String)> = Vec::new();
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
        ids.push(("meta", message_id));
    }
    ids.push((
        "d360",
        via_d360(&client, &d360, bound, &samples[0], now).await?,
    ));
    ids.push((
        "twilio",
        via_twilio(&client, &twilio, bound, &samples).await?,
    ));
    let again = webhooks::webhook_body(vec![webhooks::message_json(
        &sample_for(&samples[0]),
        &ids[0].1,
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
        for (source, id) in &ids {
            if let Some(j) = store.find(source, id).await? {
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
    if let Some(catcher) = &catcher {
        let caught = catcher.caught();
        println!(
            "\nnotifications.webhook (a receiver at {}): {} signed POST(s)",
            catcher.url(),
            caught.len()
        );
        for c in caught.iter().take(3) {
            let body: serde_json::Value = serde_json::from_slice(&c.body).unwrap_or_default();
            println!("  {}", body["text"].as_str().unwrap_or("-"));
        }
    }

    if serve {
        println!(
            "\nThe sandbox keeps running (Ctrl-C stops it). Webhook URL: {url}\n\
             App secret: {SANDBOX_APP_SECRET}   Verify token: {SANDBOX_VERIFY_TOKEN}\n\
             Post your own payloads signed with the app secret, for example:\n  \
             BODY=$(cat my-webhook.json)\n  \
             SIG=$(printf %s \"$BODY\" | openssl dgst -sha256 -hmac {SANDBOX_APP_SECRET} | sed 's/^.* //')\n  \
             curl -sS -X POST '{url}' -H 'Content-Type: application/json' \\\n    \
             -H \"X-Hub-Signature-256: sha256=$SIG\" --data-binary \"$BODY\"\n\
             360dialog's format goes to http://{bound}/webhooks/d360 with the header \
             {SANDBOX_D360_HEADER}: {SANDBOX_D360_HEADER_VALUE}; Twilio's forms to \
             http://{bound}/webhooks/twilio, signed with the auth token {SANDBOX_TWILIO_TOKEN}."
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    stop.cancel();
    daemon.await??;
    Ok(ExitCode::SUCCESS)
}

/// The first sample again, as 360dialog forwards it (Cloud API body, the operator's header).
async fn via_d360(
    client: &reqwest::Client,
    d360: &GraphSim,
    bound: SocketAddr,
    media: &samples::SampleMedia,
    now: i64,
) -> anyhow::Result<String> {
    let sha256 = d360.add_media("sandbox-d360-0", media.bytes, &media.mime_type);
    let message_id = format!("wamid.sandbox.d360.{}", media.file);
    let mut message =
        webhooks::message_json(&sample_for(media), &message_id, "sandbox-d360-0", now);
    let key = message["type"].as_str().unwrap_or("audio").to_owned();
    message[&key]["sha256"] = sha256.into();
    let status = client
        .post(format!("http://{bound}/webhooks/d360"))
        .header("Content-Type", "application/json")
        .header(SANDBOX_D360_HEADER, SANDBOX_D360_HEADER_VALUE)
        .body(webhooks::webhook_body(vec![message]))
        .send()
        .await?
        .status();
    println!("POST {:<17} via 360dialog -> {status}", media.file);
    Ok(message_id)
}

/// An image as Twilio posts it (a signed form naming its media URL); its job's message id.
async fn via_twilio(
    client: &reqwest::Client,
    twilio: &TwilioSim,
    bound: SocketAddr,
    samples: &[samples::SampleMedia],
) -> anyhow::Result<String> {
    let media = samples
        .iter()
        .find(|s| s.kind == MediaKind::Image)
        .context("no image sample")?;
    let sid = "MMsandbox00000000000000000000000001";
    let url = twilio.add_media(sid, media.bytes, &media.mime_type);
    let params = webhook_params(
        SANDBOX_TWILIO_ACCOUNT,
        &Inbound {
            message_sid: sid,
            from: &format!("+{}", webhooks::SENDER_WA_ID),
            to: "+14155238886",
            profile_name: Some(webhooks::SENDER_NAME),
            body: Some("Rechnung März"),
            media: vec![(url, media.mime_type.clone())],
        },
    );
    let webhook_url = format!("http://{bound}/webhooks/twilio");
    let (body, signature) = signed_form(SANDBOX_TWILIO_TOKEN, &webhook_url, &params);
    let status = client
        .post(&webhook_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await?
        .status();
    println!("POST {:<17} via Twilio -> {status}", media.file);
    Ok(format!("{sid}-0"))
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
            "job {} · {} · {} · {} · {}\n",
            j.id,
            e.source,
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
                if !r.tags.is_empty() {
                    out.push_str(&format!("    tags {}\n", r.tags.join(", ")));
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
