//! `wa2crm sandbox` with nothing configured: every bundled sample goes through the real daemon
//! into storage (one each also through 360dialog and Twilio), and the redelivery and the forged
//! signature are refused as the contract says.
#![allow(clippy::unwrap_used)]

#[test]
fn sandbox_stores_every_sample_with_its_metadata_and_link() {
    let out = std::process::Command::new(wa2crm_e2e::binary())
        .arg("sandbox")
        .env_remove("WA2CRM_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One line per job as it completes: what was stored, its caption and tags, its link.
    let stored: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("job ") && l.contains(" · stored · "))
        .collect();
    assert_eq!(stored.len(), 15, "{stdout}");
    assert!(stdout.contains("via 360dialog -> 200 OK"), "{stdout}");
    assert!(
        stdout.contains("via Twilio, from a new sender -> 200 OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("from an existing customer (without Brazil's ninth digit) -> 200 OK"),
        "{stdout}"
    );
    assert!(
        stored
            .iter()
            .any(|l| l.contains(" · d360   · voice.ogg (voice) · stored · audio/ogg")),
        "{stdout}"
    );
    assert!(
        stored
            .iter()
            .any(|l| l.contains(" · twilio · image.jpg (image) · stored · image/jpeg")),
        "{stdout}"
    );
    for kind in ["voice", "audio", "video", "image", "document", "sticker"] {
        assert!(
            stored
                .iter()
                .any(|l| l.contains(&format!("({kind}) · stored"))),
            "{kind}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("the same webhook again -> 200 OK (a duplicate: no new job)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not a file -> 200 OK (skipped, as it should be"),
        "{stdout}"
    );
    assert!(
        stdout.contains("with a forged signature -> 401 Unauthorized (expected"),
        "{stdout}"
    );
    // The expected refusal and the media library's chatter are not logged as warnings.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(
        stdout.contains("voice.ogg (voice) · stored · audio/ogg · 6542 bytes · 3.2 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("voice.amr (voice) · stored · audio/amr · 4806 bytes · 3.0 s"),
        "{stdout}"
    );
    assert_eq!(
        stored
            .iter()
            .filter(|l| l.contains(" · http://127.0.0.1:"))
            .count(),
        15,
        "{stdout}"
    );
    // The example's tag rules: the video's caption, the voice notes' length.
    assert!(
        stdout.contains("\"Die Tür ist kaputt\" · tags product-issue · "),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches(" · tags quick-voice-note · ").count(),
        3,
        "two voice notes via Meta and one via 360dialog: {stdout}"
    );
    // The summary and the next step.
    assert!(
        stdout.contains("Summary: 18 webhook(s) became 15 job(s): 15 stored, 0 failed; 1 duplicate ignored, 1 item(s) without a file skipped, 1 forged webhook refused."),
        "{stdout}"
    );
    assert!(
        stdout.contains("  hubspot (HubSpot): 3 contacts, 15 notes, 6 tasks"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  salesforce (Salesforce): 15 WhatsApp_Media__c records, 2 Contacts, 3 Tasks"
        ),
        "{stdout}"
    );
    // The example's Zendesk mapping: the existing customers' media on their tickets, the new
    // sender with a requester and ticket of their own, one internal note line per media.
    assert!(
        stdout.contains("  zendesk (Zendesk): 3 requesters, 3 tickets, "),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("\"Existing ticket\" (open) · requester Jürgen Weiß +4915123456789 · tags: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("WhatsApp media type          = "),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("      wa2crm: "))
            .count(),
        15,
        "{stdout}"
    );
    for line in [
        "  +4915123456789 (13 media): 13 on tickets of the existing end user ",
        "  +551187654321 (1 media): 1 on tickets of the existing end user ",
        "  +14155550199 (a new sender): a new end user ",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
    assert!(
        stdout.contains("Next: `wa2crm sandbox --serve`"),
        "{stdout}"
    );
    // The example's HubSpot mapping, provisioned and written into the simulator.
    assert!(
        stdout.contains("hubspot (HubSpot simulator at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(whatsapp_id = +4915123456789, name \"Jürgen Weiß\"): latest media"),
        "{stdout}"
    );
    for property in [
        "wa_media_url",
        "wa_media_type",
        "wa_media_mime",
        "wa_media_size",
        "wa_media_received_at",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(property))
            .unwrap_or_else(|| panic!("{property} missing:\n{stdout}"));
        assert!(!line.contains("= -"), "{property} is empty: {line}");
    }
    assert!(stdout.contains("13 timeline note(s)"), "{stdout}");
    // The example's tasks: HubSpot for voice notes and videos, Salesforce for product issues.
    assert!(
        stdout.contains("6 task(s) for the contact's owner"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("· Not Started · owner 005").count(),
        3,
        "the three videos tagged product-issue: {stdout}"
    );
    // And the example's Salesforce mapping: one media record per sample, looked up to the
    // customer's record: Jürgen is only a Lead there, Ana a Contact, Sam new.
    assert!(
        stdout.contains("salesforce (Salesforce simulator at http://127.0.0.1:"),
        "{stdout}"
    );
    let on = |what: &str| {
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("WhatsApp_Media__c a01") && l.contains(what))
            .count()
    };
    assert_eq!(on("→ Lead 00Q"), 13, "{stdout}");
    assert_eq!(on("→ Contact 003"), 2, "{stdout}");
    assert!(
        stdout.contains("(\"Jürgen Weiß\", a Lead only)"),
        "{stdout}"
    );
    // Existing customers, found by their numbers however they were typed.
    for line in [
        "  +4915123456789 (13 media): the existing contact 1001 (its number typed \"0151 23456789\"), now with whatsapp_id = +4915123456789",
        "  +551187654321 (1 media): the existing contact 1002 (its number typed \"+55 11 98765-4321\")",
        "  +14155550199 (a new sender): a new contact",
        "  +4915123456789 (13 media): 13 on the existing Lead 00Q",
        "  +551187654321 (1 media): 1 on the existing Contact 003",
        "  +14155550199 (a new sender): a new Contact 003",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }
    assert!(
        stdout.contains("Mime_Type__c           = audio/amr"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WhatsApp voice note from Jürgen Weiß (+4915123456789) 0:03 · 6.4 KB · audio/ogg Tags: quick-voice-note Play the voice note"),
        "{stdout}"
    );
}

/// `wa2crm sandbox --config FILE`: the admin's own mapping — a HubSpot custom object with
/// different property names, Salesforce names of their own, tag rules, a consent policy and a
/// notification webhook — runs against the simulators with credentials and URLs swapped.
#[test]
fn sandbox_runs_the_admins_own_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        r#"
[server]
public_url = "https://wa2crm.acme.example"
[storage]
link_secret = "acme-link-secret-0123456789"
[sources.meta]
app_secret = "real-secret"
verify_token = "real-verify"
access_token = "EAAG-real"

[[routes]]
source = "meta"
number = "*"
connectors = ["crm-eu"]

[[tags]]
name = "needs-callback"
kinds = ["voice"]

[policy]
consent = "crm_field"

[notifications.webhook]
url = "https://hooks.acme.example/wa"
secret = "acme-notify-secret-0123"
kinds = ["voice"]

[connectors.crm-eu]
type = "hubspot"
token = "pat-real-acme"
contact_key = "acme_whatsapp"
object = "p_acme_media"
consent_field = "acme_consent"
[connectors.crm-eu.fields]
message_id = "acme_msg"
file_url = "acme_link"
duration_seconds = "acme_seconds"
tags = "acme_tags"

[connectors.sales]
type = "salesforce"
client_id = "real-consumer-key"
username = "api@acme.example"
private_key_file = "/etc/acme/sf.key"
object = "Acme_Media__c"
external_id = "Acme_Msg__c"
contact_lookup = "Acme_Contact__c"
contact_key = "Acme_WA__c"
[connectors.sales.fields]
file_url = "Acme_Link__c"
tags = "Acme_Tags__c"

[connectors.helpdesk]
type = "zendesk"
subdomain = "acme"
email = "api@acme.example"
api_token = "real-zendesk-token-acme-0123"
ticket_policy = "new_per_media"
group_id = 360000111222
consent_field = "acme_consent"
[connectors.helpdesk.fields]
file_url = "Acme media link"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(wa2crm_e2e::binary())
        .args(["sandbox", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("crm-eu: `provision` created"), "{stdout}");
    assert!(stdout.contains("for your mapping"), "{stdout}");
    assert!(stdout.contains("taken as given in the sandbox"), "{stdout}");
    assert!(stdout.contains("[[routes]] are left out"), "{stdout}");
    assert!(stdout.contains("crm-eu (HubSpot simulator at"), "{stdout}");
    assert!(
        stdout.contains("sales (Salesforce simulator at"),
        "{stdout}"
    );
    assert!(stdout.contains("  p_acme_media record "), "{stdout}");
    assert!(
        stdout.contains("acme_tags              = needs-callback"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Acme_Link__c           = http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("Acme_Media__c a01"), "{stdout}");
    // The Zendesk mapping: a ticket per media (new_per_media) in the group, the field set.
    assert!(
        stdout.contains("helpdesk (Zendesk simulator at"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"WhatsApp media from Jürgen Weiß\" (new) · requester "),
        "{stdout}"
    );
    assert!(
        stdout.contains("Acme media link              = http://127.0.0.1:"),
        "{stdout}"
    );
    // Three voice notes (two via Meta, one via 360dialog) announced to a stand-in receiver.
    assert!(
        stdout.contains("notifications.webhook (a receiver at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains(": 3 signed POST(s)"), "{stdout}");
    // Nothing reached the real services: their credentials were swapped out.
    assert!(
        !stdout.contains("pat-real-acme")
            && !stdout.contains("hooks.acme.example")
            && !stdout.contains("real-zendesk-token-acme"),
        "{stdout}"
    );
}

/// `wa2crm sandbox --serve` as a place to practise: its configuration makes `check` green and
/// every command work against it, its printed curl recipe works as printed (a line appears for
/// the job it makes), and SIGTERM removes its directory as Ctrl-C does.
#[test]
fn sandbox_serve_is_a_place_to_practise() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let mut child = Command::new(wa2crm_e2e::binary())
        .args(["sandbox", "--serve"])
        .env_remove("WA2CRM_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    // Lines until one satisfies `done`, within a deadline.
    let mut until = |what: &str, done: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if done(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("never: {what}\n{}", seen.join("\n")),
            }
        }
    };
    let config_line = until("the configuration's path", &|l| {
        l.starts_with("Its configuration: ")
    });
    let config = config_line
        .trim_start_matches("Its configuration: ")
        .to_owned();
    let dir = std::path::Path::new(&config).parent().unwrap().to_owned();
    let mut recipe = Vec::new();
    until("the recipe", &|l| l.starts_with("A voice note to post"));
    loop {
        let line = until("the recipe's lines", &|_| true);
        if line.starts_with("360dialog's format") {
            break;
        }
        recipe.push(line);
    }
    // The console, with the printed one-time password, shows the samples' jobs.
    let console = until("the console's login", &|l| l.starts_with("The console: "));
    let url = console
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let password = console
        .split("one-time password ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let overview = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use wa2crm_e2e::{csrf_field, set_cookie};
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(format!("{url}/login")).send().await.unwrap();
        let login = set_cookie(&page, "__Host-wa2crm-login").unwrap();
        let html = page.text().await.unwrap();
        let csrf = csrf_field(&html).unwrap().to_owned();
        let r = http
            .post(format!("{url}/login"))
            .header("Cookie", login)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("user=sandbox&password={password}&csrf={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "the printed password logs in");
        let session = set_cookie(&r, "__Host-wa2crm-session").unwrap();
        let r = http
            .get(&url)
            .header("Cookie", session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    });
    assert!(
        overview.contains("data-count=\"done\"") && overview.contains("Signed in as"),
        "{overview}"
    );
    let cli = |args: &[&str]| {
        let out = Command::new(wa2crm_e2e::binary())
            .args(args)
            .args(["--config", &config])
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, out) = cli(&["check"]);
    assert!(
        ok,
        "check must be green on the sandbox's configuration:\n{out}"
    );
    assert!(out.contains("ok   sources.twilio:"), "{out}");
    let (ok, out) = cli(&["status"]);
    assert!(ok && out.contains("daemon: running since"), "{out}");
    let (ok, out) = cli(&["provision"]);
    assert!(ok && out.contains("nothing to do"), "{out}");

    // The recipe, run as printed.
    let script = recipe.join("\n");
    let posted = Command::new("bash")
        .args(["-ec", &script])
        .output()
        .unwrap();
    assert!(
        posted.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&posted.stderr)
    );
    let line = until("a line for the posted voice note", &|l| {
        l.starts_with("job ") && l.contains(" · voice · stored · audio/ogg")
    });
    assert!(line.contains(" · meta "), "{line}");

    let (ok, out) = cli(&["replay", "--all-dead"]);
    assert!(ok && out.contains("0 dead-lettered job(s)"), "{out}");
    let (ok, out) = cli(&["erase", "--phone", "+4915123456789", "--dry-run"]);
    assert!(ok, "{out}");
    assert!(dir.exists());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

/// Right after configuring, before any account exists: the sandbox runs the minimal example's
/// mapping with none of its secrets in place.
#[test]
fn sandbox_runs_a_mapping_whose_secrets_are_not_there_yet() {
    let minimal =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/wa2crm.minimal.toml");
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(wa2crm_e2e::binary())
        .args(["sandbox", "--config"])
        .arg(&minimal)
        .arg("--credentials-dir")
        .arg(empty.path())
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("for your mapping"), "{stdout}");
    assert!(
        stdout.contains("  hubspot (HubSpot): 3 contacts, 15 notes, 0 tasks"),
        "{stdout}"
    );
}
