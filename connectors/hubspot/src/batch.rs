//! Batch calls and their per-item results: `batch/upsert` by a unique property (200, or 207 with
//! `errors[]`), split in halves when HubSpot refuses a batch as a whole so that one bad input
//! fails only its own job, and v4 association batches.

use std::future::Future;
use std::pin::Pin;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wa2crm_core::{Error, Result};

use crate::Props;
use crate::api::AnswerExt;
use crate::api::{Api, describe};

/// HubSpot's largest batch.
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Clone)]
pub struct Input {
    /// The unique property's value (a phone number, a message id).
    pub id: String,
    pub properties: Props,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    pub created: bool,
}

fn item_failure(object: &str, error: &Value) -> Error {
    let category = error.get("category").and_then(Value::as_str).unwrap_or("");
    let message = format!("HubSpot refused the {object} record: {}", describe(error));
    match category {
        "RATE_LIMITS" | "INTERNAL_ERROR" | "SERVICE_UNAVAILABLE" | "LOCKED" => {
            Error::transient(message)
        }
        _ => Error::permanent(message),
    }
}

/// Upserts by `id_property`; one result per input, in order.
pub fn upsert<'a>(
    api: &'a Api,
    object: &'a str,
    id_property: &'a str,
    inputs: &'a [Input],
) -> Pin<Box<dyn Future<Output = Vec<Result<Upserted>>> + Send + 'a>> {
    Box::pin(async move {
        if inputs.is_empty() {
            return Vec::new();
        }
        if inputs.len() > MAX_BATCH {
            let mut out = Vec::with_capacity(inputs.len());
            for chunk in inputs.chunks(MAX_BATCH) {
                out.extend(upsert(api, object, id_property, chunk).await);
            }
            return out;
        }
        let body = json!({"inputs": inputs.iter().enumerate().map(|(i, input)| json!({
            "idProperty": id_property,
            "id": input.id,
            "properties": input.properties,
            "objectWriteTraceId": i.to_string(),
        })).collect::<Vec<_>>()});
        let answer = match api
            .post(&format!("/crm/v3/objects/{object}/batch/upsert"), &body)
            .await
        {
            Ok(a) => a,
            Err(e) => return inputs.iter().map(|_| Err(e.for_another())).collect(),
        };
        match answer.status {
            StatusCode::OK | StatusCode::CREATED | StatusCode::MULTI_STATUS => {
                per_item(object, id_property, inputs, &answer.body)
            }
            StatusCode::BAD_REQUEST if inputs.len() > 1 => {
                // Refused as a whole: too many inputs, or one input HubSpot will not take. Halves
                // find the culprit in log2(n) more calls and let the rest through.
                tracing::debug!(
                    object,
                    n = inputs.len(),
                    "HubSpot refused a batch; splitting it: {}",
                    answer.message()
                );
                let (a, b) = inputs.split_at(inputs.len() / 2);
                let mut out = upsert(api, object, id_property, a).await;
                out.extend(upsert(api, object, id_property, b).await);
                out
            }
            status => {
                let e = Error::permanent(format!(
                    "HubSpot refused the {object} upsert ({status}): {}",
                    answer.message()
                ));
                inputs.iter().map(|_| Err(e.for_another())).collect()
            }
        }
    })
}

fn per_item(
    object: &str,
    id_property: &str,
    inputs: &[Input],
    body: &Value,
) -> Vec<Result<Upserted>> {
    let mut out: Vec<Option<Result<Upserted>>> = inputs.iter().map(|_| None).collect();
    let index_of = |item: &Value| -> Vec<usize> {
        if let Some(i) = item
            .get("objectWriteTraceId")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|i| *i < inputs.len())
        {
            return vec![i];
        }
        // Without a trace id: by the unique property's value, or the ids an error names.
        let mut keys: Vec<&str> = Vec::new();
        if let Some(v) = item
            .get("properties")
            .and_then(|p| p.get(id_property))
            .and_then(Value::as_str)
        {
            keys.push(v);
        }
        if let Some(ctx) = item.get("context").and_then(Value::as_object) {
            for v in ctx.values().filter_map(Value::as_array).flatten() {
                if let Some(s) = v.as_str() {
                    keys.push(s);
                }
            }
        }
        inputs
            .iter()
            .enumerate()
            .filter(|(_, input)| keys.contains(&input.id.as_str()))
            .map(|(i, _)| i)
            .collect()
    };
    for result in body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = result.get("id").and_then(Value::as_str) else {
            continue;
        };
        let created = result.get("new").and_then(Value::as_bool).unwrap_or(false);
        for i in index_of(result) {
            out[i] = Some(Ok(Upserted {
                id: id.to_owned(),
                created,
            }));
        }
    }
    for error in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for i in index_of(error) {
            out[i] = Some(Err(item_failure(object, error)));
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(Error::transient(format!(
                    "HubSpot's {object} upsert answer has no result for this record"
                )))
            })
        })
        .collect()
}

/// Associates `pairs` (from id, to id): with `type_id` as a HUBSPOT_DEFINED label (202: note →
/// contact), or the default association when `None`. Idempotent: an association that exists
/// is answered like a new one.
pub async fn associate(
    api: &Api,
    from: &str,
    to: &str,
    pairs: &[(String, String)],
    type_id: Option<u32>,
) -> Vec<Result<()>> {
    let mut out = Vec::with_capacity(pairs.len());
    // In order; a chunk HubSpot refuses as a whole is sent again in halves.
    let mut pending: Vec<&[(String, String)]> = pairs.chunks(MAX_BATCH).rev().collect();
    while let Some(chunk) = pending.pop() {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|(f, t)| match type_id {
                Some(ty) => json!({"from": {"id": f}, "to": {"id": t},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ty}]}),
                None => json!({"from": {"id": f}, "to": {"id": t}}),
            })
            .collect();
        let path = match type_id {
            Some(_) => format!("/crm/v4/associations/{from}/{to}/batch/create"),
            None => format!("/crm/v4/associations/{from}/{to}/batch/associate/default"),
        };
        let answer = match api.post(&path, &json!({"inputs": inputs})).await {
            Ok(a) => a,
            Err(e) => {
                out.extend(chunk.iter().map(|_| Err(e.for_another())));
                continue;
            }
        };
        if answer.status == StatusCode::BAD_REQUEST && chunk.len() > 1 {
            let (a, b) = chunk.split_at(chunk.len() / 2);
            pending.push(b);
            pending.push(a);
            continue;
        }
        if !answer.status.is_success() {
            let e = Error::permanent(format!(
                "HubSpot refused to associate {from} with {to}: {}",
                answer.message()
            ));
            out.extend(chunk.iter().map(|_| Err(e.for_another())));
            continue;
        }
        let failed: Vec<(String, String)> = answer
            .body
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|e| {
                let ids: Vec<String> = e
                    .get("context")
                    .and_then(|c| c.get("fromObjectId"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let message = describe(e);
                ids.into_iter().map(move |id| (id, message.clone()))
            })
            .collect();
        for (f, _) in chunk {
            match failed.iter().find(|(id, _)| id == f) {
                Some((_, message)) => out.push(Err(Error::permanent(format!(
                    "HubSpot refused to associate {from} {f} with a {to}: {message}"
                )))),
                None => out.push(Ok(())),
            }
        }
    }
    out
}
