//! The stored files, as connectors read them back to upload them into a CRM.

use std::sync::Arc;

use async_trait::async_trait;
use wa2crm_core::{Error, MediaBody, MediaRecord, MediaSource, Result};
use wa2crm_media::store::Storage;

pub struct StoredMedia(pub Arc<Storage>);

#[async_trait]
impl MediaSource for StoredMedia {
    async fn open(&self, record: &MediaRecord) -> Result<MediaBody> {
        let key = self.0.key_of(&record.storage_uri).ok_or_else(|| {
            Error::permanent(format!(
                "{} is not in the configured storage (storage.url changed?)",
                record.storage_uri
            ))
        })?;
        match self.0.get_stream(&key).await? {
            Some((size, stream)) => Ok(MediaBody { size, stream }),
            None => Err(Error::not_found(format!(
                "the stored file {} is gone (erased or expired)",
                record.storage_uri
            ))),
        }
    }
}
