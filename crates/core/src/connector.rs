//! The contract between the pipeline and a CRM, and the registry that finds a connector by `type`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{CanonicalAttribute, Error, MediaKind, Phone, Result, StateStore};

/// A stored media item with everything a CRM field may receive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaRecord {
    pub message_id: String,
    /// `{public_url}/media/{token}`: the link sales staff click.
    pub file_url: String,
    /// Where the object lives in the company's storage (`s3://bucket/key`).
    pub storage_uri: String,
    pub media_type: MediaKind,
    pub mime_type: String,
    pub size_bytes: u64,
    pub duration_seconds: Option<f64>,
    pub tags: Vec<String>,
    pub caption: Option<String>,
    pub file_name: Option<String>,
    pub sender: Phone,
    pub sender_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Lowercase hex of the bytes wa2crm stored.
    pub sha256: String,
    /// The link to the normalized rendition (MP3 for audio, MP4 H.264/AAC for video) when
    /// `media.transcode` made one: it plays in every browser and CRM preview.
    pub rendition_url: Option<String>,
}

/// A value of one canonical attribute, typed so each connector can encode it its vendor's way.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue<'a> {
    Text(&'a str),
    Integer(u64),
    Number(f64),
    List(&'a [String]),
    DateTime(OffsetDateTime),
}

impl MediaRecord {
    /// The stored object's own name (`{sha256}.{ext}`), for a CRM that keeps a copy of the file.
    pub fn stored_file_name(&self) -> &str {
        self.storage_uri
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.sha256)
    }

    /// The length as people read it, `m:ss` (rounded to the second); `None` without a duration.
    pub fn length(&self) -> Option<String> {
        let total = self.duration_seconds?.round().max(0.0) as u64;
        Some(format!("{}:{:02}", total / 60, total % 60))
    }

    /// The value of one attribute; `None` when this record has none (no caption, no duration).
    pub fn attribute(&self, attribute: CanonicalAttribute) -> Option<AttributeValue<'_>> {
        use AttributeValue::*;
        use CanonicalAttribute as A;
        Some(match attribute {
            A::MessageId => Text(&self.message_id),
            A::FileUrl => Text(&self.file_url),
            A::StorageUri => Text(&self.storage_uri),
            A::MediaType => Text(self.media_type.as_str()),
            A::MimeType => Text(&self.mime_type),
            A::SizeBytes => Integer(self.size_bytes),
            A::DurationSeconds => Number(self.duration_seconds?),
            A::Tags => List(&self.tags),
            A::Caption => Text(self.caption.as_deref()?),
            A::FileName => Text(self.file_name.as_deref()?),
            A::Sender => Text(self.sender.as_str()),
            A::SenderName => Text(self.sender_name.as_deref()?),
            A::ReceivedAt => DateTime(self.received_at),
            A::Sha256 => Text(&self.sha256),
            A::RenditionUrl => Text(self.rendition_url.as_deref()?),
        })
    }
}

/// What a connector wrote for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Delivered {
    /// The CRM's id of the record written (HubSpot object id, Salesforce record id).
    pub crm_id: String,
    /// Whether the record was created (false: an existing one was updated, e.g. on a re-run).
    pub created: bool,
    /// The CRM's id of the person the record is on (the HubSpot contact; for a CRM with several
    /// kinds of person, `Kind:id`, as Zoho's `Leads:…`), when the connector knows it and it is
    /// not `crm_id` itself: the console links to that person. Absent in jobs delivered before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl Delivered {
    /// A record written on its own, with no separate person record to name.
    pub fn new(crm_id: impl Into<String>, created: bool) -> Self {
        Delivered {
            crm_id: crm_id.into(),
            created,
            contact: None,
        }
    }
}

/// How much of its request budget and of the vendor's quota a connector is using, as this
/// process sees it (each instance paces its own calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Calls sent within the last `window`, and how many the budget allows in it (`None`: no
    /// budget, only a limit on calls in flight).
    pub sent: u64,
    pub allowed: Option<u32>,
    pub window: std::time::Duration,
    /// The vendor's quota as its last answer told it: (left, of), per day (HubSpot,
    /// Salesforce) or rolling 24 hours (Zoho). `None` until an answer said.
    pub quota: Option<(u64, u64)>,
}

