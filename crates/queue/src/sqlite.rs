//! The SQLite job store: the default for a single instance.
//!
//! Durability: WAL with `synchronous = FULL`, so a commit has reached the disk when it returns.
//! Throughput: every fsync is expensive, so enqueues from concurrent webhook requests are
//! group-committed by one writer task: it takes every request waiting at that moment, commits them
//! in one transaction, then answers each. Nobody is answered before the commit that holds their
//! rows is durable.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use wa2crm_core::MediaEvent;

use crate::{
    ClaimedRow, Clock, Enqueued, JobId, QueueError, Result, event_json, lease_ms, sql_limit,
};

/// How many waiting enqueue requests one transaction takes at most.
const MAX_GROUP: usize = 512;

struct EnqueueRequest {
    rows: Vec<(String, String, String)>,
    reply: oneshot::Sender<Result<Vec<Enqueued>>>,
}

pub struct SqliteJobStore {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    writer: mpsc::Sender<EnqueueRequest>,
    checkpointer: tokio::task::JoinHandle<()>,
    locks: wa2crm_core::LocalLocks,
}

impl Drop for SqliteJobStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// The user the service runs as (deploy/wa2crm.service, `User=`).
pub const SERVICE_USER: &str = "wa2crm";

/// The database holds customers' names, numbers and captions: its directory is created 0700
/// and the file 0600 whatever the umask (SQLite gives its WAL and shared-memory files the
/// database file's mode), and a database found readable by others is made private.
///
/// An admin running the CLI as root before the service ever started must not leave a database
/// (or a `/var/lib/wa2crm`) the service cannot open: as root, what is created here is given to
/// [`SERVICE_USER`] when that user exists. (SQLite itself gives the WAL files the database's
/// owner when it runs as root.)
fn private_database(path: &std::path::Path) -> std::result::Result<(), String> {
    private_database_for(path, SERVICE_USER)
}

/// [`private_database`] with the service's user named (tests use one that exists everywhere).
pub(crate) fn private_database_for(
    path: &std::path::Path,
    service_user: &str,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        // The directories that do not exist yet, outermost first, to hand over once made.
        let missing: Vec<&std::path::Path> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .collect();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for d in missing.iter().rev() {
            give_to_service_user(d, service_user)?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => give_to_service_user(path, service_user),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| {
                        format!(
                            "{} is readable by other users and cannot be made private: {e}",
                            path.display()
                        )
                    },
                )?;
                tracing::warn!(path = %path.display(), "The queue database was readable by other users; it is now 0600.");
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// As root, `path` (just created) becomes the service user's, if that user exists.
fn give_to_service_user(
    path: &std::path::Path,
    service_user: &str,
) -> std::result::Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let user = nix::unistd::User::from_name(service_user)
        .map_err(|e| format!("cannot look up the user {service_user}: {e}"))?;
    let Some(user) = user else {
        return Ok(());
    };
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
        format!(
            "cannot give {} to the service's user {service_user}: {e}",
            path.display()
        )
    })?;
    tracing::info!(path = %path.display(), user = service_user, "Created as root; given to the service's user.");
    Ok(())
}

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Passive checkpoints run beside the writers instead of inside a commit. If one cannot finish
/// (a long reader), the next one catches up; the WAL only grows meanwhile.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; will try again.");
        }
    }
}

impl SqliteJobStore {
    /// Opens (creating if needed) the database at `url` and applies the embedded migrations.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| QueueError::BadUrl {
                url: crate::redact_url(url),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // The commit that crosses the WAL size limit would otherwise copy the WAL back into
            // the database then and there, holding up every webhook in its group for hundreds
            // of milliseconds on a large queue. A background task checkpoints instead.
            .pragma("wal_autocheckpoint", "0")
            // Freed space is zeroed: a scrubbed row's old content does not linger in the file.
            .pragma("secure_delete", "ON");
        private_database(options.get_filename()).map_err(|reason| QueueError::BadUrl {
            url: crate::redact_url(url),
            reason,
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let conn = SqliteConnection::connect_with(&options).await?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(group_commit(conn, rx, clock.clone()));
        let checkpointer = tokio::spawn(checkpoint_wal(pool.clone()));
        Ok(SqliteJobStore {
            pool,
            clock,
            writer: tx,
            checkpointer,
            locks: Default::default(),
        })
    }
}

async fn group_commit(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<EnqueueRequest>,
    clock: Arc<dyn Clock>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let now = clock.now_ms();
        match insert_group(&mut conn, &group, now).await {
            Ok(results) => {
                for (req, res) in group.into_iter().zip(results) {
                    // The requester may have gone (client hung up); its rows are committed anyway.
                    let _ = req.reply.send(Ok(res));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "Group commit of webhook jobs failed.");
                let msg = e.to_string();
                for req in group {
                    let _ = req
                        .reply
                        .send(Err(QueueError::Corrupt(format!("enqueue failed: {msg}"))));
                }
            }
        }
    }
}

