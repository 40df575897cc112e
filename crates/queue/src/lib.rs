//! The durable queue between webhook intake and the media workers.
//!
//! Intake calls [`JobStore::enqueue`] and answers Meta only after it returns: by then the job is
//! committed to disk. Workers [`claim`](JobStore::claim) jobs under a lease, keep it alive with
//! [`heartbeat`](JobStore::heartbeat), record each finished step with
//! [`checkpoint`](JobStore::checkpoint) so a restart resumes where it stopped, and end a job with
//! [`complete`](JobStore::complete), [`fail`](JobStore::fail) (retry at a later time) or
//! [`dead_letter`](JobStore::dead_letter) (needs an admin). A lease that runs out makes the job
//! claimable again, which is how a crashed worker's or instance's work is taken over.
//!
//! Two implementations pass one test suite ([`testsuite`]): SQLite (the default, one instance) and
//! PostgreSQL (several instances; claims use `FOR UPDATE SKIP LOCKED`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Serialize;
use wa2crm_core::{MediaEvent, MediaKind};

mod jobs;
mod postgres;
mod sqlite;
mod state;
mod step;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use postgres::PgJobStore;
pub use sqlite::SqliteJobStore;
pub use step::{Checkpoint, Step};

pub type JobId = i64;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker, possibly not before `next_attempt_at` (a retry).
    Queued,
    /// Leased by a worker.
    Running,
    Done,
    /// Failed permanently; waits for an admin to fix the cause and replay it.
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Result<Self, QueueError> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            other => return Err(QueueError::Corrupt(format!("unknown job state {other:?}"))),
        })
    }
}

/// The answer to enqueueing one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job; the event had not been seen before.
    Inserted(JobId),
    /// A job with the same (source, message id) already exists; nothing was added.
    Duplicate,
}

/// A job leased to one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub event: MediaEvent,
    /// How many times the job has been claimed, this time included.
    pub attempts: u32,
    /// Results of the steps already done, by step name ([`Step::as_str`]; read with [`Step::of`]).
    pub checkpoints: BTreeMap<String, serde_json::Value>,
    /// Who holds the lease; every write back must name it.
    pub owner: String,
}

/// Everything stored about a job, for `status` and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobInfo {
    pub id: JobId,
    pub source: String,
    pub message_id: String,
    pub state: JobState,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub checkpoints: BTreeMap<String, serde_json::Value>,
    pub last_error: Option<String>,
    pub dead_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When its media was removed (retention or erasure).
    pub removed_at_ms: Option<i64>,
    pub event: MediaEvent,
}

/// Number of jobs in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub queued: u64,
    pub running: u64,
    pub done: u64,
    pub dead: u64,
    /// Of `queued`, those waiting for a retry (claimed at least once before).
    pub retrying: u64,
    /// When the oldest job not yet finished (queued or running) arrived, ms since the epoch: how
    /// far behind the pipeline is.
    pub oldest_waiting_ms: Option<i64>,
}

impl StateCounts {
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Queued => self.queued,
            JobState::Running => self.running,
            JobState::Done => self.done,
            JobState::Dead => self.dead,
        }
    }
}

/// Of the done jobs, those that ended without their media: for `status` (a full scan, so not
/// for metrics scrapes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DoneBreakdown {
    /// Skipped before anything was fetched: the sender had not consented.
    pub not_taken: u64,
    /// Their media removed since, by retention or erasure.
    pub removed: u64,
}

/// A dead-lettered job, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: JobId,
    pub source: String,
    pub message_id: String,
    pub reason: String,
    pub attempts: u32,
    pub dead_since_ms: i64,
}

/// Which media jobs the console lists: every field narrows the list; the newest come first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaFilter {
    /// The sender, +E164.
    pub sender: Option<String>,
    pub kind: Option<MediaKind>,
    /// A tag the media was given (exact).
    pub tag: Option<String>,
    /// Arrived at or after / before these times (ms since the epoch).
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only ids below this one: the next page.
    pub before_id: Option<JobId>,
}

/// Which dead letters the console lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Dead for this connector: its reason starts with `NAME: ` (how delivery names them).
    pub connector: Option<String>,
    /// Text the reason contains (case-insensitive for ASCII).
    pub reason: Option<String>,
}

