//! Media: the newest first, found by phone number in any format (`0151 2345 6789` in the
//! console's country, `+49 151…`, `0049…`) and filtered by kind, tag and date; each row plays
//! inline and links to the CRM records it was written to. The files are served from here, behind
//! the console's login, with the same protections as the public media links.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use time::{Date, OffsetDateTime, Time};
use wa2crm_core::{MediaKind, Phone};
use wa2crm_queue::{JobInfo, JobState, MediaFilter, Step};

use super::Console;
use super::auth::Session;
use super::page::{self, bytes, when};
use crate::pipeline::{DeliveredCheckpoint, media_record};

/// Rows on one page.
const PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub tag: String,
    /// `YYYY-MM-DD`, UTC.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub before: Option<i64>,
}

/// A number as people type it, in E.164: international (`+`, `00`), national in the console's
/// country, or the digits of WhatsApp's ids.
pub fn read_number(console: &Console, text: &str) -> Result<Phone, String> {
    let text = text.trim();
    match wa2crm_core::phone_match::parse_typed(text, console.settings.country) {
        Some(p) => Ok(p),
        None if console.settings.country.is_none() => Err(format!(
            "{text:?} is not a number in international form (+49 151 …), and no country is set \
             to read national numbers in (console.default_country)"
        )),
        None => Err(format!("{text:?} is not a phone number")),
    }
}

