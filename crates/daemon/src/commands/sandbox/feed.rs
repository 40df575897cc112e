//! What the sandbox sends the daemon: every sample through Meta's Cloud API, one through
//! 360dialog and one through Twilio, then a duplicate, a message without a file, and a forged
//! signature — each printed with the daemon's answer and what it should have done.

use std::net::SocketAddr;

use anyhow::Context;
use serde_json::json;
use wa2crm_core::MediaKind;
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::twilio::{Inbound, TwilioSim, signed_form, webhook_params};
use wa2crm_sandbox::{samples, webhooks};

use super::watch::skipped_so_far;
use super::{
    SANDBOX_APP_SECRET, SANDBOX_D360_HEADER, SANDBOX_D360_HEADER_VALUE, SANDBOX_TWILIO_ACCOUNT,
    SANDBOX_TWILIO_TOKEN,
};

/// A webhook that should become a job: its source, message id, and the sample's file name.
pub struct Sent {
    pub source: &'static str,
    pub message_id: String,
    pub file: String,
}

/// What the scripted part sent, for the summary.
#[derive(Default)]
pub struct Fed {
    pub jobs: Vec<Sent>,
    pub duplicates: usize,
    pub skipped: usize,
    pub refused: usize,
}

pub async fn all(
    client: &reqwest::Client,
    daemon: SocketAddr,
    graph: &GraphSim,
    d360: &GraphSim,
    twilio: &TwilioSim,
    now: i64,
) -> anyhow::Result<Fed> {
    let url = format!("http://{daemon}/webhooks/whatsapp");
    let samples = samples::all();
    let mut fed = Fed::default();
    for (i, media) in samples.iter().enumerate() {
        let media_id = format!("sandbox-media-{i}");
        let body = meta_body(
            graph,
            media,
            &media_id,
            &format!("wamid.sandbox.{i}.{}", media.file),
            now,
        );
        let status = post(client, &url, &body).await?;
        println!("POST {:<17} signed webhook -> {status}", media.file);
        fed.jobs.push(Sent {
            source: "meta",
            message_id: format!("wamid.sandbox.{i}.{}", media.file),
            file: media.file.to_owned(),
        });
    }
    fed.jobs
        .push(via_d360(client, d360, daemon, &samples[0], now).await?);
    fed.jobs
        .push(via_twilio(client, twilio, daemon, &samples).await?);
    fed.jobs
        .push(from_ana(client, &url, graph, &samples, now).await?);

    let again = webhooks::webhook_body(vec![webhooks::message_json(
        &sample_for(&samples[0]),
        &fed.jobs[0].message_id,
        "sandbox-media-0",
        now,
    )]);
    println!(
        "POST {:<17} the same webhook again -> {} (a duplicate: no new job)",
        samples[0].file,
        post(client, &url, &again).await?
    );
    fed.duplicates += 1;

    let before = skipped_so_far();
    let location = webhooks::webhook_body(vec![json!({
        "from": webhooks::SENDER_WA_ID,
        "id": "wamid.sandbox.location",
        "timestamp": now.to_string(),
        "type": "location",
        "location": {"latitude": 52.5163, "longitude": 13.3777, "name": "Pariser Platz"},
    })]);
    let status = post(client, &url, &location).await?;
    let skipped = skipped_so_far() - before;
    println!(
        "POST {:<17} not a file -> {status} ({})",
        "location",
        if skipped > 0.0 {
            "skipped, as it should be: it carries no file"
        } else {
            "NOT counted as skipped: look at the daemon's log"
        }
    );
    fed.skipped += skipped as usize;

    let forged = client
        .post(&url)
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(again)
        .send()
        .await?
        .status();
    println!(
        "POST {:<17} with a forged signature -> {forged} (expected: refused, nothing stored)",
        samples[0].file
    );
    fed.refused += 1;
    Ok(fed)
}

/// A signed Cloud API body for `media`, served by `graph` as `media_id`.
pub fn meta_body(
    graph: &GraphSim,
    media: &samples::SampleMedia,
    media_id: &str,
    message_id: &str,
    now: i64,
) -> Vec<u8> {
    let sha256 = graph.add_media(media_id, media.bytes, &media.mime_type);
    let mut message = webhooks::message_json(&sample_for(media), message_id, media_id, now);
    let key = message["type"].as_str().unwrap_or("audio").to_owned();
    message[&key]["sha256"] = sha256.into();
    webhooks::webhook_body(vec![message])
}

/// The first sample again, as 360dialog forwards it (Cloud API body, the operator's header).
async fn via_d360(
    client: &reqwest::Client,
    d360: &GraphSim,
    daemon: SocketAddr,
    media: &samples::SampleMedia,
    now: i64,
) -> anyhow::Result<Sent> {
    let message_id = format!("wamid.sandbox.d360.{}", media.file);
    let body = meta_body(d360, media, "sandbox-d360-0", &message_id, now);
    let status = client
        .post(format!("http://{daemon}/webhooks/d360"))
        .header("Content-Type", "application/json")
        .header(SANDBOX_D360_HEADER, SANDBOX_D360_HEADER_VALUE)
        .body(body)
        .send()
        .await?
        .status();
    println!("POST {:<17} via 360dialog -> {status}", media.file);
    Ok(Sent {
        source: "d360",
        message_id,
        file: media.file.to_owned(),
    })
}

/// An image as Twilio posts it (a signed form naming its media URL).
async fn via_twilio(
    client: &reqwest::Client,
    twilio: &TwilioSim,
    daemon: SocketAddr,
    samples: &[samples::SampleMedia],
) -> anyhow::Result<Sent> {
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
            from: super::customers::SAM,
            to: "+14155238886",
            profile_name: Some(super::customers::SAM_NAME),
            body: Some("Rechnung März"),
            media: vec![(url, media.mime_type.clone())],
        },
    );
    let webhook_url = format!("http://{daemon}/webhooks/twilio");
    let (body, signature) = signed_form(SANDBOX_TWILIO_TOKEN, &webhook_url, &params);
    let status = client
        .post(&webhook_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await?
        .status();
    println!(
        "POST {:<17} via Twilio, from a new sender -> {status}",
        media.file
    );
    Ok(Sent {
        source: "twilio",
        message_id: format!("{sid}-0"),
        file: media.file.to_owned(),
    })
}

/// An image from an existing customer whose WhatsApp id lacks the ninth digit her CRM record has.
async fn from_ana(
    client: &reqwest::Client,
    url: &str,
    graph: &GraphSim,
    samples: &[samples::SampleMedia],
    now: i64,
) -> anyhow::Result<Sent> {
    let media = samples
        .iter()
        .find(|s| s.kind == MediaKind::Image)
        .context("no image sample")?;
    let message_id = "wamid.sandbox.ana.1".to_owned();
    let body = meta_body(graph, media, "sandbox-ana-0", &message_id, now);
    let mut body: serde_json::Value = serde_json::from_slice(&body)?;
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"][0] = json!({"profile": {"name": super::customers::ANA_NAME},
                                  "wa_id": super::customers::ANA});
    value["messages"][0]["from"] = json!(super::customers::ANA);
    let body = serde_json::to_vec(&body)?;
    let status = post(client, url, &body).await?;
    println!(
        "POST {:<17} from an existing customer (without Brazil's ninth digit) -> {status}",
        media.file
    );
    Ok(Sent {
        source: "meta",
        message_id,
        file: media.file.to_owned(),
    })
}

pub fn sample_for(media: &samples::SampleMedia) -> webhooks::Sample {
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
