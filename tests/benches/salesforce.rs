//! Salesforce delivery benchmark: 10,000 media events (2,000 senders, half of them already the
//! org's Contacts or Leads, their numbers typed every which way) through the daemon's batcher
//! and the real Salesforce connector into the simulator: Salesforce API calls per media event
//! (target ≤ 0.02), that every existing customer's media is on their own record (no duplicate
//! Contact), and completion time. Run: scripts/bench.sh salesforce
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use wa2crm::pipeline::Batcher;
use wa2crm_core::{
    ConnectorContext, ConnectorFactory, MediaKind, MediaRecord, MemoryStateStore, Phone,
};
use wa2crm_sandbox::salesforce::{SANDBOX_PRIVATE_KEY, SalesforceSim, SalesforceSimConfig};

const EVENTS: usize = 10_000;
const SENDERS: usize = 2_000;

#[tokio::main]
async fn main() {
    let sim_config = SalesforceSimConfig::new("3MVG9bench", "bench@example.com");
    let permission_set = sim_config.permission_set.clone();
    let sim = SalesforceSim::start(sim_config).await.unwrap();
    sim.add_object("WhatsApp_Media__c");
    // Half the senders are customers already: Contacts with the number in Phone or MobilePhone
    // as people type it, and every fifth a Lead.
    let mut existing = Vec::new();
    for s in (0..SENDERS).step_by(2) {
        let n = 4_155_550_000u64 + s as u64;
        let (area, rest) = (n / 10_000_000 % 1000, n % 10_000_000);
        let typed = format!("({area}) {}-{:04}", rest / 10_000, rest % 10_000);
        let id = match s % 10 {
            0 | 2 => sim.add_record(
                "Lead",
                &[
                    ("LastName", serde_json::json!(format!("Lead {s}"))),
                    ("Company", serde_json::json!("Acme")),
                    ("Phone", serde_json::json!(typed)),
                ],
            ),
            4 | 6 => sim.add_record(
                "Contact",
                &[
                    ("LastName", serde_json::json!(format!("Customer {s}"))),
                    ("MobilePhone", serde_json::json!(format!("+1{n}"))),
                ],
            ),
            _ => sim.add_record(
                "Contact",
                &[
                    ("LastName", serde_json::json!(format!("Customer {s}"))),
                    ("Phone", serde_json::json!(typed)),
                ],
            ),
        };
        existing.push((s, id));
    }
    let config = serde_json::json!({
        "type": "salesforce", "login_url": sim.url(), "client_id": "3MVG9bench",
        "username": "bench@example.com", "private_key": SANDBOX_PRIVATE_KEY,
        "object": "WhatsApp_Media__c", "external_id": "WA_Message_Id__c",
        "contact_lookup": "Contact__c", "contact_key": "WhatsApp_Id__c",
        "permission_set": permission_set,
        "match": {"default_country": "US"},
        "fields": {"file_url": "Media_Url__c", "media_type": "Media_Type__c",
            "mime_type": "Mime_Type__c", "size_bytes": "Size_Bytes__c",
            "duration_seconds": "Duration_Seconds__c", "received_at": "Received_At__c",
            "sha256": "Sha256__c"},
    });
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    let connector = wa2crm_salesforce::SalesforceFactory
        .build("salesforce", &config, &context)
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
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| media events | {EVENTS} ({SENDERS} senders) | |");
    println!("| failed deliveries | {failed} | 0 |");
    println!(
        "| media records in Salesforce | {} | {EVENTS} |",
        sim.records("WhatsApp_Media__c").len()
    );
    let media = sim.records("WhatsApp_Media__c");
    let on_their_record = existing
        .iter()
        .filter(|(s, id)| {
            // The sender's first media (event s of the first round).
            media.iter().any(|m| {
                (m.get("Contact__c") == Some(&serde_json::json!(id))
                    || m.get("Lead__c") == Some(&serde_json::json!(id)))
                    && m.get("WA_Message_Id__c")
                        == Some(&serde_json::json!(format!("wamid.bench.{s}")))
            })
        })
        .count();
    println!(
        "| Contacts in Salesforce | {} | {} (the existing and one per new sender) |",
        sim.records("Contact").len(),
        SENDERS - existing.len()
            + existing
                .iter()
                .filter(|(s, _)| s % 10 != 0 && s % 10 != 2)
                .count()
    );
    println!(
        "| existing customers whose first media is on their own record | {on_their_record} | {} |",
        existing.len()
    );
    println!("| Salesforce API calls | {calls} | |");
    println!(
        "| calls per media event | {:.4} | ≤ 0.02 |",
        calls as f64 / EVENTS as f64
    );
    println!(
        "| logins during the run | {} (one session, taken before) | |",
        after.logins - before.logins
    );
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
