//! Configuration problems in an admin's words: every section checked on its own, so each
//! problem is reported, at its dotted key, with what is allowed and the closest allowed value;
//! TOML syntax errors with their line.

use std::collections::BTreeMap;
use std::fmt;

use wa2crm_core::config_problem::{did_you_mean, explain_serde};

use super::{
    ConsoleConfig, D360SourceConfig, LoggingConfig, MediaConfig, MetaSourceConfig,
    NotificationsConfig, PolicyConfig, QueueConfig, RetentionConfig, RouteConfig, ServerConfig,
    StorageConfig, TagRuleConfig, TwilioSourceConfig,
};

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `sources.meta.app_secret` or `connectors.hubspot.fields.tags`.
    pub key: String,
    pub problem: String,
    /// The line of the file the key is on, when it is in the file.
    pub line: Option<usize>,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
            line: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.problem),
            None => write!(f, "{}: {}", self.key, self.problem),
        }
    }
}

/// `value` as a `T`, or its problem at the dotted key under `section` (serde_path_to_error
/// finds the path inside it, since config-rs names only the section).
pub(super) fn typed<T: serde::de::DeserializeOwned>(
    value: config::Value,
    section: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.inner().to_string();
        // config-rs may add its own ` for key …` naming the section only.
        let inner = inner.split(" for key `").next().unwrap_or_default();
        let path = e.path().to_string();
        let key = match path.as_str() {
            "." | "" => section.to_owned(),
            p if p.starts_with('[') => format!("{section}{p}"),
            p => format!("{section}.{p}"),
        };
        // A missing field is named relative to where config-rs started; its path is the table.
        let missing = between(inner, "missing configuration field", '"', '"')
            .or_else(|| between(inner, "missing field", '`', '`'))
            .map(|m| m.rsplit('.').next().unwrap_or(m));
        match missing {
            Some(leaf) => humane(&format!("missing configuration field \"{key}.{leaf}\"")),
            None => humane(&format!("{inner} for key `{key}`")),
        }
    })
}

/// Each section on its own, so every section's problem is reported, not only the first; the
/// path inside the section from serde_path_to_error, since config-rs names only the section.
pub(super) fn section_errors(c: &config::Config) -> Vec<ConfigError> {
    fn check<T: serde::de::DeserializeOwned>(
        c: &config::Config,
        section: &str,
        out: &mut Vec<ConfigError>,
    ) {
        if let Ok(value) = c.get::<config::Value>(section) {
            check_value::<T>(value, section, out);
        }
    }
    /// Each element of an array of tables on its own (`routes[0]`, `routes[1]`, …).
    fn check_each<T: serde::de::DeserializeOwned>(
        c: &config::Config,
        section: &str,
        out: &mut Vec<ConfigError>,
    ) {
        match c.get::<Vec<config::Value>>(section) {
            Ok(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    check_value::<T>(item, &format!("{section}[{i}]"), out);
                }
            }
            Err(config::ConfigError::NotFound(_)) => {}
            Err(e) => out.push(humane(&e.to_string())),
        }
    }
    fn check_value<T: serde::de::DeserializeOwned>(
        value: config::Value,
        section: &str,
        out: &mut Vec<ConfigError>,
    ) {
        if let Err(e) = typed::<T>(value, section) {
            out.push(e);
        }
    }
    let mut out = Vec::new();
    check::<ServerConfig>(c, "server", &mut out);
    check::<QueueConfig>(c, "queue", &mut out);
    check::<StorageConfig>(c, "storage", &mut out);
    check::<MediaConfig>(c, "media", &mut out);
    // Each source on its own: a secret missing from two of them is two problems.
    check::<MetaSourceConfig>(c, "sources.meta", &mut out);
    check::<D360SourceConfig>(c, "sources.d360", &mut out);
    check::<TwilioSourceConfig>(c, "sources.twilio", &mut out);
    if let Ok(sources) = c.get::<BTreeMap<String, config::Value>>("sources") {
        const SOURCES: [&str; 3] = ["meta", "d360", "twilio"];
        for key in sources.keys().filter(|k| !SOURCES.contains(&k.as_str())) {
            out.push(ConfigError::new(
                format!("sources.{key}"),
                format!(
                    "is not a source wa2crm knows{} (known keys: {})",
                    did_you_mean(key, &SOURCES),
                    SOURCES.join(", ")
                ),
            ));
        }
    }
    check_each::<RouteConfig>(c, "routes", &mut out);
    check_each::<TagRuleConfig>(c, "tags", &mut out);
    check::<PolicyConfig>(c, "policy", &mut out);
    check::<RetentionConfig>(c, "retention", &mut out);
    check::<NotificationsConfig>(c, "notifications", &mut out);
    check::<LoggingConfig>(c, "logging", &mut out);
    check::<ConsoleConfig>(c, "console", &mut out);
    check::<BTreeMap<String, serde_json::Value>>(c, "connectors", &mut out);
    // Keys at the top that are no section.
    if let Ok(top) = c
        .clone()
        .try_deserialize::<BTreeMap<String, config::Value>>()
    {
        for key in top.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                out.push(ConfigError::new(
                    key,
                    format!(
                        "is not a section wa2crm knows{} (known keys: {})",
                        did_you_mean(key, &SECTIONS),
                        SECTIONS.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

const SECTIONS: [&str; 13] = [
    "server",
    "queue",
    "storage",
    "media",
    "sources",
    "routes",
    "tags",
    "policy",
    "retention",
    "notifications",
    "logging",
    "console",
    "connectors",
];

/// The valid values of the enums a configuration names, by the type the message names.
fn variants(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "MediaKind" => &["audio", "voice", "video", "image", "document", "sticker"],
        "Source" => &["meta", "d360", "twilio"],
        "Consent" => &["none", "allowlist", "crm_field"],
        "OnExpiry" => &["clear", "delete"],
        "ConsoleListener" => &["admin", "main"],
        _ => return None,
    })
}

/// The text between the first pair of `a` and `b` after `after`.
fn between<'a>(s: &'a str, after: &str, a: char, b: char) -> Option<&'a str> {
    let rest = &s[s.find(after)? + after.len()..];
    let start = rest.find(a)? + a.len_utf8();
    let end = start + rest[start..].find(b)?;
    Some(&rest[start..end])
}

