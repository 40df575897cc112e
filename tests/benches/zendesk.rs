//! Zendesk delivery benchmark: the daemon's batcher and the real Zendesk connector into the
//! simulator, on an Enterprise plan's limit (700 requests per minute). Run: scripts/bench.sh zendesk
//!
//! 1,000 media from 200 requesters (new to the account), each sending 5 in a row — the way
//! customers send a fault's videos — with the requesters' bursts overlapping, once without and
//! once with `upload = true`. A second pattern spreads each requester's media over the whole
//! run (no two of one requester in a batch): the worst case, reported, not targeted.
//!
//! Measures: calls per media (targets ≤ 1.2 without upload, ≤ 2.2 with), 429 answers after the
//! first minute (target 0), and how close to the limit's bound the run finishes — the bound is
//! the time the per-minute limit imposes on the calls made at its sustained rate (calls / 700 ×
//! 60 s; wa2crm paces calls evenly instead of spending a minute's allowance in a burst, which
//! would leave the account's other integrations nothing for the rest of it), given as
//! bound ÷ completion time (target ≥ 0.9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wa2crm::pipeline::Batcher;
use wa2crm_core::{
    Connector, ConnectorContext, ConnectorFactory, MediaBody, MediaKind, MediaRecord, MediaSource,
    MemoryStateStore, Phone,
};
use wa2crm_sandbox::zendesk::{ZendeskSim, ZendeskSimConfig};

const EMAIL: &str = "bench@acme.example";
const TOKEN: &str = "bench-zendesk-api-token-0123";
const PER_MINUTE: u32 = 700;
const MEDIA: usize = 1_000;
const REQUESTERS: usize = 200;

/// Each stored file: 20 kB.
struct Files;

#[async_trait::async_trait]
impl MediaSource for Files {
    async fn open(&self, _r: &MediaRecord) -> wa2crm_core::Result<MediaBody> {
        let chunk: std::io::Result<bytes::Bytes> = Ok(bytes::Bytes::from(vec![7u8; 20_000]));
        Ok(MediaBody {
            size: 20_000,
            stream: Box::pin(futures_util::stream::iter([chunk])),
        })
    }
}

#[tokio::main]
async fn main() {
    println!(
        "| run | media | calls | calls per media | target | 429s after the first minute | completion | bound ÷ completion |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    run("bursts, link only", false, bursts, "≤ 1.2").await;
    run("bursts, upload = true", true, bursts, "≤ 2.2").await;
    run("spread out (worst case), link only", false, spread, "—").await;
}

/// Media `i`'s requester: 5 in a row each, bursts overlapping by half.
fn bursts(i: usize) -> usize {
    let burst = i / 5;
    // Two requesters' bursts interleave: 0,1,0,1,… then 2,3,2,3,…
    (burst / 2) * 2 + (i % 2)
}

/// Media `i`'s requester when every requester's media are spread over the whole run.
fn spread(i: usize) -> usize {
    i % REQUESTERS
}

async fn run(name: &str, upload: bool, requester_of: fn(usize) -> usize, target: &str) {
    let mut c = ZendeskSimConfig::new(EMAIL, TOKEN);
    c.requests_per_minute = PER_MINUTE as usize;
    let sim = ZendeskSim::start(c).await.unwrap();
    let config = serde_json::json!({
        "type": "zendesk", "base_url": sim.url(), "email": EMAIL, "api_token": TOKEN,
        "requests_per_minute": PER_MINUTE, "upload": upload,
        "fields": {"file_url": "WhatsApp media link", "media_type": "WhatsApp media type"},
    });
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()))
        .with_media(Some(Arc::new(Files)));
    let connector: Arc<dyn Connector> = wa2crm_zendesk::ZendeskFactory
        .build("zendesk", &config, &context)
        .await
        .unwrap();
    connector.provision(false).await.unwrap();
    // Provisioning used part of the window; start from a quiet one, as a running daemon would.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let before = sim.counts();
    let batcher = Batcher::spawn(connector, None);
    let start = Instant::now();
    let first_minute_429 = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..MEDIA)
        .map(|i| {
            let b = batcher.clone();
            let r = record(i, requester_of(i));
            tokio::spawn(async move {
                let result = b.deliver(i as i64, r).await;
                (result, Instant::now())
            })
        })
        .collect();
    {
        let sim_counts = first_minute_429.clone();
        let limited = sim.counts().rate_limited;
        tokio::time::sleep(Duration::from_secs(60)).await;
        sim_counts.store(
            sim.counts().rate_limited - limited,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
    let mut failed = 0;
    let mut last = start;
    for t in tasks {
        let (result, done) = t.await.unwrap();
        failed += usize::from(result.is_err());
        last = last.max(done);
    }
    let took = last - start;
    let after = sim.counts();
    assert_eq!(failed, 0, "{name}: failed deliveries");
    let calls = after.api_calls - before.api_calls;
    let notes: usize = sim
        .tickets()
        .iter()
        .flat_map(|t| &t.comments)
        .map(|c| c.body.matches("\nwa2crm: ").count())
        .sum();
    assert_eq!(notes, MEDIA, "{name}: one note per media");
    // Every call takes its share of a minute at the limit's sustained rate.
    let bound = Duration::from_secs_f64(calls as f64 * 60.0 / PER_MINUTE as f64);
    let late_429 = (after.rate_limited - before.rate_limited)
        .saturating_sub(first_minute_429.load(std::sync::atomic::Ordering::SeqCst));
    println!(
        "| {name} | {MEDIA} from {REQUESTERS} | {calls} | {:.2} | {target} | {late_429} | {:.0} s | {:.2} |",
        calls as f64 / MEDIA as f64,
        took.as_secs_f64(),
        bound.as_secs_f64() / took.as_secs_f64()
    );
}

fn record(i: usize, requester: usize) -> MediaRecord {
    let number = 14_155_550_000u64 + requester as u64;
    MediaRecord {
        message_id: format!("wamid.bench.{i}"),
        file_url: format!("https://wa2crm.example.com/media/token-{i}"),
        storage_uri: format!("file:///var/lib/wa2crm/media/2026/12/04/{i:064x}.mp4"),
        media_type: MediaKind::Video,
        mime_type: "video/mp4".into(),
        size_bytes: 20_000,
        duration_seconds: Some(12.0),
        tags: vec!["product-issue".into()],
        caption: None,
        file_name: None,
        sender: Phone::parse(&format!("+{number}")).unwrap(),
        sender_name: Some(format!("Customer {requester}")),
        received_at: time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::seconds(1_790_000_000 + i as i64),
        sha256: format!("{i:064x}"),
        rendition_url: None,
    }
}
