//! Which Zendesk user a WhatsApp sender is: the users a search returned are verified here, every
//! number they hold (the `phone` field and their phone identities) against every WhatsApp form of
//! the sender (core::phone_match), and several are decided by the admin's rule. Only end users
//! count: an agent who happens to share the number must not become the requester.

use serde_json::Value;
use wa2crm_core::Phone;
use wa2crm_core::matching::{self, Candidate, Choice, Several};
use wa2crm_core::phone_match::DefaultCountry;

/// A user as Zendesk returns it (`GET /api/v2/users/{id}`, search results), reduced to what
/// matching reads: id, role, phone, identities (when side-loaded), updated_at.
pub fn candidate(user: &Value) -> Option<Candidate> {
    if user.get("role").and_then(Value::as_str) != Some("end-user") {
        return None;
    }
    let id = user.get("id")?.as_u64()?.to_string();
    let mut phones: Vec<String> = user
        .get("phone")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect();
    for identity in user
        .get("identities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if identity.get("type").and_then(Value::as_str) == Some("phone_number")
            && let Some(v) = identity.get("value").and_then(Value::as_str)
        {
            phones.push(v.to_owned());
        }
    }
    Some(Candidate {
        object: "user".into(),
        id,
        phones,
        // Every end user is someone's customer; recency decides among several.
        owned: false,
        modified: user
            .get("updated_at")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The sender's user among `users`.
pub fn choose(
    sender: &Phone,
    users: &[Value],
    country: Option<DefaultCountry>,
    several: Several,
) -> Choice {
    let candidates: Vec<Candidate> = users.iter().filter_map(candidate).collect();
    matching::choose(sender, &candidates, &["user".to_owned()], country, several)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn sender() -> Phone {
        Phone::parse("+4915112345678").unwrap()
    }

    #[test]
    fn an_end_user_with_the_number_in_any_form_is_the_requester() {
        let de = "DE".parse::<DefaultCountry>().ok();
        let users = [
            json!({"id": 1, "role": "end-user", "phone": "0151 12345678", "updated_at": "2026-01-01T00:00:00Z"}),
            json!({"id": 2, "role": "end-user", "phone": "+1 415 555 0100"}),
        ];
        assert_eq!(
            choose(&sender(), &users, de, Several::MostRecent)
                .record()
                .map(|c| c.id.as_str()),
            Some("1")
        );
        let by_identity = [json!({"id": 3, "role": "end-user", "phone": null,
            "identities": [{"type": "email", "value": "a@b.example"},
                           {"type": "phone_number", "value": "+49 151 1234 5678"}]})];
        assert_eq!(
            choose(&sender(), &by_identity, None, Several::MostRecent)
                .record()
                .map(|c| c.id.as_str()),
            Some("3")
        );
    }

    #[test]
    fn an_agent_sharing_the_number_is_never_the_requester() {
        let users = [json!({"id": 9, "role": "agent", "phone": "+4915112345678"})];
        assert_eq!(
            choose(&sender(), &users, None, Several::MostRecent),
            Choice::Nobody
        );
    }

    #[test]
    fn several_end_users_are_decided_by_the_rule() {
        let users = [
            json!({"id": 1, "role": "end-user", "phone": "+4915112345678", "updated_at": "2026-01-01T00:00:00Z"}),
            json!({"id": 2, "role": "end-user", "phone": "+49 151 12345678", "updated_at": "2026-06-01T00:00:00Z"}),
        ];
        assert!(matches!(
            choose(&sender(), &users, None, Several::MostRecent),
            Choice::Chosen { ref candidate, among: 2 } if candidate.id == "2"
        ));
        assert_eq!(
            choose(&sender(), &users, None, Several::Skip),
            Choice::Ambiguous { among: 2 }
        );
    }
}
