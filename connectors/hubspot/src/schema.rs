//! `check` and `provision`: the configured mapping against the portal's live properties.
//!
//! What wa2crm needs of each property follows from the attribute it receives (see [`wanted`]);
//! `check` reports every difference on its own line, `provision` creates what is missing (the
//! property group first) and leaves alone what exists with another type, saying so: changing a
//! property's type can destroy data other people rely on.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wa2crm_core::{CanonicalAttribute as A, CheckReport, Error, MediaKind, Plan, Result};

use crate::HubSpot;
use crate::api::AnswerExt;
use crate::api::missing_scopes;

/// The one option of a tags property created while no `[[tags]]` rule exists: HubSpot refuses
/// an enumeration without options, and wa2crm never writes this value.
pub const NO_TAGS_OPTION: &str = "wa2crm-no-tags-yet";

/// What a property must be for one attribute.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub object: String,
    pub name: String,
    pub label: String,
    pub kind: &'static str,
    pub field_type: &'static str,
    pub unique: bool,
    /// Options the property must have (`check` names those it lacks).
    pub options: Vec<String>,
    /// Options a new property is created with besides `options`; `check` does not require them,
    /// since wa2crm adds a missing one itself before writing it (the tags).
    pub initial_options: Vec<String>,
    /// Other HubSpot types that hold the value just as well.
    pub also: &'static [&'static str],
}

fn spec(
    a: A,
) -> (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
) {
    match a {
        A::MessageId => ("string", "text", &[], "WhatsApp message id"),
        A::FileUrl => ("string", "text", &[], "WhatsApp media link"),
        A::StorageUri => ("string", "text", &[], "WhatsApp media storage URI"),
        A::MediaType => ("enumeration", "select", &["string"], "WhatsApp media type"),
        A::MimeType => ("string", "text", &[], "WhatsApp media MIME type"),
        A::SizeBytes => ("number", "number", &[], "WhatsApp media size (bytes)"),
        A::DurationSeconds => ("number", "number", &[], "WhatsApp media duration (s)"),
        A::Tags => (
            "enumeration",
            "checkbox",
            &["string"],
            "WhatsApp media tags",
        ),
        A::Caption => ("string", "textarea", &[], "WhatsApp media caption"),
        A::FileName => ("string", "text", &[], "WhatsApp media file name"),
        A::Sender => ("string", "text", &["phone_number"], "WhatsApp sender"),
        A::SenderName => ("string", "text", &[], "WhatsApp sender name"),
        A::ReceivedAt => (
            "datetime",
            "date",
            &["string"],
            "WhatsApp media received at",
        ),
        A::Sha256 => ("string", "text", &[], "WhatsApp media SHA-256"),
        A::RenditionUrl => ("string", "text", &[], "WhatsApp media link (MP3/MP4)"),
    }
}

impl HubSpot {
    /// The media object's type: `contacts` or the custom object.
    pub(crate) fn media_object(&self) -> &str {
        &self.config.object
    }

