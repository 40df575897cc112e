//! The shared JobStore suite on SQLite files, plus what only SQLite must show.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::sync::Arc;

use wa2crm_core::Source;
use wa2crm_queue::testsuite::{self, event};
use wa2crm_queue::{Clock, Enqueued, JobStore, ManualClock, SqliteJobStore};

async fn fresh() -> (Arc<dyn JobStore>, Arc<ManualClock>) {
    // Leaked on purpose: the directory must outlive the store, which the test owns.
    let dir = tempfile::tempdir().unwrap().keep();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let url = format!("sqlite://{}/queue.db", dir.display());
    let store = SqliteJobStore::open(&url, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    (Arc::new(store), clock)
}

wa2crm_queue::job_store_suite!(fresh);

#[tokio::test]
async fn committed_jobs_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/dir/queue.db", dir.path().display());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    {
        let store = SqliteJobStore::open(&url, clock.clone()).await.unwrap();
        let r = store
            .enqueue(&[event(Source::Meta, "wamid.keep")])
            .await
            .unwrap();
        assert!(matches!(r[..], [Enqueued::Inserted(_)]));
    }
    let store = SqliteJobStore::open(&url, clock).await.unwrap();
    let info = store.find("meta", "wamid.keep").await.unwrap();
    assert!(
        info.is_some(),
        "the job must be on disk after the store is gone"
    );
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&sqlx::SqlitePool::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn a_bad_url_names_the_problem() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    let err = wa2crm_queue::open("mysql://x", clock).await.err().unwrap();
    assert!(err.to_string().contains("expected sqlite://"), "{err}");
}

/// A database written before the queue kept its own columns (migrations 0001–0004) gets them
/// filled from the checkpoints when it is opened: erasure still finds the stored object's
/// holders, `status` still counts the jobs consent turned away, and the console's tag filter
/// finds the media tagged before (migration 0007).
#[tokio::test]
async fn an_older_database_gets_the_columns_and_tag_rows_the_queue_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/queue.db", dir.path().display());
    let older = testsuite::migrations_before_real_columns("sqlite", dir.path());
    {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(older.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for (message_id, event, checkpoints) in testsuite::older_rows() {
            sqlx::query(
                "INSERT INTO jobs (source, message_id, event, state, attempts, next_attempt_at, \
                 checkpoints, created_at, updated_at) VALUES ('meta', $1, $2, 'done', 1, 0, $3, 0, 0)",
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
    let store = SqliteJobStore::open(&url, clock).await.unwrap();
    testsuite::assert_older_columns_filled(&store).await;
}
