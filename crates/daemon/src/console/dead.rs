//! Dead letters: what failed for good, in the words an admin acts on, and Replay (one job, or
//! every one the filter shows) once the cause is fixed. Each replay goes to the audit log.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;
use wa2crm_queue::DeadFilter;

use super::Console;
use super::auth::Session;
use super::page::{self, csrf, when};

/// Dead letters listed on one page.
const LIMIT: usize = 200;
/// Audit entries listed under them.
const AUDIT_ROWS: usize = 20;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    connector: String,
    #[serde(default)]
    reason: String,
    /// What the last action did, shown once: numbers only, so a crafted link cannot put words
    /// on the page.
    #[serde(default)]
    replayed: Option<i64>,
    #[serde(default)]
    not_dead: Option<i64>,
    #[serde(default)]
    replayed_all: Option<usize>,
}

/// The outcome of a replay, as the page after it says it (the query of the page after).
#[derive(Debug, Default, serde::Serialize)]
struct Done {
    /// The one job replayed, or asked for and not dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replayed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_dead: Option<i64>,
    /// How many "replay all" put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replayed_all: Option<usize>,
}

impl Filter {
    fn message(&self) -> Option<String> {
        match (self.replayed, self.not_dead, self.replayed_all) {
            (Some(id), _, _) => Some(format!("Job {id} is back in the queue.")),
            (_, Some(id), _) => Some(format!(
                "Job {id} was not dead-lettered: nothing to replay."
            )),
            (_, _, Some(n)) => Some(format!("{n} job(s) are back in the queue.")),
            _ => None,
        }
    }
}

impl Filter {
    fn to_queue(&self) -> DeadFilter {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        DeadFilter {
            connector: some(&self.connector),
            reason: some(&self.reason),
        }
    }

    fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("connector", self.connector.trim()),
            ("reason", self.reason.trim()),
        ])
        .unwrap_or_default()
    }
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
    Query(filter): Query<Filter>,
) -> Response {
    let dead = match console
        .store
        .dead_letters_where(&filter.to_queue(), LIMIT)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("The console's dead letters failed: {e}");
            return page::failed(&console, &session, "/console/dead", "the dead letters");
        }
    };
    let audit = match console.store.audit_log(None, AUDIT_ROWS).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("The console's audit log failed: {e}");
            Vec::new()
        }
    };
    let body = html! {
        @if let Some(done) = filter.message() { p class="ok" role="status" { (done) } }
        form class="filters" method="get" action="/console/dead" {
            div {
                label for="connector" { "Connector" }
                select id="connector" name="connector" {
                    option value="" { "any" }
                    @for name in console.connectors.keys() {
                        option value=(name) selected[filter.connector == *name] { (name) }
                    }
                }
            }
            div {
                label for="reason" { "Reason contains" }
                input id="reason" name="reason" type="search" value=(filter.reason);
            }
            button type="submit" class="secondary" { "Filter" }
        }
        @if dead.is_empty() {
            p { "No dead letters" @if filter.to_queue() != DeadFilter::default() { " match this filter" } "." }
        } @else {
            form method="post" action="/console/dead/replay" {
                (csrf(&session))
                input type="hidden" name="connector" value=(filter.connector);
                input type="hidden" name="reason" value=(filter.reason);
                input type="hidden" name="all" value="1";
                button type="submit" {
                    @if filter.to_queue() == DeadFilter::default() { "Replay all dead letters" }
                    @else { "Replay every dead letter this filter shows" }
                }
            }
            p class="muted" { "Newest first" @if dead.len() == LIMIT { ", the first " (LIMIT) } ". Fix the cause first: a replay of an unchanged cause fails again." }
            table {
                thead { tr { th scope="col" { "Job" } th scope="col" { "Dead since" } th scope="col" { "Reason" } th scope="col" class="num" { "Attempts" } th scope="col" { span class="visually-hidden" { "Action" } } } }
                tbody {
                    @for d in &dead {
                        tr data-job=(d.id) {
                            td { (d.id) br; span class="muted" { (d.source) } }
                            td { (when(d.dead_since_ms)) }
                            td class="caption" { (d.reason) }
                            td class="num" { (d.attempts) }
                            td {
                                form class="inline" method="post" action="/console/dead/replay" {
                                    (csrf(&session))
                                    input type="hidden" name="id" value=(d.id);
                                    button type="submit" aria-label={"Replay job " (d.id)} { "Replay" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        (body)
        h2 { "Audit log" }
        p class="muted" { "Every replay and erasure, from this console or the CLI, newest first." }
        @if audit.is_empty() { p { "Nothing yet." } }
        @else {
            (page::audit_table(&audit))
        }
    };
    page::frame(&console, &session, "/console/dead", "Dead letters", body).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    all: Option<String>,
    #[serde(default)]
    connector: String,
    #[serde(default)]
    reason: String,
}

pub async fn replay(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let filter = Filter {
        connector: form.connector,
        reason: form.reason,
        ..Filter::default()
    };
    let result = match (form.id, form.all.is_some()) {
        (Some(id), _) => console.store.replay(id).await.map(|replayed| {
            if replayed {
                (
                    Done {
                        replayed: Some(id),
                        ..Done::default()
                    },
                    vec![id],
                )
            } else {
                (
                    Done {
                        not_dead: Some(id),
                        ..Done::default()
                    },
                    vec![],
                )
            }
        }),
        (None, true) => console
            .store
            .replay_dead_where(&filter.to_queue())
            .await
            .map(|ids| {
                (
                    Done {
                        replayed_all: Some(ids.len()),
                        ..Done::default()
                    },
                    ids,
                )
            }),
        (None, false) => Ok((Done::default(), vec![])),
    };
    let (message, ids) = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("A console replay failed: {e}");
            return page::failed(&console, &session, "/console/dead", "the dead letters");
        }
    };
    if !ids.is_empty() {
        console.wake.notify_waiters();
        let (action, subject) = match form.id {
            Some(id) => ("replay", id.to_string()),
            None => ("replay_all", "all".to_owned()),
        };
        let detail = if form.id.is_some() {
            "put back in the queue".to_owned()
        } else {
            format!(
                "{} job(s) put back in the queue (filter: {})",
                ids.len(),
                Some(filter.query())
                    .filter(|q| q != "connector=&reason=")
                    .unwrap_or("none".into())
            )
        };
        crate::audit::record(
            console.store.as_ref(),
            &session.user,
            action,
            &subject,
            detail,
        )
        .await;
        tracing::info!(user = %session.user, jobs = ids.len(), "Replayed from the console.");
    }
    let back = format!(
        "/console/dead?{}&{}",
        filter.query(),
        serde_urlencoded::to_string(&message).unwrap_or_default()
    );
    Redirect::to(&back).into_response()
}
