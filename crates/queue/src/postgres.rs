//! The PostgreSQL job store, for several wa2crm instances sharing one queue.
//!
//! Claims lock due rows with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other's
//! claimed rows and never claim the same job twice. Commits are durable with PostgreSQL's default
//! `synchronous_commit = on`, and concurrent commits are grouped by its WAL writer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use wa2crm_core::MediaEvent;

use crate::{
    ClaimedRow, Clock, Enqueued, JobId, QueueError, Result, event_json, lease_ms, sql_limit,
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
}

crate::jobs::impl_job_store!(
    PgJobStore,
    db = sqlx::Postgres,
    text = "::text",
    json = "::jsonb",
    bigint = "::bigint",
    merge = "checkpoints || jsonb_build_object($1::text, $2::jsonb)",
    lease_now = "COALESCE($1::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)",
);

/// PostgreSQL's strategies (see crates/queue/src/jobs.rs).
impl PgJobStore {
    /// One transaction; PostgreSQL's WAL writer groups concurrent commits by itself.
    async fn enqueue_jobs(&self, events: &[MediaEvent]) -> Result<Vec<Enqueued>> {
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
            .bind(e.message_id.clone())
            .bind(event_json(e)?)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            out.push(id.map_or(Enqueued::Duplicate, Enqueued::Inserted));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Instances claim side by side: `FOR UPDATE SKIP LOCKED` passes over rows another instance
    /// is claiming. Due jobs first, then jobs whose lease ran out: each statement is served by
    /// its own index, where one OR of both would sort the whole backlog.
    async fn claim_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>> {
        // Retries come due by the instances' clocks, which wrote them; leases run out by the
        // server's.
        let due_by = self.clock.now_ms();
        let limit = sql_limit(limit);
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
                .bind(owner.to_owned())
                .bind(lease_ms(lease))
                .bind(self.lease_clock())
                .bind(missing)
                .bind(due_by)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(got);
        }
        Ok(rows)
    }

    /// The time leases are judged by: `None` (the server's clock) with the real clock, the test
    /// clock's otherwise.
    fn lease_clock(&self) -> Option<i64> {
        (!self.clock.is_real_time()).then(|| self.clock.now_ms())
    }

    async fn fence_jobs(&self, ids: &[JobId]) -> Result<()> {
        sqlx::query("UPDATE jobs SET fenced_at = $1 WHERE fenced_at IS NULL AND id = ANY($2)")
            .bind(self.clock.now_ms())
            .bind(ids.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Those of `ids` whose row meets `condition`, whose `$1` (if it has one) is `value`.
    async fn ids_among(
        &self,
        ids: &[JobId],
        condition: &'static str,
        value: Option<Option<i64>>,
    ) -> Result<Vec<JobId>> {
        let list = if value.is_some() { "$2" } else { "$1" };
        let sql = format!("SELECT id FROM jobs WHERE {condition} AND id = ANY({list})");
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        if let Some(v) = value {
            q = q.bind(v);
        }
        Ok(q.bind(ids.to_vec()).fetch_all(&self.pool).await?)
    }

    async fn purge(&self) -> Result<()> {
        sqlx::query("VACUUM jobs").execute(&self.pool).await?;
        Ok(())
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
