use super::*;
use wa2crm_core::{MediaKind, MediaRecord, Phone};
use wa2crm_sandbox::salesforce::FieldDef;

pub const OBJECT: &str = "WhatsApp_Media__c";

/// An org set up as README describes: the media object, its fields, the Contact key.
pub async fn org() -> SalesforceSim {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    sim.add_field(
        "Contact",
        FieldDef::new("WhatsApp_Id__c", "string").external_id(),
    );
    sim.add_object(OBJECT);
    sim.add_field(
        OBJECT,
        FieldDef::new("WA_Message_Id__c", "string").external_id(),
    );
    sim.add_field(
        OBJECT,
        FieldDef {
            reference_to: Some("Contact".into()),
            ..FieldDef::new("Contact__c", "reference")
        },
    );
    for (name, kind) in [
        ("Media_Url__c", "url"),
        ("Media_Type__c", "string"),
        ("Size_Bytes__c", "double"),
        ("Duration_Seconds__c", "double"),
        ("Received_At__c", "datetime"),
        ("Tags__c", "multipicklist"),
        ("Caption__c", "textarea"),
        ("Sha256__c", "string"),
    ] {
        sim.add_field(OBJECT, FieldDef::new(name, kind));
    }
    sim
}

pub fn config(sim: &SalesforceSim) -> Value {
    let mut c = jwt_config(sim);
    c["fields"] = json!({"file_url": "Media_Url__c", "media_type": "Media_Type__c",
        "size_bytes": "Size_Bytes__c", "duration_seconds": "Duration_Seconds__c",
        "received_at": "Received_At__c", "tags": "Tags__c", "caption": "Caption__c", "sha256": "Sha256__c"});
    c
}

pub async fn connector(c: &Value) -> Salesforce {
    let context = ConnectorContext::new(Arc::new(MemoryStateStore::default()));
    Salesforce::new("sf", SalesforceConfig::from_value(c).unwrap(), &context)
        .await
        .unwrap()
}

pub fn record(id: &str, sender: &str, name: Option<&str>) -> MediaRecord {
    MediaRecord {
        message_id: id.into(),
        file_url: format!("https://wa2crm.example.com/media/{id}"),
        storage_uri: format!("file:///m/{id}.ogg"),
        media_type: MediaKind::Voice,
        mime_type: "audio/ogg".into(),
        size_bytes: 6542,
        duration_seconds: Some(3.2),
        tags: vec!["urgent".into(), "vip".into()],
        caption: None,
        file_name: None,
        sender: Phone::parse(sender).unwrap(),
        sender_name: name.map(str::to_owned),
        received_at: time::macros::datetime!(2026-11-22 10:00 UTC),
        sha256: "ab".repeat(32),
        rendition_url: None,
    }
}
