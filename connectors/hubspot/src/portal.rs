//! Where a user opens a contact in HubSpot's web app, for the console's deep links:
//! `https://{uiDomain}/contacts/{portalId}/record/0-1/{contactId}`.
//!
//! The portal id and its UI domain (`app.hubspot.com`, or `app-eu1.hubspot.com` and the like
//! for portals hosted elsewhere) come from the account details HubSpot answers to any token
//! (`GET /account-info/v3/details`, README: HubSpot). They are asked once, after the first
//! delivery of a process that does not know them, and kept in the state store for the account
//! the credentials open, so a restarted daemon links at once. `0-1` is the contacts object's
//! type id.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa2crm_core::{Result, StateStore};
use wa2crm_rest::learned::Learned;

use crate::HubSpot;

/// The state store key (in the connector's scope) the portal is kept under.
const STATE_KEY: &str = "portal_web_app";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Portal {
    portal_id: u64,
    ui_domain: String,
}

pub(crate) struct PortalLinks(Learned<Portal>);

impl PortalLinks {
    /// Picks up the portal an earlier run learned for the same account.
    pub async fn load(
        scope: &str,
        state: Arc<dyn StateStore>,
        account: &str,
        record: bool,
    ) -> Result<Self> {
        let valid = |p: &Portal| is_ui_domain(&p.ui_domain);
        Learned::load(scope, STATE_KEY, state, account, record, valid)
            .await
            .map(PortalLinks)
    }

    /// The contact's page, once the portal is known; `None` for an id that is not a HubSpot
    /// record id (digits only).
    pub fn contact_url(&self, contact_id: &str) -> Option<String> {
        let p = self.0.get()?;
        let digits = !contact_id.is_empty() && contact_id.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| {
            format!(
                "https://{}/contacts/{}/record/0-1/{contact_id}",
                p.ui_domain, p.portal_id
            )
        })
    }
}

/// The portal HubSpot's account details name, if they name a HubSpot UI host.
fn portal_of(body: &Value) -> Option<Portal> {
    let portal_id = body
        .get("portalId")
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)?;
    let ui_domain = body
        .get("uiDomain")
        .and_then(Value::as_str)
        .filter(|d| is_ui_domain(d))?;
    Some(Portal {
        portal_id,
        ui_domain: ui_domain.to_owned(),
    })
}

/// HubSpot's own UI hosts only (`app.hubspot.com`, `app-eu1.hubspot.com`, …): an answer naming
/// any other host never becomes a link an operator clicks.
fn is_ui_domain(domain: &str) -> bool {
    match domain.strip_suffix(".hubspot.com") {
        Some("app") => true,
        Some(host) => host.strip_prefix("app-").is_some_and(|region| {
            (1..=8).contains(&region.len())
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }),
        None => false,
    }
}

impl HubSpot {
    /// Asks HubSpot for the portal's id and UI domain when no run has yet. Failures only delay
    /// the console's links, so they are logged and tried again later.
    pub(crate) async fn learn_portal(&self) {
        let details = async {
            let answer = self.api.get("/account-info/v3/details").await?;
            Ok(portal_of(&answer.body))
        };
        self.portal
            .0
            .look_up(&self.name, "the HubSpot portal", details)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hubspot_ui_hosts_make_links() {
        for ok in [
            "app.hubspot.com",
            "app-eu1.hubspot.com",
            "app-na2.hubspot.com",
        ] {
            assert!(is_ui_domain(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "app.hubspot.com.evil.example",
            "evil.hubspot.com",
            "app-.hubspot.com",
            "app-EU1.hubspot.com",
            "app-eu1/x.hubspot.com",
            "app-verylongregion.hubspot.com",
            "hubspot.com",
        ] {
            assert!(!is_ui_domain(bad), "{bad}");
        }
    }
}
