//! Finding the contacts a portal already has, for senders it has no contact for by
//! `contact_key`: one CRM search for many senders at once — `IN` over the calculated searchable
//! forms of `phone` and `mobilephone` (the national number, however the number was typed) and
//! over the E.164 forms of any other number property — then every candidate checked locally
//! ([`wa2crm_core::phone_match`]) and one chosen per sender by the admin's rule. The caller
//! stamps `contact_key` on the chosen contact, so the sender's later media go by key with no
//! search at all.
//!
//! Search runs under its own per-second limit, and only sees a contact some seconds after it
//! was written: a contact wa2crm itself created a moment ago is found by its unique key
//! instead, which also keeps a second one from being created.

use std::collections::HashMap;

use serde_json::{Value, json};
use wa2crm_core::matching::{Candidate, Choice, choose};
use wa2crm_core::phone_match::{national_numbers, whatsapp_forms};
use wa2crm_core::state::{add_to, keys};
use wa2crm_core::{Error, Phone, Result};

use crate::HubSpot;
use crate::api::AnswerExt;

/// Values in one `IN`: the simulator's (and a careful reading's) limit.
const MAX_IN_VALUES: usize = 100;
/// Results a search page holds.
const PAGE: usize = 200;

/// A sender's contact, found by its number.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub id: String,
    pub props: crate::Props,
}

impl HubSpot {
    /// For each sender of `senders` that is the portal's contact already: that contact. Senders
    /// without one (or with several and `several = "skip"`) are absent.
    pub(crate) async fn match_senders(
        &self,
        senders: &[&str],
        extra: &[&str],
    ) -> Result<HashMap<String, Matched>> {
        let m = &self.config.matching;
        let phones: Vec<Phone> = senders
            .iter()
            .filter_map(|s| Phone::parse(s).ok())
            .collect();
        let mut found: HashMap<String, Candidate> = HashMap::new();
        let mut props_of: HashMap<String, crate::Props> = HashMap::new();
        for chunk in chunks(&phones) {
            for (id, props) in self.search_numbers(chunk, extra).await? {
                let candidate = Candidate {
                    object: "contacts".into(),
                    id: id.clone(),
                    phones: m
                        .fields
                        .iter()
                        .filter_map(|f| props.get(f).cloned())
                        .collect(),
                    owned: props.get("hubspot_owner_id").is_some_and(|o| !o.is_empty()),
                    modified: props.get("lastmodifieddate").cloned().unwrap_or_default(),
                };
                found.insert(id.clone(), candidate);
                props_of.insert(id, props);
            }
        }
        let candidates: Vec<Candidate> = found.into_values().collect();
        let objects = ["contacts".to_owned()];
        let mut out = HashMap::new();
        let (mut matched, mut several) = (0u64, 0u64);
        for sender in &phones {
            let choice = choose(sender, &candidates, &objects, m.country(), m.several);
            match &choice {
                Choice::Chosen { candidate, among } => {
                    several += 1;
                    tracing::info!(connector = %self.name, sender = %sender.logged(), among, chosen = %candidate.id, "Several contacts hold the sender's number; took the owned, most recently modified one.");
                    let note = format!(
                        "{} · {among} contacts · took {}",
                        sender.logged(),
                        candidate.id
                    );
                    let _ = self
                        .state
                        .put_state(&self.name, keys::LAST_SEVERAL, &note)
                        .await;
                }
                Choice::Ambiguous { among } => {
                    tracing::warn!(connector = %self.name, sender = %sender.logged(), among, "Several contacts hold the sender's number; match.several = \"skip\" takes none.");
                    let note = format!("{} · {among} contacts · took none", sender.logged());
                    let _ = self
                        .state
                        .put_state(&self.name, keys::LAST_SEVERAL, &note)
                        .await;
                }
                _ => {}
            }
            if let Some(c) = choice.record() {
                matched += 1;
                out.insert(
                    sender.as_str().to_owned(),
                    Matched {
                        id: c.id.clone(),
                        props: props_of.get(&c.id).cloned().unwrap_or_default(),
                    },
                );
            }
        }
        // Counted for `status`; a failure to count loses a figure, not a delivery.
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

    /// One search (paged) for the numbers of `senders`: record id → its properties.
    async fn search_numbers(
        &self,
        senders: &[Phone],
        extra: &[&str],
    ) -> Result<Vec<(String, crate::Props)>> {
        let m = &self.config.matching;
        let nationals: Vec<String> = dedup(senders.iter().flat_map(national_numbers));
        let e164: Vec<String> = dedup(
            senders
                .iter()
                .flat_map(whatsapp_forms)
                .flat_map(|p| [p.as_str().to_owned(), p.digits().to_owned()]),
        );
        let mut groups = Vec::new();
        for field in &m.fields {
            let (property, values) = match field.as_str() {
                "phone" => ("hs_searchable_calculated_phone_number", &nationals),
                "mobilephone" => ("hs_searchable_calculated_mobile_number", &nationals),
                other => (other, &e164),
            };
            groups.push(json!({"filters": [
                {"propertyName": property, "operator": "IN", "values": values}]}));
        }
        let mut properties: Vec<&str> = m.fields.iter().map(String::as_str).collect();
        properties.push("hubspot_owner_id");
        properties.push(&self.config.contact_key);
        properties.extend(extra);
        let mut out = Vec::new();
        // At most five groups a search: more number properties take more searches.
        for groups in groups.chunks(5) {
            let mut after: Option<String> = None;
            loop {
                let mut body = json!({
                    "filterGroups": groups,
                    "properties": properties,
                    "limit": PAGE,
                });
                if let Some(a) = &after {
                    body["after"] = json!(a);
                }
                let answer = self.api.search("contacts", &body).await?;
                if answer.status.as_u16() != 200 {
                    return Err(Error::permanent(format!(
                        "HubSpot refused to search contacts by number: {} (check that every \
                         property of match.fields exists: wa2crm check)",
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
                    let Some(id) = r.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let props: crate::Props = r
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push((id.to_owned(), props));
                }
                after = answer
                    .body
                    .pointer("/paging/next/after")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if after.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Senders in groups whose numbers fit one `IN` each.
fn chunks(senders: &[Phone]) -> Vec<&[Phone]> {
    // Each form as E.164 and as digits: the larger of the two lists.
    wa2crm_core::matching::chunks_by(senders, MAX_IN_VALUES, |s| whatsapp_forms(s).len() * 2)
}

fn dedup(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_grouped_under_the_in_limit() {
        let senders: Vec<Phone> = (0..120)
            .map(|i| Phone::parse(&format!("+49151{i:08}")).unwrap())
            .collect();
        let groups = chunks(&senders);
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 120);
        assert!(
            groups.iter().all(|g| g.len() * 2 <= MAX_IN_VALUES),
            "{:?}",
            groups.iter().map(|g| g.len()).collect::<Vec<_>>()
        );
        assert_eq!(groups.len(), 3);
    }
}
