//! Writing a batch: the senders' Contacts are looked up by `contact_key` (one SOQL query), the
//! missing ones created with the WhatsApp profile name (existing Contacts are never touched), and
//! the media records upserted by `external_id` through sObject Collections (≤ 200 a call,
//! `allOrNone` false), each linked to its Contact through the Contact's external ID — no query for
//! Contact ids. Three calls per 200 media at most; two when every sender is known.

use std::collections::{BTreeMap, HashMap, HashSet};

use reqwest::Method;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use wa2crm_core::connector::AttributeValue;
use wa2crm_core::{Delivered, Error, MediaRecord, Result};

use crate::Salesforce;
use crate::api::describe;

/// sObject Collections' limit.
pub const MAX_RECORDS: usize = 200;

/// A value as Salesforce's JSON takes it: numbers as numbers, datetimes as ISO 8601 UTC, tags
/// `;`-joined (a multi-select picklist's separator; a text field reads the same).
pub fn value(v: &AttributeValue<'_>) -> Value {
    match v {
        AttributeValue::Text(s) => json!(s),
        AttributeValue::Integer(n) => json!(n),
        AttributeValue::Number(x) => json!((x * 1000.0).round() / 1000.0),
        AttributeValue::List([]) => Value::Null,
        AttributeValue::List(items) => json!(items.join(";")),
        AttributeValue::DateTime(t) => json!(
            t.to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .unwrap_or_default()
        ),
    }
}

/// `Contact__c` → `Contact__r`: the relationship a lookup is set through.
pub fn relationship(lookup: &str) -> String {
    match lookup.strip_suffix("__c") {
        Some(base) => format!("{base}__r"),
        // A standard lookup (ContactId) is set through its relationship name without Id.
        None => lookup.strip_suffix("Id").unwrap_or(lookup).to_owned(),
    }
}

