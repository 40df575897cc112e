//! The portal's data as HubSpot keeps it: objects with string properties, property definitions
//! with their types, options and uniqueness, and associations. Every write is validated the way
//! HubSpot validates it (each rule's source: crates/sandbox/README.md): unknown properties fail
//! the whole batch, values that do not fit their property fail only their input (a 207), a
//! unique property cannot hold one value twice, `hs_timestamp` is required on a new note.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use serde_json::{Value, json};

pub type Props = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    /// `string`, `number`, `datetime`, `date`, `enumeration`, `bool`, `phone_number`.
    pub kind: String,
    pub field_type: String,
    pub group: String,
    pub unique: bool,
    pub read_only: bool,
    pub options: Vec<String>,
}

impl PropertyDef {
    pub fn new(name: &str, kind: &str, field_type: &str) -> Self {
        PropertyDef {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            field_type: field_type.into(),
            group: "contactinformation".into(),
            unique: false,
            read_only: false,
            options: Vec::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name, "label": self.label, "type": self.kind, "fieldType": self.field_type,
            "groupName": self.group, "hasUniqueValue": self.unique, "hidden": false,
            "modificationMetadata": {"readOnlyValue": self.read_only, "readOnlyDefinition": self.read_only, "archivable": !self.read_only},
            "options": self.options.iter().enumerate().map(|(i, o)| json!({"label": o, "value": o, "displayOrder": i, "hidden": false})).collect::<Vec<_>>(),
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "archived": false,
        })
    }

    /// Why `value` cannot be stored in this property, in HubSpot's words.
    fn reject(&self, value: &str) -> Option<(String, &'static str)> {
        if value.is_empty() {
            return None; // an empty string clears the property
        }
        let name = &self.name;
        match self.kind.as_str() {
            "number" if value.parse::<f64>().is_err() => {
                Some((format!("{value} was not a valid number."), "INVALID_NUMBER"))
            }
            "bool" if value != "true" && value != "false" => Some((
                format!("{value} was not a valid boolean for property {name}."),
                "INVALID_BOOLEAN",
            )),
            "datetime" | "date" if !valid_datetime(value) => Some((
                format!("{value} was not a valid long or ISO 8601 date-time for property {name}."),
                "INVALID_DATE",
            )),
            "enumeration" => {
                let bad: Vec<&str> = value
                    .split(';')
                    .filter(|v| !self.options.iter().any(|o| o == v))
                    .collect();
                (!bad.is_empty()).then(|| {
                    (
                        format!(
                            "{} was not one of the allowed options: [{}]",
                            bad.join(";"),
                            self.options.join(", ")
                        ),
                        "INVALID_OPTION",
                    )
                })
            }
            _ => None,
        }
    }
}

fn valid_datetime(v: &str) -> bool {
    v.parse::<i64>().is_ok()
        || time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub properties: Props,
}

#[derive(Debug, Default)]
pub struct ObjectType {
    pub properties: BTreeMap<String, PropertyDef>,
    pub groups: BTreeSet<String>,
    pub records: BTreeMap<u64, Props>,
    /// Unique property → value → record, as HubSpot indexes them: lookups by a unique property
    /// stay fast with many records (a benchmark must measure the client, not the simulator).
    index: HashMap<String, HashMap<String, u64>>,
    /// `createdate` and `lastmodifieddate` of each record, kept apart from the properties a
    /// client wrote so that tests compare what was written.
    stamps: HashMap<u64, (String, String)>,
    /// When each record was last written through the API: search does not see it until the
    /// portal's search lag has passed (see `search`). Records an admin entered are not here.
    pub(crate) written_at: HashMap<u64, std::time::Instant>,
    /// Contacts: HubSpot keeps searchable forms of `phone` and `mobilephone` (see
    /// [`calculated_phones`]).
    pub(crate) calculates_phones: bool,
}

/// Returned on every read whether asked for or not, and nothing else unasked: "only the requested
/// properties plus createdate, hs_object_id and lastmodifieddate" (HubSpot's maintainers in
/// hubspot-api-python #357). A client that needs the unique property it read by must ask for it.
pub const ALWAYS_RETURNED: [&str; 3] = ["createdate", "hs_object_id", "lastmodifieddate"];

/// What a read without `properties` returns besides [`ALWAYS_RETURNED`]: for contacts
/// `email`, `firstname`, `lastname` (HubSpot's contacts guide, "Retrieve contacts": "By
/// default, the results will include the following properties: createdate, email, firstname,
/// hs_object_id, lastmodifieddate, lastname"); for other objects nothing more.
fn default_properties(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "contacts" => &["email", "firstname", "lastname"],
        _ => &[],
    }
}

