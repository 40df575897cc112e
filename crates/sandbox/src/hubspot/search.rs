//! `POST /crm/v3/objects/{objectType}/search`, as HubSpot's CRM search guide and the v3 spec
//! describe it, in the strictest reading where they leave room:
//! - `filterGroups` are ORed, the filters of a group ANDed: at most 5 groups, 10 filters in a
//!   group and 25 in all (changelog 2024-08-26, "Expanded Filtering Capabilities"); more is a 400.
//! - Operators `EQ`, `NEQ`, `IN`, `NOT_IN`, `HAS_PROPERTY`, `NOT_HAS_PROPERTY`, `CONTAINS_TOKEN`,
//!   `NOT_CONTAINS_TOKEN`, `LT`, `LTE`, `GT`, `GTE`. Values compare as the stored strings, with
//!   no normalization of a phone number's formatting (the search guide documents none; the
//!   strict reading). `IN` on a string property takes lowercase values only (the
//!   search guide: "values must be lowercase"); an uppercase value matches nothing.
//! - An `IN` takes at most 100 values (no documented figure; the strict reading, see
//!   [`MAX_IN_VALUES`]).
//! - `limit` up to 200 (the v3 spec's description); more is a 400. `after` pages; past 10,000
//!   results a 400 (AWS Glue's HubSpot connector notes: search is "limited to 10,000 total
//!   results for any given query", more "will result in a 400 error").
//! - Results carry what a read carries (`ALWAYS_RETURNED` and the properties asked for).
//! - Search is eventually consistent: a record written through the API is invisible to search
//!   for the portal's search lag. Okta's HubSpot connector reference: "Search results may
//!   exclude newly created and updated HubSpot CRM objects ... wait 10 seconds after using a
//!   Create card"; the simulator hides a record for the whole lag after any write.
//! - Its own per-second limit and no ten-second window: see `gate::Bucket::Search`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::model::{Answer, Portal, canonical_type, error_body};

/// How long a record written through the API stays out of search results unless a test says
/// otherwise: HubSpot gives no figure; Okta's connector reference says to wait 10 s after a create.
pub const DEFAULT_SEARCH_LAG: Duration = Duration::from_secs(10);

const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;
const MAX_LIMIT: u64 = 200;
const MAX_RESULTS: u64 = 10_000;
/// Values of one `IN`: HubSpot documents no limit; the simulator takes the 100 of a batch (the
/// strict reading of an unstated limit), and wa2crm stays under it.
pub const MAX_IN_VALUES: usize = 100;

fn bad(message: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        error_body("VALIDATION_ERROR", message),
    )
}

/// One filter, checked against the type's properties.
struct Filter {
    property: String,
    operator: String,
    value: Option<String>,
    values: Vec<String>,
}

fn parse_filter(f: &Value, known: &dyn Fn(&str) -> bool) -> Result<Filter, Answer> {
    let property = f
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("filter.propertyName is required"))?;
    if !known(property) {
        return Err(bad(&format!(
            "There was a problem with the request: property {property} does not exist"
        )));
    }
    let operator = f
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("filter.operator is required"))?;
    let value = f.get("value").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let values: Vec<String> = f
        .get("values")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    match operator {
        "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN"
            if value.is_none() =>
        {
            Err(bad(&format!("operator {operator} needs a value")))
        }
        "IN" | "NOT_IN" if values.is_empty() => {
            Err(bad(&format!("operator {operator} needs values")))
        }
        "IN" | "NOT_IN" if values.len() > MAX_IN_VALUES => Err(bad(&format!(
            "operator {operator} takes at most {MAX_IN_VALUES} values"
        ))),
        "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN"
        | "IN" | "NOT_IN" | "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => Ok(Filter {
            property: property.to_owned(),
            operator: operator.to_owned(),
            value,
            values,
        }),
        other => Err(bad(&format!("Unknown operator {other}"))),
    }
}

