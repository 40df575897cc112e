//! Which Contact (or Lead) a sender's media goes to. A sender seen before is remembered (state
//! `sender:+E164`); the others are looked for together: one COQL query per module for about 30
//! senders, every way their number is written (`phone_match::written_forms`) against Phone and
//! Mobile, each hit verified here (`matching::choose`, Contacts before Leads). Without a match a
//! Contact is made — upserted on `contact_key`, so a retry after a lost answer finds it instead
//! of making a second — or, with `match.create = false`, the media waits as unmatched.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::matching::{Candidate, Choice, choose, chunks_by};
use wa2crm_core::state::{add_to, keys};
use wa2crm_core::{Error, MediaRecord, Phone, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zoho;
use crate::api::{MAX_RECORDS, any_of};
use crate::rules::describe;

/// Where a sender's media is looked up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// `Contacts` or `Leads`.
    pub module: String,
    pub id: String,
}

impl Parent {
    pub(crate) fn text(&self) -> String {
        format!("{}:{}", self.module, self.id)
    }

    pub(crate) fn read(text: &str) -> Option<Parent> {
        let (module, id) = text.split_once(':')?;
        matches!(module, "Contacts" | "Leads").then(|| Parent {
            module: module.into(),
            id: id.into(),
        })
    }
}

/// The state key a sender's parent is remembered under.
pub fn sender_key(sender: &Phone) -> String {
    format!("sender:{}", sender.as_str())
}

/// Values compared per query and field: 12 `in` lists of 50, so two fields stay within COQL's
/// 25 criteria.
const VALUES_PER_QUERY: usize = 600;

impl Zoho {
    /// Each sender of `batch`, by +E164, with where its media goes (or why it cannot go).
    pub(crate) async fn parents(&self, batch: &[MediaRecord]) -> HashMap<String, Result<Parent>> {
        let mut out: HashMap<String, Result<Parent>> = HashMap::new();
        let mut unknown: Vec<&MediaRecord> = Vec::new();
        for r in batch {
            let key = r.sender.as_str().to_owned();
            if out.contains_key(&key) || unknown.iter().any(|u| u.sender == r.sender) {
                continue;
            }
            match self
                .state
                .get_state(&self.name, &sender_key(&r.sender))
                .await
            {
                Ok(Some(text)) => match Parent::read(&text) {
                    Some(p) => {
                        out.insert(key, Ok(p));
                    }
                    None => unknown.push(r),
                },
                Ok(None) => unknown.push(r),
                Err(e) => {
                    out.insert(key, Err(e));
                }
            }
        }
        if unknown.is_empty() {
            return out;
        }
        let senders: Vec<Phone> = unknown.iter().map(|r| r.sender.clone()).collect();
        let found = match self.find(&senders).await {
            Ok(f) => f,
            Err(e) => {
                for s in &senders {
                    out.insert(s.as_str().to_owned(), Err(e.for_another()));
                }
                return out;
            }
        };
        let mut missing: Vec<&MediaRecord> = Vec::new();
        for r in unknown {
            match found.get(r.sender.as_str()) {
                Some(p) => {
                    self.remember(&r.sender, p).await;
                    out.insert(r.sender.as_str().to_owned(), Ok(p.clone()));
                }
                None => missing.push(r),
            }
        }
        if missing.is_empty() {
            return out;
        }
        if !self.config.matching.create {
            for r in missing {
                out.insert(
                    r.sender.as_str().to_owned(),
                    Err(Error::permanent(format!(
                        "unmatched: no Contact{} in Zoho holds {} and match.create is off; add \
                         the person to Zoho, then replay the dead letter",
                        if self.config.matching.leads {
                            " or Lead"
                        } else {
                            ""
                        },
                        r.sender.logged()
                    ))),
                );
            }
            return out;
        }
        for chunk in missing.chunks(MAX_RECORDS) {
            for (r, made) in chunk.iter().zip(self.make_contacts(chunk).await) {
                if let Ok(p) = &made {
                    self.remember(&r.sender, p).await;
                }
                out.insert(r.sender.as_str().to_owned(), made);
            }
        }
        out
    }

    async fn remember(&self, sender: &Phone, parent: &Parent) {
        // Not remembering only costs a lookup next time.
        let _ = self
            .state
            .put_state(&self.name, &sender_key(sender), &parent.text())
            .await;
    }

    /// Forgets a sender whose remembered record is gone (merged or deleted in Zoho).
    pub(crate) async fn forget(&self, sender: &Phone) {
        let _ = self
            .state
            .delete_state(&self.name, &sender_key(sender))
            .await;
    }

