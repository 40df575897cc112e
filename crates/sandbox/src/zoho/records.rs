//! Records, notes and attachments (zoho.com/crm/developer/docs/api/v8/insert-records.html,
//! update-records.html, upsert-records.html, delete-records.html, notes-api…, upload-attachment.html,
//! get-attachments.html, delete-attachments.html). Each record of a write is checked against its
//! module's fields and answered on its own, with Zoho's codes: INVALID_DATA (an unknown field,
//! a value of the wrong type, a lookup to a record that does not exist), MANDATORY_NOT_FOUND,
//! DUPLICATE_DATA (a unique field's value another record holds). The call is 200 when every record
//! succeeds, 207 when some do and 400 when none does (strict: the reference shows 200, 201, 207
//! and 400 answers without saying which is used when; a client must read `data` in all of them).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use super::gate::error;
use super::{Attachment, Field, Inner, Record, Shared, lock};

/// "You can insert/update/upsert/delete up to 100 records per API call."
pub(super) const MAX_RECORDS: usize = 100;

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/crm/v8/{module}",
            post(insert).put(update).delete(delete_records),
        )
        .route("/crm/v8/{module}/upsert", post(upsert))
        .route(
            "/crm/v8/{module}/{id}/Attachments",
            get(list_attachments)
                .post(attach)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route(
            "/crm/v8/{module}/{id}/Attachments/{attachment}",
            delete(delete_attachment),
        )
}

fn invalid_module() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_MODULE",
        "the module name given seems to be invalid",
        json!({"resource_path_index": 0}),
    )
}

/// The `data` array of a write, or the answer refusing the whole call.
/// A write's whole body and its records.
type Write = (Value, Vec<Map<String, Value>>);

fn data_of(body: &Bytes) -> Result<Write, Box<Response>> {
    let body: Value = serde_json::from_slice(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "body is not valid JSON",
            json!({}),
        ))
    })?;
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "data"}),
            ))
        })?;
    if data.len() > MAX_RECORDS {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "the number of records exceeds the limit",
            json!({"limit": MAX_RECORDS}),
        )));
    }
    let records = data
        .iter()
        .map(|r| r.as_object().cloned().unwrap_or_default())
        .collect();
    Ok((body.clone(), records))
}

fn failure(code: &str, message: &str, details: Value) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

/// 200 when every record succeeded, 207 when some did, 400 when none did.
fn answer(results: Vec<Value>) -> Response {
    let ok = results.iter().filter(|r| r["status"] == "success").count();
    let status = match ok {
        n if n == results.len() => StatusCode::OK,
        0 => StatusCode::BAD_REQUEST,
        _ => StatusCode::MULTI_STATUS,
    };
    (status, axum::Json(json!({"data": results}))).into_response()
}

fn is_datetime(s: &str) -> bool {
    // `2026-12-04T21:00:00+00:00`: no fraction, no `Z` (strict: every example has an offset).
    let f = time::format_description::well_known::Iso8601::DEFAULT;
    s.len() == 25
        && matches!(s.as_bytes().get(19), Some(b'+' | b'-'))
        && time::OffsetDateTime::parse(s, &f).is_ok()
}

