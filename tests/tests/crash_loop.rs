//! A file that kills the process working on it (a crash, or the kernel's out-of-memory killer)
//! must not crash-loop the daemon: each claim counts as an attempt, and a job whose process died
//! `queue.max_attempts` times is dead-lettered with a reason, instead of being claimed forever.
//! Here the process is SIGKILLed while it downloads the file, every time, with the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, distinct_image_webhook, free_port, post_webhook, sign,
};
use wa2crm_sandbox::graph::{Fault, GraphSim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_process_dies_every_time_is_dead_lettered_with_a_reason() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    // Every download stalls halfway for a minute: the process is killed in the middle of each.
    graph.fail_downloads([
        Fault::Slow(60_000),
        Fault::Slow(60_000),
        Fault::Slow(60_000),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_toml(dir.path(), port, &graph.url(), "").replacen(
        "[queue]\n",
        "[queue]\nmax_attempts = 2\n",
        1,
    );
    let mut d = Daemon::start(dir.path(), &config, port).await;
    let body = distinct_image_webhook(&graph, "crash", 1, "+4915111111111");
    let status = post_webhook(d.client(), &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
    assert_eq!(status, 200);
    for attempt in 1..=2u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while graph.counts().downloads < attempt {
            assert!(Instant::now() < deadline, "attempt {attempt}\n{}", d.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d.kill();
        d.restart().await;
    }
    // The second death used up max_attempts: once its lease runs out the job is buried.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let s = d.status();
        if s["queue"]["counts"]["dead"] == 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = dead["dead_letters"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("stopped 2 times before it finished") && reason.contains("replay"),
        "{reason}"
    );
    assert_eq!(graph.counts().downloads, 2, "not claimed a third time");
}
