//! `wa2crm sandbox` with nothing configured: every bundled sample goes through the real daemon
//! into storage (one each also through 360dialog and Twilio), and the redelivery and the forged
//! signature are refused as the contract says.
#![allow(clippy::unwrap_used)]

#[test]
fn sandbox_stores_every_sample_with_its_metadata_and_link() {
    let out = std::process::Command::new(wa2crm_e2e::binary())
        .arg("sandbox")
        .env("WA2CRM_CONFIG", "/nonexistent/wa2crm.toml")
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
        stdout.contains("hubspot (simulator at http://127.0.0.1:"),
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
        stdout.contains("salesforce (simulator at http://127.0.0.1:"),
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
