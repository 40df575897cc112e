//! `upload = true`: each media also goes into HubSpot Files, private, and is attached to its note
//! (`hs_attachment_ids`), so it opens from the timeline without leaving HubSpot.
//!
//! The file is named by its sha256 in `upload_folder`, and uploaded with
//! `duplicateValidationStrategy = RETURN_EXISTING` in that folder: a re-run gets the same file back
//! instead of a second copy. The bytes stream from the company's storage; nothing is held in
//! memory.

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use wa2crm_core::{Error, MediaRecord, MediaSource, Result};

use crate::HubSpot;
use crate::api::AnswerExt;

/// Uploads at once per batch: the request budget paces them anyway; this bounds open streams.
const PARALLEL_UPLOADS: usize = 4;

impl HubSpot {
    /// File ids, one result per record.
    pub(crate) async fn upload_files(&self, records: &[&MediaRecord]) -> Vec<Result<String>> {
        let Some(media) = self.media.clone() else {
            return records
                .iter()
                .map(|_| {
                    Err(Error::permanent(
                        "upload = true, but this process has no storage to read the files from",
                    ))
                })
                .collect();
        };
        let uploads: Vec<_> = (0..records.len())
            .map(|i| {
                let media = media.clone();
                let record: &MediaRecord = records[i];
                async move { self.upload_one(media.as_ref(), record).await }
            })
            .collect();
        futures_util::stream::iter(uploads)
            .buffered(PARALLEL_UPLOADS)
            .collect()
            .await
    }

    async fn upload_one(&self, media: &dyn MediaSource, r: &MediaRecord) -> Result<String> {
        let file_name = r.stored_file_name().to_owned();
        let options = json!({
            "access": "PRIVATE",
            "overwrite": false,
            "duplicateValidationStrategy": "RETURN_EXISTING",
            "duplicateValidationScope": "EXACT_FOLDER",
        })
        .to_string();
        let folder = self.config.upload_folder.clone();
        let mime = r.mime_type.clone();
        let make = || {
            let (file_name, options, folder, mime) = (
                file_name.clone(),
                options.clone(),
                folder.clone(),
                mime.clone(),
            );
            Box::pin(async move {
                let body = media.open(r).await?;
                let part =
                    Part::stream_with_length(reqwest::Body::wrap_stream(body.stream), body.size)
                        .file_name(file_name.clone())
                        .mime_str(&mime)
                        .map_err(|e| Error::permanent(format!("MIME type {mime}: {e}")))?;
                Ok(Form::new()
                    .part("file", part)
                    .text("fileName", file_name)
                    .text("folderPath", folder)
                    .text("options", options))
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<Form>> + Send + '_>>
        };
        let answer = self.api.post_multipart("/files/v3/files", &make).await?;
        if !answer.status.is_success() {
            return Err(Error::permanent(format!(
                "HubSpot Files refused {file_name}: {}",
                answer.message()
            )));
        }
        match answer.body.get("id") {
            Some(Value::String(id)) => Ok(id.clone()),
            Some(Value::Number(id)) => Ok(id.to_string()),
            _ => Err(Error::transient("HubSpot Files answered without a file id")),
        }
    }

    /// Deletes uploaded files for good (erasure).
    pub(crate) async fn delete_files(&self, ids: &[String]) -> Result<usize> {
        let mut n = 0;
        for id in ids {
            let a = self
                .api
                .call(
                    reqwest::Method::DELETE,
                    &format!("/files/v3/files/{id}/gdpr-delete"),
                    None,
                )
                .await?;
            match a.status.as_u16() {
                200..=299 => n += 1,
                404 => {}
                _ => {
                    return Err(Error::permanent(format!(
                        "deleting HubSpot file {id}: {}",
                        a.message()
                    )));
                }
            }
        }
        Ok(n)
    }
}
