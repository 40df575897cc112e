//! `wa2crm erase --phone +E164 [--dry-run]`: one person's media, gone from every place wa2crm put
//! it — each CRM (through its connector), the storage, and the queue's stored metadata — with a
//! report of what was removed where. Running it twice is harmless: the second run finds nothing.
//!
//! The CRMs go first: once their links are gone nobody can follow one to a deleted file. A place
//! that fails is reported and the others still go; the exit status is then 1 and running the
//! command again finishes the job.

use std::path::Path;
use std::process::ExitCode;

use wa2crm_core::Phone;
use wa2crm_media::store::Storage;

use crate::removal;

pub async fn main(config_path: &Path, phone: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let phone = Phone::parse(phone).map_err(|e| anyhow::anyhow!("--phone {phone:?}: {e}"))?;
    let validated = super::load_config(config_path)?;
    let config = &validated.config;
    let store = super::open_queue(&config.queue.url).await?;
    let storage = Storage::open(&config.storage.url, &config.storage.options)?;
    let connectors = crate::connectors::build_all(config, store.clone(), None).await?;
    // Connectors describe what they did; a dry run marks it as what they would do.
    let (would, did) = if dry_run {
        ("(dry run) ", "would delete")
    } else {
        ("", "deleted")
    };
    println!(
        "Erasing the media of {phone}{}",
        if dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    );
    let mut failed = false;

    for (name, connector) in &connectors {
        match connector.erase(&phone, dry_run).await {
            Ok(r) if r.removed.is_empty() => println!("connectors.{name}: nothing found"),
            Ok(r) => {
                for line in r.removed {
                    println!("connectors.{name}: {would}{line}");
                }
            }
            Err(e) => {
                failed = true;
                println!("connectors.{name}: FAILED: {e}");
            }
        }
    }

    let jobs: Vec<_> = store
        .jobs_of_sender(phone.as_str())
        .await?
        .into_iter()
        .filter(|j| j.removed_at_ms.is_none())
        .collect();
    let objects = removal::objects_of(store.as_ref(), &jobs).await?;
    if objects.delete.is_empty() {
        println!("storage: nothing found");
    } else if dry_run {
        println!("storage: {did} {} object(s)", objects.delete.len());
    } else {
        match removal::delete_objects(&storage, &objects.delete).await {
            Ok(n) => println!("storage: {did} {n} object(s)"),
            Err(e) => {
                failed = true;
                println!("storage: FAILED: {e:#}");
            }
        }
    }
    for key in &objects.delete {
        println!("storage:   {}", storage.uri(key));
    }
    if !objects.keep.is_empty() {
        println!(
            "storage: kept {} object(s) that other people's messages hold too (the same file \
             sent by someone else); their links in this person's records are gone with the records",
            objects.keep.len()
        );
    }

    if jobs.is_empty() {
        println!("queue: nothing found");
    } else if dry_run || failed {
        // After a failure the jobs stay findable, so running the command again finishes it.
        let verb = if dry_run {
            "would scrub"
        } else {
            "not scrubbed yet"
        };
        println!("queue: {verb} {} job(s)", jobs.len());
    } else {
        for job in &jobs {
            removal::mark_removed(store.as_ref(), job, "erasure").await?;
        }
        crate::metrics::media_removed("erasure", objects.delete.len() as u64);
        println!(
            "queue: scrubbed {} job(s) (ids {}): name, caption, file name and results removed; \
             their message ids and this number stay, so WhatsApp's redeliveries are not taken in again",
            jobs.len(),
            jobs.iter()
                .map(|j| j.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    tracing::info!(phone = %phone, dry_run, failed, jobs = jobs.len(), objects = objects.delete.len(), "Erasure run.");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
