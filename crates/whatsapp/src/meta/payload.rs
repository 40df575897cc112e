//! Serde shapes of the Cloud API webhook, hand-written from Meta's spec and reference pages (the
//! published OpenAPI spec, github.com/facebook/openapi business-messaging-api_v23.0.yaml, maps
//! inbound media to the outbound schemas).
//!
//! Every field is optional or defaulted and unknown fields are ignored: Meta adds fields without
//! notice, and one odd message must not cost us the others in the same POST. Messages are kept as
//! raw JSON here and decoded one by one in `parse`.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
pub(super) struct Payload {
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Entry {
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Change {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Option<ChangeValue>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ChangeValue {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    // Raw: each item is decoded on its own, so one odd item cannot fail the others, and items we
    // only count are never built into a JSON tree.
    #[serde(default)]
    pub contacts: Vec<Box<RawValue>>,
    #[serde(default)]
    pub messages: Vec<Box<RawValue>>,
    #[serde(default)]
    pub statuses: Vec<Box<RawValue>>,
    #[serde(default)]
    pub errors: Vec<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Contact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Profile {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Message {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// Unix seconds as a string (Meta), tolerated as a number.
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub audio: Option<MediaObject>,
    #[serde(default)]
    pub video: Option<MediaObject>,
    #[serde(default)]
    pub image: Option<MediaObject>,
    #[serde(default)]
    pub document: Option<MediaObject>,
    #[serde(default)]
    pub sticker: Option<MediaObject>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MediaObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub voice: Option<bool>,
}
