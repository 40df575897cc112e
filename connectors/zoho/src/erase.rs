//! Erasure, retention and consent. Erasing a person deletes their media records (whose
//! attachments go with them) and the Notes wa2crm wrote for them; their Contact or Lead stays —
//! it is the company's record, not wa2crm's. Retention deletes one media's record and Note
//! (`delete`), or (`clear`) empties its link fields, removes its attachment and rewrites its Note
//! without the link. Consent is the Contact's `consent_field`.

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{CanonicalAttribute, EraseReport, Error, MediaRecord, Phone, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zoho;
use crate::api::{MAX_RECORDS, any_of, quoted};
use crate::matching::sender_key;
use crate::rules::describe;

impl Zoho {
    async fn delete_ids(&self, module: &str, ids: &[String]) -> Result<usize> {
        let mut deleted = 0;
        for chunk in ids.chunks(MAX_RECORDS) {
            let a = self
                .api
                .call(
                    Method::DELETE,
                    &format!("/{module}?ids={}", chunk.join(",")),
                    None,
                    Repeat::Safe,
                )
                .await?;
            let results = a.body["data"].as_array().cloned().unwrap_or_default();
            for r in &results {
                // Gone already (an earlier, interrupted erase) is as good as deleted.
                if r["status"] == "success" || r["code"] == "INVALID_DATA" {
                    deleted += 1;
                } else {
                    return Err(Error::permanent(format!(
                        "Zoho refused to delete from {module}: {}",
                        describe(r)
                    )));
                }
            }
            if results.is_empty() && !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "Zoho refused to delete from {module}: {}",
                    describe(&a.body)
                )));
            }
        }
        Ok(deleted)
    }

    /// The media module's lookup fields, as a COQL select list (the Lead one only when Leads are
    /// matched: `provision` makes it only then).
    fn lookup_fields(&self) -> String {
        let c = &self.config;
        if c.matching.leads {
            format!("{}, {}", c.contact_lookup, c.lead_lookup)
        } else {
            c.contact_lookup.clone()
        }
    }

    /// The Contacts and Leads media `rows` look up, each once.
    fn parents_of(&self, rows: &[Value]) -> Vec<String> {
        let c = &self.config;
        let mut parents: Vec<String> = Vec::new();
        for r in rows {
            for l in [&c.contact_lookup, &c.lead_lookup] {
                if let Some(id) = r[l.as_str()]["id"].as_str()
                    && !parents.iter().any(|p| p == id)
                {
                    parents.push(id.to_owned());
                }
            }
        }
        parents
    }

    /// wa2crm's Notes among those of `parents`, by the message ids their titles end with.
    async fn notes_of(
        &self,
        parents: &[String],
        message_ids: &[String],
    ) -> Result<Vec<(String, String)>> {
        let Some(criteria) = any_of(&["Parent_Id"], parents) else {
            return Ok(Vec::new());
        };
        let rows = self
            .api
            .coql_all(&format!(
                "select id, Note_Title from Notes where {criteria}"
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let title = r["Note_Title"].as_str()?;
                let id = message_ids.iter().find(|m| {
                    title.starts_with("WhatsApp ") && title.ends_with(&format!(" · {m}"))
                })?;
                Some((r["id"].as_str()?.to_owned(), id.clone()))
            })
            .collect())
    }

    pub(crate) async fn erase_person(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport> {
        let c = &self.config;
        let lookups = self.lookup_fields();
        let rows = self
            .api
            .coql_all(&format!(
                "select id, {}, {lookups} from {} where {} = {}",
                c.message_id_field,
                c.module,
                c.sender_field,
                quoted(subject.as_str())
            ))
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        let message_ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r[&c.message_id_field].as_str().map(str::to_owned))
            .collect();
        let parents = self.parents_of(&rows);
        let notes = self.notes_of(&parents, &message_ids).await?;
        let mut report = EraseReport::default();
        if dry_run {
            report.removed.push(format!(
                "would delete {} {} records (with their attachments) and {} Notes; the Contact or Lead stays",
                ids.len(),
                c.module,
                notes.len()
            ));
            return Ok(report);
        }
        let note_ids: Vec<String> = notes.into_iter().map(|(id, _)| id).collect();
        let n = self.delete_ids("Notes", &note_ids).await?;
        let m = self.delete_ids(&c.module, &ids).await?;
        let _ = self
            .state
            .delete_state(&self.name, &sender_key(subject))
            .await;
        report.removed.push(format!(
            "deleted {m} {} records (with their attachments) and {n} Notes; the Contact or Lead stays",
            c.module
        ));
        Ok(report)
    }

    pub(crate) async fn expire_media(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport> {
        let c = &self.config;
        let wanted: Vec<String> = records.iter().map(|r| r.message_id.clone()).collect();
        let Some(criteria) = any_of(&[c.message_id_field.as_str()], &wanted) else {
            return Ok(EraseReport::default());
        };
        let rows = self
            .api
            .coql_all(&format!(
                "select id, {}, {} from {} where {criteria}",
                c.message_id_field,
                self.lookup_fields(),
                c.module
            ))
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        let parents = self.parents_of(&rows);
        let notes = self.notes_of(&parents, &wanted).await?;
        let mut report = EraseReport::default();
        let verb = if delete {
            "delete"
        } else {
            "clear the links of"
        };
        if dry_run {
            report.removed.push(format!(
                "would {verb} {} {} records and {} Notes",
                ids.len(),
                c.module,
                notes.len()
            ));
            return Ok(report);
        }
        if delete {
            let note_ids: Vec<String> = notes.into_iter().map(|(id, _)| id).collect();
            let n = self.delete_ids("Notes", &note_ids).await?;
            let m = self.delete_ids(&c.module, &ids).await?;
            report
                .removed
                .push(format!("deleted {m} {} records and {n} Notes", c.module));
            return Ok(report);
        }
        let link_fields: Vec<&str> = [
            CanonicalAttribute::FileUrl,
            CanonicalAttribute::RenditionUrl,
        ]
        .into_iter()
        .filter_map(|a| c.fields.get(a))
        .collect();
        for chunk in ids.chunks(MAX_RECORDS) {
            if link_fields.is_empty() {
                break;
            }
            let data: Vec<Value> = chunk
                .iter()
                .map(|id| {
                    let mut o = json!({ "id": id });
                    for f in &link_fields {
                        o[*f] = Value::Null;
                    }
                    o
                })
                .collect();
            self.api
                .write(
                    Method::PUT,
                    &format!("/{}", c.module),
                    &json!({ "data": data }),
                    Repeat::Safe,
                )
                .await?;
        }
        let mut files = 0;
        for id in &ids {
            for (att, _) in self.attachments(id).await? {
                let a = self
                    .api
                    .call(
                        Method::DELETE,
                        &format!("/{}/{id}/Attachments/{att}", c.module),
                        None,
                        Repeat::Safe,
                    )
                    .await?;
                if a.status.is_success() {
                    files += 1;
                }
            }
        }
        for chunk in notes.chunks(MAX_RECORDS) {
            let data: Vec<Value> = chunk
                .iter()
                .map(|(id, _)| json!({"id": id, "Note_Content": "The media was removed after its retention period."}))
                .collect();
            self.api
                .write(
                    Method::PUT,
                    "/Notes",
                    &json!({ "data": data }),
                    Repeat::Safe,
                )
                .await?;
        }
        report.removed.push(format!(
            "cleared the links of {} {} records, {files} attachments and {} Notes",
            ids.len(),
            c.module,
            notes.len()
        ));
        Ok(report)
    }

    pub(crate) async fn consent_of(&self, subject: &Phone) -> Result<Option<bool>> {
        let Some(field) = &self.config.consent_field else {
            return Ok(None);
        };
        let Some(criteria) = any_of(
            &["Phone", "Mobile"],
            &wa2crm_core::phone_match::written_forms(subject),
        ) else {
            return Ok(None);
        };
        let rows = self
            .api
            .coql(&format!(
                "select id, Phone, Mobile, {field} from Contacts where {criteria} limit 200"
            ))
            .await?;
        let theirs: Vec<&Value> = rows
            .iter()
            .filter(|r| {
                ["Phone", "Mobile"].iter().any(|f| {
                    r[*f].as_str().is_some_and(|p| {
                        wa2crm_core::phone_match::same_person(subject, p, self.config.country())
                    })
                })
            })
            .collect();
        if theirs.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            theirs
                .iter()
                .any(|r| r[field.as_str()] == Value::Bool(true)),
        ))
    }
}
