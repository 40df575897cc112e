//! The Zoho CRM org the sandbox writes into: the media module an admin makes once, Jürgen a Lead
//! with his number typed nationally, Ana a Contact whose number has the ninth digit her WhatsApp
//! id lacks; what landed, record by record.

use serde_json::{Value, json};
use wa2crm_queue::JobInfo;
use wa2crm_sandbox::zoho::{ZohoSim, ZohoSimConfig};
use wa2crm_zoho::ZohoConfig;

use super::customers::{ANA, JUERGEN, SAM, Seeded};

const CLIENT: &str = "1000.SANDBOXWA2CRM";
const SECRET: &str = "sandbox-zoho-client-secret-4d2e";
const REFRESH: &str = "1000.sandbox0c44298fc1c149afbf4c8996fb924.27ae41e4649b934c";

/// A simulated org for the connector table `t`, whose credentials and data centre are swapped
/// for the simulator's.
pub async fn start(name: &str, t: &mut Value) -> anyhow::Result<(ZohoSim, ZohoConfig)> {
    let sim = ZohoSim::start(ZohoSimConfig::new(CLIENT, SECRET, REFRESH)).await?;
    // The one-time step README describes: the module exists.
    sim.add_module(t["module"].as_str().unwrap_or("WhatsApp_Media"));
    if let Some(m) = t.as_object_mut() {
        m.remove("data_centre");
    }
    t["accounts_url"] = sim.accounts_url().into();
    t["client_id"] = CLIENT.into();
    t["client_secret"] = SECRET.into();
    t["refresh_token"] = REFRESH.into();
    let config =
        ZohoConfig::from_value(t).map_err(|e| anyhow::anyhow!("connectors.{name}: {e}"))?;
    Ok((sim, config))
}

pub fn seed(sim: &ZohoSim) -> Vec<Seeded> {
    let juergen = sim.add_record(
        "Leads",
        json!({"First_Name": "Jürgen", "Last_Name": "Weiß", "Mobile": "0151 23456789"}),
    );
    let ana = sim.add_record(
        "Contacts",
        json!({"First_Name": "Ana", "Last_Name": "Souza", "Phone": "+55 11 98765-4321"}),
    );
    vec![
        Seeded {
            sender: format!("+{JUERGEN}"),
            typed: "0151 23456789".into(),
            id: juergen,
            object: "Lead",
        },
        Seeded {
            sender: format!("+{ANA}"),
            typed: "+55 11 98765-4321".into(),
            id: ana,
            object: "Contact",
        },
    ]
}

/// The media record a job wrote.
fn record_of(
    sim: &ZohoSim,
    config: &ZohoConfig,
    message_id: &str,
) -> Option<wa2crm_sandbox::zoho::Record> {
    sim.records(&config.module).into_iter().find(|r| {
        r.values
            .get(&config.message_id_field)
            .and_then(Value::as_str)
            == Some(message_id)
    })
}

fn lookup_id<'a>(r: &'a wa2crm_sandbox::zoho::Record, field: &str) -> Option<&'a str> {
    r.values.get(field).and_then(|v| v["id"].as_str())
}

pub fn report(
    name: &str,
    sim: &ZohoSim,
    config: &ZohoConfig,
    seeded: &[Seeded],
    jobs: &[JobInfo],
) -> String {
    let mut out = format!("{name}: who the media went to\n");
    for seed in seeded {
        let theirs: Vec<&JobInfo> = jobs
            .iter()
            .filter(|j| j.event.sender.as_str() == seed.sender)
            .collect();
        let field = if seed.object == "Lead" {
            &config.lead_lookup
        } else {
            &config.contact_lookup
        };
        let on_it = theirs
            .iter()
            .filter(|j| {
                record_of(sim, config, &j.event.message_id)
                    .is_some_and(|r| lookup_id(&r, field) == Some(seed.id.as_str()))
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
    let sam = sim
        .records("Contacts")
        .into_iter()
        .find(|c| c.values.get(&config.contact_key).and_then(Value::as_str) == Some(SAM));
    if let Some(c) = sam {
        out.push_str(&format!("  {SAM} (a new sender): a new Contact {}\n", c.id));
    }
    out
}

pub fn summary(name: &str, sim: &ZohoSim, config: &ZohoConfig) -> String {
    format!(
        "{name} (Zoho CRM): {} {} records, {} Contacts, {} Notes, {} attachments",
        sim.records(&config.module).len(),
        config.module,
        sim.records("Contacts").len(),
        sim.records("Notes").len(),
        sim.attachments().len()
    )
}

/// Per media: its record's mapped fields, whose record it looks up, its Note and attachment.
pub fn render(name: &str, sim: &ZohoSim, config: &ZohoConfig, jobs: &[JobInfo]) -> String {
    let mut out = format!("\n{name} (Zoho CRM simulator at {}):\n", sim.api_url());
    let notes = sim.records("Notes");
    let attachments = sim.attachments();
    for job in jobs {
        let Some(r) = record_of(sim, config, &job.event.message_id) else {
            continue;
        };
        let parent = lookup_id(&r, &config.contact_lookup)
            .map(|id| format!("Contact {id}"))
            .or_else(|| lookup_id(&r, &config.lead_lookup).map(|id| format!("Lead {id}")))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  {} record {} {:?} · {parent}\n",
            config.module,
            r.id,
            r.values.get("Name").and_then(Value::as_str).unwrap_or("")
        ));
        for (attribute, field) in config.fields.iter() {
            let value = r.values.get(field).map_or("-".to_owned(), |v| match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            });
            out.push_str(&format!("    {field:<28} = {value:<40}  ({attribute})\n"));
        }
        let title_end = format!(" · {}", job.event.message_id);
        if let Some(n) = notes.iter().find(|n| {
            n.values
                .get("Note_Title")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(&title_end))
        }) {
            let content = n
                .values
                .get("Note_Content")
                .and_then(Value::as_str)
                .unwrap_or("");
            out.push_str(&format!(
                "    Note {}: {}\n",
                n.id,
                content.replace('\n', " | ")
            ));
        }
        for a in attachments.iter().filter(|a| a.parent_id == r.id) {
            out.push_str(&format!(
                "    attachment {} ({} bytes)\n",
                a.file_name, a.size
            ));
        }
    }
    out
}
