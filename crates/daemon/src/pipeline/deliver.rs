//! The deliver step: the stored media goes to every connector routed for its number, each
//! through a [`Batcher`] that gathers the records of many jobs into one `deliver` call. What each
//! connector wrote is checkpointed, so a retry only goes to the connectors still missing.

use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wa2crm_core::state::keys;
use wa2crm_core::{Connector, Delivered, Error, MediaRecord, StateStore};
use wa2crm_queue::{Job, JobId, JobStore};

use super::Pipeline;
use super::record::{checkpoint, media_record};
use super::steps::{Failure, save};
use crate::config::RouteConfig;
use crate::connectors::Routes;

struct Item {
    /// The job the record is of: a job erasure has fenced is taken out before the call.
    job: JobId,
    record: MediaRecord,
    reply: oneshot::Sender<Result<Delivered, Error>>,
}

/// Gathers records for one connector into batches, in `concurrency` lanes. The first record of a
/// batch waits at most the connector's linger for others to join; a full batch goes at once.
/// Each lane has one batch in flight, so under load its next batch fills while the current one
/// is sent, and the lanes' calls overlap, so the vendor's latency does not leave the rate limit
/// unused. A sender's records always take the same lane: one contact is never written by two
/// batches at once (which could move its latest-media fields back in time).
#[derive(Clone)]
pub struct Batcher {
    lanes: Vec<mpsc::Sender<Item>>,
}

impl Batcher {
    /// With the queue, each batch's jobs are checked against erasure's fence right before the
    /// call, and the outcome is recorded for `status` (last success, last error).
    pub fn spawn(connector: Arc<dyn Connector>, queue: Option<Arc<dyn JobStore>>) -> Self {
        let lanes = (0..connector.concurrency().max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(connector.max_batch().max(1) * 2);
                tokio::spawn(batch_loop(connector.clone(), queue.clone(), rx));
                tx
            })
            .collect();
        Batcher { lanes }
    }

    pub async fn deliver(&self, job: JobId, record: MediaRecord) -> Result<Delivered, Error> {
        let (reply, answer) = oneshot::channel();
        let lane = lane_of(record.sender.as_str(), self.lanes.len());
        self.lanes[lane]
            .send(Item { job, record, reply })
            .await
            .map_err(|_| Error::transient("the connector's batcher stopped"))?;
        answer
            .await
            .map_err(|_| Error::transient("the connector's batcher stopped"))?
    }
}

/// A stable lane per sender (FNV-1a: the same on every run and instance).
fn lane_of(sender: &str, lanes: usize) -> usize {
    let hash = sender.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % lanes.max(1) as u64) as usize
}

/// Answers the items of fenced jobs (erasure is under way for their sender) and keeps the rest.
async fn without_fenced(queue: &dyn JobStore, items: Vec<Item>) -> Vec<Item> {
    let ids: Vec<JobId> = items.iter().map(|i| i.job).collect();
    let fenced = match queue.fenced(&ids).await {
        Ok(f) => f,
        Err(e) => {
            for item in items {
                let _ = item.reply.send(Err(Error::transient(format!(
                    "cannot check the queue before writing: {e}"
                ))));
            }
            return Vec::new();
        }
    };
    let (stopped, go): (Vec<Item>, Vec<Item>) =
        items.into_iter().partition(|i| fenced.contains(&i.job));
    for item in stopped {
        let _ = item.reply.send(Err(Error::transient(
            "stopped: this sender's media is being erased",
        )));
    }
    go
}

