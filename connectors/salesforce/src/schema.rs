//! `check` and `provision` against the org's describe: each mapped field must exist, be visible
//! to the integration user, and hold what wa2crm writes; the keys must be unique external IDs.
//! `provision` creates missing fields through the Tooling API and grants them to the integration
//! user's permission set (a new field is invisible to it until then); it never changes a field
//! that exists.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{CanonicalAttribute as A, CheckReport, Error, Plan, Result};

use crate::Salesforce;
use crate::api::describe;

/// What a field must be: (Tooling metadata type, describe types that hold the value, label).
fn spec(a: A) -> (&'static str, &'static [&'static str], &'static str) {
    match a {
        A::FileUrl => ("Url", &["url", "string"], "Media URL"),
        A::StorageUri => ("Text", &["string", "url"], "Storage URI"),
        A::SizeBytes => ("Number", &["double", "int", "currency"], "Size (bytes)"),
        A::DurationSeconds => ("Number", &["double", "int"], "Duration (s)"),
        A::ReceivedAt => ("DateTime", &["datetime"], "Received at"),
        A::Tags => (
            "LongTextArea",
            &["multipicklist", "textarea", "string"],
            "Tags",
        ),
        A::Caption => ("LongTextArea", &["textarea", "string"], "Caption"),
        A::Sender => ("Phone", &["phone", "string"], "Sender"),
        A::MessageId => ("Text", &["string"], "WhatsApp message id"),
        A::MediaType => ("Text", &["string", "picklist"], "Media type"),
        A::MimeType => ("Text", &["string"], "MIME type"),
        A::FileName => ("Text", &["string"], "File name"),
        A::SenderName => ("Text", &["string"], "Sender name"),
        A::Sha256 => ("Text", &["string"], "SHA-256"),
        A::RenditionUrl => ("Url", &["url", "string"], "Media link (MP3/MP4)"),
    }
}

/// A field wa2crm needs.
struct Wanted {
    object: String,
    field: String,
    label: &'static str,
    tooling_type: &'static str,
    accepted: &'static [&'static str],
    external_id: bool,
    reference_to: Option<&'static str>,
}

impl Salesforce {
    fn wanted(&self) -> Vec<Wanted> {
        let c = &self.config;
        let mut out = vec![
            Wanted {
                object: "Contact".into(),
                field: c.contact_key.clone(),
                label: "WhatsApp number",
                tooling_type: "Text",
                accepted: &["string", "phone"],
                external_id: true,
                reference_to: None,
            },
            Wanted {
                object: c.object.clone(),
                field: c.external_id.clone(),
                label: "WhatsApp message id",
                tooling_type: "Text",
                accepted: &["string"],
                external_id: true,
                reference_to: None,
            },
            Wanted {
                object: c.object.clone(),
                field: c.contact_lookup.clone(),
                label: "Contact",
                tooling_type: "Lookup",
                accepted: &["reference"],
                external_id: false,
                reference_to: Some("Contact"),
            },
        ];
        if c.matching.leads() {
            // A sender who is only a Lead: the media record looks the Lead up.
            out.push(Wanted {
                object: c.object.clone(),
                field: c.matching.lead_lookup.clone(),
                label: "Lead",
                tooling_type: "Lookup",
                accepted: &["reference"],
                external_id: false,
                reference_to: Some("Lead"),
            });
        }
        if let Some(field) = &c.consent_field {
            out.push(Wanted {
                object: "Contact".into(),
                field: field.clone(),
                label: "WhatsApp media consent",
                tooling_type: "Checkbox",
                accepted: &["boolean"],
                external_id: false,
                reference_to: None,
            });
        }
        if c.task.is_some() {
            // Created on Activity (Task's custom fields live there); read and granted on Task.
            out.push(Wanted {
                object: "Task".into(),
                field: c.task_key.clone(),
                label: "WhatsApp message id",
                tooling_type: "Text",
                accepted: &["string"],
                external_id: false,
                reference_to: None,
            });
        }
        for (attribute, field) in c.fields.iter() {
            if field == c.external_id {
                continue;
            }
            let (tooling_type, accepted, label) = spec(attribute);
            out.push(Wanted {
                object: c.object.clone(),
                field: field.to_owned(),
                label,
                tooling_type,
                accepted,
                external_id: false,
                reference_to: None,
            });
        }
        out
    }

