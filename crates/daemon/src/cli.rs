//! `wa2crm <command> [--config PATH] [--credentials-dir DIR]` (docs/ARCHITECTURE.md, "The public contract").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::config::{ConfigLocation, DEFAULT_CONFIG_PATH};

#[derive(Debug, Parser)]
#[command(
    name = "wa2crm",
    version,
    about = "WhatsApp media into Salesforce and HubSpot"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where a command reads its configuration.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, env = "WA2CRM_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// The directory of credential files, each named after the key it sets
    /// (`sources.meta.app_secret`) [default: /etc/wa2crm/secrets; systemd's
    /// $CREDENTIALS_DIRECTORY is read too].
    #[arg(long, env = "WA2CRM_CREDENTIALS_DIR")]
    pub credentials_dir: Option<PathBuf>,
}

impl ConfigArgs {
    fn location(&self) -> ConfigLocation {
        ConfigLocation::new(
            self.config.clone(),
            self.credentials.credentials_dir.as_deref(),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhook intake and the durable queue (under systemd: Type=notify).
    Run(ConfigArgs),
    /// Check the configuration, the queue, the storage, each WhatsApp source's credentials and
    /// each connector's mapping against the live CRM; one line each, exit 1 on any problem.
    Check(ConfigArgs),
    /// Create the CRM fields and properties the mapping needs (safe to run twice).
    Provision {
        /// Only say what would be created.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Whether a daemon is running, queue counts by state, the dead letters with their reasons,
    /// each connector's state.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// How many dead letters to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Put dead-lettered jobs back in the queue, after fixing what made them fail: one
    /// (`--id`) or all of them (`--all-dead`).
    Replay {
        /// The job id `status` shows.
        #[arg(long, conflicts_with = "all_dead")]
        id: Option<i64>,
        /// Every dead-lettered job.
        #[arg(long)]
        all_dead: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Remove one person's media from every CRM, the storage and the queue's stored metadata,
    /// printing what went where (GDPR erasure). Running it twice is harmless.
    Erase {
        /// The person's WhatsApp number, +E164 (spaces and dashes allowed).
        #[arg(long)]
        phone: String,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Apply the retention policy now (the daemon does it every hour) and print what went.
    Retention {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Read a password from standard input and print its argon2 hash for `[console] users`
    /// (the password itself is never written anywhere).
    HashPassword,
    /// Try wa2crm against simulators of WhatsApp and the CRMs: signed sample webhooks of every
    /// media kind, the jobs they became, and per CRM field what was written.
    Sandbox {
        /// Keep the server running, with a configuration file for its simulators and a sample
        /// payload to post.
        #[arg(long)]
        serve: bool,
        /// Where the sandbox server listens.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Your configuration: its mappings, tag rules, policy and notifications run against
        /// the simulators (credentials and URLs swapped for theirs). Without it, the example's.
        #[arg(long, env = "WA2CRM_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The sandbox prints its own report; its logs would only bury it.
    let level = match cli.command {
        Command::Sandbox { .. } => commands::sandbox::LOG_FILTER,
        _ => "info",
    };
    crate::telemetry::init(level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wa2crm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(c) => commands::run::main(&c.location()).await,
            Command::Check(c) => commands::check::main(&c.location()).await,
            Command::Provision { dry_run, config } => {
                commands::provision::main(&config.location(), dry_run).await
            }
            Command::Status {
                json,
                limit,
                config,
            } => commands::status::main(&config.location(), json, limit).await,
            Command::Replay {
                id,
                all_dead,
                config,
            } => commands::replay::main(&config.location(), id, all_dead).await,
            Command::Erase {
                phone,
                dry_run,
                config,
            } => commands::erase::main(&config.location(), &phone, dry_run).await,
            Command::Retention { dry_run, config } => {
                commands::retention::main(&config.location(), dry_run).await
            }
            Command::HashPassword => commands::hash_password::main(),
            Command::Sandbox {
                serve,
                listen,
                config,
                credentials,
            } => {
                let admin = config
                    .map(|file| ConfigLocation::new(file, credentials.credentials_dir.as_deref()));
                commands::sandbox::main(admin.as_ref(), serve, listen).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wa2crm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Each command's help speaks of its own `--config`: only the sandbox's mentions the
    /// sandbox.
    #[test]
    fn each_config_help_is_its_commands_own() {
        let mut cli = Cli::command();
        for name in [
            "run",
            "check",
            "provision",
            "status",
            "replay",
            "erase",
            "retention",
        ] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap_or_else(|| panic!("no {name}"))
                .render_long_help()
                .to_string();
            assert!(help.contains("--config"), "{name}: {help}");
            assert!(!help.contains("sandbox"), "{name}: {help}");
        }
        let sandbox = cli
            .find_subcommand_mut("sandbox")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(sandbox.contains("Without it, the example's"), "{sandbox}");
    }

    #[test]
    fn a_bare_replay_is_left_to_the_command_which_names_both_ways() {
        let cli = Cli::try_parse_from(["wa2crm", "replay"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Replay {
                id: None,
                all_dead: false,
                ..
            }
        ));
    }
}
