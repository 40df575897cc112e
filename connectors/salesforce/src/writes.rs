//! Writing a batch, in one API call when every sender already has a Contact: a Composite call
//! that looks the senders' Contacts up by `contact_key` (one SOQL query) and upserts the media
//! records by `external_id` through sObject Collections (≤ 200 a call, `allOrNone` false), each
//! linked to its Contact through the Contact's external ID — no query for Contact ids.
//!
//! A record whose sender has no Contact yet fails on that lookup. A second Composite call then
//! creates the missing Contacts with the WhatsApp profile name and upserts those records again.
//! Existing Contacts are never written: what the CRM holds about a person stays as it is.

use std::collections::{BTreeMap, HashMap, HashSet};

use reqwest::Method;
use serde_json::{Map, Value, json};
use wa2crm_core::connector::AttributeValue;
use wa2crm_core::{Delivered, Error, MediaRecord, Result};

use crate::Salesforce;
use crate::api::describe;
use crate::composite::{SubAnswer, Subrequest};
use crate::matching::Link;

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
        AttributeValue::DateTime(t) => json!(wa2crm_core::timestamp::iso_millis(*t)),
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
    format!("/query?q={}", percent(soql))
}

/// `GET /search?q=` for a SOSL statement.
pub(crate) fn search_path(sosl: &str) -> String {
    format!("/search?q={}", percent(sosl))
}