async fn batch_loop(
    connector: Arc<dyn Connector>,
    queue: Option<Arc<dyn JobStore>>,
    mut rx: mpsc::Receiver<Item>,
) {
    let max = connector.max_batch().max(1);
    let linger = connector.linger();
    while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        let deadline = Instant::now() + linger;
        while items.len() < max {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(i) => items.push(i),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if let Some(queue) = &queue {
            items = without_fenced(queue.as_ref(), items).await;
            if items.is_empty() {
                continue;
            }
        }
        let records: Vec<MediaRecord> = items.iter().map(|i| i.record.clone()).collect();
        let started = std::time::Instant::now();
        let results = connector.deliver(&records).await;
        crate::metrics::delivery_batch(connector.name(), records.len(), started.elapsed());
        if let Some(queue) = &queue {
            record_outcome(queue.as_ref(), connector.name(), &results).await;
        }
        let mut results = results.into_iter();
        for item in items {
            let result = results.next().unwrap_or_else(|| {
                Err(Error::transient(format!(
                    "the {} connector returned fewer results than records",
                    connector.name()
                )))
            });
            crate::metrics::delivery(connector.name(), result.is_ok());
            // The job may have been interrupted meanwhile; its result is then simply dropped.
            let _ = item.reply.send(result);
        }
    }
}

/// What `status` shows of a connector: when it last wrote something, and its last error. A
/// failure to record it costs only that line of `status`.
async fn record_outcome(state: &dyn StateStore, name: &str, results: &[Result<Delivered, Error>]) {
    let now = wa2crm_core::state::now_ms().to_string();
    if results.iter().any(Result::is_ok) {
        let _ = state.put_state(name, keys::LAST_SUCCESS_MS, &now).await;
    }
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        let _ = state.put_state(name, keys::LAST_ERROR, e.message()).await;
        let _ = state.put_state(name, keys::LAST_ERROR_MS, &now).await;
    }
}

/// The `deliver` checkpoint: connector name → what it wrote.
pub type DeliveredCheckpoint = BTreeMap<String, Delivered>;

/// The connectors of this process and which numbers they serve.
#[derive(Default)]
pub struct Delivery {
    pub routes: Routes,
    pub batchers: BTreeMap<String, Batcher>,
    /// The connectors themselves, for what is asked one person at a time (consent).
    pub connectors: BTreeMap<String, Arc<dyn Connector>>,
}

impl Delivery {
    pub fn new(
        connectors: &BTreeMap<String, Arc<dyn Connector>>,
        routes: &[RouteConfig],
        queue: Arc<dyn JobStore>,
    ) -> Self {
        Delivery {
            routes: Routes::new(routes, connectors.keys().cloned()),
            batchers: connectors
                .iter()
                .map(|(name, c)| (name.clone(), Batcher::spawn(c.clone(), Some(queue.clone()))))
                .collect(),
            connectors: connectors.clone(),
        }
    }
}