/// config-rs's and serde's wording (`enum MediaKind does not have variant constructor
/// voicenote for key \`tags[0]kinds[0]\``) in an admin's: the key in dotted form, the value
/// given, what is allowed, the closest allowed value.
pub(super) fn humane(message: &str) -> ConfigError {
    let (text, key) = match message.rsplit_once(" for key `") {
        Some((text, key)) => (text, key.trim_end_matches('`').to_owned()),
        None => (message, String::new()),
    };
    // `tags[0]kinds[0]` is `tags[0].kinds[0]` in the file.
    let key = dotted(&key);
    if let Some(missing) = between(message, "missing configuration field", '"', '"') {
        return ConfigError::new(
            missing,
            format!(
                "is missing; set it in the file, or (a secret) in the credentials file \
                 /etc/wa2crm/secrets/{missing} or the variable WA2CRM__{}",
                missing.to_uppercase().replace('.', "__")
            ),
        );
    }
    if let (Some(type_name), Some(value)) = (
        between(text, "enum", ' ', ' '),
        text.split("variant constructor ").nth(1),
    ) {
        let value = value.trim();
        return match variants(type_name) {
            Some(valid) => ConfigError::new(
                &key,
                format!(
                    "{value:?} is not one of {}{}",
                    valid.join(", "),
                    did_you_mean(value, valid)
                ),
            ),
            None => ConfigError::new(&key, format!("{value:?} is not an allowed value")),
        };
    }
    let (key, problem) = explain_serde(&key, text);
    ConfigError::new(key, problem)
}

/// `a.b[0]c` → `a.b[0].c`.
fn dotted(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut after_index = false;
    for c in key.chars() {
        if after_index && c != '.' && c != '[' {
            out.push('.');
        }
        after_index = c == ']';
        out.push(c);
    }
    out
}

pub(super) fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let what = e.message().lines().collect::<Vec<_>>().join("; ");
    let mut err = ConfigError::new("(syntax)", format!("the file is not valid TOML: {what}"));
    err.line = line;
    err
}

