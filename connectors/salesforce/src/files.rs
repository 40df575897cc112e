//! `files = true`: each media also goes into Salesforce Files, as a ContentVersion uploaded in
//! multipart form (streamed from the company's storage) with `FirstPublishLocationId` = its
//! media record, so it previews and plays on the record.
//!
//! Creating a ContentVersion is not idempotent, so an upload is never retried blindly: before
//! uploading, one query asks which media records already have their file (an earlier attempt may
//! have landed after its answer was lost), and only the others are sent.

use std::collections::HashSet;

use futures_util::StreamExt;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use wa2crm_core::{Error, MediaRecord, MediaSource, Result};

use crate::Salesforce;
use crate::api::describe;
use crate::writes::{MAX_RECORDS, query_path, soql_in};

const PARALLEL_UPLOADS: usize = 4;

impl Salesforce {
    /// Uploads the files of `delivered` (record, media record id); one result per item.
    pub(crate) async fn upload_files(
        &self,
        delivered: &[(&MediaRecord, String)],
    ) -> Vec<Result<()>> {
        let Some(media) = self.media.clone() else {
            return delivered
                .iter()
                .map(|_| {
                    Err(Error::permanent(
                        "files = true, but this process has no storage to read the files from",
                    ))
                })
                .collect();
        };
        let ids: Vec<&str> = delivered.iter().map(|(_, id)| id.as_str()).collect();
        let mut have: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(MAX_RECORDS) {
            let soql = format!(
                "SELECT Id, FirstPublishLocationId FROM ContentVersion WHERE FirstPublishLocationId IN ({})",
                soql_in(chunk)
            );
            match self
                .api
                .call(Method::GET, &query_path(&soql), None, true)
                .await
            {
                Ok(a) if a.status.is_success() => {
                    for r in a
                        .body
                        .get("records")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(id) = r.get("FirstPublishLocationId").and_then(Value::as_str) {
                            have.insert(id.to_owned());
                        }
                    }
                }
                Ok(a) => {
                    let e = Error::permanent(format!(
                        "looking up ContentVersions: {}",
                        describe(&a.body)
                    ));
                    return delivered
                        .iter()
                        .map(|_| Err(Error::new(e.kind(), e.message())))
                        .collect();
                }
                Err(e) => {
                    return delivered
                        .iter()
                        .map(|_| Err(Error::new(e.kind(), e.message())))
                        .collect();
                }
            }
        }
        let uploads: Vec<_> = (0..delivered.len())
            .map(|i| {
                let (record, id): (&MediaRecord, &str) = (delivered[i].0, delivered[i].1.as_str());
                let media = media.clone();
                let done = have.contains(id);
                async move {
                    if done {
                        return Ok(());
                    }
                    self.upload_one(media.as_ref(), record, id).await
                }
            })
            .collect();
        futures_util::stream::iter(uploads)
            .buffered(PARALLEL_UPLOADS)
            .collect()
            .await
    }

    async fn upload_one(
        &self,
        media: &dyn MediaSource,
        r: &MediaRecord,
        record_id: &str,
    ) -> Result<()> {
        let name = r.stored_file_name().to_owned();
        let entity =
            json!({"PathOnClient": name, "Title": name, "FirstPublishLocationId": record_id})
                .to_string();
        let make = || {
            let (name, entity) = (name.clone(), entity.clone());
            Box::pin(async move {
                let body = media.open(r).await?;
                Ok(Form::new()
                    .part(
                        "entity_content",
                        Part::text(entity)
                            .mime_str("application/json")
                            .map_err(|e| Error::permanent(format!("multipart: {e}")))?,
                    )
                    .part(
                        "VersionData",
                        Part::stream_with_length(
                            reqwest::Body::wrap_stream(body.stream),
                            body.size,
                        )
                        .file_name(name)
                        .mime_str("application/octet-stream")
                        .map_err(|e| Error::permanent(format!("multipart: {e}")))?,
                    ))
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<Form>> + Send + '_>>
        };
        let a = self
            .api
            .post_multipart_once("/sobjects/ContentVersion", &make)
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "Salesforce Files refused {name}: {}",
                describe(&a.body)
            )))
        }
    }
}
