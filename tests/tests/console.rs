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
    ACCESS_TOKEN, Daemon, config_toml, console_password_hash, csrf_field, eventually, free_port,
    post_webhook, set_cookie, sign,
};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::samples;

const HS_TOKEN: &str = "pat-na1-console-e2e";
const USER: &str = "alice";
const PASSWORD: &str = "console-e2e-password-31337";
/// A German mobile number, and how a German support agent types it.
const VOICE_SENDER: &str = "+4915123456789";
const NATIONAL: &str = "0151 23456789";
const IMAGE_SENDER: &str = "+14155550199";
/// The tag the rules give voice notes.
const TAG: &str = "needs-callback";

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
    let caption = Some("<script>alert(1)</script> Rückruf bitte");
    wa2crm_e2e::media_webhook(graph, &s, message_id, sender, 1_790_000_000, caption)
}

fn counts(d: &Daemon) -> Value {
    d.status()["queue"]["counts"].clone()
}

async fn until_counts(d: &Daemon, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = counts(d);
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
    text_of(c, "main").await
}

/// The text of the element `css` on the page shown (it must be there).
async fn text_of(c: &Client, css: &str) -> String {
    let found = c.find(Locator::Css(css)).await;
    let element = found.unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    element.text().await.unwrap()
}

/// Types `text` into the field with the id `id`.
async fn type_in(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.send_keys(text).await.unwrap();
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
        "\n[console]\nenabled = true\non = \"main\"\ndefault_country = \"DE\"\n[console.users]\n{USER} = \"{}\"\n\
         \n[[tags]]\nname = \"{TAG}\"\nkinds = [\"voice\"]\n",
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

    // Logging in: the console sends a stranger to its login (asked for the headers only, too:
    // a link checker or a proxy's health check gets the same answer).
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = stranger
            .request(method.clone(), &base)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{method}");
        assert_eq!(r.headers()["location"], "/console/login", "{method}");
    }
    c.goto(&base).await.unwrap();
    assert_on_login(&c).await;
    shot(&c, "login").await;
    type_in(&c, "user", USER).await;
    type_in(&c, "password", "wrong password").await;
    click(&c, "form button[type=submit]").await;
    assert!(
        text_of(&c, "p.error[role=alert]")
            .await
            .contains("Wrong user or password")
    );
    type_in(&c, "user", USER).await;
    type_in(&c, "password", PASSWORD).await;
    click(&c, "form button[type=submit]").await;

    // The overview's numbers are the queue's (its figures are refreshed every few seconds).
    let status = counts(&d);
    eventually(
        Duration::from_secs(30),
        "the overview showing the queue's numbers",
        async || {
            c.refresh().await.unwrap();
            let mut same = true;
            for state in ["queued", "running", "done", "dead"] {
                same &= shown(&c, state).await == status[state].as_u64().unwrap();
            }
            same
        },
    )
    .await;
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
    assert_eq!(counts(&d)["dead"], 2);

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
    let done = text_of(&c, "p.ok[role=status]").await;
    assert!(done.contains(&format!("Job {voice_id} is back")), "{done}");
    until_counts(&d, "the replayed voice note delivered", |c| c["done"] == 1).await;
    click(
        &c,
        "form[action=\"/console/dead/replay\"] input[name=all] ~ button",
    )
    .await;
    let done = text_of(&c, "p.ok[role=status]").await;
    assert!(done.contains("job(s) are back in the queue"), "{done}");
    until_counts(&d, "every dead letter delivered", |c| c["done"] == 2).await;
    // Both replays are in the audit log, with who did them.
    let audit = text_of(&c, "table[data-audit]").await;
    assert!(
        audit.contains("replay_all") && audit.contains(&format!("{USER} replay {voice_id}")),
        "{audit}"
    );

    // Media: found by the number typed nationally; the voice note plays in the page.
    c.goto(&format!("{base}/media")).await.unwrap();
    type_in(&c, "q", NATIONAL).await;
    click(&c, "form[role=search] button").await;
    text_of(&c, &format!("[data-search-for=\"{VOICE_SENDER}\"]")).await;
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
    // The deep link opens the sender's contact in the portal's web app.
    let contact = hs.find("contacts", "whatsapp_id", VOICE_SENDER).unwrap();
    let link = c
        .find(Locator::Css("td a[target=_blank]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        link.as_deref(),
        Some(&*format!(
            "https://app.hubspot.com/contacts/{}/record/0-1/{}",
            wa2crm_sandbox::hubspot::PORTAL_ID,
            contact.id
        ))
    );
    c.execute(
        "const a = document.querySelector('audio'); a.muted = true; a.play().catch(() => {});",
        vec![],
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "the voice note playable (readyState ≥ 2)",
        async || {
            let state = c
                .execute("return document.querySelector('audio').readyState", vec![])
                .await
                .unwrap();
            state.as_u64().unwrap_or(0) >= 2
        },
    )
    .await;
    shot(&c, "media").await;

    // A tag the rules gave: only the voice note has it.
    c.goto(&format!("{base}/media")).await.unwrap();
    type_in(&c, "tag", TAG).await;
    click(&c, "form[role=search] button").await;
    let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the voice note is tagged");
    let text = page_text(&c).await;
    assert!(
        text.contains(VOICE_SENDER) && text.contains(TAG) && !text.contains(IMAGE_SENDER),
        "{text}"
    );

    // The person: erase with a dry run first, then the number typed to confirm.
    click(
        &c,
        &format!("tbody a[href=\"/console/person/{VOICE_SENDER}\"]"),
    )
    .await;
    text_of(&c, "[data-consent]").await;
    shot(&c, "person").await;
    click(&c, "form[action$=\"/erase\"] button.danger").await;
    let report = text_of(&c, "pre[data-erase=dry_run]").await;
    assert!(report.contains("dry run"), "{report}");
    assert_eq!(counts(&d)["done"], 2);
    // A wrong number erases nothing.
    type_in(&c, "confirm", "0151 00000000").await;
    click(&c, "#confirm ~ button").await;
    assert!(
        text_of(&c, "p.error[role=alert]")
            .await
            .contains("does not match")
    );
    click(&c, "form[action$=\"/erase\"] button.danger").await;
    type_in(&c, "confirm", NATIONAL).await;
    click(&c, "#confirm ~ button").await;
    let erased = text_of(&c, "pre[data-erase=done]").await;
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
    // Nor is it found by its tag any more.
    c.goto(&format!("{base}/media?tag={TAG}")).await.unwrap();
    assert!(page_text(&c).await.contains("No media found"));

    // Configuration: secrets masked, and check run from the page.
    c.goto(&format!("{base}/settings")).await.unwrap();
    let source = c.source().await.unwrap();
    for secret in [HS_TOKEN, wa2crm_e2e::LINK_SECRET, ACCESS_TOKEN] {
        assert!(!source.contains(secret), "{secret} shown");
    }
    click(&c, "form[action=\"/console/settings/check\"] button").await;
    let verdict = c.find(Locator::Css("[data-check]")).await.unwrap();
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
    shown(&c, "done").await;
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
