//! `wa2crm retention [--dry-run]`: applies the retention policy now (`run` also does it every
//! hour) and prints what went, or would go, and why.

use std::path::Path;
use std::process::ExitCode;

use wa2crm_media::store::Storage;
use wa2crm_queue::{Clock, SystemClock};

use crate::retention::{self, RetentionPolicy};

pub async fn main(config_path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let validated = super::load_config(config_path)?;
    let config = &validated.config;
    let Some(policy) = config
        .retention
        .as_ref()
        .map(RetentionPolicy::from_config)
        .transpose()?
        .flatten()
    else {
        println!("No [retention] period is configured: media is kept forever.");
        return Ok(ExitCode::SUCCESS);
    };
    let store = super::open_queue(&config.queue.url).await?;
    let storage = Storage::open(&config.storage.url, &config.storage.options)?;
    let connectors = crate::connectors::build_all(config, store.clone(), None).await?;
    // With several instances, a pass of `run` may be going on: wait for it rather than race it.
    let _one_at_a_time = store.lock("retention", "pass").await?;
    let pass = retention::run_pass(
        &policy,
        store.as_ref(),
        &storage,
        &connectors,
        SystemClock.now_ms(),
        dry_run,
    )
    .await?;
    for line in &pass.lines {
        println!("{line}");
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} the media of {} job(s), {} stored object(s){}",
        pass.jobs,
        pass.objects,
        if dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    );
    for f in &pass.failures {
        println!("FAILED: {f} (that media stays until the next pass)");
    }
    Ok(if pass.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