fn day(text: &str, end: bool) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || format!("{text:?} is not a date like 2026-12-05");
    let mut parts = text.splitn(3, '-').map(str::parse::<u16>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let month = time::Month::try_from(u8::try_from(m).map_err(|_| bad())?).map_err(|_| bad())?;
    let d = Date::from_calendar_date(i32::from(y), month, u8::try_from(d).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    let d = if end { d.next_day().unwrap_or(d) } else { d };
    Ok(Some(
        (OffsetDateTime::new_utc(d, Time::MIDNIGHT).unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

impl Search {
    /// The queue's filters: one per form of the number WhatsApp may use for the person.
    fn filters(&self, console: &Console) -> Result<Vec<MediaFilter>, String> {
        let kind = match self.kind.trim() {
            "" => None,
            k => Some(
                MediaKind::ALL
                    .into_iter()
                    .find(|m| m.as_str() == k)
                    .ok_or_else(|| format!("{k:?} is not a kind of media"))?,
            ),
        };
        let base = MediaFilter {
            sender: None,
            kind,
            tag: Some(self.tag.trim().to_owned()).filter(|t| !t.is_empty()),
            from_ms: day(&self.from, false)?,
            until_ms: day(&self.until, true)?,
            before_id: self.before,
        };
        if self.q.trim().is_empty() {
            return Ok(vec![base]);
        }
        let phone = read_number(console, &self.q)?;
        Ok(wa2crm_core::phone_match::whatsapp_forms(&phone)
            .into_iter()
            .map(|p| MediaFilter {
                sender: Some(p.as_str().to_owned()),
                ..base.clone()
            })
            .collect())
    }

    fn next_page(&self, before: i64) -> String {
        let before = before.to_string();
        serde_urlencoded::to_string([
            ("q", self.q.as_str()),
            ("kind", &self.kind),
            ("tag", &self.tag),
            ("from", &self.from),
            ("until", &self.until),
            ("before", &before),
        ])
        .unwrap_or_default()
    }
}

/// The newest jobs of every filter, merged, newest first.
pub async fn find(
    console: &Console,
    filters: &[MediaFilter],
    limit: usize,
) -> anyhow::Result<Vec<JobInfo>> {
    let mut jobs = Vec::new();
    for f in filters {
        jobs.extend(console.store.media_jobs(f, limit).await?);
    }
    let mut jobs = newest_first(jobs);
    jobs.truncate(limit);
    Ok(jobs)
}

/// Jobs found under several forms of a number, once each, newest first.
pub fn newest_first(mut jobs: Vec<JobInfo>) -> Vec<JobInfo> {
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    jobs.dedup_by_key(|j| j.id);
    jobs
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Extension(session): Extension<Session>,
    Query(search): Query<Search>,
) -> Response {
    let (jobs, problem) = match search.filters(&console) {
        Ok(filters) => match find(&console, &filters, PAGE).await {
            Ok(jobs) => (jobs, None),
            Err(e) => {
                tracing::warn!("The console's media list failed: {e:#}");
                return page::failed(&console, &session, "/console/media", "the media");
            }
        },
        Err(p) => (Vec::new(), Some(p)),
    };
    let body = html! {
        form class="filters" method="get" action="/console/media" role="search" {
            div {
                label for="q" { "Phone number (any format)" }
                input id="q" name="q" type="search" value=(search.q) placeholder="+49 151 … or 0151 …";
            }
            div {
                label for="kind" { "Kind" }
                select id="kind" name="kind" {
                    option value="" { "any" }
                    @for k in MediaKind::ALL {
                        option value=(k.as_str()) selected[search.kind == k.as_str()] { (k.as_str()) }
                    }
                }
            }
            div { label for="tag" { "Tag" } input id="tag" name="tag" type="text" value=(search.tag); }
            div { label for="from" { "From (UTC)" } input id="from" name="from" type="date" value=(search.from); }
            div { label for="until" { "Until (UTC)" } input id="until" name="until" type="date" value=(search.until); }
            button type="submit" { "Search" }
        }
        @if let Some(p) = &problem { p class="error" role="alert" { (p) } }
        @else if jobs.is_empty() { p { "No media found." } }
        @else {
            @if !search.q.trim().is_empty() {
                @if let Ok(phone) = read_number(&console, &search.q) {
                    p data-search-for=(phone.as_str()) { "Media of " a href={"/console/person/" (phone.as_str())} { (phone.as_str()) } " — open the person to see consent or erase." }
                }
            }
            (table(&console, &jobs))
            @if jobs.len() == PAGE {
                @if let Some(last) = jobs.last() {
                    p { a href={"/console/media?" (search.next_page(last.id))} { "Older media" } }
                }
            }
        }
    };
    page::frame(&console, &session, "/console/media", "Media", body).into_response()
}

/// The media table the Media and Person pages share.
pub fn table(console: &Console, jobs: &[JobInfo]) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "Received" } th scope="col" { "From" } th scope="col" { "Media" }
                th scope="col" class="num" { "Size" } th scope="col" class="num" { "Duration" }
                th scope="col" { "Tags" } th scope="col" { "Caption" } th scope="col" { "In the CRM" }
            } }
            tbody {
                @for job in jobs { (row(console, job)) }
            }
        }
    }
}