/// A value as the field stores it, or the per-record error.
fn check_value(i: &Inner, f: &Field, v: &Value) -> Result<Value, Value> {
    let wrong = || {
        failure(
            "INVALID_DATA",
            "invalid data",
            json!({"api_name": f.api_name, "expected_data_type": f.data_type}),
        )
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    let text = |max: usize| match v.as_str() {
        Some(s) if s.chars().count() <= max => Ok(v.clone()),
        _ => Err(wrong()),
    };
    match f.data_type.as_str() {
        "text" | "email" | "phone" | "textarea" => {
            let ok = f.data_type != "email" || v.as_str().is_some_and(|s| s.contains('@'));
            if ok { text(f.length) } else { Err(wrong()) }
        }
        "website" => match v.as_str() {
            Some(s)
                if (s.starts_with("https://") || s.starts_with("http://")) && s.len() <= 255 =>
            {
                Ok(v.clone())
            }
            _ => Err(wrong()),
        },
        "integer" => match v.as_i64() {
            Some(n) if n.abs() < 1 << 31 => Ok(v.clone()),
            _ => Err(wrong()),
        },
        "bigint" => v.as_i64().map(|_| v.clone()).ok_or_else(wrong),
        "double" | "decimal" => v.as_f64().map(|_| v.clone()).ok_or_else(wrong),
        "boolean" => v.as_bool().map(|_| v.clone()).ok_or_else(wrong),
        "datetime" => match v.as_str() {
            Some(s) if is_datetime(s) => Ok(v.clone()),
            _ => Err(wrong()),
        },
        "multiselectpicklist" => match v.as_array() {
            Some(items)
                if items.iter().all(|x| {
                    x.as_str()
                        .is_some_and(|s| f.pick_list.iter().any(|p| p == s))
                }) =>
            {
                Ok(v.clone())
            }
            _ => Err(wrong()),
        },
        "lookup" => {
            let id = v.get("id").and_then(Value::as_str).ok_or_else(wrong)?;
            // Notes name their parent's module; a lookup field has its own.
            let module = v
                .pointer("/module/api_name")
                .and_then(Value::as_str)
                .or(f.lookup.as_deref());
            let exists = i
                .records
                .get(id)
                .is_some_and(|r| Some(r.module.as_str()) == module);
            if exists {
                Ok(v.clone())
            } else {
                Err(failure(
                    "INVALID_DATA",
                    "the related id given seems to be invalid",
                    json!({"api_name": f.api_name, "id": id}),
                ))
            }
        }
        _ => Err(wrong()),
    }
}

/// Checks one record's values against the module; `insert` also wants the mandatory fields.
fn check_record(
    i: &Inner,
    module: &str,
    values: &Map<String, Value>,
    insert: bool,
    this_id: Option<&str>,
) -> Result<Vec<(String, Value)>, Value> {
    let Some(m) = i.modules.get(module) else {
        return Err(failure("INVALID_MODULE", "invalid module", json!({})));
    };
    let mut out = Vec::new();
    for (k, v) in values {
        if k == "id" || k.starts_with('$') {
            continue;
        }
        let Some(f) = m.field(k) else {
            return Err(failure(
                "INVALID_DATA",
                "invalid field",
                json!({"api_name": k}),
            ));
        };
        let v = check_value(i, f, v)?;
        if f.unique && !v.is_null() {
            let other = i.records.values().find(|r| {
                r.module == module && Some(r.id.as_str()) != this_id && r.values.get(k) == Some(&v)
            });
            if let Some(r) = other {
                return Err(failure(
                    "DUPLICATE_DATA",
                    "duplicate data",
                    json!({"api_name": k, "duplicate_record": {"id": r.id, "module": {"api_name": module}}}),
                ));
            }
        }
        out.push((k.clone(), v));
    }
    if insert {
        for f in m.fields.iter().filter(|f| f.mandatory) {
            if out.iter().all(|(k, v)| *k != f.api_name || v.is_null()) {
                return Err(failure(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    json!({"api_name": f.api_name}),
                ));
            }
        }
    }
    Ok(out)
}

fn write(i: &mut Inner, module: &str, id: Option<String>, values: Vec<(String, Value)>) -> Value {
    let modified = i.now_text();
    let id = id.unwrap_or_else(|| i.next_id());
    let record = i.records.entry(id.clone()).or_insert_with(|| Record {
        id: id.clone(),
        module: module.into(),
        values: Default::default(),
        modified: modified.clone(),
    });
    for (k, v) in values {
        if v.is_null() {
            record.values.remove(&k);
        } else {
            record.values.insert(k, v);
        }
    }
    record.modified = modified.clone();
    json!({"id": id, "Modified_Time": modified})
}

async fn insert(State(s): State<Shared>, Path(module): Path<String>, body: Bytes) -> Response {
    let (_, data) = match data_of(&body) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let mut i = lock(&s);
    if !i.modules.contains_key(&module) {
        return invalid_module();
    }
    let results = data
        .iter()
        .map(|r| match check_record(&i, &module, r, true, None) {
            Ok(values) => {
                let details = write(&mut i, &module, None, values);
                json!({"code": "SUCCESS", "details": details, "message": "record added", "status": "success"})
            }
            Err(e) => e,
        })
        .collect();
    answer(results)
}

async fn update(State(s): State<Shared>, Path(module): Path<String>, body: Bytes) -> Response {
    let (_, data) = match data_of(&body) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let mut i = lock(&s);
    if !i.modules.contains_key(&module) {
        return invalid_module();
    }
    let results = data
        .iter()
        .map(|r| {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            if i.records.get(id).is_none_or(|x| x.module != module) {
                return failure("INVALID_DATA", "the id given seems to be invalid", json!({"api_name": "id"}));
            }
            match check_record(&i, &module, r, false, Some(id)) {
                Ok(values) => {
                    let details = write(&mut i, &module, Some(id.to_owned()), values);
                    json!({"code": "SUCCESS", "details": details, "message": "record updated", "status": "success"})
                }
                Err(e) => e,
            }
        })
        .collect();
    answer(results)
}

async fn upsert(State(s): State<Shared>, Path(module): Path<String>, body: Bytes) -> Response {
    let (body, data) = match data_of(&body) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let mut i = lock(&s);
    i.counts.upserts += 1;
    let Some(m) = i.modules.get(&module).cloned() else {
        return invalid_module();
    };
    let check: Vec<String> = match body.get("duplicate_check_fields") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        // System-defined: Email for Contacts and Leads, then the unique fields.
        _ => m
            .fields
            .iter()
            .filter(|f| f.unique || (f.api_name == "Email" && module != "Notes"))
            .map(|f| f.api_name.clone())
            .collect(),
    };
    // Strict: a duplicate check field must be unique (or a system one).
    if let Some(bad) = check.iter().find(|c| {
        !m.field(c)
            .is_some_and(|f| f.unique || f.api_name == "Email")
    }) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "the field given in duplicate_check_fields is not a unique field",
            json!({"api_name": bad}),
        );
    }
    let results = data
        .iter()
        .map(|r| {
            let existing = check.iter().find_map(|c| {
                let v = r.get(c).filter(|v| !v.is_null())?;
                i.records
                    .values()
                    .find(|x| x.module == module && x.values.get(c) == Some(v))
                    .map(|x| (c.clone(), x.id.clone()))
            });
            let (field, id) = existing.map_or((None, None), |(c, id)| (Some(c), Some(id)));
            match check_record(&i, &module, r, id.is_none(), id.as_deref()) {
                Ok(values) => {
                    let (action, message) = if id.is_some() {
                        ("update", "record updated")
                    } else {
                        ("insert", "record added")
                    };
                    let details = write(&mut i, &module, id, values);
                    json!({"code": "SUCCESS", "duplicate_field": field, "action": action,
                        "details": details, "message": message, "status": "success"})
                }
                Err(e) => e,
            }
        })
        .collect();
    answer(results)
}

