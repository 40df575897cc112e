//! Retention: media whose stored file is being deleted. Its media records go
//! (`on_expiry = "delete"`), or keep only their message id and Contact with every mapped field
//! emptied (`"clear"`), so the Contact still shows that something arrived. Files uploaded to
//! Salesforce Files are copies of the media and are deleted either way, before the records (as in
//! erasure: deleting a record leaves its published file behind).

use reqwest::Method;
use serde_json::{Map, Value, json};
use wa2crm_core::{EraseReport, Error, MediaRecord, Result};

use crate::Salesforce;
use crate::api::describe;
use crate::writes::{MAX_RECORDS, soql_in};

impl Salesforce {
    pub async fn expire_media(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport> {
        let c = &self.config;
        let mut removed = Vec::new();
        for chunk in records.chunks(MAX_RECORDS) {
            let ids: Vec<&str> = chunk.iter().map(|r| r.message_id.as_str()).collect();
            let found = self
                .column(
                    &format!(
                        "SELECT Id FROM {} WHERE {} IN ({})",
                        c.object,
                        c.external_id,
                        soql_in(&ids)
                    ),
                    "Id",
                )
                .await?;
            if found.is_empty() {
                continue;
            }
            if c.files {
                let refs: Vec<&str> = found.iter().map(String::as_str).collect();
                let documents = self
                    .column(
                        &format!(
                            "SELECT ContentDocumentId FROM ContentVersion WHERE FirstPublishLocationId IN ({})",
                            soql_in(&refs)
                        ),
                        "ContentDocumentId",
                    )
                    .await?;
                if !documents.is_empty() {
                    if !dry_run {
                        self.delete(&documents, "ContentDocument").await?;
                    }
                    removed.push(format!(
                        "{} file(s) in Salesforce Files deleted",
                        documents.len()
                    ));
                }
            }
            let tasks = self.tasks_of(&ids).await?;
            if !tasks.is_empty() {
                if !dry_run {
                    if delete {
                        self.delete(&tasks, "Task").await?;
                    } else {
                        self.clear_tasks(&tasks).await?;
                    }
                }
                let verb = if delete {
                    "deleted"
                } else {
                    "without the link"
                };
                removed.push(format!("{} task(s) {verb}", tasks.len()));
            }
            if delete {
                if !dry_run {
                    self.delete(&found, &c.object).await?;
                }
                removed.push(format!("{} {} record(s) deleted", found.len(), c.object));
            } else {
                if !dry_run {
                    self.clear(&ids).await?;
                }
                removed.push(format!("{} {} record(s) cleared", found.len(), c.object));
            }
        }
        Ok(EraseReport { removed })
    }

    /// Every mapped field but the message id emptied, by upsert on the external id (safe to repeat).
    async fn clear(&self, message_ids: &[&str]) -> Result<()> {
        let c = &self.config;
        let records: Vec<Value> = message_ids
            .iter()
            .map(|id| {
                let mut m = Map::new();
                m.insert("attributes".into(), json!({"type": c.object}));
                for (_, field) in c.fields.iter() {
                    if field != c.external_id {
                        m.insert(field.to_owned(), Value::Null);
                    }
                }
                m.insert(c.external_id.clone(), json!(id));
                Value::Object(m)
            })
            .collect();
        let path = format!("/composite/sobjects/{}/{}", c.object, c.external_id);
        let body = json!({"allOrNone": false, "records": records});
        let a = self
            .api
            .call(Method::PATCH, &path, Some(&body), true)
            .await?;
        if !a.status.is_success() {
            return Err(Error::permanent(format!(
                "clearing expired {} records: {}",
                c.object,
                describe(&a.body)
            )));
        }
        if let Some(bad) = a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r.get("success").and_then(Value::as_bool) != Some(true))
        {
            return Err(Error::permanent(format!(
                "clearing an expired {} record: {}",
                c.object,
                describe(bad.get("errors").unwrap_or(&Value::Null))
            )));
        }
        Ok(())
    }
}