/// Now as HubSpot writes its timestamps: ISO 8601 in UTC with milliseconds.
pub fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

impl ObjectType {
    /// Rebuilds the index of every unique property (after one was defined).
    pub fn reindex(&mut self) {
        self.index.clear();
        for p in self
            .properties
            .values()
            .filter(|p| p.unique && p.name != "hs_object_id")
        {
            let values = self
                .records
                .iter()
                .filter_map(|(id, r)| Some((r.get(&p.name)?.clone(), *id)))
                .collect();
            self.index.insert(p.name.clone(), values);
        }
    }

    /// Sets (or, with an empty value, clears) properties of a record, creating it if new.
    pub fn write(&mut self, id: u64, props: Props) {
        let now = now_iso();
        let stamps = self
            .stamps
            .entry(id)
            .or_insert_with(|| (now.clone(), now.clone()));
        stamps.1 = now;
        self.written_at.insert(id, std::time::Instant::now());
        let record = self.records.entry(id).or_default();
        for (k, v) in props {
            if let Some(index) = self.index.get_mut(&k) {
                if let Some(old) = record.get(&k) {
                    index.remove(old);
                }
                if !v.is_empty() {
                    index.insert(v.clone(), id);
                }
            }
            if v.is_empty() {
                record.remove(&k);
            } else {
                record.insert(k, v);
            }
        }
        record.insert("hs_object_id".into(), id.to_string());
        if self.calculates_phones {
            calculated_phones(record);
        }
    }

    pub fn remove(&mut self, id: u64) {
        self.stamps.remove(&id);
        self.written_at.remove(&id);
        if let Some(record) = self.records.remove(&id) {
            for (k, v) in record {
                if let Some(index) = self.index.get_mut(&k) {
                    index.remove(&v);
                }
            }
        }
    }

    /// A record's `properties` as a read returns them: each of `wanted` that the type defines
    /// (`null` when the record has no value: HubSpot's reference for reads, "If a requested
    /// property is defined but [the record] doesn't have a value, it will be returned as
    /// null"; one it does not define is left out), or the type's defaults when nothing is
    /// asked for, and always [`ALWAYS_RETURNED`].
    pub fn returned(&self, type_name: &str, id: u64, wanted: &[&str]) -> Value {
        let Some(record) = self.records.get(&id) else {
            return Value::Null;
        };
        let names: &[&str] = if wanted.is_empty() {
            default_properties(type_name)
        } else {
            wanted
        };
        let mut out = serde_json::Map::new();
        for name in names {
            if self.properties.contains_key(*name) {
                out.insert(
                    (*name).to_owned(),
                    record.get(*name).map_or(Value::Null, |v| json!(v)),
                );
            }
        }
        let (created, modified) = self.stamps.get(&id).cloned().unwrap_or_default();
        out.insert("createdate".into(), json!(created));
        out.insert("hs_object_id".into(), json!(id.to_string()));
        out.insert("lastmodifieddate".into(), json!(modified));
        Value::Object(out)
    }

    /// `createdAt` and `updatedAt` of a record.
    pub fn times(&self, id: u64) -> (String, String) {
        self.stamps.get(&id).cloned().unwrap_or_default()
    }

    pub(crate) fn find_by(&self, prop: &str, value: &str) -> Option<u64> {
        if prop == "hs_object_id" {
            return value
                .parse()
                .ok()
                .filter(|id| self.records.contains_key(id));
        }
        if let Some(index) = self.index.get(prop) {
            return index.get(value).copied();
        }
        self.records
            .iter()
            .find(|(_, p)| p.get(prop).is_some_and(|v| v == value))
            .map(|(id, _)| *id)
    }
}

/// A contact's number properties and the calculated, read-only properties HubSpot keeps for
/// searching them: `hs_searchable_calculated_phone_number` (and `…_mobile_number` for
/// `mobilephone`) hold the national significant number — no country code, no formatting, no
/// leading zeros (a contact whose `phone` is `00004` has `4`: a live portal's answer quoted in
/// a public HubSpot client's test fixtures) — and `…_international_…` the country code and
/// that number ("61476647930" for an Australian mobile, as integrators search it). A number
/// written without its country gets no international form: the portal cannot know it (the
/// strict reading). They are recomputed on every write of the number.
pub const CALCULATED_PHONES: [(&str, &str, &str); 2] = [
    (
        "phone",
        "hs_searchable_calculated_phone_number",
        "hs_searchable_calculated_international_phone_number",
    ),
    (
        "mobilephone",
        "hs_searchable_calculated_mobile_number",
        "hs_searchable_calculated_international_mobile_number",
    ),
];

