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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat};

use super::Config;
use super::explain::{ConfigError, ConfigErrors};
use super::explain::{humane, section_errors, syntax_error};

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

pub(super) fn read(path: &Path) -> Result<String, ConfigErrors> {
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
pub(super) fn layered(
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
