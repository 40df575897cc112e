//! `wa2crm sandbox` with nothing configured: every sample kind queued once, the redelivery and the
//! forged signature refused as the contract says.
#![allow(clippy::unwrap_used)]

#[test]
fn sandbox_queues_one_job_per_sample_kind() {
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
    for kind in ["voice", "audio", "video", "image", "document", "sticker"] {
        let queued = stdout
            .lines()
            .filter(|l| l.contains(" queued ") && l.split_whitespace().nth(2) == Some(kind))
            .count();
        assert_eq!(queued, 1, "{kind} in:\n{stdout}");
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
        stdout.contains("queue: 6 job(s) queued, 6 in all"),
        "{stdout}"
    );
    assert!(stdout.contains("Vertrag / vertrag-4711.pdf"), "{stdout}");
}
