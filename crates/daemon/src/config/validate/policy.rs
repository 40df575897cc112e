//! `[[tags]]`, `[policy]`, `[retention]` and `[notifications]`: what is taken, how it is tagged,
//! how long it is kept, who is told.

use secrecy::ExposeSecret;
use wa2crm_core::{Phone, TagRule, TagRules};

use super::problems::Problems;
use crate::config::{Config, Consent, TagRuleConfig};
use crate::retention::RetentionPolicy;

pub(super) fn notifications(p: &mut Problems, config: &Config) {
    if let Some(w) = &config.notifications.webhook {
        p.endpoint("notifications.webhook.url", &w.url);
        if w.secret.expose_secret().len() < 16 {
            p.add(
                "notifications.webhook.secret",
                "is shorter than 16 characters; receivers could not trust the signature. Generate one with: openssl rand -base64 32",
            );
        }
    }
}

pub(super) fn consent(p: &mut Problems, config: &Config) {
    if config.policy.consent == Consent::CrmField {
        let registry = crate::connectors::registry();
        for (name, table) in &config.connectors {
            // A table that does not parse is reported by its own validation.
            let settings =
                crate::connectors::factory_of(&registry, table).and_then(|f| f.settings(table));
            if settings.is_some_and(|s| s.consent_field.is_none()) {
                p.add(
                    format!("connectors.{name}.consent_field"),
                    "is missing: policy.consent = \"crm_field\" needs each connector's boolean consent field",
                );
            }
        }
    }
    if config.policy.consent == Consent::Allowlist && config.policy.consent_allowlist.is_none() {
        p.add(
            "policy.consent_allowlist",
            "consent = \"allowlist\" needs the path of the allowlist file",
        );
    }
}

pub(super) fn retention(p: &mut Problems, config: &Config) -> Option<RetentionPolicy> {
    match config.retention.as_ref().map(RetentionPolicy::from_config) {
        None => None,
        Some(Ok(policy)) => policy,
        Some(Err(problems)) => {
            for (key, problem) in problems {
                p.add(key, problem);
            }
            None
        }
    }
}

/// `[[tags]]` compiled: regular expressions, durations and numbers, each problem at its key.
pub(super) fn tag_rules(p: &mut Problems, configured: &[TagRuleConfig]) -> TagRules {
    let mut rules = Vec::new();
    for (i, tag) in configured.iter().enumerate() {
        let key = format!("tags[{i}]");
        let name = tag.name.trim();
        if name.is_empty() {
            p.add(format!("{key}.name"), "is empty");
        } else if name.contains(';') {
            // Tags travel `;`-joined into CRM fields (multi-select values).
            p.add(
                format!("{key}.name"),
                format!("{name:?} contains ';', which separates tags in CRM fields"),
            );
        }
        let mut regex = |field: &str, value: &Option<String>| {
            let value = value.as_deref()?;
            match regex::Regex::new(value) {
                Ok(r) => Some(r),
                Err(e) => {
                    p.add(
                        format!("{key}.{field}"),
                        format!("{value:?} is not a regular expression: {e}"),
                    );
                    None
                }
            }
        };
        let caption = regex("caption", &tag.caption);
        let file_name = regex("file_name", &tag.file_name);
        let min_duration = p.duration(&format!("{key}.min_duration"), tag.min_duration.as_deref());
        let max_duration = p.duration(&format!("{key}.max_duration"), tag.max_duration.as_deref());
        if let (Some(min), Some(max)) = (min_duration, max_duration)
            && min > max
        {
            p.add(
                format!("{key}.min_duration"),
                "is longer than max_duration: the rule could never match",
            );
        }
        let mut senders = Vec::new();
        for s in &tag.senders {
            match Phone::parse(s) {
                Ok(phone) => senders.push(phone),
                Err(e) => p.add(format!("{key}.senders"), e.to_string()),
            }
        }
        rules.push(TagRule {
            name: name.to_owned(),
            caption,
            kinds: tag.kinds.clone(),
            senders,
            min_duration,
            max_duration,
            file_name,
        });
    }
    TagRules(rules)
}