/// One replay or erasure: who did it, when, to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// The console user, or `cli:USER` for a command.
    pub who: String,
    /// `replay`, `replay_all` or `erase`.
    pub action: String,
    /// A job id, or a masked phone number (`+49151…789`): the log outlives an erasure, and the
    /// number itself must not.
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lease ran out and someone else may hold the job now: the caller must stop working on it.
    #[error("job {0}: lease lost (expired and possibly taken over by another worker)")]
    LeaseLost(JobId),
    #[error("queue database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("queue migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("queue data is corrupt: {0}")]
    Corrupt(String),
    /// `url` is always redacted ([`redact_url`]) by whoever makes this error.
    #[error("queue url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("queue writer stopped")]
    WriterGone,
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// The durable job queue. All times come from the store's [`Clock`].
#[async_trait]
pub trait JobStore: wa2crm_core::StateStore + Send + Sync {
    /// Adds one job per event not seen before, in one transaction, and returns only once that
    /// transaction is durable. Atomic under concurrency: of many callers racing with the same
    /// (source, message id), exactly one gets `Inserted`.
    async fn enqueue(&self, events: &[MediaEvent]) -> Result<Vec<Enqueued>>;
    /// Leases up to `limit` due jobs (queued and due, or running with an expired lease) to `owner`.
    async fn claim(&self, owner: &str, lease: Duration, limit: usize) -> Result<Vec<Job>>;
    /// Extends the lease; `LeaseLost` when `owner` no longer holds it.
    async fn heartbeat(&self, id: JobId, owner: &str, lease: Duration) -> Result<()>;
    /// Records one step's result on the job, replacing an earlier result of the same step, with
    /// the facts the queue keeps in columns of their own.
    async fn checkpoint(&self, id: JobId, owner: &str, checkpoint: Checkpoint<'_>) -> Result<()>;
    async fn complete(&self, id: JobId, owner: &str) -> Result<()>;
    /// Gives the job back for a retry not before `retry_at_ms`, remembering the error.
    async fn fail(&self, id: JobId, owner: &str, error: &str, retry_at_ms: i64) -> Result<()>;
    /// Parks the job until an admin replays it.
    async fn dead_letter(&self, id: JobId, owner: &str, reason: &str) -> Result<()>;
    /// Puts a dead job back in the queue (attempts reset, checkpoints kept); false if not dead.
    async fn replay(&self, id: JobId) -> Result<bool>;
    /// Replays every dead job; returns how many.
    async fn replay_all_dead(&self) -> Result<u64>;
    async fn counts(&self) -> Result<StateCounts>;
    /// The newest dead letters first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>>;
    async fn get(&self, id: JobId) -> Result<Option<JobInfo>>;
    async fn find(&self, source: &str, message_id: &str) -> Result<Option<JobInfo>>;
    /// Every job of one sender (+E164), in any state, oldest first: what erasure goes through.
    async fn jobs_of_sender(&self, sender: &str) -> Result<Vec<JobInfo>>;
    /// Up to `limit` jobs with an id above `after`, in id order: what is new since a look.
    /// (Ids have gaps: a refused duplicate may use one up.)
    async fn jobs_after(&self, after: JobId, limit: usize) -> Result<Vec<JobInfo>>;
    /// Done jobs of `kind` that arrived before `before_ms` and whose media has not been removed,
    /// with ids above `after_id`, oldest first, at most `limit`: what retention pages through.
    async fn unremoved_before(
        &self,
        kind: MediaKind,
        before_ms: i64,
        after_id: JobId,
        limit: usize,
    ) -> Result<Vec<JobInfo>>;
    /// Jobs whose media is the stored object `key` and has not been removed: who still needs it.
    async fn holders_of(&self, key: &str) -> Result<Vec<JobId>>;
    /// Records that the job's media was removed: its event and checkpoints are replaced by
    /// `event` and `checkpoints` (what is left once personal data is gone), the job ends as done
    /// and any lease on it is void (a worker still on it loses it at its next write). The key
    /// stays, so the message is never taken in again.
    async fn mark_removed(
        &self,
        id: JobId,
        event: &MediaEvent,
        checkpoints: &BTreeMap<String, serde_json::Value>,
    ) -> Result<()>;
    /// Erasure's fence: from now on no worker takes these jobs, and a worker still on one stops
    /// before its next write to the storage or a CRM (it asks [`JobStore::fenced`]) and gives
    /// the lease back ([`JobStore::release`]). Checkpoints still land, so erasure learns of a
    /// write that was under way.
    async fn fence(&self, ids: &[JobId]) -> Result<()>;
    /// Which of `ids` are fenced.
    async fn fenced(&self, ids: &[JobId]) -> Result<Vec<JobId>>;
    /// Which of `ids` a worker still holds: a lease that has not run out.
    async fn held(&self, ids: &[JobId]) -> Result<Vec<JobId>>;
    /// A worker gives up a fenced job it holds: it has stopped working on it.
    async fn release(&self, id: JobId, owner: &str) -> Result<()>;
    /// Dead-letters the running jobs whose lease ran out after `max_attempts` claims — the process
    /// holding each died every time (a crash, or killed for memory) — with `reason`; returns how
    /// many. Without it such a job would be claimed again and again.
    async fn bury_abandoned(&self, max_attempts: u32, reason: &str) -> Result<u64>;
    /// Removes from disk what rows rewritten by [`JobStore::mark_removed`] left behind, so an
    /// erased person's data is not recoverable from the database files: SQLite (which zeroes
    /// freed space as it goes, `secure_delete`) copies its WAL back and truncates it; PostgreSQL
    /// vacuums the jobs table.
    async fn purge_removed(&self) -> Result<()>;
    /// How many done jobs were not taken, and how many had their media removed.
    async fn done_breakdown(&self) -> Result<DoneBreakdown>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Media jobs (any state) that `filter` lets through, newest first, at most `limit`.
    async fn media_jobs(&self, filter: &MediaFilter, limit: usize) -> Result<Vec<JobInfo>>;
    /// Dead letters that `filter` lets through, newest first, at most `limit`.
    async fn dead_letters_where(
        &self,
        filter: &DeadFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;
    /// Replays the dead jobs `filter` lets through; returns their ids.
    async fn replay_dead_where(&self, filter: &DeadFilter) -> Result<Vec<JobId>>;
    /// (arrived, finished) of the jobs done since `since_ms` whose media was taken (consent did
    /// not turn it away) and not removed since, ms since the epoch: throughput and latency over
    /// a window.
    async fn finished_since(&self, since_ms: i64) -> Result<Vec<(i64, i64)>>;
    /// Appends to the audit log (kept in this database, with the jobs it speaks of).
    async fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The newest audit entries, of one subject if given, at most `limit`.
    async fn audit_log(&self, subject: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// Where the store's "now" comes from; tests use [`ManualClock`] to move time without sleeping.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    /// Whether this is the real time, which a database server can supply instead: PostgreSQL
    /// then judges leases by its own clock, one clock for every instance sharing the queue.
    fn is_real_time(&self) -> bool {
        false
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn is_real_time(&self) -> bool {
        true
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Opens the store a `queue.url` names (`sqlite://…` or `postgres://…`), applying migrations.
pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn JobStore>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteJobStore::open(url, clock).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgJobStore::open(url, clock).await?))
    } else {
        Err(QueueError::BadUrl {
            url: redact_url(url),
            reason: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
        })
    }
}

/// A queue URL fit for logs, errors and terminals: the password of the user part and of a
/// `password=` query parameter replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Not a URL: it may still carry a password, and saying nothing of it is the safe side.
        return if url.contains('@') || url.to_ascii_lowercase().contains("password") {
            "(a queue URL that does not parse; not shown, it may hold a password)".into()
        } else {
            url.to_owned()
        };
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("password") {
                "***".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !pairs.is_empty() {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// `text` as a LIKE pattern matching itself literally (with `ESCAPE` backslash), between `before`
/// and `after` wildcards.
fn like_pattern(before: &str, text: &str, after: &str) -> String {
    let mut p = String::from(before);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str(after);
    p
}

/// A bound value of a query put together at run time.
enum Bound {
    Text(String),
    Int(i64),
}

/// Binds `values` in order (`$1`, `$2`, …).
fn bind_all<'q, DB, O>(
    mut q: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments>,
    values: Vec<Bound>,
) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for v in values {
        q = match v {
            Bound::Text(s) => q.bind(s),
            Bound::Int(i) => q.bind(i),
        };
    }
    q
}

/// The WHERE clause and its values for a [`DeadFilter`] (`$1`… numbered).
fn dead_condition(filter: &DeadFilter) -> (String, Vec<Bound>) {
    let mut sql = String::from("state = 'dead'");
    let mut values = Vec::new();
    if let Some(c) = &filter.connector {
        values.push(Bound::Text(like_pattern("", c, ": %")));
        sql.push_str(&format!(
            " AND dead_reason LIKE ${} ESCAPE '\\'",
            values.len()
        ));
    }
    if let Some(r) = &filter.reason {
        values.push(Bound::Text(like_pattern("%", &r.to_ascii_lowercase(), "%")));
        sql.push_str(&format!(
            " AND LOWER(dead_reason) LIKE ${} ESCAPE '\\'",
            values.len()
        ));
    }
    (sql, values)
}

/// The console's media list: the query of `columns` for a [`MediaFilter`], newest first, whose
/// last placeholder is the limit; and the values before it. `ids` is the span of ids the
/// filter's times fall in.
fn media_query(
    columns: &str,
    filter: &MediaFilter,
    ids: (Option<JobId>, Option<JobId>),
) -> (String, Vec<Bound>) {
    let (condition, values) = media_condition(filter, ids);
    let limit = values.len() + 1;
    let sql = if walks_tag_rows(filter) {
        // The tag's rows, newest first by their key, each joined to its job. CROSS JOIN keeps
        // SQLite from starting at the jobs instead (PostgreSQL plans by its statistics).
        format!(
            "SELECT {columns} FROM job_tags CROSS JOIN jobs WHERE jobs.id = job_tags.job_id \
             AND {condition} ORDER BY job_tags.job_id DESC LIMIT ${limit}"
        )
    } else {
        format!("SELECT {columns} FROM jobs WHERE {condition} ORDER BY id DESC LIMIT ${limit}")
    };
    (sql, values)
}

/// Whether a media list is walked along a tag's rows (`job_tags`) rather than the jobs. One
/// person's media are few, so with a sender the walk goes by the sender's index and each job's
/// tag is looked up by key; otherwise the tag's own rows are the shortest way.
fn walks_tag_rows(filter: &MediaFilter) -> bool {
    filter.tag.is_some() && filter.sender.is_none()
}

/// The WHERE clause and values for a [`MediaFilter`] (see [`media_query`]). A tag is matched
/// exactly, against the `job_tags` rows (one per tag of a job).
fn media_condition(
    filter: &MediaFilter,
    ids: (Option<JobId>, Option<JobId>),
) -> (String, Vec<Bound>) {
    let mut sql = String::from("removed_at IS NULL");
    let mut values = Vec::new();
    if let Some(s) = &filter.sender {
        values.push(Bound::Text(s.clone()));
        sql.push_str(&format!(" AND sender = ${}", values.len()));
    }
    if let Some(k) = filter.kind {
        values.push(Bound::Text(k.as_str().to_owned()));
        sql.push_str(&format!(" AND kind = ${}", values.len()));
    }
    if let Some(t) = &filter.tag {
        values.push(Bound::Text(t.clone()));
        let n = values.len();
        sql.push_str(&if walks_tag_rows(filter) {
            format!(" AND job_tags.tag = ${n}")
        } else {
            format!(
                " AND EXISTS (SELECT 1 FROM job_tags \
                 WHERE job_tags.tag = ${n} AND job_tags.job_id = jobs.id)"
            )
        });
    }
    for (bound, op) in [(filter.from_ms, ">="), (filter.until_ms, "<")] {
        if let Some(t) = bound {
            values.push(Bound::Int(t));
            sql.push_str(&format!(" AND created_at {op} ${}", values.len()));
        }
    }
    // The id the walk goes by: a tag's rows are walked by their key, so the span is set on it.
    let walked = match walks_tag_rows(filter) {
        true => "job_tags.job_id",
        false => "id",
    };
    if let Some(id) = filter.before_id {
        values.push(Bound::Int(id));
        sql.push_str(&format!(" AND {walked} < ${}", values.len()));
    }
    // The span of ids the times fall in, so the newest-first walk by id starts and stops there.
    for (bound, op) in [(ids.0, ">="), (ids.1, "<=")] {
        if let Some(id) = bound {
            values.push(Bound::Int(id));
            sql.push_str(&format!(" AND {walked} {op} ${}", values.len()));
        }
    }
    (sql, values)
}

/// How far apart in time ids may be handed out and their arrival written: concurrent enqueues
/// interleave for moments, never for this long.
const ARRIVAL_SLACK_MS: i64 = 60_000;

/// A `LIMIT` as SQL takes it.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn decode_event(json: &str) -> Result<MediaEvent> {
    serde_json::from_str(json).map_err(|e| QueueError::Corrupt(format!("stored event: {e}")))
}

fn decode_checkpoints(json: &str) -> Result<BTreeMap<String, serde_json::Value>> {
    serde_json::from_str(json).map_err(|e| QueueError::Corrupt(format!("stored checkpoints: {e}")))
}

/// The lease owner one claim writes: the worker and a token of this claim, so a worker that
/// takes back its own job after the lease ran out cannot pass the old lease's checks.
fn lease_token(owner: &str) -> String {
    format!("{owner}~{:016x}", fastrand::u64(..))
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A `jobs` row as both backends return it (PostgreSQL casts its JSONB columns to text).
#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    source: String,
    message_id: String,
    event: String,
    state: String,
    attempts: i32,
    next_attempt_at: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    checkpoints: String,
    last_error: Option<String>,
    dead_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    removed_at: Option<i64>,
}

impl TryFrom<JobRow> for JobInfo {
    type Error = QueueError;
    fn try_from(r: JobRow) -> Result<Self> {
        Ok(JobInfo {
            id: r.id,
            state: JobState::parse(&r.state)?,
            attempts: r.attempts.max(0) as u32,
            next_attempt_at_ms: r.next_attempt_at,
            lease_owner: r.lease_owner,
            lease_until_ms: r.lease_until,
            checkpoints: decode_checkpoints(&r.checkpoints)?,
            last_error: r.last_error,
            dead_reason: r.dead_reason,
            created_at_ms: r.created_at,
            updated_at_ms: r.updated_at,
            removed_at_ms: r.removed_at,
            event: decode_event(&r.event)?,
            source: r.source,
            message_id: r.message_id,
        })
    }
}

/// The columns a claim returns.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    event: String,
    attempts: i32,
    checkpoints: String,
}

