//! Writing a batch of media records: contacts first (upserted by `contact_key`, named only when
//! new), then per media a custom-object record and/or a timeline note, each upserted by the
//! message id and associated with the contact. Per batch that is at most five calls whatever its
//! size: read contacts, upsert contacts, upsert records, upsert notes, associate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use wa2crm_core::{CanonicalAttribute, Delivered, Error, MediaRecord, Result};

use crate::HubSpot;
use crate::api::AnswerExt;
use crate::batch::{self, Input, Upserted};
use crate::values;

type Slots = Vec<Option<Result<Delivered>>>;

/// The error of a sender the portal has no contact for, with `match.create = false`: the job
/// is dead-lettered until someone creates the contact and replays it.
fn unmatched(sender: &str, config: &crate::config::HubSpotConfig) -> Error {
    Error::permanent(format!(
        "unmatched: no HubSpot contact has the number {sender} (by {} or by {}); \
         match.create = false leaves it to you: create the contact, then `wa2crm replay --id` \
         this job",
        config.contact_key,
        config.matching.fields.join(", ")
    ))
}

impl HubSpot {
    pub(crate) async fn deliver_batch(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
        if let Err(e) = self.api.engine.pause.check() {
            return batch.iter().map(|_| Err(e.for_another())).collect();
        }
        if let Err(e) = self.ensure_tag_options(batch).await {
            return batch.iter().map(|_| Err(e.for_another())).collect();
        }
        let mut slots: Slots = batch.iter().map(|_| None).collect();
        let contacts = self.upsert_contacts(batch).await;
        let mut live: Vec<(usize, Upserted)> = Vec::new();
        for (i, c) in contacts.into_iter().enumerate() {
            match c {
                Ok(c) => live.push((i, c)),
                Err(e) => slots[i] = Some(Err(e)),
            }
        }
        let mut media_ids: HashMap<usize, Upserted> = HashMap::new();
        if !self.config.is_contacts() {
            let ok = self.upsert_media_records(batch, &live, &mut slots).await;
            media_ids.extend(ok);
        }
        if self.config.note {
            let ok = self.upsert_notes(batch, &live, &mut slots).await;
            // The note is the media's own record when there is no custom object.
            for (i, n) in ok {
                media_ids.entry(i).or_insert(n);
            }
        }
        if let Some(task) = &self.config.task {
            self.upsert_tasks(task, batch, &live, &mut slots).await;
        }
        let mut any = false;
        for (i, contact) in live {
            if slots[i].is_none() {
                let contact_id = contact.id.clone();
                let written = media_ids.remove(&i).unwrap_or(contact);
                slots[i] = Some(Ok(Delivered {
                    crm_id: written.id,
                    created: written.created,
                    contact: Some(contact_id),
                }));
                any = true;
            }
        }
        // After the writes, so a first batch is not held up by it.
        if any {
            self.learn_portal().await;
        }
        slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Err(Error::transient("no result for this record"))))
            .collect()
    }

    /// One contact per sender: read who exists by `contact_key` (to name only new contacts and
    /// never move the latest-media properties back in time); for the others, look for the
    /// contact the portal already has by number, and stamp `contact_key` on it; then upsert.
    /// Result per record.
    async fn upsert_contacts(&self, batch: &[MediaRecord]) -> Vec<Result<Upserted>> {
        let key = self.config.contact_key.as_str();
        let mut by_sender: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in batch.iter().enumerate() {
            by_sender.entry(r.sender.as_str()).or_default().push(i);
        }
        let received_prop = self.config.fields.get(CanonicalAttribute::ReceivedAt);
        let latest = received_prop.filter(|_| self.config.is_contacts());
        let wanted: Vec<&str> = [Some(key), latest].into_iter().flatten().collect();
        let senders: Vec<&str> = by_sender.keys().copied().collect();
        let existing = match self.read_by("contacts", key, &senders, &wanted).await {
            Ok(e) => e,
            Err(e) => return batch.iter().map(|_| Err(e.for_another())).collect(),
        };
        let unkeyed: Vec<&str> = senders
            .iter()
            .copied()
            .filter(|s| !existing.contains_key(*s))
            .collect();
        let mut refused: HashMap<&str, Error> = HashMap::new();
        let matched = if self.config.matching.enabled && !unkeyed.is_empty() {
            let extra: Vec<&str> = latest.into_iter().collect();
            match self.match_senders(&unkeyed, &extra).await {
                Ok(m) => m,
                Err(e) => {
                    for s in &unkeyed {
                        refused.insert(s, e.for_another());
                    }
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        let mut by_key: Vec<(&str, Input)> = Vec::new();
        let mut by_id: Vec<(&str, Input)> = Vec::new();
        for (sender, indices) in &by_sender {
            if refused.contains_key(sender) {
                continue;
            }
            let found = existing
                .get(*sender)
                .or_else(|| matched.get(*sender).map(|m| &m.props));
            let mut properties = crate::Props::new();
            if found.is_none()
                && let Some(name) = indices
                    .iter()
                    .find_map(|i| batch[*i].sender_name.as_deref())
            {
                properties.extend(values::names(name));
            }
            if self.config.is_contacts() {
                let newest = indices
                    .iter()
                    .map(|i| &batch[*i])
                    .max_by_key(|r| r.received_at)
                    .expect("a sender has at least one record");
                let stored = found
                    .and_then(|props| props.get(received_prop?))
                    .and_then(|v| values::parse_datetime(v));
                if stored.is_none_or(|s| s <= newest.received_at) {
                    properties.extend(values::mapped(&self.config.fields, newest));
                }
            }
            match matched.get(*sender) {
                // The contact the portal already had: from now on found by key.
                Some(m) => {
                    properties.insert(key.to_owned(), sender.to_string());
                    by_id.push((
                        sender,
                        Input {
                            id: m.id.clone(),
                            properties,
                        },
                    ));
                }
                None if found.is_some()
                    || self.config.matching.create
                    || !self.config.matching.enabled =>
                {
                    by_key.push((
                        sender,
                        Input {
                            id: sender.to_string(),
                            properties,
                        },
                    ))
                }
                None => {
                    refused.insert(sender, unmatched(sender, &self.config));
                }
            }
        }
        let inputs =
            |list: &[(&str, Input)]| list.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>();
        let keyed = batch::upsert(&self.api, "contacts", key, &inputs(&by_key)).await;
        let stamped = batch::upsert(&self.api, "contacts", "hs_object_id", &inputs(&by_id)).await;
        let mut per_sender: HashMap<&str, Result<Upserted>> = HashMap::new();
        for ((sender, _), r) in by_key.iter().zip(keyed).chain(by_id.iter().zip(stamped)) {
            per_sender.insert(sender, r);
        }
        for (sender, e) in refused {
            per_sender.insert(sender, Err(e));
        }
        let mut out: Vec<Option<Result<Upserted>>> = batch.iter().map(|_| None).collect();
        for (sender, indices) in &by_sender {
            let Some(result) = per_sender.get(sender) else {
                continue;
            };
            for i in indices {
                out[*i] = Some(match result {
                    Ok(u) => Ok(u.clone()),
                    Err(e) if e.message().starts_with("unmatched:") => Err(e.for_another()),
                    Err(e) => Err(Error::new(
                        e.kind(),
                        format!("contact {}: {}", batch[*i].sender, e.message()),
                    )),
                });
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::transient("no contact result"))))
            .collect()
    }

    /// `batch/read` by a unique property: value → the record's properties (with its id under
    /// `hs_object_id`). Values HubSpot does not know are simply absent.
    pub(crate) async fn read_by(
        &self,
        object: &str,
        id_property: &str,
        ids: &[&str],
        properties: &[&str],
    ) -> Result<HashMap<String, crate::Props>> {
        let mut found = HashMap::new();
        // HubSpot returns only the properties asked for (and hs_object_id, createdate,
        // lastmodifieddate), not the one read by: without it a result could not be matched back.
        let mut properties = properties.to_vec();
        if !properties.contains(&id_property) {
            properties.push(id_property);
        }
        // Chunks still to read; a chunk HubSpot refuses as too big is read in halves.
        let mut pending: Vec<&[&str]> = ids.chunks(batch::MAX_BATCH).rev().collect();
        while let Some(chunk) = pending.pop() {
            let body = json!({
                "idProperty": id_property,
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                "properties": properties,
            });
            let answer = self
                .api
                .post(&format!("/crm/v3/objects/{object}/batch/read"), &body)
                .await?;
            if answer.status.as_u16() == 400 && chunk.len() > 1 {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                pending.push(b);
                pending.push(a);
                continue;
            }
            if !matches!(answer.status.as_u16(), 200 | 207) {
                return Err(Error::permanent(format!(
                    "HubSpot refused to read {object} by {id_property}: {}",
                    answer.message()
                )));
            }
            for r in answer
                .body
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let props: crate::Props = r
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut props = props;
                if let Some(id) = r.get("id").and_then(Value::as_str) {
                    props.insert("hs_object_id".into(), id.to_owned());
                }
                if let Some(v) = props.get(id_property).cloned() {
                    found.insert(v, props);
                }
            }
        }
        Ok(found)
    }

    async fn upsert_media_records(
        &self,
        batch: &[MediaRecord],
        live: &[(usize, Upserted)],
        slots: &mut Slots,
    ) -> Vec<(usize, Upserted)> {
        let object = self.config.object.as_str();
        let Some(key) = self.config.fields.get(CanonicalAttribute::MessageId) else {
            return Vec::new();
        };
        let inputs: Vec<Input> = live
            .iter()
            .map(|(i, _)| Input {
                id: batch[*i].message_id.clone(),
                properties: values::mapped(&self.config.fields, &batch[*i]),
            })
            .collect();
        let results = batch::upsert(&self.api, object, key, &inputs).await;
        self.associate_each(object, live, results, None, slots)
            .await
    }

    async fn upsert_notes(
        &self,
        batch: &[MediaRecord],
        live: &[(usize, Upserted)],
        slots: &mut Slots,
    ) -> Vec<(usize, Upserted)> {
        let live: Vec<(usize, Upserted)> = live
            .iter()
            .filter(|(i, _)| slots[*i].is_none())
            .cloned()
            .collect();
        let attachments: Vec<Option<String>> = if self.config.upload {
            let records: Vec<&MediaRecord> = live.iter().map(|(i, _)| &batch[*i]).collect();
            self.upload_files(&records)
                .await
                .into_iter()
                .zip(&live)
                .map(|(r, (i, _))| match r {
                    Ok(id) => Some(id),
                    Err(e) => {
                        slots[*i] = Some(Err(e));
                        None
                    }
                })
                .collect()
        } else {
            live.iter().map(|_| None).collect()
        };
        // A record whose upload failed has its error; its note waits for the retry.
        let (live, attachments): (Vec<(usize, Upserted)>, Vec<Option<String>>) = live
            .into_iter()
            .zip(attachments)
            .filter(|((i, _), _)| slots[*i].is_none())
            .unzip();
        let inputs: Vec<Input> = live
            .iter()
            .zip(&attachments)
            .map(|((i, _), file)| {
                let r = &batch[*i];
                let mut properties = crate::Props::new();
                properties.insert("hs_timestamp".into(), values::datetime(r.received_at));
                properties.insert("hs_note_body".into(), values::note_body(r));
                if let Some(file) = file {
                    properties.insert("hs_attachment_ids".into(), file.clone());
                }
                Input {
                    id: r.message_id.clone(),
                    properties,
                }
            })
            .collect();
        let results = batch::upsert(&self.api, "notes", &self.config.note_key, &inputs).await;
        // 202: note → contact, HubSpot-defined.
        self.associate_each("notes", &live, results, Some(202), slots)
            .await
    }

    /// A task per media the filter takes, for the contact's owner (unassigned when the contact
    /// has none), due `due_hours` after arrival, upserted by the message id (a retry never makes
    /// a second one) and associated with the contact. A media whose task fails is retried.
    async fn upsert_tasks(
        &self,
        task: &wa2crm_core::TaskConfig,
        batch: &[MediaRecord],
        live: &[(usize, Upserted)],
        slots: &mut Slots,
    ) {
        let filter = task.filter();
        let live: Vec<(usize, Upserted)> = live
            .iter()
            .filter(|(i, _)| slots[*i].is_none() && filter.matches(&batch[*i]))
            .cloned()
            .collect();
        if live.is_empty() {
            return;
        }
        let contact_ids: Vec<&str> = live.iter().map(|(_, c)| c.id.as_str()).collect();
        let owners = match self
            .read_by(
                "contacts",
                "hs_object_id",
                &contact_ids,
                &["hubspot_owner_id"],
            )
            .await
        {
            Ok(o) => o,
            Err(e) => {
                for (i, _) in &live {
                    slots[*i] = Some(Err(e.for_another()));
                }
                return;
            }
        };
        let inputs: Vec<Input> = live
            .iter()
            .map(|(i, contact)| {
                let r = &batch[*i];
                let mut properties = crate::Props::from([
                    ("hs_timestamp".to_owned(), values::datetime(task.due(r))),
                    ("hs_task_subject".to_owned(), wa2crm_core::task_subject(r)),
                    ("hs_task_body".to_owned(), values::note_body(r)),
                    ("hs_task_status".to_owned(), "NOT_STARTED".to_owned()),
                    ("hs_task_type".to_owned(), "TODO".to_owned()),
                ]);
                if let Some(owner) = owners
                    .get(&contact.id)
                    .and_then(|p| p.get("hubspot_owner_id"))
                    .filter(|o| !o.is_empty())
                {
                    properties.insert("hubspot_owner_id".into(), owner.clone());
                }
                Input {
                    id: r.message_id.clone(),
                    properties,
                }
            })
            .collect();
        let results = batch::upsert(&self.api, "tasks", &self.config.task_key, &inputs).await;
        // 204: task → contact, HubSpot-defined.
        self.associate_each("tasks", &live, results, Some(204), slots)
            .await;
    }

    /// Associates each upserted record with its contact; failures land in `slots`.
    async fn associate_each(
        &self,
        object: &str,
        live: &[(usize, Upserted)],
        results: Vec<Result<Upserted>>,
        type_id: Option<u32>,
        slots: &mut Slots,
    ) -> Vec<(usize, Upserted)> {
        let mut written = Vec::new();
        for ((i, contact), result) in live.iter().zip(results) {
            match result {
                Ok(u) => written.push((*i, contact.id.clone(), u)),
                Err(e) => slots[*i] = Some(Err(e)),
            }
        }
        let pairs: Vec<(String, String)> = written
            .iter()
            .map(|(_, contact, u)| (u.id.clone(), contact.clone()))
            .collect();
        let linked = batch::associate(&self.api, object, "contacts", &pairs, type_id).await;
        let mut ok = Vec::new();
        for ((i, _, u), link) in written.into_iter().zip(linked) {
            match link {
                Ok(()) => ok.push((i, u)),
                Err(e) => slots[i] = Some(Err(e)),
            }
        }
        ok
    }

    /// A multi-checkbox tags property only takes declared options: new tags are added first.
    async fn ensure_tag_options(&self, batch: &[MediaRecord]) -> Result<()> {
        let Some(property) = self.config.fields.get(CanonicalAttribute::Tags) else {
            return Ok(());
        };
        let wanted: BTreeSet<&str> = batch
            .iter()
            .flat_map(|r| r.tags.iter().map(String::as_str))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let object = self.media_object();
        let mut known = self.tag_options.lock().await;
        if known.is_none() {
            let answer = self
                .api
                .get(&format!("/crm/v3/properties/{object}/{property}"))
                .await?;
            let def = answer.body;
            let enumeration = def.get("type").and_then(Value::as_str) == Some("enumeration");
            let options = option_values(&def);
            *known = Some((enumeration, options));
        }
        let Some((true, options)) = known.as_mut() else {
            return Ok(()); // a text property takes any value
        };
        let missing: Vec<&str> = wanted
            .into_iter()
            .filter(|t| !options.contains(*t))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // The placeholder `provision` needed while there were no tags goes once real ones come.
        let mut all: Vec<String> = options
            .iter()
            .filter(|o| *o != crate::schema::NO_TAGS_OPTION)
            .cloned()
            .collect();
        all.extend(missing.iter().map(|s| s.to_string()));
        let body = json!({"options": all.iter().enumerate().map(|(i, o)| json!({
            "label": o, "value": o, "displayOrder": i, "hidden": false})).collect::<Vec<_>>()});
        let answer = self
            .api
            .patch(&format!("/crm/v3/properties/{object}/{property}"), &body)
            .await?;
        if !answer.status.is_success() {
            return Err(Error::permanent(format!(
                "cannot add the tags {missing:?} as options of {object}.{property}: {}",
                answer.message()
            )));
        }
        *options = option_values(&answer.body);
        options.extend(all);
        options.remove(crate::schema::NO_TAGS_OPTION);
        Ok(())
    }
}

fn option_values(def: &Value) -> BTreeSet<String> {
    def.get("options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("value").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
