//! Writing a batch: the senders' Contacts or Leads ([`crate::matching`]), then one upsert of up to
//! 100 media records on `message_id_field` (so a retry updates what an earlier attempt wrote,
//! never doubles it), each looked up to its sender's record; then, when asked, a Note on that
//! record ([`crate::notes`]) and the file attached to the media record ([`crate::files`]).
//! Existing Contacts and Leads are never written.

use reqwest::Method;
use serde_json::{Map, Value, json};
use wa2crm_core::connector::AttributeValue;
use wa2crm_core::{Delivered, Error, MediaRecord, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zoho;
use crate::matching::Parent;
use crate::rules::describe;

/// A field of the media module as Zoho describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleField {
    pub api_name: String,
    pub data_type: String,
    pub unique: bool,
    /// A lookup's module.
    pub lookup: Option<String>,
    /// The longest text it holds, when Zoho says.
    pub length: Option<usize>,
}

pub fn module_field(f: &Value) -> Option<ModuleField> {
    Some(ModuleField {
        api_name: f["api_name"].as_str()?.to_owned(),
        data_type: f["data_type"].as_str().unwrap_or("").to_owned(),
        unique: f.get("unique").is_some_and(|u| !u.is_null()),
        lookup: f
            .pointer("/lookup/module/api_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        length: f["length"].as_u64().map(|n| n as usize),
    })
}

/// Zoho's datetime: `2026-12-04T21:00:00+00:00` (no fraction; an offset, never `Z`).
pub fn datetime(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A value as the field's type takes it: tags as a list for a multi-select, joined with `; ` for
/// text; numbers as numbers (a `text` field gets them as text).
pub fn value(v: &AttributeValue<'_>, data_type: &str) -> Value {
    let text = matches!(data_type, "text" | "textarea" | "website");
    match v {
        AttributeValue::Text(s) => json!(s),
        AttributeValue::Integer(n) if text => json!(n.to_string()),
        AttributeValue::Integer(n) => json!(n),
        AttributeValue::Number(x) if text => json!(format!("{x:.3}")),
        AttributeValue::Number(x) => json!((x * 1000.0).round() / 1000.0),
        AttributeValue::List([]) => Value::Null,
        AttributeValue::List(items) if data_type == "multiselectpicklist" => json!(items),
        AttributeValue::List(items) => json!(items.join("; ")),
        AttributeValue::DateTime(t) => json!(datetime(*t)),
    }
}

/// Text cut to a field's length, so a long caption shortens instead of failing the media: what
/// is cut ends with `…`.
pub fn fit(v: Value, max_chars: Option<usize>) -> Value {
    match (v, max_chars) {
        (Value::String(s), Some(max)) if max > 0 && s.chars().count() > max => {
            let mut cut: String = s.chars().take(max - 1).collect();
            cut.push('…');
            Value::String(cut)
        }
        (v, _) => v,
    }
}

/// The record's name as Zoho lists it: `Video from Ada`.
pub fn title(r: &MediaRecord) -> String {
    let kind = r.media_type.as_str();
    let who = r
        .sender_name
        .as_deref()
        .map(crate::notes::inert)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| r.sender.as_str().to_owned());
    // A record's name holds 120 characters.
    format!("WhatsApp {kind} from {who}")
        .chars()
        .take(120)
        .collect()
}

impl Zoho {
    pub async fn deliver_batch(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered>> {
        if let Err(e) = self.api.engine.pause.check() {
            return batch.iter().map(|_| Err(e.for_another())).collect();
        }
        let fields = match self.fields_for_mapping().await {
            Ok(f) => f,
            Err(e) => return batch.iter().map(|_| Err(e.for_another())).collect(),
        };
        let parents = self.parents(batch).await;
        let mut out: Vec<Option<Result<Delivered>>> = batch.iter().map(|_| None).collect();
        let mut sent: Vec<(usize, Value)> = Vec::new();
        for (n, r) in batch.iter().enumerate() {
            match parents.get(r.sender.as_str()) {
                Some(Ok(p)) => sent.push((n, self.media_record(r, p, &fields))),
                Some(Err(e)) => out[n] = Some(Err(e.for_another())),
                None => out[n] = Some(Err(Error::transient("the sender was not looked up"))),
            }
        }
        if !sent.is_empty() {
            let body = json!({
                "data": sent.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
                "duplicate_check_fields": [self.config.message_id_field],
            });
            let path = format!("/{}/upsert", self.config.module);
            match self
                .api
                .write(Method::POST, &path, &body, Repeat::Safe)
                .await
            {
                Ok(results) => {
                    for (k, (n, _)) in sent.iter().enumerate() {
                        let r = results.get(k).cloned().unwrap_or(Value::Null);
                        // The Contact or Lead it is on, for the console's link.
                        let parent = parents
                            .get(batch[*n].sender.as_str())
                            .and_then(|p| p.as_ref().ok())
                            .map(Parent::text);
                        let result = self.read_result(&batch[*n], &r).await;
                        out[*n] = Some(result.map(|d| Delivered {
                            contact: parent,
                            ..d
                        }));
                    }
                }
                Err(e) => {
                    for (n, _) in &sent {
                        out[*n] = Some(Err(e.for_another()));
                    }
                }
            }
        }
        let mut out: Vec<Result<Delivered>> = out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::transient("no result for this media"))))
            .collect();
        if self.config.note {
            self.add_notes(batch, &parents, &mut out).await;
        }
        if self.config.attach {
            self.attach_files(batch, &mut out).await;
        }
        // After the writes, so a first batch is not held up by it.
        if out.iter().any(Result::is_ok) {
            self.learn_org().await;
        }
        out
    }

    fn media_record(&self, r: &MediaRecord, parent: &Parent, fields: &[ModuleField]) -> Value {
        let c = &self.config;
        let mut o = Map::new();
        o.insert("Name".into(), json!(title(r)));
        o.insert(c.message_id_field.clone(), json!(r.message_id));
        o.insert(c.sender_field.clone(), json!(r.sender.as_str()));
        let lookup = if parent.module == "Leads" {
            &c.lead_lookup
        } else {
            &c.contact_lookup
        };
        o.insert(lookup.clone(), json!({"id": parent.id}));
        for (attribute, field) in c.fields.iter() {
            let meta = fields.iter().find(|f| f.api_name == field);
            let data_type = meta.map_or("text", |f| f.data_type.as_str());
            let v = r
                .attribute(attribute)
                .map_or(Value::Null, |v| value(&v, data_type));
            o.insert(field.to_owned(), fit(v, meta.and_then(|f| f.length)));
        }
        Value::Object(o)
    }

    async fn read_result(&self, r: &MediaRecord, result: &Value) -> Result<Delivered> {
        if result["status"] == "success"
            && let Some(id) = result["details"]["id"].as_str()
        {
            return Ok(Delivered::new(id, result["action"] == "insert"));
        }
        let c = &self.config;
        let field = result["details"]["api_name"].as_str().unwrap_or("");
        if result["code"] == "INVALID_DATA" && (field == c.contact_lookup || field == c.lead_lookup)
        {
            // The remembered Contact or Lead is gone (merged, deleted): look again next time.
            self.forget(&r.sender).await;
            return Err(Error::transient(format!(
                "the sender's {} in Zoho no longer exists (merged or deleted); it is looked up \
                 again on the next attempt",
                if field == c.lead_lookup {
                    "Lead"
                } else {
                    "Contact"
                }
            )));
        }
        let message = format!("Zoho refused the {} record: {}", c.module, describe(result));
        Err(if result.is_null() {
            Error::transient("Zoho's answer held no result for this media")
        } else {
            Error::permanent(message)
        })
    }

    /// The media module's fields, read again once when a mapped field is not among them (the
    /// admin may have just made it).
    pub(crate) async fn fields_for_mapping(&self) -> Result<Vec<ModuleField>> {
        let missing = |fields: &[ModuleField]| {
            self.config
                .fields
                .iter()
                .find(|(_, f)| !fields.iter().any(|m| m.api_name == *f))
                .map(|(a, f)| (a, f.to_owned()))
        };
        let mut fields = self.module_fields(false).await?;
        if missing(&fields).is_some() {
            fields = self.module_fields(true).await?;
        }
        match missing(&fields) {
            Some((attribute, field)) => Err(Error::permanent(format!(
                "connectors.{}.fields.{attribute}: the {} module has no field {field:?}; run \
                 `wa2crm provision` or create it in Setup → Customization → Modules and Fields",
                self.name, self.config.module
            ))),
            None => Ok(fields),
        }
    }

    pub(crate) async fn module_fields(&self, again: bool) -> Result<Vec<ModuleField>> {
        let mut cached = self.module_fields.lock().await;
        if let Some(f) = cached.as_ref()
            && !again
        {
            return Ok(f.clone());
        }
        let fields = self.fields_of(&self.config.module).await?.ok_or_else(|| {
            Error::permanent(format!(
                "Zoho has no module {:?}: create it (README.md, Zoho CRM, step 3)",
                self.config.module
            ))
        })?;
        *cached = Some(fields.clone());
        Ok(fields)
    }

    /// A module's fields; `None` when the org has no such module.
    pub(crate) async fn fields_of(&self, module: &str) -> Result<Option<Vec<ModuleField>>> {
        let a = self
            .api
            .get(&format!("/settings/fields?module={module}"))
            .await?;
        match a.status.as_u16() {
            200 => Ok(Some(
                a.body["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(module_field)
                    .collect(),
            )),
            400 if crate::rules::code(&a.body) == "INVALID_MODULE" => Ok(None),
            status => Err(Error::permanent(format!(
                "Zoho refused to list the fields of {module} ({status}: {})",
                describe(&a.body)
            ))),
        }
    }
}
