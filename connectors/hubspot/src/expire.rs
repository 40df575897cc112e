//! Retention: media whose stored file is being deleted. Its link and details leave the portal —
//! deleted (`on_expiry = "delete"`: custom-object records and notes archived) or cleared
//! (`"clear"`: the record's media properties emptied, the note reduced to a line saying the media
//! was there and when it went). Files uploaded to HubSpot Files are copies of the media and are
//! deleted either way. A contact's latest-media properties are cleared only while they still show
//! an expiring media: a newer one stays.

use std::collections::{BTreeSet, HashSet};

use wa2crm_core::{CanonicalAttribute as A, EraseReport, Error, MediaRecord, Result};

use crate::batch::{self, Input};
use crate::{HubSpot, Props, values};

impl HubSpot {
    pub(crate) async fn expire_media(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport> {
        let mut removed = Vec::new();
        if records.is_empty() {
            return Ok(EraseReport { removed });
        }
        if self.config.is_contacts() {
            self.expire_latest(records, dry_run, &mut removed).await?;
        } else {
            self.expire_records(records, delete, dry_run, &mut removed)
                .await?;
        }
        if self.config.note {
            let notes = Engagement::notes(&self.config.note_key);
            self.expire_engagements(notes, records, delete, dry_run, &mut removed)
                .await?;
        }
        if self.config.task.is_some() {
            let tasks = Engagement::tasks(&self.config.task_key);
            self.expire_engagements(tasks, records, delete, dry_run, &mut removed)
                .await?;
        }
        Ok(EraseReport { removed })
    }

    /// Contacts whose latest-media link is one of the expiring ones: their media properties
    /// are emptied.
    async fn expire_latest(
        &self,
        records: &[MediaRecord],
        dry_run: bool,
        removed: &mut Vec<String>,
    ) -> Result<()> {
        let Some(url_property) = self.config.fields.get(A::FileUrl) else {
            return Ok(());
        };
        let key = self.config.contact_key.as_str();
        let senders: BTreeSet<&str> = records.iter().map(|r| r.sender.as_str()).collect();
        let senders: Vec<&str> = senders.into_iter().collect();
        let expiring: HashSet<&str> = records.iter().map(|r| r.file_url.as_str()).collect();
        let found = self
            .read_by("contacts", key, &senders, &[key, url_property])
            .await?;
        let cleared: Props = self
            .config
            .fields
            .iter()
            .map(|(_, p)| (p.to_owned(), String::new()))
            .collect();
        let stale: Vec<Input> = found
            .iter()
            .filter(|(_, p)| {
                p.get(url_property)
                    .is_some_and(|u| expiring.contains(u.as_str()))
            })
            .map(|(phone, _)| Input {
                id: phone.clone(),
                properties: cleared.clone(),
            })
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        if !dry_run {
            first_error(batch::upsert(&self.api, "contacts", key, &stale).await)?;
        }
        removed.push(format!(
            "{} contact(s): latest-media properties cleared",
            stale.len()
        ));
        Ok(())
    }

    /// One custom-object record per media: archived, or its media properties emptied.
    async fn expire_records(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
        removed: &mut Vec<String>,
    ) -> Result<()> {
        let object = self.config.object.as_str();
        let Some(key) = self.config.fields.get(A::MessageId) else {
            return Err(Error::permanent(format!(
                "connectors.{}.fields.message_id is needed to find the {object} records",
                self.name
            )));
        };
        let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        let found = self.read_by(object, key, &ids, &[key]).await?;
        if found.is_empty() {
            return Ok(());
        }
        if delete {
            let ids: Vec<String> = found
                .values()
                .filter_map(|p| p.get("hs_object_id").cloned())
                .collect();
            let n = self.archive(object, &ids, dry_run).await?;
            removed.push(format!("{n} {object} record(s) deleted"));
        } else {
            let cleared: Props = self
                .config
                .fields
                .iter()
                .filter(|(a, _)| *a != A::MessageId)
                .map(|(_, p)| (p.to_owned(), String::new()))
                .collect();
            let inputs: Vec<Input> = found
                .keys()
                .map(|id| Input {
                    id: id.clone(),
                    properties: cleared.clone(),
                })
                .collect();
            if !dry_run {
                first_error(batch::upsert(&self.api, object, key, &inputs).await)?;
            }
            removed.push(format!("{} {object} record(s) cleared", inputs.len()));
        }
        Ok(())
    }

    async fn expire_engagements(
        &self,
        e: Engagement<'_>,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
        removed: &mut Vec<String>,
    ) -> Result<()> {
        let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        let mut wanted = vec![e.key];
        if e.attachments {
            wanted.push("hs_attachment_ids");
        }
        let found = self.read_by(e.object, e.key, &ids, &wanted).await?;
        if found.is_empty() {
            return Ok(());
        }
        let files: Vec<String> = found
            .values()
            .filter_map(|p| p.get("hs_attachment_ids"))
            .flat_map(|ids| ids.split(';').map(str::to_owned))
            .filter(|id| !id.is_empty())
            .collect();
        if !files.is_empty() {
            let n = if dry_run {
                files.len()
            } else {
                self.delete_files(&files).await?
            };
            removed.push(format!("{n} file(s) in HubSpot Files deleted"));
        }
        if delete {
            let ids: Vec<String> = found
                .values()
                .filter_map(|p| p.get("hs_object_id").cloned())
                .collect();
            let n = self.archive(e.object, &ids, dry_run).await?;
            removed.push(format!("{n} {} deleted", e.noun));
            return Ok(());
        }
        let today = time::OffsetDateTime::now_utc().date().to_string();
        let inputs: Vec<Input> = records
            .iter()
            .filter(|r| found.contains_key(&r.message_id))
            .map(|r| {
                let mut properties =
                    Props::from([(e.body.to_owned(), values::expired_note_body(r, &today))]);
                if e.attachments {
                    properties.insert("hs_attachment_ids".to_owned(), String::new());
                }
                Input {
                    id: r.message_id.clone(),
                    properties,
                }
            })
            .collect();
        if !dry_run {
            first_error(batch::upsert(&self.api, e.object, e.key, &inputs).await)?;
        }
        removed.push(format!("{} {} {}", inputs.len(), e.noun, e.cleared));
        Ok(())
    }
}

/// A note or a task: an engagement wa2crm made per media, found by its message-id property.
struct Engagement<'a> {
    object: &'static str,
    key: &'a str,
    /// The HTML body that holds the link.
    body: &'static str,
    /// Whether it may carry uploaded files (notes).
    attachments: bool,
    noun: &'static str,
    /// How the report says it was cleared.
    cleared: &'static str,
}

impl<'a> Engagement<'a> {
    /// The notes wa2crm wrote for the media: their files deleted, then the notes archived or
    /// reduced to a trace.
    fn notes(key: &'a str) -> Self {
        Engagement {
            object: "notes",
            key,
            body: "hs_note_body",
            attachments: true,
            noun: "note(s)",
            cleared: "reduced to a line saying the media was removed",
        }
    }

    /// The tasks made for the media: archived, or their body reduced to the same trace as notes
    /// (the link is gone; an open task keeps its subject).
    fn tasks(key: &'a str) -> Self {
        Engagement {
            object: "tasks",
            key,
            body: "hs_task_body",
            attachments: false,
            noun: "task(s)",
            cleared: "without the link",
        }
    }
}

/// The first failure of a batch, if any: retention runs again later and finishes.
fn first_error<T>(results: Vec<Result<T>>) -> Result<()> {
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
