//! The PostgreSQL job store, for several wa2crm instances sharing one queue.
//!
//! Claims lock due rows with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other's
//! claimed rows and never claim the same job twice. Commits are durable with PostgreSQL's default
//! `synchronous_commit = on`, and concurrent commits are grouped by its WAL writer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wa2crm_core::MediaEvent;

use crate::{
    ClaimedRow, Clock, DeadLetter, DeadRow, Enqueued, Job, JobId, JobInfo, JobRow, JobStore,
    QueueError, Result, StateCounts, check_step, checkpoints_json, counts_from, event_json,
    expect_one, into_jobs, lease_ms, lease_token,
};

/// The database server's time in milliseconds, or the test clock's when one is bound (`$n` is
/// NULL with the real clock): every instance judges leases by the server's one clock.
macro_rules! lease_now {
    ($n:literal) => {
        concat!(
            "COALESCE(",
            $n,
            "::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)"
        )
    };
}

const COLUMNS: &str = "id, source, message_id, event::text AS event, state, attempts, \
    next_attempt_at, lease_owner, lease_until, checkpoints::text AS checkpoints, last_error, \
    dead_reason, created_at, updated_at, removed_at";

pub struct PgJobStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

impl PgJobStore {
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| QueueError::BadUrl {
            url: crate::redact_url(url),
            reason: e.to_string(),
        })?;
        Self::open_with(options, clock).await
    }

    /// Opens with explicit options (tests use them to give every test its own schema).
    pub async fn open_with(options: PgConnectOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgJobStore { pool, clock })
    }

    async fn finish(
        &self,
        id: JobId,
        owner: &str,
        sql: &'static str,
        text: Option<&str>,
        at: Option<i64>,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let mut q = sqlx::query(sql);
        if let Some(t) = text {
            q = q.bind(t);
        }
        if let Some(at) = at {
            q = q.bind(at);
        }
        let r = q.bind(now).bind(id).bind(owner).execute(&self.pool).await?;
        expect_one(id, r.rows_affected())
    }
}

