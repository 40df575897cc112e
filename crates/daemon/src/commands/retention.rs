//! `wa2crm retention [--dry-run]`: applies the retention policy now (`run` also does it every
//! hour) and prints what went, or would go, and why.

use std::process::ExitCode;

use wa2crm_media::store::Storage;
use wa2crm_queue::{Clock, SystemClock};

use crate::retention::{self, RetentionPolicy};

pub async fn main(
    location: &crate::config::ConfigLocation,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    // A dry run needs no secret: with a complete configuration it asks each CRM what it would
    // clear; without one, it lists from the queue what would go.
    let (view, validated) = match super::load_config(location) {
        Ok(v) => (crate::config::QueueView::default(), Some(v)),
        Err(e) if dry_run => {
            let view = location
                .load_queue_view()
                .map_err(|e| anyhow::anyhow!(location.report(&e)))?;
            println!(
                "The CRMs are not asked (the configuration is not complete here: {}); what \
                 would go, from the queue:",
                e.to_string().lines().next().unwrap_or_default()
            );
            (view, None)
        }
        Err(e) => return Err(e),
    };
    let (queue_url, storage_config, retention) = match &validated {
        Some(v) => (&v.config.queue.url, &v.config.storage, None),
        None => (&view.queue.url, &view.storage, view.retention.as_ref()),
    };
    // Resolved by validation when the configuration is complete; from the view otherwise.
    let resolved = match &validated {
        Some(v) => Ok(v.retention.clone()),
        None => retention
            .map(RetentionPolicy::from_config)
            .transpose()
            .map(Option::flatten),
    };
    let policy = match resolved {
        Ok(p) => p,
        Err(problems) => anyhow::bail!(
            "{}",
            problems
                .iter()
                .map(|(key, problem)| format!("{key}: {problem}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let Some(policy) = policy else {
        println!("No [retention] period is configured: media is kept forever.");
        return Ok(ExitCode::SUCCESS);
    };
    let store = super::open_queue(queue_url).await?;
    let storage = Storage::open(&storage_config.url, &storage_config.options)?;
    let connectors = match &validated {
        Some(v) => crate::connectors::build_all(&v.config, store.clone(), None).await?,
        None => Default::default(),
    };
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
