//! The customers the sandbox's CRMs already have, as a real account would: their numbers typed
//! by people (nationally, with dashes and brackets), one of them only a Lead in Salesforce, one
//! whose WhatsApp id lacks Brazil's ninth digit; and a sender nobody knows. The report says on
//! which record each one's media landed.

use serde_json::json;
use wa2crm_queue::JobInfo;
use wa2crm_sandbox::hubspot::HubSpotSim;
use wa2crm_sandbox::salesforce::SalesforceSim;
use wa2crm_sandbox::webhooks;
use wa2crm_sandbox::zendesk::ZendeskSim;

/// Sends every sample; an existing customer, typed nationally in HubSpot (`0151 …`, read in
/// the default country) and a Lead in Salesforce.
pub const JUERGEN: &str = webhooks::SENDER_WA_ID;
/// An existing customer whose WhatsApp id lacks the ninth digit her CRM record has.
pub const ANA: &str = "551187654321";
pub const ANA_NAME: &str = "Ana Souza";
/// Nobody's customer yet: sends the Twilio sample, gets a new contact.
pub const SAM: &str = "+14155550199";
pub const SAM_NAME: &str = "Sam Rivera";

/// One seeded record: (sender as E.164, how the CRM holds the number, the record's id).
pub struct Seeded {
    pub sender: String,
    pub typed: String,
    pub id: String,
    pub object: &'static str,
}

pub fn seed_hubspot(sim: &HubSpotSim) -> Vec<Seeded> {
    let juergen = sim.add_record(
        "contacts",
        &[
            ("firstname", "Jürgen"),
            ("lastname", "Weiß"),
            ("mobilephone", "0151 23456789"),
            ("hubspot_owner_id", "7001"),
        ],
    );
    let ana = sim.add_record(
        "contacts",
        &[
            ("firstname", "Ana"),
            ("lastname", "Souza"),
            ("phone", "+55 11 98765-4321"),
        ],
    );
    vec![
        Seeded {
            sender: format!("+{JUERGEN}"),
            typed: "0151 23456789".into(),
            id: juergen,
            object: "contact",
        },
        Seeded {
            sender: format!("+{ANA}"),
            typed: "+55 11 98765-4321".into(),
            id: ana,
            object: "contact",
        },
    ]
}

pub fn seed_salesforce(sim: &SalesforceSim) -> Vec<Seeded> {
    let juergen = sim.add_record(
        "Lead",
        &[
            ("FirstName", json!("Jürgen")),
            ("LastName", json!("Weiß")),
            ("Company", json!("Weiß Haustechnik")),
            ("Phone", json!("+49 151 2345 6789")),
        ],
    );
    let ana = sim.add_record(
        "Contact",
        &[
            ("FirstName", json!("Ana")),
            ("LastName", json!("Souza")),
            ("MobilePhone", json!("+55 (11) 98765-4321")),
        ],
    );
    vec![
        Seeded {
            sender: format!("+{JUERGEN}"),
            typed: "+49 151 2345 6789".into(),
            id: juergen,
            object: "Lead",
        },
        Seeded {
            sender: format!("+{ANA}"),
            typed: "+55 (11) 98765-4321".into(),
            id: ana,
            object: "Contact",
        },
    ]
}

/// Zendesk keeps end users' numbers in E.164 (its phone identities are validated); Jürgen has a
/// ticket open, Ana's number has the ninth digit her WhatsApp id lacks.
pub fn seed_zendesk(sim: &ZendeskSim) -> Vec<Seeded> {
    let juergen = sim.add_user("Jürgen Weiß", Some(&format!("+{JUERGEN}")), None);
    sim.add_ticket(juergen, "open");
    let ana = sim.add_user(ANA_NAME, Some("+5511987654321"), None);
    vec![
        Seeded {
            sender: format!("+{JUERGEN}"),
            typed: format!("+{JUERGEN}"),
            id: juergen.to_string(),
            object: "end user",
        },
        Seeded {
            sender: format!("+{ANA}"),
            typed: "+5511987654321".into(),
            id: ana.to_string(),
            object: "end user",
        },
    ]
}

