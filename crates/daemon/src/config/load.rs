//! Where configuration comes from, in rising precedence: the TOML file, `WA2CRM__SECTION__KEY`
//! environment variables, then credential files in `$CREDENTIALS_DIRECTORY` (systemd's
//! `LoadCredential=`), each named after the dotted key it sets, e.g. `sources.meta.app_secret`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat};

use super::Config;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read credential {path}: {source}")]
    Credential {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

/// Loads `path` with this process's environment and credentials directory.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    load_str(&text, env, credentials.as_deref())
}

/// Loads from TOML text with an explicit environment and credentials directory (for tests).
pub fn load_str(
    toml: &str,
    env: HashMap<String, String>,
    credentials_dir: Option<&Path>,
) -> Result<Config, LoadError> {
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
    if let Some(dir) = credentials_dir {
        for (key, value) in read_credentials(dir)? {
            builder = builder.set_override(key, value)?;
        }
    }
    Ok(builder.build()?.try_deserialize()?)
}

/// Credential files whose name is a dotted config key; other files are not ours and are left alone.
fn read_credentials(dir: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Credential {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Credential {
            path: dir.to_owned(),
            source,
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.contains('.') || !entry.path().is_file() {
            continue;
        }
        let value =
            std::fs::read_to_string(entry.path()).map_err(|source| LoadError::Credential {
                path: entry.path(),
                source,
            })?;
        // Files written with `echo` end in a newline that is not part of the secret.
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}
