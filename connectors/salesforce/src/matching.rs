//! Finding the Contacts and Leads an org already has, for senders it has no Contact for by
//! `contact_key`: one SOSL phone search for many senders at once (`FIND {… OR …} IN PHONE
//! FIELDS RETURNING Contact(…), Lead(…)`, each number in every way it may be written, since
//! Salesforce compares digits whole), every candidate checked locally
//! ([`wa2crm_core::phone_match`]) and one chosen per sender by the admin's rule.
//!
//! A Contact found gets `contact_key` (by the caller), so later media go by key. What cannot be
//! found that way — a sender who is only a Lead, or a Contact that cannot take the key (a
//! Person Account's Contact is written through its Account) — is remembered in the queue
//! database, so no sender is searched for twice; an entry whose record is gone is dropped and
//! the sender looked for again.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::matching::{Candidate, Choice, choose};
use wa2crm_core::phone_match::search_digits;
use wa2crm_core::state::{add_to, keys};
use wa2crm_core::{Error, Phone, Result};

use crate::Salesforce;

/// SOSL drops logical operators past 4,000 characters of search query: stay under it.
const MAX_QUERY: usize = 3_800;

/// The record a sender's media is linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    Contact(String),
    Lead(String),
}

impl Link {
    fn encode(&self) -> String {
        match self {
            Link::Contact(id) => format!("Contact:{id}"),
            Link::Lead(id) => format!("Lead:{id}"),
        }
    }

    fn decode(v: &str) -> Option<Link> {
        match v.split_once(':')? {
            ("Contact", id) => Some(Link::Contact(id.to_owned())),
            ("Lead", id) => Some(Link::Lead(id.to_owned())),
            _ => None,
        }
    }
}

fn cache_key(sender: &str) -> String {
    format!("match:{sender}")
}

impl Salesforce {
    /// The links remembered for these senders.
    pub(crate) async fn remembered(&self, senders: &[&str]) -> HashMap<String, Link> {
        let mut out = HashMap::new();
        if !self.config.matching.enabled {
            return out;
        }
        for s in senders {
            if let Ok(Some(v)) = self.state.get_state(&self.name, &cache_key(s)).await
                && let Some(link) = Link::decode(&v)
            {
                out.insert((*s).to_owned(), link);
            }
        }
        out
    }

    pub(crate) async fn remember(&self, sender: &str, link: &Link) {
        let _ = self
            .state
            .put_state(&self.name, &cache_key(sender), &link.encode())
            .await;
    }

    /// A remembered record is gone: the sender is looked for again next time.
    pub(crate) async fn forget(&self, sender: &str) {
        let _ = self
            .state
            .delete_state(&self.name, &cache_key(sender))
            .await;
    }

    /// For each sender that is the org's Contact or Lead already: which.
    pub(crate) async fn match_senders(&self, senders: &[&str]) -> Result<HashMap<String, Link>> {
        let m = &self.config.matching;
        let phones: Vec<Phone> = senders
            .iter()
            .filter_map(|s| Phone::parse(s).ok())
            .collect();
        let mut candidates: Vec<Candidate> = Vec::new();
        for chunk in chunks(&phones) {
            candidates.extend(self.search(chunk).await?);
        }
        let mut out = HashMap::new();
        let (mut matched, mut several) = (0u64, 0u64);
        for sender in &phones {
            let choice = choose(sender, &candidates, &m.objects, m.country(), m.several);
            if let Choice::Chosen { among, candidate } = &choice {
                several += 1;
                tracing::info!(connector = %self.name, sender = %sender.logged(), among, chosen = %candidate.id, "Several records hold the sender's number; took the owned, most recently modified one.");
                let note = format!(
                    "{} · {among} {} records · took {}",
                    sender.logged(),
                    candidate.object,
                    candidate.id
                );
                let _ = self
                    .state
                    .put_state(&self.name, keys::LAST_SEVERAL, &note)
                    .await;
            }
            if let Choice::Ambiguous { among } = choice {
                tracing::warn!(connector = %self.name, sender = %sender.logged(), among, "Several records hold the sender's number; match.several = \"skip\" takes none.");
            }
            if let Some(c) = choice.record() {
                matched += 1;
                let link = if c.object == "Lead" {
                    Link::Lead(c.id.clone())
                } else {
                    Link::Contact(c.id.clone())
                };
                out.insert(sender.as_str().to_owned(), link);
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

    /// One SOSL search for the numbers of `senders`.
    async fn search(&self, senders: &[Phone]) -> Result<Vec<Candidate>> {
        let m = &self.config.matching;
        let terms: Vec<String> = terms(senders);
        let returning: Vec<String> = m
            .objects
            .iter()
            .map(|o| match o.as_str() {
                "Lead" => "Lead(Id, Phone, MobilePhone, OwnerId, LastModifiedDate, IsConverted)"
                    .to_owned(),
                other => format!("{other}(Id, Phone, MobilePhone, OwnerId, LastModifiedDate)"),
            })
            .collect();
        let sosl = format!(
            "FIND {{{}}} IN PHONE FIELDS RETURNING {}",
            terms.join(" OR "),
            returning.join(", ")
        );
        let answer = self
            .api
            .call(Method::GET, &crate::writes::search_path(&sosl), None, true)
            .await?;
        if !answer.status.is_success() {
            return Err(Error::permanent(format!(
                "Salesforce refused the phone search ({}): {} (wa2crm check names what is \
                 missing)",
                answer.status,
                crate::api::describe(&answer.body)
            )));
        }
        Ok(answer
            .body
            .get("searchRecords")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let object = r.pointer("/attributes/type")?.as_str()?.to_owned();
                // A converted Lead's person is its Contact now.
                if r.get("IsConverted").and_then(Value::as_bool) == Some(true) {
                    return None;
                }
                let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(Candidate {
                    id: text("Id")?,
                    phones: ["Phone", "MobilePhone"]
                        .iter()
                        .filter_map(|k| text(k))
                        .collect(),
                    owned: text("OwnerId").is_some(),
                    modified: text("LastModifiedDate").unwrap_or_default(),
                    object,
                })
            })
            .collect())
    }
}

/// Every way each sender's number may be written, as SOSL terms.
fn terms(senders: &[Phone]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in senders {
        for d in search_digits(s) {
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// Senders in groups whose terms fit one search query.
fn chunks(senders: &[Phone]) -> Vec<&[Phone]> {
    wa2crm_core::matching::chunks_by(senders, MAX_QUERY, |s| {
        search_digits(s).iter().map(|d| d.len() + 4).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_queries_stay_short() {
        for link in [Link::Contact("003x".into()), Link::Lead("00Qy".into())] {
            assert_eq!(Link::decode(&link.encode()), Some(link));
        }
        let senders: Vec<Phone> = (0..500)
            .map(|i| Phone::parse(&format!("+49151{i:08}")).unwrap())
            .collect();
        let groups = chunks(&senders);
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 500);
        for g in groups {
            let query = terms(g).join(" OR ");
            assert!(query.len() < 4_000, "{}", query.len());
        }
    }
}
