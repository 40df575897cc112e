//! Media benchmark: one 1 GiB file through resolve → fetch → inspect → store, to file storage and
//! to S3, measuring the daemon's peak RSS and its throughput relative to a plain copy of the same
//! file on the same machine.
//!
//! Run (README, "Benchmarks"): scripts/bench.sh media
//! S3 needs $WA2CRM_TEST_S3_ENDPOINT (scripts/bench.sh starts moto's S3-API server and sets it);
//! $WA2CRM_BENCH_S3_BUCKET names an existing bucket, for a server that wants every request signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use wa2crm_e2e::{ACCESS_TOKEN, Daemon, config_toml, free_port, sign};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::{samples, webhooks};

const SIZE: usize = 1 << 30;

#[tokio::main]
async fn main() {
    bench().await;
}

/// A valid MP4 of exactly `SIZE` bytes: the bundled video followed by one large `free` box.
fn big_mp4() -> Vec<u8> {
    let video = samples::all()
        .into_iter()
        .find(|s| s.file == "video.mp4")
        .unwrap();
    let mut data = Vec::with_capacity(SIZE);
    data.extend_from_slice(video.bytes);
    let pad = SIZE - data.len();
    data.extend_from_slice(&u32::try_from(pad).unwrap().to_be_bytes());
    data.extend_from_slice(b"free");
    data.resize(SIZE, 0x5a);
    data
}

/// Lets earlier runs' dirty pages reach the disk first, so their write-back is not measured.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

async fn bench() {
    let data = big_mp4();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mp4");
    std::fs::write(&src, &data).unwrap();

    // Baselines (best of three, page cache warm): the same bytes copied file to file, as `cp`
    // does, and the same copy made durable with fsync, as wa2crm makes every stored file.
    let mut cached = Duration::MAX;
    let mut durable = Duration::MAX;
    for i in 0..3 {
        settle_disk();
        let dst = dir.path().join(format!("copy{i}.mp4"));
        let t = Instant::now();
        std::fs::copy(&src, &dst).unwrap();
        cached = cached.min(t.elapsed());
        std::fs::File::open(&dst).unwrap().sync_all().unwrap();
        durable = durable.min(t.elapsed());
        std::fs::remove_file(dst).unwrap();
    }
    std::fs::remove_file(&src).unwrap();
    let rate = |d: Duration| SIZE as f64 / d.as_secs_f64() / (1 << 20) as f64;

    let sim = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let digest = sim.add_media("big", data, "video/mp4");
    let mut rows = vec![
        format!(
            "| plain copy, file to file (page cache) | {:.2} s | {:.0} MiB/s | – | – | – |",
            cached.as_secs_f64(),
            rate(cached)
        ),
        format!(
            "| plain copy + fsync (durable) | {:.2} s | {:.0} MiB/s | 1.00 | – | – |",
            durable.as_secs_f64(),
            rate(durable)
        ),
    ];

    let s3 = std::env::var("WA2CRM_TEST_S3_ENDPOINT").ok();
    let targets: Vec<(&str, String)> = {
        let mut t = vec![("file", String::new())];
        if let Some(endpoint) = &s3 {
            // A server that wants every request signed (s3s-fs, MinIO) needs its bucket made
            // beforehand and named here; moto takes an unsigned PUT.
            let bucket = match std::env::var("WA2CRM_BENCH_S3_BUCKET") {
                Ok(b) => b,
                Err(_) => {
                    let bucket = format!("wa2crm-bench-{}", std::process::id());
                    let made = reqwest::Client::new()
                        .put(format!("{endpoint}/{bucket}"))
                        .send()
                        .await
                        .unwrap();
                    assert!(made.status().is_success(), "creating {bucket}: {made:?}");
                    bucket
                }
            };
            t.push((
                "s3",
                format!(
                    "[storage.options]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\
                     access_key_id = \"x\"\nsecret_access_key = \"x\"\nallow_http = \"true\"\n\
                     #bucket={bucket}"
                ),
            ));
        }
        t
    };
    for (kind, extra) in targets {
        let run_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut toml = config_toml(run_dir.path(), port, &sim.url(), "")
            .replace("[media]\n", "[media]\nmax_bytes = 2147483648\n");
        if kind == "s3" {
            let bucket = extra.rsplit("#bucket=").next().unwrap();
            toml = toml.replace(
                &format!("url = \"file://{}/media\"", run_dir.path().display()),
                &format!("url = \"s3://{bucket}/media\""),
            );
            toml.push_str(extra.split("#bucket=").next().unwrap());
        }
        let d = Daemon::start(run_dir.path(), &toml, port).await;
        settle_disk();
        let sample = webhooks::Sample {
            kind: wa2crm_core::MediaKind::Video,
            mime_type: "video/mp4".into(),
            caption: None,
            file_name: None,
        };
        let mut m =
            webhooks::message_json(&sample, &format!("wamid.big.{kind}"), "big", 1_790_000_000);
        m["video"]["sha256"] = digest.clone().into();
        let body = webhooks::webhook_body(vec![m]);
        let client = reqwest::Client::new();
        let cpu_before = d.cpu_time();
        let t = Instant::now();
        let status = client
            .post(d.url("/webhooks/whatsapp"))
            .header("X-Hub-Signature-256", sign(&body).unwrap())
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let m = d.metrics().await;
            let done = m.get("wa2crm_job_outcomes_total{outcome=\"done\"}");
            let failed = m.get("wa2crm_job_outcomes_total{outcome=\"dead\"}")
                + m.get("wa2crm_job_outcomes_total{outcome=\"retry\"}");
            assert!(failed == 0.0, "the job failed:\n{}", d.log());
            if done >= 1.0 {
                break;
            }
            assert!(Instant::now() < deadline, "not done in 10 minutes");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = t.elapsed();
        let cpu = d.cpu_time() - cpu_before;
        let rss = d.peak_rss();
        let log = d.log();
        let timings: Vec<&str> = log
            .split_whitespace()
            .filter(|w| w.contains("_ms="))
            .collect();
        eprintln!("{kind}: {}", timings.join(" "));
        rows.push(format!(
            "| resolve → fetch → inspect → store, to {kind} | {:.2} s | {:.0} MiB/s | {:.2} (vs page-cache copy {:.2}) | {:.1} MiB | {:.2} s |",
            took.as_secs_f64(),
            rate(took),
            durable.as_secs_f64() / took.as_secs_f64(),
            cached.as_secs_f64() / took.as_secs_f64(),
            rss as f64 / (1 << 20) as f64,
            cpu.as_secs_f64()
        ));
        drop(d);
    }
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n## wa2crm media benchmark: one 1 GiB MP4 ({nproc} cores)\n"
    )
    .unwrap();
    writeln!(out, "| path | time | throughput | relative to the durable copy (target >= 0.5) | daemon peak RSS (target <= 64 MiB) | daemon CPU |").unwrap();
    writeln!(out, "|---|---|---|---|---|---|").unwrap();
    for r in rows {
        writeln!(out, "{r}").unwrap();
    }
    if s3.is_none() {
        writeln!(
            out,
            "\nS3 not measured: WA2CRM_TEST_S3_ENDPOINT is not set (scripts/bench.sh sets it)."
        )
        .unwrap();
    }
}
