//! `wa2crm provision [--dry-run]`: creates in each CRM the fields the mapping needs and lacks.
//! Safe to run twice: what exists is left alone (and said so when its type does not fit).

use std::path::Path;
use std::process::ExitCode;

pub async fn main(config_path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let validated = super::load_config(config_path)?;
    let store = super::open_queue(&validated.config.queue.url).await?;
    let connectors = crate::connectors::build_all(&validated.config, store, None).await?;
    let mut failed = false;
    for (name, connector) in &connectors {
        match connector.provision(dry_run).await {
            Ok(plan) if plan.actions.is_empty() => {
                println!("connectors.{name}: nothing to do")
            }
            Ok(plan) => {
                for a in plan.actions {
                    let verb = if dry_run { "would" } else { "did" };
                    println!("connectors.{name}: {verb} {a}");
                }
            }
            Err(e) => {
                failed = true;
                println!("connectors.{name}: FAILED: {e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