pub(super) async fn run(p: &Pipeline, job: &mut Job) -> Result<(), Failure> {
    let targets = p.delivery.routes.for_event(&job.event);
    let mut done: DeliveredCheckpoint = checkpoint(job, "deliver").unwrap_or_default();
    let pending: Vec<&String> = targets.iter().filter(|t| !done.contains_key(*t)).collect();
    if pending.is_empty() {
        return Ok(());
    }
    let record = media_record(&job.event, &job.checkpoints)
        .ok_or_else(|| Error::permanent("the job has no stored media to deliver"))?;
    let mut calls = Vec::new();
    for name in &pending {
        let batcher = p.delivery.batchers.get(*name).cloned().ok_or_else(|| {
            Error::permanent(format!(
                "routes name connector {name:?}, which is not configured"
            ))
        })?;
        let record = record.clone();
        let name = (*name).clone();
        let id = job.id;
        calls.push(async move { (name, batcher.deliver(id, record).await) });
    }
    let results = futures_util::future::join_all(calls).await;
    let mut failure: Option<Error> = None;
    let mut progressed = false;
    for (name, result) in results {
        match result {
            Ok(d) => {
                tracing::info!(job = job.id, connector = %name, crm_id = %d.crm_id, created = d.created, "Media delivered.");
                done.insert(name, d);
                progressed = true;
            }
            Err(e) => {
                let e = Error::new(e.kind(), format!("{name}: {}", e.message()));
                // A failure worth retrying wins: the permanent one will fail again next time,
                // after the others are done.
                let keep = match &failure {
                    None => true,
                    Some(f) => !f.kind().is_retryable() && e.kind().is_retryable(),
                };
                if keep {
                    failure = Some(e);
                }
            }
        }
    }
    if progressed {
        save(p, job, "deliver", &done).await?;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use wa2crm_core::{CheckReport, EraseReport, MediaKind, Phone, Plan, Result};

    use super::*;

    /// Records the size of every batch it is given.
    struct Recorder {
        batches: Mutex<Vec<Vec<String>>>,
        lanes: usize,
    }

    #[async_trait]
    impl Connector for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn max_batch(&self) -> usize {
            100
        }
        fn concurrency(&self) -> usize {
            self.lanes
        }
        fn linger(&self) -> Duration {
            Duration::from_millis(200)
        }
        async fn check(&self) -> Result<CheckReport> {
            Ok(CheckReport::default())
        }
        async fn provision(&self, _: bool) -> Result<Plan> {
            Ok(Plan::default())
        }
        async fn deliver(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
            self.batches
                .lock()
                .unwrap()
                .push(batch.iter().map(|r| r.sender.to_string()).collect());
            // A slow vendor: the next batch fills meanwhile.
            tokio::time::sleep(Duration::from_millis(300)).await;
            batch
                .iter()
                .map(|r| {
                    if r.message_id.ends_with("bad") {
                        Err(Error::permanent("refused"))
                    } else {
                        Ok(Delivered {
                            crm_id: r.message_id.clone(),
                            created: true,
                        })
                    }
                })
                .collect()
        }
        async fn expire(&self, _: &[MediaRecord], _: bool, _: bool) -> Result<EraseReport> {
            Ok(EraseReport::default())
        }
        async fn erase(&self, _: &Phone, _: bool) -> Result<EraseReport> {
            Ok(EraseReport::default())
        }
    }

    fn record(id: &str, sender: u32) -> MediaRecord {
        MediaRecord {
            message_id: id.into(),
            file_url: String::new(),
            storage_uri: String::new(),
            media_type: MediaKind::Voice,
            mime_type: "audio/ogg".into(),
            size_bytes: 1,
            duration_seconds: None,
            tags: vec![],
            caption: None,
            file_name: None,
            sender: Phone::parse(&format!("+1415555{sender:04}")).unwrap(),
            sender_name: None,
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            sha256: String::new(),
            rendition_url: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn under_load_batches_fill_to_the_maximum_and_results_go_to_their_jobs() {
        let recorder = Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
            lanes: 1,
        });
        let batcher = Batcher::spawn(recorder.clone(), None);
        let tasks: Vec<_> = (0..250)
            .map(|i| {
                let b = batcher.clone();
                let id = if i == 7 {
                    "m7-bad".to_string()
                } else {
                    format!("m{i}")
                };
                tokio::spawn(
                    async move { (id.clone(), b.deliver(i as i64, record(&id, i % 50)).await) },
                )
            })
            .collect();
        for t in tasks {
            let (id, result) = t.await.unwrap();
            match result {
                Ok(d) => assert_eq!(d.crm_id, id),
                Err(e) => assert!(id.ends_with("bad") && e.message() == "refused", "{id}: {e}"),
            }
        }
        let sizes: Vec<usize> = recorder
            .batches
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_record_waits_at_most_the_linger() {
        let recorder = Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
            lanes: 1,
        });
        let batcher = Batcher::spawn(recorder.clone(), None);
        let start = tokio::time::Instant::now();
        batcher.deliver(1, record("m", 1)).await.unwrap();
        // 200 ms of linger, 300 ms of the vendor.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_always_takes_the_same_lane() {
        let recorder = Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
            lanes: 4,
        });
        let batcher = Batcher::spawn(recorder.clone(), None);
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(
                    async move { b.deliver(i as i64, record(&format!("m{i}"), i % 40)).await },
                )
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let batches = recorder.batches.lock().unwrap();
        assert!(batches.len() >= 4, "{}", batches.len());
        // Every batch holds the senders of one lane only, so no contact is ever written by two
        // batches in flight at once.
        let mut used = std::collections::HashSet::new();
        for b in batches.iter() {
            let lanes: std::collections::HashSet<usize> = b.iter().map(|s| lane_of(s, 4)).collect();
            assert_eq!(lanes.len(), 1, "a batch mixes lanes: {b:?}");
            used.extend(lanes);
        }
        assert!(used.len() > 1, "senders spread over lanes");
    }
}
