//! Choosing the record a CRM already has for a WhatsApp sender, from the candidates a vendor's
//! search returned: each candidate's numbers are checked here ([`crate::phone_match`]), and when
//! several are the sender's, the admin's rule (`[connectors.NAME.match] several`) picks one.

use serde::Deserialize;

use crate::Phone;
use crate::phone_match::{DefaultCountry, same_person};

/// What to do when several records hold the sender's number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Several {
    /// The one with an owner, then the most recently modified: the record someone works with.
    #[default]
    MostRecent,
    /// None of them: the sender counts as unmatched (created, or waiting with `create = false`).
    Skip,
}

/// A record a search returned, as the connector read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The object it is (`contacts`, `Contact`, `Lead`): earlier in the connector's list wins.
    pub object: String,
    pub id: String,
    /// Every number it holds, as stored.
    pub phones: Vec<String>,
    /// Whether it has an owner.
    pub owned: bool,
    /// When it was last modified, as the vendor writes it (ISO 8601 compares as text).
    pub modified: String,
}

/// The outcome for one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// One record is the sender's.
    One(Candidate),
    /// Several were; the rule chose this one among `among`.
    Chosen { candidate: Candidate, among: usize },
    /// Several were and the rule takes none.
    Ambiguous { among: usize },
    /// None is the sender's.
    Nobody,
}

impl Choice {
    pub fn record(&self) -> Option<&Candidate> {
        match self {
            Choice::One(c) | Choice::Chosen { candidate: c, .. } => Some(c),
            _ => None,
        }
    }
}

/// The sender's record among `candidates`: only those holding one of the sender's numbers
/// count; of the first object in `objects` that has any (Contacts before Leads), one, or the
/// rule's pick among several.
pub fn choose(
    sender: &Phone,
    candidates: &[Candidate],
    objects: &[String],
    country: Option<DefaultCountry>,
    several: Several,
) -> Choice {
    let theirs: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.phones.iter().any(|p| same_person(sender, p, country)))
        .collect();
    let rank = |c: &Candidate| {
        objects
            .iter()
            .position(|o| o.eq_ignore_ascii_case(&c.object))
            .unwrap_or(usize::MAX)
    };
    let Some(first) = theirs.iter().map(|c| rank(c)).min() else {
        return Choice::Nobody;
    };
    let mut same: Vec<&Candidate> = theirs.into_iter().filter(|c| rank(c) == first).collect();
    // The same record may come back twice (two of its numbers matched).
    same.sort_by(|a, b| a.id.cmp(&b.id));
    same.dedup_by(|a, b| a.id == b.id);
    match (same.len(), several) {
        (1, _) => Choice::One(same[0].clone()),
        (n, Several::Skip) => Choice::Ambiguous { among: n },
        (n, Several::MostRecent) => {
            let best = same
                .iter()
                .max_by(|a, b| (a.owned, &a.modified).cmp(&(b.owned, &b.modified)))
                .copied()
                .cloned();
            match best {
                Some(candidate) => Choice::Chosen {
                    candidate,
                    among: n,
                },
                None => Choice::Nobody,
            }
        }
    }
}

/// `items` in consecutive groups whose summed `cost` stays within `budget` (a search query's
/// length, an `IN`'s values); an item costlier than the budget goes alone.
pub fn chunks_by<T>(items: &[T], budget: usize, cost: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut spent = 0;
    for (i, item) in items.iter().enumerate() {
        let n = cost(item);
        if spent + n > budget && i > start {
            out.push(&items[start..i]);
            start = i;
            spent = 0;
        }
        spent += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(object: &str, id: &str, phone: &str, owned: bool, modified: &str) -> Candidate {
        Candidate {
            object: object.into(),
            id: id.into(),
            phones: vec![phone.into()],
            owned,
            modified: modified.into(),
        }
    }

    #[test]
    fn chunks_stay_within_the_budget_and_keep_the_order() {
        let items = [3usize, 4, 2, 9, 1, 1];
        let groups = chunks_by(&items, 7, |n| *n);
        assert_eq!(groups, vec![&[3, 4][..], &[2][..], &[9][..], &[1, 1][..]]);
        assert!(chunks_by(&[] as &[usize], 7, |n| *n).is_empty());
    }

    fn objects() -> Vec<String> {
        vec!["Contact".into(), "Lead".into()]
    }

    #[test]
    fn only_the_senders_numbers_count_and_contacts_come_before_leads() {
        let sender = Phone::parse("+4915112345678").unwrap();
        let de = Some("DE".parse().unwrap());
        let found = [
            c("Lead", "00Q1", "0151 12345678", true, "2026-12-01"),
            c("Contact", "0031", "+49 151 12345679", true, "2026-12-02"),
            c(
                "Contact",
                "0032",
                "+49 (0)151 1234 5678",
                false,
                "2026-01-01",
            ),
        ];
        assert_eq!(
            choose(&sender, &found, &objects(), de, Several::MostRecent),
            Choice::One(found[2].clone())
        );
        assert_eq!(
            choose(&sender, &found[..2], &objects(), de, Several::MostRecent),
            Choice::One(found[0].clone()),
            "a Lead when no Contact has the number"
        );
        assert_eq!(
            choose(&sender, &found[1..2], &objects(), de, Several::MostRecent),
            Choice::Nobody
        );
    }

    #[test]
    fn of_several_the_owned_and_most_recent_or_none() {
        let sender = Phone::parse("+14155550134").unwrap();
        let us = Some("US".parse().unwrap());
        let found = [
            c("Contact", "a", "(415) 555-0134", false, "2026-12-03"),
            c("Contact", "b", "415.555.0134", true, "2026-11-01"),
            c("Contact", "c", "+1 415 555 0134", true, "2026-12-01"),
        ];
        assert_eq!(
            choose(&sender, &found, &objects(), us, Several::MostRecent),
            Choice::Chosen {
                candidate: found[2].clone(),
                among: 3
            }
        );
        assert_eq!(
            choose(&sender, &found, &objects(), us, Several::Skip),
            Choice::Ambiguous { among: 3 }
        );
    }
}