impl ClaimedRow {
    fn into_job(self, owner: &str) -> Result<Job> {
        Ok(Job {
            id: self.id,
            event: decode_event(&self.event)?,
            attempts: self.attempts.max(0) as u32,
            checkpoints: decode_checkpoints(&self.checkpoints)?,
            owner: owner.to_owned(),
        })
    }
}

/// Claimed rows as jobs, oldest first.
fn into_jobs(rows: Vec<ClaimedRow>, owner: &str) -> Result<Vec<Job>> {
    let mut jobs = rows
        .into_iter()
        .map(|r| r.into_job(owner))
        .collect::<Result<Vec<_>>>()?;
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

#[derive(sqlx::FromRow)]
struct DeadRow {
    id: i64,
    source: String,
    message_id: String,
    dead_reason: Option<String>,
    attempts: i32,
    updated_at: i64,
}

impl From<DeadRow> for DeadLetter {
    fn from(r: DeadRow) -> Self {
        DeadLetter {
            id: r.id,
            source: r.source,
            message_id: r.message_id,
            reason: r.dead_reason.unwrap_or_default(),
            attempts: r.attempts.max(0) as u32,
            dead_since_ms: r.updated_at,
        }
    }
}

fn counts_from(rows: Vec<(String, i64, i64, Option<i64>)>) -> Result<StateCounts> {
    let mut c = StateCounts::default();
    for (state, n, retried, oldest) in rows {
        let n = n.max(0) as u64;
        let state = JobState::parse(&state)?;
        if matches!(state, JobState::Queued | JobState::Running)
            && let Some(t) = oldest
        {
            c.oldest_waiting_ms = Some(c.oldest_waiting_ms.map_or(t, |o| o.min(t)));
        }
        match state {
            JobState::Queued => {
                c.queued = n;
                c.retrying = retried.max(0) as u64;
            }
            JobState::Running => c.running = n,
            JobState::Done => c.done = n,
            JobState::Dead => c.dead = n,
        }
    }
    Ok(c)
}

fn expect_one(id: JobId, rows_affected: u64) -> Result<()> {
    if rows_affected == 1 {
        Ok(())
    } else {
        Err(QueueError::LeaseLost(id))
    }
}

fn checkpoints_json(c: &BTreeMap<String, serde_json::Value>) -> Result<String> {
    serde_json::to_string(c)
        .map_err(|err| QueueError::Corrupt(format!("checkpoints to JSON: {err}")))
}

fn event_json(e: &MediaEvent) -> Result<String> {
    serde_json::to_string(e).map_err(|err| QueueError::Corrupt(format!("event to JSON: {err}")))
}
