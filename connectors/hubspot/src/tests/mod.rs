//! The connector against the HubSpot simulator: every write path, partial failures, auth and
//! limits. Black-box tests of the daemon live in tests/.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wa2crm_core::state::keys;
use wa2crm_core::{ErrorKind, MemoryStateStore, StateStore};
use wa2crm_sandbox::hubspot::{Fault, HubSpotSim, HubSpotSimConfig, OAuthApp, PropertyDef};

use super::*;
use crate::values::tests::record;
use wa2crm_core::ConnectorFactory;

const TOKEN: &str = "pat-na1-test";

fn fields() -> Value {
    json!({"file_url": "wa_media_url", "media_type": "wa_media_type", "mime_type": "wa_media_mime",
        "size_bytes": "wa_media_size", "duration_seconds": "wa_media_duration", "tags": "wa_media_tags",
        "received_at": "wa_media_received_at"})
}

fn config(sim: &HubSpotSim, extra: Value) -> Value {
    let mut c = json!({"type": "hubspot", "base_url": sim.url(), "token": TOKEN,
        "contact_key": "whatsapp_id", "note": true, "fields": fields()});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

struct Setup {
    sim: HubSpotSim,
    hs: Arc<dyn Connector>,
    state: Arc<MemoryStateStore>,
}

async fn build(sim: HubSpotSim, config: Value) -> Setup {
    let state = Arc::new(MemoryStateStore::default());
    let context = ConnectorContext::new(state.clone()).with_media(Some(Arc::new(Files)));
    let hs = HubSpotFactory.build("hs", &config, &context).await.unwrap();
    Setup { sim, hs, state }
}

/// A provisioned Starter portal.
async fn provisioned(extra: Value) -> Setup {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    let c = config(&sim, extra);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    s
}

/// A provisioned Enterprise portal with the `p_whatsapp_media` custom object: one record per
/// media, by message id, with `more` fields mapped besides the usual ones; no notes.
async fn custom_object_portal(more: Value) -> Setup {
    let sim = HubSpotSim::start(HubSpotSimConfig::private_app(TOKEN))
        .await
        .unwrap();
    sim.add_custom_object("p_whatsapp_media");
    let mut f = fields();
    f["message_id"] = json!("wa_message_id");
    for (k, v) in more.as_object().unwrap() {
        f[k] = v.clone();
    }
    let c = config(
        &sim,
        json!({"object": "p_whatsapp_media", "note": false, "fields": f}),
    );
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    s
}

fn ok(results: Vec<Result<Delivered>>) -> Vec<Delivered> {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("delivery failed: {e}")))
        .collect()
}

/// Stored files for upload tests: every record's bytes are its message id, repeated.
struct Files;

#[async_trait::async_trait]
impl wa2crm_core::MediaSource for Files {
    async fn open(&self, record: &MediaRecord) -> Result<wa2crm_core::MediaBody> {
        if record.message_id.contains("gone") {
            return Err(Error::not_found("the stored file is gone"));
        }
        let bytes = bytes_of(record);
        let size = bytes.len() as u64;
        let chunks: Vec<std::io::Result<bytes::Bytes>> = bytes
            .chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        Ok(wa2crm_core::MediaBody {
            size,
            stream: Box::pin(futures_util::stream::iter(chunks)),
        })
    }
}

fn bytes_of(record: &MediaRecord) -> Vec<u8> {
    record.message_id.as_bytes().repeat(500)
}

mod auth;
mod files;
mod limits;
mod matching;
mod removal;
mod schema;
mod tasks;
mod writes;
