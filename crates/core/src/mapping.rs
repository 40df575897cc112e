//! Which CRM field receives which attribute of a media record.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// The attributes of a stored media item that a mapping may name (docs/ARCHITECTURE.md, "The public contract").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanonicalAttribute {
    MessageId,
    FileUrl,
    StorageUri,
    MediaType,
    MimeType,
    SizeBytes,
    DurationSeconds,
    Tags,
    Caption,
    FileName,
    Sender,
    SenderName,
    ReceivedAt,
    Sha256,
    RenditionUrl,
}

impl CanonicalAttribute {
    pub const ALL: [CanonicalAttribute; 15] = [
        CanonicalAttribute::MessageId,
        CanonicalAttribute::FileUrl,
        CanonicalAttribute::StorageUri,
        CanonicalAttribute::MediaType,
        CanonicalAttribute::MimeType,
        CanonicalAttribute::SizeBytes,
        CanonicalAttribute::DurationSeconds,
        CanonicalAttribute::Tags,
        CanonicalAttribute::Caption,
        CanonicalAttribute::FileName,
        CanonicalAttribute::Sender,
        CanonicalAttribute::SenderName,
        CanonicalAttribute::ReceivedAt,
        CanonicalAttribute::Sha256,
        CanonicalAttribute::RenditionUrl,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CanonicalAttribute::MessageId => "message_id",
            CanonicalAttribute::FileUrl => "file_url",
            CanonicalAttribute::StorageUri => "storage_uri",
            CanonicalAttribute::MediaType => "media_type",
            CanonicalAttribute::MimeType => "mime_type",
            CanonicalAttribute::SizeBytes => "size_bytes",
            CanonicalAttribute::DurationSeconds => "duration_seconds",
            CanonicalAttribute::Tags => "tags",
            CanonicalAttribute::Caption => "caption",
            CanonicalAttribute::FileName => "file_name",
            CanonicalAttribute::Sender => "sender",
            CanonicalAttribute::SenderName => "sender_name",
            CanonicalAttribute::ReceivedAt => "received_at",
            CanonicalAttribute::Sha256 => "sha256",
            CanonicalAttribute::RenditionUrl => "rendition_url",
        }
    }

    fn names() -> String {
        CanonicalAttribute::ALL
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for CanonicalAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CanonicalAttribute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CanonicalAttribute::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown attribute {s:?}; a mapping may name: {}",
                    CanonicalAttribute::names()
                )
            })
    }
}

impl<'de> Deserialize<'de> for CanonicalAttribute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A connector's `fields` table: canonical attribute → CRM field or property name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldMapping(BTreeMap<CanonicalAttribute, String>);

/// One thing wrong with a mapping, worded for the admin who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    /// The attribute (config key under `fields`) the problem is about.
    pub attribute: CanonicalAttribute,
    pub problem: String,
}

impl FieldMapping {
    pub fn new(entries: impl IntoIterator<Item = (CanonicalAttribute, String)>) -> Self {
        FieldMapping(entries.into_iter().collect())
    }

    pub fn get(&self, attribute: CanonicalAttribute) -> Option<&str> {
        self.0.get(&attribute).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (CanonicalAttribute, &str)> {
        self.0.iter().map(|(a, f)| (*a, f.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Pure checks a mapping must pass before any CRM is contacted: every target named, no CRM
    /// field fed by two attributes (the second write would silently overwrite the first).
    pub fn validate(&self) -> Vec<MappingProblem> {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<&str, CanonicalAttribute> = BTreeMap::new();
        for (attribute, field) in self.iter() {
            let trimmed = field.trim();
            if trimmed.is_empty() {
                problems.push(MappingProblem {
                    attribute,
                    problem: "the CRM field name is empty".into(),
                });
                continue;
            }
            if trimmed != field {
                problems.push(MappingProblem {
                    attribute,
                    problem: format!("the CRM field name {field:?} has leading or trailing spaces"),
                });
            }
            if let Some(first) = seen.insert(trimmed, attribute) {
                problems.push(MappingProblem {
                    attribute,
                    problem: format!(
                        "CRM field {trimmed:?} is already mapped from {first}; each field can hold one attribute"
                    ),
                });
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_config_table_and_rejects_unknown_attributes() {
        let m: FieldMapping =
            serde_json::from_str(r#"{"file_url":"wa_media_url","duration_seconds":"wa_dur"}"#)
                .unwrap();
        assert_eq!(m.get(CanonicalAttribute::FileUrl), Some("wa_media_url"));
        assert_eq!(m.get(CanonicalAttribute::Tags), None);
        let err = serde_json::from_str::<FieldMapping>(r#"{"length":"x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown attribute \"length\""),
            "{err}"
        );
        assert!(err.to_string().contains("duration_seconds"), "{err}");
    }

    #[test]
    fn every_name_round_trips() {
        for a in CanonicalAttribute::ALL {
            assert_eq!(a.as_str().parse::<CanonicalAttribute>().unwrap(), a);
        }
    }

    #[test]
    fn validate_reports_empty_and_doubled_fields() {
        let m = FieldMapping::new([
            (CanonicalAttribute::FileUrl, "url".to_string()),
            (CanonicalAttribute::StorageUri, "url".to_string()),
            (CanonicalAttribute::Caption, " ".to_string()),
        ]);
        let problems = m.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.attribute == CanonicalAttribute::Caption && p.problem.contains("empty"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.attribute == CanonicalAttribute::StorageUri
                    && p.problem.contains("already mapped from file_url"))
        );
    }
}