/// The same for Zendesk: whose tickets each customer's media went on.
pub fn report_zendesk(name: &str, sim: &ZendeskSim, seeded: &[Seeded], jobs: &[JobInfo]) -> String {
    let mut out = format!("{name}: who the media went to\n");
    let tickets = sim.tickets();
    let requester_of = |message_id: &str| {
        tickets
            .iter()
            .find(|t| {
                t.comments
                    .iter()
                    .any(|c| c.body.lines().any(|l| l == format!("wa2crm: {message_id}")))
            })
            .map(|t| (t.id, t.requester_id.to_string()))
    };
    for seed in seeded {
        let theirs: Vec<&JobInfo> = jobs
            .iter()
            .filter(|j| j.event.sender.as_str() == seed.sender)
            .collect();
        let on_it = theirs
            .iter()
            .filter(|j| requester_of(&j.event.message_id).is_some_and(|(_, r)| r == seed.id))
            .count();
        out.push_str(&format!(
            "  {} ({} media): {on_it} on tickets of the existing end user {} (number {:?})\n",
            seed.sender,
            theirs.len(),
            seed.id,
            seed.typed
        ));
    }
    if let Some(job) = jobs.iter().find(|j| j.event.sender.as_str() == SAM)
        && let Some((ticket, requester)) = requester_of(&job.event.message_id)
    {
        out.push_str(&format!(
            "  {SAM} (a new sender): a new end user {requester}, ticket #{ticket}\n"
        ));
    }
    out
}

/// A line per seeded customer and one for the stranger: where the HubSpot media went.
pub fn report_hubspot(
    name: &str,
    sim: &HubSpotSim,
    contact_key: &str,
    seeded: &[Seeded],
    jobs: &[JobInfo],
) -> String {
    let mut out = format!("{name}: who the media went to\n");
    for s in seeded {
        let n = jobs
            .iter()
            .filter(|j| j.event.sender.as_str() == s.sender)
            .count();
        match sim.find("contacts", contact_key, &s.sender) {
            Some(c) if c.id == s.id => out.push_str(&format!(
                "  {} ({n} media): the existing contact {} (its number typed {:?}), now with {contact_key} = {}\n",
                s.sender, s.id, s.typed, s.sender
            )),
            Some(c) => out.push_str(&format!(
                "  {} ({n} media): a NEW contact {}, not the existing {} typed {:?} (set match.default_country?)\n",
                s.sender, c.id, s.id, s.typed
            )),
            None => out.push_str(&format!("  {}: no contact has it\n", s.sender)),
        }
    }
    if let Some(c) = sim.find("contacts", contact_key, SAM) {
        out.push_str(&format!(
            "  {SAM} (a new sender): a new contact {} named {:?}\n",
            c.id,
            c.properties.get("firstname").cloned().unwrap_or_default()
        ));
    }
    out
}

/// The same for Salesforce: the Contact or Lead each customer's media record looks up.
pub fn report_salesforce(
    name: &str,
    sim: &SalesforceSim,
    config: &wa2crm_salesforce::SalesforceConfig,
    seeded: &[Seeded],
    jobs: &[JobInfo],
) -> String {
    let (object, external_id, lookup) =
        (&config.object, &config.external_id, &config.contact_lookup);
    let lead_lookup = config.matching.lead_lookup.as_str();
    let mut out = format!("{name}: who the media went to\n");
    for seed in seeded {
        let theirs: Vec<&JobInfo> = jobs
            .iter()
            .filter(|j| j.event.sender.as_str() == seed.sender)
            .collect();
        let on_it = theirs
            .iter()
            .filter(|j| {
                sim.find(object, external_id, &j.event.message_id)
                    .is_some_and(|m| {
                        let field = if seed.object == "Lead" {
                            lead_lookup
                        } else {
                            lookup
                        };
                        m.get(field).and_then(|v| v.as_str()) == Some(seed.id.as_str())
                    })
            })
            .count();
        out.push_str(&format!(
            "  {} ({} media): {on_it} on the existing {} {} (its number typed {:?})\n",
            seed.sender,
            theirs.len(),
            seed.object,
            seed.id,
            seed.typed
        ));
    }
    if let Some(c) = sim.find("Contact", &config.contact_key, SAM) {
        out.push_str(&format!(
            "  {SAM} (a new sender): a new Contact {}\n",
            c.get("Id").and_then(|v| v.as_str()).unwrap_or("-")
        ));
    }
    out
}
