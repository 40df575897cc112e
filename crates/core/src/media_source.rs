//! Reading a stored file back, for connectors that upload it into the CRM (HubSpot Files,
//! Salesforce Files). The daemon implements it over the configured storage; this crate only
//! names the contract.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

use crate::{MediaRecord, Result};

/// The stored bytes of one media, streamed (files go up to `media.max_bytes`).
pub struct MediaBody {
    pub size: u64,
    pub stream: Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

#[async_trait]
pub trait MediaSource: Send + Sync {
    /// The bytes behind `record.storage_uri`; `NotFound` when they are gone (erased, expired).
    async fn open(&self, record: &MediaRecord) -> Result<MediaBody>;
}