/// Rows per INSERT statement: far below SQLite's limit of 32766 bound variables (3 per row).
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts every row of the group in one transaction, with multi-row statements: one round trip
/// to SQLite's thread per few hundred rows instead of one per row is what makes group commit pay.
async fn insert_group(
    conn: &mut SqliteConnection,
    group: &[EnqueueRequest],
    now: i64,
) -> Result<Vec<Vec<Enqueued>>> {
    let rows: Vec<&(String, String, String)> = group.iter().flat_map(|r| &r.rows).collect();
    let mut inserted: HashMap<(String, String), i64> = HashMap::with_capacity(rows.len());
    let mut tx = conn.begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO jobs (source, message_id, event, state, attempts, next_attempt_at, \
             checkpoints, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, (source, message_id, event)| {
            b.push_bind(source)
                .push_bind(message_id)
                .push_bind(event)
                .push("'queued'")
                .push("0")
                .push_bind(now)
                .push("'{}'")
                .push_bind(now)
                .push_bind(now);
        });
        q.push(" ON CONFLICT (source, message_id) DO NOTHING RETURNING id, source, message_id");
        let returned: Vec<(i64, String, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
        inserted.extend(returned.into_iter().map(|(id, s, m)| ((s, m), id)));
    }
    tx.commit().await?;
    // The first occurrence of a key in the group is the one inserted; any later one is a duplicate.
    Ok(group
        .iter()
        .map(|req| {
            req.rows
                .iter()
                .map(|(s, m, _)| match inserted.remove(&(s.clone(), m.clone())) {
                    Some(id) => Enqueued::Inserted(id),
                    None => Enqueued::Duplicate,
                })
                .collect()
        })
        .collect())
}

crate::jobs::impl_job_store!(
    SqliteJobStore,
    db = sqlx::Sqlite,
    text = "",
    json = "",
    bigint = "",
    merge = "json_set(checkpoints, '$.\"' || $1 || '\"', json($2))",
    lease_now = "$1",
);

/// Ids per statement where a list goes into `IN (…)`: SQLite allows 32,766 bound values.
const ID_CHUNK: usize = 500;

