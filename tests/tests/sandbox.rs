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
    let done = stdout
        .lines()
        .filter(|l| l.starts_with("job ") && l.ends_with(" · done"))
        .count();
    assert_eq!(done, 14, "{stdout}");
    assert!(stdout.contains("via 360dialog -> 200 OK"), "{stdout}");
    assert!(stdout.contains("via Twilio -> 200 OK"), "{stdout}");
    assert!(
        stdout.contains(" · d360 · voice · +4915123456789 · done"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" · twilio · image · +4915123456789 · done"),
        "{stdout}"
    );
    for kind in ["voice", "audio", "video", "image", "document", "sticker"] {
        assert!(
            stdout.contains(&format!(" · {kind} · +4915123456789 · done")),
            "{kind}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("the same webhook again -> 200 OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("with a forged signature -> 401 Unauthorized"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mime_type audio/ogg  size_bytes 6542  duration 3.2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mime_type audio/amr  size_bytes 4806  duration 3.000 s"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("file_url http://127.0.0.1:").count(),
        14,
        "{stdout}"
    );
    assert!(stdout.contains("caption Die Tür ist kaputt"), "{stdout}");
    // The example's tag rules: the video's caption, the voice notes' length.
    assert!(
        stdout.contains("caption Die Tür ist kaputt\n    tags product-issue\n"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("    tags quick-voice-note\n").count(),
        3,
        "two voice notes via Meta and one via 360dialog: {stdout}"
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
    assert!(stdout.contains("14 timeline note(s)"), "{stdout}");
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
    // And the example's Salesforce mapping: one media record per sample, looked up to the Contact.
    assert!(
        stdout.contains("salesforce (Salesforce simulator at http://127.0.0.1:"),
        "{stdout}"
    );
    let records = stdout
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("WhatsApp_Media__c a01") && l.contains("→ Contact 003")
        })
        .count();
    assert_eq!(records, 14, "{stdout}");
    assert!(
        stdout.contains("(WhatsApp_Id__c = +4915123456789, \"Jürgen Weiß\")"),
        "{stdout}"
    );
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
    // Three voice notes (two via Meta, one via 360dialog) announced to a stand-in receiver.
    assert!(
        stdout.contains("notifications.webhook (a receiver at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains(": 3 signed POST(s)"), "{stdout}");
    // Nothing reached the real services: their credentials were swapped out.
    assert!(
        !stdout.contains("pat-real-acme") && !stdout.contains("hooks.acme.example"),
        "{stdout}"
    );
}