    /// The senders the org has as Contacts, then (those left) as Leads.
    async fn find(&self, senders: &[Phone]) -> Result<HashMap<String, Parent>> {
        let m = &self.config.matching;
        let mut modules = vec!["Contacts".to_owned()];
        if m.leads {
            modules.push("Leads".to_owned());
        }
        let mut out = HashMap::new();
        let (mut matched, mut several) = (0u64, 0u64);
        for module in &modules {
            let left: Vec<Phone> = senders
                .iter()
                .filter(|s| !out.contains_key(s.as_str()))
                .cloned()
                .collect();
            let mut candidates = Vec::new();
            let forms = |s: &Phone| wa2crm_core::phone_match::written_forms(s).len();
            for chunk in chunks_by(&left, VALUES_PER_QUERY, forms) {
                candidates.extend(self.candidates(module, chunk).await?);
            }
            for sender in &left {
                let choice = choose(
                    sender,
                    &candidates,
                    &modules,
                    self.config.country(),
                    m.several,
                );
                match &choice {
                    Choice::Chosen { candidate, among } => {
                        several += 1;
                        tracing::info!(connector = %self.name, sender = %sender.logged(), among, chosen = %candidate.id, "Several records hold the sender's number; took the most recently modified one.");
                        let note = format!(
                            "{} · {among} {module} · took {}",
                            sender.logged(),
                            candidate.id
                        );
                        let _ = self
                            .state
                            .put_state(&self.name, keys::LAST_SEVERAL, &note)
                            .await;
                    }
                    Choice::Ambiguous { among } => {
                        tracing::warn!(connector = %self.name, sender = %sender.logged(), among, "Several records hold the sender's number; match.several = \"skip\" takes none.");
                    }
                    _ => {}
                }
                if let Some(c) = choice.record() {
                    matched += 1;
                    out.insert(
                        sender.as_str().to_owned(),
                        Parent {
                            module: module.clone(),
                            id: c.id.clone(),
                        },
                    );
                }
            }
        }
        let _ = add_to(self.state.as_ref(), &self.name, keys::MATCHED, matched).await;
        let _ = add_to(
            self.state.as_ref(),
            &self.name,
            keys::MATCHED_AMONG_SEVERAL,
            several,
        )
        .await;
        Ok(out)
    }

    /// The records of `module` holding one of the numbers of `senders`, in any written form.
    async fn candidates(&self, module: &str, senders: &[Phone]) -> Result<Vec<Candidate>> {
        let values: Vec<String> = senders
            .iter()
            .flat_map(wa2crm_core::phone_match::written_forms)
            .collect();
        let Some(criteria) = any_of(&["Phone", "Mobile"], &values) else {
            return Ok(Vec::new());
        };
        let rows = self
            .api
            .coql_all(&format!(
                "select id, Phone, Mobile, Modified_Time from {module} where {criteria}"
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(Candidate {
                    object: module.to_owned(),
                    id: row["id"].as_str()?.to_owned(),
                    phones: ["Phone", "Mobile"]
                        .iter()
                        .filter_map(|f| row[*f].as_str().map(str::to_owned))
                        .collect(),
                    owned: true,
                    modified: row["Modified_Time"].as_str().unwrap_or("").to_owned(),
                })
            })
            .collect())
    }

    /// Contacts for senders the org does not have, upserted on `contact_key`.
    async fn make_contacts(&self, senders: &[&MediaRecord]) -> Vec<Result<Parent>> {
        let key = &self.config.contact_key;
        let data: Vec<Value> = senders
            .iter()
            .map(|r| {
                let name = r
                    .sender_name
                    .as_deref()
                    .map(crate::notes::inert)
                    .filter(|n| !n.is_empty())
                    .map(|n| n.chars().take(80).collect::<String>())
                    .unwrap_or_else(|| r.sender.as_str().to_owned());
                json!({"Last_Name": name, "Mobile": r.sender.as_str(), key: r.sender.as_str()})
            })
            .collect();
        let body = json!({"data": data, "duplicate_check_fields": [key]});
        let results = match self
            .api
            .write(Method::POST, "/Contacts/upsert", &body, Repeat::Safe)
            .await
        {
            Ok(r) => r,
            Err(e) => return senders.iter().map(|_| Err(e.for_another())).collect(),
        };
        senders
            .iter()
            .enumerate()
            .map(|(n, _)| {
                let r = results.get(n).cloned().unwrap_or(Value::Null);
                match r["details"]["id"].as_str() {
                    Some(id) if r["status"] == "success" => Ok(Parent {
                        module: "Contacts".into(),
                        id: id.to_owned(),
                    }),
                    _ => Err(Error::permanent(format!(
                        "Zoho refused to make the sender's Contact: {}",
                        describe(&r)
                    ))),
                }
            })
            .collect()
    }
}
