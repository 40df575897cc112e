//! The org's data as Salesforce keeps it: sObjects with typed fields (external IDs, uniqueness,
//! field-level security for the integration user), records, and the validation Salesforce applies
//! to an sObject Collections upsert — per record (`REQUIRED_FIELD_MISSING`, a lookup by external
//! ID that finds nothing, a value of the wrong type), or for the whole request (`INVALID_FIELD`
//! for a field the user cannot see, more than 200 records).

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    /// `id`, `string`, `url`, `double`, `datetime`, `textarea`, `multipicklist`, `reference`, `phone`.
    pub kind: String,
    pub external_id: bool,
    pub unique: bool,
    pub required: bool,
    /// Field-level security: visible to the integration user.
    pub visible: bool,
    /// For `reference`: the object it points to.
    pub reference_to: Option<String>,
}

impl FieldDef {
    pub fn new(name: &str, kind: &str) -> Self {
        FieldDef {
            name: name.into(),
            kind: kind.into(),
            external_id: false,
            unique: false,
            required: false,
            visible: true,
            reference_to: None,
        }
    }

    pub fn external_id(mut self) -> Self {
        self.external_id = true;
        self.unique = true;
        self
    }

    fn describe(&self) -> Value {
        json!({"name": self.name, "type": self.kind, "externalId": self.external_id,
            "unique": self.unique, "nillable": !self.required, "createable": self.kind != "id",
            "updateable": self.kind != "id", "referenceTo": self.reference_to.iter().collect::<Vec<_>>(),
            "relationshipName": self.reference_to.as_ref().map(|_| self.name.replace("__c", "__r"))})
    }
}

#[derive(Debug, Default, Clone)]
pub struct SObject {
    pub fields: BTreeMap<String, FieldDef>,
    pub records: BTreeMap<String, Map<String, Value>>,
    /// Unique field → value → record Id: Salesforce indexes external IDs, so lookups by them stay
    /// fast however many records there are (a benchmark measures the client, not the simulator).
    index: HashMap<String, HashMap<String, String>>,
    /// When each record was last written through the API: SOSL does not see it until the org's
    /// search lag has passed (see `search`). Records an admin entered are not here.
    pub(crate) written_at: HashMap<String, std::time::Instant>,
}

impl SObject {
    fn reindex(&mut self) {
        self.index.clear();
        for f in self.fields.values().filter(|f| f.unique) {
            let values = self
                .records
                .iter()
                .filter_map(|(id, r)| Some((r.get(&f.name)?.as_str()?.to_owned(), id.clone())))
                .collect();
            self.index.insert(f.name.clone(), values);
        }
    }

    /// Stores a record's new values, keeping the index in step.
    fn write(&mut self, id: &str, values: Map<String, Value>) {
        self.written_at
            .insert(id.to_owned(), std::time::Instant::now());
        self.enter(id, values);
    }

