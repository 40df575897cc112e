//! Configuration: the settings the daemon runs with (defaults filled in), secrets masked, and
//! `wa2crm check`'s findings for that same configuration, run on request.
//!
//! Masking goes by name, not by type alone: `SecretString`s print as `[REDACTED]` already, and
//! every value under a name that sounds secret (token, secret, password, key, hash, auth…) is
//! replaced, as is the password part of any URL. A connector's table (plain JSON) gets the same.

use std::sync::{Arc, OnceLock};

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use regex::Regex;

use super::Console;
use super::auth::Session;
use super::page::{self, csrf, when};

/// The last check's findings: when, and each line with whether it was fine.
pub type Findings = (i64, Vec<(bool, String)>);

fn secret_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?i)^(\s*"?)([a-z0-9_]*(secret|token|password|passwd|api_key|apikey|private_key|credential|hash|auth|access_key|key_id|sas|signature)[a-z0-9_]*)("?\s*[:=]\s*)(.+?)(,?)$"#,
        )
        .expect("the pattern is a valid regex")
    })
}

fn url_password() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"://([^/@\s:]*):[^@/\s]+@").expect("the pattern is a valid regex")
    })
}

/// `text` with every value under a secret-sounding name, and every URL password, masked.
pub fn mask(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = url_password().replace_all(line, "://$1:***@");
            match secret_name().captures(&line) {
                Some(c) if !matches!(&c[5], "None" | "null" | "{" | "[" | "{}" | "[]") => {
                    format!("{}{}{}••••••{}", &c[1], &c[2], &c[4], &c[6])
                }
                _ => line.into_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The running configuration, section by section, masked.
fn sections(console: &Console) -> Vec<(String, String)> {
    let c = &console.config;
    let mut out = vec![
        ("server".to_owned(), format!("{:#?}", c.server)),
        ("queue".into(), format!("{:#?}", c.queue)),
        ("storage".into(), format!("{:#?}", c.storage)),
        ("media".into(), format!("{:#?}", c.media)),
        ("sources".into(), format!("{:#?}", c.sources)),
        ("routes".into(), format!("{:#?}", c.routes)),
        ("tags".into(), format!("{:#?}", c.tags)),
        ("policy".into(), format!("{:#?}", c.policy)),
        ("retention".into(), format!("{:#?}", c.retention)),
        ("notifications".into(), format!("{:#?}", c.notifications)),
        ("logging".into(), format!("{:#?}", c.logging)),
        ("console".into(), format!("{:#?}", c.console)),
    ];
    for (name, table) in &c.connectors {
        out.push((
            format!("connectors.{name}"),
            serde_json::to_string_pretty(table).unwrap_or_default(),
        ));
    }
    out.into_iter().map(|(k, v)| (k, mask(&v))).collect()
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
) -> Response {
    let findings = console
        .last_check
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let body = html! {
        h2 { "Check" }
        p { "What " code { "wa2crm check" } " finds for this configuration: the queue, the storage, each WhatsApp source's credentials and each connector's mapping against the live CRM." }
        form method="post" action="/console/settings/check" {
            (csrf(&session))
            button type="submit" { "Run check" }
        }
        @match &findings {
            None => p class="muted" { "Not run since the daemon started." },
            Some((at, lines)) => {
                p { "Run at " (when(*at)) ": "
                    @let problems = lines.iter().filter(|(ok, _)| !ok).count();
                    @if problems == 0 { span class="ok" data-check="ok" { "no problem found." } }
                    @else { span class="error" data-check="problems" { (problems) " problem(s)." } }
                }
                ul {
                    @for (ok, line) in lines {
                        li { @if *ok { span class="ok" { "ok " } } @else { span class="error" { "FAIL " } } (line) }
                    }
                }
            }
        }
        h2 { "Effective settings" }
        p class="muted" { "Defaults filled in; secrets masked (••••••). Change them in the configuration file and restart." }
        @for (name, text) in sections(&console) {
            h3 { (name) }
            pre class="report" { (text) }
        }
    };
    page::frame(
        &console,
        &session,
        "/console/settings",
        "Configuration",
        body,
    )
    .into_response()
}

pub async fn check(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
) -> Response {
    let findings =
        match crate::commands::check::run(&console.config, "of the running daemon", false).await {
            Ok(report) => report.lines,
            Err(e) => vec![(false, format!("the check stopped: {e:#}"))],
        };
    tracing::info!(user = %session.user, problems = findings.iter().filter(|(ok, _)| !ok).count(), "Check run from the console.");
    *console
        .last_check
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((wa2crm_core::state::now_ms(), findings));
    axum::response::Redirect::to("/console/settings").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_masked() {
        let text = "    url: \"postgres://wa2crm:hunter2@db/wa2crm\",\n    client_secret: \"abc\",\n    \"api_token\": \"xyz\",\n    listen: \"127.0.0.1:8080\",\n    access_token: None,\n    \"aws_secret_access_key\": \"AKIAsecret\"";
        let masked = mask(text);
        for secret in ["hunter2", "abc", "xyz", "AKIAsecret"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("postgres://wa2crm:***@db/wa2crm"));
        assert!(masked.contains("listen: \"127.0.0.1:8080\""));
        assert!(masked.contains("access_token: None"));
    }
}
