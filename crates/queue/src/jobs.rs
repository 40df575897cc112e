//! The one `JobStore` implementation: its SQL is written once, with `$n` placeholders (both
//! databases take them), over a small dialect:
//!
//! - `text`: how a JSON column is read as text (`::text` for PostgreSQL's JSONB);
//! - `json`: how a bound text becomes JSON (`::jsonb`);
//! - `bigint`: how a sum is read as a 64-bit integer (PostgreSQL sums integers as numeric);
//! - `merge`: how one step's result (`$1` its name, `$2` its JSON) joins the checkpoints;
//! - `lease_now`: the time leases are judged by, from `$1` (the store's `lease_clock()`):
//!   SQLite's one process's clock, PostgreSQL's server clock, so every instance uses the same.
//!
//! Where the databases really differ, each store has its own strategy, called from here:
//! `enqueue_jobs` (SQLite group-commits concurrent webhooks, PostgreSQL inserts in one
//! transaction), `claim_jobs` (PostgreSQL's `FOR UPDATE SKIP LOCKED`), `ids_among` (lists of ids:
//! `= ANY($n)` or chunks of `IN (…)`), `purge`, and the state store's `state_lock`.

/// Implements `JobStore` for a store with `pool`, `clock` and the strategies named above, on the
/// sqlx database `db`.
macro_rules! impl_job_store {
    (
        $store:ty,
        db = $db:ty,
        text = $text:literal,
        json = $json:literal,
        bigint = $bigint:literal,
        merge = $merge:literal,
        lease_now = $now:literal $(,)?
    ) => {
        impl $store {
            const COLUMNS: &'static str = concat!(
                "id, source, message_id, event",
                $text,
                " AS event, state, attempts, next_attempt_at, lease_owner, lease_until, checkpoints",
                $text,
                " AS checkpoints, last_error, dead_reason, created_at, updated_at, removed_at"
            );

            /// Runs a write that must touch exactly the one job `owner` holds.
            async fn owned_write(
                &self,
                id: crate::JobId,
                query: sqlx::query::Query<
                    'static,
                    $db,
                    <$db as sqlx::Database>::Arguments,
                >,
            ) -> crate::Result<()> {
                let r = query.execute(&self.pool).await?;
                crate::expect_one(id, r.rows_affected())
            }

            async fn select_jobs(
                &self,
                condition: &str,
                bind: impl FnOnce(
                    sqlx::query::QueryAs<
                        '_,
                        $db,
                        crate::JobRow,
                        <$db as sqlx::Database>::Arguments,
                    >,
                ) -> sqlx::query::QueryAs<
                    '_,
                    $db,
                    crate::JobRow,
                    <$db as sqlx::Database>::Arguments,
                >,
            ) -> crate::Result<Vec<crate::JobInfo>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM jobs WHERE {condition}",
                    Self::COLUMNS
                ));
                let rows: Vec<crate::JobRow> =
                    bind(sqlx::query_as(sql)).fetch_all(&self.pool).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }
        }

        #[async_trait::async_trait]
        impl crate::JobStore for $store {
            async fn enqueue(
                &self,
                events: &[wa2crm_core::MediaEvent],
            ) -> crate::Result<Vec<crate::Enqueued>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                self.enqueue_jobs(events).await
            }

            async fn claim(
                &self,
                owner: &str,
                lease: std::time::Duration,
                limit: usize,
            ) -> crate::Result<Vec<crate::Job>> {
                let owner = crate::lease_token(owner);
                let rows = self.claim_jobs(&owner, lease, limit).await?;
                crate::into_jobs(rows, &owner)
            }

            async fn heartbeat(
                &self,
                id: crate::JobId,
                owner: &str,
                lease: std::time::Duration,
            ) -> crate::Result<()> {
                self.owned_write(
                    id,
                    sqlx::query(concat!(
                        "UPDATE jobs SET lease_until = ",
                        $now,
                        " + $2, updated_at = ",
                        $now,
                        " WHERE id = $3 AND state = 'running' AND lease_owner = $4"
                    ))
                    .bind(self.lease_clock())
                    .bind(crate::lease_ms(lease))
                    .bind(id)
                    .bind(owner.to_owned()),
                )
                .await
            }

            async fn checkpoint(
                &self,
                id: crate::JobId,
                owner: &str,
                checkpoint: crate::Checkpoint<'_>,
            ) -> crate::Result<()> {
                let update = sqlx::query(concat!(
                    "UPDATE jobs SET checkpoints = ",
                    $merge,
                    ", media_key = COALESCE($3, media_key), \
                     consent_refused = COALESCE($4, consent_refused), updated_at = $5 \
                     WHERE id = $6 AND state = 'running' AND lease_owner = $7"
                ))
                .bind(checkpoint.step.as_str())
                .bind(checkpoint.data.to_string())
                .bind(checkpoint.media_key.map(str::to_owned))
                .bind(checkpoint.consent_refused)
                .bind(self.clock.now_ms())
                .bind(id)
                .bind(owner.to_owned());
                let Some(tags) = checkpoint.tags() else {
                    return self.owned_write(id, update).await;
                };
                // The tags' rows go in with the checkpoint or not at all, so the tag filter finds
                // exactly the jobs whose checkpoint holds the tag.
                let mut tx = self.pool.begin().await?;
                crate::expect_one(id, update.execute(&mut *tx).await?.rows_affected())?;
                sqlx::query("DELETE FROM job_tags WHERE job_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for tag in tags {
                    sqlx::query("INSERT INTO job_tags (tag, job_id) VALUES ($1, $2)")
                        .bind(tag.to_owned())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn complete(&self, id: crate::JobId, owner: &str) -> crate::Result<()> {
                self.owned_write(
                    id,
                    sqlx::query(
                        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, \
                         last_error = NULL, updated_at = $1 \
                         WHERE id = $2 AND state = 'running' AND lease_owner = $3",
                    )
                    .bind(self.clock.now_ms())
                    .bind(id)
                    .bind(owner.to_owned()),
                )
                .await
            }

            async fn fail(
                &self,
                id: crate::JobId,
                owner: &str,
                error: &str,
                retry_at_ms: i64,
            ) -> crate::Result<()> {
                self.owned_write(
                    id,
                    sqlx::query(
                        "UPDATE jobs SET state = 'queued', last_error = $1, next_attempt_at = $2, \
                         lease_owner = NULL, lease_until = NULL, updated_at = $3 \
                         WHERE id = $4 AND state = 'running' AND lease_owner = $5",
                    )
                    .bind(error.to_owned())
                    .bind(retry_at_ms)
                    .bind(self.clock.now_ms())
                    .bind(id)
                    .bind(owner.to_owned()),
                )
                .await
            }

            async fn dead_letter(
                &self,
                id: crate::JobId,
                owner: &str,
                reason: &str,
            ) -> crate::Result<()> {
                self.owned_write(
                    id,
                    sqlx::query(
                        "UPDATE jobs SET state = 'dead', dead_reason = $1, last_error = $1, \
                         lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                         WHERE id = $3 AND state = 'running' AND lease_owner = $4",
                    )
                    .bind(reason.to_owned())
                    .bind(self.clock.now_ms())
                    .bind(id)
                    .bind(owner.to_owned()),
                )
                .await
            }

            async fn replay(&self, id: crate::JobId) -> crate::Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = $1, \
                     dead_reason = NULL, updated_at = $1 WHERE id = $2 AND state = 'dead'",
                )
                .bind(self.clock.now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn replay_all_dead(&self) -> crate::Result<u64> {
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = $1, \
                     dead_reason = NULL, updated_at = $1 WHERE state = 'dead'",
                )
                .bind(self.clock.now_ms())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }

            async fn counts(&self) -> crate::Result<crate::StateCounts> {
                let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(concat!(
                    "SELECT state, COUNT(*), \
                     COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0)",
                    $bigint,
                    ", MIN(created_at) FROM jobs GROUP BY state"
                ))
                .fetch_all(&self.pool)
                .await?;
                crate::counts_from(rows)
            }

            async fn dead_letters(&self, limit: usize) -> crate::Result<Vec<crate::DeadLetter>> {
                let rows: Vec<crate::DeadRow> = sqlx::query_as(
                    "SELECT id, source, message_id, dead_reason, attempts, updated_at FROM jobs \
                     WHERE state = 'dead' ORDER BY updated_at DESC, id DESC LIMIT $1",
                )
                .bind(crate::sql_limit(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn get(&self, id: crate::JobId) -> crate::Result<Option<crate::JobInfo>> {
                Ok(self
                    .select_jobs("id = $1", |q| q.bind(id))
                    .await?
                    .pop())
            }

            async fn find(
                &self,
                source: &str,
                message_id: &str,
            ) -> crate::Result<Option<crate::JobInfo>> {
                let (source, message_id) = (source.to_owned(), message_id.to_owned());
                Ok(self
                    .select_jobs("source = $1 AND message_id = $2", |q| {
                        q.bind(source).bind(message_id)
                    })
                    .await?
                    .pop())
            }

            async fn jobs_after(
                &self,
                after: crate::JobId,
                limit: usize,
            ) -> crate::Result<Vec<crate::JobInfo>> {
                self.select_jobs("id > $1 ORDER BY id LIMIT $2", |q| {
                    q.bind(after).bind(crate::sql_limit(limit))
                })
                .await
            }

            async fn jobs_of_sender(&self, sender: &str) -> crate::Result<Vec<crate::JobInfo>> {
                let sender = sender.to_owned();
                self.select_jobs("sender = $1 ORDER BY id", |q| q.bind(sender))
                    .await
            }

            async fn unremoved_before(
                &self,
                kind: wa2crm_core::MediaKind,
                before_ms: i64,
                after_id: crate::JobId,
                limit: usize,
            ) -> crate::Result<Vec<crate::JobInfo>> {
                self.select_jobs(
                    "kind = $1 AND state = 'done' AND removed_at IS NULL AND created_at < $2 \
                     AND id > $3 ORDER BY id LIMIT $4",
                    |q| {
                        q.bind(kind.as_str())
                            .bind(before_ms)
                            .bind(after_id)
                            .bind(crate::sql_limit(limit))
                    },
                )
                .await
            }

            async fn holders_of(&self, key: &str) -> crate::Result<Vec<crate::JobId>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM jobs WHERE media_key = $1 AND removed_at IS NULL ORDER BY id",
                )
                .bind(key.to_owned())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn mark_removed(
                &self,
                id: crate::JobId,
                event: &wa2crm_core::MediaEvent,
                checkpoints: &std::collections::BTreeMap<String, serde_json::Value>,
            ) -> crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(concat!(
                    "UPDATE jobs SET event = $1",
                    $json,
                    ", checkpoints = $2",
                    $json,
                    ", state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, \
                     dead_reason = NULL, removed_at = $3, updated_at = $3 WHERE id = $4"
                ))
                .bind(crate::event_json(event)?)
                .bind(crate::checkpoints_json(checkpoints)?)
                .bind(self.clock.now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                // Removed media is listed nowhere: its tags go with it.
                sqlx::query("DELETE FROM job_tags WHERE job_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn fence(&self, ids: &[crate::JobId]) -> crate::Result<()> {
                self.fence_jobs(ids).await
            }

            async fn fenced(&self, ids: &[crate::JobId]) -> crate::Result<Vec<crate::JobId>> {
                self.ids_among(ids, "fenced_at IS NOT NULL", None).await
            }

            async fn held(&self, ids: &[crate::JobId]) -> crate::Result<Vec<crate::JobId>> {
                self.ids_among(
                    ids,
                    concat!("lease_owner IS NOT NULL AND lease_until > ", $now),
                    Some(self.lease_clock()),
                )
                .await
            }

            async fn release(&self, id: crate::JobId, owner: &str) -> crate::Result<()> {
                self.owned_write(
                    id,
                    sqlx::query(
                        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
                         updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND fenced_at IS NOT NULL",
                    )
                    .bind(self.clock.now_ms())
                    .bind(id)
                    .bind(owner.to_owned()),
                )
                .await
            }

            async fn bury_abandoned(&self, max_attempts: u32, reason: &str) -> crate::Result<u64> {
                let r = sqlx::query(concat!(
                    "UPDATE jobs SET state = 'dead', dead_reason = $2, last_error = $2, \
                     lease_owner = NULL, lease_until = NULL, updated_at = ",
                    $now,
                    " WHERE state = 'running' AND lease_until < ",
                    $now,
                    " AND attempts >= $3 AND fenced_at IS NULL"
                ))
                .bind(self.lease_clock())
                .bind(reason.to_owned())
                .bind(i64::from(max_attempts))
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }

            async fn purge_removed(&self) -> crate::Result<()> {
                self.purge().await
            }

            async fn done_breakdown(&self) -> crate::Result<crate::DoneBreakdown> {
                let (not_taken, removed): (i64, i64) = sqlx::query_as(concat!(
                    "SELECT COALESCE(SUM(CASE WHEN consent_refused THEN 1 ELSE 0 END), 0)",
                    $bigint,
                    ", COALESCE(SUM(CASE WHEN removed_at IS NOT NULL THEN 1 ELSE 0 END), 0)",
                    $bigint,
                    " FROM jobs WHERE state = 'done'"
                ))
                .fetch_one(&self.pool)
                .await?;
                Ok(crate::DoneBreakdown {
                    not_taken: not_taken.max(0) as u64,
                    removed: removed.max(0) as u64,
                })
            }

            async fn media_jobs(
                &self,
                filter: &crate::MediaFilter,
                limit: usize,
            ) -> crate::Result<Vec<crate::JobInfo>> {
                // Ids follow arrival: the times become a span of ids (found by the index on
                // created_at, with some slack), which the walk by id keeps to.
                let mut ids = (None, None);
                if let Some(from) = filter.from_ms {
                    let first: Option<(i64,)> = sqlx::query_as(
                        "SELECT id FROM jobs WHERE created_at >= $1 ORDER BY created_at LIMIT 1",
                    )
                    .bind(from - crate::ARRIVAL_SLACK_MS)
                    .fetch_optional(&self.pool)
                    .await?;
                    match first {
                        Some((id,)) => ids.0 = Some(id),
                        None => return Ok(Vec::new()),
                    }
                }
                if let Some(until) = filter.until_ms {
                    let last: Option<(i64,)> = sqlx::query_as(
                        "SELECT id FROM jobs WHERE created_at < $1 \
                         ORDER BY created_at DESC LIMIT 1",
                    )
                    .bind(until + crate::ARRIVAL_SLACK_MS)
                    .fetch_optional(&self.pool)
                    .await?;
                    match last {
                        Some((id,)) => ids.1 = Some(id),
                        None => return Ok(Vec::new()),
                    }
                }
                let (sql, values) = crate::media_query(Self::COLUMNS, filter, ids);
                let rows: Vec<crate::JobRow> =
                    crate::bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), values)
                        .bind(crate::sql_limit(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn dead_letters_where(
                &self,
                filter: &crate::DeadFilter,
                limit: usize,
            ) -> crate::Result<Vec<crate::DeadLetter>> {
                let (condition, values) = crate::dead_condition(filter);
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT id, source, message_id, dead_reason, attempts, updated_at FROM jobs \
                     WHERE {condition} ORDER BY updated_at DESC, id DESC LIMIT ${}",
                    values.len() + 1
                ));
                let rows: Vec<crate::DeadRow> =
                    crate::bind_all(sqlx::query_as(sql), values)
                        .bind(crate::sql_limit(limit))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn replay_dead_where(
                &self,
                filter: &crate::DeadFilter,
            ) -> crate::Result<Vec<crate::JobId>> {
                let (condition, values) = crate::dead_condition(filter);
                let now = values.len() + 1;
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = ${now}, \
                     dead_reason = NULL, updated_at = ${now} WHERE {condition} RETURNING id"
                ));
                let ids: Vec<(i64,)> = crate::bind_all(sqlx::query_as(sql), values)
                    .bind(self.clock.now_ms())
                    .fetch_all(&self.pool)
                    .await?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            async fn finished_since(&self, since_ms: i64) -> crate::Result<Vec<(i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT created_at, updated_at FROM jobs WHERE state = 'done' \
                     AND updated_at >= $1 AND removed_at IS NULL \
                     AND (consent_refused IS NULL OR NOT consent_refused)",
                )
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn audit(&self, entry: &crate::AuditEntry) -> crate::Result<()> {
                sqlx::query(
                    "INSERT INTO audit_log (at, who, action, subject, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(entry.at_ms)
                .bind(&entry.who)
                .bind(&entry.action)
                .bind(&entry.subject)
                .bind(&entry.detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_log(
                &self,
                subject: Option<&str>,
                limit: usize,
            ) -> crate::Result<Vec<crate::AuditEntry>> {
                let rows: Vec<(i64, String, String, String, String)> = match subject {
                    Some(subject) => {
                        sqlx::query_as(
                            "SELECT at, who, action, subject, detail FROM audit_log \
                             WHERE subject = $1 ORDER BY id DESC LIMIT $2",
                        )
                        .bind(subject)
                        .bind(crate::sql_limit(limit))
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as(
                            "SELECT at, who, action, subject, detail FROM audit_log \
                             ORDER BY id DESC LIMIT $1",
                        )
                        .bind(crate::sql_limit(limit))
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows
                    .into_iter()
                    .map(|(at_ms, who, action, subject, detail)| crate::AuditEntry {
                        at_ms,
                        who,
                        action,
                        subject,
                        detail,
                    })
                    .collect())
            }

            async fn ping(&self) -> crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_job_store;
