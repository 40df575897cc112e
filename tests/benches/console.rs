//! Console benchmark: the real daemon serving its console over a SQLite queue of 1,000,000 jobs
//! (ten days of media at a job every 0.86 s, 100,000 senders; 5,000 waiting, 3,000 dead), each
//! page requested 30 times after a warm-up: p50, p95 and the slowest (target: every page under
//! 100 ms). Also what the overview's background snapshot reads, timed through the queue's API
//! (it runs every few seconds, never on a request). Run: scripts/bench.sh console
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use wa2crm_core::{MediaEvent, MediaKind, MediaRef, Phone, Source};
use wa2crm_e2e::{
    Daemon, NO_GRAPH, config_toml, console_password_hash, csrf_field, free_port, set_cookie,
};

const JOBS: i64 = 1_000_000;
const SENDERS: i64 = 100_000;
const WAITING: i64 = 5_000;
const DEAD_EVERY: i64 = 333;
const SPACING_MS: i64 = 864;
const PASSWORD: &str = "bench-console-password";
const REQUESTS: usize = 30;

fn sender(i: i64) -> String {
    format!("+49151{:08}", 10_000_000 + i % SENDERS)
}

/// Fills the queue the daemon will open: the schema by the daemon's own migrations, then rows
/// written directly (enqueueing a million webhooks would measure intake instead).
async fn fill(url: &str, path: &std::path::Path) {
    let store = wa2crm::commands::open_queue(url).await.unwrap();
    drop(store);
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let now = wa2crm_core::state::now_ms();
    let kinds = [
        MediaKind::Voice,
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Document,
        MediaKind::Audio,
    ];
    let started = Instant::now();
    for chunk in 0..(JOBS / 10_000) {
        let mut tx = db.begin().await.unwrap();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            let created = now - (JOBS - i) * SPACING_MS;
            let event = MediaEvent {
                source: Source::Meta,
                message_id: format!("wamid.bench.{i}"),
                phone_number_id: "106540352242922".into(),
                sender: Phone::parse(&sender(i)).unwrap(),
                sender_name: Some(format!("Customer {}", i % SENDERS)),
                kind: kinds[(i % 5) as usize],
                mime_type: Some("audio/ogg; codecs=opus".into()),
                sha256: None,
                caption: (i % 7 == 0).then(|| "Rechnung März".to_owned()),
                file_name: None,
                timestamp: time::OffsetDateTime::from_unix_timestamp(created / 1000).unwrap(),
                media: MediaRef::GraphMedia {
                    media_id: format!("m{i}"),
                    url: None,
                },
            };
            let event = serde_json::to_string(&event).unwrap();
            let (state, dead_reason) = if i >= JOBS - WAITING {
                ("queued", None)
            } else if i % DEAD_EVERY == 0 {
                (
                    "dead",
                    Some("hubspot: property wa_media_url does not exist"),
                )
            } else {
                ("done", None)
            };
            let key = format!("sha256/{:064x}.ogg", i);
            let tags = if i % 100_000 == 0 {
                json!(["vip", "urgent"])
            } else if i % 1000 == 0 {
                json!(["urgent"])
            } else {
                json!(["routine"])
            };
            let checkpoints = if state == "done" {
                json!({
                    "fetch": {"size": 6542, "sha256": format!("{i:064x}")},
                    "inspect": {"mime_type": "audio/ogg", "extension": "ogg", "mime_mismatch": null,
                        "duration_seconds": 3.2, "duration_error": null, "width": null, "height": null},
                    "tags": tags,
                    "store": {"key": key, "uri": format!("file:///m/{key}"),
                        "file_url": format!("https://wa2crm.example.com/media/t{i}"), "created": true},
                    "deliver": {"hubspot": {"crm_id": format!("{}", 1000 + i), "created": true}}
                })
            } else {
                json!({})
            };
            let done_at = created + 2_000 + (i % 5) * 1_000;
            sqlx::query(
                "INSERT INTO jobs (source, message_id, event, state, attempts, next_attempt_at, \
                 checkpoints, dead_reason, created_at, updated_at, media_key) \
                 VALUES ('meta', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(format!("wamid.bench.{i}"))
            .bind(event)
            .bind(state)
            .bind(1)
            // Waiting jobs wait for a retry a day away: the daemon leaves them alone.
            .bind(now + 86_400_000)
            .bind(checkpoints.to_string())
            .bind(dead_reason)
            .bind(created)
            .bind(if state == "queued" { created } else { done_at })
            .bind((state == "done").then_some(key))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // The tags' rows, as the daemon writes them with the tags checkpoint.
    sqlx::query(
        "INSERT INTO job_tags (tag, job_id) SELECT t.value, jobs.id \
         FROM jobs, json_each(jobs.checkpoints, '$.tags') AS t",
    )
    .execute(&mut db)
    .await
    .unwrap();
    println!(
        "filled {JOBS} jobs in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn login(d: &Daemon, http: &reqwest::Client) -> String {
    let page = http.get(d.url("/console/login")).send().await.unwrap();
    let login_cookie = set_cookie(&page, "__Host-wa2crm-login").unwrap();
    let html = page.text().await.unwrap();
    let csrf = csrf_field(&html).unwrap().to_owned();
    let r = http
        .post(d.url("/console/login"))
        .header("Cookie", login_cookie)
        .form(&[("user", "bench"), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    set_cookie(&r, "__Host-wa2crm-session").unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let url = format!("sqlite://{}", db.display());
    fill(&url, &db).await;

    // What the overview's snapshot reads, through the queue's API.
    let store = wa2crm::commands::open_queue(&url).await.unwrap();
    let now = wa2crm_core::state::now_ms();
    let t = Instant::now();
    let counts = store.counts().await.unwrap();
    let counting = t.elapsed();
    let t = Instant::now();
    let finished = store.finished_since(now - 86_400_000).await.unwrap();
    let window = t.elapsed();
    drop(store);
    println!(
        "snapshot reads: counts {:.0} ms ({} jobs), the last 24 h's {} finished jobs {:.0} ms",
        ms(counting),
        counts.queued + counts.running + counts.done + counts.dead,
        finished.len(),
        ms(window)
    );

    let port = free_port();
    let console = format!(
        "\n[console]\nenabled = true\non = \"main\"\ndefault_country = \"DE\"\n[console.users]\nbench = \"{}\"\n",
        console_password_hash(PASSWORD)
    );
    let config =
        config_toml(dir.path(), port, NO_GRAPH, &console).replace("workers = 2", "workers = 1");
    let d = Daemon::start(dir.path(), &config, port).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = login(&d, &http).await;
    let person = sender(4242);
    let day = {
        let d = time::OffsetDateTime::now_utc().date() - time::Duration::days(5);
        format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let national = format!("0151 {}", &person[6..]);
    let pages = [
        ("overview", "/console".to_owned()),
        ("dead letters", "/console/dead".to_owned()),
        (
            "dead letters, by connector",
            "/console/dead?connector=hubspot".to_owned(),
        ),
        ("media", "/console/media".to_owned()),
        ("media, one kind", "/console/media?kind=video".to_owned()),
        (
            "media, a tag on 1 in 1,000",
            "/console/media?tag=urgent".to_owned(),
        ),
        (
            "media, a tag on 1 in 100,000",
            "/console/media?tag=vip".to_owned(),
        ),
        (
            "media, a tag nearly every job has",
            "/console/media?tag=routine".to_owned(),
        ),
        (
            "media of a number, with a tag",
            format!(
                "/console/media?q={}&tag=routine",
                person.replace('+', "%2B")
            ),
        ),
        (
            "media, one day five days ago",
            format!("/console/media?from={day}&until={day}"),
        ),
        (
            "media, a number typed nationally",
            format!("/console/media?q={}", national.replace(' ', "+")),
        ),
        ("person", format!("/console/person/{person}")),
        ("configuration", "/console/settings".to_owned()),
    ];
    println!("\n| page (1,000,000 jobs) | p50 ms | p95 ms | slowest ms |\n|---|---|---|---|");
    for (name, path) in pages {
        let get = || http.get(d.url(&path)).header("Cookie", &session).send();
        let warm = get().await.unwrap();
        assert_eq!(warm.status(), 200, "{path}");
        let mut took = Vec::new();
        for _ in 0..REQUESTS {
            let t = Instant::now();
            let r = get().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap();
            took.push(t.elapsed());
        }
        took.sort();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            ms(took[REQUESTS / 2]),
            ms(took[REQUESTS * 95 / 100]),
            ms(took[REQUESTS - 1])
        );
    }
}
