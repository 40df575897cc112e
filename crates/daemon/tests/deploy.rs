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
