//! What an admin sets up and `check`/`provision` read: the agent the credentials act as, custom
//! ticket and user fields, groups, brands and ticket forms. Sources: developer.zendesk.com
//! ticket_fields and user_fields references (the field types, the `{ticket_field: …}` and
//! `{user_field: …}` envelopes, `key` for user fields), users "Show the Currently Authenticated
//! User" (`/api/v2/users/me`), and the groups, brands and ticket forms references (`GET
//! /api/v2/groups/{id}` etc., 404 `RecordNotFound` for an id the account does not have).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::routes::{admit, admit_json, answer, invalid, not_found};
use super::{CustomField, Inner, Shared, ZendeskSim, lock};

/// The custom field types Zendesk documents.
const TYPES: &[&str] = &[
    "text",
    "textarea",
    "checkbox",
    "date",
    "integer",
    "decimal",
    "regexp",
    "partialcreditcard",
    "multiselect",
    "tagger",
    "lookup",
];

/// System ticket fields every account lists first (not removable, not for custom values).
const SYSTEM_FIELDS: &[(&str, &str)] = &[
    ("subject", "Subject"),
    ("description", "Description"),
    ("status", "Status"),
    ("tickettype", "Type"),
    ("priority", "Priority"),
    ("group", "Group"),
    ("assignee", "Assignee"),
];

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v2/users/me", get(me))
        .route(
            "/api/v2/ticket_fields",
            get(list_ticket_fields).post(create_ticket_field),
        )
        .route(
            "/api/v2/user_fields",
            get(list_user_fields).post(create_user_field),
        )
        .route("/api/v2/groups/{id}", get(group))
        .route("/api/v2/brands/{id}", get(brand))
        .route("/api/v2/ticket_forms/{id}", get(form))
}

async fn me(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    let json = i.users.get(&i.agent_id).map(ZendeskSim::user_json);
    drop(i);
    answer(limit, StatusCode::OK, json!({"user": json}))
}

fn field_json(f: &CustomField) -> Value {
    let mut j = json!({"id": f.id, "type": f.field_type, "title": f.title, "active": true,
        "removable": true});
    if let Some(key) = &f.key {
        j["key"] = key.clone().into();
    }
    j
}

async fn list_ticket_fields(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    let mut list: Vec<Value> = SYSTEM_FIELDS
        .iter()
        .enumerate()
        .map(|(n, (t, title))| {
            json!({"id": n + 1, "type": t, "title": title, "active": true, "removable": false})
        })
        .collect();
    list.extend(i.ticket_fields.iter().map(field_json));
    drop(i);
    answer(
        limit,
        StatusCode::OK,
        json!({"ticket_fields": list, "next_page": null}),
    )
}

async fn list_user_fields(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    let list: Vec<Value> = i.user_fields.iter().map(field_json).collect();
    drop(i);
    answer(
        limit,
        StatusCode::OK,
        json!({"user_fields": list, "next_page": null}),
    )
}

/// `type` must be a documented one and `title` not blank (422 RecordInvalid otherwise).
fn new_field(i: &mut Inner, f: &Value) -> Result<CustomField, (&'static str, String)> {
    let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().trim();
    let field_type = text("type");
    if !TYPES.contains(&field_type) {
        return Err(("type", format!("Type: {field_type:?} is not a valid type")));
    }
    if text("title").is_empty() {
        return Err(("title", "Title: cannot be blank".into()));
    }
    Ok(CustomField {
        id: i.next_id(),
        field_type: field_type.to_owned(),
        title: text("title").to_owned(),
        key: None,
    })
}

async fn create_ticket_field(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let mut i = lock(&s);
    match new_field(&mut i, &body["ticket_field"]) {
        Ok(f) => {
            i.ticket_fields.push(f.clone());
            drop(i);
            answer(
                limit,
                StatusCode::CREATED,
                json!({"ticket_field": field_json(&f)}),
            )
        }
        Err((field, description)) => {
            drop(i);
            invalid(limit, field, &description)
        }
    }
}