    /// Every property wa2crm writes, with the shape it needs.
    pub fn wanted(&self) -> Vec<Wanted> {
        let mut out = vec![Wanted {
            object: "contacts".into(),
            name: self.config.contact_key.clone(),
            label: "WhatsApp number".into(),
            kind: "string",
            field_type: "text",
            unique: true,
            options: vec![],
            initial_options: vec![],
            also: &[],
        }];
        for (attribute, property) in self.config.fields.iter() {
            let (kind, field_type, also, label) = spec(attribute);
            out.push(Wanted {
                object: self.media_object().to_owned(),
                name: property.to_owned(),
                label: label.into(),
                kind,
                field_type,
                unique: attribute == A::MessageId && !self.config.is_contacts(),
                options: if attribute == A::MediaType {
                    MediaKind::ALL
                        .iter()
                        .map(|k| k.as_str().to_owned())
                        .collect()
                } else {
                    vec![]
                },
                initial_options: if attribute == A::Tags {
                    self.initial_tag_options()
                } else {
                    vec![]
                },
                also,
            });
        }
        if let Some(field) = &self.config.consent_field {
            out.push(Wanted {
                object: "contacts".into(),
                name: field.clone(),
                label: "WhatsApp media consent".into(),
                kind: "bool",
                field_type: "booleancheckbox",
                unique: false,
                options: vec!["true".into(), "false".into()],
                initial_options: vec![],
                // Older single checkboxes are enumerations of true/false.
                also: &["enumeration"],
            });
        }
        if self.config.task.is_some() {
            out.push(Wanted {
                object: "tasks".into(),
                name: self.config.task_key.clone(),
                label: "WhatsApp message id".into(),
                kind: "string",
                field_type: "text",
                unique: true,
                options: vec![],
                initial_options: vec![],
                also: &[],
            });
        }
        if self.config.note {
            out.push(Wanted {
                object: "notes".into(),
                name: self.config.note_key.clone(),
                label: "WhatsApp message id".into(),
                kind: "string",
                field_type: "text",
                unique: true,
                options: vec![],
                initial_options: vec![],
                also: &[],
            });
        }
        out
    }

    /// The options a new tags property gets: one per configured tag rule, or a placeholder
    /// when there are none, since HubSpot requires `options` on every enumeration property
    /// (properties API reference: "options ... Required for enumeration properties"). Tags
    /// that appear later are added as options before they are written (`ensure_tag_options`).
    fn initial_tag_options(&self) -> Vec<String> {
        if self.tag_names.is_empty() {
            vec![NO_TAGS_OPTION.to_owned()]
        } else {
            self.tag_names.clone()
        }
    }

    fn objects(&self) -> Vec<String> {
        let mut objects: Vec<String> = self.wanted().into_iter().map(|w| w.object).collect();
        objects.dedup();
        objects.sort();
        objects.dedup();
        objects
    }

