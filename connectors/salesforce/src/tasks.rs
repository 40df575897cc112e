//! Tasks (`[connectors.NAME.task]`): a Task per new media the filter takes, on the sender's
//! Contact (`WhoId`) — or the Lead they were matched to — for its owner, due `due_hours` after
//! arrival. Task custom fields
//! live on Activity, where an External ID cannot be relied on, so a Task is not upserted: one
//! query first asks which of the batch's media have theirs (by `task_key`, the message id), and
//! only the others are created — a create whose answer was lost is found by the next try.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{Error, MediaRecord, Result, TaskConfig, task_subject};

use crate::Salesforce;
use crate::api::describe;
use crate::composite::Subrequest;
use crate::matching::Link;
use crate::writes::{query_path, soql_in};

impl Salesforce {
    /// One result per record: `Ok` once its Task exists (or none is wanted for it).
    pub(crate) async fn ensure_tasks(
        &self,
        task: &TaskConfig,
        records: &[&MediaRecord],
    ) -> Vec<Result<()>> {
        let filter = task.filter();
        let wanted: Vec<usize> = (0..records.len())
            .filter(|i| filter.matches(records[*i]))
            .collect();
        let mut out: Vec<Result<()>> = records.iter().map(|_| Ok(())).collect();
        if wanted.is_empty() {
            return out;
        }
        if let Err(e) = self.create_missing_tasks(task, records, &wanted).await {
            for i in wanted {
                out[i] = Err(Error::new(e.kind(), e.message()));
            }
        }
        out
    }

