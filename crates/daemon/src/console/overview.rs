//! The overview: is media flowing, how fast, what waits, which connector is held back.
//!
//! Its figures come from a snapshot the console refreshes in the background, never from the
//! request: counting a queue of a million jobs, or reading a day of finished ones, costs far more
//! than a page may take. The refresh waits at least [`MIN_REFRESH`] and ten times as long as the
//! last one took, so a large queue is not read in a loop, and stops [`IDLE_AFTER`] after the last
//! look at the page, so a console nobody opens costs nothing. The first look after a start or an
//! idle spell takes the snapshot in the request (figures older than [`STALE`] are not shown).
//! Each page says how old its figures are.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tokio::sync::Notify;
// Tokio's clock, so tests can move it (`tokio::time::pause`).
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wa2crm_core::Usage;
use wa2crm_queue::StateCounts;

use super::Console;
use super::auth::Session;
use super::page::{self, count, span, when};
use crate::commands::status::{self, ConnectorState, ConnectorStatus};

const MIN_REFRESH: Duration = Duration::from_secs(5);
/// After this long without a look at the overview, the snapshots stop until the next look.
const IDLE_AFTER: Duration = Duration::from_secs(600);
/// A snapshot older than this (the refresh was idle) is taken again before the page is shown.
const STALE: Duration = Duration::from_secs(60);
const MINUTES: usize = 24 * 60;
const HOURS: usize = 24;

/// The figures of one look at the queue.
pub struct Snapshot {
    pub at_ms: i64,
    pub counts: StateCounts,
    /// Media finished in each minute of the last 24 hours, oldest first.
    pub per_minute: Vec<u32>,
    /// Arrival to finish, seconds, p50 and p95 in each hour of the last 24 (oldest first).
    pub latency: Vec<Option<(f64, f64)>>,
    pub finished_24h: usize,
    pub p50_p95_24h: Option<(f64, f64)>,
    pub connectors: Vec<(ConnectorStatus, ConnectorState, Option<Usage>)>,
    pub daemon_running: bool,
    /// `None` when the storage answered; else what it said.
    pub storage_problem: Option<String>,
}

/// The latest snapshot, when it was taken, and when the page was last looked at.
#[derive(Default)]
pub struct Snapshots {
    latest: RwLock<Option<(Instant, Arc<Snapshot>)>>,
    viewed: Mutex<Option<Instant>>,
    /// Rung by a look at the page, to wake an idle refresh.
    looked: Notify,
}

impl Snapshots {
    /// The latest snapshot, unless it is older than [`STALE`].
    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let slot = self
            .latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.as_ref()
            .filter(|(at, _)| at.elapsed() < STALE)
            .map(|(_, s)| s.clone())
    }

    fn store(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        *self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), snapshot.clone()));
        snapshot
    }

    fn look(&self) {
        *self
            .viewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.looked.notify_one();
    }

    fn looked_at_lately(&self) -> bool {
        self.viewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < IDLE_AFTER)
    }
}

pub fn spawn_refresh(console: Arc<Console>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            if !console.overview.looked_at_lately() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = console.overview.looked.notified() => {}
                }
            }
            let started = Instant::now();
            match take(&console).await {
                Ok(s) => {
                    console.overview.store(s);
                }
                Err(e) => tracing::warn!("The console's overview could not be refreshed: {e:#}"),
            }
            let wait = MIN_REFRESH.max(started.elapsed() * 10);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Reads everything the overview shows.
pub async fn take(console: &Console) -> anyhow::Result<Snapshot> {
    // What `status` reads, but not its breakdown of done jobs (a scan the overview does not show).
    let status::Live {
        counts,
        daemons,
        connectors,
        now,
    } = status::live(console.store.as_ref(), console.connectors.keys()).await?;
    let finished = console
        .store
        .finished_since(now - (MINUTES as i64) * 60_000)
        .await?;
    let (per_minute, latency, p50_p95_24h) = bucket(&finished, now);
    let storage_problem =
        match tokio::time::timeout(Duration::from_secs(5), console.storage.check()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("did not answer within 5 s".into()),
        };
    let daemon_running = daemons.is_running();
    Ok(Snapshot {
        at_ms: now,
        counts,
        per_minute,
        latency,
        finished_24h: finished.len(),
        p50_p95_24h,
        connectors: connectors
            .into_iter()
            .map(|c| {
                let state = c.state(daemon_running, now);
                let usage = console.connectors.get(&c.name).and_then(|k| k.usage());
                (c, state, usage)
            })
            .collect(),
        daemon_running,
        storage_problem,
    })
}

