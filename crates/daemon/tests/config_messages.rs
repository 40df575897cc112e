//! What an admin reads when the configuration is wrong: every problem at once, each with its
//! line, its dotted key, what is allowed and the closest allowed value — from the core sections,
//! the connectors' tables and TOML syntax alike — and no problem printed twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use wa2crm::config::{self, ConfigError, ConfigLocation};

const VALID: &str = r#"
[server]
public_url = "https://wa2crm.example.com"
[storage]
link_secret = "0123456789abcdef"
[sources.meta]
app_secret = "file-secret"
verify_token = "vt-4c1a"
access_token = "EAAGm0PX4ZCpsBA"
"#;

/// Load errors, or validation errors of what loaded, located in `toml`.
fn problems(toml: &str) -> Vec<ConfigError> {
    match config::load_str(toml, HashMap::new(), None) {
        Err(e) => e.0,
        Ok(c) => match config::validate(c) {
            Ok(_) => vec![],
            Err(e) => e.located(toml).0,
        },
    }
}

fn find<'a>(errors: &'a [ConfigError], key: &str) -> &'a ConfigError {
    errors
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no problem at {key}: {errors:#?}"))
}

#[test]
fn a_syntax_error_names_its_line() {
    let e = problems("[server]\npublic_url = \"https://x.example.com\"\n[queue\nworkers = 2\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, Some(3), "{e:?}");
    assert!(e[0].problem.contains("not valid TOML"), "{e:?}");
}

#[test]
fn every_core_section_reports_its_problem_at_once_in_an_admins_words() {
    let toml = format!(
        "{VALID}[queue]\nworkers = \"many\"\n[media]\nmax_byts = 5\n[policy]\nconsent = \"maybe\"\n\
         [[tags]]\nname = \"x\"\nkinds = [\"voicenote\"]\n[sever]\nlisten = \"x\"\n"
    );
    let e = problems(&toml);
    assert_eq!(e.len(), 5, "{e:#?}");
    let workers = find(&e, "queue.workers");
    assert_eq!(
        workers.problem,
        "is string \"many\", but must be an integer"
    );
    assert_eq!(workers.line, Some(11));
    let typo = find(&e, "media.max_byts");
    assert!(
        typo.problem.contains("did you mean \"max_bytes\"?"),
        "{typo:?}"
    );
    assert_eq!(typo.line, Some(13));
    let consent = find(&e, "policy.consent");
    assert!(
        consent
            .problem
            .contains("\"maybe\" is not one of none, allowlist, crm_field"),
        "{consent:?}"
    );
    let kind = find(&e, "tags[0].kinds[0]");
    assert!(
        kind.problem.contains("did you mean \"voice\"?") && !kind.problem.contains("enum"),
        "{kind:?}"
    );
    assert_eq!(kind.line, Some(18));
    let section = find(&e, "sever");
    assert!(
        section.problem.contains("did you mean \"server\"?"),
        "{section:?}"
    );
}

#[test]
fn a_connector_key_of_the_wrong_type_is_named() {
    let toml = format!(
        "{VALID}[connectors.hs]\ntype = \"hubspot\"\ntoken = \"pat-na1-0c1e\"\n\
         contact_key = \"whatsapp_id\"\nnote = \"yes\"\n[connectors.hs.fields]\nfile_url = \"u\"\n"
    );
    let e = problems(&toml);
    let note = find(&e, "connectors.hs.note");
    assert_eq!(note.problem, "is string \"yes\", but must be true or false");
    assert_eq!(note.line, Some(14));
}

#[test]
fn a_missing_key_is_shown_at_its_table_with_where_a_secret_may_go() {
    let e = problems("[sources.meta]\napp_secret = \"a-real-one\"\n");
    let missing = find(&e, "sources.meta.verify_token");
    assert_eq!(missing.line, Some(1));
    assert!(
        missing
            .problem
            .contains("/etc/wa2crm/secrets/sources.meta.verify_token"),
        "{missing:?}"
    );
}

#[test]
fn what_cannot_work_is_refused_with_the_fix() {
    let e = problems(&format!(
        "{VALID}[queue]\nurl = \"sqlite://var/lib/wa2crm/queue.db\"\nretry_max_seconds = 1\n\
         [sources.twilio]\naccount_sid = \"AC0123\"\nauth_token = \"...\"\n\
         webhook_url = \"wa2crm.example.com/webhooks/twilio\"\n\
         [[routes]]\nsource = \"twilio\"\nnumber = \"0151 2345678\"\nconnectors = []\n\
         [[routes]]\nsource = \"meta\"\nnumber = \"+49 151 2345678\"\nconnectors = []\n"
    ));
    assert!(
        find(&e, "queue.url")
            .problem
            .contains("sqlite:///var/lib/wa2crm/queue.db"),
        "{e:#?}"
    );
    assert!(
        find(&e, "sources.twilio.auth_token")
            .problem
            .contains("placeholder")
    );
    assert!(
        find(&e, "sources.twilio.webhook_url")
            .problem
            .contains("like https://wa2crm.example.com/webhooks/twilio"),
        "{e:#?}"
    );
    let national = find(&e, "routes[0].number");
    assert!(
        national.problem.contains("like +49 151 2345678"),
        "{national:?}"
    );
    let meta = find(&e, "routes[1].number");
    assert!(meta.problem.contains("phone_number_id"), "{meta:?}");
    assert_eq!(meta.line, Some(23));
    assert!(
        find(&e, "queue.retry_max_seconds")
            .problem
            .contains("the first wait is 5 s"),
        "{e:#?}"
    );
    let http = problems(&VALID.replace("https://wa2crm", "http://wa2crm"));
    assert!(
        find(&http, "server.public_url")
            .problem
            .contains("plain http")
    );
}

#[test]
fn a_missing_file_says_which_and_what_to_do_once() {
    let location = ConfigLocation::new(PathBuf::from("/nonexistent/wa2crm.toml"), None);
    let e = location.load().unwrap_err();
    let report = location.report(&e);
    assert!(
        report.starts_with("/nonexistent/wa2crm.toml has 1 problem(s)"),
        "{report}"
    );
    assert!(report.contains("wa2crm.example.toml"), "{report}");
    assert_eq!(report.matches("does not exist").count(), 1, "{report}");
}

#[test]
fn credential_files_are_read_from_the_directory_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wa2crm.toml");
    std::fs::write(&file, VALID.replace("app_secret = \"file-secret\"\n", "")).unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("sources.meta.app_secret"), "from-a-file\n").unwrap();
    let without = ConfigLocation {
        file: file.clone(),
        credentials_dirs: Vec::new(),
    };
    let e = without.load().unwrap_err();
    assert_eq!(e.0[0].key, "sources.meta.app_secret", "{e:?}");
    let c = ConfigLocation::new(file, Some(&secrets)).load().unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        c.sources.meta.unwrap().app_secret.expose_secret(),
        "from-a-file"
    );
}
