//! `check` compares the configuration with the live org — the credentials and who they act as,
//! the media module and its fields (the message-id field unique, the lookups to Contacts and
//! Leads, the mapped fields and their types), `contact_key` and `consent_field` on Contacts —
//! one line per problem; `provision` creates the missing fields through the fields API. A module
//! cannot be made that way without spending 500 credits and an admin's choices (its name, layout,
//! profiles), so a missing one is the admin's, with the steps.

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{CanonicalAttribute as A, CheckReport, Error, Plan, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zoho;
use crate::deliver::ModuleField;
use crate::rules::describe;

/// A field the configuration needs: where, which, the type `provision` gives it, the types that
/// also work, and whether it must be unique.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub key: String,
    pub module: String,
    pub api_name: String,
    pub data_type: &'static str,
    pub also: &'static [&'static str],
    pub unique: bool,
    pub lookup: Option<&'static str>,
}

/// The type a mapped attribute gets, and the others it may have.
fn attribute_type(a: A) -> (&'static str, &'static [&'static str]) {
    match a {
        A::FileUrl | A::RenditionUrl => ("website", &["text", "textarea"]),
        A::SizeBytes => ("bigint", &["integer", "double", "text"]),
        A::DurationSeconds => ("double", &["decimal", "text"]),
        A::ReceivedAt => ("datetime", &["text"]),
        A::Tags => ("textarea", &["text", "multiselectpicklist"]),
        A::Caption => ("textarea", &["text"]),
        A::Sender => ("phone", &["text"]),
        _ => ("text", &["textarea"]),
    }
}

fn module_steps(module: &str) -> String {
    format!(
        "Zoho has no module {module:?}. Create it: Setup → Customization → Modules and Fields → \
         Create New Module, name it {:?} (its API name must be {module}), save, and give the \
         integration user's profile access; then run `wa2crm provision`",
        module.replace('_', " ")
    )
}

impl Zoho {
    pub(crate) fn wanted_fields(&self) -> Vec<Wanted> {
        let c = &self.config;
        let media = |key: &str, api: &str, t, also, unique, lookup| Wanted {
            key: key.into(),
            module: c.module.clone(),
            api_name: api.into(),
            data_type: t,
            also,
            unique,
            lookup,
        };
        let mut out = vec![
            media(
                "message_id_field",
                &c.message_id_field,
                "text",
                &[],
                true,
                None,
            ),
            media(
                "sender_field",
                &c.sender_field,
                "text",
                &["phone"],
                false,
                None,
            ),
            media(
                "contact_lookup",
                &c.contact_lookup,
                "lookup",
                &[],
                false,
                Some("Contacts"),
            ),
        ];
        if c.matching.leads {
            out.push(media(
                "lead_lookup",
                &c.lead_lookup,
                "lookup",
                &[],
                false,
                Some("Leads"),
            ));
        }
        for (a, field) in c.fields.iter() {
            let (t, also) = attribute_type(a);
            out.push(media(&format!("fields.{a}"), field, t, also, false, None));
        }
        if c.matching.create {
            out.push(Wanted {
                key: "contact_key".into(),
                module: "Contacts".into(),
                api_name: c.contact_key.clone(),
                data_type: "text",
                also: &[],
                unique: true,
                lookup: None,
            });
        }
        if let Some(f) = &c.consent_field {
            out.push(Wanted {
                key: "consent_field".into(),
                module: "Contacts".into(),
                api_name: f.clone(),
                data_type: "boolean",
                also: &[],
                unique: false,
                lookup: None,
            });
        }
        out
    }

    /// What is wrong with a field as the org has it (`None`: fine).
    fn field_problem(&self, w: &Wanted, have: &ModuleField) -> Option<String> {
        let name = &self.name;
        if have.data_type != w.data_type && !w.also.contains(&have.data_type.as_str()) {
            return Some(format!(
                "connectors.{name}.{}: {}.{} is {}, it must be {}",
                w.key, w.module, w.api_name, have.data_type, w.data_type
            ));
        }
        if w.unique && !have.unique {
            return Some(format!(
                "connectors.{name}.{}: {}.{} must not allow duplicates: in Setup → Modules and \
                 Fields, edit the field and tick \"Do not allow duplicate values\" (wa2crm upserts on it)",
                w.key, w.module, w.api_name
            ));
        }
        if let (Some(want), Some(got)) = (w.lookup, &have.lookup)
            && want != got
        {
            return Some(format!(
                "connectors.{name}.{}: {}.{} looks up {got}, it must look up {want}",
                w.key, w.module, w.api_name
            ));
        }
        None
    }

    pub(crate) async fn check_org(&self) -> Result<CheckReport> {
        let name = &self.name;
        let mut report = CheckReport::default();
        // The first call also proves the credentials: without them nothing else can be asked.
        let me = self.api.get("/users?type=CurrentUser").await?;
        let org = self.api.get("/org").await;
        let refused = |what: &str, a: &crate::api::Answer| {
            format!(
                "connectors.{name}: Zoho refused to say {what} ({}: {})",
                a.status,
                describe(&a.body)
            )
        };
        if !me.status.is_success() {
            report
                .problems
                .push(refused("who the credentials act as", &me));
            return Ok(report);
        }
        let company = match &org {
            Ok(a) if a.status.is_success() => format!(
                "{} {:?}",
                a.body["org"][0]["id"].as_str().unwrap_or("?"),
                a.body["org"][0]["company_name"].as_str().unwrap_or("?")
            ),
            Ok(a) => {
                report.problems.push(refused("which org this is", a));
                "?".into()
            }
            Err(e) => {
                report
                    .problems
                    .push(format!("connectors.{name}: {}", e.message()));
                "?".into()
            }
        };
        let user = &me.body["users"][0];
        report.reached = Some(format!(
            "Zoho CRM org {company} as {} ({})",
            user["email"].as_str().unwrap_or("?"),
            user["profile"]["name"].as_str().unwrap_or("?"),
        ));
        // Finding senders needs COQL on Contacts (and Leads): its scope is tried here.
        if let Err(e) = self
            .api
            .coql("select id from Contacts where id is not null limit 1")
            .await
        {
            report.problems.push(format!(
                "connectors.{name}: looking senders up failed: {}",
                e.message()
            ));
        }
        let mut modules: Vec<(String, Option<Vec<ModuleField>>)> = Vec::new();
        for w in self.wanted_fields() {
            if modules.iter().any(|(m, _)| *m == w.module) {
                continue;
            }
            match self.fields_of(&w.module).await {
                Ok(fields) => modules.push((w.module.clone(), fields)),
                Err(e) => {
                    report
                        .problems
                        .push(format!("connectors.{name}: {}", e.message()));
                    return Ok(report);
                }
            }
        }
        for (module, fields) in &modules {
            if fields.is_none() {
                report.problems.push(format!(
                    "connectors.{name}.module: {}",
                    module_steps(module)
                ));
            }
        }
        for w in self.wanted_fields() {
            let Some((_, Some(fields))) = modules.iter().find(|(m, _)| *m == w.module) else {
                continue;
            };
            match fields.iter().find(|f| f.api_name == w.api_name) {
                None => report.problems.push(format!(
                    "connectors.{name}.{}: {} has no field {} ({}); run `wa2crm provision`",
                    w.key, w.module, w.api_name, w.data_type
                )),
                Some(have) => report.problems.extend(self.field_problem(&w, have)),
            }
        }
        report.notes.push(format!(
            "Senders are looked for among Contacts{} by Phone and Mobile, in the ways numbers are \
             written (+E.164, international, national); {}",
            if self.config.matching.leads {
                " then Leads"
            } else {
                ""
            },
            if self.config.matching.create {
                "without a match a Contact is made"
            } else {
                "without a match the media waits as unmatched (match.create = false)"
            }
        ));
        Ok(report)
    }

    pub(crate) async fn provision_org(&self, dry_run: bool) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut by_module: Vec<(String, Vec<Wanted>)> = Vec::new();
        for w in self.wanted_fields() {
            match by_module.iter_mut().find(|(m, _)| *m == w.module) {
                Some((_, list)) => list.push(w),
                None => by_module.push((w.module.clone(), vec![w])),
            }
        }
        for (module, wanted) in by_module {
            let Some(fields) = self.fields_of(&module).await? else {
                return Err(Error::permanent(module_steps(&module)));
            };
            let missing: Vec<&Wanted> = wanted
                .iter()
                .filter(|w| !fields.iter().any(|f| f.api_name == w.api_name))
                .collect();
            if missing.is_empty() {
                continue;
            }
            for w in &missing {
                plan.actions.push(format!(
                    "create {} field {}.{}{}",
                    w.data_type,
                    module,
                    w.api_name,
                    if w.unique { " (no duplicates)" } else { "" }
                ));
            }
            if dry_run {
                continue;
            }
            let asked: Vec<Value> = missing
                .iter()
                .map(|w| {
                    let mut f = json!({"field_label": w.api_name.replace('_', " "),
                        "data_type": w.data_type});
                    if w.unique {
                        f["unique"] = json!({"casesensitive": false});
                    }
                    if let Some(m) = w.lookup {
                        f["lookup"] = json!({"module": {"api_name": m}});
                    }
                    f
                })
                .collect();
            let a = self
                .api
                .call(
                    Method::POST,
                    &format!("/settings/fields?module={module}"),
                    Some(&json!({ "fields": asked })),
                    Repeat::Once,
                )
                .await?;
            let results = a.body["fields"].as_array().cloned().unwrap_or_default();
            for (w, r) in missing
                .iter()
                .zip(results.iter().chain(std::iter::repeat(&Value::Null)))
            {
                if r["status"] != "success" {
                    return Err(Error::permanent(format!(
                        "Zoho refused to create {}.{}: {}",
                        module,
                        w.api_name,
                        describe(if r.is_null() { &a.body } else { r })
                    )));
                }
            }
        }
        if !dry_run {
            // The next delivery reads the new fields.
            *self.module_fields.lock().await = None;
        }
        Ok(plan)
    }
}
