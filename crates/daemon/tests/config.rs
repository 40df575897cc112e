//! Configuration: layering (file, environment, credentials), validation naming each key, and the
//! shipped example staying in step with the types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use secrecy::ExposeSecret;
use wa2crm::config::{self, Config, ConfigError};

const EXAMPLE: &str = include_str!("../../../deploy/wa2crm.example.toml");
const MINIMAL_EXAMPLE: &str = include_str!("../../../deploy/wa2crm.minimal.toml");

const MINIMAL: &str = r#"
[server]
public_url = "https://wa2crm.example.com"
[storage]
link_secret = "0123456789abcdef"
[sources.meta]
app_secret = "file-secret"
verify_token = "vt"
access_token = "EAAGm0PX4ZCpsBA"
"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(toml: &str) -> Vec<ConfigError> {
    let c = config::load_str(toml, HashMap::new(), None).unwrap();
    match config::validate(c) {
        Ok(_) => vec![],
        Err(e) => e.0,
    }
}

fn keys(errors: &[ConfigError]) -> Vec<&str> {
    errors.iter().map(|e| e.key.as_str()).collect()
}

/// Every secret of the example, as an admin would provide them (variables here; files work
/// the same way).
const REAL_SECRETS: [(&str, &str); 12] = [
    ("WA2CRM__STORAGE__LINK_SECRET", "k3y-0f-at-least-16-chars"),
    ("WA2CRM__SOURCES__META__APP_SECRET", "4f0c9a1b2e"),
    ("WA2CRM__SOURCES__META__VERIFY_TOKEN", "verify-7d1e"),
    ("WA2CRM__SOURCES__META__ACCESS_TOKEN", "EAAGm0PX4ZCpsBA"),
    ("WA2CRM__SOURCES__D360__API_KEY", "d360-k3y"),
    ("WA2CRM__SOURCES__D360__WEBHOOK_HEADER_VALUE", "hdr-v4lue"),
    ("WA2CRM__SOURCES__TWILIO__AUTH_TOKEN", "tw1l10-t0ken"),
    ("WA2CRM__CONNECTORS__HUBSPOT__TOKEN", "pat-na1-3f0c1e2d"),
    (
        "WA2CRM__CONNECTORS__ZENDESK__API_TOKEN",
        "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",
    ),
    (
        "WA2CRM__CONNECTORS__SALESFORCE__CLIENT_ID",
        "3MVG9x.consumer-key",
    ),
    (
        "WA2CRM__CONNECTORS__ZOHO__CLIENT_SECRET",
        "7c1d9e3b5a2f4e6d8c0b1a2f3e4d5c6b",
    ),
    (
        "WA2CRM__CONNECTORS__ZOHO__REFRESH_TOKEN",
        "1000.9f8e7d6c5b4a39281706f5e4d3c2b1a0.1a2b3c4d5e6f7a8b",
    ),
];

#[test]
fn the_example_parses_and_its_placeholder_secrets_are_refused() {
    let c = config::load_str(EXAMPLE, HashMap::new(), None).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.queue.workers, 8);
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[1].number, "*");
    assert_eq!(c.tags[0].name, "product-issue");
    assert_eq!(c.connectors.len(), 4);
    assert_eq!(c.connectors["salesforce"]["fields"]["sha256"], "Sha256__c");
    let errors = config::validate(c).unwrap_err().0;
    // Copying the example blindly must not give anyone a guessable link secret, nor start with
    // "..." as a token.
    let mut refused = keys(&errors);
    refused.sort();
    assert_eq!(
        refused,
        vec![
            "connectors.hubspot.token",
            "connectors.salesforce.client_id",
            "connectors.zendesk.api_token",
            "connectors.zoho.client_secret",
            "connectors.zoho.refresh_token",
            "sources.d360.api_key",
            "sources.d360.webhook_header_value",
            "sources.meta.access_token",
            "sources.meta.app_secret",
            "sources.meta.verify_token",
            "sources.twilio.auth_token",
            "storage.link_secret",
        ],
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.problem.contains("openssl rand")));
    assert!(
        errors
            .iter()
            .filter(|e| e.key != "storage.link_secret")
            .all(|e| e.problem.contains("placeholder")),
        "{errors:?}"
    );
}

