//! SOSL phone searches, `GET /services/data/vXX.X/search?q=FIND {…} IN PHONE FIELDS RETURNING
//! Contact(Id, Phone, …), Lead(…) [LIMIT n]`, as the SOSL reference describes them, in the
//! strictest reading where it leaves room:
//! - Only this shape is understood (the one wa2crm sends); anything else is 400
//!   `MALFORMED_SEARCH` (a `StatusCode` of the API's error list).
//! - The search query is terms joined by `OR`, each bare or in double quotes. SOSL's reserved
//!   characters (`? & | ! { } [ ] ( ) ^ ~ * : \ " ' + -`) must be escaped with `\`; an
//!   unescaped one is a `MALFORMED_SEARCH` (SOSL reference, "Reserved Characters").
//! - A search query longer than 10,000 characters returns no rows (SOSL reference, FIND).
//! - `IN PHONE FIELDS` compares the digits of the objects' phone-typed fields with a term's
//!   digits: formatting is ignored ("4155551212" finds "(415) 555-1212", the API guide's phone
//!   search sample), and a term must equal the stored digits whole (the strict reading: no
//!   suffix or partial matches).
//! - At most 2,000 rows (`LIMIT` up to 2,000, the reference's maximum); a field in `RETURNING`
//!   the user cannot see is `INVALID_FIELD`.
//! - The search index lags behind writes: "the search indexing servers ... asynchronously
//!   process queue entries of newly created or modified data ... fewer than 9,000 records in
//!   1 to 3 minutes" (Salesforce's search architecture as quoted on Salesforce StackExchange
//!   #62826; Salesforce developer blog, 2014-02, "Beware of Lags in Search Indexing"). A record
//!   written through the API is invisible to SOSL for the org's search lag; one an admin
//!   entered is indexed.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::model::{Answer, Org};

/// How long a record written through the API stays out of SOSL results unless a test says
/// otherwise: the low end of the "1 to 3 minutes" quoted above.
pub const DEFAULT_SEARCH_LAG: Duration = Duration::from_secs(60);

const MAX_ROWS: usize = 2000;
const MAX_QUERY: usize = 10_000;
const RESERVED: &str = "?&|!{}[]()^~*:\\\"'+-";

fn malformed(why: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        json!([{"message": why, "errorCode": "MALFORMED_SEARCH"}]),
    )
}

/// The digits of each term of `FIND {…}`, or why the query is malformed.
fn terms(query: &str) -> Result<Vec<String>, Answer> {
    let mut out = Vec::new();
    for term in query.split(" OR ") {
        let term = term.trim();
        let inner = term
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(term);
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if RESERVED.contains(c) {
                return Err(malformed(&format!(
                    "Reserved character '{c}' in the search term {term:?} must be escaped"
                )));
            }
        }
        let digits: String = inner.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            out.push(digits);
        }
    }
    Ok(out)
}

/// `Obj(f1, f2), Obj2(f3)` → [(Obj, [f1, f2]), (Obj2, [f3])].
fn returning(spec: &str) -> Option<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    let mut rest = spec.trim();
    while !rest.is_empty() {
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        let object = rest[..open].trim().to_owned();
        let fields = rest[open + 1..close]
            .split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        out.push((object, fields));
        rest = rest[close + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim();
    }
    (!out.is_empty()).then_some(out)
}

impl Org {
    pub fn search(&self, sosl: &str) -> Answer {
        let s = sosl.trim();
        let Some(rest) = s.strip_prefix("FIND {") else {
            return malformed("expected FIND {…}");
        };
        let Some(close) = rest.find("} IN PHONE FIELDS RETURNING ") else {
            return malformed("expected } IN PHONE FIELDS RETURNING …");
        };
        let query = &rest[..close];
        let after = &rest[close + "} IN PHONE FIELDS RETURNING ".len()..];
        let (spec, limit) = match after.rsplit_once(" LIMIT ") {
            Some((spec, n)) => match n.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_ROWS).contains(&n) => (spec, n),
                _ => return malformed("LIMIT must be 1 to 2000"),
            },
            None => (after, MAX_ROWS),
        };
        let Some(objects) = returning(spec) else {
            return malformed("expected RETURNING Object(field, …)");
        };
        let terms = match terms(query) {
            Ok(t) => t,
            Err(answer) => return answer,
        };
        let mut rows: Vec<Value> = Vec::new();
        for (object, fields) in &objects {
            let Some(o) = self.objects.get(object) else {
                return (
                    StatusCode::BAD_REQUEST,
                    json!([{"message": format!("sObject type '{object}' is not supported."),
                            "errorCode": "INVALID_TYPE"}]),
                );
            };
            for f in fields {
                if !o.fields.get(f).is_some_and(|d| d.visible) {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!([{"message": format!("No such column '{f}' on entity '{object}'."),
                                "errorCode": "INVALID_FIELD"}]),
                    );
                }
            }
            if query.len() > MAX_QUERY {
                continue;
            }
            let phones: Vec<&str> = o
                .fields
                .values()
                .filter(|d| d.kind == "phone" && d.visible)
                .map(|d| d.name.as_str())
                .collect();
            for (id, record) in &o.records {
                if o.written_at
                    .get(id)
                    .is_some_and(|at| at.elapsed() < self.search_lag)
                {
                    continue;
                }
                let hit = phones.iter().any(|p| {
                    record.get(*p).and_then(Value::as_str).is_some_and(|v| {
                        let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                        terms.contains(&digits)
                    })
                });
                if hit && rows.len() < limit {
                    let mut row = Map::new();
                    row.insert(
                        "attributes".into(),
                        json!({"type": object, "url": format!("/services/data/v62.0/sobjects/{object}/{id}")}),
                    );
                    for f in fields {
                        row.insert(f.clone(), record.get(f).cloned().unwrap_or(Value::Null));
                    }
                    rows.push(Value::Object(row));
                }
            }
        }
        (StatusCode::OK, json!({"searchRecords": rows}))
    }

    /// A record as an admin enters it (seeding a test org): validated like none, indexed at
    /// once. Its Id.
    pub fn add_record(&mut self, object: &str, values: Map<String, Value>) -> String {
        let id = self.new_id(object);
        if let Some(o) = self.objects.get_mut(object) {
            o.enter(&id, values);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_digits_and_reserved_characters_must_be_escaped() {
        assert_eq!(
            terms("4915112345678 OR \"015112345678\"").ok(),
            Some(vec!["4915112345678".into(), "015112345678".into()])
        );
        assert!(terms("+4915112345678").is_err());
        assert_eq!(
            terms("\\+4915112345678").ok(),
            Some(vec!["4915112345678".into()])
        );
        assert_eq!(
            returning("Contact(Id, Phone), Lead(Id)"),
            Some(vec![
                ("Contact".into(), vec!["Id".into(), "Phone".into()]),
                ("Lead".into(), vec!["Id".into()])
            ])
        );
    }
}