/// The result of comparing the configured mapping with the live CRM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// One line per problem, each saying what is wrong and what to do.
    pub problems: Vec<String>,
    /// The account the check reached, as the vendor names it (`HubSpot portal 12345678`,
    /// `Salesforce org 00D… "Acme"`): so an admin sees which one the credentials open.
    pub reached: Option<String>,
    /// What the connector will do that is not a problem but worth knowing (how it matches
    /// senders to existing records), one line each.
    pub notes: Vec<String>,
}

/// What `provision` did or, with `dry_run`, would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<String>,
}

/// What `erase` removed from one CRM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EraseReport {
    pub removed: Vec<String>,
}

/// One CRM account wa2crm writes into. One crate per vendor implements it.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The instance name from config, e.g. `hubspot-eu`.
    fn name(&self) -> &str;
    /// How many records one `deliver` call may carry (100 for HubSpot, 200 for Salesforce).
    fn max_batch(&self) -> usize;
    /// How many batches may be in flight at once (the vendor's limits, not this, bound the rate;
    /// overlap hides its latency).
    fn concurrency(&self) -> usize {
        1
    }
    /// How long a delivery may wait for more records to fill a batch under load.
    fn linger(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
    /// Whether its calls are waiting on the vendor's rate limit right now: a batch that is not
    /// full then keeps filling, since sending it early would only spend calls.
    fn rate_bound(&self) -> bool {
        false
    }
    /// Mapping against the live schema, auth and scopes.
    async fn check(&self) -> Result<CheckReport>;
    /// Creates missing fields; with `dry_run` only says what it would create.
    async fn provision(&self, dry_run: bool) -> Result<Plan>;
    /// Writes a batch; one result per record, in order. A partial success is per item.
    async fn deliver(&self, batch: &[MediaRecord]) -> Vec<Result<Delivered, Error>>;
    /// Removes that person's media data from this CRM; with `dry_run` only finds what it would
    /// remove. Running it again finds nothing more.
    async fn erase(&self, subject: &Phone, dry_run: bool) -> Result<EraseReport>;
    /// Retention: the stored files of `records` are being deleted, so their links and details
    /// leave this CRM — what wa2crm created for each deleted (`delete`), or its media fields
    /// cleared. Fields showing a person's latest media are cleared only while they still show
    /// one of these. With `dry_run` only finds what would change.
    async fn expire(
        &self,
        records: &[MediaRecord],
        delete: bool,
        dry_run: bool,
    ) -> Result<EraseReport>;
    /// Whether `subject` agreed to have their media kept, as this CRM's consent field says
    /// (`policy.consent = "crm_field"`); `None` when the connector has no consent field. A person
    /// the CRM does not know has not agreed.
    async fn consent(&self, _subject: &Phone) -> Result<Option<bool>> {
        Ok(None)
    }
    /// Where a user opens what `delivered` wrote (the record, or the person it is on) in the
    /// CRM's web app, for the console's deep links; `None` when the connector cannot tell.
    fn record_url(&self, _delivered: &Delivered) -> Option<String> {
        None
    }
    /// Its request budget and quota, for the console; `None` when it keeps no count.
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// Builds connectors of one `type` from their config table.
///
/// `validate` is pure (no files, no network) so that config errors are all reported before
/// anything starts; `build` may read key files and reach the vendor.
#[async_trait]
pub trait ConnectorFactory: Send + Sync {
    /// The `type` value this factory answers to, e.g. `hubspot`.
    fn connector_type(&self) -> &'static str;
    /// Problems with this connector's table, each as `(key, what is wrong)`; empty when valid.
    fn validate(&self, name: &str, config: &serde_json::Value) -> Vec<(String, String)>;
    /// The URL a connector of this table reaches first, and the key under its table that sets
    /// it (`base_url`, `login_url`): `check` tries it before anything else, and names both when
    /// it cannot be reached.
    fn endpoint(&self, _config: &serde_json::Value) -> Option<(&'static str, String)> {
        None
    }
    /// What the rest of wa2crm reads of this table, through the connector's own typed config
    /// (its defaults included); `None` when the table does not parse (`validate` says why).
    fn settings(&self, config: &serde_json::Value) -> Option<ConnectorSettings>;
    async fn build(
        &self,
        name: &str,
        config: &serde_json::Value,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>>;
}

/// The parts of a connector's configuration the daemon itself acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorSettings {
    /// The CRM's boolean consent field (`policy.consent = "crm_field"` asks it).
    pub consent_field: Option<String>,
    /// Which CRM field receives which attribute.
    pub fields: crate::FieldMapping,
}

/// What the daemon lends a connector it builds.
#[derive(Clone)]
pub struct ConnectorContext {
    /// Durable state shared with `status` and other instances (see [`StateStore`]).
    pub state: Arc<dyn StateStore>,
    /// The stored files, for connectors that upload them; `None` where there are none (a
    /// `check` run).
    pub media: Option<Arc<dyn crate::MediaSource>>,
    /// The names of the configured `[[tags]]` rules: every tag a media can get, for a CRM whose
    /// tags field must declare its values before they are written (HubSpot's checkboxes).
    pub tag_names: Vec<String>,
    /// Built for a command that only looks (`check`, `provision`): what it finds is not
    /// recorded as the daemon's state (a pause `status` would show).
    pub check_only: bool,
}

impl ConnectorContext {
    /// A context on `state`, with no stored files, no tag names, for the daemon.
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        ConnectorContext {
            state,
            media: None,
            tag_names: Vec::new(),
            check_only: false,
        }
    }

    pub fn with_media(mut self, media: Option<Arc<dyn crate::MediaSource>>) -> Self {
        self.media = media;
        self
    }

    pub fn with_tag_names(mut self, names: Vec<String>) -> Self {
        self.tag_names = names;
        self
    }

    /// For `check` and `provision` (see [`ConnectorContext::check_only`]).
    pub fn for_check(mut self) -> Self {
        self.check_only = true;
        self
    }
}