/// Every byte but the unreserved ones percent-encoded (RFC 3986).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
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
        if let Err(e) = self.api.engine.pause.check() {
            return batch.iter().map(|_| Err(e.for_another())).collect();
        }
        let mut out: Vec<Result<Delivered>> = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(MAX_RECORDS) {
            let written = self.write_chunk(chunk).await;
            let uploads: Vec<(&MediaRecord, String)> = if self.config.files {
                chunk
                    .iter()
                    .zip(&written)
                    .filter_map(|(r, w)| Some((r, w.as_ref().ok()?.0.clone())))
                    .collect()
            } else {
                Vec::new()
            };
            let mut uploaded = self.upload_files(&uploads).await.into_iter();
            let written: Vec<Result<(String, bool)>> = written
                .into_iter()
                .map(|w| {
                    let (crm_id, created) = w?;
                    // The record is written; without its file (when wanted) the job is not done.
                    if self.config.files {
                        uploaded
                            .next()
                            .unwrap_or_else(|| Err(Error::transient("no result for this file")))?;
                    }
                    Ok((crm_id, created))
                })
                .collect();
            // Likewise its task, when one is wanted.
            let with_task: Vec<&MediaRecord> = chunk
                .iter()
                .zip(&written)
                .filter(|(_, w)| w.is_ok())
                .map(|(r, _)| r)
                .collect();
            let mut tasks = match &self.config.task {
                Some(task) => self.ensure_tasks(task, &with_task).await,
                None => with_task.iter().map(|_| Ok(())).collect(),
            }
            .into_iter();
            for w in written {
                out.push(w.and_then(|(crm_id, created)| {
                    tasks
                        .next()
                        .unwrap_or_else(|| Err(Error::transient("no result for this task")))?;
                    Ok(Delivered::new(crm_id, created))
                }));
            }
        }
        out
    }

    /// ≤ 200 records: one result (record id, created) per record, in order.
    async fn write_chunk(&self, chunk: &[MediaRecord]) -> Vec<Result<(String, bool)>> {
        let key = &self.config.contact_key;
        let senders: Vec<&str> = {
            let mut seen = HashSet::new();
            chunk
                .iter()
                .map(|r| r.sender.as_str())
                .filter(|s| seen.insert(*s))
                .collect()
        };
        // Senders matched before to a record that cannot take the key: linked by Id.
        let remembered = self.remembered(&senders).await;
        let soql = format!(
            "SELECT Id, {key} FROM Contact WHERE {key} IN ({})",
            soql_in(&senders)
        );
        let lookup = Subrequest {
            reference: "contacts",
            method: Method::GET,
            path: query_path(&soql),
            body: None,
        };
        let records = chunk
            .iter()
            .map(|r| self.media_record(r, remembered.get(r.sender.as_str())))
            .collect();
        let [contacts, media] = match self.composite([lookup, self.media_upsert(records)]).await {
            Ok(parts) => parts,
            Err(e) => return chunk.iter().map(|_| Err(e.for_another())).collect(),
        };
        let mut results = save_results(&self.config.object, chunk.len(), &media);
        let failed: Vec<usize> = (0..chunk.len()).filter(|i| results[*i].is_err()).collect();
        if failed.is_empty() {
            return results;
        }
        // Which senders have no Contact: their records failed on the lookup and go again, after
        // the sender is found (or a Contact created).
        let known: HashSet<String> = match contacts.check(&format!("looking up Contacts by {key}"))
        {
            Ok(body) => body
                .get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get(key.as_str())?.as_str().map(str::to_owned))
                .collect(),
            Err(e) => {
                for i in failed {
                    results[i] = Err(e.for_another());
                }
                return results;
            }
        };
        let mut again = Vec::new();
        for i in failed {
            let sender = chunk[i].sender.as_str();
            if remembered.contains_key(sender) {
                // The record it was matched to is gone: found afresh on the next try.
                if results[i].as_ref().is_err_and(gone) {
                    self.forget(sender).await;
                    results[i] = Err(Error::transient(format!(
                        "the Salesforce record {sender} was matched to is gone; it is looked \
                         for again"
                    )));
                }
            } else if !known.contains(sender) {
                again.push(i);
            }
        }
        if again.is_empty() {
            return results;
        }
        let retried: Vec<&MediaRecord> = again.iter().map(|i| &chunk[*i]).collect();
        for (i, r) in again.iter().zip(self.link_then_upsert(&retried).await) {
            results[*i] = r;
        }
        results
    }

    /// The second call, for senders with no Contact by key: each looked for among the org's
    /// Contacts and Leads (one search); a Contact found gets `contact_key`, a Lead is linked,
    /// a stranger gets a new Contact (or, with `match.create = false`, waits as unmatched);
    /// then the records upserted again.
    async fn link_then_upsert(&self, records: &[&MediaRecord]) -> Vec<Result<(String, bool)>> {
        let key = &self.config.contact_key;
        let m = &self.config.matching;
        // The profile name of each sender (the first record that has one).
        let mut names: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for r in records {
            let name = names.entry(r.sender.as_str()).or_default();
            if name.is_none() {
                *name = r.sender_name.as_deref();
            }
        }
        let senders: Vec<&str> = names.keys().copied().collect();
        let matched = if m.enabled {
            match self.match_senders(&senders).await {
                Ok(found) => found,
                Err(e) => return records.iter().map(|_| Err(e.for_another())).collect(),
            }
        } else {
            HashMap::new()
        };
        let mut refused: HashMap<&str, Error> = HashMap::new();
        let mut stamps: Vec<(&str, &str)> = Vec::new();
        let mut new: Vec<(&str, Option<&str>)> = Vec::new();
        for (sender, name) in &names {
            match matched.get(*sender) {
                Some(Link::Contact(id)) => stamps.push((sender, id)),
                Some(Link::Lead(_)) => {}
                None if m.create || !m.enabled => new.push((sender, *name)),
                None => {
                    refused.insert(sender, unmatched(sender, self));
                }
            }
        }
        let mut subrequests = Vec::new();
        if !stamps.is_empty() {
            let records: Vec<Value> = stamps
                .iter()
                .map(|(sender, id)| json!({"attributes": {"type": "Contact"}, "Id": id, key.clone(): sender}))
                .collect();
            subrequests.push(Subrequest {
                reference: "stamp",
                method: Method::PATCH,
                path: "/composite/sobjects".into(),
                body: Some(json!({"allOrNone": false, "records": records})),
            });
        }
        if !new.is_empty() {
            let contacts: Vec<Value> = new
                .iter()
                .map(|(phone, name)| new_contact(key, phone, *name))
                .collect();
            subrequests.push(Subrequest {
                reference: "newContacts",
                method: Method::PATCH,
                path: format!("/composite/sobjects/Contact/{key}"),
                body: Some(json!({"allOrNone": false, "records": contacts})),
            });
        }
        let upserted: Vec<&&MediaRecord> = records
            .iter()
            .filter(|r| !refused.contains_key(r.sender.as_str()))
            .collect();
        if !upserted.is_empty() {
            let media = upserted
                .iter()
                .map(|r| self.media_record(r, matched.get(r.sender.as_str())))
                .collect();
            subrequests.push(self.media_upsert(media));
        }
        let answers = if subrequests.is_empty() {
            Vec::new()
        } else {
            match self.composite_all(subrequests).await {
                Ok(a) => a,
                Err(e) => return records.iter().map(|_| Err(e.for_another())).collect(),
            }
        };
        let mut answers = answers.into_iter();
        let mut failed: HashMap<&str, Error> = HashMap::new();
        if !stamps.is_empty()
            && let Some(stamped) = answers.next()
        {
            for ((sender, id), r) in
                stamps
                    .iter()
                    .zip(save_results("Contact", stamps.len(), &stamped))
            {
                // A Contact that cannot take the key (a Person Account's) is linked by Id,
                // remembered so it is not searched for again.
                if r.is_err() {
                    self.remember(sender, &Link::Contact((*id).to_owned()))
                        .await;
                }
            }
        }
        if !new.is_empty()
            && let Some(created) = answers.next()
        {
            for ((phone, _), r) in new.iter().zip(save_results("Contact", new.len(), &created)) {
                if let Err(e) = r {
                    failed.insert(
                        phone,
                        Error::new(e.kind(), format!("contact {phone}: {}", e.message())),
                    );
                }
            }
        }
        for (sender, link) in &matched {
            if matches!(link, Link::Lead(_)) {
                self.remember(sender, link).await;
            }
        }
        let mut media = match answers.next() {
            Some(a) => save_results(&self.config.object, upserted.len(), &a).into_iter(),
            None => Vec::new().into_iter(),
        };
        records
            .iter()
            .map(|r| {
                let sender = r.sender.as_str();
                if let Some(e) = refused.get(sender) {
                    return Err(e.for_another());
                }
                let result = media
                    .next()
                    .unwrap_or_else(|| Err(Error::transient("no result for this record")));
                match failed.get(sender) {
                    // The Contact's own error says more than the lookup that failed because of it.
                    Some(e) if result.is_err() => Err(e.for_another()),
                    _ => result,
                }
            })
            .collect()
    }

    fn media_upsert(&self, records: Vec<Value>) -> Subrequest {
        let c = &self.config;
        Subrequest {
            reference: "media",
            method: Method::PATCH,
            path: format!("/composite/sobjects/{}/{}", c.object, c.external_id),
            body: Some(json!({"allOrNone": false, "records": records})),
        }
    }

    /// The media record of `r`, linked to the sender's Contact by `contact_key`, or to the
    /// record `link` names.
    fn media_record(&self, r: &MediaRecord, link: Option<&Link>) -> Value {
        let c = &self.config;
        let mut m = Map::new();
        m.insert("attributes".into(), json!({"type": c.object}));
        for (attribute, field) in c.fields.iter() {
            let v = r.attribute(attribute).map_or(Value::Null, |v| value(&v));
            m.insert(field.to_owned(), v);
        }
        m.insert(c.external_id.clone(), json!(r.message_id));
        match link {
            None => {
                m.insert(
                    relationship(&c.contact_lookup),
                    json!({"attributes": {"type": "Contact"}, c.contact_key.clone(): r.sender.as_str()}),
                );
            }
            Some(Link::Contact(id)) => {
                m.insert(c.contact_lookup.clone(), json!(id));
            }
            Some(Link::Lead(id)) => {
                m.insert(c.contact_lookup.clone(), Value::Null);
                m.insert(c.matching.lead_lookup.clone(), json!(id));
            }
        }
        Value::Object(m)
    }
}

