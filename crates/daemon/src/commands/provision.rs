//! `wa2crm provision [--dry-run]`: creates in each CRM the fields the mapping needs and lacks.
//! Safe to run twice: what exists is left alone — and when it does not fit (a field of the wrong
//! type), that blocks delivery, is said so, and the exit status is 1 until it is fixed by hand.

use std::process::ExitCode;

/// What a connector's plan line means for the admin.
fn line(action: &str, dry_run: bool) -> (String, bool) {
    if let Some(rest) = action.strip_prefix("left alone ") {
        // Provision never changes a field someone else may rely on: a misfit stays, and blocks.
        return (
            format!("BLOCKS DELIVERY: {rest} (left as it is; fix it in the CRM)"),
            true,
        );
    }
    if action.starts_with("cannot provision ") {
        return (action.to_owned(), true);
    }
    let verb = if dry_run { "would" } else { "did" };
    (format!("{verb} {action}"), false)
}

pub async fn main(
    location: &crate::config::ConfigLocation,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let validated = super::load_config(location)?;
    let store = super::open_queue(&validated.config.queue.url).await?;
    let context = crate::connectors::context(&validated.config, store, None).for_check();
    let mut failed = false;
    for (name, built) in crate::connectors::build_each(&validated.config, &context).await {
        let connector = match built {
            Ok(c) => c,
            Err(e) => {
                failed = true;
                println!("connectors.{name}: FAILED: {e:#}");
                continue;
            }
        };
        match connector.provision(dry_run).await {
            Ok(plan) if plan.actions.is_empty() => {
                println!("connectors.{name}: nothing to do")
            }
            Ok(plan) => {
                for a in plan.actions {
                    let (text, blocking) = line(&a, dry_run);
                    failed |= blocking;
                    println!("connectors.{name}: {text}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misfit_blocks_and_a_creation_reads_as_english() {
        assert_eq!(
            line("create contacts.wa_media_url (string/text)", true),
            (
                "would create contacts.wa_media_url (string/text)".into(),
                false
            )
        );
        assert_eq!(
            line("create contacts.wa_media_url (string/text)", false).0,
            "did create contacts.wa_media_url (string/text)"
        );
        let (text, blocking) = line("left alone contacts.wa_media_size: is of type string", true);
        assert!(blocking);
        assert!(!text.contains("would left"), "{text}");
        assert!(
            text.starts_with("BLOCKS DELIVERY: contacts.wa_media_size"),
            "{text}"
        );
    }
}