/// A user field also needs a `key`: letters, digits and underscores, unique in the account.
async fn create_user_field(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (limit, body) = match admit_json(&s, &headers, &body) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let f = &body["user_field"];
    let key = f.get("key").and_then(Value::as_str).unwrap_or_default();
    let mut i = lock(&s);
    let key_ok = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !i.user_fields.iter().any(|u| u.key.as_deref() == Some(key));
    if !key_ok {
        drop(i);
        return invalid(
            limit,
            "key",
            &format!("Key: {key:?} is invalid or has already been taken"),
        );
    }
    match new_field(&mut i, f) {
        Ok(mut field) => {
            field.key = Some(key.to_owned());
            i.user_fields.push(field.clone());
            drop(i);
            answer(
                limit,
                StatusCode::CREATED,
                json!({"user_field": field_json(&field)}),
            )
        }
        Err((field, description)) => {
            drop(i);
            invalid(limit, field, &description)
        }
    }
}

async fn group(s: State<Shared>, headers: HeaderMap, id: Path<String>) -> Response {
    one_of(s, headers, id, "group", |i| &i.groups)
}

async fn brand(s: State<Shared>, headers: HeaderMap, id: Path<String>) -> Response {
    one_of(s, headers, id, "brand", |i| &i.brands)
}

async fn form(s: State<Shared>, headers: HeaderMap, id: Path<String>) -> Response {
    one_of(s, headers, id, "ticket_form", |i| &i.forms)
}

fn one_of(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    what: &str,
    ids: impl Fn(&Inner) -> &Vec<u64>,
) -> Response {
    let limit = match admit(&s, &headers) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let i = lock(&s);
    let found = id.parse::<u64>().ok().filter(|id| ids(&i).contains(id));
    drop(i);
    match found {
        Some(id) => answer(
            limit,
            StatusCode::OK,
            json!({what: {"id": id, "name": format!("{what} {id}"), "active": true}}),
        ),
        None => not_found(limit),
    }
}

/// Whether `value` fits a field of `field_type`; null clears any field. Strict: an integer field
/// takes an integer (or its digits as text), a date field `YYYY-MM-DD`, a checkbox a boolean.
fn fits(field_type: &str, value: &Value) -> bool {
    match (field_type, value) {
        (_, Value::Null) => true,
        ("checkbox", v) => v.is_boolean(),
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("integer", Value::String(s)) => s.parse::<i64>().is_ok(),
        ("decimal", Value::Number(_)) => true,
        ("decimal", Value::String(s)) => s.parse::<f64>().is_ok(),
        ("date", Value::String(s)) => time::Date::parse(
            s,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok(),
        ("text" | "textarea" | "regexp" | "tagger", v) => v.is_string(),
        ("multiselect", v) => v.is_array(),
        _ => false,
    }
}

/// A ticket's `custom_fields` (`[{id, value}]`): each must name a ticket field and fit its type.
pub(super) fn custom_fields_of(i: &Inner, v: &Value) -> Result<BTreeMap<u64, Value>, String> {
    let mut out = BTreeMap::new();
    for f in v.as_array().into_iter().flatten() {
        let id = f.get("id").and_then(Value::as_u64).unwrap_or_default();
        let value = f.get("value").cloned().unwrap_or(Value::Null);
        let Some(field) = i.ticket_fields.iter().find(|t| t.id == id) else {
            return Err(format!("Custom fields: {id} is not a ticket field"));
        };
        if !fits(&field.field_type, &value) {
            return Err(format!(
                "{}: {value} is not a valid {} value",
                field.title, field.field_type
            ));
        }
        out.insert(id, value);
    }
    Ok(out)
}

/// A user's `user_fields` (`{key: value}`): each key a user field's, each value of its type.
pub(super) fn user_fields_of(i: &Inner, v: &Value) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for (key, value) in v.as_object().into_iter().flatten() {
        let Some(field) = i.user_fields.iter().find(|u| u.key.as_deref() == Some(key)) else {
            return Err(format!("User fields: {key} is not a user field"));
        };
        if !fits(&field.field_type, value) {
            return Err(format!(
                "{}: {value} is not a valid {} value",
                field.title, field.field_type
            ));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}
