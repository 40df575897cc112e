//! HubSpot delivery benchmark: 10,000 media events through the daemon's batcher and the real
//! HubSpot connector into the simulator, limited like a Starter portal (100 requests per 10 s,
//! 10 per second). Measures HubSpot API calls per media event (target ≤ 0.05) and the completion
//! time against the time the rate limit itself imposes on those calls (target ≥ 0.9 of that
//! bound's speed), and counts 429 answers (target: none after the first window).
//!
//! The bound: every call counts against the per-second policy (10/s) and all but the v4
//! association batches against the rolling 100-per-10-s window, so C calls cannot finish in less
//! than C / 10 seconds, whatever their order. Run: scripts/bench.sh hubspot
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wa2crm::pipeline::Batcher;
use wa2crm_core::{
    ConnectorContext, ConnectorFactory, MediaKind, MediaRecord, MemoryStateStore, Phone,
};
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};

const EVENTS: usize = 10_000;
/// Distinct senders: five media each on average.
const SENDERS: usize = 2_000;
const TOKEN: &str = "pat-na1-bench";

#[tokio::main]
async fn main() {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    // HubSpot's batch calls take a few hundred milliseconds; the limit allows one call per 100 ms.
    let latency = Duration::from_millis(
        std::env::var("HUBSPOT_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(250),
    );
    sim.set_latency(latency);
    let config = serde_json::json!({
        "type": "hubspot", "base_url": sim.url(), "token": TOKEN,
        "contact_key": "whatsapp_id", "note": true,
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
    // Provisioning used part of the window; start from a quiet one, as a running daemon would.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = sim.counts();

    let batcher = Batcher::spawn(connector, None);
    let start = Instant::now();
    let tasks: Vec<_> = (0..EVENTS)
        .map(|i| {
            let b = batcher.clone();
            tokio::spawn(async move { b.deliver(i as i64, record(i)).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            failed += 1;
        }
    }
    let took = start.elapsed();
    let after = sim.counts();
    let calls = after.total_calls() - before.total_calls();
    let bound = Duration::from_secs_f64(calls as f64 / 10.0);
    let notes = sim.records("notes").len();
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| media events | {EVENTS} ({SENDERS} senders) | |");
    println!(
        "| simulated HubSpot latency per call | {} ms | |",
        latency.as_millis()
    );
    println!("| failed deliveries | {failed} | 0 |");
    println!("| notes in HubSpot | {notes} | {EVENTS} |");
    println!("| HubSpot API calls | {calls} | |");
    println!(
        "| calls per media event | {:.4} | ≤ 0.05 |",
        calls as f64 / EVENTS as f64
    );
    println!("| completion time | {:.1} s | |", took.as_secs_f64());
    println!(
        "| time the rate limit imposes on {calls} calls | {:.1} s | |",
        bound.as_secs_f64()
    );
    println!(
        "| speed relative to that bound | {:.3} | ≥ 0.9 |",
        bound.as_secs_f64() / took.as_secs_f64()
    );
    println!(
        "| 429 answers | {} | 0 after the first window |",
        after.too_many_requests - before.too_many_requests
    );
    for (route, n) in &after.calls {
        let n = n - before.calls.get(route).copied().unwrap_or(0);
        if n > 0 {
            println!("| calls: {route} | {n} | |");
        }
    }
}

fn record(i: usize) -> MediaRecord {
    let sender = 14_155_550_000u64 + (i % SENDERS) as u64;
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
        sender: Phone::parse(&format!("+{sender}")).unwrap(),
        sender_name: Some(format!("Customer {}", i % SENDERS)),
        received_at: time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_790_000_000 + i as i64),
        sha256: format!("{i:064x}"),
        rendition_url: None,
    }
}
