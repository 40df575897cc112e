//! Erasure racing the daemon's own work, with the real binary: `wa2crm erase` while the person's
//! file is still downloading, and while it waits in a delivery batch. Erasure fences the jobs,
//! waits for the workers to let go, then erases: nothing of theirs may remain anywhere — not in
//! the CRM, not in the storage, not in the queue's stored data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, distinct_image_webhook, free_port, hubspot_section,
    post_webhook, sign, stored_files,
};
use wa2crm_sandbox::graph::{Fault, GraphSim};
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};

const TOKEN: &str = "pat-na1-erase-race";
const ANA: &str = "+4915111111111";

struct World {
    graph: GraphSim,
    hs: HubSpotSim,
    d: Daemon,
    dir: tempfile::TempDir,
}

/// A daemon delivering to HubSpot, whose batches wait `linger_ms` for company.
async fn world(linger_ms: u64) -> World {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let crm = hubspot_section(&hs.url(), &format!("token = \"{TOKEN}\""))
        .replace("linger_ms = 100", &format!("linger_ms = {linger_ms}"));
    let d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &crm),
        port,
    )
    .await;
    World { graph, hs, d, dir }
}

impl World {
    async fn send(&self, i: usize) {
        let body = distinct_image_webhook(&self.graph, "race", i, ANA);
        let status = post_webhook(
            self.d.client(),
            &self.d.url("/webhooks/whatsapp"),
            &body,
            sign(&body),
        )
        .await;
        assert_eq!(status, 200);
    }

    /// Polls until `ready` says the moment has come, failing after 30 s.
    async fn until(&self, what: &str, ready: impl Fn(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            assert!(Instant::now() < deadline, "never {what}\n{}", self.d.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `wa2crm erase --phone ANA`, off this runtime (the simulators keep answering).
    async fn erase(&self) -> String {
        let cli = self.d.cli_command(&["erase", "--phone", ANA]);
        let (ok, out) = tokio::task::spawn_blocking(cli).await.unwrap();
        assert!(ok, "{out}\n{}", self.d.log());
        out
    }

    /// Nothing of Ana's anywhere, and her job ended removed, not running or retried.
    fn assert_nothing_left(&self, out: &str) {
        assert!(self.hs.records("notes").is_empty(), "{out}");
        assert!(
            self.hs
                .find("contacts", "whatsapp_id", ANA)
                .is_none_or(|c| !c.properties.contains_key("wa_media_url")),
            "{out}"
        );
        assert_eq!(stored_files(self.dir.path()), 0, "{out}");
        let s = self.d.status();
        let c = &s["queue"]["counts"];
        assert_eq!(
            (
                c["done"].as_u64(),
                c["running"].as_u64(),
                c["queued"].as_u64()
            ),
            (Some(1), Some(0), Some(0)),
            "{s}"
        );
        assert_eq!(s["queue"]["done_media_removed"], 1, "{s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_while_the_file_is_downloading_leaves_nothing() {
    let w = world(100).await;
    // Half the file, then a pause of 4 s, then the rest.
    w.graph.fail_downloads([Fault::Slow(4000)]);
    w.send(1).await;
    w.until("downloading", |w| w.graph.counts().downloads >= 1)
        .await;
    let out = w.erase().await;
    w.assert_nothing_left(&out);
    assert!(
        w.d.log().contains("its sender's media is being erased"),
        "the worker stopped on the fence\n{}",
        w.d.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_while_the_media_waits_in_a_delivery_batch_leaves_nothing() {
    // Batches wait 4 s for company: the stored media sits in one when erasure starts.
    let w = world(4000).await;
    w.send(1).await;
    w.until("stored", |w| stored_files(w.dir.path()) == 1).await;
    let out = w.erase().await;
    w.assert_nothing_left(&out);
    assert_eq!(w.hs.counts().calls.get("POST notes batch/upsert"), None);
}
