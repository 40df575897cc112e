//! Where configuration comes from, in rising precedence: the TOML file, `WA2CRM__SECTION__KEY`
//! environment variables, then credential files, each named after the dotted key it sets (e.g.
//! `sources.meta.app_secret`): those in `/etc/wa2crm/secrets` (or `--credentials-dir`), where
//! README tells admins to keep them, then those systemd passes in `$CREDENTIALS_DIRECTORY`
//! (`LoadCredential=`). The daemon and the CLI read the same files by the same names.
//!
//! Every problem is reported at once, as a [`ConfigError`] naming its key and, where the file
//! has it, its line: a TOML syntax error, a key a section does not know (with the closest one it
//! does), a value of the wrong type or not among the allowed ones, a missing key (with where a
//! secret may be put instead).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat};
use wa2crm_core::config_problem::{did_you_mean, explain_serde};

use super::validate::{ConfigError, ConfigErrors};
use super::{
    Config, D360SourceConfig, LoggingConfig, MediaConfig, MetaSourceConfig, NotificationsConfig,
    PolicyConfig, QueueConfig, RetentionConfig, RouteConfig, ServerConfig, StorageConfig,
    TagRuleConfig, TwilioSourceConfig,
};

/// Where credential files are read from unless `--credentials-dir` says otherwise.
pub const DEFAULT_CREDENTIALS_DIR: &str = "/etc/wa2crm/secrets";

/// The directories credential files are read from, later ones winning: the one given
/// (`--credentials-dir`) or [`DEFAULT_CREDENTIALS_DIR`] when it exists, then systemd's
/// `$CREDENTIALS_DIRECTORY`.
pub fn credentials_dirs(given: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match given {
        Some(dir) => dirs.push(dir.to_owned()),
        None => {
            let default = Path::new(DEFAULT_CREDENTIALS_DIR);
            if default.is_dir() {
                dirs.push(default.to_owned());
            }
        }
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from)
        && !dirs.contains(&dir)
    {
        dirs.push(dir);
    }
    dirs
}

/// Loads `path` with this process's environment and the `credentials` directories.
pub fn load(path: &Path, credentials: &[PathBuf]) -> Result<Config, ConfigErrors> {
    let text = read(path)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dirs: Vec<&Path> = credentials.iter().map(PathBuf::as_path).collect();
    deserialize(&text, layered(&text, env, &dirs)?)
}

fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} does not exist: copy deploy/wa2crm.example.toml (or wa2crm.minimal.toml) \
                 there, or name another file with --config",
                path.display()
            )
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!(
                "{} cannot be read by this user: run as the service's user (sudo -u wa2crm wa2crm …)",
                path.display()
            )
        } else {
            format!("{} cannot be read: {e}", path.display())
        };
        ConfigErrors(vec![ConfigError::new("(file)", hint)])
    })
}

/// The file, the environment and the credentials, layered; every problem reading them.
fn layered(
    toml: &str,
    env: HashMap<String, String>,
    credentials_dirs: &[&Path],
) -> Result<config::Config, ConfigErrors> {
    if let Err(e) = toml::de::DeTable::parse(toml) {
        return Err(ConfigErrors(vec![syntax_error(toml, &e)]));
    }
    let mut builder = config::Config::builder()
        .add_source(File::from_str(toml, FileFormat::Toml))
        .add_source(
            // Values stay text: a secret like `000123` or `1e3` must not become a number. Keys
            // that want a number or a boolean still read one from the text.
            Environment::with_prefix("WA2CRM")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(false)
                .source(Some(env.into_iter().collect())),
        );
    for dir in credentials_dirs {
        for (key, value) in read_credentials(dir)? {
            builder = builder
                .set_override(key.as_str(), value)
                .map_err(|e| ConfigErrors(vec![ConfigError::new(&key, e.to_string())]))?;
        }
    }
    builder
        .build()
        .map_err(|e| ConfigErrors(vec![ConfigError::new("(file)", e.to_string())]))
}

/// Loads from TOML text with an explicit environment and credentials directory (for tests).
pub fn load_str(
    toml: &str,
    env: HashMap<String, String>,
    credentials_dir: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let dirs: Vec<&Path> = credentials_dir.into_iter().collect();
    deserialize(toml, layered(toml, env, &dirs)?)
}

