//! Which media a notification is for, and the CRM task a connector creates for the contact's
//! owner when new media arrives (`[connectors.NAME.task]`): its subject and due date are the same
//! whichever CRM holds it.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::{MediaKind, MediaRecord};

/// Kinds and tags a notification is limited to; empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaFilter {
    pub kinds: Vec<MediaKind>,
    pub tags: Vec<String>,
}

impl MediaFilter {
    /// Of one of the kinds (if any are named) and with one of the tags (if any are named).
    pub fn matches(&self, r: &MediaRecord) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&r.media_type))
            && (self.tags.is_empty() || r.tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// `[connectors.NAME.task]`: a task for the contact's owner per new media.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Only for media of these kinds; empty: every kind.
    #[serde(default)]
    pub kinds: Vec<MediaKind>,
    /// Only for media with one of these tags; empty: any media.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Due this many hours after the media arrived (0–720).
    #[serde(default = "default_due_hours")]
    pub due_hours: u32,
}

fn default_due_hours() -> u32 {
    24
}

impl TaskConfig {
    pub fn filter(&self) -> MediaFilter {
        MediaFilter {
            kinds: self.kinds.clone(),
            tags: self.tags.clone(),
        }
    }

    /// Problems, as `(key under task, what is wrong)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.due_hours > 720 {
            p.push((
                "task.due_hours".into(),
                format!("{} is more than 720 (30 days)", self.due_hours),
            ));
        }
        p
    }

    pub fn due(&self, r: &MediaRecord) -> OffsetDateTime {
        r.received_at + time::Duration::hours(i64::from(self.due_hours))
    }
}

/// The task's title: what arrived and from whom, e.g. "WhatsApp voice note from Ana (+49…)".
pub fn task_subject(r: &MediaRecord) -> String {
    let kind = match r.media_type {
        MediaKind::Voice => "voice note",
        other => other.as_str(),
    };
    match &r.sender_name {
        Some(n) => format!("WhatsApp {kind} from {n} ({})", r.sender),
        None => format!("WhatsApp {kind} from {}", r.sender),
    }
}
