//! `wa2crm status [--json]`: what the queue holds and what needs an admin.

use std::process::ExitCode;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wa2crm_core::state::keys;
use wa2crm_queue::{DeadLetter, DoneBreakdown, JobStore, StateCounts};

use crate::heartbeat::Daemons;

/// What `status` shows, gathered from the queue database alone (the console shows the same).
pub struct Report {
    /// The queue's URL, its password masked.
    pub queue: String,
    pub counts: StateCounts,
    pub done: DoneBreakdown,
    /// The newest dead letters, up to the limit asked.
    pub dead: Vec<DeadLetter>,
    pub daemons: Daemons,
    pub connectors: Vec<ConnectorStatus>,
    /// When it was gathered (ms since the epoch).
    pub now: i64,
}

/// What is going on now: the counts by state, the daemons' heartbeats, each connector's state.
/// `status` and the console's overview both read it.
pub struct Live {
    pub counts: StateCounts,
    pub daemons: Daemons,
    pub connectors: Vec<ConnectorStatus>,
    /// When it was read (ms since the epoch).
    pub now: i64,
}

/// Reads [`Live`] for `connectors`.
pub async fn live<'a>(
    store: &dyn JobStore,
    connectors: impl IntoIterator<Item = &'a String>,
) -> anyhow::Result<Live> {
    let counts = store.counts().await?;
    let now = wa2crm_core::state::now_ms();
    let daemons = crate::heartbeat::read(store, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for name in connectors {
        out.push(connector_status(store, name).await?);
    }
    Ok(Live {
        counts,
        daemons,
        connectors: out,
        now,
    })
}

/// Reads [`Live`], the breakdown of done jobs (a scan) and the newest `limit` dead letters.
pub async fn gather(
    store: &dyn JobStore,
    queue_url: &str,
    connectors: &[String],
    limit: usize,
) -> anyhow::Result<Report> {
    let live = live(store, connectors).await?;
    let done = store.done_breakdown().await?;
    let dead = store.dead_letters(limit).await?;
    Ok(Report {
        queue: super::redact_url(queue_url),
        counts: live.counts,
        done,
        dead,
        daemons: live.daemons,
        connectors: live.connectors,
        now: live.now,
    })
}

/// The keys status shows, each read by itself: a connector's scope also holds a row per sender
/// or media (matches, exactly-once marks), which a scan would read every time.
async fn connector_status(store: &dyn JobStore, name: &str) -> anyhow::Result<ConnectorStatus> {
    let mut state = std::collections::BTreeMap::new();
    for key in [
        keys::PAUSE_REASON,
        keys::PAUSED_UNTIL_MS,
        keys::LAST_SUCCESS_MS,
        keys::LAST_ERROR,
        keys::LAST_ERROR_MS,
        keys::MATCHED,
        keys::MATCHED_AMONG_SEVERAL,
        keys::LAST_SEVERAL,
    ] {
        let value = store
            .get_state(name, key)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(v) = value {
            state.insert(key, v);
        }
    }
    let ms = |key: &str| state.get(key).and_then(|v| v.parse::<i64>().ok());
    Ok(ConnectorStatus {
        name: name.to_owned(),
        pause_reason: state.get(keys::PAUSE_REASON).cloned(),
        paused_until_ms: ms(keys::PAUSED_UNTIL_MS),
        last_success_ms: ms(keys::LAST_SUCCESS_MS),
        last_error: state
            .get(keys::LAST_ERROR)
            .cloned()
            .map(|e| (ms(keys::LAST_ERROR_MS).unwrap_or_default(), e)),
        matched: ms(keys::MATCHED).unwrap_or(0),
        matched_among_several: ms(keys::MATCHED_AMONG_SEVERAL).unwrap_or(0),
        last_several: state.get(keys::LAST_SEVERAL).cloned(),
    })
}

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
    let r = gather(store.as_ref(), &config.queue.url, &config.connectors, limit).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&to_json(&r))?);
    } else {
        print!("{}", render_daemons(&r.daemons, r.now));
        print!("{}", render(&r.queue, &r.counts, &r.dead));
        if r.done.not_taken > 0 || r.done.removed > 0 {
            println!(
                "of the done jobs: {} not taken (no consent), {} with their media removed (retention, erasure)",
                r.done.not_taken, r.done.removed
            );
        }
        print!(
            "{}",
            render_connectors(&r.connectors, r.daemons.is_running(), r.now)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `status --json`'s document.
pub fn to_json(r: &Report) -> serde_json::Value {
    let (counts, done, daemons, now) = (&r.counts, &r.done, &r.daemons, r.now);
    json!({
        "queue": {
            "url": r.queue,
            "counts": counts,
            "done_not_taken": done.not_taken,
            "done_media_removed": done.removed,
            "oldest_waiting": counts.oldest_waiting_ms.map(rfc3339),
            "backlog_seconds": backlog_seconds(counts),
        },
        "daemon": daemon_json(daemons),
        "connectors": r.connectors.iter().map(|c| {
            let state = c.state(daemons.is_running(), now);
            json!({
                "name": c.name,
                "state": state.word(),
                "paused": matches!(state, ConnectorState::Paused),
                "pause_reason": c.pause_reason,
                "paused_until": c.paused_until_ms.map(rfc3339),
                "last_success": c.last_success_ms.map(rfc3339),
                "last_error": c.last_error.as_ref().map(|(_, e)| e),
                "last_error_at": c.last_error.as_ref().map(|(t, _)| rfc3339(*t)),
                "matched": c.matched,
                "matched_among_several": c.matched_among_several,
                "last_several": c.last_several,
            })
        }).collect::<Vec<_>>(),
        "dead_letters": r.dead.iter().map(|d| json!({
            "id": d.id,
            "source": d.source,
            "message_id": d.message_id,
            "reason": d.reason,
            "attempts": d.attempts,
            "dead_since": rfc3339(d.dead_since_ms),
        })).collect::<Vec<_>>(),
    })
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

fn daemon_json(d: &Daemons) -> serde_json::Value {
    match d {
        Daemons::Running {
            since_ms,
            instances,
        } => json!({
            "running": true,
            "since": rfc3339(*since_ms),
            "instances": instances.iter().map(|i| json!({
                "host": i.host, "pid": i.pid, "version": i.version,
                "started": rfc3339(i.started_ms), "seen": rfc3339(i.seen_ms),
            })).collect::<Vec<_>>(),
        }),
        Daemons::Stopped { last_seen_ms } => {
            json!({"running": false, "last_seen": rfc3339(*last_seen_ms)})
        }
        Daemons::Never => json!({"running": false, "last_seen": null}),
    }
}

fn render_daemons(d: &Daemons, now: i64) -> String {
    match d {
        Daemons::Running {
            since_ms,
            instances,
        } => {
            let mut out = format!(
                "daemon: running since {} ({})\n",
                rfc3339(*since_ms),
                ago(now - since_ms)
            );
            if instances.len() > 1 {
                for i in instances {
                    out.push_str(&format!(
                        "  instance {} pid {} (wa2crm {}) since {}\n",
                        i.host,
                        i.pid,
                        i.version,
                        rfc3339(i.started_ms)
                    ));
                }
            }
            out
        }
        Daemons::Stopped { last_seen_ms } => format!(
            "daemon: NOT RUNNING (last seen {}, {} ago); nothing is delivered until it runs: \
             systemctl start wa2crm\n",
            rfc3339(*last_seen_ms),
            ago(now - last_seen_ms)
        ),
        Daemons::Never => "daemon: NOT RUNNING (none has run on this queue yet): systemctl start \
                           wa2crm\n"
            .into(),
    }
}

/// `3 min`, `2 h`, `5 d`.
fn ago(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// What `status` knows of one connector, from the state the daemon keeps.
#[derive(Default)]
pub struct ConnectorStatus {
    pub name: String,
    pub pause_reason: Option<String>,
    pub paused_until_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    /// (when, message)
    pub last_error: Option<(i64, String)>,
    /// Senders found among the CRM's existing records, of them with several candidates, and
    /// the last such choice.
    pub matched: i64,
    pub matched_among_several: i64,
    pub last_several: Option<String>,
}

/// What a connector is doing, as `status` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorState {
    /// A daemon is running and the connector's last call succeeded.
    Delivering,
    /// The daemon holds it back (a limit used up, credentials refused) until a time or an admin.
    Paused,
    /// A daemon is running and the connector's last call failed (it retries).
    Failing,
    /// A daemon is running; nothing delivered yet.
    Waiting,
    /// No daemon is running: nothing is delivered.
    Stopped,
}

impl ConnectorState {
    pub fn word(self) -> &'static str {
        match self {
            ConnectorState::Delivering => "delivering",
            ConnectorState::Paused => "paused",
            ConnectorState::Failing => "failing",
            ConnectorState::Waiting => "waiting",
            ConnectorState::Stopped => "stopped",
        }
    }
}

impl ConnectorStatus {
    /// "Delivering" only with a running daemon whose last call for this connector succeeded;
    /// a pause whose time has passed is over.
    pub fn state(&self, daemon_running: bool, now: i64) -> ConnectorState {
        let paused = self.pause_reason.is_some() && self.paused_until_ms.is_none_or(|u| u > now);
        let last_failed = match (&self.last_error, self.last_success_ms) {
            (Some((at, _)), Some(ok)) => *at > ok,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if paused {
            ConnectorState::Paused
        } else if !daemon_running {
            ConnectorState::Stopped
        } else if last_failed {
            ConnectorState::Failing
        } else if self.last_success_ms.is_some() {
            ConnectorState::Delivering
        } else {
            ConnectorState::Waiting
        }
    }
}

fn render_connectors(connectors: &[ConnectorStatus], daemon_running: bool, now: i64) -> String {
    let mut out = String::new();
    for c in connectors {
        let head = match c.state(daemon_running, now) {
            ConnectorState::Delivering => "delivering".to_owned(),
            ConnectorState::Waiting => "waiting: nothing delivered yet".to_owned(),
            ConnectorState::Stopped => "not delivering: no daemon is running".to_owned(),
            ConnectorState::Failing => {
                "FAILING: its last call failed; the jobs are retried".to_owned()
            }
            ConnectorState::Paused => {
                let reason = c.pause_reason.as_deref().unwrap_or_default();
                let paused = match c.paused_until_ms {
                    Some(u) => format!("PAUSED until {}: {reason}", rfc3339(u)),
                    None => format!("PAUSED until an admin acts: {reason}"),
                };
                if daemon_running {
                    paused
                } else {
                    format!("{paused} (recorded by the daemon that last ran; none is running)")
                }
            }
        };
        out.push_str(&format!("connector {}: {head}\n", c.name));
        out.push_str(&format!(
            "  last success: {}\n",
            c.last_success_ms.map(rfc3339).as_deref().unwrap_or("never")
        ));
        if let Some((at, e)) = &c.last_error {
            out.push_str(&format!("  last error: {}: {e}\n", rfc3339(*at)));
        }
        if c.matched > 0 {
            out.push_str(&format!(
                "  senders found among existing records: {}{}\n",
                c.matched,
                if c.matched_among_several > 0 {
                    format!(
                        ", {} of them among several (last: {})",
                        c.matched_among_several,
                        c.last_several.as_deref().unwrap_or("-")
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    out
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
        let unmatched = dead
            .iter()
            .filter(|d| d.reason.starts_with("unmatched:"))
            .count();
        if unmatched > 0 {
            out.push_str(&format!(
                "  {unmatched} of them wait for a CRM record (unmatched, match.create = false): \
                 create the records, then `wa2crm replay --all-dead`\n"
            ));
        }
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
        let waiting = DeadLetter {
            id: 8,
            source: "meta".into(),
            message_id: "wamid.y".into(),
            reason: "unmatched: no HubSpot contact has the number +4915112345678".into(),
            attempts: 1,
            dead_since_ms: 0,
        };
        let text = render("q", &c, &[waiting]);
        assert!(
            text.contains("1 of them wait for a CRM record (unmatched"),
            "{text}"
        );
        let idle = render("q", &StateCounts::default(), &[]);
        assert!(
            idle.contains("dead letters: none") && !idle.contains("backlog"),
            "{idle}"
        );
    }

    const T0: i64 = 1_795_000_000_000; // 2026-11-18

    #[test]
    fn delivering_only_with_a_running_daemon_whose_last_call_succeeded() {
        let ok = ConnectorStatus {
            last_success_ms: Some(T0),
            ..Default::default()
        };
        assert_eq!(ok.state(true, T0), ConnectorState::Delivering);
        assert_eq!(ok.state(false, T0), ConnectorState::Stopped);
        let failing = ConnectorStatus {
            last_success_ms: Some(T0),
            last_error: Some((T0 + 1, "502".into())),
            ..Default::default()
        };
        assert_eq!(failing.state(true, T0), ConnectorState::Failing);
        let recovered = ConnectorStatus {
            last_success_ms: Some(T0 + 2),
            last_error: Some((T0 + 1, "502".into())),
            ..Default::default()
        };
        assert_eq!(recovered.state(true, T0), ConnectorState::Delivering);
        assert_eq!(
            ConnectorStatus::default().state(true, T0),
            ConnectorState::Waiting
        );
        // A pause whose time has passed is over.
        let was_paused = ConnectorStatus {
            pause_reason: Some("daily limit".into()),
            paused_until_ms: Some(T0 - 1),
            last_success_ms: Some(T0 - 10),
            ..Default::default()
        };
        assert_eq!(was_paused.state(true, T0), ConnectorState::Delivering);
    }

    #[test]
    fn renders_connector_pauses() {
        let text = render_connectors(
            &[
                ConnectorStatus {
                    name: "hubspot".into(),
                    last_success_ms: Some(T0),
                    last_error: Some((T0 - 3_600_000, "HubSpot POST notes: 502".into())),
                    ..Default::default()
                },
                ConnectorStatus {
                    name: "hs-eu".into(),
                    pause_reason: Some("daily limit used up".into()),
                    paused_until_ms: Some(T0 + 86_400_000),
                    ..Default::default()
                },
                ConnectorStatus {
                    name: "hs-us".into(),
                    pause_reason: Some("Re-authorize".into()),
                    ..Default::default()
                },
            ],
            true,
            T0,
        );
        assert!(text.contains("connector hubspot: delivering"), "{text}");
        assert!(
            text.contains("  last success: 2026-11-18T11:06:40Z\n  last error: 2026-11-18T10:06:40Z: HubSpot POST notes: 502"),
            "{text}"
        );
        assert!(
            text.contains("connector hs-eu: PAUSED until 2026-11-19T11:06:40Z: daily limit used up\n  last success: never"),
            "{text}"
        );
        assert!(
            text.contains("connector hs-us: PAUSED until an admin acts: Re-authorize"),
            "{text}"
        );
        let stopped = render_connectors(
            &[ConnectorStatus {
                name: "hubspot".into(),
                last_success_ms: Some(T0),
                ..Default::default()
            }],
            false,
            T0,
        );
        assert!(
            stopped.contains("connector hubspot: not delivering: no daemon is running"),
            "{stopped}"
        );
        let matched = render_connectors(
            &[ConnectorStatus {
                name: "hubspot".into(),
                matched: 12,
                matched_among_several: 2,
                last_several: Some("+49151…678 · 2 contacts · took 1001".into()),
                ..Default::default()
            }],
            true,
            T0,
        );
        assert!(
            matched.contains("  senders found among existing records: 12, 2 of them among several (last: +49151…678 · 2 contacts · took 1001)"),
            "{matched}"
        );
    }

    #[test]
    fn says_whether_a_daemon_runs_and_since_when() {
        let running = Daemons::Running {
            since_ms: T0,
            instances: vec![],
        };
        assert_eq!(
            render_daemons(&running, T0 + 180_000),
            "daemon: running since 2026-11-18T11:06:40Z (3 min)\n"
        );
        assert!(
            render_daemons(&Daemons::Stopped { last_seen_ms: T0 }, T0 + 7_200_000)
                .starts_with("daemon: NOT RUNNING (last seen 2026-11-18T11:06:40Z, 2 h ago)")
        );
        assert!(render_daemons(&Daemons::Never, T0).starts_with("daemon: NOT RUNNING (none"));
    }
}