fn deserialize(toml: &str, layered: config::Config) -> Result<Config, ConfigErrors> {
    match layered.clone().try_deserialize::<Config>() {
        Ok(c) => Ok(c),
        Err(first) => {
            let mut found = section_errors(&layered);
            if found.is_empty() {
                found.push(humane(&first.to_string()));
            }
            Err(ConfigErrors(found).located(toml))
        }
    }
}

/// What `status`, `replay` and `retention --dry-run` read: the queue, the connectors' names,
/// logging, the storage and the retention policy. They need no secret, and a problem elsewhere
/// in the file must not hide the queue from whoever investigates it; an unreadable credentials
/// directory is skipped (it may hold `queue.url`, then the queue says so).
#[derive(Debug, Default)]
pub struct QueueView {
    pub queue: QueueConfig,
    pub connectors: Vec<String>,
    pub logging: LoggingConfig,
    pub storage: StorageConfig,
    pub retention: Option<RetentionConfig>,
}

pub fn load_queue_view(path: &Path, credentials: &[PathBuf]) -> Result<QueueView, ConfigErrors> {
    let text = read(path)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dirs: Vec<&Path> = credentials.iter().map(PathBuf::as_path).collect();
    let layered = match layered(&text, env.clone(), &dirs) {
        Ok(l) => l,
        // Credentials unreadable here (another user's directory): the file and environment.
        Err(_) if !dirs.is_empty() => layered(&text, env, &[])?,
        Err(e) => return Err(e),
    };
    fn section<T: serde::de::DeserializeOwned>(
        layered: &config::Config,
        key: &str,
        text: &str,
    ) -> Result<Option<T>, ConfigErrors> {
        match layered.get::<T>(key) {
            Ok(v) => Ok(Some(v)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(e) => Err(ConfigErrors(vec![humane(&e.to_string())]).located(text)),
        }
    }
    Ok(QueueView {
        queue: section(&layered, "queue", &text)?.unwrap_or_default(),
        connectors: layered
            .get::<BTreeMap<String, serde_json::Value>>("connectors")
            .map(|c| c.into_keys().collect())
            .unwrap_or_default(),
        logging: section(&layered, "logging", &text)?.unwrap_or_default(),
        storage: section(&layered, "storage", &text)?.unwrap_or_default(),
        retention: section(&layered, "retention", &text)?,
    })
}

/// What the sandbox takes from a configuration: the mapping and what decides what is written.
/// No source and no secret is needed: an admin tries the mapping before having the accounts.
#[derive(Debug, Default)]
pub struct MappingView {
    pub tags: Vec<TagRuleConfig>,
    pub policy: PolicyConfig,
    /// `[notifications.webhook]`'s filters, when there is one.
    pub notifications: Option<NotifyFilter>,
    pub connectors: BTreeMap<String, serde_json::Value>,
    pub has_routes: bool,
}

/// Which media a notification webhook announces.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NotifyFilter {
    #[serde(default)]
    pub kinds: Vec<wa2crm_core::MediaKind>,
    #[serde(default)]
    pub tags: Vec<String>,
}

pub fn load_mapping_view(
    path: &Path,
    credentials: &[PathBuf],
) -> Result<MappingView, ConfigErrors> {
    let text = read(path)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dirs: Vec<&Path> = credentials.iter().map(PathBuf::as_path).collect();
    mapping_view(&text, layered(&text, env, &dirs)?)
}

/// The same from TOML text alone (the bundled example).
pub fn load_mapping_view_str(toml: &str) -> Result<MappingView, ConfigErrors> {
    mapping_view(toml, layered(toml, HashMap::new(), &[])?)
}

