//! Composite: several subrequests in one `POST /composite`, which Salesforce counts as one API
//! call against the daily allocation. wa2crm sends only reads and upserts by external ID in it,
//! so the whole call is safe to send again, and `allOrNone` stays false: one subrequest's failure
//! does not undo the others.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wa2crm_core::{Error, Result};

use crate::Salesforce;
use crate::api::describe;

/// Salesforce's limit on query and sObject Collections subrequests in one composite call.
pub const MAX_COLLECTION_SUBREQUESTS: usize = 5;

/// One subrequest: a path under `/services/data/vXX.X` and its body.
pub struct Subrequest {
    pub reference: &'static str,
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

/// A subrequest's answer: the whole call went through, this part may still have failed.
pub struct SubAnswer {
    pub status: StatusCode,
    pub body: Value,
}

impl SubAnswer {
    /// The subrequest as a whole: an error a job can carry when it did not succeed.
    pub fn check(&self, what: &str) -> Result<&Value> {
        if self.status.is_success() {
            return Ok(&self.body);
        }
        let message = format!(
            "{what}: Salesforce answered {}: {}",
            self.status,
            describe(&self.body)
        );
        Err(if self.status.is_server_error() {
            Error::transient(message)
        } else {
            Error::permanent(message)
        })
    }
}

impl Salesforce {
    /// Sends the N subrequests in one call; one answer per subrequest, in order.
    pub(crate) async fn composite<const N: usize>(
        &self,
        subrequests: [Subrequest; N],
    ) -> Result<[SubAnswer; N]> {
        const { assert!(N <= MAX_COLLECTION_SUBREQUESTS) };
        let answers = self.composite_all(Vec::from(subrequests)).await?;
        let count = answers.len();
        answers.try_into().map_err(|_| {
            Error::transient(format!(
                "Salesforce's composite answer has {count} results for {N} subrequests"
            ))
        })
    }

    /// The same for as many subrequests as a call needs (at most
    /// [`MAX_COLLECTION_SUBREQUESTS`] queries and collections).
    pub(crate) async fn composite_all(
        &self,
        subrequests: Vec<Subrequest>,
    ) -> Result<Vec<SubAnswer>> {
        let n = subrequests.len();
        if n > MAX_COLLECTION_SUBREQUESTS {
            return Err(Error::permanent(format!(
                "{n} subrequests exceed Salesforce's {MAX_COLLECTION_SUBREQUESTS} a composite call"
            )));
        }
        let requests: Vec<Value> = subrequests
            .into_iter()
            .map(|s| {
                let mut r = json!({
                    "method": s.method.as_str(),
                    "url": format!("{}{}", self.api.data_path, s.path),
                    "referenceId": s.reference,
                });
                if let Some(body) = s.body {
                    r["body"] = body;
                }
                r
            })
            .collect();
        let body = json!({"allOrNone": false, "compositeRequest": requests});
        let answer = self
            .api
            .call(Method::POST, "/composite", Some(&body), true)
            .await?;
        if !answer.status.is_success() {
            return Err(Error::permanent(format!(
                "Salesforce refused the composite call ({}): {}",
                answer.status,
                describe(&answer.body)
            )));
        }
        let answers: Vec<SubAnswer> = answer
            .body
            .get("compositeResponse")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|p| SubAnswer {
                status: p
                    .get("httpStatusCode")
                    .and_then(Value::as_u64)
                    .and_then(|s| StatusCode::from_u16(s as u16).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body: p.get("body").cloned().unwrap_or(Value::Null),
            })
            .collect();
        if answers.len() != n {
            return Err(Error::transient(format!(
                "Salesforce's composite answer has {} results for {n} subrequests",
                answers.len()
            )));
        }
        Ok(answers)
    }
}
