//! `wa2crm status [--json]`: what the queue holds and what needs an admin.

use std::process::ExitCode;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wa2crm_core::state::keys;
use wa2crm_queue::{DeadLetter, StateCounts};

pub async fn main(
    location: &crate::config::ConfigLocation,
    json_out: bool,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    // Status reads the queue only: a problem elsewhere in the config must not hide the queue from
    // the operator who is investigating it, so the full validation is not required here.
    let config = location
        .load_queue_view()
        .map_err(|e| anyhow::anyhow!(location.report(&e)))?;
    let store = super::open_queue(&config.queue.url).await?;
    let counts = store.counts().await?;
    let done = store.done_breakdown().await?;
    let dead = store.dead_letters(limit).await?;
    let queue = super::redact_url(&config.queue.url);
    let mut connectors = Vec::new();
    for name in &config.connectors {
        let state = store
            .scan_state(name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let time_of = |key: &str| {
            state
                .get(key)
                .and_then(|v| v.parse::<i64>().ok())
                .map(rfc3339)
        };
        connectors.push(ConnectorStatus {
            name: name.clone(),
            pause_reason: state.get(keys::PAUSE_REASON).cloned(),
            paused_until: time_of(keys::PAUSED_UNTIL_MS),
            last_success: time_of(keys::LAST_SUCCESS_MS),
            last_error: state
                .get(keys::LAST_ERROR)
                .cloned()
                .map(|e| (time_of(keys::LAST_ERROR_MS).unwrap_or_default(), e)),
        });
    }
    if json_out {
        let doc = json!({
            "queue": {
                "url": queue,
                "counts": counts,
                "done_not_taken": done.not_taken,
                "done_media_removed": done.removed,
                "oldest_waiting": counts.oldest_waiting_ms.map(rfc3339),
                "backlog_seconds": backlog_seconds(&counts),
            },
            "connectors": connectors.iter().map(|c| json!({
                "name": c.name,
                "paused": c.pause_reason.is_some(),
                "pause_reason": c.pause_reason,
                "paused_until": c.paused_until,
                "last_success": c.last_success,
                "last_error": c.last_error.as_ref().map(|(_, e)| e),
                "last_error_at": c.last_error.as_ref().map(|(t, _)| t),
            })).collect::<Vec<_>>(),
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
        if done.not_taken > 0 || done.removed > 0 {
            println!(
                "of the done jobs: {} not taken (no consent), {} with their media removed (retention, erasure)",
                done.not_taken, done.removed
            );
        }
        print!("{}", render_connectors(&connectors));
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// How long the oldest unfinished job has waited.
fn backlog_seconds(c: &StateCounts) -> Option<i64> {
    c.oldest_waiting_ms
        .map(|t| ((wa2crm_core::state::now_ms() - t) / 1000).max(0))
}

/// What `status` says about one connector.
#[derive(Default)]
pub struct ConnectorStatus {
    pub name: String,
    pub pause_reason: Option<String>,
    pub paused_until: Option<String>,
    pub last_success: Option<String>,
    /// (when, message)
    pub last_error: Option<(String, String)>,
}

fn render_connectors(connectors: &[ConnectorStatus]) -> String {
    let mut out = String::new();
    for c in connectors {
        render_pause(&mut out, c);
        out.push_str(&format!(
            "  last success: {}\n",
            c.last_success.as_deref().unwrap_or("never")
        ));
        if let Some((at, e)) = &c.last_error {
            out.push_str(&format!("  last error: {at}: {e}\n"));
        }
    }
    out
}

fn render_pause(out: &mut String, c: &ConnectorStatus) {
    match (&c.pause_reason, &c.paused_until) {
        (None, _) => out.push_str(&format!("connector {}: delivering\n", c.name)),
        (Some(r), Some(u)) => {
            out.push_str(&format!("connector {}: PAUSED until {u}: {r}\n", c.name))
        }
        (Some(r), None) => out.push_str(&format!(
            "connector {}: PAUSED until an admin acts: {r}\n",
            c.name
        )),
    }
}

fn render(queue: &str, c: &StateCounts, dead: &[DeadLetter]) -> String {
    let mut out = format!(
        "queue: {queue}\njobs: queued {} (retrying {}), running {}, done {}, dead {}\n",
        c.queued, c.retrying, c.running, c.done, c.dead
    );
    if let (Some(since), Some(secs)) = (c.oldest_waiting_ms, backlog_seconds(c)) {
        out.push_str(&format!(
            "backlog: the oldest unfinished job arrived {} ({secs} s ago)\n",
            rfc3339(since)
        ));
    }
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
            oldest_waiting_ms: Some(0),
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
        assert!(
            text.contains("backlog: the oldest unfinished job arrived 1970-01-01T00:00:00Z"),
            "{text}"
        );
        let idle = render("q", &StateCounts::default(), &[]);
        assert!(
            idle.contains("dead letters: none") && !idle.contains("backlog"),
            "{idle}"
        );
    }

    #[test]
    fn renders_connector_pauses() {
        let text = render_connectors(&[
            ConnectorStatus {
                name: "hubspot".into(),
                last_success: Some("2026-11-22T10:00:00Z".into()),
                last_error: Some((
                    "2026-11-22T09:00:00Z".into(),
                    "HubSpot POST notes: 502".into(),
                )),
                ..Default::default()
            },
            ConnectorStatus {
                name: "hs-eu".into(),
                pause_reason: Some("daily limit used up".into()),
                paused_until: Some("2026-11-23T00:00:00Z".into()),
                ..Default::default()
            },
            ConnectorStatus {
                name: "hs-us".into(),
                pause_reason: Some("Re-authorize".into()),
                ..Default::default()
            },
        ]);
        assert!(text.contains("connector hubspot: delivering"), "{text}");
        assert!(
            text.contains("  last success: 2026-11-22T10:00:00Z\n  last error: 2026-11-22T09:00:00Z: HubSpot POST notes: 502"),
            "{text}"
        );
        assert!(
            text.contains("connector hs-eu: PAUSED") && text.contains("  last success: never"),
            "{text}"
        );
        assert!(
            text.contains(
                "connector hs-eu: PAUSED until 2026-11-23T00:00:00Z: daily limit used up"
            ),
            "{text}"
        );
        assert!(
            text.contains("connector hs-us: PAUSED until an admin acts: Re-authorize"),
            "{text}"
        );
    }
}