/// SQLite's strategies (see crates/queue/src/jobs.rs).
impl SqliteJobStore {
    /// Through the group-commit writer: concurrent webhooks share one durable transaction.
    async fn enqueue_jobs(&self, events: &[MediaEvent]) -> Result<Vec<Enqueued>> {
        let rows = events
            .iter()
            .map(|e| {
                Ok((
                    e.source.as_str().to_owned(),
                    e.message_id.clone(),
                    event_json(e)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(EnqueueRequest { rows, reply })
            .await
            .map_err(|_| QueueError::WriterGone)?;
        answer.await.map_err(|_| QueueError::WriterGone)?
    }

    /// One process claims: a sub-select per kind of due job, each served by its own index (with
    /// a large backlog an OR of both scans and sorts the whole table under SQLite's write lock).
    async fn claim_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>> {
        let now = self.clock.now_ms();
        let until = now.saturating_add(lease_ms(lease));
        let limit = sql_limit(limit);
        let mut rows: Vec<ClaimedRow> = Vec::new();
        for sql in [
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND next_attempt_at <= $3 \
                AND fenced_at IS NULL ORDER BY next_attempt_at LIMIT $4) \
             RETURNING id, event, attempts, checkpoints",
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE state = 'running' AND lease_until < $3 \
                AND fenced_at IS NULL ORDER BY lease_until LIMIT $4) \
             RETURNING id, event, attempts, checkpoints",
        ] {
            let missing = limit - rows.len() as i64;
            if missing <= 0 {
                break;
            }
            let got: Vec<ClaimedRow> = sqlx::query_as(sql)
                .bind(owner.to_owned())
                .bind(until)
                .bind(now)
                .bind(missing)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(got);
        }
        Ok(rows)
    }

    /// Leases are judged by this process's clock: a SQLite queue serves one process.
    fn lease_clock(&self) -> Option<i64> {
        Some(self.clock.now_ms())
    }

    async fn fence_jobs(&self, ids: &[JobId]) -> Result<()> {
        let now = self.clock.now_ms();
        for chunk in ids.chunks(ID_CHUNK) {
            let sql = format!(
                "UPDATE jobs SET fenced_at = $1 WHERE fenced_at IS NULL AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Those of `ids` whose row meets `condition`, whose `$1` (if it has one) is `value`.
    async fn ids_among(
        &self,
        ids: &[JobId],
        condition: &'static str,
        value: Option<Option<i64>>,
    ) -> Result<Vec<JobId>> {
        let first = if value.is_some() { 2 } else { 1 };
        let mut out = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let sql = format!(
                "SELECT id FROM jobs WHERE {condition} AND id IN ({})",
                placeholders(first, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            if let Some(v) = value {
                q = q.bind(v);
            }
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Waits for readers (busy_timeout) so the whole WAL is copied back, then empties it: a
    /// scrubbed row's old content does not linger there.
    async fn purge(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// `$first, $first+1, …`, `n` of them. (Numbered and unnumbered placeholders do not mix: sqlx
/// counts the unnumbered ones from 1.)
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

crate::state::impl_state_store!(SqliteJobStore, "MAX");

impl SqliteJobStore {
    /// A SQLite queue serves one process: a lock within it is a lock for all.
    async fn state_lock(
        &self,
        scope: &str,
        name: &str,
    ) -> wa2crm_core::Result<wa2crm_core::StateLock> {
        Ok(self.locks.lock(scope, name).await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::private_database_for;

    /// The console's media list by tag reads the tag's own rows newest first and each job by its
    /// key (or, for one sender, the sender's jobs and each one's tag by key): never a scan of
    /// the jobs nor a sort of them, however many there are (migration 0007).
    #[tokio::test]
    async fn the_tag_filter_is_answered_from_indexes() {
        use crate::{ManualClock, MediaFilter, MediaKind};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/queue.db", dir.path().display());
        let store = super::SqliteJobStore::open(&url, std::sync::Arc::new(ManualClock::new(0)))
            .await
            .unwrap();
        let tag = |more: MediaFilter| MediaFilter {
            tag: Some("urgent".into()),
            ..more
        };
        let filters = [
            (tag(MediaFilter::default()), (None, None)),
            (
                tag(MediaFilter {
                    kind: Some(MediaKind::Voice),
                    before_id: Some(500),
                    ..Default::default()
                }),
                (Some(10), Some(900)),
            ),
            (
                tag(MediaFilter {
                    sender: Some("+4915123456789".into()),
                    ..Default::default()
                }),
                (None, None),
            ),
        ];
        for (filter, ids) in filters {
            let (sql, values) = crate::media_query("jobs.id", &filter, ids);
            let explain = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
            let plan: Vec<(i64, i64, i64, String)> =
                crate::bind_all(sqlx::query_as(explain), values)
                    .bind(50_i64)
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
            let steps: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
            assert!(
                steps.iter().all(|s| s.starts_with("SEARCH")
                    || s.starts_with("CORRELATED SCALAR SUBQUERY")),
                "{filter:?}: {steps:?}"
            );
            let (walk, by_key) = if filter.sender.is_some() {
                (
                    "SEARCH jobs USING INDEX jobs_sender (sender=?)",
                    "job_id=? AND tag=?",
                )
            } else {
                (
                    "SEARCH job_tags USING",
                    "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)",
                )
            };
            assert!(steps[0].starts_with(walk), "{filter:?}: {steps:?}");
            assert!(
                steps.iter().skip(1).any(|s| s.contains(by_key)),
                "{filter:?}: {steps:?}"
            );
        }
    }

    /// As root (CI runs as root), a database and the directories created for it belong to the
    /// service's user, here `nobody`, which every Debian system has; as anyone else, to them.
    #[test]
    fn what_root_creates_belongs_to_the_service_user() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state/wa2crm/queue.db");
        private_database_for(&db, "nobody").unwrap();
        let expected = if nix::unistd::geteuid().is_root() {
            nix::unistd::User::from_name("nobody")
                .unwrap()
                .expect("the user nobody exists")
                .uid
                .as_raw()
        } else {
            nix::unistd::geteuid().as_raw()
        };
        for path in [
            &db,
            &tmp.path().join("state/wa2crm"),
            &tmp.path().join("state"),
        ] {
            assert_eq!(std::fs::metadata(path).unwrap().uid(), expected, "{path:?}");
        }
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The directory the admin made (the temporary one) is left alone.
        assert_eq!(
            std::fs::metadata(tmp.path()).unwrap().uid(),
            nix::unistd::geteuid().as_raw()
        );
    }
}