#[test]
fn the_example_with_real_secrets_is_valid() {
    let c = config::load_str(EXAMPLE, env(&REAL_SECRETS), None).unwrap();
    let v = config::validate(c).unwrap();
    assert_eq!(v.listen.port(), 8080);
    assert_eq!(v.max_body_bytes, 1_048_576);
    assert!(v.meta.is_some());
    assert!(matches!(v.d360, Some(config::D360Intake::Header { .. })));
    assert!(v.twilio.is_some());
    // Resolved once, here: what `run` builds from is typed.
    assert_eq!(v.public_url.as_str(), "https://wa2crm.example.com/");
    assert!(v.retention.is_none(), "the example keeps media forever");
}

/// Every storage scheme the storage opens is one validation accepts, and the other way round.
#[test]
fn validation_accepts_exactly_the_storage_schemes_the_storage_opens() {
    for scheme in wa2crm_media::store::SCHEMES {
        let url = match scheme {
            "file" => "file:///var/lib/wa2crm/media".to_owned(),
            s => format!("{s}://bucket/prefix"),
        };
        let c = config::load_str(
            EXAMPLE,
            env(&[
                REAL_SECRETS.as_slice(),
                &[("WA2CRM__STORAGE__URL", url.as_str())],
            ]
            .concat()),
            None,
        )
        .unwrap();
        assert!(
            config::validate(c).is_ok(),
            "{url} refused by validation, though the storage opens it"
        );
    }
    let c = config::load_str(
        EXAMPLE,
        env(&[
            REAL_SECRETS.as_slice(),
            &[("WA2CRM__STORAGE__URL", "ftp://host/media")],
        ]
        .concat()),
        None,
    )
    .unwrap();
    let errors = config::validate(c).unwrap_err().0;
    assert!(
        errors
            .iter()
            .any(|e| e.key == "storage.url" && e.problem.contains("s3a")),
        "{errors:?}"
    );
}

#[test]
fn a_360dialog_source_without_a_way_to_authenticate_its_webhooks_is_refused() {
    let base = |d360: &str| {
        format!(
            "[storage]\nlink_secret = \"k3y-0f-at-least-16-chars\"\n[server]\npublic_url = \"https://w.example.com\"\n[sources.d360]\napi_key = \"k\"\n{d360}"
        )
    };
    let problems = |d360: &str| -> Vec<String> {
        let c = config::load_str(&base(d360), HashMap::new(), None).unwrap();
        match config::validate(c) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    };
    let none = problems("");
    assert!(
        none.iter()
            .any(|p| p.starts_with("sources.d360: set webhook_secret")),
        "{none:?}"
    );
    assert!(problems("webhook_secret = \"partner\"").is_empty());
    assert!(problems("webhook_header = \"X-Token\"\nwebhook_header_value = \"v\"").is_empty());
    let half = problems("webhook_header = \"X-Token\"");
    assert!(half.iter().any(|p| p.contains("go together")), "{half:?}");
    let bad = problems("webhook_header = \"bad header\"\nwebhook_header_value = \"v\"");
    assert!(
        bad.iter()
            .any(|p| p.starts_with("sources.d360.webhook_header:")),
        "{bad:?}"
    );
}

#[test]
fn defaults_follow_the_contract() {
    let v = config::validate(config::load_str(MINIMAL, HashMap::new(), None).unwrap()).unwrap();
    let c: &Config = &v.config;
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.server.max_body_bytes, 1_048_576);
    assert_eq!(c.queue.url, "sqlite:///var/lib/wa2crm/queue.db");
    assert_eq!(c.queue.workers, 8);
    assert_eq!(c.storage.url, "file:///var/lib/wa2crm/media");
    assert_eq!(c.media.max_bytes, 104_857_600);
    assert_eq!(c.media.spool_dir.to_str(), Some("/var/cache/wa2crm"));
    let meta = c.sources.meta.as_ref().unwrap();
    assert_eq!(meta.graph_url, "https://graph.facebook.com");
    assert_eq!(meta.api_version, "v21.0");
}