    /// Stores values as an admin entering them in Setup or the UI would: searchable at once.
    pub(crate) fn enter(&mut self, id: &str, values: Map<String, Value>) {
        let stamp = self.fields.contains_key("LastModifiedDate");
        let record = self.records.entry(id.to_owned()).or_default();
        record.insert("Id".into(), json!(id));
        if stamp {
            record.insert("LastModifiedDate".into(), json!(now_iso()));
        }
        for (k, v) in values {
            if let Some(index) = self.index.get_mut(&k) {
                if let Some(old) = record.get(&k).and_then(Value::as_str) {
                    index.remove(old);
                }
                if let Some(new) = v.as_str() {
                    index.insert(new.to_owned(), id.to_owned());
                }
            }
            record.insert(k, v);
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(record) = self.records.remove(id) else {
            return false;
        };
        for (k, v) in record {
            if let (Some(index), Some(v)) = (self.index.get_mut(&k), v.as_str()) {
                index.remove(v);
            }
        }
        true
    }

    fn find(&self, field: &str, value: &str) -> Option<String> {
        if let Some(index) = self.index.get(field) {
            return index.get(value).cloned();
        }
        self.records
            .iter()
            .find(|(_, r)| r.get(field).and_then(Value::as_str) == Some(value))
            .map(|(id, _)| id.clone())
    }
}

pub type Answer = (StatusCode, Value);

/// An object with these fields.
fn sobject(fields: impl IntoIterator<Item = FieldDef>) -> SObject {
    let mut o = SObject::default();
    for f in fields {
        o.fields.insert(f.name.clone(), f);
    }
    o
}

/// Now as Salesforce writes a datetime: `2026-12-04T10:00:00.000+0000`.
pub fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// Who owns what the integration user creates.
pub const INTEGRATION_USER: &str = "005sim000000001AAA";

/// Whether a JSON value fits a field of this type.
fn value_fits(kind: &str, v: &Value) -> bool {
    match (kind, v) {
        (_, Value::Null) => true,
        ("double", Value::Number(_)) => true,
        ("double", _) => false,
        ("boolean", Value::Bool(_)) => true,
        ("boolean", _) => false,
        ("datetime", Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        ("date", Value::String(s)) => {
            time::Date::parse(s, &time::format_description::well_known::Iso8601::DATE).is_ok()
        }
        (_, Value::String(_)) => true,
        _ => false,
    }
}

/// Fields the user cannot see fail the whole request, as Salesforce's JSON parser does.
fn unknown_field(o: &SObject, object: &str, records: &[Value]) -> Option<Answer> {
    for r in records {
        for key in r.as_object().into_iter().flat_map(|m| m.keys()) {
            if key == "attributes" {
                continue;
            }
            let known = match key.strip_suffix("__r") {
                Some(base) => o
                    .fields
                    .get(&format!("{base}__c"))
                    .is_some_and(|f| f.visible && f.reference_to.is_some()),
                None => o.fields.get(key).is_some_and(|f| f.visible),
            };
            if !known {
                return Some((
                    StatusCode::BAD_REQUEST,
                    error(
                        "INVALID_FIELD",
                        &format!("No such column '{key}' on sobject of type {object}"),
                    ),
                ));
            }
        }
    }
    None
}

fn error(code: &str, message: &str) -> Value {
    json!([{"message": message, "errorCode": code}])
}

#[derive(Debug, Default, Clone)]
pub struct Org {
    pub objects: HashMap<String, SObject>,
    /// Validation rules: a record whose field holds the value is refused with the message.
    pub rules: Vec<ValidationRule>,
    next: u64,
    /// How long a record written through the API stays invisible to SOSL.
    pub search_lag: std::time::Duration,
}

/// A validation rule as an admin writes one; the simulator's is an equality test.
#[derive(Debug, Clone)]
pub struct ValidationRule {
    pub object: String,
    pub field: String,
    pub equals: Value,
    pub message: String,
}

impl Org {
    /// An org with the standard objects wa2crm touches, `Organization` holding its one record.
    pub fn new(org_id: &str, org_name: &str) -> Self {
        let mut org = Org {
            search_lag: super::search::DEFAULT_SEARCH_LAG,
            ..Org::default()
        };
        let mut organization =
            sobject([FieldDef::new("Id", "id"), FieldDef::new("Name", "string")]);
        let mut record = Map::new();
        record.insert("Id".into(), json!(org_id));
        record.insert("Name".into(), json!(org_name));
        organization.records.insert(org_id.to_owned(), record);
        org.objects.insert("Organization".into(), organization);
        org.objects.insert(
            "Contact".into(),
            sobject([
                FieldDef::new("Id", "id"),
                FieldDef {
                    required: true,
                    ..FieldDef::new("LastName", "string")
                },
                FieldDef::new("FirstName", "string"),
                FieldDef::new("Phone", "phone"),
                FieldDef::new("MobilePhone", "phone"),
                FieldDef::new("OwnerId", "reference"),
                FieldDef::new("LastModifiedDate", "datetime"),
            ]),
        );
        // Leads: LastName and Company are required (Lead object reference).
        org.objects.insert(
            "Lead".into(),
            sobject([
                FieldDef::new("Id", "id"),
                FieldDef {
                    required: true,
                    ..FieldDef::new("LastName", "string")
                },
                FieldDef::new("FirstName", "string"),
                FieldDef {
                    required: true,
                    ..FieldDef::new("Company", "string")
                },
                FieldDef::new("Phone", "phone"),
                FieldDef::new("MobilePhone", "phone"),
                FieldDef::new("OwnerId", "reference"),
                FieldDef::new("IsConverted", "boolean"),
                FieldDef::new("LastModifiedDate", "datetime"),
            ]),
        );
        org.objects.insert(
            "Task".into(),
            sobject([
                FieldDef::new("Id", "id"),
                FieldDef::new("Subject", "string"),
                FieldDef::new("Description", "textarea"),
                FieldDef::new("ActivityDate", "date"),
                FieldDef::new("Status", "string"),
                FieldDef::new("Priority", "string"),
                FieldDef::new("WhoId", "reference"),
                FieldDef::new("OwnerId", "reference"),
            ]),
        );
        org.objects.insert(
            "ContentVersion".into(),
            sobject([
                FieldDef::new("Id", "id"),
                FieldDef::new("Title", "string"),
                FieldDef::new("PathOnClient", "string"),
                FieldDef::new("FirstPublishLocationId", "string"),
                FieldDef::new("ContentSize", "double"),
                FieldDef::new("ContentDocumentId", "reference"),
            ]),
        );
        org.objects.insert(
            "ContentDocument".into(),
            sobject([
                FieldDef::new("Id", "id"),
                FieldDef::new("Title", "string"),
                FieldDef::new("LatestPublishedVersionId", "reference"),
            ]),
        );
        org
    }

    /// `POST /sobjects/ContentVersion` (multipart): the file, published on a record.
    pub fn create_content_version(&mut self, entity: &Value, size: u64) -> Answer {
        let location = entity
            .get("FirstPublishLocationId")
            .and_then(Value::as_str)
            .unwrap_or("");
        let exists = self
            .objects
            .values()
            .any(|o| o.records.contains_key(location));
        if !exists {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "INVALID_CROSS_REFERENCE_KEY",
                    &format!("invalid cross reference id: {location}"),
                ),
            );
        }
        let path = entity
            .get("PathOnClient")
            .and_then(Value::as_str)
            .unwrap_or("");
        if path.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [PathOnClient]",
                ),
            );
        }
        // Every first version comes with the document that holds it, as in Salesforce.
        self.next += 1;
        let document = format!("069sim{:09}AAA", self.next);
        self.next += 1;
        let id = format!("068sim{:09}AAA", self.next);
        let title = entity.get("Title").cloned().unwrap_or(json!(path));
        if let Some(o) = self.objects.get_mut("ContentDocument") {
            let mut d = Map::new();
            d.insert("Id".into(), json!(document));
            d.insert("Title".into(), title.clone());
            d.insert("LatestPublishedVersionId".into(), json!(id));
            o.records.insert(document.clone(), d);
        }
        let mut record = Map::new();
        record.insert("ContentDocumentId".into(), json!(document));
        record.insert("Id".into(), json!(id));
        record.insert("Title".into(), title);
        record.insert("PathOnClient".into(), json!(path));
        record.insert("FirstPublishLocationId".into(), json!(location));
        record.insert("ContentSize".into(), json!(size));
        if let Some(o) = self.objects.get_mut("ContentVersion") {
            o.records.insert(id.clone(), record);
        }
        (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        )
    }

    pub fn add_object(&mut self, name: &str) {
        let o = self.objects.entry(name.into()).or_default();
        o.fields
            .entry("Id".into())
            .or_insert_with(|| FieldDef::new("Id", "id"));
    }

    pub fn add_field(&mut self, object: &str, field: FieldDef) {
        if let Some(o) = self.objects.get_mut(object) {
            o.fields.insert(field.name.clone(), field);
            o.reindex();
        }
    }

    /// A fresh record Id of `object`'s key prefix: 18 characters, as the API returns them (the
    /// 15-character case-sensitive Id and a 3-character case-safe suffix). Sources: Salesforce
    /// Object Reference, "Field Types", ID; Apex Developer Guide, "Using ConnectApi Input and
    /// Output Classes" ("All Salesforce IDs in ConnectApi output objects are 18 character IDs").
    /// A connector that checks an Id's length (deep links) must see the real length.
    pub(crate) fn new_id(&mut self, object: &str) -> String {
        self.next += 1;
        format!("{}sim{:09}AAA", Self::id_prefix(object), self.next)
    }

    pub(crate) fn id_prefix(object: &str) -> &'static str {
        match object {
            "Contact" => "003",
            "Lead" => "00Q",
            "Task" => "00T",
            _ => "a01",
        }
    }

    pub fn describe(&self, object: &str) -> Answer {
        match self.objects.get(object) {
            None => (
                StatusCode::NOT_FOUND,
                error("NOT_FOUND", "The requested resource does not exist"),
            ),
            Some(o) => (
                StatusCode::OK,
                json!({"name": object, "custom": object.ends_with("__c"),
                    "fields": o.fields.values().filter(|f| f.visible).map(FieldDef::describe).collect::<Vec<_>>()}),
            ),
        }
    }

    /// Tooling API `POST /tooling/sobjects/CustomField`: the field is created hidden from the
    /// integration user, as in Salesforce, until FieldPermissions grant it.
    pub fn create_custom_field(&mut self, body: &Value) -> Answer {
        let full = body.get("FullName").and_then(Value::as_str).unwrap_or("");
        let Some((object, field)) = full.split_once('.') else {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_INPUT", "FullName must be Object.Field__c"),
            );
        };
        // Task's custom fields are defined on Activity (shared with Event).
        let object = if object == "Activity" { "Task" } else { object };
        if !field.ends_with("__c") {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_INPUT", "a custom field's name ends in __c"),
            );
        }
        let meta = body.get("Metadata").cloned().unwrap_or(Value::Null);
        let kind = match meta.get("type").and_then(Value::as_str).unwrap_or("") {
            "Text" => "string",
            "Url" => "url",
            "Number" => "double",
            "DateTime" => "datetime",
            "LongTextArea" => "textarea",
            "MultiselectPicklist" => "multipicklist",
            "Phone" => "phone",
            "Lookup" => "reference",
            "Checkbox" if meta.get("defaultValue").and_then(Value::as_bool).is_none() => {
                return (
                    StatusCode::BAD_REQUEST,
                    error(
                        "FIELD_INTEGRITY_EXCEPTION",
                        "Default value is required for Checkbox fields",
                    ),
                );
            }
            "Checkbox" => "boolean",
            other => {
                return (
                    StatusCode::BAD_REQUEST,
                    error(
                        "INVALID_TYPE",
                        &format!("bad value for restricted picklist field: {other}"),
                    ),
                );
            }
        };
        let Some(o) = self.objects.get_mut(object) else {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_INPUT", &format!("no object {object}")),
            );
        };
        if o.fields.contains_key(field) {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "DUPLICATE_DEVELOPER_NAME",
                    &format!("There is already a field named {field} on {object}."),
                ),
            );
        }
        let mut def = FieldDef::new(field, kind);
        def.external_id = meta
            .get("externalId")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        def.unique = meta.get("unique").and_then(Value::as_bool).unwrap_or(false);
        def.reference_to = meta
            .get("referenceTo")
            .and_then(Value::as_str)
            .map(str::to_owned);
        def.visible = false;
        o.fields.insert(field.to_owned(), def);
        o.reindex();
        self.next += 1;
        (
            StatusCode::CREATED,
            json!({"id": format!("00Nsim{:09}", self.next), "success": true, "errors": []}),
        )
    }

    /// `POST /sobjects/FieldPermissions`: read (and edit) access for the integration user's
    /// permission set.
    pub fn grant_field(&mut self, body: &Value, permission_set: &str) -> Answer {
        if body.get("ParentId").and_then(Value::as_str) != Some(permission_set) {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"),
            );
        }
        let full = body.get("Field").and_then(Value::as_str).unwrap_or("");
        let Some((object, field)) = full.split_once('.') else {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_FIELD", "Field must be Object.Field"),
            );
        };
        let Some(def) = self
            .objects
            .get_mut(object)
            .and_then(|o| o.fields.get_mut(field))
        else {
            return (
                StatusCode::BAD_REQUEST,
                error("INVALID_FIELD", &format!("no field {full}")),
            );
        };
        if def.visible {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "DUPLICATE_VALUE",
                    "duplicate value found: Field duplicates value on record",
                ),
            );
        }
        def.visible = body
            .get("PermissionsRead")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.next += 1;
        (
            StatusCode::CREATED,
            json!({"id": format!("01ksim{:09}", self.next), "success": true, "errors": []}),
        )
    }

    /// `SELECT f1, f2 FROM Obj WHERE f IN ('a', 'b')`, the one query shape wa2crm sends.
    pub fn query(&self, soql: &str) -> Answer {
        let malformed = || {
            (
                StatusCode::BAD_REQUEST,
                error("MALFORMED_QUERY", &format!("unexpected token in: {soql}")),
            )
        };
        let s = soql.trim();
        let Some(rest) = s.strip_prefix("SELECT ") else {
            return malformed();
        };
        let Some((select, rest)) = rest.split_once(" FROM ") else {
            return malformed();
        };
        // `FROM Obj WHERE f IN (…)`, or `FROM Obj` alone (every record, as Salesforce answers up
        // to its 2,000-record page).
        let (object, condition) = rest.split_once(" WHERE ").unwrap_or((rest, ""));
        let (field, values) = if condition.is_empty() {
            ("Id", "")
        } else {
            match condition.split_once(" IN ") {
                Some(c) => c,
                None => return malformed(),
            }
        };
        let every = condition.is_empty();
        let (object, field) = (object.trim(), field.trim());
        let Some(o) = self.objects.get(object) else {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "INVALID_TYPE",
                    &format!("sObject type '{object}' is not supported."),
                ),
            );
        };
        let columns: Vec<&str> = select.split(',').map(str::trim).collect();
        for c in columns.iter().chain([&field]) {
            if !o.fields.get(*c).is_some_and(|f| f.visible) {
                return (
                    StatusCode::BAD_REQUEST,
                    error(
                        "INVALID_FIELD",
                        &format!("No such column '{c}' on entity '{object}'."),
                    ),
                );
            }
        }
        let wanted: Vec<String> = values
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(|v| v.trim().trim_matches('\'').to_owned())
            .collect();
        let records: Vec<Value> = o
            .records
            .values()
            .filter(|r| {
                every
                    || r.get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|v| wanted.iter().any(|w| w == v))
            })
            .take(2000)
            .map(|r| {
                let mut out = Map::new();
                out.insert("attributes".into(), json!({"type": object}));
                for c in &columns {
                    out.insert((*c).to_owned(), r.get(*c).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect();
        (
            StatusCode::OK,
            json!({"totalSize": records.len(), "done": true, "records": records}),
        )
    }

    /// `DELETE /composite/sobjects?ids=…` (≤ 200, allOrNone false): one result per id.
    pub fn collections_delete(&mut self, ids: &[&str]) -> Answer {
        if ids.len() > 200 {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
            );
        }
        let results: Vec<Value> = ids
            .iter()
            .map(|id| {
                if self.objects.get("ContentVersion").is_some_and(|o| o.records.contains_key(*id)) {
                    // A version goes with its document; Salesforce has no delete for versions.
                    return json!({"id": id, "success": false, "errors": [{"statusCode": "INVALID_OPERATION",
                        "message": "ContentVersion cannot be deleted; delete its ContentDocument", "fields": []}]});
                }
                let removed = self.objects.values_mut().any(|o| o.remove(id));
                if removed
                    && id.starts_with("069")
                    && let Some(versions) = self.objects.get_mut("ContentVersion")
                {
                    versions.records.retain(|_, v| {
                        v.get("ContentDocumentId").and_then(Value::as_str) != Some(*id)
                    });
                }
                if removed {
                    json!({"id": id, "success": true, "errors": []})
                } else {
                    json!({"id": id, "success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]})
                }
            })
            .collect();
        (StatusCode::OK, Value::Array(results))
    }

    /// `PATCH /composite/sobjects/{object}/{external_id}`.
    pub fn collections_upsert(&mut self, object: &str, external_id: &str, body: &Value) -> Answer {
        let Some(o) = self.objects.get(object) else {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "INVALID_TYPE",
                    &format!("sObject type '{object}' is not supported."),
                ),
            );
        };
        if !o
            .fields
            .get(external_id)
            .is_some_and(|f| f.external_id && f.visible)
        {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "INVALID_FIELD",
                    &format!(
                        "Field name provided, {external_id} is not an External ID or indexed field for {object}"
                    ),
                ),
            );
        }
        let Some(records) = body.get("records").and_then(Value::as_array) else {
            return (
                StatusCode::BAD_REQUEST,
                error("JSON_PARSER_ERROR", "records is required"),
            );
        };
        if records.len() > 200 {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
            );
        }
        if let Some(refused) = unknown_field(o, object, records) {
            return refused;
        }
        let mut results = Vec::new();
        for r in records {
            results.push(match self.upsert_one(object, Some(external_id), r) {
                Ok((id, created)) => json!({"id": id, "success": true, "errors": [], "created": created}),
                Err((code, message, fields)) => json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]}),
            });
        }
        (StatusCode::OK, Value::Array(results))
    }

    /// `POST /composite/sobjects` (≤ 200, `allOrNone` false): each record created, typed by its
    /// `attributes`.
    pub fn collections_create(&mut self, body: &Value) -> Answer {
        self.collections_by_type(body, |org, object, r| {
            org.upsert_one(object, None, r).map(|(id, _)| id)
        })
    }

    /// `PATCH /composite/sobjects`: each record, found by its `Id`, updated.
    pub fn collections_update(&mut self, body: &Value) -> Answer {
        self.collections_by_type(body, |org, object, r| {
            let id = r
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !org.objects[object].records.contains_key(&id) {
                return Err((
                    "ENTITY_IS_DELETED".into(),
                    "entity is deleted".into(),
                    vec![],
                ));
            }
            let mut values = r.clone();
            if let Some(m) = values.as_object_mut() {
                m.remove("Id");
            }
            let values = org.checked_values(object, &values)?;
            org.objects
                .get_mut(object)
                .expect("checked above")
                .write(&id, values);
            Ok(id)
        })
    }

    fn collections_by_type(
        &mut self,
        body: &Value,
        mut one: impl FnMut(&mut Org, &str, &Value) -> Result<String, (String, String, Vec<String>)>,
    ) -> Answer {
        let Some(records) = body.get("records").and_then(Value::as_array) else {
            return (
                StatusCode::BAD_REQUEST,
                error("JSON_PARSER_ERROR", "records is required"),
            );
        };
        if records.len() > 200 {
            return (
                StatusCode::BAD_REQUEST,
                error(
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                ),
            );
        }
        for r in records {
            let object = r
                .pointer("/attributes/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(o) = self.objects.get(object) else {
                return (
                    StatusCode::BAD_REQUEST,
                    error(
                        "INVALID_TYPE",
                        &format!("sObject type '{object}' is not supported."),
                    ),
                );
            };
            let others: Vec<Value> = vec![r.clone()];
            if let Some(refused) = unknown_field(o, object, &others) {
                return refused;
            }
        }
        let mut results = Vec::new();
        for r in records {
            let object = r
                .pointer("/attributes/type")
                .and_then(Value::as_str)
                .unwrap_or("");
            results.push(match one(self, object, r) {
                Ok(id) => json!({"id": id, "success": true, "errors": []}),
                Err((code, message, fields)) => json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]}),
            });
        }
        (StatusCode::OK, Value::Array(results))
    }

    /// A record's values, typed as the object's fields want them (no lookups by external ID).
    /// A lookup set by Id must name a record of the object it points to: "invalid cross
    /// reference id" otherwise (the API's `INVALID_CROSS_REFERENCE_KEY`).
    fn dangling(
        &self,
        object: &str,
        field: &str,
        v: &Value,
    ) -> Option<(String, String, Vec<String>)> {
        let target = self.objects[object].fields[field].reference_to.as_deref()?;
        let id = v.as_str()?;
        let exists = self
            .objects
            .get(target)
            .is_some_and(|o| o.records.contains_key(id));
        (!exists).then(|| {
            (
                "INVALID_CROSS_REFERENCE_KEY".into(),
                format!("invalid cross reference id: {id}"),
                vec![field.to_owned()],
            )
        })
    }

    fn checked_values(
        &self,
        object: &str,
        r: &Value,
    ) -> Result<Map<String, Value>, (String, String, Vec<String>)> {
        let o = &self.objects[object];
        let mut values = Map::new();
        for (k, v) in r.as_object().into_iter().flatten() {
            if k == "attributes" {
                continue;
            }
            if !value_fits(&o.fields[k].kind, v) {
                return Err((
                    "INVALID_TYPE_ON_FIELD_IN_RECORD".into(),
                    format!("{k}: value not of required type: {v}"),
                    vec![k.clone()],
                ));
            }
            if let Some(e) = self.dangling(object, k, v) {
                return Err(e);
            }
            values.insert(k.clone(), v.clone());
        }
        Ok(values)
    }

    fn upsert_one(
        &mut self,
        object: &str,
        external_id: Option<&str>,
        r: &Value,
    ) -> Result<(String, bool), (String, String, Vec<String>)> {
        let fail = |code: &str, message: String, fields: Vec<String>| {
            Err((code.to_owned(), message, fields))
        };
        let Some(input) = r.as_object() else {
            return fail(
                "JSON_PARSER_ERROR",
                "a record must be an object".into(),
                vec![],
            );
        };
        let o = &self.objects[object];
        let existing = match external_id {
            // A create.
            None => None,
            Some(external_id) => {
                let Some(key) = input.get(external_id).and_then(Value::as_str) else {
                    return fail(
                        "MISSING_ARGUMENT",
                        format!("{external_id} not specified"),
                        vec![external_id.into()],
                    );
                };
                o.find(external_id, key)
            }
        };
        let mut values = Map::new();
        for (k, v) in input {
            if k == "attributes" {
                continue;
            }
            if let Some(base) = k.strip_suffix("__r") {
                // A lookup set through the parent's external ID.
                let field = format!("{base}__c");
                let target = o.fields[&field].reference_to.clone().unwrap_or_default();
                let Some((parent_key, parent_value)) = v
                    .as_object()
                    .and_then(|m| m.iter().find(|(k, _)| *k != "attributes"))
                else {
                    return fail(
                        "INVALID_FIELD",
                        format!("{k}: no external ID given"),
                        vec![field],
                    );
                };
                let parent_value = parent_value.as_str().unwrap_or_default();
                let Some(parent) = self
                    .objects
                    .get(&target)
                    .and_then(|p| p.find(parent_key, parent_value))
                else {
                    return fail(
                        "INVALID_FIELD",
                        format!(
                            "Foreign key external ID: {parent_value} not found for field {parent_key} in entity {target}"
                        ),
                        vec![],
                    );
                };
                values.insert(field, json!(parent));
                continue;
            }
            if !value_fits(&o.fields[k].kind, v) {
                return fail(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    format!("{k}: value not of required type: {v}"),
                    vec![k.clone()],
                );
            }
            if let Some((code, message, fields)) = self.dangling(object, k, v) {
                return fail(&code, message, fields);
            }
            values.insert(k.clone(), v.clone());
        }
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| rule.object == object && values.get(&rule.field) == Some(&rule.equals))
        {
            return fail(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                rule.message.clone(),
                vec![rule.field.clone()],
            );
        }
        if existing.is_none() {
            let missing: Vec<String> = o
                .fields
                .values()
                .filter(|f| f.required && !values.contains_key(&f.name))
                .map(|f| f.name.clone())
                .collect();
            if !missing.is_empty() {
                return fail(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", missing.join(", ")),
                    missing,
                );
            }
        }
        if existing.is_none() && o.fields.contains_key("OwnerId") && !values.contains_key("OwnerId")
        {
            // Records belong to whoever creates them: the integration user.
            values.insert("OwnerId".into(), json!(INTEGRATION_USER));
        }
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => (self.new_id(object), true),
        };
        self.objects
            .get_mut(object)
            .expect("checked above")
            .write(&id, values);
        Ok((id, created))
    }
}
