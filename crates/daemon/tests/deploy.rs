//! The systemd unit keeps the directives the daemon relies on.

const UNIT: &str = include_str!("../../../deploy/wa2crm.service");

fn directive(name: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .collect()
}

#[test]
fn unit_is_notify_with_watchdog_state_and_hardening() {
    assert_eq!(directive("Type"), vec!["notify"]);
    assert_eq!(directive("WatchdogSec").len(), 1);
    assert_eq!(directive("StateDirectory"), vec!["wa2crm"]);
    assert_eq!(directive("CacheDirectory"), vec!["wa2crm"]);
    assert_eq!(directive("KillSignal"), vec!["SIGTERM"]);
    assert!(directive("ExecStart")[0].contains("wa2crm run"));
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
    ] {
        assert_eq!(directive(hardening).len(), 1, "{hardening}");
    }
    assert!(
        UNIT.contains("LoadCredential=sources.meta.app_secret:"),
        "the unit shows how to pass a secret as a credential"
    );
}

/// What the unit bounds and denies, and systemd's own verdict on it: `systemd-analyze security`
/// rates the unit's exposure 2.0 or less (README records the figure).
#[test]
fn unit_bounds_resources_denies_metadata_addresses_and_rates_low_exposure() {
    let deny = directive("IPAddressDeny").join(" ");
    for range in ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"] {
        assert!(deny.contains(range), "IPAddressDeny lacks {range}: {deny}");
    }
    for bound in ["MemoryMax", "TasksMax", "LimitNOFILE"] {
        assert_eq!(directive(bound).len(), 1, "{bound}");
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("wa2crm.service");
    std::fs::write(&unit, UNIT).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("exposure level for wa2crm.service:")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(level <= 2.0, "exposure {level}:\n{text}");
}
