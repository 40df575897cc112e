//! The CRM simulators the sandbox writes into, one per configured connector, set up as an admin
//! would (the mapping provisioned), and the report of what landed in each.

use anyhow::Context;
use wa2crm_hubspot::HubSpotConfig;
use wa2crm_queue::JobInfo;
use wa2crm_salesforce::SalesforceConfig;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::salesforce::{self, SalesforceSim, SalesforceSimConfig};
use wa2crm_sandbox::zendesk::{ZendeskSim, ZendeskSimConfig};
use wa2crm_zendesk::ZendeskConfig;

const SANDBOX_HUBSPOT_TOKEN: &str = "pat-sandbox-hubspot";
const SANDBOX_SF_CLIENT: &str = "3MVG9sandbox";
const SANDBOX_SF_USER: &str = "integration@sandbox.example.com";
const SANDBOX_ZENDESK_AGENT: &str = "integration@sandbox.example.com";
const SANDBOX_ZENDESK_TOKEN: &str = "sandbox-zendesk-api-token-7f3a9c";

/// The example configuration, whose CRM mappings the sandbox runs.
const EXAMPLE_CONFIG: &str = include_str!("../../../../../deploy/wa2crm.example.toml");

/// A simulator standing in for one configured connector's CRM account, with the connector's
/// configuration as its crate reads it (its defaults included).
enum Sim {
    HubSpot(HubSpotSim, Box<HubSpotConfig>),
    Salesforce(SalesforceSim, Box<SalesforceConfig>),
    Zendesk(ZendeskSim, Box<ZendeskConfig>),
    Zoho(wa2crm_sandbox::zoho::ZohoSim, Box<wa2crm_zoho::ZohoConfig>),
}

pub struct Crms {
    /// Per connector: its name, its simulator, and its table as configured for the simulator.
    sims: Vec<(String, Sim, serde_json::Value)>,
    /// Per connector, the customers its CRM already had.
    seeded: Vec<Vec<super::customers::Seeded>>,
    /// What `provision` did, one line per CRM.
    pub provisioned: String,
}

/// The example configuration's mapping, tag rules, policy and notification filters.
pub fn example() -> anyhow::Result<crate::config::MappingView> {
    crate::config::load_mapping_view_str(EXAMPLE_CONFIG)
        .map_err(|e| anyhow::anyhow!("deploy/wa2crm.example.toml: {e}"))
}

