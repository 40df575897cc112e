//! `POST /composite`: up to 25 subrequests (at most 5 of them queries or sObject Collections) run
//! in order as one API call. Each answers with its own status and body; with `allOrNone` true the
//! first failure rolls every write back and the other subrequests answer 400 PROCESSING_HALTED.
//! References between subrequests (`@{ref.id}`) are not resolved by the simulator, which says
//! so instead of running a subrequest with the reference left in it.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::model::{Answer, Org};

const MAX_SUBREQUESTS: usize = 25;
const MAX_COLLECTIONS_AND_QUERIES: usize = 5;

fn error(code: &str, message: &str) -> Value {
    json!([{"message": message, "errorCode": code}])
}

fn bad_request(code: &str, message: &str) -> Answer {
    (StatusCode::BAD_REQUEST, error(code, message))
}

/// Runs a composite request whose outer URL carried `version` (`v62.0`).
pub fn run(org: &mut Org, version: &str, body: &Value) -> Answer {
    let Some(requests) = body.get("compositeRequest").and_then(Value::as_array) else {
        return bad_request("JSON_PARSER_ERROR", "compositeRequest is required");
    };
    if requests.len() > MAX_SUBREQUESTS {
        return bad_request(
            "LIMIT_EXCEEDED",
            &format!("Composite can't have more than {MAX_SUBREQUESTS} subrequests"),
        );
    }
    let prefix = format!("/services/data/{version}");
    let mut parsed = Vec::new();
    let mut heavy = 0;
    let mut references = HashMap::new();
    for r in requests {
        let method = r.get("method").and_then(Value::as_str).unwrap_or("");
        let url = r.get("url").and_then(Value::as_str).unwrap_or("");
        let reference = r.get("referenceId").and_then(Value::as_str).unwrap_or("");
        if reference.is_empty()
            || !reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || references.insert(reference.to_owned(), ()).is_some()
        {
            return bad_request(
                "INVALID_INPUT",
                &format!("invalid or duplicate referenceId {reference:?}"),
            );
        }
        let Some(path) = url.strip_prefix(&prefix) else {
            return bad_request(
                "INVALID_INPUT",
                &format!(
                    "subrequest url {url} must start with {prefix}, the composite call's version"
                ),
            );
        };
        if r.to_string().contains("@{") {
            return bad_request(
                "INVALID_INPUT",
                "the simulator does not resolve references between subrequests (@{...})",
            );
        }
        if path.starts_with("/query") || path.starts_with("/composite/sobjects") {
            heavy += 1;
        }
        parsed.push((method, path, reference, r.get("body")));
    }
    if heavy > MAX_COLLECTIONS_AND_QUERIES {
        return bad_request(
            "LIMIT_EXCEEDED",
            &format!(
                "Composite can't have more than {MAX_COLLECTIONS_AND_QUERIES} query or sObject Collections subrequests"
            ),
        );
    }
    let all_or_none = body.get("allOrNone").and_then(Value::as_bool) == Some(true);
    let before = all_or_none.then(|| org.clone());
    let mut results: Vec<(StatusCode, Value)> = Vec::new();
    let mut failed = None;
    for (i, (method, path, _, body)) in parsed.iter().enumerate() {
        let (status, answer) = dispatch(org, method, path, body.unwrap_or(&Value::Null));
        if all_or_none && !status.is_success() {
            failed = Some(i);
            results.push((status, answer));
            break;
        }
        results.push((status, answer));
    }
    if let (Some(failed), Some(before)) = (failed, before) {
        *org = before;
        let halted = error(
            "PROCESSING_HALTED",
            "The transaction was rolled back since another operation in the same transaction failed.",
        );
        results = (0..parsed.len())
            .map(|i| match i == failed {
                true => results[failed].clone(),
                false => (StatusCode::BAD_REQUEST, halted.clone()),
            })
            .collect();
    }
    let parts: Vec<Value> = parsed
        .iter()
        .zip(results)
        .map(|((_, _, reference, _), (status, body))| {
            json!({"body": body, "httpHeaders": {}, "httpStatusCode": status.as_u16(), "referenceId": reference})
        })
        .collect();
    (StatusCode::OK, json!({"compositeResponse": parts}))
}

/// The subrequests wa2crm sends: queries and sObject Collections upserts and deletes.
fn dispatch(org: &mut Org, method: &str, path: &str, body: &Value) -> Answer {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["query"]) => org.query(&param("q")),
        ("GET", ["sobjects", object, "describe"]) => org.describe(object),
        ("PATCH", ["composite", "sobjects", object, field]) => {
            org.collections_upsert(object, field, body)
        }
        ("PATCH", ["composite", "sobjects"]) => org.collections_update(body),
        ("DELETE", ["composite", "sobjects"]) => {
            let ids = param("ids");
            let ids: Vec<&str> = ids.split(',').filter(|i| !i.is_empty()).collect();
            org.collections_delete(&ids)
        }
        _ => (
            StatusCode::NOT_FOUND,
            error(
                "NOT_FOUND",
                &format!(
                    "The requested resource does not exist (the simulator's composite runs queries and collections): {method} {path}"
                ),
            ),
        ),
    }
}