#[derive(serde::Deserialize)]
struct Ids {
    ids: Option<String>,
}

async fn delete_records(
    State(s): State<Shared>,
    Path(module): Path<String>,
    Query(q): Query<Ids>,
) -> Response {
    let mut i = lock(&s);
    if !i.modules.contains_key(&module) {
        return invalid_module();
    }
    let ids: Vec<String> = q
        .ids
        .unwrap_or_default()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "ids",
            json!({"param": "ids"}),
        );
    }
    if ids.len() > MAX_RECORDS {
        return error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "too many ids",
            json!({"limit": MAX_RECORDS}),
        );
    }
    let results = ids
        .iter()
        .map(|id| {
            if i.records.get(id).is_none_or(|r| r.module != module) {
                return failure("INVALID_DATA", "record not deleted", json!({"id": id}));
            }
            i.records.remove(id);
            // A record's notes and attachments go with it.
            i.records.retain(|_, r| {
                r.values.get("Parent_Id").and_then(|p| p.get("id")).and_then(Value::as_str) != Some(id)
            });
            i.attachments.retain(|_, a| a.parent_id != *id);
            json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"})
        })
        .collect();
    answer(results)
}

fn parent_exists(i: &Inner, module: &str, id: &str) -> bool {
    i.records.get(id).is_some_and(|r| r.module == module)
}

