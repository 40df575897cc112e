use super::writes_support::*;
use super::*;
use wa2crm_core::{MediaBody, MediaRecord, MediaSource};

/// Stored files: each record's bytes are its message id, repeated; "gone" ones are erased.
struct Stored;

#[async_trait::async_trait]
impl MediaSource for Stored {
    async fn open(&self, r: &MediaRecord) -> wa2crm_core::Result<MediaBody> {
        if r.message_id.contains("gone") {
            return Err(wa2crm_core::Error::not_found("the stored file is gone"));
        }
        let bytes = bytes::Bytes::from(r.message_id.as_bytes().repeat(300));
        Ok(MediaBody {
            size: bytes.len() as u64,
            stream: Box::pin(futures_util::stream::iter([Ok(bytes)])),
        })
    }
}

#[tokio::test]
async fn files_go_to_salesforce_files_on_their_record_once() {
    let sim = org().await;
    let mut c = config(&sim);
    c["files"] = json!(true);
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()))
        .with_media(Some(Arc::new(Stored)));
    let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
        .await
        .unwrap();
    let ok = record("wamid.file", "+14155550123", None);
    let gone = record("wamid.gone", "+14155550123", None);
    let results = sf.deliver_batch(&[ok.clone(), gone]).await;
    let delivered = results[0].as_ref().unwrap();
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let versions = sim.records("ContentVersion");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        versions[0]["FirstPublishLocationId"],
        delivered.crm_id.as_str()
    );
    assert_eq!(versions[0]["PathOnClient"], "wamid.file.ogg");
    assert_eq!(versions[0]["ContentSize"], ok.message_id.len() as u64 * 300);
    sf.deliver_batch(std::slice::from_ref(&ok)).await[0]
        .as_ref()
        .unwrap();
    assert_eq!(
        sim.records("ContentVersion").len(),
        1,
        "a re-run finds the file and uploads nothing"
    );
}

#[tokio::test]
async fn erase_deletes_the_persons_files_then_their_records() {
    use wa2crm_core::{Connector, Phone};
    let sim = org().await;
    let mut c = config(&sim);
    c["files"] = json!(true);
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()))
        .with_media(Some(Arc::new(Stored)));
    let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
        .await
        .unwrap();
    for r in sf
        .deliver_batch(&[
            record("wamid.a1", "+491701234567", Some("Ana")),
            record("wamid.a2", "+491701234567", Some("Ana")),
            record("wamid.b1", "+14155550123", None),
        ])
        .await
    {
        r.unwrap();
    }
    assert_eq!(sim.records("ContentDocument").len(), 3);
    let report = sf
        .erase(&Phone::parse("+491701234567").unwrap(), false)
        .await
        .unwrap();
    assert_eq!(report.removed.len(), 2, "{:?}", report.removed);
    assert!(
        report.removed[0].starts_with("2 file(s) in Salesforce Files (ContentDocument 069"),
        "{:?}",
        report.removed
    );
    let left = sim.records("ContentVersion");
    assert_eq!(left.len(), 1, "the other person's file stays");
    let b1 = sim.find(OBJECT, "WA_Message_Id__c", "wamid.b1").unwrap();
    assert_eq!(left[0]["FirstPublishLocationId"], b1["Id"]);
    assert_eq!(sim.records("ContentDocument").len(), 1);
    assert_eq!(sim.records(OBJECT).len(), 1);
}