impl Crms {
    /// A simulator per connector table, the table's credentials and base URLs swapped for the
    /// simulator's, and the mapping provisioned into it as an admin would. `whose` names the
    /// mapping in the report ("the example mapping", "your mapping").
    pub async fn start(
        connectors: &std::collections::BTreeMap<String, serde_json::Value>,
        tag_names: &[String],
        whose: &str,
    ) -> anyhow::Result<Crms> {
        let mut sims = Vec::new();
        for (name, table) in connectors {
            let mut t = table.clone();
            let drop_keys = |t: &mut serde_json::Value, keys: &[&str]| {
                if let Some(m) = t.as_object_mut() {
                    for k in keys {
                        m.remove(*k);
                    }
                }
            };
            t["linger_ms"] = 50.into();
            // The samples and the seeded customers are German: the example's mapping reads
            // national numbers as German here, whatever country it names for a real account.
            if whose == "the example mapping" {
                if !t["match"].is_object() {
                    t["match"] = serde_json::json!({});
                }
                t["match"]["default_country"] = "DE".into();
            }
            let sim = match crate::connectors::type_of(table) {
                "hubspot" => {
                    let sim =
                        HubSpotSim::start(HubSpotSimConfig::private_app(SANDBOX_HUBSPOT_TOKEN))
                            .await?;
                    // The one-time step README describes: the custom object exists.
                    match t["object"].as_str() {
                        None | Some("contacts") => {}
                        Some(object) => sim.add_custom_object(object),
                    }
                    drop_keys(&mut t, &["client_id", "client_secret", "refresh_token"]);
                    t["base_url"] = sim.url().into();
                    t["token"] = SANDBOX_HUBSPOT_TOKEN.into();
                    // The simulated portal allows 100 per 10 s and 10 a second. Paced at 80 %
                    // of that, a busy laptop's scheduling delays cannot put eleven calls in one
                    // second (a SECONDLY 429, waited out, but a warning in the sandbox's report).
                    t["requests_per_10s"] = 80.into();
                    let config = HubSpotConfig::from_value(&t)
                        .map_err(|e| anyhow::anyhow!("connectors.{name}: {e}"))?;
                    Sim::HubSpot(sim, Box::new(config))
                }
                "salesforce" => {
                    let sim_config = SalesforceSimConfig::new(SANDBOX_SF_CLIENT, SANDBOX_SF_USER);
                    let permission_set = sim_config.permission_set.clone();
                    let sim = SalesforceSim::start(sim_config).await?;
                    sim.add_object(t["object"].as_str().unwrap_or("WhatsApp_Media__c"));
                    drop_keys(
                        &mut t,
                        &["private_key_file", "client_secret", "refresh_token"],
                    );
                    t["login_url"] = sim.url().into();
                    t["client_id"] = SANDBOX_SF_CLIENT.into();
                    t["username"] = SANDBOX_SF_USER.into();
                    t["permission_set"] = permission_set.into();
                    t["private_key"] = salesforce::SANDBOX_PRIVATE_KEY.into();
                    let config = SalesforceConfig::from_value(&t)
                        .map_err(|e| anyhow::anyhow!("connectors.{name}: {e}"))?;
                    Sim::Salesforce(sim, Box::new(config))
                }
                "zendesk" => {
                    let sim = ZendeskSim::start(ZendeskSimConfig::new(
                        SANDBOX_ZENDESK_AGENT,
                        SANDBOX_ZENDESK_TOKEN,
                    ))
                    .await?;
                    // The one-time steps README describes: the group new tickets go to exists.
                    if t.get("group_id").is_some() {
                        t["group_id"] = sim.add_group().into();
                    }
                    drop_keys(
                        &mut t,
                        &[
                            "subdomain",
                            "client_id",
                            "client_secret",
                            "refresh_token",
                            "brand_id",
                            "ticket_form_id",
                        ],
                    );
                    t["base_url"] = sim.url().into();
                    t["email"] = SANDBOX_ZENDESK_AGENT.into();
                    t["api_token"] = SANDBOX_ZENDESK_TOKEN.into();
                    let config = ZendeskConfig::from_value(&t)
                        .map_err(|e| anyhow::anyhow!("connectors.{name}: {e}"))?;
                    Sim::Zendesk(sim, Box::new(config))
                }
                "zoho" => {
                    let (sim, config) = super::zoho::start(name, &mut t).await?;
                    Sim::Zoho(sim, Box::new(config))
                }
                other => anyhow::bail!(
                    "connectors.{name}: the sandbox has no simulator for type {other:?}"
                ),
            };
            sims.push((name.clone(), sim, t));
        }
        let mut provisioned = String::new();
        for (name, _, t) in &sims {
            let plan = provision(name, t, tag_names)
                .await
                .with_context(|| format!("connectors.{name}: provisioning into the simulator"))?;
            let created = plan
                .actions
                .iter()
                .filter(|a| a.starts_with("create"))
                .count();
            provisioned.push_str(&format!(
                "{name}: `provision` created {created} fields/properties for {whose}\n"
            ));
        }
        let seeded = sims
            .iter()
            .map(|(_, sim, _)| match sim {
                Sim::HubSpot(sim, _) => super::customers::seed_hubspot(sim),
                Sim::Salesforce(sim, _) => super::customers::seed_salesforce(sim),
                Sim::Zendesk(sim, _) => super::customers::seed_zendesk(sim),
                Sim::Zoho(sim, _) => super::zoho::seed(sim),
            })
            .collect();
        Ok(Crms {
            sims,
            seeded,
            provisioned,
        })
    }