/// A connector's typed configuration: the table a `[connectors.NAME]` section deserializes into.
pub trait ConnectorConfig: serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The `type` value it answers to, e.g. `hubspot`.
    const TYPE: &'static str;
    /// Problems the types alone do not catch, each as `(key, what is wrong)`.
    fn problems(&self) -> Vec<(String, String)>;
    /// The URL a connector reaches first and the key that sets it (see
    /// [`ConnectorFactory::endpoint`]).
    fn endpoint(&self) -> Option<(&'static str, String)>;
    /// What the daemon itself acts on.
    fn settings(&self) -> ConnectorSettings;
}

/// A factory written against its typed configuration: it only builds; checking and reading
/// tables is the same for every connector and comes with it (a blanket [`ConnectorFactory`]).
#[async_trait]
pub trait TypedFactory: Send + Sync {
    type Config: ConnectorConfig;
    async fn build_typed(
        &self,
        name: &str,
        config: Self::Config,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>>;
}

#[async_trait]
impl<F: TypedFactory> ConnectorFactory for F {
    fn connector_type(&self) -> &'static str {
        F::Config::TYPE
    }

    fn validate(&self, _name: &str, config: &serde_json::Value) -> Vec<(String, String)> {
        validate_table(config, |c: &F::Config| c.problems())
    }

    fn endpoint(&self, config: &serde_json::Value) -> Option<(&'static str, String)> {
        typed::<F::Config>(config).ok()?.endpoint()
    }

    fn settings(&self, config: &serde_json::Value) -> Option<ConnectorSettings> {
        typed::<F::Config>(config).ok().map(|c| c.settings())
    }

    async fn build(
        &self,
        name: &str,
        config: &serde_json::Value,
        context: &ConnectorContext,
    ) -> Result<Arc<dyn Connector>> {
        let config = typed::<F::Config>(config)
            .map_err(|e| Error::permanent(format!("connectors.{name}: {e}")))?;
        self.build_typed(name, config, context).await
    }
}

fn typed<C: ConnectorConfig>(table: &serde_json::Value) -> std::result::Result<C, String> {
    serde_json::from_value(table.clone()).map_err(|e| e.to_string())
}

/// What `ConnectorFactory::validate` does for a connector whose table deserializes into `T`:
/// a key that is missing, unknown or of the wrong type is named with what fits, and a table
/// that parses is checked by `validate`.
pub fn validate_table<T: serde::de::DeserializeOwned>(
    table: &serde_json::Value,
    validate: impl FnOnce(&T) -> Vec<(String, String)>,
) -> Vec<(String, String)> {
    match crate::config_problem::from_table::<T>(table) {
        Ok(config) => validate(&config),
        Err(problem) => vec![problem],
    }
}