    /// The live properties of `object` by name; `Ok(None)` when the object type does not exist.
    async fn live_properties(&self, object: &str) -> Result<Option<BTreeMap<String, Value>>> {
        let answer = self
            .api
            .get(&format!("/crm/v3/properties/{object}"))
            .await?;
        match answer.status.as_u16() {
            200 => Ok(Some(
                answer
                    .body
                    .get("results")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p.get("name")?.as_str()?.to_owned(), p.clone())))
                    .collect(),
            )),
            400 | 404 => Ok(None),
            s => Err(Error::permanent(format!(
                "reading the {object} properties: HubSpot answered {s}: {}",
                answer.message()
            ))),
        }
    }

    fn scopes_needed(&self) -> Vec<&'static str> {
        let mut s = vec![
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
            "crm.schemas.contacts.read",
        ];
        if !self.config.is_contacts() {
            s.extend([
                "crm.objects.custom.read",
                "crm.objects.custom.write",
                "crm.schemas.custom.read",
            ]);
        }
        s
    }

    /// The scopes the token was granted and the portal it opens, when HubSpot says.
    async fn token_info(&self) -> Result<Option<(Vec<String>, Option<String>)>> {
        let token = self.api.auth.token().await?;
        let answer = if self.api.auth.is_oauth() {
            use secrecy::ExposeSecret;
            self.api
                .get(&format!(
                    "/oauth/v1/access-tokens/{}",
                    token.expose_secret()
                ))
                .await
        } else {
            use secrecy::ExposeSecret;
            self.api
                .post(
                    "/oauth/v2/private-apps/get/access-token-info",
                    &json!({"tokenKey": token.expose_secret()}),
                )
                .await
        };
        let Ok(answer) = answer else { return Ok(None) };
        let b = &answer.body;
        // Private apps answer `hubId`, OAuth `hub_id` and `hub_domain`.
        let portal = b
            .get("hubId")
            .or_else(|| b.get("hub_id"))
            .and_then(Value::as_u64)
            .map(|id| match b.get("hub_domain").and_then(Value::as_str) {
                Some(domain) => format!("HubSpot portal {id} ({domain})"),
                None => format!("HubSpot portal {id}"),
            });
        Ok(b.get("scopes").and_then(Value::as_array).map(|a| {
            (
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
                portal,
            )
        }))
    }

    pub(crate) async fn check_schema(&self) -> Result<CheckReport> {
        let name = &self.name;
        let mut problems = Vec::new();
        // The first call also proves the credentials.
        let mut live: BTreeMap<String, Option<BTreeMap<String, Value>>> = BTreeMap::new();
        for object in self.objects() {
            match self.live_properties(&object).await {
                Ok(p) => {
                    live.insert(object, p);
                }
                Err(e) => {
                    problems.push(format!(
                        "connectors.{name}: cannot read the {object} properties: {}",
                        e.message()
                    ));
                    return Ok(CheckReport {
                        problems,
                        ..CheckReport::default()
                    });
                }
            }
        }
        let mut reached = None;
        if let Ok(Some((granted, portal))) = self.token_info().await {
            reached = portal;
            for s in self.scopes_needed() {
                if !granted.iter().any(|g| g == s) {
                    problems.push(format!(
                        "connectors.{name}: the app lacks the scope {s}; add it to the app's scopes (and reinstall an OAuth app)"
                    ));
                }
            }
        }
        for w in self.wanted() {
            let Some(props) = live.get(&w.object) else {
                continue;
            };
            let Some(props) = props else {
                problems.push(format!(
                    "connectors.{name}.object: HubSpot has no object type {:?}; create the custom object first (README: HubSpot custom object)",
                    w.object
                ));
                continue;
            };
            if let Some(p) = problem(&w, props.get(&w.name)) {
                problems.push(format!("connectors.{name}: {}.{}: {p}", w.object, w.name));
            }
        }
        let mut notes = Vec::new();
        let m = &self.config.matching;
        if m.enabled
            && let Some(Some(contacts)) = live.get("contacts")
        {
            for f in &m.fields {
                if !contacts.contains_key(f) {
                    problems.push(format!(
                        "connectors.{name}.match.fields: contacts have no property {f:?}; name \
                         the properties that hold customers' numbers (phone, mobilephone, \
                         hs_whatsapp_phone_number, or your own)"
                    ));
                }
            }
            notes.push(format!(
                "connectors.{name}.match: a new sender is looked for among the contacts by {}; \
                 {}; {}",
                m.fields.join(", "),
                match &m.default_country {
                    Some(c) => format!("numbers written without a country are read as {c}"),
                    None => "numbers written without a country are not matched (set \
                             match.default_country)"
                        .to_owned(),
                },
                if m.create {
                    "without a match a contact is created"
                } else {
                    "without a match the media waits, dead-lettered as unmatched"
                }
            ));
        }
        problems.dedup();
        Ok(CheckReport {
            problems,
            reached,
            notes,
        })
    }

    pub(crate) async fn provision_schema(&self, dry_run: bool) -> Result<Plan> {
        let mut actions = Vec::new();
        let group = self.config.property_group.clone();
        for object in self.objects() {
            let Some(props) = self.live_properties(&object).await? else {
                actions.push(format!(
                    "cannot provision {object}: the custom object does not exist; create it once as README describes, then run provision again"
                ));
                continue;
            };
            let missing: Vec<Wanted> = self
                .wanted()
                .into_iter()
                .filter(|w| w.object == object && !props.contains_key(&w.name))
                .collect();
            for w in self.wanted().iter().filter(|w| w.object == object) {
                if let Some(p) = problem(w, props.get(&w.name))
                    && props.contains_key(&w.name)
                {
                    actions.push(format!("left alone {object}.{}: {p}", w.name));
                }
            }
            if missing.is_empty() {
                continue;
            }
            let group_exists = props
                .values()
                .any(|p| p.get("groupName").and_then(Value::as_str) == Some(group.as_str()));
            if !group_exists {
                actions.push(format!("create property group {object}.{group}"));
                if !dry_run {
                    let a = self
                        .api
                        .post(
                            &format!("/crm/v3/properties/{object}/groups"),
                            &json!({"name": group, "label": "WhatsApp media"}),
                        )
                        .await?;
                    if !a.status.is_success() && a.status.as_u16() != 409 {
                        return Err(refused(&format!("create group {object}.{group}"), &a.body));
                    }
                }
            }
            for w in missing {
                actions.push(format!(
                    "create {object}.{} ({}/{}{})",
                    w.name,
                    w.kind,
                    w.field_type,
                    if w.unique { ", unique" } else { "" }
                ));
                if dry_run {
                    continue;
                }
                let mut body = json!({"name": w.name, "label": w.label, "type": w.kind,
                    "fieldType": w.field_type, "groupName": group, "hasUniqueValue": w.unique,
                    "description": "Written by wa2crm"});
                if w.kind == "enumeration" || !w.options.is_empty() {
                    let mut options = w.options.clone();
                    options.extend(
                        w.initial_options
                            .iter()
                            .filter(|o| !w.options.contains(o))
                            .cloned(),
                    );
                    body["options"] = json!(
                        options
                            .iter()
                            .enumerate()
                            .map(|(i, o)| json!({
                        "label": o, "value": o, "displayOrder": i, "hidden": false}))
                            .collect::<Vec<_>>()
                    );
                }
                let a = self
                    .api
                    .post(&format!("/crm/v3/properties/{object}"), &body)
                    .await?;
                // 409: created meanwhile (another run); check says whether it fits.
                if !a.status.is_success() && a.status.as_u16() != 409 {
                    return Err(refused(&format!("create {object}.{}", w.name), &a.body));
                }
            }
        }
        Ok(Plan { actions })
    }
}

