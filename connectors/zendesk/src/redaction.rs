//! What a redaction sends: the comment's own `html_body` with the parts to remove marked, as
//! Zendesk's "Redact Ticket Comment In Agent Workspace" takes it (developer.zendesk.com ticket
//! comments): text wrapped in `<redact>`, a link removed by a `redact` attribute on its `<a>` tag
//! (wrapping its text alone would leave the link's address in place). Pure, so every case is
//! tested here; docs/vendors/zendesk.md has the sources.
//!
//! A plain-text note is rendered by Zendesk as one `<div>` with `<br>` between lines and each
//! address as a link; blocks of a note are separated by an empty line.

/// The text of the customer's or ours as it appears inside html.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `segment` marked whole: each text run in `<redact>`, each link tagged `redact`, other tags
/// (line breaks) kept.
fn mark(segment: &str) -> String {
    let mut out = String::new();
    let mut rest = segment;
    while !rest.is_empty() {
        if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            let tag = &rest[..=end];
            if tag.starts_with("<a ") && !tag.contains(" redact") {
                out.push_str(&tag[..tag.len() - 1]);
                out.push_str(" redact>");
            } else {
                out.push_str(tag);
            }
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '<')
            .map_or(rest.len(), |(i, _)| i);
        out.push_str("<redact>");
        out.push_str(&rest[..end]);
        out.push_str("</redact>");
        rest = &rest[end..];
    }
    out
}

/// `html` with each region (byte ranges) marked; overlapping regions are merged.
fn mark_regions(html: &str, mut regions: Vec<(usize, usize)>) -> String {
    regions.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in regions {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = String::new();
    let mut at = 0;
    for (s, e) in merged {
        out.push_str(&html[at..s]);
        out.push_str(&mark(&html[s..e]));
        at = e;
    }
    out.push_str(&html[at..]);
    out
}

/// Every place `urls` appear (as text or as a link), marked; `None` when none appears (already
/// redacted, or never there).
pub fn mark_urls(html: &str, urls: &[&str]) -> Option<String> {
    let mut regions = Vec::new();
    for url in urls.iter().filter(|u| !u.is_empty()) {
        let needle = escape(url);
        for (s, _) in html.match_indices(&needle) {
            let open = html[..s].rfind("<a ");
            let closed = html[..s].rfind("</a>");
            let inside_link = match (open, closed) {
                (Some(o), Some(c)) => o > c,
                (Some(_), None) => true,
                _ => false,
            };
            let end_of_link = html[s..].find("</a>").map(|i| s + i + "</a>".len());
            match (inside_link, open, end_of_link) {
                (true, Some(o), Some(e)) => regions.push((o, e)),
                _ => regions.push((s, s + needle.len())),
            }
        }
    }
    (!regions.is_empty()).then(|| mark_regions(html, regions))
}

/// The byte range of the note's lines (between the `<div …>` and `</div>`), each with its range.
fn lines(html: &str) -> Vec<(usize, usize)> {
    let start = if html.starts_with("<div") {
        html.find('>').map_or(0, |i| i + 1)
    } else {
        0
    };
    let end = if html.ends_with("</div>") {
        html.len() - "</div>".len()
    } else {
        html.len()
    };
    let mut out = Vec::new();
    let mut at = start;
    for piece in html[start..end.max(start)].split("<br>") {
        out.push((at, at + piece.len()));
        at += piece.len() + "<br>".len();
    }
    out
}

/// The block (lines between empty lines) whose last line is `marker`, marked; `None` when no
/// such block is left.
pub fn mark_block(html: &str, marker: &str) -> Option<String> {
    let marker = escape(marker);
    let lines = lines(html);
    let mut block_start: Option<(usize, usize)> = None;
    for &(s, e) in &lines {
        let line = &html[s..e];
        if line.is_empty() {
            block_start = None;
            continue;
        }
        let first = *block_start.get_or_insert((s, e));
        if line.trim() == marker {
            return Some(mark_regions(html, vec![(first.0, e)]));
        }
    }
    None
}

/// The whole note marked.
pub fn mark_all(html: &str) -> String {
    let lines = lines(html);
    match (lines.first(), lines.last()) {
        (Some(&(s, _)), Some(&(_, e))) if e > s => mark_regions(html, vec![(s, e)]),
        _ => html.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://w.example/media/a?x=1&y=2";

    fn note() -> String {
        let link = escape(A);
        format!(
            "<div class=\"zd-comment\" dir=\"auto\">WhatsApp video from +49151<br>Open: \
             <a href=\"{link}\" rel=\"noopener noreferrer\">{link}</a><br>wa2crm: wamid.A<br><br>\
             WhatsApp audio from +49151<br>Open: https://w.example/media/b<br>wa2crm: wamid.B</div>"
        )
    }

    #[test]
    fn a_link_is_removed_with_its_address() {
        let marked = mark_urls(&note(), &[A]).unwrap();
        let link = escape(A);
        assert!(
            marked.contains(&format!(
                "Open: <a href=\"{link}\" rel=\"noopener noreferrer\" redact><redact>{link}</redact></a>"
            )),
            "{marked}"
        );
        assert_eq!(
            mark_urls(&note(), &["https://w.example/media/b"])
                .unwrap()
                .matches("<redact>https://w.example/media/b</redact>")
                .count(),
            1,
            "an address left as text is wrapped"
        );
        assert_eq!(mark_urls(&note(), &["https://w.example/media/c"]), None);
    }

    #[test]
    fn a_block_is_marked_from_its_first_line_to_its_marker() {
        let marked = mark_block(&note(), "wa2crm: wamid.B").unwrap();
        assert!(marked.contains(
            "<br><br><redact>WhatsApp audio from +49151</redact><br><redact>Open: \
             https://w.example/media/b</redact><br><redact>wa2crm: wamid.B</redact></div>"
        ));
        assert!(
            marked.contains("wa2crm: wamid.A<br>"),
            "the other media's block stays"
        );
        assert_eq!(mark_block(&note(), "wa2crm: wamid.C"), None);
    }

    #[test]
    fn the_whole_note_keeps_its_frame() {
        let marked = mark_all(&note());
        assert!(marked.starts_with("<div class=\"zd-comment\" dir=\"auto\"><redact>WhatsApp"));
        assert!(marked.ends_with("<redact>wa2crm: wamid.B</redact></div>"));
        assert!(marked.contains(" redact><redact>"));
    }
}
