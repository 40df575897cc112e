//! The operator console in a real browser: Debian's chromium driven through chromedriver
//! (WebDriver, fantoccini) against the real binary, delivering into the HubSpot simulator.
//! Screenshots of every page are saved under `target/console-screenshots/` (the CI artefacts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, console_password_hash, csrf_field, free_port, post_webhook,
    set_cookie, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::{samples, webhooks};

const HS_TOKEN: &str = "pat-na1-console-e2e";
const USER: &str = "alice";
const PASSWORD: &str = "console-e2e-password-31337";
/// A German mobile number, and how a German support agent types it.
const VOICE_SENDER: &str = "+4915123456789";
const NATIONAL: &str = "0151 23456789";
const IMAGE_SENDER: &str = "+14155550199";

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(names: &[&str]) -> String {
    for name in names {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .unwrap();
        if found.status.success() {
            return String::from_utf8(found.stdout).unwrap().trim().to_owned();
        }
    }
    panic!(
        "none of {names:?} is installed: the test command (scripts/test.sh) installs Debian's \
         chromium and chromium-driver"
    )
}

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(program(&["chromedriver"]))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child, port);
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": program(&["chromium", "chromium-browser"]),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1100", "--autoplay-policy=no-user-gesture-required",
                     "--mute-audio"]
        }
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut builder = ClientBuilder::new(connector.clone());
        builder.capabilities(caps.clone());
        match builder
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver did not start: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

fn webhook(graph: &GraphSim, file: &str, message_id: &str, sender: &str) -> Vec<u8> {
    let s = samples::all().into_iter().find(|s| s.file == file).unwrap();
    let media_id = format!("m-{message_id}");
    let digest = graph.add_media(&media_id, s.bytes, &s.mime_type);
    let sample = webhooks::Sample {
        kind: s.kind,
        mime_type: s.mime_type.clone(),
        caption: Some("<script>alert(1)</script> Rückruf bitte".into()),
        file_name: None,
    };
    let mut m = webhooks::message_json(&sample, message_id, &media_id, 1_790_000_000);
    m["from"] = sender.trim_start_matches('+').into();
    let key = m["type"].as_str().unwrap().to_owned();
    m[&key]["sha256"] = digest.into();
    webhooks::webhook_body(vec![m])
}

async fn counts(d: &Daemon) -> Value {
    d.status()["queue"]["counts"].clone()
}

