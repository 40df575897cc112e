//! The deliver step: the stored media goes to every connector routed for its number, each
//! through a [`Batcher`] that gathers the records of many jobs into one `deliver` call. What each
//! connector wrote is checkpointed, so a retry only goes to the connectors still missing.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wa2crm_core::state::keys;
use wa2crm_core::{Connector, Delivered, Error, MediaRecord, StateStore};
use wa2crm_queue::{Job, JobId, JobStore, Step};

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

/// Gathers records for one connector into batches, up to `concurrency` of them in flight. A
/// batch goes when it is full, or when its oldest record has waited the connector's linger and
/// the connector is not waiting on its rate limit: when it is, a partial batch keeps filling,
/// since sending it early would only spend calls. Batches in flight overlap, so the vendor's
/// latency does not leave the rate limit unused. A sender in a batch in flight is in no other
/// one: one contact is never written by two batches at once (which could move its
/// latest-media fields back in time).
#[derive(Clone)]
pub struct Batcher {
    items: mpsc::Sender<Item>,
}

impl Batcher {
    /// With the queue, each batch's jobs are checked against erasure's fence right before the
    /// call, and the outcome is recorded for `status` (last success, last error).
    pub fn spawn(connector: Arc<dyn Connector>, queue: Option<Arc<dyn JobStore>>) -> Self {
        let (items, rx) = mpsc::channel(connector.max_batch().max(1) * 4);
        tokio::spawn(dispatch(connector, queue, rx));
        Batcher { items }
    }

    pub async fn deliver(&self, job: JobId, record: MediaRecord) -> Result<Delivered, Error> {
        let (reply, answer) = oneshot::channel();
        self.items
            .send(Item { job, record, reply })
            .await
            .map_err(|_| Error::transient("the connector's batcher stopped"))?;
        answer
            .await
            .map_err(|_| Error::transient("the connector's batcher stopped"))?
    }
}

/// How often a lingered batch looks again whether the rate limit still holds it back.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

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

/// Records waiting for a batch, in arrival order, and the senders of the batches in flight.
struct Waiting {
    pending: VecDeque<(Instant, Item)>,
    busy: HashSet<String>,
}

impl Waiting {
    /// How many waiting records could join a batch now (their sender in none in flight), up
    /// to `max`, and when the oldest of them arrived.
    fn eligible(&self, max: usize) -> (usize, Option<Instant>) {
        let mut n = 0;
        let mut oldest = None;
        for (at, item) in &self.pending {
            if !self.busy.contains(item.record.sender.as_str()) {
                oldest.get_or_insert(*at);
                n += 1;
                if n == max {
                    break;
                }
            }
        }
        (n, oldest)
    }

    /// Takes up to `max` records whose sender is in no batch in flight, oldest first.
    fn take(&mut self, max: usize) -> Vec<Item> {
        let mut batch = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        while let Some((at, item)) = self.pending.pop_front() {
            if batch.len() < max && !self.busy.contains(item.record.sender.as_str()) {
                batch.push(item);
            } else {
                kept.push_back((at, item));
            }
        }
        self.pending = kept;
        for item in &batch {
            self.busy.insert(item.record.sender.as_str().to_owned());
        }
        batch
    }
}

