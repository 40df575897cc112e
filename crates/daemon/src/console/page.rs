//! The frame every console page shares — navigation, the open-console notice, the stylesheet —
//! the headers every console answer carries, and small formatters.
//!
//! Customer text (names, captions, file names, dead-letter reasons that quote a vendor) reaches
//! these pages; maud escapes every value it is given, and the Content-Security-Policy allows no
//! script at all, so such text can never run in an operator's browser.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Console;
use super::auth::Session;

/// No script from anywhere; styles and media from here (media also from a storage's presigned
/// `https:` URL); forms post here only; no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
                   media-src 'self' https:; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

const STYLESHEET: &str = include_str!("style.css");

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The sections, in the navigation's order: path, label.
const SECTIONS: [(&str, &str); 4] = [
    ("/console", "Overview"),
    ("/console/dead", "Dead letters"),
    ("/console/media", "Media"),
    ("/console/settings", "Configuration"),
];

/// A page with the navigation, for a logged-in `session`; `current` is its section's path.
pub fn frame(
    console: &Console,
    session: &Session,
    current: &str,
    title: &str,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console sections" {
                        span class="brand" { "wa2crm" }
                        ul {
                            @for (path, label) in SECTIONS {
                                li {
                                    @if path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                        form class="logout" method="post" action="/console/logout" {
                            (csrf(session))
                            span { "Signed in as " strong { (session.user) } }
                            @if !console.is_open() {
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                @if console.is_open() {
                    p class="notice" role="note" {
                        "No login is configured: anyone who can reach " (console.address)
                        " (loopback) can use this console. Set console.users before serving it anywhere else."
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The page of a section whose data could not be read (the reason went to the journal).
pub fn failed(console: &Console, session: &Session, current: &str, what: &str) -> Response {
    let body = html! {
        p class="error" role="alert" {
            "Could not read " (what) " from the queue database; the journal says why. Reload to try again."
        }
    };
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        frame(console, session, current, "Unavailable", body),
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · wa2crm" }
            link rel="stylesheet" href="/console/style.css";
        }
    }
}

/// A page without navigation (the login).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { (body) }
        }
    }
}

/// The hidden field every form of a session carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// `2026-12-05 14:03:07 UTC`.
pub fn when(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|s| {
            let s = s.replacen('T', " ", 1);
            match s.find(['.', 'Z']) {
                Some(at) => format!("{} UTC", &s[..at]),
                None => s,
            }
        })
        .unwrap_or_else(|| ms.to_string())
}

/// `3 min`, `2 h 5 min`, `4 d 1 h`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `1.2 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// A number with thin groups: `1 234 567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// The audit log's entries as a table (the dead letters' and a person's pages).
pub fn audit_table(entries: &[wa2crm_queue::AuditEntry]) -> Markup {
    html! {
        table data-audit {
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Of" } th scope="col" { "Result" } } }
            tbody { @for a in entries { tr { td { (when(a.at_ms)) } td { (a.who) } td { (a.action) } td { (a.subject) } td { (a.detail) } } } }
        }
    }
}

/// Trusted markup from this crate (an SVG chart built from numbers only).
pub fn trusted(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(when(1_733_407_387_000), "2024-12-05 14:03:07 UTC");
        assert_eq!(span(59_999), "59 s");
        assert_eq!(span(3_720_000), "1 h 2 min");
        assert_eq!(span(90_000_000), "1 d 1 h");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(12), "12");
    }
}
