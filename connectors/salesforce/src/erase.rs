//! Erasure of one person's media: the files uploaded to Salesforce Files on their media records
//! (ContentDocuments: a ContentVersion cannot be deleted on its own, and deleting the record it
//! was published on leaves the document behind), then every record of the media object that
//! looks up to their Contact (sObject Collections delete, ≤ 200 a call). Files go first, so an
//! erasure cut short finds them again through the records when it is run again. The Contact
//! itself stays: it is the CRM's record of the person, with other data on it.

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::{EraseReport, Error, Phone, Result};

use crate::Salesforce;
use crate::api::describe;
use crate::matching::Link;
use crate::writes::{MAX_RECORDS, query_path, soql_in};

impl Salesforce {
    pub async fn erase_person(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport> {
        let c = &self.config;
        let mut removed = Vec::new();
        let contacts = self
            .column(
                &format!(
                    "SELECT Id FROM Contact WHERE {} IN ({})",
                    c.contact_key,
                    soql_in(&[subject.as_str()])
                ),
                "Id",
            )
            .await?;
        // A sender matched to a Lead, or to a Contact that could not take the key: their
        // records look that record up.
        let remembered = self.remembered(&[subject.as_str()]).await;
        let mut contacts = contacts;
        let mut leads = Vec::new();
        match remembered.get(subject.as_str()) {
            Some(Link::Contact(id)) if !contacts.contains(id) => contacts.push(id.clone()),
            Some(Link::Lead(id)) => leads.push(id.clone()),
            _ => {}
        }
        if contacts.is_empty() && leads.is_empty() {
            return Ok(EraseReport { removed });
        }
        let mut media = Vec::new();
        for (lookup, ids) in [
            (&c.contact_lookup, &contacts),
            (&c.matching.lead_lookup, &leads),
        ] {
            if ids.is_empty() {
                continue;
            }
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            media.extend(
                self.column(
                    &format!(
                        "SELECT Id FROM {} WHERE {lookup} IN ({})",
                        c.object,
                        soql_in(&ids)
                    ),
                    "Id",
                )
                .await?,
            );
        }
        let named: Vec<String> = contacts
            .iter()
            .map(|id| format!("Contact {id}"))
            .chain(leads.iter().map(|id| format!("Lead {id}")))
            .collect();
        let holders: Vec<String> = contacts.into_iter().chain(leads).collect();
        let refs: Vec<&str> = holders.iter().map(String::as_str).collect();
        let mut documents = Vec::new();
        for chunk in media.chunks(MAX_RECORDS) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            documents.extend(
                self.column(
                    &format!(
                        "SELECT ContentDocumentId FROM ContentVersion WHERE FirstPublishLocationId IN ({})",
                        soql_in(&refs)
                    ),
                    "ContentDocumentId",
                )
                .await?,
            );
        }
        documents.sort();
        documents.dedup();
        let tasks = self.tasks_on(&refs).await?;
        if !dry_run {
            self.delete(&documents, "ContentDocument").await?;
            self.delete(&tasks, "Task").await?;
            self.delete(&media, &c.object).await?;
            // Which record the number was matched to is the person's data too.
            self.forget(subject.as_str()).await;
        }
        if !tasks.is_empty() {
            removed.push(format!(
                "{} task(s) of {} deleted",
                tasks.len(),
                named.join(", ")
            ));
        }
        if !documents.is_empty() {
            removed.push(format!(
                "{} file(s) in Salesforce Files (ContentDocument {}) deleted",
                documents.len(),
                documents.join(", ")
            ));
        }
        if !media.is_empty() {
            removed.push(format!(
                "{} {} record(s) of {} deleted",
                media.len(),
                c.object,
                named.join(", ")
            ));
        }
        Ok(EraseReport { removed })
    }

    /// Whether the person's Contact has the consent checkbox ticked; `None` without a
    /// `consent_field`. No Contact: no consent.
    pub async fn consent_of(&self, subject: &Phone) -> Result<Option<bool>> {
        let c = &self.config;
        let Some(field) = &c.consent_field else {
            return Ok(None);
        };
        let soql = format!(
            "SELECT {field} FROM Contact WHERE {} IN ({})",
            c.contact_key,
            soql_in(&[subject.as_str()])
        );
        let records = self
            .query_records(&soql, &format!("reading Contact.{field} for consent"))
            .await?;
        Ok(Some(records.iter().any(|r| {
            r.get(field.as_str()).and_then(Value::as_bool) == Some(true)
        })))
    }

    /// sObject Collections delete, ≤ 200 a call; a record already gone counts as deleted.
    pub(crate) async fn delete(&self, ids: &[String], what: &str) -> Result<()> {
        for chunk in ids.chunks(MAX_RECORDS) {
            let path = format!(
                "/composite/sobjects?ids={}&allOrNone=false",
                chunk.join(",")
            );
            let a = self.api.call(Method::DELETE, &path, None, true).await?;
            if !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "deleting {what} records: {}",
                    describe(&a.body)
                )));
            }
            for r in a.body.as_array().into_iter().flatten() {
                let gone = r.get("success").and_then(Value::as_bool) == Some(true)
                    || describe(r.get("errors").unwrap_or(&Value::Null))
                        .starts_with("ENTITY_IS_DELETED");
                if !gone {
                    return Err(Error::permanent(format!(
                        "deleting {what} {}: {}",
                        r.get("id").and_then(Value::as_str).unwrap_or("?"),
                        describe(r.get("errors").unwrap_or(&Value::Null))
                    )));
                }
            }
        }
        Ok(())
    }

    /// One column of a query's records.
    pub(crate) async fn column(&self, soql: &str, field: &str) -> Result<Vec<String>> {
        Ok(self
            .query_records(soql, soql)
            .await?
            .iter()
            .filter_map(|r| r.get(field).and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The records a query answers (one page: wa2crm's queries ask for ≤ 200); a refusal is
    /// permanent, prefixed with `what`.
    pub(crate) async fn query_records(&self, soql: &str, what: &str) -> Result<Vec<Value>> {
        let a = self
            .api
            .call(Method::GET, &query_path(soql), None, true)
            .await?;
        if !a.status.is_success() {
            return Err(Error::permanent(format!("{what}: {}", describe(&a.body))));
        }
        Ok(match a.body.get("records") {
            Some(Value::Array(records)) => records.clone(),
            _ => Vec::new(),
        })
    }
}