fn calculated_phones(record: &mut Props) {
    for (source, national, international) in CALCULATED_PHONES {
        record.remove(national);
        record.remove(international);
        let Some(value) = record.get(source) else {
            continue;
        };
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        let first_digit = value.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        let with_country = value[..first_digit].contains('+');
        let parsed = with_country
            .then(|| phonenumber::parse(None, format!("+{digits}")).ok())
            .flatten();
        let (n, i) = match parsed {
            Some(p) => {
                let nsn = format!(
                    "{}{}",
                    "0".repeat(usize::from(p.national().zeros())),
                    p.national().value()
                );
                (nsn.clone(), Some(format!("{}{nsn}", p.code().value())))
            }
            None => (digits.trim_start_matches('0').to_owned(), None),
        };
        if !n.is_empty() {
            record.insert(national.to_owned(), n);
        }
        if let Some(i) = i {
            record.insert(international.to_owned(), i);
        }
    }
}

/// One failed input of a batch: HubSpot's `StandardError`.
pub fn item_error(category: &str, message: &str, id: &str, trace: Option<&str>) -> Value {
    let mut e = json!({
        "status": "error", "category": category, "message": message,
        "context": {"ids": [id]}, "errors": [], "links": {},
    });
    if let Some(t) = trace {
        e["objectWriteTraceId"] = json!(t);
    }
    e
}

/// A whole request refused: HubSpot's `Error`.
pub fn error_body(category: &str, message: &str) -> Value {
    json!({"status": "error", "message": message, "correlationId": correlation_id(), "category": category})
}

pub fn correlation_id() -> String {
    format!(
        "{:08x}-sim0-4000-8000-{:012x}",
        fastrand::u32(..),
        fastrand::u64(..) & 0xffff_ffff_ffff
    )
}

pub type Answer = (StatusCode, Value);

fn batch_answer(mut results: Vec<Value>, errors: Vec<Value>, ok: StatusCode) -> Answer {
    // "The results array is returned in a random order" and there is no way to map them back by
    // position (HubSpot's maintainers in hubspot-api-nodejs #190): a client must match each
    // result by its objectWriteTraceId or its id, never by its place.
    fastrand::shuffle(&mut results);
    let now = now_iso();
    let mut body =
        json!({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now});
    if errors.is_empty() {
        (ok, body)
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        (StatusCode::MULTI_STATUS, body)
    }
}

/// A file in HubSpot Files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub access: String,
    pub size: u64,
    /// Hex sha256 of the uploaded bytes.
    pub sha256: String,
}

#[derive(Debug, Default)]
pub struct Portal {
    pub files: Vec<SimFile>,
    pub types: HashMap<String, ObjectType>,
    pub(crate) next_id: u64,
    /// (from type, from id, to type, to id) → association type ids.
    pub associations: BTreeMap<(String, u64, String, u64), BTreeSet<u32>>,
    /// Largest accepted batch.
    pub batch_limit: usize,
    /// How long a record written through the API stays invisible to search.
    pub search_lag: std::time::Duration,
    /// Where the portal's web app is, as the account details name it.
    pub ui_domain: String,
}

fn standard(props: &[(&str, &str, &str)], group: &str) -> ObjectType {
    let mut t = ObjectType::default();
    t.groups.insert(group.into());
    for (name, kind, field) in props {
        let mut p = PropertyDef::new(name, kind, field);
        p.group = group.into();
        t.properties.insert(name.to_string(), p);
    }
    let mut id = PropertyDef::new("hs_object_id", "number", "number");
    id.read_only = true;
    id.unique = true;
    id.group = group.into();
    t.properties.insert(id.name.clone(), id);
    // HubSpot keeps these itself; a client cannot set them.
    for name in ["createdate", "lastmodifieddate"] {
        let mut p = PropertyDef::new(name, "datetime", "date");
        p.read_only = true;
        p.group = group.into();
        t.properties.insert(name.into(), p);
    }
    t
}

/// HubSpot's names for object types in URLs: `contacts`, `0-1`, `notes`, `0-46`, `p_…`, `2-…`.
pub fn canonical_type(t: &str) -> String {
    match t {
        "0-1" | "contact" => "contacts".into(),
        "0-46" | "note" => "notes".into(),
        "0-27" | "task" => "tasks".into(),
        other => other.to_owned(),
    }
}

