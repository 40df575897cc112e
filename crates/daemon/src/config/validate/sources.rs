//! `[sources.*]` and `[[routes]]`: where events come from, how their webhooks are trusted, and
//! which connectors serve which number.

use wa2crm_core::{Phone, Source};

use super::problems::Problems;
use super::{D360Intake, MetaIntake, TwilioIntake};
use crate::config::Config;

/// The webhook intakes of the configured sources.
pub(super) struct Intakes {
    pub meta: Option<MetaIntake>,
    pub d360: Option<D360Intake>,
    pub twilio: Option<TwilioIntake>,
}

pub(super) fn sources(p: &mut Problems, config: &Config) -> Intakes {
    let sources = &config.sources;
    if sources.meta.is_none() && sources.d360.is_none() && sources.twilio.is_none() {
        p.add(
            "sources",
            "no source configured: add [sources.meta], [sources.d360] or [sources.twilio]",
        );
    }
    if let Some(meta) = &sources.meta {
        p.secret("sources.meta.app_secret", &meta.app_secret);
        p.secret("sources.meta.verify_token", &meta.verify_token);
        match &meta.access_token {
            Some(t) => p.secret("sources.meta.access_token", t),
            None => p.add(
                "sources.meta.access_token",
                "is missing: media is downloaded from the Graph API with it",
            ),
        }
        p.endpoint("sources.meta.graph_url", &meta.graph_url);
        let v = meta.api_version.strip_prefix('v').unwrap_or("");
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !v
            .split_once('.')
            .is_some_and(|(a, b)| numeric(a) && numeric(b))
        {
            p.add(
                "sources.meta.api_version",
                format!(
                    "{:?} is not a Graph API version like \"v21.0\"",
                    meta.api_version
                ),
            );
        }
    }
    let d360 = sources.d360.as_ref().and_then(|d| {
        p.secret("sources.d360.api_key", &d.api_key);
        p.endpoint("sources.d360.base_url", &d.base_url);
        d360_intake(p, d)
    });
    if let Some(t) = &sources.twilio {
        if !t.account_sid.starts_with("AC") {
            p.add(
                "sources.twilio.account_sid",
                format!("{:?} does not start with AC", t.account_sid),
            );
        }
        p.secret("sources.twilio.auth_token", &t.auth_token);
        p.endpoint("sources.twilio.webhook_url", &t.webhook_url);
        p.endpoint("sources.twilio.api_url", &t.api_url);
    }

    Intakes {
        meta: sources.meta.as_ref().map(|m| MetaIntake {
            app_secret: m.app_secret.clone(),
            verify_token: m.verify_token.clone(),
        }),
        d360,
        twilio: sources.twilio.as_ref().map(|t| TwilioIntake {
            auth_token: t.auth_token.clone(),
            webhook_url: t.webhook_url.clone(),
        }),
    }
}

pub(super) fn routes(p: &mut Problems, config: &Config) {
    let sources = &config.sources;
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        let configured = match route.source {
            Source::Meta => sources.meta.is_some(),
            Source::D360 => sources.d360.is_some(),
            Source::Twilio => sources.twilio.is_some(),
        };
        if !configured {
            p.add(
                format!("{key}.source"),
                format!("{} has no [sources.{}] section", route.source, route.source),
            );
        }
        let any = route.number.trim() == "*";
        if route.number.trim().is_empty() {
            p.add(format!("{key}.number"), "is empty");
        } else if any {
        } else if route.source == Source::Twilio {
            if let Some(problem) = twilio_number_problem(&route.number) {
                p.add(format!("{key}.number"), problem);
            }
        } else if let Some(problem) = phone_number_id_problem(route.source, &route.number) {
            p.add(format!("{key}.number"), problem);
        }
        if route.connectors.is_empty() && route.number.trim() != "*" {
            p.add(
                format!("{key}.connectors"),
                "names no connector (only a catch-all route, number = \"*\", may stop events)",
            );
        }
        for c in &route.connectors {
            if !config.connectors.contains_key(c) {
                p.add(
                    format!("{key}.connectors"),
                    format!("{c:?} is not a [connectors.{c}] section"),
                );
            }
        }
    }
}

/// How `POST /webhooks/d360` will know 360dialog, checked and built in one pass. Unauthenticated
/// intake would let anyone make wa2crm look up made-up media ids, and 360dialog blocks a number's
/// media for an hour after five failed lookups.
fn d360_intake(p: &mut Problems, d: &crate::config::D360SourceConfig) -> Option<D360Intake> {
    match (
        &d.webhook_secret,
        &d.webhook_header,
        &d.webhook_header_value,
    ) {
        (Some(secret), None, None) => {
            p.secret("sources.d360.webhook_secret", secret);
            Some(D360Intake::Signature(secret.clone()))
        }
        (None, Some(name), Some(value)) => {
            p.secret("sources.d360.webhook_header_value", value);
            match axum::http::HeaderName::from_bytes(name.trim().as_bytes()) {
                Ok(name) => Some(D360Intake::Header {
                    name,
                    value: value.clone(),
                }),
                Err(_) => {
                    p.add(
                        "sources.d360.webhook_header",
                        format!("{name:?} is not a header name"),
                    );
                    None
                }
            }
        }
        (None, None, None) => {
            p.add(
                "sources.d360",
                "set webhook_secret (360dialog's signature) or webhook_header and webhook_header_value \
                 (a header configured with the webhook URL): without either, anyone could post events",
            );
            None
        }
        (Some(_), _, _) => {
            p.add(
                "sources.d360.webhook_secret",
                "set either webhook_secret or webhook_header/webhook_header_value, not both",
            );
            None
        }
        (None, _, _) => {
            p.add(
                "sources.d360",
                "webhook_header and webhook_header_value go together",
            );
            None
        }
    }
}

/// A Twilio route's number: the business number in +E164, as Twilio's `To` carries it.
fn twilio_number_problem(number: &str) -> Option<String> {
    let n = number.trim().trim_start_matches("whatsapp:");
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    if !n.starts_with('+') && !n.starts_with("00") && digits.starts_with('0') {
        // A national number: the country cannot be known, the form can.
        let national = n.trim_start_matches('0');
        return Some(format!(
            "{number:?} is written the national way; write it with its country code instead of \
             the leading 0, like +49 {national} for a German number"
        ));
    }
    Phone::parse(number).err().map(|e| e.to_string())
}

/// A Meta or 360dialog route names the number by its `phone_number_id` (the webhook's
/// `metadata.phone_number_id`), a number Meta assigns, not the phone number itself.
fn phone_number_id_problem(source: Source, number: &str) -> Option<String> {
    let n = number.trim();
    if n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let looks_like_phone = n.starts_with('+')
        || n.starts_with("whatsapp:")
        || n.chars()
            .all(|c| c.is_ascii_digit() || " -().+".contains(c));
    Some(if looks_like_phone {
        format!(
            "{number:?} is a phone number; {source} routes name the number by its \
             phone_number_id (digits only, shown in WhatsApp Manager under Phone numbers, and in \
             every webhook as metadata.phone_number_id)"
        )
    } else {
        format!("{number:?} is not a phone_number_id (digits only)")
    })
}