#[test]
fn environment_overrides_the_file() {
    let c = config::load_str(
        MINIMAL,
        env(&[
            ("WA2CRM__QUEUE__WORKERS", "3"),
            ("WA2CRM__SERVER__LISTEN", "0.0.0.0:9000"),
            ("WA2CRM__SOURCES__META__APP_SECRET", "env-secret"),
            ("UNRELATED", "x"),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(c.queue.workers, 3);
    assert_eq!(c.server.listen, "0.0.0.0:9000");
    assert_eq!(
        c.sources.meta.unwrap().app_secret.expose_secret(),
        "env-secret"
    );
}

/// A secret from the environment is taken as the text it is: never read as a number (leading
/// zeros, `1e3`) or a boolean, while numbers and booleans still reach their keys.
#[test]
fn secrets_from_the_environment_are_never_coerced() {
    for secret in ["000123456789", "1e3", "true", "0x1F", "-0", "12.50"] {
        let c = config::load_str(
            MINIMAL,
            env(&[
                ("WA2CRM__SOURCES__META__APP_SECRET", secret),
                ("WA2CRM__QUEUE__WORKERS", "3"),
                ("WA2CRM__MEDIA__TRANSCODE", "true"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            c.sources.meta.unwrap().app_secret.expose_secret(),
            secret,
            "{secret}"
        );
        assert_eq!(c.queue.workers, 3);
        assert!(c.media.transcode);
    }
}

#[test]
fn credential_files_override_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sources.meta.app_secret"), "cred-secret\n").unwrap();
    std::fs::write(
        dir.path().join("storage.link_secret"),
        "0123456789abcdef0123",
    )
    .unwrap();
    // Not ours (no dotted key): ignored.
    std::fs::write(dir.path().join("README"), "x").unwrap();
    let c = config::load_str(
        MINIMAL,
        env(&[("WA2CRM__SOURCES__META__APP_SECRET", "env-secret")]),
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(
        c.sources.meta.as_ref().unwrap().app_secret.expose_secret(),
        "cred-secret",
        "the trailing newline of the file is not part of the secret"
    );
    assert_eq!(
        c.storage.link_secret.as_ref().unwrap().expose_secret(),
        "0123456789abcdef0123"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = config::load_str(
        EXAMPLE,
        env(&[("WA2CRM__SOURCES__META__APP_SECRET", "very-secret-value")]),
        None,
    )
    .unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("very-secret-value"), "{dump}");
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let errors = problems(
        r#"
[server]
listen = "localhost"
public_url = "ftp://x"
max_body_bytes = 10
[queue]
url = "mysql://db"
workers = 0
[storage]
url = "dropbox://x"
link_secret = "short"
[media]
spool_dir = "relative/dir"
[sources.meta]
app_secret = ""
verify_token = "vt"
api_version = "21"
[[routes]]
source = "twilio"
number = "not a number"
connectors = ["nope"]
[[tags]]
name = "long"
min_duration = "ten seconds"
[policy]
consent = "allowlist"
[retention]
audio = "forever"
[connectors.crm]
type = "pipedrive"
[connectors.crm.fields]
file_url = "url"
storage_uri = "url"
"#,
    );
    let got = keys(&errors);
    for key in [
        "server.listen",
        "server.public_url",
        "server.max_body_bytes",
        "queue.url",
        "queue.workers",
        "storage.url",
        "storage.link_secret",
        "media.spool_dir",
        "sources.meta.app_secret",
        "sources.meta.api_version",
        "routes[0].source",
        "routes[0].number",
        "routes[0].connectors",
        "tags[0].min_duration",
        "policy.consent_allowlist",
        "retention.audio",
        "connectors.crm.type",
        "connectors.crm.fields.storage_uri",
    ] {
        assert!(got.contains(&key), "{key} not reported; got {errors:#?}");
    }
    let text = errors
        .iter()
        .find(|e| e.key == "connectors.crm.type")
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        "connectors.crm.type: unknown connector type \"pipedrive\"; expected one of hubspot, salesforce, zendesk, zoho"
    );
}

#[test]
fn the_minimum_is_a_source_a_public_url_and_a_link_secret() {
    assert_eq!(
        keys(&problems("")),
        vec!["server.public_url", "storage.link_secret", "sources"]
    );
    let errors = problems("[sources.meta]\napp_secret = \"a\"\nverify_token = \"v\"\n");
    assert!(
        keys(&errors).contains(&"sources.meta.access_token"),
        "{errors:?}"
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_named() {
    let err = config::load_str(
        "[server]\nlisten = \"127.0.0.1:1\"\nmax_body = 5\n",
        HashMap::new(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_body"), "{err}");
    let err = config::load_str("[queue]\nworkers = \"many\"\n", HashMap::new(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("workers"), "{err}");
    let err = config::load_str(
        "[connectors.h]\ntype = \"hubspot\"\n[connectors.h.fields]\nlength = \"x\"\n",
        HashMap::new(),
        None,
    )
    .map(config::validate)
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("connectors.h.fields.length: unknown attribute \"length\""),
        "{err}"
    );
}

#[test]
fn a_connectors_secrets_come_from_credential_files_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("connectors.hubspot.token"),
        "pat-na1-from-file\n",
    )
    .unwrap();
    let toml = format!(
        "{MINIMAL}\n[connectors.hubspot]\ntype = \"hubspot\"\ntoken = \"placeholder\"\ncontact_key = \"whatsapp_id\"\n[connectors.hubspot.fields]\nfile_url = \"wa_media_url\"\n"
    );
    let c = config::load_str(&toml, HashMap::new(), Some(dir.path())).unwrap();
    assert_eq!(c.connectors["hubspot"]["token"], "pat-na1-from-file");
    assert!(config::validate(c).is_ok());
}

#[test]
fn tag_rules_are_compiled_and_each_mistake_is_named() {
    let with_tags = |tags: &str| format!("{MINIMAL}\n{tags}");
    let errors = problems(&with_tags(
        r#"
[[tags]]
name = "ok"
caption = "(?i)kaputt|broken"
[[tags]]
name = "bad;name"
caption = "(unclosed"
file_name = "*.pdf"
min_duration = "2m"
max_duration = "30s"
senders = ["not a number"]
"#,
    ));
    assert_eq!(
        keys(&errors),
        vec![
            "tags[1].name",
            "tags[1].caption",
            "tags[1].file_name",
            "tags[1].min_duration",
            "tags[1].senders"
        ],
        "{errors:?}"
    );
    assert!(errors[2].problem.contains("not a regular expression"));

    let c = config::load_str(
        &with_tags("[[tags]]\nname = \"long\"\nmin_duration = \"1m\"\nkinds = [\"voice\"]"),
        HashMap::new(),
        None,
    )
    .unwrap();
    let v = config::validate(c).unwrap();
    assert_eq!(v.tags.0.len(), 1);
    assert_eq!(
        v.tags.0[0].min_duration,
        Some(std::time::Duration::from_secs(60))
    );
}

/// Credentials and customers' data go only over https: a vendor or public URL in plain http is
/// refused at its key, unless it is on this machine (the sandbox, tests).
#[test]
fn vendor_and_public_urls_must_be_https_except_on_loopback() {
    let toml = "[server]\npublic_url = \"http://wa2crm.example.com\"\n\
         [storage]\nlink_secret = \"k3y-0f-at-least-16-chars\"\n\
         [sources.meta]\napp_secret = \"s\"\nverify_token = \"v\"\naccess_token = \"EAAG\"\n\
         graph_url = \"http://graph.facebook.com\"\n\
         [notifications.webhook]\nurl = \"http://hooks.example.com/x\"\nsecret = \"notify-secret-0123456\"\n\
         [connectors.hs]\ntype = \"hubspot\"\ntoken = \"pat-na1-x\"\nbase_url = \"http://api.hubapi.com\"\n\
         contact_key = \"whatsapp_id\"\nfields = { file_url = \"wa_media_url\" }\n"
        .to_owned();
    let errors = problems(&toml);
    for key in [
        "sources.meta.graph_url",
        "server.public_url",
        "notifications.webhook.url",
        "connectors.hs.base_url",
    ] {
        let e = errors
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("{key} not refused: {errors:?}"));
        assert!(e.problem.contains("plain http"), "{key}: {}", e.problem);
    }
    let loopback = toml
        .replace("http://graph.facebook.com", "http://127.0.0.1:9")
        .replace("http://wa2crm.example.com", "http://localhost:8080")
        .replace("http://hooks.example.com/x", "http://[::1]:9/x")
        .replace("http://api.hubapi.com", "http://127.0.0.1:9");
    assert_eq!(keys(&problems(&loopback)), Vec::<&str>::new());
}

/// The minimal example is complete once its secrets are in files named after their keys, as
/// its comments list them; the full example deletes nothing unless the admin asks.
#[test]
fn the_minimal_example_takes_its_secrets_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let listed: Vec<&str> = MINIMAL_EXAMPLE
        .lines()
        .filter_map(|l| l.strip_prefix("#   /etc/wa2crm/secrets/"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed.len(), 5, "{listed:?}");
    for key in &listed {
        std::fs::write(dir.path().join(key), "s3cr3t-value-0123456789\n").unwrap();
    }
    let c = config::load_str(MINIMAL_EXAMPLE, HashMap::new(), Some(dir.path())).unwrap();
    let v = config::validate(c).unwrap();
    assert!(v.meta.is_some());
    assert_eq!(v.config.connectors.len(), 1);
    assert!(v.config.retention.is_none());
    // Without the files, each missing secret is named.
    let e = config::load_str(MINIMAL_EXAMPLE, HashMap::new(), None).unwrap_err();
    assert!(
        e.0.iter().any(|e| e.key == "sources.meta.app_secret"),
        "{e}"
    );

    let example = config::load_str(EXAMPLE, env(&REAL_SECRETS), None).unwrap();
    assert!(
        example.retention.is_none(),
        "the full example must not turn on deletion"
    );
}

/// `policy.consent = "crm_field"` asks every connector for its consent field, read through the
/// connector's own typed configuration.
#[test]
fn consent_in_the_crm_needs_each_connectors_consent_field() {
    let with = |extra: &[(&str, &str)]| {
        let c = config::load_str(
            EXAMPLE,
            env(&[
                REAL_SECRETS.as_slice(),
                &[("WA2CRM__POLICY__CONSENT", "crm_field")],
                extra,
            ]
            .concat()),
            None,
        )
        .unwrap();
        match config::validate(c) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.key).collect::<Vec<_>>(),
        }
    };
    assert_eq!(
        with(&[]),
        [
            "connectors.hubspot.consent_field",
            "connectors.salesforce.consent_field",
            "connectors.zendesk.consent_field",
            "connectors.zoho.consent_field"
        ]
    );
    assert_eq!(
        with(&[("WA2CRM__CONNECTORS__HUBSPOT__CONSENT_FIELD", "wa_consent")]),
        [
            "connectors.salesforce.consent_field",
            "connectors.zendesk.consent_field",
            "connectors.zoho.consent_field"
        ]
    );
}

/// A real argon2id hash (of "console-password-123"), as `wa2crm hash-password` prints.
const CONSOLE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$S2LcPIuj8ajZXqPnjzBoww$rpj7MAauuCZd2upXoR3VhY6a4F0azbHsYP4frYeeyXE";

#[test]
fn the_console_needs_a_login_unless_it_is_served_on_loopback() {
    // Off by default: nothing is served.
    let v = config::validate(config::load_str(MINIMAL, HashMap::new(), None).unwrap()).unwrap();
    assert!(v.console.is_none());

    // On loopback without users: allowed (the pages say the console is open).
    let open = format!("{MINIMAL}\n[console]\nenabled = true\non = \"main\"\n");
    assert!(problems(&open).is_empty(), "{:?}", problems(&open));

    // On another address without users: refused, with what to do.
    let exposed = open.replace("[server]\n", "[server]\nlisten = \"0.0.0.0:8080\"\n");
    let p = problems(&exposed);
    assert_eq!(keys(&p), ["console.users"], "{p:?}");
    assert!(p[0].problem.contains("hash-password"), "{}", p[0].problem);

    // With a user whose hash is a real argon2 hash: fine anywhere.
    let with_user = format!("{exposed}users = {{ alice = \"{CONSOLE_HASH}\" }}\n");
    let v = config::validate(config::load_str(&with_user, HashMap::new(), None).unwrap()).unwrap();
    let console = v.console.unwrap();
    assert_eq!(console.users.keys().collect::<Vec<_>>(), ["alice"]);
    assert_eq!(console.session, std::time::Duration::from_secs(8 * 3600));
    // A password pasted where its hash belongs is refused, never kept.
    let pasted = format!("{exposed}users = {{ alice = \"hunter2hunter2\" }}\n");
    let p = problems(&pasted);
    assert_eq!(keys(&p), ["console.users.alice"], "{p:?}");
    assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
}

#[test]
fn the_console_on_the_admin_listener_needs_one() {
    let no_admin = format!("{MINIMAL}\n[console]\nenabled = true\n");
    let p = problems(&no_admin);
    assert_eq!(keys(&p), ["console.on"], "{p:?}");
    let admin = no_admin.replace(
        "[server]\n",
        "[server]\nadmin_listen = \"127.0.0.1:9090\"\n",
    );
    assert!(problems(&admin).is_empty(), "{:?}", problems(&admin));
    let bad = format!("{admin}session_minutes = 1\ndefault_country = \"Germany\"\n");
    let mut k = keys(&problems(&bad))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    k.sort();
    assert_eq!(k, ["console.default_country", "console.session_minutes"]);
}
