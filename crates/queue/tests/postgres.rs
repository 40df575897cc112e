//! The shared JobStore suite on the PostgreSQL server at $WA2CRM_TEST_DATABASE_URL (default
//! 127.0.0.1:5432, user postgres). Each test gets its own schema. If the server cannot be reached
//! the tests fail: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use wa2crm_queue::{Clock, JobStore, ManualClock, PgJobStore};

fn server_url() -> String {
    std::env::var("WA2CRM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn fresh() -> (Arc<dyn JobStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    (fresh_with(clock.clone()).await, clock)
}

/// A store in a schema of its own, on `clock`.
async fn fresh_with(clock: Arc<dyn Clock>) -> Arc<dyn JobStore> {
    Arc::new(
        PgJobStore::open_with(own_schema().await, clock)
            .await
            .unwrap(),
    )
}

/// Connection options for a new schema of its own.
async fn own_schema() -> PgConnectOptions {
    static N: AtomicU32 = AtomicU32::new(0);
    let url = server_url();
    let schema = format!(
        "wa2crm_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut admin = PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {url} is required for these tests and could not be reached: {e}. \
             Start it (see README, 'Tests') or set WA2CRM_TEST_DATABASE_URL."
        )
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())])
}

wa2crm_queue::job_store_suite!(fresh);

/// The real time, read on an instance whose clock is an hour fast.
struct FastClock;

impl Clock for FastClock {
    fn now_ms(&self) -> i64 {
        wa2crm_queue::SystemClock.now_ms() + 3_600_000
    }
    fn is_real_time(&self) -> bool {
        true
    }
}

/// Instances sharing a queue judge leases by the database server's one clock: a lease taken on
/// an instance whose clock runs an hour fast still runs out by the server's time, and another
/// instance cannot take the job early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_judged_by_the_servers_clock() {
    let store = fresh_with(Arc::new(FastClock)).await;
    store
        .enqueue(&[wa2crm_queue::testsuite::event(
            wa2crm_core::Source::Meta,
            "wamid.clock",
        )])
        .await
        .unwrap();
    let lease = std::time::Duration::from_secs(60);
    let job = store.claim("fast", lease, 1).await.unwrap().remove(0);
    let until = store
        .get(job.id)
        .await
        .unwrap()
        .unwrap()
        .lease_until_ms
        .unwrap();
    let real = wa2crm_queue::SystemClock.now_ms();
    assert!(
        (until - (real + 60_000)).abs() < 10_000,
        "lease_until {until} follows the server's clock ({real} + 60 s), not the fast one"
    );
    assert!(store.claim("other", lease, 1).await.unwrap().is_empty());
    assert_eq!(store.held(&[job.id]).await.unwrap(), vec![job.id]);
}

/// A database written before the queue kept its own columns (migrations 0001–0004) gets them
/// filled from the checkpoints when it is opened: erasure still finds the stored object's
/// holders, `status` still counts the jobs consent turned away, and the console's tag filter
/// finds the media tagged before (migration 0007).
#[tokio::test]
async fn an_older_database_gets_the_columns_and_tag_rows_the_queue_keeps() {
    let options = own_schema().await;
    let dir = tempfile::tempdir().unwrap();
    let older = wa2crm_queue::testsuite::migrations_before_real_columns("postgres", dir.path());
    {
        let pool = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
        sqlx::migrate::Migrator::new(older.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for (message_id, event, checkpoints) in wa2crm_queue::testsuite::older_rows() {
            sqlx::query(
                "INSERT INTO jobs (source, message_id, event, state, attempts, next_attempt_at, \
                 checkpoints, created_at, updated_at) \
                 VALUES ('meta', $1, $2::jsonb, 'done', 1, 0, $3::jsonb, 0, 0)",
            )
            .bind(message_id)
            .bind(event)
            .bind(checkpoints)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    let store = PgJobStore::open_with(options, clock).await.unwrap();
    wa2crm_queue::testsuite::assert_older_columns_filled(&store).await;
}
