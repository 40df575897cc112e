//! `wa2crm replay [--id ID] [--all-dead]`.

use std::process::ExitCode;

pub async fn main(
    location: &crate::config::ConfigLocation,
    id: Option<i64>,
    all_dead: bool,
) -> anyhow::Result<ExitCode> {
    if id.is_none() && !all_dead {
        anyhow::bail!(
            "say which job to replay: --id ID (as `wa2crm status` lists them), or --all-dead \
             for every dead-lettered job"
        );
    }
    let config = location
        .load_queue_view()
        .map_err(|e| anyhow::anyhow!(location.report(&e)))?;
    let store = super::open_queue(&config.queue.url).await?;
    if all_dead {
        let n = store.replay_all_dead().await?;
        println!("{n} dead-lettered job(s) put back in the queue");
        crate::audit::record(
            store.as_ref(),
            &crate::audit::cli_user(),
            "replay_all",
            "all",
            format!("{n} dead job(s) put back in the queue"),
        )
        .await;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = id else {
        anyhow::bail!("say which job to replay: --id ID, or --all-dead");
    };
    if store.replay(id).await? {
        println!("job {id} put back in the queue");
        crate::audit::record(
            store.as_ref(),
            &crate::audit::cli_user(),
            "replay",
            &id.to_string(),
            "put back in the queue".into(),
        )
        .await;
        Ok(ExitCode::SUCCESS)
    } else {
        match store.get(id).await? {
            None => eprintln!("wa2crm: there is no job {id}"),
            Some(job) => eprintln!(
                "wa2crm: job {id} is {}, not dead-lettered: nothing to replay",
                job.state.as_str()
            ),
        }
        Ok(ExitCode::FAILURE)
    }
}
