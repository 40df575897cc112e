//! The shared JobStore suite on SQLite files, plus what only SQLite must show.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use wa2crm_core::Source;
use wa2crm_queue::testsuite::event;
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
