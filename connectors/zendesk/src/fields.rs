//! Custom ticket fields: which Zendesk field type each canonical attribute takes, how its value is
//! written, and the account's fields as listed (`GET /api/v2/ticket_fields`, custom ones only).
//! Types: developer.zendesk.com ticket_fields reference (text, textarea, integer, decimal, date, …;
//! a date field holds `YYYY-MM-DD`).

use serde_json::Value;
use wa2crm_core::connector::AttributeValue;
use wa2crm_core::{CanonicalAttribute as A, MediaRecord};

/// A custom field as Zendesk lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub id: u64,
    pub field_type: String,
    pub title: String,
    /// User fields: the key values are written under.
    pub key: Option<String>,
}

/// The custom fields in a `ticket_fields` or `user_fields` list (system fields are not removable).
pub fn custom_fields(list: &Value) -> Vec<CustomField> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|f| f.get("removable").and_then(Value::as_bool) != Some(false))
        .filter(|f| f.get("active").and_then(Value::as_bool) != Some(false))
        .filter_map(|f| {
            Some(CustomField {
                id: f.get("id")?.as_u64()?,
                field_type: f.get("type")?.as_str()?.to_owned(),
                title: f.get("title")?.as_str()?.to_owned(),
                key: f.get("key").and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect()
}

/// The field types an attribute may be written to; the first is what `provision` creates.
pub fn accepted_types(attribute: A) -> &'static [&'static str] {
    match attribute {
        A::SizeBytes => &["integer", "decimal", "text"],
        A::DurationSeconds => &["decimal", "text"],
        A::ReceivedAt => &["text", "date"],
        A::Caption | A::Tags => &["textarea", "text"],
        _ => &["text", "textarea"],
    }
}

/// An attribute's value for a field of `field_type` (null when the record has none: the field is
/// cleared rather than left showing an earlier media's value).
pub fn value(record: &MediaRecord, attribute: A, field_type: &str) -> Value {
    let Some(v) = record.attribute(attribute) else {
        return Value::Null;
    };
    match (v, field_type) {
        (AttributeValue::Text(t), _) => t.into(),
        (AttributeValue::Integer(n), "integer" | "decimal") => n.into(),
        (AttributeValue::Integer(n), _) => n.to_string().into(),
        (AttributeValue::Number(x), "decimal") => ((x * 100.0).round() / 100.0).into(),
        (AttributeValue::Number(x), _) => format!("{x:.2}").into(),
        (AttributeValue::List(tags), _) => tags.join(", ").into(),
        (AttributeValue::DateTime(t), "date") => t.date().to_string().into(),
        (AttributeValue::DateTime(t), _) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
            .into(),
    }
}

/// The mapped fields' `custom_fields` entries for `record`; `Err` names a mapped title the
/// account has no field for (or several).
pub fn entries(
    record: &MediaRecord,
    mapping: &wa2crm_core::FieldMapping,
    fields: &[CustomField],
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (attribute, title) in mapping.iter() {
        let field = find(fields, title)?;
        out.push(serde_json::json!({
            "id": field.id,
            "value": value(record, attribute, &field.field_type),
        }));
    }
    Ok(out)
}

/// The one field titled `title`. Titles are not unique in Zendesk: two fields with the mapped
/// title are a problem the admin must settle, not a guess.
pub fn find<'f>(fields: &'f [CustomField], title: &str) -> Result<&'f CustomField, String> {
    let mut same = fields.iter().filter(|f| f.title == title);
    match (same.next(), same.next()) {
        (Some(f), None) => Ok(f),
        (None, _) => Err(format!(
            "the account has no custom ticket field titled {title:?}: run `wa2crm provision`, or \
             create it in Admin Center → Objects and rules → Tickets → Fields"
        )),
        (Some(_), Some(_)) => Err(format!(
            "several ticket fields are titled {title:?}: rename or deactivate all but one"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;
    use wa2crm_core::{FieldMapping, MediaKind, Phone};

    use super::*;

    fn record() -> MediaRecord {
        MediaRecord {
            message_id: "wamid.1".into(),
            file_url: "https://w.example/media/t".into(),
            storage_uri: "s3://b/k.mp4".into(),
            media_type: MediaKind::Video,
            mime_type: "video/mp4".into(),
            size_bytes: 2048,
            duration_seconds: Some(12.345),
            tags: vec!["a".into(), "b".into()],
            caption: None,
            file_name: None,
            sender: Phone::parse("+4915112345678").unwrap(),
            sender_name: None,
            received_at: time::macros::datetime!(2026-12-04 10:00 UTC),
            sha256: "ab".into(),
            rendition_url: None,
        }
    }

    #[test]
    fn values_take_the_fields_type() {
        let r = record();
        assert_eq!(value(&r, A::SizeBytes, "integer"), json!(2048));
        assert_eq!(value(&r, A::SizeBytes, "text"), json!("2048"));
        assert_eq!(value(&r, A::DurationSeconds, "decimal"), json!(12.35));
        assert_eq!(value(&r, A::DurationSeconds, "text"), json!("12.35"));
        assert_eq!(value(&r, A::Tags, "textarea"), json!("a, b"));
        assert_eq!(value(&r, A::ReceivedAt, "date"), json!("2026-12-04"));
        assert_eq!(
            value(&r, A::ReceivedAt, "text"),
            json!("2026-12-04T10:00:00Z")
        );
        assert_eq!(
            value(&r, A::Caption, "textarea"),
            Value::Null,
            "no caption clears"
        );
    }

    #[test]
    fn a_mapped_title_must_name_exactly_one_custom_field() {
        let listed = custom_fields(&json!([
            {"id": 1, "type": "subject", "title": "Subject", "removable": false},
            {"id": 7, "type": "text", "title": "Media link", "removable": true},
            {"id": 8, "type": "text", "title": "Twice", "removable": true},
            {"id": 9, "type": "text", "title": "Twice", "removable": true},
            {"id": 10, "type": "text", "title": "Old", "removable": true, "active": false},
        ]));
        assert_eq!(listed.len(), 3, "system and inactive fields are not ours");
        let mapping = FieldMapping::new([(A::FileUrl, "Media link".to_owned())]);
        assert_eq!(
            entries(&record(), &mapping, &listed).unwrap(),
            [json!({"id": 7, "value": "https://w.example/media/t"})]
        );
        assert!(find(&listed, "Twice").unwrap_err().contains("several"));
        assert!(find(&listed, "Old").unwrap_err().contains("provision"));
    }
}
