//! Metadata: modules, fields (listed and created), the current user and the org
//! (zoho.com/crm/developer/docs/api/v8/module-meta.html, field-meta.html, create-custom-fields.html,
//! get-users.html, get-org-data.html). A field created through the API gets the API name of its
//! label with spaces as underscores; one whose API name exists is DUPLICATE_DATA; a type outside
//! those the connector may ask for is INVALID_DATA (strict: the reference lists more types than
//! this simulator keeps, and none of them is needed).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::gate::error;
use super::{Field, Shared, lock};

const CREATABLE: &[&str] = &[
    "text",
    "textarea",
    "website",
    "integer",
    "bigint",
    "double",
    "datetime",
    "boolean",
    "lookup",
    "multiselectpicklist",
    "email",
    "phone",
];

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/crm/v8/settings/modules", get(modules))
        .route("/crm/v8/settings/fields", get(fields).post(create_fields))
        .route("/crm/v8/users", get(users))
        .route("/crm/v8/org", get(org))
}

async fn modules(State(s): State<Shared>) -> axum::Json<Value> {
    let i = lock(&s);
    let list: Vec<Value> = i
        .modules
        .values()
        .map(|m| {
            let custom = !["Contacts", "Leads", "Notes"].contains(&m.api_name.as_str());
            json!({"api_name": m.api_name, "module_name": m.api_name, "api_supported": true,
                "generated_type": if custom { "custom" } else { "default" }})
        })
        .collect();
    axum::Json(json!({"modules": list}))
}

fn field_json(f: &Field) -> Value {
    let mut v = json!({"api_name": f.api_name, "field_label": f.api_name.replace('_', " "),
        "data_type": f.data_type, "custom_field": f.custom, "system_mandatory": f.mandatory,
        "length": f.length});
    if f.unique {
        v["unique"] = json!({"casesensitive": "false"});
    }
    if let Some(m) = &f.lookup {
        v["lookup"] = json!({"module": {"api_name": m}});
    }
    if f.data_type == "multiselectpicklist" {
        v["pick_list_values"] = f
            .pick_list
            .iter()
            .map(|p| json!({"display_value": p, "actual_value": p}))
            .collect();
    }
    v
}

#[derive(serde::Deserialize)]
struct ModuleParam {
    module: Option<String>,
}

async fn fields(State(s): State<Shared>, Query(q): Query<ModuleParam>) -> Response {
    let Some(module) = q.module else {
        return error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "module",
            json!({"param": "module"}),
        );
    };
    let i = lock(&s);
    match i.modules.get(&module) {
        Some(m) => {
            axum::Json(json!({"fields": m.fields.iter().map(field_json).collect::<Vec<_>>()}))
                .into_response()
        }
        None => error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({"param": "module"}),
        ),
    }
}

async fn create_fields(
    State(s): State<Shared>,
    Query(q): Query<ModuleParam>,
    body: Bytes,
) -> Response {
    let Some(module) = q.module else {
        return error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "module",
            json!({"param": "module"}),
        );
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(asked) = body.get("fields").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": "fields"}),
        );
    };
    let mut i = lock(&s);
    if !i.modules.contains_key(&module) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({"param": "module"}),
        );
    }
    let mut results = Vec::new();
    for a in asked {
        let label = a
            .get("field_label")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        let data_type = a.get("data_type").and_then(Value::as_str).unwrap_or("");
        let api_name = label.replace(' ', "_");
        let lookup = a
            .pointer("/lookup/module/api_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let failure = |code: &str, message: &str, api: &str| json!({"code": code, "details": {"api_name": api}, "message": message, "status": "error"});
        if label.is_empty() {
            results.push(failure(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                "field_label",
            ));
            continue;
        }
        if !CREATABLE.contains(&data_type)
            || (data_type == "lookup"
                && !lookup.as_ref().is_some_and(|m| i.modules.contains_key(m)))
        {
            results.push(failure("INVALID_DATA", "invalid data", "data_type"));
            continue;
        }
        let m = i.modules.get(&module).cloned();
        if m.is_some_and(|m| m.field(&api_name).is_some()) {
            results.push(failure("DUPLICATE_DATA", "duplicate data", "field_label"));
            continue;
        }
        let mut f = Field::new(&api_name, data_type);
        f.custom = true;
        f.unique = a.get("unique").is_some_and(|u| !u.is_null());
        f.lookup = lookup;
        if let Some(n) = a.get("length").and_then(Value::as_u64) {
            f.length = n as usize;
        }
        f.pick_list = a
            .get("pick_list_values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                p.get("display_value")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let id = i.next_id();
        if let Some(m) = i.modules.get_mut(&module) {
            m.fields.push(f);
        }
        results.push(json!({"code": "SUCCESS", "details": {"id": id}, "message": "field created", "status": "success"}));
    }
    let ok = results.iter().all(|r| r["status"] == "success");
    let status = if ok {
        StatusCode::CREATED
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, axum::Json(json!({"fields": results}))).into_response()
}

#[derive(serde::Deserialize)]
struct UserType {
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn users(Query(q): Query<UserType>) -> Response {
    if q.kind.as_deref() != Some("CurrentUser") {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "only type=CurrentUser is simulated",
            json!({"param": "type"}),
        );
    }
    axum::Json(
        json!({"users": [{"id": "5725767000000001001", "full_name": "wa2crm integration",
        "email": "admin@acme.example", "status": "active",
        "profile": {"name": "Administrator", "id": "5725767000000002001"},
        "role": {"name": "CEO", "id": "5725767000000003001"}}]}),
    )
    .into_response()
}

async fn org() -> axum::Json<Value> {
    axum::Json(
        json!({"org": [{"id": "5725767000000000001", "company_name": "Acme (simulated)",
        "domain_name": "org60000001", "country_code": "US", "time_zone": "UTC"}]}),
    )
}