async fn attach(
    State(s): State<Shared>,
    Path((module, id)): Path<(String, String)>,
    mut form: Multipart,
) -> Response {
    let mut file: Option<(String, Bytes)> = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("file").to_owned();
            match field.bytes().await {
                Ok(b) => file = Some((name, b)),
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_DATA",
                        "the file could not be read",
                        json!({}),
                    );
                }
            }
        }
    }
    let mut i = lock(&s);
    if !parent_exists(&i, &module, &id) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "the related id given seems to be invalid",
            json!({"id": id}),
        );
    }
    let Some((file_name, bytes)) = file else {
        return error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "file",
            json!({"param": "file"}),
        );
    };
    if bytes.len() as u64 > i.config.attachment_limit {
        return error(
            StatusCode::BAD_REQUEST,
            "FILE_SIZE_MORE_THAN_ALLOWED",
            "the file size exceeds the allowed limit",
            json!({"limit": i.config.attachment_limit}),
        );
    }
    let att = i.next_id();
    let modified = i.now_text();
    i.attachments.insert(
        att.clone(),
        Attachment {
            id: att.clone(),
            module,
            parent_id: id,
            file_name,
            size: bytes.len() as u64,
        },
    );
    (
        StatusCode::OK,
        axum::Json(
            json!({"data": [{"code": "SUCCESS", "details": {"id": att, "Modified_Time": modified},
            "message": "attachment uploaded successfully", "status": "success"}]}),
        ),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct ListQuery {
    fields: Option<String>,
}

async fn list_attachments(
    State(s): State<Shared>,
    Path((module, id)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Response {
    // v8 wants the fields named (strict: without them, REQUIRED_PARAM_MISSING).
    if q.fields.as_deref().is_none_or(str::is_empty) {
        return error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "fields",
            json!({"param": "fields"}),
        );
    }
    let i = lock(&s);
    if !parent_exists(&i, &module, &id) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "the related id given seems to be invalid",
            json!({"id": id}),
        );
    }
    let data: Vec<Value> = i
        .attachments
        .values()
        .filter(|a| a.parent_id == id)
        .map(|a| json!({"id": a.id, "File_Name": a.file_name, "Size": a.size.to_string()}))
        .collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let count = data.len();
    axum::Json(json!({"data": data, "info": {"count": count, "more_records": false, "page": 1, "per_page": 200}}))
        .into_response()
}

async fn delete_attachment(
    State(s): State<Shared>,
    Path((module, id, attachment)): Path<(String, String, String)>,
) -> Response {
    let mut i = lock(&s);
    let found = i
        .attachments
        .get(&attachment)
        .is_some_and(|a| a.module == module && a.parent_id == id);
    if !found {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "the id given seems to be invalid",
            json!({"id": attachment}),
        );
    }
    i.attachments.remove(&attachment);
    axum::Json(
        json!({"data": [{"code": "SUCCESS", "details": {"id": attachment},
        "message": "record deleted", "status": "success"}]}),
    )
    .into_response()
}