fn mapping_view(text: &str, layered: config::Config) -> Result<MappingView, ConfigErrors> {
    let mut problems = Vec::new();
    let mut view = MappingView::default();
    match layered.get::<Vec<config::Value>>("tags") {
        Ok(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match serde_path_to_error::deserialize::<_, TagRuleConfig>(item) {
                    Ok(rule) => view.tags.push(rule),
                    Err(e) => problems.push(path_error(&format!("tags[{i}]"), e)),
                }
            }
        }
        Err(config::ConfigError::NotFound(_)) => {}
        Err(e) => problems.push(humane(&e.to_string())),
    }
    if let Ok(value) = layered.get::<config::Value>("policy") {
        match serde_path_to_error::deserialize::<_, PolicyConfig>(value) {
            Ok(policy) => view.policy = policy,
            Err(e) => problems.push(path_error("policy", e)),
        }
    }
    if let Ok(value) = layered.get::<config::Value>("notifications.webhook") {
        // Only the filters: the URL and secret are the sandbox's own.
        let filter = value
            .into_table()
            .map(|mut t| {
                t.retain(|k, _| k == "kinds" || k == "tags");
                config::Value::from(t)
            })
            .map_err(|e| ConfigError::new("notifications.webhook", e.to_string()));
        match filter {
            Ok(value) => match serde_path_to_error::deserialize::<_, NotifyFilter>(value) {
                Ok(f) => view.notifications = Some(f),
                Err(e) => problems.push(path_error("notifications.webhook", e)),
            },
            Err(e) => problems.push(e),
        }
    }
    match layered.get::<BTreeMap<String, serde_json::Value>>("connectors") {
        Ok(c) => view.connectors = c,
        Err(config::ConfigError::NotFound(_)) => {}
        Err(e) => problems.push(humane(&e.to_string())),
    }
    view.has_routes = layered
        .get::<Vec<config::Value>>("routes")
        .is_ok_and(|r| !r.is_empty());
    if problems.is_empty() {
        Ok(view)
    } else {
        Err(ConfigErrors(problems).located(text))
    }
}

/// A serde_path_to_error failure under `section`, in an admin's words.
fn path_error(section: &str, e: serde_path_to_error::Error<config::ConfigError>) -> ConfigError {
    let inner = e.inner().to_string();
    let inner = inner.split(" for key `").next().unwrap_or_default();
    let path = e.path().to_string();
    let key = match path.as_str() {
        "." | "" => section.to_owned(),
        p if p.starts_with('[') => format!("{section}{p}"),
        p => format!("{section}.{p}"),
    };
    humane(&format!("{inner} for key `{key}`"))
}

/// Each section on its own, so every section's problem is reported, not only the first; the
/// path inside the section from serde_path_to_error, since config-rs names only the section.
fn section_errors(c: &config::Config) -> Vec<ConfigError> {
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
        if let Err(e) = serde_path_to_error::deserialize::<_, T>(value) {
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
            out.push(match missing {
                Some(leaf) => humane(&format!("missing configuration field \"{key}.{leaf}\"")),
                None => humane(&format!("{inner} for key `{key}`")),
            });
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

const SECTIONS: [&str; 12] = [
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
    "connectors",
];

/// The valid values of the enums a configuration names, by the type the message names.
fn variants(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "MediaKind" => &["audio", "voice", "video", "image", "document", "sticker"],
        "Source" => &["meta", "d360", "twilio"],
        "Consent" => &["none", "allowlist", "crm_field"],
        "OnExpiry" => &["clear", "delete"],
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
fn humane(message: &str) -> ConfigError {
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

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let what = e.message().lines().collect::<Vec<_>>().join("; ");
    let mut err = ConfigError::new("(syntax)", format!("the file is not valid TOML: {what}"));
    err.line = line;
    err
}

/// Credential files whose name is a dotted config key; other files are not ours and are left alone.
fn read_credentials(dir: &Path) -> Result<Vec<(String, String)>, ConfigErrors> {
    let unreadable = |path: &Path, e: std::io::Error| {
        ConfigErrors(vec![ConfigError::new(
            "(credentials)",
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "{} cannot be read by this user: run as the service's user \
                     (sudo -u wa2crm wa2crm …), or name another directory with --credentials-dir",
                    path.display()
                )
            } else {
                format!("cannot read credential {}: {e}", path.display())
            },
        )])
    };
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.contains('.') || !entry.path().is_file() {
            continue;
        }
        let value =
            std::fs::read_to_string(entry.path()).map_err(|e| unreadable(&entry.path(), e))?;
        // Files written with `echo` end in a newline that is not part of the secret.
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        out.push((name, value));
    }
    out.sort();
    Ok(out)
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
