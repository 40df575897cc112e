//! Which ticket a customer's media goes on (`ticket_policy`), decided from the requester's own
//! tickets: pure, so every branch is tested here.
//!
//! A caption is the customer's text: a `#1234` in it may only pick one of that customer's own
//! tickets. Anything else (another requester's ticket, a closed one, a number that is no ticket)
//! falls back to the default, or a customer could put media on a stranger's ticket by typing its
//! number.

use crate::config::TicketPolicy;

/// What the connector knows of one of the requester's tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSummary {
    pub id: u64,
    /// `new`, `open`, `pending`, `hold`, `solved`, `closed`.
    pub status: String,
    /// RFC 3339, as Zendesk gives it: compared as text, which orders UTC timestamps correctly.
    pub updated_at: String,
}

impl TicketSummary {
    /// A closed ticket can no longer be updated (Zendesk answers 422); a solved one is reopened
    /// by a new comment, which is not what a customer's new media should do to it.
    fn takes_media(&self) -> bool {
        !matches!(self.status.as_str(), "solved" | "closed")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketChoice {
    Existing(u64),
    New,
}

/// The ticket for a media of this requester.
pub fn choose(
    policy: TicketPolicy,
    caption: Option<&str>,
    requester_tickets: &[TicketSummary],
) -> TicketChoice {
    let open_or_new = || {
        requester_tickets
            .iter()
            .filter(|t| t.takes_media())
            .max_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)))
            .map_or(TicketChoice::New, |t| TicketChoice::Existing(t.id))
    };
    match policy {
        TicketPolicy::NewPerMedia => TicketChoice::New,
        TicketPolicy::OpenOrNew => open_or_new(),
        TicketPolicy::TicketIdFromCaption => caption
            .and_then(ticket_id_in_caption)
            .and_then(|id| {
                requester_tickets
                    .iter()
                    .find(|t| t.id == id && t.status != "closed")
            })
            .map_or_else(open_or_new, |t| TicketChoice::Existing(t.id)),
    }
}

/// The first `#1234` in a caption: `#` not preceded by a letter or digit (so `abc#12` and
/// `C#7` are not tickets), then 1 to 12 digits not followed by another digit.
pub fn ticket_id_in_caption(caption: &str) -> Option<u64> {
    let bytes = caption.as_bytes();
    for (i, _) in caption.match_indices('#') {
        if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let digits: &str = {
            let rest = &caption[i + 1..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            &rest[..end]
        };
        if (1..=12).contains(&digits.len())
            && let Ok(id) = digits.parse::<u64>()
            && id > 0
        {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, status: &str, updated_at: &str) -> TicketSummary {
        TicketSummary {
            id,
            status: status.into(),
            updated_at: updated_at.into(),
        }
    }

    fn theirs() -> Vec<TicketSummary> {
        vec![
            t(10, "solved", "2026-12-03T10:00:00Z"),
            t(11, "open", "2026-12-01T09:00:00Z"),
            t(12, "pending", "2026-12-02T09:00:00Z"),
            t(13, "closed", "2026-12-04T08:00:00Z"),
        ]
    }

    #[test]
    fn open_or_new_takes_the_most_recent_ticket_still_open() {
        assert_eq!(
            choose(TicketPolicy::OpenOrNew, None, &theirs()),
            TicketChoice::Existing(12),
            "pending counts as open; solved and closed do not"
        );
        let done = [
            t(10, "solved", "2026-12-03T10:00:00Z"),
            t(13, "closed", "2026-12-04T08:00:00Z"),
        ];
        assert_eq!(
            choose(TicketPolicy::OpenOrNew, None, &done),
            TicketChoice::New
        );
        assert_eq!(
            choose(TicketPolicy::OpenOrNew, None, &[]),
            TicketChoice::New
        );
    }

    #[test]
    fn new_per_media_always_opens_one() {
        assert_eq!(
            choose(TicketPolicy::NewPerMedia, Some("#11"), &theirs()),
            TicketChoice::New
        );
    }

    #[test]
    fn a_caption_picks_only_the_customers_own_ticket() {
        let p = TicketPolicy::TicketIdFromCaption;
        assert_eq!(
            choose(p, Some("it broke again #11"), &theirs()),
            TicketChoice::Existing(11)
        );
        assert_eq!(
            choose(p, Some("see #10"), &theirs()),
            TicketChoice::Existing(10),
            "a solved ticket named by its customer is reopened by the comment"
        );
        assert_eq!(
            choose(p, Some("see #13"), &theirs()),
            TicketChoice::Existing(12),
            "closed: the default"
        );
        assert_eq!(
            choose(p, Some("#99 is my neighbour's"), &theirs()),
            TicketChoice::Existing(12),
            "another requester's ticket: the default"
        );
        assert_eq!(choose(p, None, &theirs()), TicketChoice::Existing(12));
        assert_eq!(choose(p, Some("#99"), &[]), TicketChoice::New);
    }

    #[test]
    fn ticket_numbers_are_read_strictly() {
        for (caption, id) in [
            ("#1234", Some(1234)),
            ("ticket #1234, please", Some(1234)),
            ("(#77)", Some(77)),
            ("#abc then #5", Some(5)),
            ("C#7 and abc#12", None),
            ("#0", None),
            ("#", None),
            ("#1234567890123", None),
            ("nummer ＃12", None),
            ("", None),
        ] {
            assert_eq!(ticket_id_in_caption(caption), id, "{caption:?}");
        }
    }
}