    async fn create_missing_tasks(
        &self,
        task: &TaskConfig,
        records: &[&MediaRecord],
        wanted: &[usize],
    ) -> Result<()> {
        let c = &self.config;
        let key = &c.contact_key;
        let senders: Vec<&str> = {
            let mut seen = HashSet::new();
            wanted
                .iter()
                .map(|i| records[*i].sender.as_str())
                .filter(|s| seen.insert(*s))
                .collect()
        };
        let ids: Vec<&str> = wanted
            .iter()
            .map(|i| records[*i].message_id.as_str())
            .collect();
        let query = |reference, soql: String| Subrequest {
            reference,
            method: Method::GET,
            path: query_path(&soql),
            body: None,
        };
        // Senders matched to a Lead (or to a Contact that could not take the key): the task goes
        // to that record, for its owner.
        let remembered = self.remembered(&senders).await;
        let mut subrequests = vec![
            query(
                "contacts",
                format!(
                    "SELECT Id, OwnerId, {key} FROM Contact WHERE {key} IN ({})",
                    soql_in(&senders)
                ),
            ),
            query(
                "tasks",
                format!(
                    "SELECT Id, {} FROM Task WHERE {} IN ({})",
                    c.task_key,
                    c.task_key,
                    soql_in(&ids)
                ),
            ),
        ];
        let linked: Vec<(&str, &str)> = remembered
            .values()
            .map(|l| match l {
                Link::Lead(id) => ("Lead", id.as_str()),
                Link::Contact(id) => ("Contact", id.as_str()),
            })
            .collect();
        for object in ["Lead", "Contact"] {
            let ids: Vec<&str> = linked
                .iter()
                .filter(|(o, _)| *o == object)
                .map(|(_, id)| *id)
                .collect();
            if !ids.is_empty() {
                subrequests.push(query(
                    if object == "Lead" { "leads" } else { "linked" },
                    format!(
                        "SELECT Id, OwnerId FROM {object} WHERE Id IN ({})",
                        soql_in(&ids)
                    ),
                ));
            }
        }
        let answers = self.composite_all(subrequests).await?;
        let (contacts, existing) = (&answers[0], &answers[1]);
        let rows = |body: &Value| -> Vec<Value> {
            body.get("records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut contacts: HashMap<String, (String, Option<String>)> =
            rows(contacts.check("looking up the Contacts for tasks")?)
                .iter()
                .filter_map(|r| {
                    Some((
                        r.get(key.as_str())?.as_str()?.to_owned(),
                        (
                            r.get("Id")?.as_str()?.to_owned(),
                            r.get("OwnerId").and_then(Value::as_str).map(str::to_owned),
                        ),
                    ))
                })
                .collect();
        let mut owners: HashMap<String, Option<String>> = HashMap::new();
        for answer in &answers[2..] {
            for r in rows(answer.check("looking up the owners of matched records")?) {
                if let Some(id) = r.get("Id").and_then(Value::as_str) {
                    owners.insert(
                        id.to_owned(),
                        r.get("OwnerId").and_then(Value::as_str).map(str::to_owned),
                    );
                }
            }
        }
        for (sender, link) in &remembered {
            let id = match link {
                Link::Lead(id) | Link::Contact(id) => id,
            };
            // Gone since it was matched: the delivery looks the sender up again.
            if let Some(owner) = owners.get(id) {
                contacts
                    .entry(sender.clone())
                    .or_insert_with(|| (id.clone(), owner.clone()));
            }
        }
        let done: HashSet<String> = rows(existing.check("looking for tasks already made")?)
            .iter()
            .filter_map(|r| r.get(c.task_key.as_str())?.as_str().map(str::to_owned))
            .collect();
        let mut new = Vec::new();
        for i in wanted {
            let r = records[*i];
            if done.contains(&r.message_id) {
                continue;
            }
            let Some((contact, owner)) = contacts.get(r.sender.as_str()) else {
                return Err(Error::transient(format!(
                    "no Contact (or matched Lead) for {} yet to give the task to",
                    r.sender
                )));
            };
            let mut t = json!({
                "attributes": {"type": "Task"},
                "Subject": task_subject(r).chars().take(255).collect::<String>(),
                "Description": description(r),
                "ActivityDate": task.due(r).date().to_string(),
                "Status": "Not Started",
                "Priority": "Normal",
                "WhoId": contact,
                c.task_key.clone(): r.message_id,
            });
            if let Some(owner) = owner {
                t["OwnerId"] = json!(owner);
            }
            new.push(t);
        }
        if new.is_empty() {
            return Ok(());
        }
        // A create is never retried blindly: the next attempt's query finds what this one made.
        let body = json!({"allOrNone": false, "records": new});
        let a = self
            .api
            .call(Method::POST, "/composite/sobjects", Some(&body), false)
            .await?;
        if !a.status.is_success() {
            return Err(Error::permanent(format!(
                "creating tasks: {}",
                describe(&a.body)
            )));
        }
        match a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r.get("success").and_then(Value::as_bool) != Some(true))
        {
            Some(bad) => Err(Error::permanent(format!(
                "Salesforce refused a task: {}",
                describe(bad.get("errors").unwrap_or(&Value::Null))
            ))),
            None => Ok(()),
        }
    }

    /// The Task ids made for these message ids.
    pub(crate) async fn tasks_of(&self, message_ids: &[&str]) -> Result<Vec<String>> {
        if self.config.task.is_none() || message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.config.task_key;
        self.column(
            &format!(
                "SELECT Id FROM Task WHERE {k} IN ({})",
                soql_in(message_ids)
            ),
            "Id",
        )
        .await
    }

    /// The tasks wa2crm made on these Contacts (they carry a message id in `task_key`).
    pub(crate) async fn tasks_on(&self, contacts: &[&str]) -> Result<Vec<String>> {
        if self.config.task.is_none() || contacts.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.config.task_key;
        let soql = format!(
            "SELECT Id, {k} FROM Task WHERE WhoId IN ({})",
            soql_in(contacts)
        );
        Ok(self
            .query_records(&soql, &soql)
            .await?
            .iter()
            .filter(|r| {
                r.get(k.as_str())
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty())
            })
            .filter_map(|r| r.get("Id")?.as_str().map(str::to_owned))
            .collect())
    }

    /// Retention's "clear": the tasks keep their subject, their description loses the link.
    pub(crate) async fn clear_tasks(&self, ids: &[String]) -> Result<()> {
        let today = time::OffsetDateTime::now_utc().date();
        let records: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"attributes": {"type": "Task"}, "Id": id,
                    "Description": format!("The WhatsApp media was removed on {today} after the retention period.")})
            })
            .collect();
        let body = json!({"allOrNone": false, "records": records});
        let a = self
            .api
            .call(Method::PATCH, "/composite/sobjects", Some(&body), true)
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "updating expired tasks: {}",
                describe(&a.body)
            )))
        }
    }
}

/// The Task's description: what arrived, how long and big, its tags and caption, the link.
fn description(r: &MediaRecord) -> String {
    let mut lines = vec![task_subject(r)];
    let mut facts = Vec::new();
    facts.extend(r.length());
    facts.push(format!("{} bytes", r.size_bytes));
    facts.push(r.mime_type.clone());
    lines.push(facts.join(" · "));
    if !r.tags.is_empty() {
        lines.push(format!("Tags: {}", r.tags.join(", ")));
    }
    if let Some(c) = &r.caption {
        lines.push(format!("“{c}”"));
    }
    lines.push(r.file_url.clone());
    lines.join("\n")
}
