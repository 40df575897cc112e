//! One customer: their media across every CRM, what their consent was, the audit log of what
//! was done to their data, and "Erase this person": a dry run first that shows what would go,
//! then the erasure itself once the number is typed again. The erasure is the one `wa2crm erase`
//! runs (commands/erase.rs), and goes to the audit log with the number masked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;
use wa2crm_core::Phone;
use wa2crm_queue::{JobInfo, Step};

use super::Console;
use super::auth::Session;
use super::media::{newest_first, read_number, table};
use super::page::{self, csrf};
use crate::commands::erase;
use crate::pipeline::ConsentCheckpoint;

/// Audit entries shown for one person.
const AUDIT_ROWS: usize = 50;

/// Every job of the person, under each form of the number WhatsApp may use, newest first.
async fn jobs_of(console: &Console, phone: &Phone) -> anyhow::Result<Vec<JobInfo>> {
    let mut jobs = Vec::new();
    for form in wa2crm_core::phone_match::whatsapp_forms(phone) {
        jobs.extend(console.store.jobs_of_sender(form.as_str()).await?);
    }
    Ok(newest_first(jobs))
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
    Path(number): Path<String>,
) -> Response {
    let phone = match person(&console, &session, &number) {
        Ok(p) => p,
        Err(page) => return page.into_response(),
    };
    respond(&console, &session, &phone, html! {}).await
}

/// The person a path names, or the page saying the number cannot be read.
fn person(console: &Console, session: &Session, number: &str) -> Result<Phone, Markup> {
    read_number(console, number).map_err(|e| {
        let body = html! { p class="error" role="alert" { (e) } };
        page::frame(console, session, "/console/media", "Person", body)
    })
}

async fn view(
    console: &Console,
    session: &Session,
    phone: &Phone,
    above: Markup,
) -> anyhow::Result<Markup> {
    let jobs = jobs_of(console, phone).await?;
    let audit = console
        .store
        .audit_log(Some(&phone.masked()), AUDIT_ROWS)
        .await?;
    let name = jobs.iter().find_map(|j| j.event.sender_name.clone());
    let consent = jobs
        .iter()
        .find_map(|j| Step::Consent.read::<ConsentCheckpoint>(&j.checkpoints));
    let present: Vec<JobInfo> = jobs
        .into_iter()
        .filter(|j| j.removed_at_ms.is_none())
        .collect();
    let body = html! {
        (above)
        dl {
            dt { "Number" } dd data-phone=(phone.as_str()) { (phone.as_str()) }
            @if let Some(n) = &name { dt { "Name (from WhatsApp)" } dd { (n) } }
            dt { "Consent" }
            dd data-consent {
                @match (console.config.policy.consent, &consent) {
                    (crate::config::Consent::None, _) => "not asked (policy.consent = \"none\": media is kept for everyone)",
                    (_, Some(c)) if c.given => { "given (" (c.by) ", at the newest message)" },
                    (_, Some(c)) => { "refused (" (c.by) "): media is not taken" },
                    (_, None) => "not recorded yet",
                }
            }
        }
        h2 { "Media" }
        @if present.is_empty() { p { "No media of this number is kept." } }
        @else { (table(console, &present)) }
        h2 { "Erase this person" }
        p { "Removes this person's media from every CRM, the storage and the queue. First a dry run shows what would go; nothing is removed until you confirm." }
        form method="post" action={"/console/person/" (phone.as_str()) "/erase"} {
            (csrf(session))
            input type="hidden" name="step" value="dry_run";
            button type="submit" class="danger" { "Erase this person…" }
        }
        h2 { "Audit log" }
        @if audit.is_empty() { p class="muted" { "Nothing was done to this person's data from the console or the CLI." } }
        @else {
            (page::audit_table(&audit))
        }
    };
    Ok(page::frame(
        console,
        session,
        "/console/media",
        "Person",
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    step: String,
    #[serde(default)]
    confirm: String,
}

pub async fn erase(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
    Path(number): Path<String>,
    Form(form): Form<EraseForm>,
) -> Response {
    let phone = match person(&console, &session, &number) {
        Ok(p) => p,
        Err(page) => return page.into_response(),
    };
    let confirmed = form.step == "erase";
    if confirmed && read_number(&console, &form.confirm).ok().as_ref() != Some(&phone) {
        let above = html! {
            p class="error" role="alert" { "Not erased: the number typed does not match " (phone.as_str()) ". Run the dry run again and type the number exactly." }
        };
        return respond(&console, &session, &phone, above).await;
    }
    let (lines, failed) = match run(&console, &phone, !confirmed).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("A console erasure failed: {e:#}");
            let above = html! { p class="error" role="alert" { "The erasure stopped: " (format!("{e:#}")) ". Nothing more was removed; run it again to finish." } };
            return respond(&console, &session, &phone, above).await;
        }
    };
    if confirmed {
        crate::audit::erasure(console.store.as_ref(), &session.user, &phone, failed).await;
        tracing::info!(user = %session.user, phone = %phone.logged(), failed, "Erased from the console.");
    }
    let report = html! { pre class="report" data-erase=(if confirmed { "done" } else { "dry_run" }) { @for l in &lines { (l) "\n" } } };
    let above = if confirmed {
        html! {
            @if failed { p class="error" role="alert" { "A place failed (below); run the erasure again to finish." } }
            @else { p class="ok" role="status" { "Erased." } }
            (report)
        }
    } else {
        html! {
            section aria-labelledby="confirm-title" {
                h2 id="confirm-title" { "Dry run: this is what would go" }
                (report)
                form class="stack" method="post" action={"/console/person/" (phone.as_str()) "/erase"} {
                    (csrf(&session))
                    input type="hidden" name="step" value="erase";
                    label for="confirm" { "To erase, type the number " (phone.as_str()) }
                    input id="confirm" name="confirm" type="text" autocomplete="off" required;
                    " "
                    button type="submit" class="danger" { "Erase for good" }
                }
            }
        }
    };
    respond(&console, &session, &phone, above).await
}

async fn respond(console: &Console, session: &Session, phone: &Phone, above: Markup) -> Response {
    match view(console, session, phone, above).await {
        Ok(page) => page.into_response(),
        Err(e) => {
            tracing::warn!("The console's person page failed: {e:#}");
            page::failed(console, session, "/console/media", "this person's media")
        }
    }
}

/// The erasure (or its dry run), its report as lines; true when a place failed.
async fn run(
    console: &Console,
    phone: &Phone,
    dry_run: bool,
) -> anyhow::Result<(Vec<String>, bool)> {
    let lines = Mutex::new(Vec::new());
    let places = erase::Places {
        store: console.store.clone(),
        storage: console.storage.clone(),
        connectors: &console.connectors,
        lease: Duration::from_secs(console.config.queue.lease_seconds),
        link_secret: erase::link_secret(&console.config),
    };
    let say = |line: String| {
        lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    };
    let failed = erase::erase(&places, phone, dry_run, &say).await?;
    Ok((
        lines
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        failed,
    ))
}
