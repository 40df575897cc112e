//! Zoho CRM delivery benchmark: 10,000 media events (2,000 senders, half of them already the
//! org's Contacts or Leads, their numbers written as people write them) through the daemon's
//! batcher and the real Zoho connector into the simulator: Zoho API calls and credits per media
//! event (target ≤ 0.03), that every existing customer's media is on their own record (no
//! duplicate Contact), and completion time. Run: scripts/bench.sh zoho
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use wa2crm::pipeline::Batcher;
use wa2crm_core::{
    ConnectorContext, ConnectorFactory, MediaKind, MediaRecord, MemoryStateStore, Phone,
};
use wa2crm_sandbox::zoho::{ZohoSim, ZohoSimConfig};

const EVENTS: usize = 10_000;
const SENDERS: usize = 2_000;

#[tokio::main]
async fn main() {
    let mut sim_config = ZohoSimConfig::new("1000.BENCH", "bench-secret", "1000.bench.refresh");
    // Professional, 50 users: 75,000 credits; 15 calls in flight.
    sim_config.credits_per_day = 75_000;
    sim_config.max_concurrent = 15;
    let sim = ZohoSim::start(sim_config).await.unwrap();
    sim.add_module("WhatsApp_Media");
    // Half the senders are customers already: Contacts with the number in Phone or Mobile as
    // people write it, and every fifth a Lead.
    let mut existing = Vec::new();
    for s in (0..SENDERS).step_by(2) {
        let n = 4_155_550_000u64 + s as u64;
        let (area, rest) = (n / 10_000_000 % 1000, n % 10_000_000);
        let typed = format!("({area}) {}-{:04}", rest / 10_000, rest % 10_000);
        let id = match s % 10 {
            0 | 2 => sim.add_record(
                "Leads",
                json!({"Last_Name": format!("Lead {s}"), "Phone": typed}),
            ),
            4 | 6 => sim.add_record(
                "Contacts",
                json!({"Last_Name": format!("Customer {s}"), "Mobile": format!("+1{n}")}),
            ),
            _ => sim.add_record(
                "Contacts",
                json!({"Last_Name": format!("Customer {s}"), "Phone": typed}),
            ),
        };
        existing.push((s, id));
    }
    let config = json!({
        "type": "zoho", "accounts_url": sim.accounts_url(), "client_id": "1000.BENCH",
        "client_secret": "bench-secret", "refresh_token": "1000.bench.refresh",
        "max_concurrent": 10,
        "match": {"default_country": "US"},
        "fields": {"file_url": "WA_Link", "media_type": "WA_Type", "mime_type": "WA_Mime",
            "size_bytes": "WA_Size", "duration_seconds": "WA_Length",
            "received_at": "WA_Received", "sha256": "WA_Sha256"},
    });
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let connector = wa2crm_zoho::ZohoFactory
        .build("zoho", &config, &context)
        .await
        .unwrap();
    connector.provision(false).await.unwrap();
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
    let calls = after.api_calls - before.api_calls;
    let credits = after.credits_used - before.credits_used;
    let media = sim.records("WhatsApp_Media");
    let on_their_record = existing
        .iter()
        .filter(|(s, id)| {
            media.iter().any(|m| {
                let to =
                    |f: &str| m.values.get(f).and_then(|v| v["id"].as_str()) == Some(id.as_str());
                (to("Contact") || to("Lead"))
                    && m.values.get("WA_Message_Id") == Some(&json!(format!("wamid.bench.{s}")))
            })
        })
        .count();
    let leads = existing
        .iter()
        .filter(|(s, _)| s % 10 == 0 || s % 10 == 2)
        .count();
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| media events | {EVENTS} ({SENDERS} senders) | |");
    println!("| failed deliveries | {failed} | 0 |");
    println!("| media records in Zoho | {} | {EVENTS} |", media.len());
    println!(
        "| Contacts in Zoho | {} | {} (the existing and one per new sender) |",
        sim.records("Contacts").len(),
        SENDERS - leads
    );
    println!(
        "| existing customers whose first media is on their own record | {on_their_record} | {} |",
        existing.len()
    );
    println!("| Zoho API calls | {calls} | |");
    println!(
        "| calls per media event | {:.4} | ≤ 0.03 |",
        calls as f64 / EVENTS as f64
    );
    println!(
        "| credits per media event | {:.4} | |",
        credits as f64 / EVENTS as f64
    );
    println!(
        "| most calls in flight | {} | ≤ 10 (max_concurrent) |",
        after.max_in_flight
    );
    println!("| token refreshes | {} | 1 |", after.refreshes);
    println!("| completion time | {:.2} s | |", took.as_secs_f64());
}

fn record(i: usize) -> MediaRecord {
    let sender = 14_155_550_000u64 + (i % SENDERS) as u64;
    MediaRecord {
        message_id: format!("wamid.bench.{i}"),
        file_url: format!("https://wa2crm.example.com/media/token-{i}"),
        storage_uri: format!("file:///var/lib/wa2crm/media/{i:064x}.ogg"),
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