impl Portal {
    pub fn new() -> Self {
        let mut types = HashMap::new();
        types.insert(
            "contacts".into(),
            standard(
                &[
                    ("firstname", "string", "text"),
                    ("lastname", "string", "text"),
                    ("email", "string", "text"),
                    ("phone", "string", "phonenumber"),
                    ("mobilephone", "string", "phonenumber"),
                    // HubSpot-defined (HubSpot's WhatsApp integration fills it).
                    ("hs_whatsapp_phone_number", "string", "phonenumber"),
                    ("hubspot_owner_id", "enumeration", "select"),
                ],
                "contactinformation",
            ),
        );
        if let Some(contacts) = types.get_mut("contacts") {
            contacts.calculates_phones = true;
            for (_, national, international) in CALCULATED_PHONES {
                for name in [national, international] {
                    let mut p = PropertyDef::new(name, "string", "calculation_equation");
                    p.read_only = true;
                    contacts.properties.insert(name.into(), p);
                }
            }
        }
        types.insert(
            "notes".into(),
            standard(
                &[
                    ("hs_timestamp", "datetime", "date"),
                    ("hs_note_body", "string", "html"),
                    ("hs_attachment_ids", "enumeration", "checkbox"),
                    ("hubspot_owner_id", "enumeration", "select"),
                ],
                "engagement",
            ),
        );
        types.insert(
            "tasks".into(),
            standard(
                &[
                    ("hs_timestamp", "datetime", "date"),
                    ("hs_task_subject", "string", "text"),
                    ("hs_task_body", "string", "html"),
                    ("hs_task_status", "enumeration", "select"),
                    ("hs_task_priority", "enumeration", "select"),
                    ("hs_task_type", "enumeration", "select"),
                    ("hubspot_owner_id", "enumeration", "select"),
                ],
                "task",
            ),
        );
        for (property, options) in [
            (
                "hs_task_status",
                &[
                    "NOT_STARTED",
                    "IN_PROGRESS",
                    "WAITING",
                    "COMPLETED",
                    "DEFERRED",
                ][..],
            ),
            ("hs_task_priority", &["NONE", "LOW", "MEDIUM", "HIGH"][..]),
            ("hs_task_type", &["EMAIL", "CALL", "TODO"][..]),
        ] {
            if let Some(p) = types
                .get_mut("tasks")
                .and_then(|t| t.properties.get_mut(property))
            {
                p.options = options.iter().map(|o| (*o).to_owned()).collect();
            }
        }
        // Owners are the portal's users, not pre-declared options.
        for t in ["contacts", "notes", "tasks"] {
            if let Some(p) = types
                .get_mut(t)
                .and_then(|t| t.properties.get_mut("hubspot_owner_id"))
            {
                p.kind = "string".into();
            }
        }
        // Attachment ids are file ids, not pre-declared options.
        if let Some(p) = types
            .get_mut("notes")
            .and_then(|t| t.properties.get_mut("hs_attachment_ids"))
        {
            p.kind = "string".into();
        }
        Portal {
            files: Vec::new(),
            types,
            next_id: 1000,
            associations: BTreeMap::new(),
            batch_limit: 100,
            search_lag: super::search::DEFAULT_SEARCH_LAG,
            ui_domain: "app.hubspot.com".into(),
        }
    }

    pub fn add_custom_type(&mut self, name: &str) {
        self.types
            .entry(name.into())
            .or_insert_with(|| standard(&[], &format!("{name}_information")));
    }

    pub(crate) fn object_type(&self, t: &str) -> Result<&ObjectType, Answer> {
        self.types
            .get(&canonical_type(t))
            .ok_or_else(|| not_a_type(t))
    }

    fn object_type_mut(&mut self, t: &str) -> Result<&mut ObjectType, Answer> {
        self.types
            .get_mut(&canonical_type(t))
            .ok_or_else(|| not_a_type(t))
    }

