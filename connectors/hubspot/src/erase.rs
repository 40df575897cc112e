//! Erasure of one person's media data: the latest-media properties on their contact are cleared,
//! and the notes and custom-object records wa2crm wrote are archived. The contact itself stays:
//! it is the CRM's record of the person, not wa2crm's, and other data hangs on it.

use serde_json::{Value, json};
use wa2crm_core::{EraseReport, Error, Phone, Result};

use crate::HubSpot;
use crate::api::AnswerExt;
use crate::batch::MAX_BATCH;

impl HubSpot {
    pub(crate) async fn erase_person(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport> {
        let mut removed = Vec::new();
        let key = &self.config.contact_key;
        let mut wanted: Vec<&str> = vec![key.as_str()];
        if self.config.is_contacts() {
            wanted.extend(self.config.fields.iter().map(|(_, p)| p));
        }
        let found = self
            .read_by("contacts", key, &[subject.as_str()], &wanted)
            .await?;
        let Some(props) = found.get(subject.as_str()) else {
            return Ok(EraseReport { removed });
        };
        let Some(contact) = props.get("hs_object_id").cloned() else {
            return Ok(EraseReport { removed });
        };
        if self.config.is_contacts() {
            // Only what holds something: a second erasure has nothing left to report.
            let cleared: serde_json::Map<String, Value> = self
                .config
                .fields
                .iter()
                .filter(|(_, p)| props.get(*p).is_some_and(|v| !v.is_empty()))
                .map(|(_, p)| (p.to_owned(), json!("")))
                .collect();
            if !cleared.is_empty() {
                if !dry_run {
                    let a = self
                        .api
                        .patch(
                            &format!("/crm/v3/objects/contacts/{contact}"),
                            &json!({"properties": cleared}),
                        )
                        .await?;
                    if !a.status.is_success() {
                        return Err(Error::permanent(format!(
                            "clearing the media properties of contact {contact}: {}",
                            a.message()
                        )));
                    }
                }
                removed.push(format!(
                    "contact {contact}: {} media properties cleared",
                    cleared.len()
                ));
            }
        }
        if !self.config.is_contacts() {
            let ids = self.associated(&contact, &self.config.object).await?;
            let n = self.archive(&self.config.object, &ids, dry_run).await?;
            if n > 0 {
                removed.push(format!(
                    "{n} {} record(s) of contact {contact} deleted",
                    self.config.object
                ));
            }
        }
        if self.config.note {
            let ids = self.associated(&contact, "notes").await?;
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            // Only the notes wa2crm wrote: they carry the message id in note_key.
            let ours: Vec<(String, crate::Props)> = self
                .read_by(
                    "notes",
                    "hs_object_id",
                    &id_refs,
                    &[self.config.note_key.as_str(), "hs_attachment_ids"],
                )
                .await?
                .into_iter()
                .filter(|(_, p)| p.get(&self.config.note_key).is_some_and(|v| !v.is_empty()))
                .collect();
            if self.config.upload {
                let files: Vec<String> = ours
                    .iter()
                    .filter_map(|(_, p)| p.get("hs_attachment_ids"))
                    .flat_map(|ids| ids.split(';').map(str::to_owned))
                    .filter(|id| !id.is_empty())
                    .collect();
                let n = if dry_run {
                    files.len()
                } else {
                    self.delete_files(&files).await?
                };
                if n > 0 {
                    removed.push(format!("{n} file(s) in HubSpot Files deleted"));
                }
            }
            let ours: Vec<String> = ours.into_iter().map(|(id, _)| id).collect();
            let n = self.archive("notes", &ours, dry_run).await?;
            if n > 0 {
                removed.push(format!("{n} note(s) on contact {contact} deleted"));
            }
        }
        if self.config.task.is_some() {
            let ids = self.associated(&contact, "tasks").await?;
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            // Only the tasks wa2crm made: they carry the message id in task_key.
            let key = self.config.task_key.as_str();
            let ours: Vec<String> = self
                .read_by("tasks", "hs_object_id", &id_refs, &[key])
                .await?
                .into_iter()
                .filter(|(_, p)| p.get(key).is_some_and(|v| !v.is_empty()))
                .map(|(id, _)| id)
                .collect();
            let n = self.archive("tasks", &ours, dry_run).await?;
            if n > 0 {
                removed.push(format!("{n} task(s) on contact {contact} deleted"));
            }
        }
        Ok(EraseReport { removed })
    }

    /// Whether the person's contact has the consent property set to true; `None` without a
    /// `consent_field`. No contact: no consent.
    pub(crate) async fn consent_of(&self, subject: &Phone) -> Result<Option<bool>> {
        let Some(field) = &self.config.consent_field else {
            return Ok(None);
        };
        let key = &self.config.contact_key;
        let found = self
            .read_by("contacts", key, &[subject.as_str()], &[field.as_str()])
            .await?;
        Ok(Some(
            found
                .get(subject.as_str())
                .and_then(|p| p.get(field))
                .is_some_and(|v| v == "true"),
        ))
    }

    /// Ids of the `to` records associated with a contact, all pages.
    async fn associated(&self, contact: &str, to: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!(
                    "/crm/v4/objects/contacts/{contact}/associations/{to}?limit=500&after={a}"
                ),
                None => format!("/crm/v4/objects/contacts/{contact}/associations/{to}?limit=500"),
            };
            let a = self.api.get(&path).await?;
            if !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "listing the {to} of contact {contact}: {}",
                    a.message()
                )));
            }
            for r in a
                .body
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match r.get("toObjectId") {
                    Some(Value::Number(n)) => ids.push(n.to_string()),
                    Some(Value::String(s)) => ids.push(s.clone()),
                    _ => {}
                }
            }
            after = a
                .body
                .pointer("/paging/next/after")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if after.is_none() {
                return Ok(ids);
            }
        }
    }

    pub(crate) async fn archive(
        &self,
        object: &str,
        ids: &[String],
        dry_run: bool,
    ) -> Result<usize> {
        if dry_run {
            return Ok(ids.len());
        }
        for chunk in ids.chunks(MAX_BATCH) {
            let body =
                json!({"inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
            let a = self
                .api
                .post(&format!("/crm/v3/objects/{object}/batch/archive"), &body)
                .await?;
            if !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "archiving {object}: {}",
                    a.message()
                )));
            }
        }
        Ok(ids.len())
    }
}
