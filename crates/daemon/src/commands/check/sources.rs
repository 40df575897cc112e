//! `check`'s WhatsApp lines: each configured source's credentials tried against its provider,
//! with one call each, and every host that does not answer named within [`DEADLINE`] with the
//! key that set it.
//!
//! - Meta: `GET /{version}/{phone_number_id}` for each number a route names (the token must
//!   read it: that is how media of that number is fetched), or `GET /{version}/me` when no
//!   route names one.
//! - 360dialog: `GET /v1/configs/webhook`, which needs the key and says where 360dialog sends
//!   the number's webhooks.
//! - Twilio: `GET /2010-04-01/Accounts/{AccountSid}.json` with the account's credentials.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use wa2crm_core::Source;

use super::Report;
use crate::config::{Config, D360SourceConfig, MetaSourceConfig, TwilioSourceConfig};

/// How long `check` waits for a provider or CRM to answer one call.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// The client of every call `check` makes itself.
pub fn client() -> anyhow::Result<reqwest::Client> {
    wa2crm_rest::client::http_client(DEADLINE).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Why a call got no answer, naming the host and the key that set it.
pub fn unreachable(key: &str, url: &str, e: &reqwest::Error) -> String {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| url.to_owned());
    let why = if e.is_timeout() {
        format!("no answer within {} s", DEADLINE.as_secs())
    } else {
        // The innermost cause says it plainly: "Connection refused", "failed to lookup address".
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    };
    format!("{key}: cannot reach {host} ({why}); is the address right, and reachable from here?")
}

/// Checks every configured source, adding a line each to `report`.
pub async fn check(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let http = client()?;
    if let Some(meta) = &config.sources.meta {
        meta_lines(&http, meta, config, report).await;
    }
    if let Some(d360) = &config.sources.d360 {
        d360_line(&http, d360, config, report).await;
    }
    if let Some(twilio) = &config.sources.twilio {
        twilio_line(&http, twilio, report).await;
    }
    Ok(())
}

/// Graph's error message, or the status.
fn graph_message(body: &Value, status: StatusCode) -> String {
    body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"))
}

async fn meta_lines(
    http: &reqwest::Client,
    meta: &MetaSourceConfig,
    config: &Config,
    report: &mut Report,
) {
    let Some(token) = &meta.access_token else {
        return; // validation already refused this
    };
    let base = format!(
        "{}/{}",
        meta.graph_url.trim_end_matches('/'),
        meta.api_version
    );
    let mut numbers: Vec<(String, &str)> = config
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.source == Source::Meta && r.number.trim() != "*")
        .map(|(i, r)| (format!("routes[{i}].number"), r.number.trim()))
        .collect();
    numbers.dedup_by(|a, b| a.1 == b.1);
    let asks: Vec<(String, String)> = if numbers.is_empty() {
        vec![("sources.meta.access_token".into(), "me".into())]
    } else {
        numbers
            .into_iter()
            .map(|(key, n)| (key, n.to_owned()))
            .collect()
    };
    for (key, id) in asks {
        let url = format!("{base}/{id}");
        let answer = http
            .get(&url)
            .bearer_auth(token.expose_secret())
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                report.fail(unreachable("sources.meta.graph_url", &url, &e));
                return;
            }
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        match status {
            s if s.is_success() && id == "me" => report.ok(format!(
                "sources.meta: the access token works (it belongs to {}); no route names a \
                 phone_number_id to look up",
                body["name"].as_str().unwrap_or("an unnamed user")
            )),
            s if s.is_success() => report.ok(format!(
                "sources.meta: {key} {id} is {} ({}); the token reads its media",
                body["display_phone_number"].as_str().unwrap_or("?"),
                body["verified_name"].as_str().unwrap_or("no verified name"),
            )),
            StatusCode::UNAUTHORIZED => {
                report.fail(format!(
                    "sources.meta.access_token: Meta refused the token: {}",
                    graph_message(&body, status)
                ));
                return;
            }
            s if s.is_client_error() => report.fail(format!(
                "{key}: the access token cannot read phone_number_id {id}: {} (is it the \
                 number's id from WhatsApp Manager, and does the token's system user have the \
                 WhatsApp account assigned?)",
                graph_message(&body, status)
            )),
            s => report.fail(format!(
                "sources.meta.graph_url: unexpected answer {s} from {url}: {}",
                graph_message(&body, status)
            )),
        }
    }
}

async fn d360_line(
    http: &reqwest::Client,
    d360: &D360SourceConfig,
    config: &Config,
    report: &mut Report,
) {
    let url = format!("{}/v1/configs/webhook", d360.base_url.trim_end_matches('/'));
    let response = match http
        .get(&url)
        .header("D360-API-KEY", d360.api_key.expose_secret())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return report.fail(unreachable("sources.d360.base_url", &url, &e)),
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return report.fail(format!(
            "sources.d360.api_key: 360dialog refused the key (HTTP {status}); generate one for \
             this number in the 360dialog Hub"
        ));
    }
    if !status.is_success() {
        return report.fail(format!(
            "sources.d360.base_url: unexpected answer {status} from {url}"
        ));
    }
    let expected = config
        .server
        .public_url
        .as_deref()
        .map(|u| format!("{}/webhooks/d360", u.trim_end_matches('/')));
    match (body["url"].as_str(), expected) {
        (Some(set), Some(expected)) if set.trim_end_matches('/') == expected => report.ok(format!(
            "sources.d360: the key works; 360dialog sends this number's webhooks to {set}"
        )),
        (set, Some(expected)) => report.fail(format!(
            "sources.d360: 360dialog sends this number's webhooks to {}, not to {expected}: set \
             it with POST {}/v1/configs/webhook (README, \"360dialog\")",
            set.unwrap_or("nowhere"),
            d360.base_url.trim_end_matches('/')
        )),
        (_, None) => report.ok("sources.d360: the key works".into()),
    }
}

async fn twilio_line(http: &reqwest::Client, twilio: &TwilioSourceConfig, report: &mut Report) {
    let url = format!(
        "{}/2010-04-01/Accounts/{}.json",
        twilio.api_url.trim_end_matches('/'),
        twilio.account_sid
    );
    let response = match http
        .get(&url)
        .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose_secret()))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return report.fail(unreachable("sources.twilio.api_url", &url, &e)),
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    match status {
        s if s.is_success() && body["status"] == "active" => report.ok(format!(
            "sources.twilio: account {} ({}) accepts the auth token",
            twilio.account_sid,
            body["friendly_name"].as_str().unwrap_or("unnamed")
        )),
        s if s.is_success() => report.fail(format!(
            "sources.twilio.account_sid: the account is {}, not active",
            body["status"].as_str().unwrap_or("in an unknown state")
        )),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            report.fail(format!(
                "sources.twilio.auth_token: Twilio refused account_sid {} with this auth token \
                 ({}); both are on the Twilio Console's front page",
                twilio.account_sid,
                body["message"].as_str().unwrap_or(status.as_str())
            ))
        }
        s => report.fail(format!(
            "sources.twilio.api_url: unexpected answer {s} from {url}"
        )),
    }
}
