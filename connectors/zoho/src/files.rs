//! The file attached to its media record (`attach = true`), so it opens inside Zoho: streamed from
//! the company's storage as a multipart upload, up to `max_attachment_bytes` (Zoho takes 20 MB; a
//! larger file keeps its link only). `state file:{message_id}` is `writing` before the upload
//! and `done` after; a retry that finds `writing` lists the record's attachments first, so no file
//! is attached twice.

use reqwest::multipart::{Form, Part};
use wa2crm_core::{Delivered, Error, MediaRecord, MediaSource, Result};

use crate::Zoho;
use crate::rules::describe;

fn file_key(r: &MediaRecord) -> String {
    format!("file:{}", r.message_id)
}

impl Zoho {
    pub(crate) async fn attach_files(&self, batch: &[MediaRecord], out: &mut [Result<Delivered>]) {
        let Some(media) = self.media.clone() else {
            tracing::warn!(connector = %self.name, "attach = true, but this process cannot read the stored files; the records keep their links only.");
            return;
        };
        for (n, r) in batch.iter().enumerate() {
            let Ok(d) = &out[n] else { continue };
            if r.size_bytes > self.config.max_attachment_bytes {
                tracing::info!(connector = %self.name, message_id = %r.message_id, bytes = r.size_bytes, "The file is over max_attachment_bytes; its record keeps the link only.");
                continue;
            }
            let record = d.crm_id.clone();
            if let Err(e) = self.attach_once(media.as_ref(), r, &record).await {
                out[n] = Err(e);
            }
        }
    }

    async fn attach_once(
        &self,
        media: &dyn MediaSource,
        r: &MediaRecord,
        record: &str,
    ) -> Result<()> {
        let key = file_key(r);
        let name = r.stored_file_name().to_owned();
        match self.state.get_state(&self.name, &key).await? {
            Some(s) if s == "done" => return Ok(()),
            Some(_) if self.attachment_names(record).await?.contains(&name) => {
                let _ = self.state.put_state(&self.name, &key, "done").await;
                return Ok(());
            }
            _ => {}
        }
        self.state.put_state(&self.name, &key, "writing").await?;
        let make = || {
            let name = name.clone();
            Box::pin(async move {
                let body = media.open(r).await?;
                Ok(Form::new().part(
                    "file",
                    Part::stream_with_length(reqwest::Body::wrap_stream(body.stream), body.size)
                        .file_name(name)
                        .mime_str("application/octet-stream")
                        .map_err(|e| Error::permanent(format!("multipart: {e}")))?,
                ))
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<Form>> + Send + '_>>
        };
        let path = format!("/{}/{record}/Attachments", self.config.module);
        let a = self.api.post_multipart_once(&path, &make).await?;
        let ok = a.body["data"][0]["status"] == "success";
        if a.status.is_success() && ok {
            let _ = self.state.put_state(&self.name, &key, "done").await;
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "the media record is written, but Zoho refused its attachment {name}: {}",
                describe(&a.body)
            )))
        }
    }

    /// The file names attached to a record.
    pub(crate) async fn attachment_names(&self, record: &str) -> Result<Vec<String>> {
        Ok(self
            .attachments(record)
            .await?
            .into_iter()
            .map(|(_, name)| name)
            .collect())
    }

    /// A record's attachments as (id, file name).
    pub(crate) async fn attachments(&self, record: &str) -> Result<Vec<(String, String)>> {
        let path = format!(
            "/{}/{record}/Attachments?fields=id,File_Name",
            self.config.module
        );
        let a = self.api.get(&path).await?;
        match a.status.as_u16() {
            204 => Ok(Vec::new()),
            200 => Ok(a.body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| {
                    Some((
                        x["id"].as_str()?.to_owned(),
                        x["File_Name"].as_str()?.to_owned(),
                    ))
                })
                .collect()),
            status => Err(Error::permanent(format!(
                "Zoho refused to list the attachments of {record} ({status}: {})",
                describe(&a.body)
            ))),
        }
    }
}