/// The connector types this build knows, keyed by `type`.
#[derive(Default, Clone)]
pub struct ConnectorRegistry {
    factories: BTreeMap<&'static str, Arc<dyn ConnectorFactory>>,
}

impl ConnectorRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, factory: Arc<dyn ConnectorFactory>) {
        self.factories.insert(factory.connector_type(), factory);
    }

    pub fn get(&self, connector_type: &str) -> Option<&Arc<dyn ConnectorFactory>> {
        self.factories.get(connector_type)
    }

    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> MediaRecord {
        MediaRecord {
            message_id: "wamid.1".into(),
            file_url: "https://x/media/t".into(),
            storage_uri: "s3://b/k".into(),
            media_type: MediaKind::Voice,
            mime_type: "audio/ogg".into(),
            size_bytes: 1234,
            duration_seconds: Some(3.5),
            tags: vec!["a".into()],
            caption: None,
            file_name: None,
            sender: Phone::parse("+16505551234").unwrap(),
            sender_name: None,
            received_at: OffsetDateTime::UNIX_EPOCH,
            sha256: "00".into(),
            rendition_url: None,
        }
    }

    #[test]
    fn attributes_expose_typed_values_and_absent_ones_as_none() {
        let r = record();
        assert_eq!(
            r.attribute(CanonicalAttribute::MediaType),
            Some(AttributeValue::Text("voice"))
        );
        assert_eq!(
            r.attribute(CanonicalAttribute::SizeBytes),
            Some(AttributeValue::Integer(1234))
        );
        assert_eq!(
            r.attribute(CanonicalAttribute::DurationSeconds),
            Some(AttributeValue::Number(3.5))
        );
        assert_eq!(r.attribute(CanonicalAttribute::Caption), None);
        assert_eq!(r.stored_file_name(), "k");
        let bare = MediaRecord {
            storage_uri: String::new(),
            ..record()
        };
        assert_eq!(bare.stored_file_name(), "00", "no object name: the digest");
        assert_eq!(
            r.attribute(CanonicalAttribute::Sender),
            Some(AttributeValue::Text("+16505551234"))
        );
    }

    struct Dummy;
    #[async_trait]
    impl ConnectorFactory for Dummy {
        fn connector_type(&self) -> &'static str {
            "dummy"
        }
        fn validate(&self, _: &str, config: &serde_json::Value) -> Vec<(String, String)> {
            if config.get("token").is_none() {
                vec![("token".into(), "missing".into())]
            } else {
                vec![]
            }
        }
        fn settings(&self, _: &serde_json::Value) -> Option<ConnectorSettings> {
            None
        }
        async fn build(
            &self,
            name: &str,
            _: &serde_json::Value,
            _: &ConnectorContext,
        ) -> Result<Arc<dyn Connector>> {
            Err(Error::permanent(format!("{name}: not buildable")))
        }
    }

    #[test]
    fn tables_are_validated_with_each_problem_under_its_key() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            token: String,
            #[serde(default)]
            fields: crate::FieldMapping,
        }
        let check = |t: &T| {
            if t.token.is_empty() {
                vec![("token".to_string(), "is empty".to_string())]
            } else {
                vec![]
            }
        };
        let v = |j: serde_json::Value| validate_table(&j, check);
        assert_eq!(v(serde_json::json!({"token": "x"})), vec![]);
        assert_eq!(v(serde_json::json!({"token": ""}))[0].0, "token");
        assert_eq!(
            v(serde_json::json!({}))[0].0,
            "token",
            "missing field `token`"
        );
        assert_eq!(v(serde_json::json!({"token": "x", "tokn": 1}))[0].0, "tokn");
        assert_eq!(
            v(serde_json::json!({"token": "x", "fields": {"length": "y"}}))[0].0,
            "fields.length"
        );
        let wrong = v(serde_json::json!({"token": 5}));
        assert_eq!(wrong[0].0, "token");
        assert!(wrong[0].1.contains("must be a string"), "{wrong:?}");
    }

    #[test]
    fn registry_finds_factories_by_type() {
        let mut reg = ConnectorRegistry::new();
        reg.register(Arc::new(Dummy));
        assert_eq!(reg.types().collect::<Vec<_>>(), vec!["dummy"]);
        let f = reg.get("dummy").unwrap();
        assert_eq!(f.validate("x", &serde_json::json!({})).len(), 1);
        assert!(reg.get("hubspot").is_none());
    }
}
