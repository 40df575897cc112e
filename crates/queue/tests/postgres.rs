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
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = PgJobStore::open_with(options, clock.clone() as Arc<dyn Clock>)
        .await
        .unwrap();
    (Arc::new(store), clock)
}

wa2crm_queue::job_store_suite!(fresh);