pub(crate) fn soql_in(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn query_path(soql: &str) -> String {
    let encoded: String = soql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect();
    format!("/query?q={encoded}")
}

fn copy(e: &Error) -> Error {
    Error::new(e.kind(), e.message())
}

/// One record's result in a Collections answer.
fn save_result(object: &str, r: &Value) -> Result<(String, bool)> {
    if r.get("success").and_then(Value::as_bool) == Some(true) {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Ok((
            id,
            r.get("created").and_then(Value::as_bool).unwrap_or(false),
        ));
    }
    let errors = r.get("errors").cloned().unwrap_or(Value::Null);
    let message = format!(
        "Salesforce refused the {object} record: {}",
        describe(&errors)
    );
    let code = errors
        .get(0)
        .and_then(|e| e.get("statusCode"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(match code {
        // Another transaction held the row: worth another try.
        "UNABLE_TO_LOCK_ROW" | "REQUEST_RUNNING_TOO_LONG" => Error::transient(message),
        _ => Error::permanent(message),
    })
}

impl Salesforce {
    pub async fn deliver_batch(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
        if let Err(e) = self.api.pause.check() {
            return batch.iter().map(|_| Err(copy(&e))).collect();
        }
        let contacts = self.ensure_contacts(batch).await;
        let mut out: Vec<Option<Result<Delivered>>> = batch.iter().map(|_| None).collect();
        let mut ready = Vec::new();
        for (i, c) in contacts.into_iter().enumerate() {
            match c {
                Ok(()) => ready.push(i),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        for chunk in ready.chunks(MAX_RECORDS) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|i| self.media_record(&batch[*i]))
                .collect();
            let results = self
                .upsert(&self.config.object, &self.config.external_id, records)
                .await;
            let mut uploads: Vec<(usize, String)> = Vec::new();
            for (i, r) in chunk.iter().zip(results) {
                if self.config.files
                    && let Ok((id, _)) = &r
                {
                    uploads.push((*i, id.clone()));
                }
                out[*i] = Some(r.map(|(crm_id, created)| Delivered { crm_id, created }));
            }
            if !uploads.is_empty() {
                let items: Vec<(&MediaRecord, String)> = uploads
                    .iter()
                    .map(|(i, id)| (&batch[*i], id.clone()))
                    .collect();
                for ((i, _), r) in uploads.iter().zip(self.upload_files(&items).await) {
                    // The record is written; without its file the job is not done yet.
                    if let Err(e) = r {
                        out[*i] = Some(Err(e));
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::transient("no result for this record"))))
            .collect()
    }

    fn media_record(&self, r: &MediaRecord) -> Value {
        let c = &self.config;
        let mut m = Map::new();
        m.insert("attributes".into(), json!({"type": c.object}));
        for (attribute, field) in c.fields.iter() {
            let v = r.attribute(attribute).map_or(Value::Null, |v| value(&v));
            m.insert(field.to_owned(), v);
        }
        m.insert(c.external_id.clone(), json!(r.message_id));
        m.insert(
            relationship(&c.contact_lookup),
            json!({"attributes": {"type": "Contact"}, c.contact_key.clone(): r.sender.as_str()}),
        );
        Value::Object(m)
    }

    /// Makes sure every sender has a Contact; one result per record.
    async fn ensure_contacts(&self, batch: &[MediaRecord]) -> Vec<Result<()>> {
        let key = &self.config.contact_key;
        let senders: Vec<&str> = {
            let mut seen = HashSet::new();
            batch
                .iter()
                .map(|r| r.sender.as_str())
                .filter(|s| seen.insert(*s))
                .collect()
        };
        let mut known: HashSet<String> = HashSet::new();
        for chunk in senders.chunks(MAX_RECORDS) {
            let soql = format!(
                "SELECT Id, {key} FROM Contact WHERE {key} IN ({})",
                soql_in(chunk)
            );
            let answer = match self
                .api
                .call(Method::GET, &query_path(&soql), None, true)
                .await
            {
                Ok(a) if a.status.is_success() => a,
                Ok(a) => {
                    let e = Error::permanent(format!(
                        "looking up Contacts by {key}: {}",
                        describe(&a.body)
                    ));
                    return batch.iter().map(|_| Err(copy(&e))).collect();
                }
                Err(e) => return batch.iter().map(|_| Err(copy(&e))).collect(),
            };
            for r in answer
                .body
                .get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(v) = r.get(key.as_str()).and_then(Value::as_str) {
                    known.insert(v.to_owned());
                }
            }
        }
        // The profile name of each new sender (the first record that has one).
        let mut new: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for r in batch {
            if !known.contains(r.sender.as_str()) {
                let name = new.entry(r.sender.as_str()).or_default();
                if name.is_none() {
                    *name = r.sender_name.as_deref();
                }
            }
        }
        let mut failed: HashMap<String, Error> = HashMap::new();
        let new: Vec<(&str, Option<&str>)> = new.into_iter().collect();
        for chunk in new.chunks(MAX_RECORDS) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(phone, name)| {
                    let name = name.map(str::trim).filter(|n| !n.is_empty());
                    let (first, last) = match name.and_then(|n| n.rsplit_once(' ')) {
                        Some((first, last)) => (Some(first.trim()), last.trim()),
                        // LastName is required: the name, or the number itself.
                        None => (None, name.unwrap_or(phone)),
                    };
                    let mut m = json!({"attributes": {"type": "Contact"}, key.clone(): phone, "LastName": last});
                    if let Some(f) = first {
                        m["FirstName"] = json!(f);
                    }
                    m
                })
                .collect();
            for ((phone, _), r) in chunk.iter().zip(self.upsert("Contact", key, records).await) {
                if let Err(e) = r {
                    failed.insert(
                        phone.to_string(),
                        Error::new(e.kind(), format!("contact {phone}: {}", e.message())),
                    );
                }
            }
        }
        batch
            .iter()
            .map(|r| match failed.get(r.sender.as_str()) {
                Some(e) => Err(copy(e)),
                None => Ok(()),
            })
            .collect()
    }

    /// Collections upsert by an external ID; one result per record, in order.
    async fn upsert(
        &self,
        object: &str,
        external_id: &str,
        records: Vec<Value>,
    ) -> Vec<Result<(String, bool)>> {
        let n = records.len();
        let body = json!({"allOrNone": false, "records": records});
        let path = format!("/composite/sobjects/{object}/{external_id}");
        // An upsert by external ID is idempotent: safe to send again.
        let answer = match self.api.call(Method::PATCH, &path, Some(&body), true).await {
            Ok(a) => a,
            Err(e) => return (0..n).map(|_| Err(copy(&e))).collect(),
        };
        if !answer.status.is_success() {
            let e = Error::permanent(format!(
                "Salesforce refused the {object} upsert ({}): {}",
                answer.status,
                describe(&answer.body)
            ));
            return (0..n).map(|_| Err(copy(&e))).collect();
        }
        let results = answer.body.as_array().cloned().unwrap_or_default();
        (0..n)
            .map(|i| match results.get(i) {
                Some(r) => save_result(object, r),
                None => Err(Error::transient(format!(
                    "Salesforce's {object} upsert answer has no result for this record"
                ))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_relationships_and_queries_are_written_as_salesforce_reads_them() {
        assert_eq!(value(&AttributeValue::Integer(48213)), json!(48213));
        assert_eq!(value(&AttributeValue::Number(3.2004)), json!(3.2));
        let tags = vec!["a".to_string(), "b".to_string()];
        assert_eq!(value(&AttributeValue::List(&tags)), json!("a;b"));
        assert_eq!(
            value(&AttributeValue::List(&[])),
            Value::Null,
            "no tags: the field stays empty"
        );
        assert_eq!(
            value(&AttributeValue::DateTime(
                time::macros::datetime!(2026-11-22 10:00 +01:00)
            )),
            json!("2026-11-22T09:00:00Z")
        );
        assert_eq!(relationship("Contact__c"), "Contact__r");
        assert_eq!(relationship("ContactId"), "Contact");
        assert_eq!(soql_in(&["+1", "o'neil"]), "'+1', 'o\\'neil'");
        assert_eq!(
            query_path("SELECT Id FROM Contact WHERE K__c IN ('+1')"),
            "/query?q=SELECT%20Id%20FROM%20Contact%20WHERE%20K__c%20IN%20%28%27%2B1%27%29"
        );
    }
}