#[async_trait]
impl JobStore for PgJobStore {
    async fn enqueue(&self, events: &[MediaEvent]) -> Result<Vec<Enqueued>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO jobs (source, message_id, event, state, attempts, next_attempt_at, \
                 checkpoints, created_at, updated_at) \
                 VALUES ($1, $2, $3::jsonb, 'queued', 0, $4, '{}'::jsonb, $4, $4) \
                 ON CONFLICT (source, message_id) DO NOTHING RETURNING id",
            )
            .bind(e.source.as_str())
            .bind(&e.message_id)
            .bind(event_json(e)?)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            out.push(id.map_or(Enqueued::Duplicate, Enqueued::Inserted));
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn claim(&self, owner: &str, lease: Duration, limit: usize) -> Result<Vec<Job>> {
        let owner = &lease_token(owner);
        // Retries come due by the instances' clocks, which wrote them; leases run out by the
        // server's.
        let due_by = self.clock.now_ms();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Due jobs first, then jobs whose lease ran out: each statement is served by its own
        // index, where one OR of both would sort the whole backlog.
        let mut rows: Vec<ClaimedRow> = Vec::new();
        for sql in [
            concat!(
                "WITH t AS (SELECT ",
                lease_now!("$3"),
                " AS now), due AS (SELECT id FROM jobs WHERE state = 'queued' \
                 AND next_attempt_at <= $5 AND fenced_at IS NULL \
                 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE OF jobs SKIP LOCKED) \
                 UPDATE jobs j SET state = 'running', lease_owner = $1, lease_until = t.now + $2, \
                    attempts = j.attempts + 1, updated_at = t.now \
                 FROM due, t WHERE j.id = due.id \
                 RETURNING j.id, j.event::text AS event, j.attempts, j.checkpoints::text AS checkpoints"
            ),
            // ($5 is bound to both statements; this one has no use for it.)
            concat!(
                "WITH t AS (SELECT ",
                lease_now!("$3"),
                " AS now), due AS (SELECT id FROM jobs, t WHERE state = 'running' \
                 AND lease_until < t.now AND $5::bigint IS NOT NULL AND fenced_at IS NULL \
                 ORDER BY lease_until LIMIT $4 FOR UPDATE OF jobs SKIP LOCKED) \
                 UPDATE jobs j SET state = 'running', lease_owner = $1, lease_until = t.now + $2, \
                    attempts = j.attempts + 1, updated_at = t.now \
                 FROM due, t WHERE j.id = due.id \
                 RETURNING j.id, j.event::text AS event, j.attempts, j.checkpoints::text AS checkpoints"
            ),
        ] {
            let missing = limit - rows.len() as i64;
            if missing <= 0 {
                break;
            }
            let got: Vec<ClaimedRow> = sqlx::query_as(sql)
                .bind(owner)
                .bind(lease_ms(lease))
                .bind(self.lease_clock())
                .bind(missing)
                .bind(due_by)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(got);
        }
        into_jobs(rows, owner)
    }

    async fn heartbeat(&self, id: JobId, owner: &str, lease: Duration) -> Result<()> {
        let r = sqlx::query(concat!(
            "UPDATE jobs SET lease_until = ",
            lease_now!("$1"),
            " + $2, updated_at = ",
            lease_now!("$1"),
            " WHERE id = $3 AND state = 'running' AND lease_owner = $4"
        ))
        .bind(self.lease_clock())
        .bind(lease_ms(lease))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        expect_one(id, r.rows_affected())
    }

    async fn checkpoint(
        &self,
        id: JobId,
        owner: &str,
        step: &str,
        data: &serde_json::Value,
    ) -> Result<()> {
        check_step(step)?;
        let now = self.clock.now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET checkpoints = checkpoints || jsonb_build_object($1::text, $2::jsonb), \
             updated_at = $3 WHERE id = $4 AND state = 'running' AND lease_owner = $5",
        )
        .bind(step)
        .bind(data.to_string())
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        expect_one(id, r.rows_affected())
    }

    async fn complete(&self, id: JobId, owner: &str) -> Result<()> {
        self.finish(
            id,
            owner,
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, \
             last_error = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'running' AND lease_owner = $3",
            None,
            None,
        )
        .await
    }

    async fn fail(&self, id: JobId, owner: &str, error: &str, retry_at_ms: i64) -> Result<()> {
        self.finish(
            id,
            owner,
            "UPDATE jobs SET state = 'queued', last_error = $1, next_attempt_at = $2, \
             lease_owner = NULL, lease_until = NULL, updated_at = $3 \
             WHERE id = $4 AND state = 'running' AND lease_owner = $5",
            Some(error),
            Some(retry_at_ms),
        )
        .await
    }

    async fn dead_letter(&self, id: JobId, owner: &str, reason: &str) -> Result<()> {
        self.finish(
            id,
            owner,
            "UPDATE jobs SET state = 'dead', dead_reason = $1, last_error = $1, \
             lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND state = 'running' AND lease_owner = $4",
            Some(reason),
            None,
        )
        .await
    }

    async fn replay(&self, id: JobId) -> Result<bool> {
        let now = self.clock.now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = $1, \
             dead_reason = NULL, updated_at = $1 WHERE id = $2 AND state = 'dead'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn replay_all_dead(&self) -> Result<u64> {
        let now = self.clock.now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = $1, \
             dead_reason = NULL, updated_at = $1 WHERE state = 'dead'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT state, COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0)::bigint, \
             MIN(created_at) FROM jobs GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        counts_from(rows)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let rows: Vec<DeadRow> = sqlx::query_as(
            "SELECT id, source, message_id, dead_reason, attempts, updated_at FROM jobs \
             WHERE state = 'dead' ORDER BY updated_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
        let row: Option<JobRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn find(&self, source: &str, message_id: &str) -> Result<Option<JobInfo>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE source = $1 AND message_id = $2"
        ));
        let row: Option<JobRow> = sqlx::query_as(sql)
            .bind(source)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn jobs_after(&self, after: JobId, limit: usize) -> Result<Vec<JobInfo>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE id > $1 ORDER BY id LIMIT $2"
        ));
        let rows: Vec<JobRow> = sqlx::query_as(sql)
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn jobs_of_sender(&self, sender: &str) -> Result<Vec<JobInfo>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE sender = $1 ORDER BY id"
        ));
        let rows: Vec<JobRow> = sqlx::query_as(sql)
            .bind(sender)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn unremoved_before(
        &self,
        kind: wa2crm_core::MediaKind,
        before_ms: i64,
        after_id: JobId,
        limit: usize,
    ) -> Result<Vec<JobInfo>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND state = 'done' \
             AND removed_at IS NULL AND created_at < $2 AND id > $3 ORDER BY id LIMIT $4"
        ));
        let rows: Vec<JobRow> = sqlx::query_as(sql)
            .bind(kind.as_str())
            .bind(before_ms)
            .bind(after_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn done_breakdown(&self) -> Result<crate::DoneBreakdown> {
        let (not_taken, removed): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN checkpoints -> 'consent' ->> 'given' = 'false' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN removed_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
             FROM jobs WHERE state = 'done'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::DoneBreakdown {
            not_taken: not_taken.max(0) as u64,
            removed: removed.max(0) as u64,
        })
    }

    async fn holders_of(&self, key: &str) -> Result<Vec<JobId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM jobs WHERE media_key = $1 AND removed_at IS NULL ORDER BY id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn mark_removed(
        &self,
        id: JobId,
        event: &MediaEvent,
        checkpoints: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        sqlx::query(
            "UPDATE jobs SET event = $1::jsonb, checkpoints = $2::jsonb, state = 'done', \
             lease_owner = NULL, lease_until = NULL, last_error = NULL, dead_reason = NULL, \
             removed_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(event_json(event)?)
        .bind(checkpoints_json(checkpoints)?)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fence(&self, ids: &[JobId]) -> Result<()> {
        sqlx::query("UPDATE jobs SET fenced_at = $1 WHERE fenced_at IS NULL AND id = ANY($2)")
            .bind(self.clock.now_ms())
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn fenced(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM jobs WHERE fenced_at IS NOT NULL AND id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn held(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(concat!(
            "SELECT id FROM jobs WHERE lease_owner IS NOT NULL AND lease_until > ",
            lease_now!("$1"),
            " AND id = ANY($2)"
        ))
        .bind(self.lease_clock())
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn release(&self, id: JobId, owner: &str) -> Result<()> {
        self.finish(
            id,
            owner,
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND fenced_at IS NOT NULL",
            None,
            None,
        )
        .await
    }

    async fn bury_abandoned(&self, max_attempts: u32, reason: &str) -> Result<u64> {
        let r = sqlx::query(concat!(
            "UPDATE jobs SET state = 'dead', dead_reason = $1, last_error = $1, \
             lease_owner = NULL, lease_until = NULL, updated_at = ",
            lease_now!("$2"),
            " WHERE state = 'running' AND lease_until < ",
            lease_now!("$2"),
            " AND attempts >= $3 AND fenced_at IS NULL"
        ))
        .bind(reason)
        .bind(self.lease_clock())
        .bind(i64::from(max_attempts))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn purge_removed(&self) -> Result<()> {
        sqlx::query("VACUUM jobs").execute(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl PgJobStore {
    /// The time leases are judged by: `None` (the server's clock) with the real clock, the test
    /// clock's otherwise.
    fn lease_clock(&self) -> Option<i64> {
        (!self.clock.is_real_time()).then(|| self.clock.now_ms())
    }
}

crate::state::impl_state_store!(PgJobStore, "GREATEST");

/// A session-level advisory lock on a connection of its own. Dropping it closes that connection,
/// which ends the session and with it the lock, whatever state the runtime is in: a pooled
/// connection returned while still holding the lock would keep it forever.
struct AdvisoryLock(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

impl PgJobStore {
    /// Every instance on this database waits here; the key includes the schema, so separate
    /// deployments (or tests) on one server do not block each other.
    async fn state_lock(
        &self,
        scope: &str,
        name: &str,
    ) -> wa2crm_core::Result<wa2crm_core::StateLock> {
        let mut conn = self.pool.acquire().await.map_err(crate::state::to_core)?;
        sqlx::query("SELECT pg_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))")
            .bind(format!("{scope}/{name}"))
            .execute(&mut *conn)
            .await
            .map_err(crate::state::to_core)?;
        Ok(wa2crm_core::StateLock::new(AdvisoryLock(Some(conn))))
    }
}