async fn until_counts(d: &Daemon, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = counts(d).await;
        if ok(&c) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {c}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The figure the overview shows for `state`.
async fn shown(c: &Client, state: &str) -> u64 {
    let text = c
        .find(Locator::Css(&format!("[data-count=\"{state}\"]")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.replace(['\u{202f}', ' '], "").parse().unwrap()
}

/// Waits until the element `css` holds `text` (the page that shows it has loaded).
async fn until_text(c: &Client, css: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.text().await.is_ok_and(|t| t.contains(text))
        {
            return;
        }
        assert!(Instant::now() < deadline, "never a {css} saying {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The browser was sent to the login page.
async fn assert_on_login(c: &Client) {
    let at = c.current_url().await.unwrap();
    assert!(at.path().ends_with("/console/login"), "at {at}");
}

/// Clicks what submits a form or follows a link, and waits until the next page has loaded (a
/// mark left on this page's window is gone), so nothing is read from the page before.
async fn click(c: &Client, css: &str) {
    c.execute("window.wa2crmBefore = true;", vec![])
        .await
        .unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = c
            .execute(
                "return window.wa2crmBefore === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await;
        if loaded.is_ok_and(|v| v == Value::Bool(true)) {
            return;
        }
        assert!(Instant::now() < deadline, "clicking {css} loaded no page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn page_text(c: &Client) -> String {
    c.find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_replays_finds_plays_and_erases() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let console = format!(
        "\n[console]\nenabled = true\non = \"main\"\ndefault_country = \"DE\"\n[console.users]\n{USER} = \"{}\"\n",
        console_password_hash(PASSWORD)
    );
    let hubspot = wa2crm_e2e::hubspot_section(&hs.url(), &format!("token = \"{HS_TOKEN}\""));
    let config = config_toml(
        dir.path(),
        port,
        &graph.url(),
        &format!("{hubspot}{console}"),
    );
    // Not provisioned: HubSpot refuses the unknown properties and both media are dead letters.
    let mut d = Daemon::start(dir.path(), &config, port).await;
    let client = reqwest::Client::new();
    for (file, id, sender) in [
        ("voice.ogg", "wamid.console.voice", VOICE_SENDER),
        ("image.jpg", "wamid.console.image", IMAGE_SENDER),
    ] {
        let body = webhook(&graph, file, id, sender);
        let status = post_webhook(&client, &d.url("/webhooks/whatsapp"), &body, sign(&body)).await;
        assert_eq!(status, 200);
    }
    until_counts(&d, "two dead letters", |c| c["dead"] == 2).await;

    let (_driver, c) = browser().await;
    let base = d.url("/console");

    // Logging in: the console sends a stranger to its login.
    c.goto(&base).await.unwrap();
    assert_on_login(&c).await;
    shot(&c, "login").await;
    c.find(Locator::Id("user"))
        .await
        .unwrap()
        .send_keys(USER)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    click(&c, "form button[type=submit]").await;
    let refused = c
        .wait()
        .for_element(Locator::Css("p.error[role=alert]"))
        .await
        .unwrap();
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Wrong user or password")
    );
    c.find(Locator::Id("user"))
        .await
        .unwrap()
        .send_keys(USER)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(&c, "form button[type=submit]").await;
    c.wait()
        .for_element(Locator::Css("[data-count=\"dead\"]"))
        .await
        .unwrap();

    // The overview's numbers are the queue's (its figures are refreshed every few seconds).
    let status = counts(&d).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut same = true;
        for state in ["queued", "running", "done", "dead"] {
            same &= shown(&c, state).await == status[state].as_u64().unwrap();
        }
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the overview never showed {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.refresh().await.unwrap();
    }
    assert!(page_text(&c).await.contains("hubspot"));
    shot(&c, "overview-dead").await;

    // A POST without its CSRF token (or with another's) is refused, and changes nothing.
    let cookie = c.get_named_cookie("__Host-wa2crm-session").await.unwrap();
    let session = format!("__Host-wa2crm-session={}", cookie.value());
    let dead_id = d.status()["dead_letters"][0]["id"].as_i64().unwrap();
    for body in [format!("id={dead_id}"), format!("id={dead_id}&csrf=0000")] {
        let r = client
            .post(d.url("/console/dead/replay"))
            .header("Cookie", &session)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("CSRF"));
    }
    assert_eq!(counts(&d).await["dead"], 2);

    // Dead letters: the reason, filtered by connector; the admin fixes the cause, then replays.
    c.goto(&format!("{base}/dead?connector=hubspot"))
        .await
        .unwrap();
    let listed = page_text(&c).await;
    assert!(listed.contains("hubspot:"), "{listed}");
    shot(&c, "dead-letters").await;
    let (ok, out) = d.cli(&["provision"]);
    assert!(ok, "{out}");
    let voice_id = d.status()["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["message_id"] == "wamid.console.voice")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    click(&c, &format!("tr[data-job=\"{voice_id}\"] button")).await;
    let done = c
        .wait()
        .for_element(Locator::Css("p.ok[role=status]"))
        .await
        .unwrap();
    assert!(
        done.text()
            .await
            .unwrap()
            .contains(&format!("Job {voice_id} is back"))
    );
    until_counts(&d, "the replayed voice note delivered", |c| c["done"] == 1).await;
    click(
        &c,
        "form[action=\"/console/dead/replay\"] input[name=all] ~ button",
    )
    .await;
    // The page before also says something was replayed: wait for this replay's words.
    until_text(&c, "p.ok[role=status]", "job(s) are back in the queue").await;
    until_counts(&d, "every dead letter delivered", |c| c["done"] == 2).await;
    // Both replays are in the audit log, with who did them.
    let audit = c
        .find(Locator::Css("table[data-audit]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("replay_all") && audit.contains(&format!("{USER} replay {voice_id}")),
        "{audit}"
    );

    // Media: found by the number typed nationally; the voice note plays in the page.
    c.goto(&format!("{base}/media")).await.unwrap();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys(NATIONAL)
        .await
        .unwrap();
    click(&c, "form[role=search] button").await;
    // The list before the search has the voice note too: wait for the search's own result.
    c.wait()
        .for_element(Locator::Css(&format!(
            "[data-search-for=\"{VOICE_SENDER}\"]"
        )))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the voice note's sender");
    let text = page_text(&c).await;
    assert!(
        text.contains(VOICE_SENDER) && !text.contains(IMAGE_SENDER),
        "{text}"
    );
    // The caption is shown as text, never run.
    assert!(
        text.contains("<script>alert(1)</script> Rückruf bitte"),
        "{text}"
    );
    assert!(
        text.contains("hubspot:"),
        "the CRM record it went to: {text}"
    );
    c.execute(
        "const a = document.querySelector('audio'); a.muted = true; a.play().catch(() => {});",
        vec![],
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = c
            .execute("return document.querySelector('audio').readyState", vec![])
            .await
            .unwrap();
        if state.as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the voice note never became playable: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&c, "media").await;

    // The person: erase with a dry run first, then the number typed to confirm.
    click(
        &c,
        &format!("tbody a[href=\"/console/person/{VOICE_SENDER}\"]"),
    )
    .await;
    c.wait()
        .for_element(Locator::Css("[data-consent]"))
        .await
        .unwrap();
    shot(&c, "person").await;
    click(&c, "form[action$=\"/erase\"] button.danger").await;
    let report = c
        .wait()
        .for_element(Locator::Css("pre[data-erase=dry_run]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(report.contains("dry run"), "{report}");
    assert_eq!(counts(&d).await["done"], 2);
    // A wrong number erases nothing.
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .send_keys("0151 00000000")
        .await
        .unwrap();
    click(&c, "#confirm ~ button").await;
    let refused = c
        .wait()
        .for_element(Locator::Css("p.error[role=alert]"))
        .await
        .unwrap();
    assert!(refused.text().await.unwrap().contains("does not match"));
    click(&c, "form[action$=\"/erase\"] button.danger").await;
    c.wait()
        .for_element(Locator::Id("confirm"))
        .await
        .unwrap()
        .send_keys(NATIONAL)
        .await
        .unwrap();
    click(&c, "#confirm ~ button").await;
    let erased = c
        .wait()
        .for_element(Locator::Css("pre[data-erase=done]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(erased.contains("queue: scrubbed 1 job(s)"), "{erased}");
    let text = page_text(&c).await;
    assert!(text.contains("No media of this number is kept"), "{text}");
    assert!(
        text.contains(USER) && text.contains("erase"),
        "the audit log: {text}"
    );
    shot(&c, "person-erased").await;
    c.goto(&format!("{base}/media?q={}", NATIONAL.replace(' ', "+")))
        .await
        .unwrap();
    assert!(page_text(&c).await.contains("No media found"));

    // Configuration: secrets masked, and check run from the page.
    c.goto(&format!("{base}/settings")).await.unwrap();
    let source = c.source().await.unwrap();
    for secret in [HS_TOKEN, wa2crm_e2e::LINK_SECRET, ACCESS_TOKEN] {
        assert!(!source.contains(secret), "{secret} shown");
    }
    click(&c, "form[action=\"/console/settings/check\"] button").await;
    let verdict = c
        .wait()
        .for_element(Locator::Css("[data-check]"))
        .await
        .unwrap();
    assert_eq!(
        verdict.attr("data-check").await.unwrap().as_deref(),
        Some("ok"),
        "{}",
        page_text(&c).await
    );
    shot(&c, "configuration").await;

    // The overview after the work: media flowed.
    c.goto(&base).await.unwrap();
    shot(&c, "overview").await;

    // The login outlives a restart (the queue database keeps it); Log out ends it everywhere.
    let stopped = d.terminate();
    assert!(stopped.success(), "{stopped:?}");
    d.restart().await;
    c.goto(&base).await.unwrap();
    c.wait()
        .for_element(Locator::Css("[data-count=\"done\"]"))
        .await
        .unwrap();
    click(&c, "form.logout button").await;
    assert_on_login(&c).await;
    c.goto(&base).await.unwrap();
    assert_on_login(&c).await;
    c.close().await.unwrap();
}

/// Without users the console is open, which only a loopback listener allows: it says so on every
/// page, keeps CSRF tokens, and lives on the admin listener only (the webhooks' has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_console_on_the_admin_listener_says_so_and_still_checks_its_forms() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let config = config_toml(
        dir.path(),
        port,
        wa2crm_e2e::NO_GRAPH,
        "\n[console]\nenabled = true\n",
    )
    .replacen(
        "[server]\n",
        &format!("[server]\nadmin_listen = \"127.0.0.1:{admin}\"\n"),
        1,
    );
    let d = Daemon::start(dir.path(), &config, port).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let main = http.get(d.url("/console")).send().await.unwrap();
    assert_eq!(main.status(), 404, "not on the webhooks' listener");
    let page = http
        .get(format!("http://127.0.0.1:{admin}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = set_cookie(&page, "__Host-wa2crm-session").unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("No login is configured"), "{html}");
    assert!(html.contains(&format!("127.0.0.1:{admin}")), "{html}");
    let refused = http
        .post(format!("http://127.0.0.1:{admin}/console/dead/replay"))
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("all=1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let csrf = csrf_field(&html).unwrap();
    let accepted = http
        .post(format!("http://127.0.0.1:{admin}/console/dead/replay"))
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("all=1&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 303, "{}", d.log());
}
