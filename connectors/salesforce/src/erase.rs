//! Erasure of one person's media: every record of the media object that looks up to their
//! Contact is deleted (sObject Collections delete, ≤ 200 a call). The Contact itself stays: it is
//! the CRM's record of the person, with other data on it.

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::{EraseReport, Error, Phone, Result};

use crate::Salesforce;
use crate::api::describe;
use crate::writes::{MAX_RECORDS, query_path, soql_in};

impl Salesforce {
    pub async fn erase_person(&self, subject: &Phone) -> Result<EraseReport> {
        let c = &self.config;
        let mut removed = Vec::new();
        let contacts = self
            .ids(&format!(
                "SELECT Id FROM Contact WHERE {} IN ({})",
                c.contact_key,
                soql_in(&[subject.as_str()])
            ))
            .await?;
        if contacts.is_empty() {
            return Ok(EraseReport { removed });
        }
        let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
        let media = self
            .ids(&format!(
                "SELECT Id FROM {} WHERE {} IN ({})",
                c.object,
                c.contact_lookup,
                soql_in(&refs)
            ))
            .await?;
        for chunk in media.chunks(MAX_RECORDS) {
            let path = format!(
                "/composite/sobjects?ids={}&allOrNone=false",
                chunk.join(",")
            );
            let a = self.api.call(Method::DELETE, &path, None, true).await?;
            if !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "deleting {} records: {}",
                    c.object,
                    describe(&a.body)
                )));
            }
        }
        if !media.is_empty() {
            removed.push(format!(
                "{} {} record(s) of Contact {}",
                media.len(),
                c.object,
                contacts.join(", ")
            ));
        }
        Ok(EraseReport { removed })
    }

    async fn ids(&self, soql: &str) -> Result<Vec<String>> {
        let a = self
            .api
            .call(Method::GET, &query_path(soql), None, true)
            .await?;
        if !a.status.is_success() {
            return Err(Error::permanent(format!("{soql}: {}", describe(&a.body))));
        }
        Ok(a.body
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }
}