/// The words of a value, as `CONTAINS_TOKEN` sees them: split at anything not a letter or digit.
fn tokens(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

fn token_matches(stored: &str, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    match wanted.strip_suffix('*') {
        Some(prefix) => tokens(stored).any(|t| t.starts_with(prefix)),
        None => tokens(stored).any(|t| t == wanted),
    }
}

fn compare(stored: &str, wanted: &str) -> Option<std::cmp::Ordering> {
    match (stored.parse::<f64>(), wanted.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(stored.cmp(wanted)),
    }
}

impl Filter {
    fn matches(&self, stored: Option<&str>, is_string: bool) -> bool {
        use std::cmp::Ordering::*;
        let value = self.value.as_deref().unwrap_or("");
        match (self.operator.as_str(), stored) {
            ("HAS_PROPERTY", s) => s.is_some(),
            ("NOT_HAS_PROPERTY", s) => s.is_none(),
            ("EQ", Some(s)) => s == value,
            ("NEQ", s) => s != Some(value),
            // Lowercase values only on a string property: the stored value is compared
            // lowercased, and a value with capitals can never equal it.
            ("IN", Some(s)) if is_string => self.values.iter().any(|v| *v == s.to_lowercase()),
            ("IN", Some(s)) => self.values.iter().any(|v| v == s),
            ("NOT_IN", s) => !s.is_some_and(|s| self.values.iter().any(|v| v == s)),
            ("CONTAINS_TOKEN", Some(s)) => token_matches(s, value),
            ("NOT_CONTAINS_TOKEN", s) => !s.is_some_and(|s| token_matches(s, value)),
            ("LT", Some(s)) => compare(s, value) == Some(Less),
            ("LTE", Some(s)) => matches!(compare(s, value), Some(Less | Equal)),
            ("GT", Some(s)) => compare(s, value) == Some(Greater),
            ("GTE", Some(s)) => matches!(compare(s, value), Some(Greater | Equal)),
            _ => false,
        }
    }
}

impl Portal {
    pub fn search(&self, t: &str, body: &Value, now: Instant) -> Answer {
        let o = match self.object_type(t) {
            Ok(o) => o,
            Err(a) => return a,
        };
        let tname = canonical_type(t);
        let known = |p: &str| o.properties.contains_key(p);
        let groups = body
            .get("filterGroups")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if groups.len() > MAX_GROUPS {
            return bad(&format!(
                "Too many filter groups ({}); the limit is {MAX_GROUPS}",
                groups.len()
            ));
        }
        let mut parsed: Vec<Vec<Filter>> = Vec::new();
        let mut total_filters = 0;
        for g in &groups {
            let filters = g
                .get("filters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if filters.len() > MAX_FILTERS_PER_GROUP {
                return bad(&format!(
                    "Too many filters in a group ({}); the limit is {MAX_FILTERS_PER_GROUP}",
                    filters.len()
                ));
            }
            total_filters += filters.len();
            let mut group = Vec::new();
            for f in &filters {
                match parse_filter(f, &known) {
                    Ok(f) => group.push(f),
                    Err(a) => return a,
                }
            }
            parsed.push(group);
        }
        if total_filters > MAX_FILTERS {
            return bad(&format!(
                "Too many filters ({total_filters}); the limit is {MAX_FILTERS} in all"
            ));
        }
        let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10);
        if limit > MAX_LIMIT {
            return bad(&format!("limit must be at most {MAX_LIMIT}"));
        }
        let after: u64 = match body.get("after") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_str().map_or_else(|| v.as_u64(), |s| s.parse().ok()) {
                Some(a) => a,
                None => return bad("after must be a paging cursor from an earlier answer"),
            },
        };
        if after + limit > MAX_RESULTS {
            return bad(&format!(
                "Search results are limited to {MAX_RESULTS}; narrow the filters"
            ));
        }
        let wanted: Vec<&str> = body
            .get("properties")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let is_string = |p: &str| {
            o.properties
                .get(p)
                .is_some_and(|d| d.kind == "string" || d.kind == "phone_number")
        };
        let visible = |id: &u64| {
            o.written_at
                .get(id)
                .is_none_or(|at| now.duration_since(*at) >= self.search_lag)
        };
        let mut hits: Vec<u64> = o
            .records
            .iter()
            .filter(|(id, _)| visible(id))
            .filter(|(_, props)| {
                parsed.is_empty()
                    || parsed.iter().any(|group| {
                        group.iter().all(|f| {
                            f.matches(
                                props.get(&f.property).map(String::as_str),
                                is_string(&f.property),
                            )
                        })
                    })
            })
            .map(|(id, _)| *id)
            .collect();
        if let Some(sort) = body
            .get("sorts")
            .and_then(Value::as_array)
            .and_then(|s| s.first())
        {
            // The search guide's form, `{"propertyName", "direction"}`; the v3 spec types sorts
            // as strings, taken as a property name in ascending order.
            let property = sort
                .as_str()
                .or_else(|| sort.get("propertyName").and_then(Value::as_str))
                .unwrap_or("hs_object_id");
            let descending = sort.get("direction").and_then(Value::as_str) == Some("DESCENDING");
            let key = |id: &u64| {
                let props = o.returned(&tname, *id, &[property]);
                props
                    .get(property)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            hits.sort_by_key(key);
            if descending {
                hits.reverse();
            }
        }
        let total = hits.len() as u64;
        let page: Vec<Value> = hits
            .iter()
            .skip(after as usize)
            .take(limit as usize)
            .map(|id| {
                let (created, updated) = o.times(*id);
                json!({"id": id.to_string(), "properties": o.returned(&tname, *id, &wanted),
                    "createdAt": created, "updatedAt": updated, "archived": false})
            })
            .collect();
        let mut answer = json!({"total": total, "results": page});
        if after + limit < total {
            answer["paging"] = json!({"next": {"after": (after + limit).to_string()}});
        }
        (StatusCode::OK, answer)
    }
}