async fn dispatch(
    connector: Arc<dyn Connector>,
    queue: Option<Arc<dyn JobStore>>,
    mut rx: mpsc::Receiver<Item>,
) {
    let max = connector.max_batch().max(1);
    let lanes = connector.concurrency().max(1);
    let linger = connector.linger();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<String>>();
    let mut w = Waiting {
        pending: VecDeque::new(),
        busy: HashSet::new(),
    };
    let mut in_flight = 0usize;
    let mut open = true;
    loop {
        // Send what may go.
        let mut wake = None;
        while in_flight < lanes {
            let (n, oldest) = w.eligible(max);
            let Some(oldest) = oldest else { break };
            let lingered = oldest + linger <= Instant::now();
            let go = n >= max || !open || (lingered && !connector.rate_bound());
            if !go {
                wake = Some(if lingered {
                    Instant::now() + RECHECK
                } else {
                    oldest + linger
                });
                break;
            }
            let batch = w.take(max);
            in_flight += 1;
            tokio::spawn(send(
                connector.clone(),
                queue.clone(),
                batch,
                done_tx.clone(),
            ));
        }
        if !open && w.pending.is_empty() && in_flight == 0 {
            return;
        }
        let wake = wake.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some(i) => {
                    w.pending.push_back((Instant::now(), i));
                    // Whatever else has arrived, at once: a scan per record would cost a
                    // quadratic time under a burst.
                    while let Ok(i) = rx.try_recv() {
                        w.pending.push_back((Instant::now(), i));
                    }
                }
                None => open = false,
            },
            Some(senders) = done_rx.recv() => {
                in_flight -= 1;
                for s in senders {
                    w.busy.remove(&s);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// One batch: the fenced jobs taken out, the call, each result to its job, the senders freed.
async fn send(
    connector: Arc<dyn Connector>,
    queue: Option<Arc<dyn JobStore>>,
    mut items: Vec<Item>,
    done: mpsc::UnboundedSender<Vec<String>>,
) {
    let senders: Vec<String> = items
        .iter()
        .map(|i| i.record.sender.as_str().to_owned())
        .collect();
    if let Some(queue) = &queue {
        items = without_fenced(queue.as_ref(), items).await;
    }
    if !items.is_empty() {
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
    let _ = done.send(senders);
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
    let mut done: DeliveredCheckpoint = checkpoint(job, Step::Deliver).unwrap_or_default();
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
        save(&p.jobs, job, Step::Deliver, &done).await?;
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

    /// Records the senders of every batch it is given; checks that no sender is in two batches
    /// in flight; with `bound`, says it is rate-bound while a batch is in flight.
    struct Recorder {
        batches: Mutex<Vec<Vec<String>>>,
        lanes: usize,
        bound: bool,
        flying: Mutex<std::collections::HashSet<String>>,
    }

    fn recorder(lanes: usize, bound: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
            lanes,
            bound,
            flying: Mutex::new(Default::default()),
        })
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
        fn rate_bound(&self) -> bool {
            self.bound && !self.flying.lock().unwrap().is_empty()
        }
        async fn check(&self) -> Result<CheckReport> {
            Ok(CheckReport::default())
        }
        async fn provision(&self, _: bool) -> Result<Plan> {
            Ok(Plan::default())
        }
        async fn deliver(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
            let senders: Vec<String> = batch.iter().map(|r| r.sender.to_string()).collect();
            {
                let mut flying = self.flying.lock().unwrap();
                for s in &senders {
                    assert!(!flying.contains(s), "{s} is in two batches in flight");
                }
                flying.extend(senders.iter().cloned());
            }
            self.batches.lock().unwrap().push(senders.clone());
            // A slow vendor: the next batch fills meanwhile.
            tokio::time::sleep(Duration::from_millis(300)).await;
            {
                let mut flying = self.flying.lock().unwrap();
                for s in &senders {
                    flying.remove(s);
                }
            }
            batch
                .iter()
                .map(|r| {
                    if r.message_id.ends_with("bad") {
                        Err(Error::permanent("refused"))
                    } else {
                        Ok(Delivered::new(r.message_id.clone(), true))
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
        let recorder = recorder(1, false);
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
        let recorder = recorder(1, false);
        let batcher = Batcher::spawn(recorder.clone(), None);
        let start = tokio::time::Instant::now();
        batcher.deliver(1, record("m", 1)).await.unwrap();
        // 200 ms of linger, 300 ms of the vendor.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn batches_overlap_but_a_sender_is_never_in_two_at_once() {
        let recorder = recorder(4, false);
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
        // The recorder panics (failing the deliveries above) if a sender were in two batches
        // in flight; with 40 senders a batch holds all of them, so the batches go one by one.
        let batches = recorder.batches.lock().unwrap();
        assert_eq!(batches.len(), 4);
        assert!(batches.iter().all(|b| b.len() == 100));
    }

    /// Records trickle in, as jobs finish their media steps: 6 every 20 ms, 300 in all, from 150
    /// senders (no sender twice in a batch in flight); returns when all are delivered.
    async fn trickle(batcher: &Batcher) {
        let mut tasks = Vec::new();
        for i in 0..300usize {
            if i % 6 == 0 && i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                b.deliver(i as i64, record(&format!("m{i}"), (i % 150) as u32))
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }

    /// While the connector waits on its rate limit, a partial batch keeps filling instead of
    /// spending calls on a few records.
    #[tokio::test(start_paused = true)]
    async fn a_rate_bound_connector_gets_full_batches() {
        let bound = recorder(4, true);
        let batcher = Batcher::spawn(bound.clone(), None);
        trickle(&batcher).await;
        let sizes: Vec<usize> = bound.batches.lock().unwrap().iter().map(Vec::len).collect();
        // The first batch goes after its linger (nothing in flight yet); the others wait while
        // it is in flight and go full, or when the calls are done.
        assert!(sizes.len() <= 4, "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 300);
        let unbound = recorder(4, false);
        let batcher = Batcher::spawn(unbound.clone(), None);
        trickle(&batcher).await;
        assert!(
            unbound.batches.lock().unwrap().len() > sizes.len(),
            "without the rate limit, batches go at their linger"
        );
    }
}
