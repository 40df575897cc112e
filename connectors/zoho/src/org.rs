//! Where a user opens a Contact or Lead in Zoho CRM's web app, for the console's deep links:
//! `https://crm.{zoho domain}/crm/{domain_name}/tab/{Contacts|Leads}/{id}` (README: Zoho CRM).
//!
//! The web app's host is the data centre's accounts host with `crm.` for `accounts.`
//! (`crm.zoho.eu`, `crm.zohocloud.ca`): only for the data centres Zoho lists, so a look-alike
//! `accounts_url` never becomes a link an operator clicks. The org's `domain_name` (`org…`) comes
//! from `GET /org`, asked once after the first delivery of a process that does not know it and
//! kept in the state store for the account the credentials open, so a restart links at once.
//! That call needs `ZohoCRM.org.READ`, which README's setup asks for; without it there are no
//! links, and deliveries go on (the call is optional to the engine).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa2crm_core::{Result, StateStore};
use wa2crm_rest::learned::Learned;

use crate::Zoho;
use crate::config::{DATA_CENTRES, ZohoConfig};
use crate::matching::Parent;

/// The state store key (in the connector's scope) the org's web address is kept under.
const STATE_KEY: &str = "org_web_app";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Org {
    domain_name: String,
}

pub(crate) struct OrgLinks {
    /// `crm.zoho.…`, when the data centre is one Zoho lists.
    web_host: Option<String>,
    known: Learned<Org>,
}

/// The CRM web app's host of the data centre whose accounts server is `accounts_url`.
fn web_host(accounts_url: &str) -> Option<String> {
    DATA_CENTRES
        .iter()
        .find(|(_, url)| *url == accounts_url)
        .and_then(|(_, url)| url.strip_prefix("https://accounts."))
        .map(|domain| format!("crm.{domain}"))
}

/// What Zoho names an org's web address by: `org` and digits, as `org60000001`.
fn is_domain_name(name: &str) -> bool {
    name.strip_prefix("org")
        .is_some_and(|n| (1..=20).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

impl OrgLinks {
    /// Picks up the org an earlier run learned for the same account.
    pub async fn load(
        scope: &str,
        state: Arc<dyn StateStore>,
        config: &ZohoConfig,
        record: bool,
    ) -> Result<Self> {
        let valid = |o: &Org| is_domain_name(&o.domain_name);
        Ok(OrgLinks {
            web_host: config.accounts_url().as_deref().and_then(web_host),
            known: Learned::load(scope, STATE_KEY, state, &config.account(), record, valid).await?,
        })
    }

    /// The page of the Contact or Lead a media was looked up to (`Contacts:…` or `Leads:…`, as
    /// delivery records it), once the org is known.
    pub fn parent_url(&self, parent: &str) -> Option<String> {
        let host = self.web_host.as_deref()?;
        let org = self.known.get()?;
        let parent = Parent::read(parent)?;
        let digits = !parent.id.is_empty() && parent.id.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| {
            format!(
                "https://{host}/crm/{}/tab/{}/{}",
                org.domain_name, parent.module, parent.id
            )
        })
    }
}

/// The org Zoho's org details name, if they name its domain name.
fn org_of(body: &Value) -> Option<Org> {
    let name = body["org"][0]["domain_name"].as_str()?;
    is_domain_name(name).then(|| Org {
        domain_name: name.to_owned(),
    })
}

/// The connector tests run against a simulator on a loopback address, which is no Zoho data
/// centre: they name the web host it stands for.
#[cfg(test)]
impl OrgLinks {
    pub(crate) fn set_web_host(&mut self, host: &str) {
        self.web_host = Some(host.to_owned());
    }
}

impl Zoho {
    /// Asks Zoho for the org's domain name when no run has yet. Failures only delay the
    /// console's links, so they are logged and tried again later.
    pub(crate) async fn learn_org(&self) {
        // Without Zoho's web host there is nothing to link to.
        if self.org.web_host.is_none() {
            return;
        }
        let details = async {
            let a = self.api.get_optional("/org").await?;
            if !a.status.is_success() {
                return Err(wa2crm_core::Error::permanent(format!(
                    "Zoho answered {} ({})",
                    a.status,
                    crate::rules::describe(&a.body)
                )));
            }
            Ok(org_of(&a.body))
        };
        self.org
            .known
            .look_up(&self.name, "the Zoho org's web address", details)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_to_zohos_own_web_hosts_only() {
        assert_eq!(
            web_host("https://accounts.zoho.eu").as_deref(),
            Some("crm.zoho.eu")
        );
        assert_eq!(
            web_host("https://accounts.zohocloud.ca").as_deref(),
            Some("crm.zohocloud.ca")
        );
        for other in [
            "https://accounts.zoho.eu.evil.example",
            "http://127.0.0.1:8080",
            "https://accounts.example.com",
        ] {
            assert_eq!(web_host(other), None, "{other}");
        }
        assert!(is_domain_name("org60000001"));
        for bad in [
            "org",
            "orgabc",
            "60000001",
            "org1/../x",
            "org1.evil.example",
        ] {
            assert!(!is_domain_name(bad), "{bad}");
        }
    }
}