/// A record write that failed because the record it links to is gone.
fn gone(e: &Error) -> bool {
    [
        "INVALID_CROSS_REFERENCE_KEY",
        "ENTITY_IS_DELETED",
        "invalid cross reference",
    ]
    .iter()
    .any(|code| e.message().contains(code))
}

/// The error of a sender the org has no record for, with `match.create = false`: the job is
/// dead-lettered until someone creates the Contact (or Lead) and replays it.
fn unmatched(sender: &str, sf: &Salesforce) -> Error {
    let c = &sf.config;
    Error::permanent(format!(
        "unmatched: no Salesforce {} has the number {sender} (nor a Contact by {}); \
         match.create = false leaves it to you: create the record, then `wa2crm replay --id` \
         this job",
        c.matching.objects.join(" or "),
        c.contact_key
    ))
}

/// A new Contact: LastName is required, so the profile name's last word, or the number itself.
fn new_contact(key: &str, phone: &str, name: Option<&str>) -> Value {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let (first, last) = match name.and_then(|n| n.rsplit_once(' ')) {
        Some((first, last)) => (Some(first.trim()), last.trim()),
        None => (None, name.unwrap_or(phone)),
    };
    let mut m = json!({"attributes": {"type": "Contact"}, key: phone, "LastName": last});
    if let Some(f) = first {
        m["FirstName"] = json!(f);
    }
    m
}

/// A Collections upsert's answer: one result per record, in order.
fn save_results(object: &str, n: usize, answer: &SubAnswer) -> Vec<Result<(String, bool)>> {
    let results = match answer.check(&format!("the {object} upsert")) {
        Ok(body) => body.as_array().cloned().unwrap_or_default(),
        Err(e) => return (0..n).map(|_| Err(e.for_another())).collect(),
    };
    (0..n)
        .map(|i| match results.get(i) {
            Some(r) => save_result(object, r),
            None => Err(Error::transient(format!(
                "Salesforce's {object} upsert answer has no result for this record"
            ))),
        })
        .collect()
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
            json!("2026-11-22T09:00:00.000Z")
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