type Buckets = (Vec<u32>, Vec<Option<(f64, f64)>>, Option<(f64, f64)>);

/// (arrived, finished) pairs into per-minute counts and hourly latency percentiles.
fn bucket(finished: &[(i64, i64)], now: i64) -> Buckets {
    let start = now - (MINUTES as i64) * 60_000;
    let mut per_minute = vec![0u32; MINUTES];
    let mut hourly: Vec<Vec<f64>> = vec![Vec::new(); HOURS];
    let mut all = Vec::with_capacity(finished.len());
    for &(arrived, done) in finished {
        let Ok(offset) = usize::try_from(done - start) else {
            continue;
        };
        let minute = (offset / 60_000).min(MINUTES - 1);
        per_minute[minute] += 1;
        let secs = (done - arrived).max(0) as f64 / 1000.0;
        hourly[minute / 60].push(secs);
        all.push(secs);
    }
    let latency = hourly.iter_mut().map(|v| percentiles(v)).collect();
    (per_minute, latency, percentiles(&mut all))
}

/// p50 and p95 (nearest rank).
fn percentiles(v: &mut [f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((at(0.50), at(0.95)))
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
) -> Response {
    console.overview.look();
    let snapshot = match console.overview.fresh() {
        Some(s) => s,
        // The first look after a start or an idle spell: taken now.
        None => match take(&console).await {
            Ok(s) => console.overview.store(s),
            Err(e) => {
                tracing::warn!("The console's overview failed: {e:#}");
                return page::failed(&console, &session, "/console", "the overview");
            }
        },
    };
    page::frame(&console, &session, "/console", "Overview", body(&snapshot)).into_response()
}

fn body(s: &Snapshot) -> Markup {
    let c = &s.counts;
    let backlog = c.oldest_waiting_ms.map(|t| s.at_ms - t);
    html! {
        p class="muted" { "Figures as of " (when(s.at_ms)) " (refreshed every few seconds)." }
        @if !s.daemon_running {
            p class="error" role="alert" { "No daemon has reported in the last minute: nothing is being delivered." }
        }
        h2 { "Queue" }
        div class="cards" {
            @for (label, id, n) in [("Queued", "queued", c.queued), ("Running", "running", c.running), ("Done", "done", c.done), ("Dead", "dead", c.dead), ("Retrying", "retrying", c.retrying)] {
                div class="card" {
                    div class="label" id={"label-" (id)} { (label) }
                    div class="figure" aria-labelledby={"label-" (id)} data-count=(id) { (count(n)) }
                }
            }
            div class="card" {
                div class="label" { "Backlog age" }
                div class="figure" { @match backlog { Some(ms) => (span(ms)), None => "none" } }
            }
        }
        @if c.dead > 0 {
            p { a href="/console/dead" { (c.dead) " dead letter(s) need an admin" } }
        }
        h2 { "Media per minute, last 24 hours" }
        p { (count(s.finished_24h as u64)) " finished"
            @if let Some((p50, p95)) = s.p50_p95_24h { "; arrival to CRM: p50 " (secs(p50)) ", p95 " (secs(p95)) } }
        figure class="chart" {
            (page::trusted(throughput_svg(&s.per_minute)))
            figcaption class="muted" { "Each bar is ten minutes, as high as its busiest minute; the right edge is now." }
        }
        h2 { "Delivery latency per hour (p50, p95)" }
        figure class="chart" {
            (page::trusted(latency_svg(&s.latency)))
            figcaption class="muted" { "Seconds from the webhook to the last CRM write. Solid: p50; dashed: p95." }
        }
        h2 { "Connectors" }
        @if s.connectors.is_empty() { p { "No connector is configured." } }
        @else {
            table {
                thead { tr { th scope="col" { "Connector" } th scope="col" { "State" } th scope="col" { "Why / until" } th scope="col" { "Last success" } th scope="col" { "Last error" } th scope="col" { "Request budget (this instance)" } th scope="col" { "Quota left" } th scope="col" class="num" { "Matched to existing records" } } }
                tbody {
                    @for (c, state, usage) in &s.connectors {
                        tr {
                            th scope="row" { (c.name) }
                            td class=(state.word()) data-state=(state.word()) { (state.word()) }
                            td {
                                @if *state == ConnectorState::Paused {
                                    (c.pause_reason.as_deref().unwrap_or_default())
                                    @match c.paused_until_ms { Some(u) => { " — until " (when(u)) }, None => { " — until an admin acts" } }
                                }
                            }
                            td { @match c.last_success_ms { Some(t) => (when(t)), None => "never" } }
                            td { @if let Some((at, e)) = &c.last_error { (when(*at)) ": " (e) } }
                            td data-budget { @if let Some(u) = usage { (budget(u)) } }
                            td data-quota { @match usage.and_then(|u| u.quota) {
                                Some((left, of)) => { (count(left)) " of " (count(of)) }
                                None => span class="muted" { "not told yet" },
                            } }
                            td class="num" { (c.matched) }
                        }
                    }
                }
            }
        }
        h2 { "Storage" }
        @match &s.storage_problem {
            None => p class="ok" data-storage="reachable" { "Reachable." },
            Some(e) => p class="error" data-storage="unreachable" { "Not reachable: " (e) },
        }
    }
}

/// `42 of 190 calls per 10 s (22 %)`, or `42 calls in the last 60 s` without a budget.
fn budget(u: &Usage) -> String {
    let window = span(u.window.as_millis() as i64);
    match u.allowed {
        Some(max) if max > 0 => format!(
            "{} of {max} calls per {window} ({:.0} %)",
            u.sent,
            u.sent as f64 * 100.0 / f64::from(max)
        ),
        _ => format!("{} calls in the last {window}", u.sent),
    }
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Minutes per bar: 144 bars of ten minutes each fit a page; a bar is the busiest minute in it.
const MINUTES_PER_BAR: usize = 10;

/// Bars of ten minutes, each as high as its busiest minute, scaled to the busiest minute of the
/// day. Built from numbers only.
fn throughput_svg(per_minute: &[u32]) -> String {
    let (w, h) = (720.0, 120.0);
    let bars: Vec<u32> = per_minute
        .chunks(MINUTES_PER_BAR)
        .map(|c| c.iter().copied().max().unwrap_or(0))
        .collect();
    let max = bars.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = w / bars.len().max(1) as f64;
    let mut out = format!(
        "<svg viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"Media per minute over the last 24 hours; busiest minute {max}\" xmlns=\"http://www.w3.org/2000/svg\">",
        h + 16.0
    );
    for (i, &n) in bars.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let bh = (n as f64 / max * (h - 16.0)).max(2.0);
        out.push_str(&format!(
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"#0b57d0\"><title>{n}/min</title></rect>",
            i as f64 * bar + 0.5,
            h - bh,
            (bar - 1.0).max(1.0)
        ));
    }
    out.push_str(&format!(
        "<text x=\"2\" y=\"12\" font-size=\"11\" fill=\"#4a5560\">{max}/min</text>\
         <text x=\"2\" y=\"{}\" font-size=\"11\" fill=\"#4a5560\">24 h ago</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#4a5560\" text-anchor=\"end\">now</text></svg>",
        h + 14.0,
        w - 2.0,
        h + 14.0
    ));
    out
}

/// Two lines over 24 hourly points: p50 solid, p95 dashed.
fn latency_svg(latency: &[Option<(f64, f64)>]) -> String {
    let (w, h) = (720.0, 120.0);
    let max = latency
        .iter()
        .flatten()
        .map(|(_, p95)| *p95)
        .fold(1.0_f64, f64::max);
    let step = w / (latency.len().max(2) - 1) as f64;
    let top = h - 16.0;
    let points = |pick: fn(&(f64, f64)) -> f64| -> Vec<(f64, f64)> {
        latency
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.as_ref()
                    .map(|v| (i as f64 * step, h - pick(v) / max * top))
            })
            .collect()
    };
    let line = |pick: fn(&(f64, f64)) -> f64| {
        points(pick)
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // A lone hour draws no line: each hour also gets a dot.
    let dots: String = [(0usize, "#0b57d0"), (1, "#a8071a")]
        .iter()
        .flat_map(|&(which, colour)| {
            let pick: fn(&(f64, f64)) -> f64 = if which == 0 { |v| v.0 } else { |v| v.1 };
            points(pick).into_iter().map(move |(x, y)| {
                format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"/>")
            })
        })
        .collect();
    format!(
        "<svg viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"Delivery latency per hour, p50 and p95, up to {max:.0} seconds\" xmlns=\"http://www.w3.org/2000/svg\">\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#0b57d0\" stroke-width=\"2\"/>\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#a8071a\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>{dots}\
         <text x=\"2\" y=\"12\" font-size=\"11\" fill=\"#4a5560\">{max:.0} s</text>\
         <text x=\"2\" y=\"{}\" font-size=\"11\" fill=\"#4a5560\">24 h ago</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#4a5560\" text-anchor=\"end\">now</text></svg>",
        h + 16.0,
        line(|v| v.0),
        line(|v| v.1),
        h + 14.0,
        w - 2.0,
        h + 14.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_fall_into_their_minute_and_hour() {
        let now = 100 * 86_400_000;
        let finished = [
            (now - 5_000, now - 1_000),           // the last minute, 4 s
            (now - 70_000, now - 61_000),         // the minute before, 9 s
            (now - 86_400_000, now - 86_399_000), // the first minute, 1 s
            (now - 90_000_000, now - 90_000_000), // before the window: left out
        ];
        let (per_minute, latency, all) = bucket(&finished, now);
        assert_eq!(per_minute.iter().sum::<u32>(), 3);
        assert_eq!(per_minute[MINUTES - 1], 1);
        assert_eq!(per_minute[MINUTES - 2], 1);
        assert_eq!(per_minute[0], 1);
        assert_eq!(latency[HOURS - 1], Some((4.0, 9.0)));
        assert_eq!(latency[0], Some((1.0, 1.0)));
        assert_eq!(latency[5], None);
        assert_eq!(all, Some((4.0, 9.0)));
    }

    #[test]
    fn charts_draw_each_busy_stretch_and_each_hour() {
        let mut per_minute = vec![0u32; MINUTES];
        per_minute[3] = 4; // first bar
        per_minute[MINUTES - 1] = 2; // last bar
        let svg = throughput_svg(&per_minute);
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("4/min"));
        let mut latency = vec![None; HOURS];
        latency[HOURS - 1] = Some((1.0, 3.0));
        let svg = latency_svg(&latency);
        assert_eq!(
            svg.matches("<circle").count(),
            2,
            "a lone hour is two dots: {svg}"
        );
        assert!(!svg.contains("NaN"));
    }

    fn empty() -> Snapshot {
        Snapshot {
            at_ms: 0,
            counts: StateCounts::default(),
            per_minute: vec![],
            latency: vec![],
            finished_24h: 0,
            p50_p95_24h: None,
            connectors: vec![],
            daemon_running: false,
            storage_problem: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_go_stale_and_the_refresh_idles_without_looks() {
        let s = Snapshots::default();
        assert!(s.fresh().is_none() && !s.looked_at_lately());
        s.store(empty());
        assert!(s.fresh().is_some());
        tokio::time::advance(STALE).await;
        assert!(s.fresh().is_none(), "older than STALE is taken again");
        s.look();
        assert!(s.looked_at_lately());
        // The look left a permit: an idle refresh wakes at once.
        tokio::time::timeout(Duration::from_millis(1), s.looked.notified())
            .await
            .expect("woken by the look");
        tokio::time::advance(IDLE_AFTER).await;
        assert!(!s.looked_at_lately());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&mut v), Some((50.0, 95.0)));
        assert_eq!(percentiles(&mut []), None);
    }
}
