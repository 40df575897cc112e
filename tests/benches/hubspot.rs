//! HubSpot delivery benchmark, two runs through the daemon's batcher and the real HubSpot
//! connector into the simulator. Run: scripts/bench.sh hubspot
//!
//! 1. Existing customers: 10,000 media events from 2,000 senders, half of whom the portal
//!    already has as contacts, their numbers typed every which way (`+1 415-555-0001`,
//!    `(415) 555-0002` read in the default country, `+14155550003` in the WhatsApp property);
//!    a Starter portal (100 requests per 10 s, 10 per second, search 4 per second), every call
//!    answered after 250 ms. Measures HubSpot API calls per media event (target ≤ 0.06), 429
//!    answers (target 0), and that every existing customer's media is on their contact (no
//!    duplicate contact).
//! 2. Rate-bound batching: 300 media events from 30 senders arriving at once against a portal
//!    allowing 20 requests per 10 s. Measures calls per media event (target ≤ 0.05): batches
//!    must fill while they wait for the rate limit.
//!
//! The bound of run 1: every call but the searches counts against the per-second policy and all
//! but the v4 association batches against the rolling window, so C such calls cannot finish in
//! less than C / 10 seconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wa2crm::pipeline::Batcher;
use wa2crm_core::{
    Connector, ConnectorContext, ConnectorFactory, MediaKind, MediaRecord, MemoryStateStore, Phone,
};
use wa2crm_sandbox::hubspot::{Counts, HubSpotSim, HubSpotSimConfig, Limits};

const TOKEN: &str = "pat-na1-bench";

#[tokio::main]
async fn main() {
    existing_customers().await;
    println!();
    rate_bound().await;
}

async fn portal(per_10s: u32, latency: Duration) -> HubSpotSim {
    let mut config = HubSpotSimConfig::private_app(TOKEN);
    config.limits = Limits {
        max_per_interval: per_10s,
        interval: Duration::from_secs(10),
        daily: Some(250_000),
    };
    let sim = HubSpotSim::start(config).await.unwrap();
    sim.set_latency(latency);
    sim
}

async fn connector(sim: &HubSpotSim, per_10s: u32) -> Arc<dyn Connector> {
    let config = serde_json::json!({
        "type": "hubspot", "base_url": sim.url(), "token": TOKEN,
        "contact_key": "whatsapp_id", "note": true, "requests_per_10s": per_10s,
        "match": {"default_country": "US"},
        "fields": {"file_url": "wa_media_url", "media_type": "wa_media_type",
            "mime_type": "wa_media_mime", "size_bytes": "wa_media_size",
            "duration_seconds": "wa_media_duration", "tags": "wa_media_tags",
            "received_at": "wa_media_received_at"},
    });
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let connector = wa2crm_hubspot::HubSpotFactory
        .build("hubspot", &config, &context)
        .await
        .unwrap();
    connector.provision(false).await.unwrap();
    connector
}

/// Delivers `events` records through a batcher at once; (failed, time taken).
async fn deliver_all(
    connector: Arc<dyn Connector>,
    records: Vec<MediaRecord>,
) -> (usize, Duration) {
    let batcher = Batcher::spawn(connector, None);
    let start = Instant::now();
    let tasks: Vec<_> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let b = batcher.clone();
            tokio::spawn(async move { b.deliver(i as i64, r).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            failed += 1;
        }
    }
    (failed, start.elapsed())
}

fn calls_by_route(before: &Counts, after: &Counts) {
    for (route, n) in &after.calls {
        let n = n - before.calls.get(route).copied().unwrap_or(0);
        if n > 0 {
            println!("| calls: {route} | {n} | |");
        }
    }
}