fn row(console: &Console, job: &JobInfo) -> Markup {
    let e = &job.event;
    let record = media_record(e, &job.checkpoints);
    let delivered: DeliveredCheckpoint = Step::Deliver.read(&job.checkpoints).unwrap_or_default();
    let has_rendition = crate::removal::rendition_of(job).is_some();
    let src = if has_rendition {
        format!("/console/file/{}?rendition=1", job.id)
    } else {
        format!("/console/file/{}", job.id)
    };
    let who = e.sender_name.as_deref().unwrap_or("the customer");
    html! {
        tr data-job=(job.id) {
            td { (when(job.created_at_ms)) }
            td {
                a href={"/console/person/" (e.sender.as_str())} { (e.sender.as_str()) }
                @if let Some(n) = &e.sender_name { br; span class="muted" { (n) } }
            }
            td {
                @if record.is_none() {
                    span class="muted" { (e.kind.as_str()) ": " (state_words(job)) }
                } @else {
                    @match e.kind {
                        MediaKind::Audio | MediaKind::Voice => {
                            audio controls preload="metadata" src=(src) aria-label={"Voice note from " (who)} { a href=(src) { "Download" } }
                        }
                        MediaKind::Video => {
                            video controls preload="metadata" src=(src) aria-label={"Video from " (who)} { a href=(src) { "Download" } }
                        }
                        MediaKind::Image | MediaKind::Sticker => {
                            a href=(src) { img class="thumb" src=(src) alt={"Image from " (who)}; }
                        }
                        MediaKind::Document => {
                            a href=(src) { "Open " (e.file_name.as_deref().unwrap_or("the document")) }
                        }
                    }
                }
            }
            td class="num" { @if let Some(r) = &record { (bytes(r.size_bytes)) } }
            td class="num" { @if let Some(d) = record.as_ref().and_then(|r| r.duration_seconds) { (format!("{d:.0} s")) } }
            td class="tags" { @if let Some(r) = &record { @for t in &r.tags { span { (t) } } } }
            td class="caption" { (e.caption.as_deref().unwrap_or_default()) }
            td {
                @for (name, d) in &delivered {
                    @let what = written_to(name, d);
                    @match console.connectors.get(name).and_then(|c| c.record_url(d)) {
                        Some(url) => { a href=(url) rel="noopener noreferrer" target="_blank" { (what) } br; }
                        None => { (what) br; }
                    }
                }
                @if delivered.is_empty() { span class="muted" { (state_words(job)) } }
            }
        }
    }
}

/// What a connector wrote, in a row: the person it is on when the connector named one (for a
/// CRM with several kinds of person, the kind: Zoho's `Leads:…` is "Lead …"), else the record.
fn written_to(connector: &str, d: &wa2crm_core::Delivered) -> String {
    match &d.contact {
        Some(c) => match c.split_once(':') {
            Some((kind, id)) => format!("{connector}: {} {id}", kind.trim_end_matches('s')),
            None => format!("{connector}: contact {c}"),
        },
        None => format!("{connector}: {}", d.crm_id),
    }
}

fn state_words(job: &JobInfo) -> &'static str {
    match job.state {
        JobState::Queued if job.attempts > 0 => "retrying",
        JobState::Queued => "waiting",
        JobState::Running => "in progress",
        JobState::Done if job.checkpoints.contains_key(Step::Deliver.as_str()) => "delivered",
        JobState::Done => "not taken (no consent)",
        JobState::Dead => "dead-lettered",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct FileQuery {
    #[serde(default)]
    rendition: Option<u8>,
}

/// A job's stored file (or its rendition), for the players.
pub async fn file(
    State(console): State<Arc<Console>>,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
    request: Request,
) -> Response {
    let job = match console.store.get(id).await {
        Ok(Some(job)) if job.removed_at_ms.is_none() => job,
        Ok(_) => return (StatusCode::NOT_FOUND, "no such media\n").into_response(),
        Err(e) => {
            tracing::warn!("The console could not read job {id}: {e}");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response();
        }
    };
    let key = if q.rendition == Some(1) {
        crate::removal::rendition_of(&job)
    } else {
        crate::removal::object_of(&job)
    };
    match key {
        Some(key) => crate::server::media::serve_object(&console.storage, &key, request).await,
        None => (StatusCode::NOT_FOUND, "no stored file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa2crm_core::Delivered;

    #[test]
    fn a_row_names_the_person_a_media_is_on_or_its_record() {
        let on = |contact: &str| Delivered {
            contact: Some(contact.into()),
            ..Delivered::new("900", true)
        };
        assert_eq!(written_to("hubspot", &on("51")), "hubspot: contact 51");
        assert_eq!(written_to("zoho", &on("Leads:77")), "zoho: Lead 77");
        assert_eq!(written_to("zoho", &on("Contacts:78")), "zoho: Contact 78");
        assert_eq!(
            written_to("salesforce", &Delivered::new("a0B5g00000XyZ12AAB", true)),
            "salesforce: a0B5g00000XyZ12AAB"
        );
    }
}
