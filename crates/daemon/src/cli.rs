//! `wa2crm <command> [--config PATH]` (DESIGN.md, "CLI").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::config::{ConfigLocation, DEFAULT_CONFIG_PATH};

#[derive(Debug, Parser)]
#[command(
    name = "wa2crm",
    version,
    about = "WhatsApp media into Salesforce and HubSpot"
)]
pub struct Cli {
    /// The configuration file [default: /etc/wa2crm/wa2crm.toml; for `sandbox`, none: the
    /// example's mapping].
    #[arg(long, global = true, env = "WA2CRM_CONFIG")]
    pub config: Option<PathBuf>,
    /// The directory of credential files, each named after the key it sets
    /// (`sources.meta.app_secret`) [default: /etc/wa2crm/secrets; systemd's
    /// $CREDENTIALS_DIRECTORY is read too].
    #[arg(long, global = true, env = "WA2CRM_CREDENTIALS_DIR")]
    pub credentials_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhook intake and the durable queue (under systemd: Type=notify).
    Run,
    /// Check the configuration, the queue, the storage and each connector's mapping against the
    /// live CRM; one line per problem, exit 1 if there is any.
    Check,
    /// Create the CRM fields and properties the mapping needs (safe to run twice).
    Provision {
        /// Only say what would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Queue counts by state and the dead letters with their reasons.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// How many dead letters to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Put dead-lettered jobs back in the queue, after fixing what made them fail.
    Replay {
        /// The job id `status` shows.
        #[arg(
            long,
            conflicts_with = "all_dead",
            required_unless_present = "all_dead"
        )]
        id: Option<i64>,
        /// Every dead-lettered job.
        #[arg(long)]
        all_dead: bool,
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
    },
    /// Apply the retention policy now (the daemon does it every hour) and print what went.
    Retention {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Try wa2crm against simulators of WhatsApp and the CRMs: signed sample webhooks of every
    /// media kind, the jobs they became, and per CRM field what was written. With --config, your
    /// own mappings (credentials and base URLs swapped for the simulators); without, the
    /// example's.
    Sandbox {
        /// Keep the server running and print a ready-made signed curl command.
        #[arg(long)]
        serve: bool,
        /// Where the sandbox server listens.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The sandbox prints its own report; its logs would only bury it.
    let level = match cli.command {
        Command::Sandbox { .. } => "warn",
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
    let config = ConfigLocation::new(
        cli.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH)),
        cli.credentials_dir.as_deref(),
    );
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run => commands::run::main(&config).await,
            Command::Check => commands::check::main(&config).await,
            Command::Provision { dry_run } => commands::provision::main(&config, dry_run).await,
            Command::Status { json, limit } => commands::status::main(&config, json, limit).await,
            Command::Replay { id, all_dead } => commands::replay::main(&config, id, all_dead).await,
            Command::Erase { phone, dry_run } => {
                commands::erase::main(&config, &phone, dry_run).await
            }
            Command::Retention { dry_run } => commands::retention::main(&config, dry_run).await,
            Command::Sandbox { serve, listen } => {
                let admin = cli.config.is_some().then_some(&config);
                commands::sandbox::main(admin, serve, listen).await
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