async fn existing_customers() {
    const EVENTS: usize = 10_000;
    const SENDERS: usize = 2_000;
    let latency = Duration::from_millis(
        std::env::var("HUBSPOT_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(250),
    );
    let sim = portal(100, latency).await;
    let connector = connector(&sim, 100).await;
    // Half the senders are customers already, entered by people in three ways.
    let mut existing = Vec::new();
    for s in (0..SENDERS).step_by(2) {
        let n = 4_155_550_000u64 + s as u64;
        let (area, rest) = (n / 10_000_000 % 1000, n % 10_000_000);
        let id = match s % 3 {
            0 => sim.add_record(
                "contacts",
                &[(
                    "phone",
                    &format!("+1 {area}-{}-{:04}", rest / 10_000, rest % 10_000),
                )],
            ),
            1 => sim.add_record(
                "contacts",
                &[(
                    "mobilephone",
                    &format!("({area}) {}-{:04}", rest / 10_000, rest % 10_000),
                )],
            ),
            _ => sim.add_record(
                "contacts",
                &[("hs_whatsapp_phone_number", &format!("+1{n}"))],
            ),
        };
        existing.push((format!("+1{n}"), id));
    }
    // Provisioning used part of the window; start from a quiet one, as a running daemon would.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = sim.counts();
    let records = (0..EVENTS).map(|i| record(i, i % SENDERS)).collect();
    let (failed, took) = deliver_all(connector, records).await;
    let after = sim.counts();
    let calls = after.total_calls() - before.total_calls();
    let searches: u64 = after
        .calls
        .iter()
        .filter(|(r, _)| r.ends_with(" search"))
        .map(|(r, n)| n - before.calls.get(r).copied().unwrap_or(0))
        .sum();
    let bound = Duration::from_secs_f64((calls - searches) as f64 / 10.0);
    let on_their_contact = existing
        .iter()
        .filter(|(phone, id)| {
            sim.find("contacts", "whatsapp_id", phone)
                .is_some_and(|c| c.id == *id)
        })
        .count();
    println!("Existing customers (match on, default_country US)");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| media events | {EVENTS} ({SENDERS} senders, {} of them existing contacts) | |",
        existing.len()
    );
    println!(
        "| simulated HubSpot latency per call | {} ms | |",
        latency.as_millis()
    );
    println!("| failed deliveries | {failed} | 0 |");
    println!(
        "| notes in HubSpot | {} | {EVENTS} |",
        sim.records("notes").len()
    );
    println!(
        "| contacts in HubSpot | {} | {SENDERS} (no duplicate) |",
        sim.records("contacts").len()
    );
    println!(
        "| existing customers whose media is on their own contact | {on_their_contact} | {} |",
        existing.len()
    );
    println!("| HubSpot API calls | {calls} (of them {searches} searches) | |");
    println!(
        "| calls per media event | {:.4} | ≤ 0.06 |",
        calls as f64 / EVENTS as f64
    );
    println!("| completion time | {:.1} s | |", took.as_secs_f64());
    println!(
        "| time the rate limit imposes on the {} calls outside search | {:.1} s | |",
        calls - searches,
        bound.as_secs_f64()
    );
    println!(
        "| 429 answers | {} | 0 |",
        after.too_many_requests - before.too_many_requests
    );
    calls_by_route(&before, &after);
}

async fn rate_bound() {
    const EVENTS: usize = 300;
    const SENDERS: usize = 30;
    let sim = portal(20, Duration::from_millis(250)).await;
    let connector = connector(&sim, 20).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = sim.counts();
    let records = (0..EVENTS).map(|i| record(i, i % SENDERS)).collect();
    let (failed, took) = deliver_all(connector, records).await;
    let after = sim.counts();
    let calls = after.total_calls() - before.total_calls();
    println!("Rate-bound batching (20 requests per 10 s)");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| media events | {EVENTS} ({SENDERS} senders, at once) | |");
    println!("| failed deliveries | {failed} | 0 |");
    println!("| HubSpot API calls | {calls} | |");
    println!(
        "| calls per media event | {:.4} | ≤ 0.05 |",
        calls as f64 / EVENTS as f64
    );
    println!("| completion time | {:.1} s | |", took.as_secs_f64());
    println!(
        "| 429 answers | {} | 0 |",
        after.too_many_requests - before.too_many_requests
    );
    calls_by_route(&before, &after);
}

fn record(i: usize, sender: usize) -> MediaRecord {
    let number = 14_155_550_000u64 + sender as u64;
    MediaRecord {
        message_id: format!("wamid.bench.{i}"),
        file_url: format!("https://wa2crm.example.com/media/token-{i}"),
        storage_uri: format!("file:///var/lib/wa2crm/media/2026/11/22/{i:064x}.ogg"),
        media_type: MediaKind::Voice,
        mime_type: "audio/ogg".into(),
        size_bytes: 20_000 + i as u64,
        duration_seconds: Some(3.5),
        tags: vec![],
        caption: None,
        file_name: None,
        sender: Phone::parse(&format!("+{number}")).unwrap(),
        sender_name: Some(format!("Customer {sender}")),
        received_at: time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_790_000_000 + i as i64),
        sha256: format!("{i:064x}"),
        rendition_url: None,
    }
}