    pub fn records(&self, t: &str) -> Vec<Record> {
        self.types
            .get(&canonical_type(t))
            .map(|o| {
                o.records
                    .iter()
                    .map(|(id, p)| Record {
                        id: id.to_string(),
                        properties: p.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn find(&self, t: &str, prop: &str, value: &str) -> Option<Record> {
        let o = self.types.get(&canonical_type(t))?;
        let id = o.find_by(prop, value)?;
        Some(Record {
            id: id.to_string(),
            properties: o.records.get(&id)?.clone(),
        })
    }

    pub fn properties_json(&self, t: &str) -> Answer {
        match self.object_type(t) {
            Ok(o) => (
                StatusCode::OK,
                json!({"results": o.properties.values().map(PropertyDef::to_json).collect::<Vec<_>>()}),
            ),
            Err(a) => a,
        }
    }

    pub fn property_json(&self, t: &str, name: &str) -> Answer {
        match self.object_type(t) {
            Ok(o) => match o.properties.get(name) {
                Some(p) => (StatusCode::OK, p.to_json()),
                None => (
                    StatusCode::NOT_FOUND,
                    error_body(
                        "OBJECT_NOT_FOUND",
                        &format!("Unable to find property {name}"),
                    ),
                ),
            },
            Err(a) => a,
        }
    }

    pub fn create_property(&mut self, t: &str, body: &Value) -> Answer {
        let o = match self.object_type_mut(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (name, kind, field_type, group) =
            (s("name"), s("type"), s("fieldType"), s("groupName"));
        if name.is_empty()
            || kind.is_empty()
            || field_type.is_empty()
            || group.is_empty()
            || s("label").is_empty()
        {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    "name, label, type, fieldType and groupName are required",
                ),
            );
        }
        if ![
            "string",
            "number",
            "datetime",
            "date",
            "enumeration",
            "bool",
            "phone_number",
        ]
        .contains(&kind.as_str())
        {
            return (
                StatusCode::BAD_REQUEST,
                error_body("VALIDATION_ERROR", &format!("Unknown property type {kind}")),
            );
        }
        if !o.groups.contains(&group) {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    &format!("Property group {group} does not exist"),
                ),
            );
        }
        if o.properties.contains_key(&name) {
            return (
                StatusCode::CONFLICT,
                error_body(
                    "OBJECT_ALREADY_EXISTS",
                    &format!("Property named '{name}' already exists."),
                ),
            );
        }
        let options: Vec<String> = body
            .get("options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.get("value").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // "options: A list of valid options for the property. This field is required for
        // enumerated properties" (HubSpot's properties API reference, create a property); the
        // strict reading: an empty list is no options either.
        if kind == "enumeration" && options.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    &format!(
                        "Property {name} of type enumeration needs at least one option in options"
                    ),
                ),
            );
        }
        let def = PropertyDef {
            name: name.clone(),
            label: s("label"),
            kind,
            field_type,
            group,
            unique: body
                .get("hasUniqueValue")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            read_only: false,
            options,
        };
        let answer = (StatusCode::CREATED, def.to_json());
        o.properties.insert(name, def);
        o.reindex();
        answer
    }

