//! Helpers for black-box tests and benchmarks of the real `wa2crm` binary: start it on a fresh
//! directory and port, wait until it answers, kill it, read its status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod twilio;

pub const APP_SECRET: &str = "e2e-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "e2e-verify-token";
pub const ACCESS_TOKEN: &str = "e2e-access-token";
pub const LINK_SECRET: &str = "e2e-link-secret-0123456789";

/// The `wa2crm` binary under test: `$WA2CRM_BIN`, else the one cargo built next to this test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WA2CRM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary> → target/<profile>/wa2crm
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("wa2crm");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (cargo build -p wa2crm), as the README test command does",
        bin.display()
    );
    bin
}

/// A port nobody listens on right now, for a daemon the test starts on it later.
///
/// Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), which every
/// `bind(…:0)` (the simulators, other tests' helpers) and every outgoing connection draw from:
/// a port from there could be handed to someone else between this check and the daemon's bind,
/// and the daemon would fail to start by chance. Each test process walks its own stretch, so
/// concurrent tests never pick the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (20_000u32, ephemeral_low.max(20_001));
    let span = high - low;
    let start = (std::process::id() % 64) * (span / 64);
    for _ in 0..span {
        let port = low + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if let Ok(p) = u16::try_from(port)
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port below the ephemeral range {low}..{high}")
}

/// Where no Graph API answers: jobs of daemons configured with it retry and stay in the queue.
pub const NO_GRAPH: &str = "http://127.0.0.1:9";

/// A minimal configuration for a daemon listening on `port` with its state in `dir`, downloading
/// media from `graph_url` (a `GraphSim`, or [`NO_GRAPH`]). `extra` is appended (more sections).
pub fn config_toml(dir: &Path, port: u16, graph_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
max_body_bytes = 65536

[queue]
url = "sqlite://{dir}/queue.db"
workers = 2
# Short, so a killed daemon's jobs are taken over within the tests' patience.
lease_seconds = 2

[storage]
url = "file://{dir}/media"
link_secret = "{LINK_SECRET}"

[media]
spool_dir = "{dir}/spool"

[sources.meta]
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "{ACCESS_TOKEN}"
graph_url = "{graph_url}"
{extra}
"#,
        dir = dir.display()
    )
}

/// `[connectors.hubspot]` for a HubSpot simulator at `url`, with `auth` (a `token = …` line or the
/// OAuth keys): contacts by `whatsapp_id`, the latest media on the contact, a note per media.
pub fn hubspot_section(url: &str, auth: &str) -> String {
    format!(
        r#"
[connectors.hubspot]
type = "hubspot"
base_url = "{url}"
{auth}
contact_key = "whatsapp_id"
note = true
linger_ms = 100
[connectors.hubspot.fields]
file_url = "wa_media_url"
media_type = "wa_media_type"
mime_type = "wa_media_mime"
size_bytes = "wa_media_size"
duration_seconds = "wa_media_duration"
received_at = "wa_media_received_at"
"#
    )
}

/// The Zendesk simulator's agent and API token.
pub const ZD_EMAIL: &str = "integration@e2e.example.com";
pub const ZD_TOKEN: &str = "e2e-zendesk-api-token-5b8d2f9a";

/// `[connectors.zendesk]` for a Zendesk simulator at `url` (API token), at the High Volume
/// add-on's pace (the simulator must be started with it too): each media an internal note on
/// the requester's open ticket, with the file attached and two mapped ticket fields.
pub fn zendesk_section(url: &str) -> String {
    format!(
        r#"
[connectors.zendesk]
type = "zendesk"
base_url = "{url}"
email = "{ZD_EMAIL}"
api_token = "{ZD_TOKEN}"
requests_per_minute = 2500
upload = true
linger_ms = 100
[connectors.zendesk.fields]
file_url = "WhatsApp media link"
media_type = "WhatsApp media type"
"#
    )
}

/// The Zendesk simulator for [`zendesk_section`].
pub async fn zendesk_account() -> wa2crm_sandbox::zendesk::ZendeskSim {
    let mut c = wa2crm_sandbox::zendesk::ZendeskSimConfig::new(ZD_EMAIL, ZD_TOKEN);
    c.requests_per_minute = 2500;
    wa2crm_sandbox::zendesk::ZendeskSim::start(c)
        .await
        .expect("the Zendesk simulator starts")
}