impl ConfigErrors {
    /// Each error given the line of `text` its key is on, where it can be found.
    pub fn located(mut self, text: &str) -> Self {
        for e in &mut self.0 {
            // A missing key is shown at the table it belongs in.
            let mut key = e.key.as_str();
            while e.line.is_none() {
                e.line = line_of(text, key);
                match key.rsplit_once('.') {
                    Some((parent, _)) => key = parent,
                    None => break,
                }
            }
        }
        self
    }
}

/// The line (1-based) where the dotted `key` is set in the TOML `text`: the last segment as a
/// key under the table of the others (`[a.b]` then `c =`), or `[a.b.c]` itself. Array indexes
/// (`routes[1]`) pick the n-th `[[routes]]`. `None` when the key is not written in the file
/// (a default, the environment, a credential).
fn line_of(text: &str, key: &str) -> Option<usize> {
    let segments: Vec<(&str, Option<usize>)> = key
        .split('.')
        .map(|s| match s.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
            None => (s, None),
        })
        .collect();
    if segments
        .iter()
        .any(|(name, _)| name.is_empty() || name.starts_with('('))
    {
        return None;
    }
    let header_of = |line: &str| -> Option<(String, bool)> {
        let t = line.trim();
        if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
            return Some((inner.0.trim().replace(' ', ""), true));
        }
        let inner = t.strip_prefix('[')?.split_once(']')?.0;
        Some((inner.trim().replace(' ', ""), false))
    };
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut index_of_table: Option<usize> = None;
    let mut best: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some((name, array)) = header_of(line) {
            index_of_table = if array {
                let c = counts.entry(name.clone()).or_default();
                *c += 1;
                Some(*c - 1)
            } else {
                None
            };
            table = name;
            // `[a.b.c]` itself, for a problem with a whole table.
            if matches(&segments, &table, index_of_table, None) {
                best = best.or(Some(n + 1));
            }
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        if matches(&segments, &table, index_of_table, Some(k)) {
            return Some(n + 1);
        }
    }
    best
}

fn matches(
    segments: &[(&str, Option<usize>)],
    table: &str,
    table_index: Option<usize>,
    key: Option<&str>,
) -> bool {
    let mut path: Vec<&str> = if table.is_empty() {
        Vec::new()
    } else {
        table.split('.').collect()
    };
    if let Some(k) = key {
        path.extend(k.split('.').map(str::trim));
    }
    if path.len() > segments.len() || path.is_empty() {
        return false;
    }
    // The key may point inside a value (`kinds[0]` of `kinds = [...]`): a prefix is enough
    // when the line sets a key, not for a header.
    if key.is_none() && path.len() != segments.len() {
        return false;
    }
    let table_len = if table.is_empty() {
        0
    } else {
        table.split('.').count()
    };
    path.iter().enumerate().all(|(i, p)| {
        let (name, index) = segments[i];
        name == *p && (i + 1 != table_len || index.is_none() || index == table_index)
    })
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_the_value_and_the_closest_allowed_one() {
        let e = humane(
            "enum MediaKind does not have variant constructor voicenote for key `tags[0]kinds[0]`",
        );
        assert_eq!(e.key, "tags[0].kinds[0]");
        assert!(
            e.problem
                .contains("\"voicenote\" is not one of audio, voice"),
            "{}",
            e.problem
        );
        assert!(
            e.problem.contains("did you mean \"voice\"?"),
            "{}",
            e.problem
        );
        let e = humane(
            "unknown field `listn`, expected one of `listen`, `public_url` for key `server`",
        );
        assert_eq!(e.key, "server.listn");
        assert!(
            e.problem.contains("did you mean \"listen\"?"),
            "{}",
            e.problem
        );
        let e =
            humane("invalid type: string \"many\", expected an integer for key `queue.workers`");
        assert_eq!(e.key, "queue.workers");
        assert_eq!(e.problem, "is string \"many\", but must be an integer");
        let e = humane("missing configuration field \"sources.meta.verify_token\"");
        assert_eq!(e.key, "sources.meta.verify_token");
        assert!(
            e.problem
                .contains("/etc/wa2crm/secrets/sources.meta.verify_token")
        );
        assert!(e.problem.contains("WA2CRM__SOURCES__META__VERIFY_TOKEN"));
    }
}