    /// Visible fields of an object by name; `None` when the object does not exist (or is hidden).
    async fn fields_of(&self, object: &str) -> Result<Option<BTreeMap<String, Value>>> {
        let a = self
            .api
            .call(
                Method::GET,
                &format!("/sobjects/{object}/describe"),
                None,
                true,
            )
            .await?;
        match a.status.as_u16() {
            200 => Ok(Some(
                a.body
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| Some((f.get("name")?.as_str()?.to_owned(), f.clone())))
                    .collect(),
            )),
            404 => Ok(None),
            s => Err(Error::permanent(format!(
                "describing {object}: {s} {}",
                describe(&a.body)
            ))),
        }
    }

    pub async fn check_schema(&self) -> Result<CheckReport> {
        let name = &self.name;
        let mut problems = Vec::new();
        let mut described: BTreeMap<String, Option<BTreeMap<String, Value>>> = BTreeMap::new();
        for w in self.wanted() {
            if !described.contains_key(&w.object) {
                match self.fields_of(&w.object).await {
                    Ok(f) => {
                        described.insert(w.object.clone(), f);
                    }
                    Err(e) => {
                        problems.push(format!(
                            "connectors.{name}: cannot describe {}: {}",
                            w.object,
                            e.message()
                        ));
                        return Ok(CheckReport {
                            problems,
                            ..CheckReport::default()
                        });
                    }
                }
            }
            let Some(Some(fields)) = described.get(&w.object) else {
                let line = format!(
                    "connectors.{name}.object: {} does not exist or the integration user cannot see it; create the custom object (README: Salesforce) and give the permission set access to it",
                    w.object
                );
                if !problems.contains(&line) {
                    problems.push(line);
                }
                continue;
            };
            if let Some(p) = problem(&w, fields.get(&w.field)) {
                problems.push(format!("connectors.{name}: {}.{}: {p}", w.object, w.field));
            }
        }
        let reached = self.org().await;
        let m = &self.config.matching;
        let notes = if m.enabled {
            vec![format!(
                "connectors.{name}.match: a new sender is looked for with a phone search among \
                 {}{}; {}; {}",
                m.objects.join(", "),
                if m.leads() {
                    format!(
                        " (a Lead-only sender's media looks up the Lead through {})",
                        m.lead_lookup
                    )
                } else {
                    String::new()
                },
                match &m.default_country {
                    Some(c) => format!("numbers written without a country are read as {c}"),
                    None => "numbers written without a country are not matched (set \
                             match.default_country)"
                        .to_owned(),
                },
                if m.create {
                    "without a match a Contact is created"
                } else {
                    "without a match the media waits, dead-lettered as unmatched"
                }
            )]
        } else {
            Vec::new()
        };
        Ok(CheckReport {
            problems,
            reached,
            notes,
        })
    }

    /// The org the session opened, as Salesforce names it: the admin sees a sandbox org where
    /// production was meant (or the other way round) before anything is written.
    async fn org(&self) -> Option<String> {
        let records = self
            .query_records("SELECT Id, Name FROM Organization", "reading the org")
            .await
            .ok()?;
        let org = records.first()?;
        let instance = self
            .api
            .instance_url
            .read()
            .ok()
            .and_then(|u| u.as_ref().map(|u| u.to_string()))
            .unwrap_or_default();
        Some(format!(
            "Salesforce org {} \"{}\" at {}",
            org.get("Id").and_then(Value::as_str).unwrap_or("?"),
            org.get("Name").and_then(Value::as_str).unwrap_or("?"),
            instance.trim_end_matches('/')
        ))
    }

    pub async fn provision_schema(&self, dry_run: bool) -> Result<Plan> {
        let mut actions = Vec::new();
        let mut described: BTreeMap<String, Option<BTreeMap<String, Value>>> = BTreeMap::new();
        for w in self.wanted() {
            if !described.contains_key(&w.object) {
                described.insert(w.object.clone(), self.fields_of(&w.object).await?);
            }
            let Some(Some(fields)) = described.get(&w.object) else {
                let line = format!(
                    "cannot provision {}: the object does not exist; create it once as README describes",
                    w.object
                );
                if !actions.contains(&line) {
                    actions.push(line);
                }
                continue;
            };
            match fields.get(&w.field) {
                Some(live) => {
                    if let Some(p) = problem(&w, Some(live)) {
                        actions.push(format!("left alone {}.{}: {p}", w.object, w.field));
                    }
                }
                None => {
                    actions.push(format!(
                        "create {}.{} ({}{})",
                        w.object,
                        w.field,
                        w.tooling_type,
                        if w.external_id {
                            ", unique external ID"
                        } else {
                            ""
                        }
                    ));
                    if !dry_run {
                        self.create_field(&w).await?;
                    }
                    match &self.config.permission_set {
                        Some(ps) => {
                            actions.push(format!("grant read/edit on {}.{} to permission set {ps}", w.object, w.field));
                            if !dry_run {
                                self.grant(&w, ps).await?;
                            }
                        }
                        None => actions.push(format!(
                            "grant the integration user read/edit on {}.{} yourself (set permission_set to let provision do it)",
                            w.object, w.field
                        )),
                    }
                }
            }
        }
        Ok(Plan { actions })
    }

    async fn create_field(&self, w: &Wanted) -> Result<()> {
        let mut meta =
            json!({"label": w.label, "type": w.tooling_type, "description": "Written by wa2crm"});
        match w.tooling_type {
            "Text" => {
                meta["length"] = json!(255);
                if w.external_id {
                    meta["externalId"] = json!(true);
                    meta["unique"] = json!(true);
                    meta["caseSensitive"] = json!(false);
                }
            }
            "Number" => {
                meta["precision"] = json!(18);
                meta["scale"] = json!(3);
            }
            "Checkbox" => {
                // Required for a checkbox: unticked until the admin's process ticks it.
                meta["defaultValue"] = json!(false);
            }
            "LongTextArea" => {
                meta["length"] = json!(32768);
                meta["visibleLines"] = json!(3);
            }
            "Lookup" => {
                meta["referenceTo"] = json!(w.reference_to.unwrap_or("Contact"));
                meta["relationshipName"] = json!(w.field.trim_end_matches("__c"));
                meta["deleteConstraint"] = json!("SetNull");
            }
            _ => {}
        }
        let defined_on = if w.object == "Task" {
            "Activity"
        } else {
            w.object.as_str()
        };
        let body = json!({"FullName": format!("{defined_on}.{}", w.field), "Metadata": meta});
        // A create is not idempotent: never retried blindly (a duplicate answers DUPLICATE_DEVELOPER_NAME).
        let a = self
            .api
            .call(
                Method::POST,
                "/tooling/sobjects/CustomField",
                Some(&body),
                false,
            )
            .await?;
        if a.status.is_success() || describe(&a.body).starts_with("DUPLICATE_DEVELOPER_NAME") {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "creating {}.{}: {}",
                w.object,
                w.field,
                describe(&a.body)
            )))
        }
    }

    async fn grant(&self, w: &Wanted, permission_set: &str) -> Result<()> {
        let body = json!({"ParentId": permission_set, "SobjectType": w.object,
            "Field": format!("{}.{}", w.object, w.field), "PermissionsRead": true, "PermissionsEdit": true});
        let a = self
            .api
            .call(
                Method::POST,
                "/sobjects/FieldPermissions",
                Some(&body),
                false,
            )
            .await?;
        if a.status.is_success() || describe(&a.body).starts_with("DUPLICATE_VALUE") {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "granting {}.{} to {permission_set}: {}",
                w.object,
                w.field,
                describe(&a.body)
            )))
        }
    }
}

fn problem(w: &Wanted, live: Option<&Value>) -> Option<String> {
    let Some(f) = live else {
        return Some(format!(
            "missing, or invisible to the integration user (field-level security); `wa2crm provision` creates it as {}{} and grants it",
            w.tooling_type,
            if w.external_id {
                " (unique external ID)"
            } else {
                ""
            }
        ));
    };
    let kind = f.get("type").and_then(Value::as_str).unwrap_or("?");
    if !w.accepted.contains(&kind) {
        return Some(format!(
            "is of type {kind}; wa2crm writes {} into it (accepted: {})",
            w.label,
            w.accepted.join(" or ")
        ));
    }
    if w.external_id
        && !(f.get("externalId").and_then(Value::as_bool) == Some(true)
            && f.get("unique").and_then(Value::as_bool) == Some(true))
    {
        return Some(
            "must be a unique External ID, so that writes by it are idempotent upserts".into(),
        );
    }
    if let Some(target) = w.reference_to {
        let points_to = f
            .get("referenceTo")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some(target)));
        if !points_to {
            return Some(format!("must be a lookup to {target}"));
        }
    }
    if f.get("updateable").and_then(Value::as_bool) == Some(false) {
        return Some("is read-only for the integration user".into());
    }
    None
}