    /// PATCH: only `options` and `label` are changed here, as wa2crm needs.
    pub fn update_property(&mut self, t: &str, name: &str, body: &Value) -> Answer {
        let o = match self.object_type_mut(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let Some(p) = o.properties.get_mut(name) else {
            return (
                StatusCode::NOT_FOUND,
                error_body(
                    "OBJECT_NOT_FOUND",
                    &format!("Unable to find property {name}"),
                ),
            );
        };
        if let Some(opts) = body.get("options").and_then(Value::as_array) {
            p.options = opts
                .iter()
                .filter_map(|o| o.get("value").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
        }
        if let Some(l) = body.get("label").and_then(Value::as_str) {
            p.label = l.into();
        }
        (StatusCode::OK, p.to_json())
    }

    pub fn create_group(&mut self, t: &str, body: &Value) -> Answer {
        let o = match self.object_type_mut(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        let label = body.get("label").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || label.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                error_body("VALIDATION_ERROR", "name and label are required"),
            );
        }
        if !o.groups.insert(name.to_owned()) {
            return (
                StatusCode::CONFLICT,
                error_body(
                    "OBJECT_ALREADY_EXISTS",
                    &format!("A property group named '{name}' already exists."),
                ),
            );
        }
        (
            StatusCode::CREATED,
            json!({"name": name, "label": label, "displayOrder": -1, "archived": false}),
        )
    }

    fn inputs<'a>(&self, body: &'a Value) -> Result<&'a Vec<Value>, Answer> {
        let inputs = body
            .get("inputs")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    error_body("VALIDATION_ERROR", "inputs is required"),
                )
            })?;
        if inputs.len() > self.batch_limit {
            return Err((
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    &format!(
                        "Batch input size of {} exceeds the limit of {}",
                        inputs.len(),
                        self.batch_limit
                    ),
                ),
            ));
        }
        Ok(inputs)
    }

    /// Unknown or read-only property names anywhere in the batch fail all of it, as HubSpot does.
    fn check_names<'a>(
        o: &ObjectType,
        inputs: impl Iterator<Item = &'a Value>,
    ) -> Result<(), Answer> {
        let mut bad = Vec::new();
        for input in inputs {
            if let Some(props) = input.get("properties").and_then(Value::as_object) {
                for name in props.keys() {
                    match o.properties.get(name) {
                        None => bad.push(json!({"isValid": false, "message": format!("Property \"{name}\" does not exist"), "error": "PROPERTY_DOESNT_EXIST", "name": name})),
                        Some(p) if p.read_only => bad.push(json!({"isValid": false, "message": format!("\"{name}\" is a read only property; its value cannot be set."), "error": "READ_ONLY_VALUE", "name": name})),
                        Some(_) => {}
                    }
                }
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        bad.dedup();
        Err((
            StatusCode::BAD_REQUEST,
            error_body(
                "VALIDATION_ERROR",
                &format!("Property values were not valid: {}", Value::Array(bad)),
            ),
        ))
    }

    fn string_props(input: &Value) -> Props {
        input
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Per-input checks: values fit their properties, unique values stay unique.
    fn check_values(
        o: &ObjectType,
        own_id: Option<u64>,
        props: &Props,
    ) -> Result<(), (String, &'static str)> {
        for (name, value) in props {
            let Some(def) = o.properties.get(name) else {
                continue;
            };
            if let Some((message, code)) = def.reject(value) {
                // HubSpot's shape: the per-property detail as JSON inside the message.
                let detail =
                    json!([{"isValid": false, "message": message, "error": code, "name": name}]);
                return Err((format!("Property values were not valid: {detail}"), code));
            }
            if def.unique
                && !value.is_empty()
                && let Some(other) = o.find_by(name, value)
                && Some(other) != own_id
            {
                return Err((
                    format!(
                        "A record with the value {value} for the unique property {name} already exists (id {other})."
                    ),
                    "CONFLICT",
                ));
            }
        }
        Ok(())
    }

    pub fn batch_upsert(&mut self, t: &str, body: &Value) -> Answer {
        let inputs = match self.inputs(body) {
            Ok(i) => i.clone(),
            Err(a) => return a,
        };
        let tname = canonical_type(t);
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        if let Err(a) = Self::check_names(o, inputs.iter()) {
            return a;
        }
        let mut seen = BTreeSet::new();
        for input in &inputs {
            let id_prop = input
                .get("idProperty")
                .and_then(Value::as_str)
                .unwrap_or("hs_object_id");
            match o.properties.get(id_prop) {
                Some(p) if p.unique => {}
                Some(_) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        error_body(
                            "VALIDATION_ERROR",
                            &format!(
                                "Property {id_prop} is not a unique identifier property; upsert needs a property with hasUniqueValue."
                            ),
                        ),
                    );
                }
                None => {
                    return (
                        StatusCode::BAD_REQUEST,
                        error_body(
                            "VALIDATION_ERROR",
                            &format!("Property \"{id_prop}\" does not exist"),
                        ),
                    );
                }
            }
            let id = input.get("id").and_then(Value::as_str).unwrap_or("");
            if !seen.insert(id.to_owned()) {
                return (
                    StatusCode::BAD_REQUEST,
                    error_body(
                        "VALIDATION_ERROR",
                        &format!("Duplicate IDs found in batch input: [{id}]. IDs must be unique"),
                    ),
                );
            }
        }
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for input in &inputs {
            let id_prop = input
                .get("idProperty")
                .and_then(Value::as_str)
                .unwrap_or("hs_object_id")
                .to_owned();
            let key = input
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let trace = input.get("objectWriteTraceId").and_then(Value::as_str);
            let mut props = Self::string_props(input);
            let o = self.types.get(&tname).expect("type checked above");
            let existing = o.find_by(&id_prop, &key);
            if id_prop != "hs_object_id" {
                props.insert(id_prop.clone(), key.clone());
            }
            if let Err((message, _)) = Self::check_values(o, existing, &props) {
                errors.push(item_error("VALIDATION_ERROR", &message, &key, trace));
                continue;
            }
            if existing.is_none()
                && (tname == "notes" || tname == "tasks")
                && !props.contains_key("hs_timestamp")
            {
                errors.push(item_error(
                    "VALIDATION_ERROR",
                    "Property \"hs_timestamp\" is required to create a note or a task",
                    &key,
                    trace,
                ));
                continue;
            }
            if existing.is_none() && id_prop == "hs_object_id" {
                errors.push(item_error(
                    "OBJECT_NOT_FOUND",
                    &format!("Object {key} does not exist; upsert by hs_object_id only updates"),
                    &key,
                    trace,
                ));
                continue;
            }
            let id = match existing {
                Some(id) => id,
                None => {
                    self.next_id += 1;
                    self.next_id
                }
            };
            let o = self.types.get_mut(&tname).expect("type checked above");
            // The answer names the properties the input wrote, as HubSpot's does; the unique
            // property it was upserted by comes back only if the input set it as a property.
            let written: Vec<String> = Self::string_props(input).into_keys().collect();
            o.write(id, props);
            let written: Vec<&str> = written.iter().map(String::as_str).collect();
            let (created, updated) = o.times(id);
            let mut r = json!({"id": id.to_string(), "new": existing.is_none(),
                "properties": o.returned(&tname, id, &written), "createdAt": created,
                "updatedAt": updated, "archived": false});
            if let Some(t) = trace {
                r["objectWriteTraceId"] = json!(t);
            }
            results.push(r);
        }
        batch_answer(results, errors, StatusCode::OK)
    }

    pub fn batch_read(&self, t: &str, body: &Value) -> Answer {
        let inputs = match self.inputs(body) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let id_prop = body
            .get("idProperty")
            .and_then(Value::as_str)
            .unwrap_or("hs_object_id");
        if id_prop != "hs_object_id" && !o.properties.get(id_prop).is_some_and(|p| p.unique) {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    &format!("{id_prop} is not a unique property"),
                ),
            );
        }
        let wanted: Vec<&str> = body
            .get("properties")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let tname = canonical_type(t);
        let (mut results, mut missing) = (Vec::new(), Vec::new());
        for input in inputs {
            let key = input.get("id").and_then(Value::as_str).unwrap_or("");
            match o.find_by(id_prop, key) {
                Some(id) => {
                    // Not the idProperty unless asked for: see ALWAYS_RETURNED.
                    let (created, updated) = o.times(id);
                    results.push(json!({"id": id.to_string(),
                        "properties": o.returned(&tname, id, &wanted), "createdAt": created,
                        "updatedAt": updated, "archived": false}));
                }
                None => missing.push(key.to_owned()),
            }
        }
        let errors = if missing.is_empty() {
            vec![]
        } else {
            vec![json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some objects, they may be deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing}, "errors": [], "links": {}})]
        };
        batch_answer(results, errors, StatusCode::OK)
    }

    pub fn batch_archive(&mut self, t: &str, body: &Value) -> Answer {
        let inputs = match self.inputs(body) {
            Ok(i) => i.clone(),
            Err(a) => return a,
        };
        let tname = canonical_type(t);
        if let Err(a) = self.object_type(t) {
            return a;
        }
        for input in &inputs {
            if let Some(id) = input
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok())
            {
                if let Some(o) = self.types.get_mut(&tname) {
                    o.remove(id);
                }
                self.associations.retain(|(ft, fi, tt, ti), _| {
                    !((*ft == tname && *fi == id) || (*tt == tname && *ti == id))
                });
            }
        }
        (StatusCode::NO_CONTENT, Value::Null)
    }

    pub fn get_one(&self, t: &str, key: &str, id_prop: Option<&str>, wanted: &[&str]) -> Answer {
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let id_prop = id_prop.unwrap_or("hs_object_id");
        match o.find_by(id_prop, key) {
            Some(id) => {
                let (created, updated) = o.times(id);
                (
                    StatusCode::OK,
                    json!({"id": id.to_string(), "properties": o.returned(&canonical_type(t), id, wanted),
                        "createdAt": created, "updatedAt": updated, "archived": false}),
                )
            }
            None => (
                StatusCode::NOT_FOUND,
                error_body(
                    "OBJECT_NOT_FOUND",
                    "Object not found.  objectId are usually numeric.",
                ),
            ),
        }
    }

    /// `POST /crm/v3/objects/{objectType}`: one new record (201).
    pub fn create_one(&mut self, t: &str, body: &Value) -> Answer {
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        if let Err(a) = Self::check_names(o, std::iter::once(body)) {
            return a;
        }
        let props = Self::string_props(body);
        if let Err((message, _)) = Self::check_values(o, None, &props) {
            return (
                StatusCode::BAD_REQUEST,
                error_body("VALIDATION_ERROR", &message),
            );
        }
        let tname = canonical_type(t);
        if (tname == "notes" || tname == "tasks") && !props.contains_key("hs_timestamp") {
            return (
                StatusCode::BAD_REQUEST,
                error_body(
                    "VALIDATION_ERROR",
                    "Property \"hs_timestamp\" is required to create a note or a task",
                ),
            );
        }
        self.next_id += 1;
        let id = self.next_id;
        let o = self.types.get_mut(&tname).expect("found above");
        let written: Vec<String> = props.keys().cloned().collect();
        o.write(id, props);
        let written: Vec<&str> = written.iter().map(String::as_str).collect();
        let (created, updated) = o.times(id);
        (
            StatusCode::CREATED,
            json!({"id": id.to_string(), "properties": o.returned(&tname, id, &written),
                "createdAt": created, "updatedAt": updated, "archived": false}),
        )
    }

    pub fn patch_one(&mut self, t: &str, key: &str, id_prop: Option<&str>, body: &Value) -> Answer {
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        if let Err(a) = Self::check_names(o, std::iter::once(body)) {
            return a;
        }
        let Some(id) = o.find_by(id_prop.unwrap_or("hs_object_id"), key) else {
            return (
                StatusCode::NOT_FOUND,
                error_body("OBJECT_NOT_FOUND", "Object not found."),
            );
        };
        let props = Self::string_props(body);
        if let Err((message, _)) = Self::check_values(o, Some(id), &props) {
            return (
                StatusCode::BAD_REQUEST,
                error_body("VALIDATION_ERROR", &message),
            );
        }
        let tname = canonical_type(t);
        let o = self.types.get_mut(&tname).expect("found above");
        let written: Vec<String> = props.keys().cloned().collect();
        o.write(id, props);
        let written: Vec<&str> = written.iter().map(String::as_str).collect();
        let (created, updated) = o.times(id);
        (
            StatusCode::OK,
            json!({"id": id.to_string(), "properties": o.returned(&tname, id, &written),
                "createdAt": created, "updatedAt": updated, "archived": false}),
        )
    }

    /// v4 `batch/create` (labelled) and `batch/associate/default`.
    pub fn associate(&mut self, from: &str, to: &str, body: &Value, default: bool) -> Answer {
        let (from, to) = (canonical_type(from), canonical_type(to));
        if !self.types.contains_key(&from) || !self.types.contains_key(&to) {
            return not_a_type(if self.types.contains_key(&from) {
                &to
            } else {
                &from
            });
        }
        let inputs = match self.inputs(body) {
            Ok(i) => i.clone(),
            Err(a) => return a,
        };
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for input in &inputs {
            let id = |side: &str| {
                input
                    .get(side)
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
            };
            let (Some(f), Some(t)) = (id("from"), id("to")) else {
                errors.push(json!({"status": "error", "category": "VALIDATION_ERROR", "message": "from.id and to.id are required", "context": {}, "errors": [], "links": {}}));
                continue;
            };
            let exists = |ty: &str, id: u64| {
                self.types
                    .get(ty)
                    .is_some_and(|o| o.records.contains_key(&id))
            };
            if !exists(&from, f) || !exists(&to, t) {
                errors.push(json!({"status": "error", "category": "VALIDATION_ERROR", "message": format!("No {} with ID {} exists", if exists(&from, f) { &to } else { &from }, if exists(&from, f) { t } else { f }), "context": {"fromObjectId": [f.to_string()], "toObjectId": [t.to_string()]}, "errors": [], "links": {}}));
                continue;
            }
            let types: Vec<u32> = if default {
                vec![default_association(&from, &to)]
            } else {
                input
                    .get("types")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.get("associationTypeId").and_then(Value::as_u64))
                            .map(|t| t as u32)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            self.associations
                .entry((from.clone(), f, to.clone(), t))
                .or_default()
                .extend(types.iter().copied());
            self.associations
                .entry((to.clone(), t, from.clone(), f))
                .or_default();
            results.push(json!({"fromObjectTypeId": from, "fromObjectId": f, "toObjectTypeId": to, "toObjectId": t, "labels": []}));
        }
        batch_answer(
            results,
            errors,
            if default {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
        )
    }

    pub fn associated(&self, from: &str, id: u64, to: &str) -> Vec<u64> {
        let (from, to) = (canonical_type(from), canonical_type(to));
        self.associations
            .keys()
            .filter(|(ft, fi, tt, _)| *ft == from && *fi == id && *tt == to)
            .map(|(_, _, _, ti)| *ti)
            .collect()
    }

    pub fn association_types(&self, from: &str, id: u64, to: &str, to_id: u64) -> BTreeSet<u32> {
        self.associations
            .get(&(canonical_type(from), id, canonical_type(to), to_id))
            .cloned()
            .unwrap_or_default()
    }
}

/// The unlabelled association type HubSpot uses between two types.
fn default_association(from: &str, to: &str) -> u32 {
    match (from, to) {
        ("notes", "contacts") => 202,
        ("contacts", "notes") => 201,
        ("tasks", "contacts") => 204,
        ("contacts", "tasks") => 203,
        _ => 1,
    }
}

fn not_a_type(t: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        error_body(
            "VALIDATION_ERROR",
            &format!("Unable to infer object type from: {t}"),
        ),
    )
}