    /// The connector tables to configure the daemon with.
    pub fn tables(&self) -> impl Iterator<Item = (&String, &serde_json::Value)> {
        self.sims.iter().map(|(name, _, t)| (name, t))
    }

    /// Per CRM, on which record each existing customer's media landed, and the new sender's.
    pub fn customers(&self, jobs: &[JobInfo]) -> String {
        let mut out = String::new();
        for ((name, sim, _), seeded) in self.sims.iter().zip(&self.seeded) {
            out.push_str(&match sim {
                Sim::HubSpot(sim, config) => {
                    super::customers::report_hubspot(name, sim, &config.contact_key, seeded, jobs)
                }
                Sim::Salesforce(sim, config) => {
                    super::customers::report_salesforce(name, sim, config, seeded, jobs)
                }
                Sim::Zendesk(sim, _) => super::customers::report_zendesk(name, sim, seeded, jobs),
                Sim::Zoho(sim, config) => super::zoho::report(name, sim, config, seeded, jobs),
            });
        }
        out
    }

    /// One line per CRM: what the samples made there.
    pub fn summary(&self) -> Vec<String> {
        self.sims
            .iter()
            .map(|(name, sim, _)| match sim {
                Sim::HubSpot(sim, config) => {
                    let mut parts = vec![
                        count(sim.records("contacts").len(), "contact"),
                        count(sim.records("notes").len(), "note"),
                        count(sim.records("tasks").len(), "task"),
                    ];
                    if !config.is_contacts() {
                        let object = &config.object;
                        parts.insert(1, count(sim.records(object).len(), object));
                    }
                    format!("{name} (HubSpot): {}", parts.join(", "))
                }
                Sim::Salesforce(sim, config) => {
                    let object = config.object.as_str();
                    let parts = [
                        count(sim.records(object).len(), &format!("{object} record")),
                        count(sim.records("Contact").len(), "Contact"),
                        count(sim.records("Task").len(), "Task"),
                        count(sim.records("ContentVersion").len(), "file"),
                    ];
                    format!("{name} (Salesforce): {}", parts.join(", "))
                }
                Sim::Zendesk(sim, _) => {
                    let tickets = sim.tickets();
                    let notes: usize = tickets
                        .iter()
                        .flat_map(|t| &t.comments)
                        .filter(|c| c.body.contains("\nwa2crm: "))
                        .count();
                    let requesters = sim.users().iter().filter(|u| u.role == "end-user").count();
                    format!(
                        "{name} (Zendesk): {}, {}, {}",
                        count(requesters, "requester"),
                        count(tickets.len(), "ticket"),
                        count(notes, "internal note")
                    )
                }
                Sim::Zoho(sim, config) => super::zoho::summary(name, sim, config),
            })
            .collect()
    }

    pub fn render(&self, jobs: &[JobInfo]) -> String {
        let mut out = String::new();
        for (name, sim, _) in &self.sims {
            match sim {
                Sim::HubSpot(sim, config) => out.push_str(&render_hubspot(name, sim, config, jobs)),
                Sim::Salesforce(sim, config) => {
                    out.push_str(&render_salesforce(name, sim, config, jobs))
                }
                Sim::Zendesk(sim, config) => out.push_str(&render_zendesk(name, sim, config)),
                Sim::Zoho(sim, config) => {
                    out.push_str(&super::zoho::render(name, sim, config, jobs))
                }
            }
        }
        out
    }
}

