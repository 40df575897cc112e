//! `wa2crm status [--json]`: what the queue holds and what needs an admin.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wa2crm_queue::{DeadLetter, StateCounts};

pub async fn main(config_path: &Path, json_out: bool, limit: usize) -> anyhow::Result<ExitCode> {
    // Status reads the queue only: a problem elsewhere in the config must not hide the queue from
    // the operator who is investigating it, so the full validation is not required here.
    let config = crate::config::load(config_path)?;
    let store = super::open_queue(&config.queue.url).await?;
    let counts = store.counts().await?;
    let dead = store.dead_letters(limit).await?;
    let queue = super::redact_url(&config.queue.url);
    if json_out {
        let doc = json!({
            "queue": { "url": queue, "counts": counts },
            "dead_letters": dead.iter().map(|d| json!({
                "id": d.id,
                "source": d.source,
                "message_id": d.message_id,
                "reason": d.reason,
                "attempts": d.attempts,
                "dead_since": rfc3339(d.dead_since_ms),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&queue, &counts, &dead));
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn render(queue: &str, c: &StateCounts, dead: &[DeadLetter]) -> String {
    let mut out = format!(
        "queue: {queue}\njobs: queued {} (retrying {}), running {}, done {}, dead {}\n",
        c.queued, c.retrying, c.running, c.done, c.dead
    );
    if dead.is_empty() {
        out.push_str("dead letters: none\n");
    } else {
        out.push_str("dead letters (newest first; fix the cause, then `wa2crm replay --id ID`):\n");
        for d in dead {
            out.push_str(&format!(
                "  #{} {} {} attempts={} since {}: {}\n",
                d.id,
                d.source,
                d.message_id,
                d.attempts,
                rfc3339(d.dead_since_ms),
                d.reason
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_dead_letters() {
        let c = StateCounts {
            queued: 3,
            running: 1,
            done: 9,
            dead: 1,
            retrying: 2,
        };
        let d = DeadLetter {
            id: 7,
            source: "meta".into(),
            message_id: "wamid.x".into(),
            reason: "too large: 120000000 bytes > limit 104857600".into(),
            attempts: 1,
            dead_since_ms: 0,
        };
        let text = render("sqlite:///q.db", &c, &[d]);
        assert!(
            text.contains("queued 3 (retrying 2), running 1, done 9, dead 1"),
            "{text}"
        );
        assert!(
            text.contains("#7 meta wamid.x attempts=1 since 1970-01-01T00:00:00Z: too large"),
            "{text}"
        );
        assert!(render("q", &StateCounts::default(), &[]).contains("dead letters: none"));
    }
}