/// The message ids of every wa2crm note in the account, once per note block (a media written
/// twice appears twice).
pub fn zendesk_note_ids(sim: &wa2crm_sandbox::zendesk::ZendeskSim) -> Vec<String> {
    sim.tickets()
        .iter()
        .flat_map(|t| t.comments.iter())
        .flat_map(|c| {
            c.body
                .lines()
                .filter_map(|l| l.strip_prefix("wa2crm: ").map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends `n` distinct signed image webhooks through Meta (`wamid.{tag}.{i}`), the i-th from
/// `senders[i % senders.len()]`; each must be answered 200.
pub async fn post_distinct_images(
    d: &Daemon,
    graph: &wa2crm_sandbox::graph::GraphSim,
    tag: &str,
    n: usize,
    senders: &[&str],
) {
    let client = reqwest::Client::new();
    for i in 0..n {
        let body = distinct_image_webhook(graph, tag, i, senders[i % senders.len()]);
        let status = post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
        assert_eq!(status, 200);
    }
}

/// The Zoho simulator's OAuth client and refresh token.
pub const ZOHO_CLIENT: &str = "1000.E2EWA2CRM";
pub const ZOHO_SECRET: &str = "e2e-zoho-client-secret-7c1d9e3b";
pub const ZOHO_REFRESH: &str = "1000.e2e0c44298fc1c149afbf4c8996fb924.27ae41e4649b934c";

/// `[connectors.zoho]` for a Zoho simulator whose accounts server is at `accounts`: a media
/// record per media with two mapped fields, a Note on the Contact and the file attached.
pub fn zoho_section(accounts: &str) -> String {
    format!(
        r#"
[connectors.zoho]
type = "zoho"
accounts_url = "{accounts}"
client_id = "{ZOHO_CLIENT}"
client_secret = "{ZOHO_SECRET}"
refresh_token = "{ZOHO_REFRESH}"
note = true
attach = true
linger_ms = 100
[connectors.zoho.match]
default_country = "DE"
[connectors.zoho.fields]
file_url = "WA_Link"
media_type = "WA_Type"
"#
    )
}

/// A Zoho org for [`zoho_section`], with the media module an admin made (its fields are
/// `provision`'s), at the Ultimate edition's concurrency.
pub async fn zoho_org() -> wa2crm_sandbox::zoho::ZohoSim {
    let mut c = wa2crm_sandbox::zoho::ZohoSimConfig::new(ZOHO_CLIENT, ZOHO_SECRET, ZOHO_REFRESH);
    c.max_concurrent = 25;
    c.credits_per_day = 5_000_000;
    wa2crm_sandbox::zoho::ZohoSim::start(c)
        .await
        .expect("the Zoho simulator starts")
}

/// The Salesforce simulator's connected app and integration user.
pub const SF_CLIENT: &str = "3MVG9e2e";
pub const SF_USER: &str = "integration@e2e.example.com";

/// `[connectors.salesforce]` for a Salesforce simulator at `url` (JWT bearer flow with the key at
/// `key_path`): one `WhatsApp_Media__c` record per media, looked up to its Contact.
pub fn salesforce_section(url: &str, key_path: &Path, permission_set: &str) -> String {
    format!(
        r#"
[connectors.salesforce]
type = "salesforce"
login_url = "{url}"
client_id = "{SF_CLIENT}"
username = "{SF_USER}"
private_key_file = "{key}"
object = "WhatsApp_Media__c"
external_id = "WA_Message_Id__c"
contact_lookup = "Contact__c"
contact_key = "WhatsApp_Id__c"
permission_set = "{permission_set}"
linger_ms = 100
[connectors.salesforce.fields]
file_url = "Media_Url__c"
media_type = "Media_Type__c"
size_bytes = "Size_Bytes__c"
duration_seconds = "Duration_Seconds__c"
received_at = "Received_At__c"
"#,
        key = key_path.display()
    )
}

/// A running `wa2crm run`, killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    // One client for the daemon's life: a new one per request loads the root certificates again,
    // which costs more CPU than the request and steals it from the daemon under measurement.
    http: reqwest::Client,
}

impl Daemon {
    /// The daemon's one HTTP client, for requests a test makes to it.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Starts the binary on `config` (written to `dir/wa2crm.toml`) and waits until it answers.
    pub async fn start(dir: &Path, config: &str, port: u16) -> Daemon {
        let mut d = Daemon::new(dir, config, port);
        d.restart().await;
        d
    }

    /// Writes the configuration but does not start the process yet.
    pub fn new(dir: &Path, config: &str, port: u16) -> Daemon {
        let config_path = dir.join("wa2crm.toml");
        std::fs::write(&config_path, config).unwrap();
        Daemon {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            config_path,
            log_path: dir.join("wa2crm.log"),
            http: reqwest::Client::new(),
        }
    }

    /// Runs `provision` on `config` (the CRM fields wa2crm writes), then starts the process.
    pub async fn start_provisioned(dir: &Path, config: &str, port: u16) -> Daemon {
        let mut d = Daemon::new(dir, config, port);
        let (ok, out) = d.cli(&["provision"]);
        assert!(ok, "provision failed:\n{out}");
        d.restart().await;
        d
    }

    /// Starts the process again on the same configuration (after a kill).
    pub async fn restart(&mut self) {
        self.restart_with_env(&[]).await;
    }

    /// Starts the process again with extra environment variables.
    pub async fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "still running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(binary())
            .arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Polls `/healthz` until it answers, failing with the daemon's log after 30 s.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "wa2crm exited with {status} before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "wa2crm did not answer within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no chance to flush or clean up, like a power cut for the process.
    /// Whether the process was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits up to 30 s for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(c.id()).unwrap();
        // SAFETY: sending a signal to our own child, whose pid is valid until we reap it.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The process's peak resident memory (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in /proc/PID/status")
            * 1024
    }

    /// CPU time the process has used so far (user + system), from /proc/PID/stat.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces; utime and
        // stime are the 12th and 13th of them, in clock ticks, which /proc counts at USER_HZ =
        // 100 on every Linux architecture.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs `wa2crm <args> --config <this daemon's config>`: (exit success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        self.cli_command(args)()
    }

    /// The same command, to run later or on another thread (`spawn_blocking`).
    pub fn cli_command(&self, args: &[&str]) -> impl FnOnce() -> (bool, String) + Send + 'static {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let config = self.config_path.clone();
        move || {
            let out = Command::new(binary())
                .args(&args)
                .arg("--config")
                .arg(&config)
                .output()
                .unwrap();
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.success(), text)
        }
    }

    /// Polls `status` until `n` jobs are done (60 s at most); a dead letter or the deadline
    /// fails the test with the status and the log.
    pub async fn wait_done(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.status()["queue"]["counts"].clone();
            if c["done"] == n as u64 {
                return;
            }
            assert!(c["dead"] == 0, "{}\n{}", self.status(), self.log());
            assert!(std::time::Instant::now() < deadline, "{c}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `wa2crm status --json` on this daemon's configuration.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(binary())
            .args(["status", "--json", "--config"])
            .arg(&self.config_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Jobs in every state.
    pub fn total_jobs(&self) -> u64 {
        let c = &self.status()["queue"]["counts"];
        ["queued", "running", "done", "dead"]
            .iter()
            .map(|k| c[k].as_u64().unwrap())
            .sum()
    }

    /// One sample of `/metrics`, e.g. `wa2crm_media_events_total{outcome="accepted",source="meta"}`.
    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        self.metrics().await.get(name_and_labels)
    }

    /// All of `/metrics` at one moment, to read several samples from one scrape.
    pub async fn metrics(&self) -> Metrics {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Metrics(text)
    }
}

/// One scrape of `/metrics`.
pub struct Metrics(pub String);

impl Metrics {
    /// The sample named with its labels, e.g. `wa2crm_job_outcomes_total{outcome="done"}`; 0 when
    /// absent (a counter not yet incremented is not exported).
    pub fn get(&self, name_and_labels: &str) -> f64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// POSTs a webhook body signed with `secret` (or with the given raw header value).
pub async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::StatusCode {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    req.send().await.unwrap().status()
}

pub fn sign(body: &[u8]) -> Option<String> {
    Some(wa2crm_sandbox::webhooks::signature(APP_SECRET, body))
}

/// A Salesforce org with the `WhatsApp_Media__c` object (its fields not yet provisioned), the
/// sandbox key written into `dir`, and the `[connectors.salesforce]` section for it.
pub async fn salesforce_org(dir: &Path) -> (wa2crm_sandbox::salesforce::SalesforceSim, String) {
    use wa2crm_sandbox::salesforce::{SANDBOX_PRIVATE_KEY, SalesforceSim, SalesforceSimConfig};
    let config = SalesforceSimConfig::new(SF_CLIENT, SF_USER);
    let permission_set = config.permission_set.clone();
    let sim = SalesforceSim::start(config).await.unwrap();
    sim.add_object("WhatsApp_Media__c");
    let key = dir.join("salesforce.key");
    std::fs::write(&key, SANDBOX_PRIVATE_KEY).unwrap();
    let section = salesforce_section(&sim.url(), &key, &permission_set);
    (sim, section)
}

/// A Cloud API webhook of one media message: `sample`'s file served by `graph` as
/// `m-{message_id}`, from `sender` at `ts`, with `caption`.
pub fn media_webhook(
    graph: &wa2crm_sandbox::graph::GraphSim,
    s: &wa2crm_sandbox::samples::SampleMedia,
    message_id: &str,
    sender: &str,
    ts: i64,
    caption: Option<&str>,
) -> Vec<u8> {
    use wa2crm_sandbox::webhooks;
    let media_id = format!("m-{message_id}");
    let digest = graph.add_media(&media_id, s.bytes, &s.mime_type);
    let sample = webhooks::Sample {
        kind: s.kind,
        mime_type: s.mime_type.clone(),
        caption: caption.map(str::to_owned),
        file_name: None,
    };
    let mut m = webhooks::message_json(&sample, message_id, &media_id, ts);
    m["from"] = sender.trim_start_matches('+').into();
    let key = m["type"].as_str().expect("a message type").to_owned();
    m[&key]["sha256"] = digest.into();
    webhooks::webhook_body(vec![m])
}

/// The signed webhook of the `i`-th of a stream of distinct images (the bundled JPEG with a tag
/// after its end, as cameras leave them) from `sender`; `graph` serves the file as `{tag}-{i}`,
/// and the message id is `wamid.{tag}.{i}`.
pub fn distinct_image_webhook(
    graph: &wa2crm_sandbox::graph::GraphSim,
    tag: &str,
    i: usize,
    sender: &str,
) -> Vec<u8> {
    use wa2crm_sandbox::{samples, webhooks};
    let image = samples::all()
        .into_iter()
        .find(|s| s.file == "image.jpg")
        .expect("the bundled JPEG");
    let mut bytes = image.bytes.to_vec();
    bytes.extend_from_slice(format!("{tag}-{i}").as_bytes());
    let media_id = format!("{tag}-{i}");
    let digest = graph.add_media(&media_id, bytes, &image.mime_type);
    let sample = webhooks::Sample {
        kind: image.kind,
        mime_type: image.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut m = webhooks::message_json(
        &sample,
        &format!("wamid.{tag}.{i}"),
        &media_id,
        1_790_000_000 + i as i64,
    );
    m["from"] = sender.trim_start_matches('+').into();
    m["image"]["sha256"] = digest.into();
    webhooks::webhook_body(vec![m])
}

/// How many files a daemon on `dir` (the one `config_toml` writes) holds in its file storage.
pub fn stored_files(dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("media"))
}

/// Polls `check` until it says yes, failing with `what` after `within`: for what a daemon does
/// in the background (gauges refreshed every few seconds, a warning logged).
pub async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The argon2 hash of `password` for `console.users`, as the binary's `hash-password` prints it.
pub fn console_password_hash(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(binary())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hash-password starts");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password written");
    let out = child.wait_with_output().expect("hash-password ends");
    assert!(out.status.success(), "hash-password failed");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// `name=value` of the cookie `name` an answer sets, for the next request's `Cookie` header.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first hidden `csrf` field of a console page.
pub fn csrf_field(html: &str) -> Option<&str> {
    html.split("name=\"csrf\" value=\"")
        .nth(1)?
        .split('"')
        .next()
}