async fn provision(
    name: &str,
    table: &serde_json::Value,
    tag_names: &[String],
) -> anyhow::Result<wa2crm_core::Plan> {
    let context = wa2crm_core::ConnectorContext::new(std::sync::Arc::new(
        wa2crm_core::MemoryStateStore::default(),
    ))
    .with_tag_names(tag_names.to_vec());
    let registry = crate::connectors::registry();
    let factory = crate::connectors::factory_of(&registry, table).ok_or_else(|| {
        anyhow::anyhow!(
            "connectors.{name}: no connector of type {:?}",
            crate::connectors::type_of(table)
        )
    })?;
    let connector = factory
        .build(name, table, &context)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    connector
        .provision(false)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What landed in Salesforce: per media, its record's mapped fields and the Contact it looks up.
fn render_salesforce(
    name: &str,
    sim: &SalesforceSim,
    config: &SalesforceConfig,
    jobs: &[JobInfo],
) -> String {
    let (object, external_id, lookup, key) = (
        &config.object,
        &config.external_id,
        &config.contact_lookup,
        &config.contact_key,
    );
    let fields: Vec<(&str, &str)> = config.fields.iter().map(|(a, f)| (a.as_str(), f)).collect();
    let mut out = format!("\n{name} (Salesforce simulator at {}):\n", sim.url());
    for job in jobs {
        let Some(record) = sim.find(object, external_id, &job.event.message_id) else {
            out.push_str(&format!(
                "  no {object} record for {}\n",
                job.event.message_id
            ));
            continue;
        };
        let name_of = |r: &serde_json::Map<String, serde_json::Value>| {
            [r.get("FirstName"), r.get("LastName")]
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let lead_lookup = &config.matching.lead_lookup;
        let linked = match (
            record.get(lookup).and_then(|v| v.as_str()),
            record.get(lead_lookup).and_then(|v| v.as_str()),
        ) {
            (Some(contact), _) => format!(
                "Contact {contact} ({key} = {}, {:?})",
                job.event.sender,
                sim.find("Contact", "Id", contact)
                    .map(|c| name_of(&c))
                    .unwrap_or_default()
            ),
            (None, Some(lead)) => format!(
                "Lead {lead} ({:?}, a Lead only)",
                sim.find("Lead", "Id", lead)
                    .map(|l| name_of(&l))
                    .unwrap_or_default()
            ),
            (None, None) => "nothing".to_owned(),
        };
        out.push_str(&format!(
            "  {object} {} ({external_id} = {}) → {linked}\n",
            record.get("Id").and_then(|v| v.as_str()).unwrap_or("-"),
            job.event.message_id,
        ));
        for (attribute, field) in &fields {
            let value = match record.get(*field) {
                None | Some(serde_json::Value::Null) => "-".to_owned(),
                Some(serde_json::Value::String(v)) => v.clone(),
                Some(v) => v.to_string(),
            };
            out.push_str(&format!("    {field:<22} = {value:<40}  ({attribute})\n"));
        }
        if let Some(task) = sim.find("Task", &config.task_key, &job.event.message_id) {
            let f = |k: &str| {
                task.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .to_owned()
            };
            out.push_str(&format!(
                "    Task {} · due {} · {} · owner {} · {}\n",
                f("Id"),
                f("ActivityDate"),
                f("Status"),
                f("OwnerId"),
                f("Subject")
            ));
        }
    }
    out
}

/// What landed in HubSpot: each contact's mapped properties, and each media's note.
fn render_hubspot(
    name: &str,
    sim: &HubSpotSim,
    config: &HubSpotConfig,
    jobs: &[JobInfo],
) -> String {
    let key = config.contact_key.as_str();
    let note_key = config.note_key.as_str();
    let fields: Vec<(&str, &str)> = config.fields.iter().map(|(a, p)| (a.as_str(), p)).collect();
    let mut out = format!("\n{name} (HubSpot simulator at {}):\n", sim.url());
    let mut senders: Vec<String> = jobs.iter().map(|j| j.event.sender.to_string()).collect();
    senders.sort();
    senders.dedup();
    for sender in senders {
        let Some(contact) = sim.find("contacts", key, &sender) else {
            out.push_str(&format!("  no contact {key} = {sender}\n"));
            continue;
        };
        let name = [
            contact.properties.get("firstname"),
            contact.properties.get("lastname"),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
        let object = config.object.as_str();
        let property_lines = |props: &std::collections::BTreeMap<String, String>| {
            fields
                .iter()
                .map(|(attribute, property)| {
                    let value = props.get(*property).map_or("-", String::as_str);
                    format!("    {property:<22} = {value:<40}  ({attribute})\n")
                })
                .collect::<String>()
        };
        if object == "contacts" {
            out.push_str(&format!(
                "  contact {} ({key} = {sender}, name {name:?}): latest media\n",
                contact.id
            ));
            out.push_str(&property_lines(&contact.properties));
        } else {
            out.push_str(&format!(
                "  contact {} ({key} = {sender}, name {name:?})\n",
                contact.id
            ));
            let id_property = config
                .fields
                .get(wa2crm_core::CanonicalAttribute::MessageId)
                .unwrap_or("");
            for job in jobs.iter().filter(|j| j.event.sender.as_str() == sender) {
                match sim.find(object, id_property, &job.event.message_id) {
                    Some(r) => {
                        out.push_str(&format!("  {object} record {}:\n", r.id));
                        out.push_str(&property_lines(&r.properties));
                    }
                    None => out.push_str(&format!(
                        "  no {object} record for {}\n",
                        job.event.message_id
                    )),
                }
            }
        }
        if config.note {
            let notes = sim.associated("contacts", &contact.id, "notes");
            out.push_str(&format!("    {} timeline note(s):\n", notes.len()));
            for job in jobs.iter().filter(|j| j.event.sender.as_str() == sender) {
                match sim.find("notes", note_key, &job.event.message_id) {
                    Some(note) => {
                        let body = note
                            .properties
                            .get("hs_note_body")
                            .map_or("", String::as_str);
                        out.push_str(&format!(
                            "      note {} · {} · {}\n",
                            note.id,
                            note.properties
                                .get("hs_timestamp")
                                .map_or("-", String::as_str),
                            strip_tags(body)
                        ));
                    }
                    None => out.push_str(&format!("      no note for {}\n", job.event.message_id)),
                }
            }
        }
        let tasks = sim.associated("contacts", &contact.id, "tasks");
        if !tasks.is_empty() {
            out.push_str(&format!(
                "    {} task(s) for the contact's owner:\n",
                tasks.len()
            ));
            for task in sim
                .records("tasks")
                .iter()
                .filter(|t| tasks.contains(&t.id))
            {
                let p = |k: &str| task.properties.get(k).map_or("-", String::as_str);
                out.push_str(&format!(
                    "      task {} · due {} · {} · {}\n",
                    task.id,
                    p("hs_timestamp"),
                    p("hs_task_status"),
                    p("hs_task_subject")
                ));
            }
        }
    }
    out
}

/// What landed in Zendesk: each ticket with media, its tags and mapped fields, and its notes.
fn render_zendesk(name: &str, sim: &ZendeskSim, config: &ZendeskConfig) -> String {
    let mut out = format!("\n{name} (Zendesk simulator at {}):\n", sim.url());
    let users = sim.users();
    let fields = sim.ticket_fields();
    for ticket in sim.tickets() {
        let notes: Vec<_> = ticket
            .comments
            .iter()
            .filter(|c| c.body.contains("\nwa2crm: "))
            .collect();
        if notes.is_empty() {
            continue;
        }
        let requester = users
            .iter()
            .find(|u| u.id == ticket.requester_id)
            .map(|u| format!("{} {}", u.name, u.phone.as_deref().unwrap_or("")))
            .unwrap_or_default();
        out.push_str(&format!(
            "  ticket #{} {:?} ({}) · requester {requester} · tags: {}\n",
            ticket.id,
            ticket.subject,
            ticket.status,
            ticket.tags.join(" ")
        ));
        for (attribute, title) in config.fields.iter() {
            let value = fields
                .iter()
                .find(|f| f.title == title)
                .and_then(|f| ticket.custom_fields.get(&f.id))
                .map_or("-".to_owned(), |v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                });
            out.push_str(&format!("    {title:<28} = {value:<40}  ({attribute})\n"));
        }
        for note in notes {
            out.push_str(&format!(
                "    internal note {}{}:\n",
                note.id,
                match note.attachments.len() {
                    0 => String::new(),
                    n => format!(" with {n} attached file(s)"),
                }
            ));
            for line in note.body.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    out
}

/// `1 note`, `3 notes`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The note body as one readable line.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("&amp;", "&")
}