fn refused(what: &str, body: &Value) -> Error {
    Error::permanent(format!(
        "HubSpot refused to {what}: {}{}",
        crate::api::describe(body),
        missing_scopes(body)
            .map(|s| format!("; grant the app these scopes: {s}"))
            .unwrap_or_default()
    ))
}

/// What is wrong with a live property for what wa2crm writes into it, if anything.
fn problem(w: &Wanted, live: Option<&Value>) -> Option<String> {
    let Some(p) = live else {
        return Some(format!(
            "missing; `wa2crm provision` creates it as {}/{}{}",
            w.kind,
            w.field_type,
            if w.unique { " with unique values" } else { "" }
        ));
    };
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != w.kind && !w.also.contains(&kind) {
        let mut accepted = vec![w.kind];
        accepted.extend(w.also);
        return Some(format!(
            "is of type {kind}; wa2crm writes {} into it (accepted: {})",
            w.label,
            accepted.join(" or ")
        ));
    }
    if w.unique && p.get("hasUniqueValue").and_then(Value::as_bool) != Some(true) {
        return Some(
            "does not have unique values (hasUniqueValue), so writes by it cannot be idempotent; \
             HubSpot cannot change that on an existing property: create a new one with unique values \
             and name it in the config"
                .into(),
        );
    }
    if p.pointer("/modificationMetadata/readOnlyValue")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Some("is read-only; choose a property wa2crm can write".into());
    }
    if kind == "enumeration" && !w.options.is_empty() {
        let have: Vec<&str> = p
            .get("options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("value").and_then(Value::as_str))
            .collect();
        let lacking: Vec<&str> = w
            .options
            .iter()
            .map(String::as_str)
            .filter(|o| !have.contains(o))
            .collect();
        if !lacking.is_empty() {
            return Some(format!(
                "lacks the options {}; add them in HubSpot",
                lacking.join(", ")
            ));
        }
    }
    None
}
