//! Sessions and limits against the Salesforce simulator.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::state::keys;
use wa2crm_core::{ConnectorContext, ErrorKind, MemoryStateStore, StateStore};
use wa2crm_sandbox::salesforce::{SANDBOX_PRIVATE_KEY, SalesforceSim, SalesforceSimConfig};

use super::*;

const CLIENT_ID: &str = "3MVG9sim";
const USER: &str = "integration@example.com";

fn jwt_config(sim: &SalesforceSim) -> Value {
    json!({"type": "salesforce", "login_url": sim.url(), "client_id": CLIENT_ID, "username": USER,
        "private_key": SANDBOX_PRIVATE_KEY, "object": "WhatsApp_Media__c",
        "external_id": "WA_Message_Id__c", "contact_lookup": "Contact__c",
        "contact_key": "WhatsApp_Id__c", "fields": {"file_url": "Media_Url__c"}})
}

async fn api_for(config: &Value, state: Arc<MemoryStateStore>) -> api::Api {
    let config = SalesforceConfig::from_value(config).unwrap();
    let context = ConnectorContext { state, media: None };
    connect("sf", &config, &context).await.unwrap()
}

async fn limits(api: &api::Api) -> wa2crm_core::Result<api::Answer> {
    api.call(Method::GET, "/limits", None, true).await
}

#[tokio::test]
async fn the_jwt_bearer_flow_logs_in_and_calls_go_to_the_instance() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let api = api_for(&jwt_config(&sim), Arc::default()).await;
    let answer = limits(&api).await.unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["DailyApiRequests"]["Max"], 100_000);
    assert_eq!(sim.counts().logins, 1);
}

#[tokio::test]
async fn an_unapproved_user_pauses_the_connector_with_what_to_do() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(
        CLIENT_ID,
        "someone-else@example.com",
    ))
    .await
    .unwrap();
    let state = Arc::new(MemoryStateStore::default());
    let api = api_for(&jwt_config(&sim), state.clone()).await;
    let e = limits(&api).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::RateLimited { .. }),
        "jobs wait: {e}"
    );
    assert!(
        e.message().contains("user hasn't approved this consumer"),
        "{e}"
    );
    assert!(
        e.message()
            .contains("Admin approved users are pre-authorized"),
        "{e}"
    );
    let reason = state
        .get_state("sf", keys::PAUSE_REASON)
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("pre-authorized"), "{reason}");
    limits(&api).await.unwrap_err();
    assert_eq!(sim.counts().failed_logins, 1, "paused: no login storm");
}

#[tokio::test]
async fn a_wrong_key_or_audience_is_refused_as_salesforce_does() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let mut other = SalesforceSimConfig::new(CLIENT_ID, USER);
    other.audience = Some("https://login.salesforce.com".into());
    let strict = SalesforceSim::start(other).await.unwrap();
    let e = limits(&api_for(&jwt_config(&strict), Arc::default()).await)
        .await
        .unwrap_err();
    assert!(
        e.message().contains("audience is invalid") && e.message().contains("login_url must be"),
        "{e}"
    );
    let mut wrong_client = jwt_config(&sim);
    wrong_client["client_id"] = json!("3MVG9other");
    let e = limits(&api_for(&wrong_client, Arc::default()).await)
        .await
        .unwrap_err();
    assert!(e.message().contains("client identifier invalid"), "{e}");
}

#[tokio::test]
async fn an_ended_session_is_renewed_once_for_every_worker_and_the_calls_replayed() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let api = Arc::new(api_for(&jwt_config(&sim), Arc::default()).await);
    limits(&api).await.unwrap();
    sim.expire_sessions();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { limits(&api).await.map(|a| a.status) })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 200);
    }
    let counts = sim.counts();
    assert_eq!(counts.logins, 2, "{counts:?}");
    assert_eq!(counts.max_concurrent_logins, 1, "{counts:?}");
    assert!(counts.invalid_session >= 1, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn sessions_are_renewed_proactively_after_session_minutes() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let mut c = jwt_config(&sim);
    c["session_minutes"] = json!(30);
    let api = api_for(&c, Arc::default()).await;
    limits(&api).await.unwrap();
    tokio::time::advance(Duration::from_secs(25 * 60)).await;
    limits(&api).await.unwrap();
    assert_eq!(sim.counts().logins, 1);
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    limits(&api).await.unwrap();
    assert_eq!(sim.counts().logins, 2);
    assert_eq!(
        sim.counts().invalid_session,
        0,
        "renewed before Salesforce refused it"
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_before_use_and_survives_a_restart() {
    let mut config = SalesforceSimConfig::new(CLIENT_ID, USER);
    config.refresh_token = Some("5Aep-initial".into());
    config.rotate_refresh_token = true;
    let sim = SalesforceSim::start(config).await.unwrap();
    let c = json!({"type": "salesforce", "login_url": sim.url(), "client_id": CLIENT_ID,
        "client_secret": "sandbox-client-secret", "refresh_token": "5Aep-initial",
        "object": "M__c", "external_id": "E__c", "contact_lookup": "C__c", "contact_key": "K__c",
        "fields": {"file_url": "U__c"}});
    let state = Arc::new(MemoryStateStore::default());
    let api = api_for(&c, state.clone()).await;
    limits(&api).await.unwrap();
    sim.expire_sessions();
    limits(&api).await.unwrap();
    // A new process first takes the session the last one stored (no login)...
    let restarted = api_for(&c, state.clone()).await;
    limits(&restarted).await.unwrap();
    assert_eq!(sim.counts().logins, 2);
    // ...and when that ends, logs in with the rotated refresh token it finds stored.
    sim.expire_sessions();
    limits(&restarted).await.unwrap();
    let counts = sim.counts();
    assert_eq!((counts.logins, counts.failed_logins), (3, 0), "{counts:?}");
    let stored = state
        .get_state("sf", wa2crm_rest::refresh::REFRESH_TOKEN_KEY)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.contains(&sim.current_refresh_token().unwrap()),
        "{stored}"
    );
}

#[tokio::test]
async fn the_daily_reserve_and_the_exhausted_allocation_pause_the_connector() {
    let mut config = SalesforceSimConfig::new(CLIENT_ID, USER);
    config.daily_allocation = 1000;
    let sim = SalesforceSim::start(config).await.unwrap();
    let state = Arc::new(MemoryStateStore::default());
    let api = api_for(&jwt_config(&sim), state.clone()).await;
    sim.set_api_usage(790);
    limits(&api).await.unwrap();
    // 791/1000: under the 20 % reserve's ceiling of 800.
    assert!(
        state
            .get_state("sf", keys::PAUSE_REASON)
            .await
            .unwrap()
            .is_none()
    );
    sim.set_api_usage(799);
    limits(&api).await.unwrap();
    let e = limits(&api).await.unwrap_err();
    assert!(
        e.message().contains("reserved for its other integrations"),
        "{e}"
    );
    assert!(
        state
            .get_state("sf", keys::PAUSED_UNTIL_MS)
            .await
            .unwrap()
            .is_some()
    );

    let state = Arc::new(MemoryStateStore::default());
    let mut c = jwt_config(&sim);
    c["daily_reserve"] = json!(0.0);
    let api = api_for(&c, state.clone()).await;
    sim.set_api_usage(1000);
    let e = limits(&api).await.unwrap_err();
    assert!(e.message().contains("REQUEST_LIMIT_EXCEEDED"), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(15 * 60)));
}

#[tokio::test]
async fn when_a_usage_pause_ends_limits_decides_whether_to_go_on() {
    let mut config = SalesforceSimConfig::new(CLIENT_ID, USER);
    config.daily_allocation = 1000;
    let sim = SalesforceSim::start(config).await.unwrap();
    let state = Arc::new(MemoryStateStore::default());
    let api = api_for(&jwt_config(&sim), state.clone()).await;
    sim.set_api_usage(1000);
    limits(&api).await.unwrap_err();
    let pause_reason = || async {
        state
            .get_state("sf", keys::PAUSE_REASON)
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert!(pause_reason().await.contains("REQUEST_LIMIT_EXCEEDED"));

    // The pause runs out while the org is still over: one look at /limits, and paused again.
    api.pause.resume().await;
    let e = api
        .call(Method::GET, "/sobjects/Contact/describe", None, true)
        .await
        .unwrap_err();
    assert!(e.message().contains("REQUEST_LIMIT_EXCEEDED"), "{e}");
    assert!(pause_reason().await.contains("REQUEST_LIMIT_EXCEEDED"));

    // Still paused, but the reserve is what holds it now.
    api.pause.resume().await;
    sim.set_api_usage(850);
    let e = api
        .call(Method::GET, "/sobjects/Contact/describe", None, true)
        .await
        .unwrap_err();
    assert!(
        e.message().contains("reserved for its other integrations"),
        "{e}"
    );

    // Calls have aged out of the rolling 24 hours: /limits says so and the call goes.
    api.pause.resume().await;
    sim.set_api_usage(500);
    let before = sim.counts().api_calls;
    api.call(Method::GET, "/sobjects/Contact/describe", None, true)
        .await
        .unwrap();
    assert_eq!(sim.counts().api_calls - before, 2, "/limits, then the call");
    api.call(Method::GET, "/sobjects/Contact/describe", None, true)
        .await
        .unwrap();
    assert_eq!(sim.counts().api_calls - before, 3, "no more looks");

    // A restart during a usage pause looks at /limits first when it ends.
    sim.set_api_usage(1000);
    limits(&api).await.unwrap_err();
    let restarted = api_for(&jwt_config(&sim), state.clone()).await;
    assert!(
        restarted
            .usage_pause
            .load(std::sync::atomic::Ordering::Acquire)
    );
}

mod writes_support {
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
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: None,
        };
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
}

mod writes {
    use super::writes_support::*;
    use super::*;
    use wa2crm_core::{Delivered, MediaRecord};
    use wa2crm_sandbox::salesforce::FieldDef;

    #[tokio::test]
    async fn media_records_are_upserted_and_looked_up_to_contacts_created_only_when_new() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        let batch = vec![
            record("wamid.1", "+491701234567", Some("Ana María López")),
            record("wamid.2", "+491701234567", Some("Ana María López")),
            record("wamid.3", "+14155550123", None),
        ];
        let first: Vec<Delivered> = sf
            .deliver_batch(&batch)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert!(first.iter().all(|d| d.created));
        let calls = sim.counts().api_calls;
        assert_eq!(
            calls, 2,
            "composite (query, upsert: fails on new contacts), composite (create contacts, upsert)"
        );

        let ana = sim
            .find("Contact", "WhatsApp_Id__c", "+491701234567")
            .unwrap();
        assert_eq!(ana["FirstName"], "Ana María");
        assert_eq!(ana["LastName"], "López");
        let bob = sim
            .find("Contact", "WhatsApp_Id__c", "+14155550123")
            .unwrap();
        assert_eq!(
            bob["LastName"], "+14155550123",
            "LastName is required: the number stands in"
        );

        let m = sim.find(OBJECT, "WA_Message_Id__c", "wamid.1").unwrap();
        assert_eq!(m["Id"], first[0].crm_id.as_str());
        assert_eq!(m["Contact__c"], ana["Id"]);
        assert_eq!(m["Size_Bytes__c"], 6542);
        assert_eq!(m["Duration_Seconds__c"], 3.2);
        assert_eq!(m["Received_At__c"], "2026-11-22T10:00:00Z");
        assert_eq!(m["Tags__c"], "urgent;vip");
        assert_eq!(m["Media_Type__c"], "voice");
        assert_eq!(m["Caption__c"], Value::Null);

        let again: Vec<Delivered> = sf
            .deliver_batch(&batch)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert!(again.iter().all(|d| !d.created));
        assert_eq!(again[0].crm_id, first[0].crm_id);
        assert_eq!(
            sim.counts().api_calls - calls,
            1,
            "known contacts: one composite call (query and upsert)"
        );
        assert_eq!(sim.records(OBJECT).len(), 3);
        assert_eq!(sim.records("Contact").len(), 2);
    }

    #[tokio::test]
    async fn a_contact_salesforce_refuses_fails_only_that_senders_media() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        sf.deliver_batch(&[record("wamid.known", "+14155550123", None)])
            .await[0]
            .as_ref()
            .unwrap();
        // The admin made a field required on Contact: new contacts now fail.
        sim.add_field(
            "Contact",
            FieldDef {
                required: true,
                ..FieldDef::new("Region__c", "string")
            },
        );
        let results = sf
            .deliver_batch(&[
                record("wamid.a", "+14155550123", None),
                record("wamid.b", "+491701234567", Some("Ana")),
            ])
            .await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        let e = results[1].as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().contains("contact +491701234567"), "{e}");
        assert!(
            e.message()
                .contains("REQUIRED_FIELD_MISSING: Required fields are missing: [Region__c]"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_field_the_integration_user_cannot_see_fails_the_batch_with_its_name() {
        let sim = org().await;
        sim.add_field(
            OBJECT,
            FieldDef {
                visible: false,
                ..FieldDef::new("Caption__c", "textarea")
            },
        );
        let sf = connector(&config(&sim)).await;
        for r in sf
            .deliver_batch(&[record("wamid.1", "+14155550123", None)])
            .await
        {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Permanent);
            assert!(
                e.message()
                    .contains("INVALID_FIELD: No such column 'Caption__c'"),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn batches_over_200_go_in_several_calls() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        let batch: Vec<MediaRecord> = (0..250)
            .map(|i| {
                record(
                    &format!("wamid.{i}"),
                    &format!("+1415555{:04}", i % 220),
                    None,
                )
            })
            .collect();
        for r in sf.deliver_batch(&batch).await {
            r.unwrap();
        }
        assert_eq!(sim.records(OBJECT).len(), 250);
        assert_eq!(sim.records("Contact").len(), 220);
        // Two chunks of ≤ 200, each new senders: two composite calls each.
        assert_eq!(sim.counts().api_calls, 4);
    }

    #[tokio::test]
    async fn a_record_salesforce_refuses_fails_only_its_own_job_with_the_rule_named() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        sf.deliver_batch(&[record("wamid.known", "+14155550123", None)])
            .await[0]
            .as_ref()
            .unwrap();
        sim.add_validation_rule(
            OBJECT,
            "WA_Message_Id__c",
            json!("wamid.refused-known"),
            "Media from this campaign is not accepted",
        );
        sim.add_validation_rule(
            OBJECT,
            "WA_Message_Id__c",
            json!("wamid.refused-new"),
            "Media from this campaign is not accepted",
        );
        let before = sim.counts().api_calls;
        let results = sf
            .deliver_batch(&[
                record("wamid.ok-known", "+14155550123", None),
                record("wamid.refused-known", "+14155550123", None),
                record("wamid.ok-new", "+491701234567", Some("Ana")),
                record("wamid.refused-new", "+491701234568", None),
            ])
            .await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(results[2].is_ok(), "{:?}", results[2]);
        for refused in [&results[1], &results[3]] {
            let e = refused.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Permanent, "{e}");
            assert!(
                e.message().contains(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION: Media from this campaign is not accepted"
                ),
                "{e}"
            );
        }
        assert_eq!(sim.counts().api_calls - before, 2);
        assert!(
            sim.find(OBJECT, "WA_Message_Id__c", "wamid.ok-new")
                .is_some()
        );
        assert!(
            sim.find(OBJECT, "WA_Message_Id__c", "wamid.refused-new")
                .is_none()
        );
        assert_eq!(
            sim.records("Contact").len(),
            3,
            "the refused record's new sender still got a Contact"
        );
    }
}

mod schema {
    use super::*;
    use wa2crm_sandbox::salesforce::FieldDef;

    #[tokio::test]
    async fn check_names_every_gap_and_provision_creates_and_grants_the_fields_twice_safely() {
        let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
            .await
            .unwrap();
        sim.add_object("WhatsApp_Media__c");
        // An existing message-id field that is not a unique external ID, and a wrong type.
        sim.add_field(
            "WhatsApp_Media__c",
            FieldDef::new("WA_Message_Id__c", "string"),
        );
        sim.add_field(
            "WhatsApp_Media__c",
            FieldDef::new("Size_Bytes__c", "string"),
        );
        let mut c = jwt_config(&sim);
        c["fields"] = json!({"file_url": "Media_Url__c", "size_bytes": "Size_Bytes__c", "received_at": "Received_At__c"});
        c["permission_set"] = json!("0PSsim000000001AAA");
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: None,
        };
        let sf = Salesforce::new("sf", SalesforceConfig::from_value(&c).unwrap(), &context)
            .await
            .unwrap();

        let text = sf.check_schema().await.unwrap().problems.join("\n");
        assert!(
            text.contains("Contact.WhatsApp_Id__c: missing, or invisible"),
            "{text}"
        );
        assert!(
            text.contains("WhatsApp_Media__c.WA_Message_Id__c: must be a unique External ID"),
            "{text}"
        );
        assert!(
            text.contains("WhatsApp_Media__c.Size_Bytes__c: is of type string"),
            "{text}"
        );
        assert!(
            text.contains("WhatsApp_Media__c.Contact__c: missing"),
            "{text}"
        );
        assert!(
            text.contains("WhatsApp_Media__c.Media_Url__c: missing"),
            "{text}"
        );

        let dry = sf.provision_schema(true).await.unwrap();
        assert!(
            dry.actions
                .contains(&"create Contact.WhatsApp_Id__c (Text, unique external ID)".to_string()),
            "{:?}",
            dry.actions
        );
        assert!(
            sf.check_schema().await.unwrap().problems.len() >= 5,
            "a dry run changes nothing"
        );

        let plan = sf.provision_schema(false).await.unwrap();
        assert!(plan.actions.contains(&"grant read/edit on WhatsApp_Media__c.Media_Url__c to permission set 0PSsim000000001AAA".to_string()), "{:?}", plan.actions);
        assert!(
            plan.actions
                .iter()
                .any(|a| a.starts_with("left alone WhatsApp_Media__c.Size_Bytes__c")),
            "{:?}",
            plan.actions
        );
        let twice = sf.provision_schema(false).await.unwrap();
        assert!(
            twice.actions.iter().all(|a| a.starts_with("left alone")),
            "{:?}",
            twice.actions
        );
        let left: Vec<String> = sf.check_schema().await.unwrap().problems;
        assert_eq!(
            left.len(),
            2,
            "only what provision must not change: {left:?}"
        );
    }

    #[tokio::test]
    async fn without_a_permission_set_provision_says_what_to_grant_and_check_still_sees_the_gap() {
        let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
            .await
            .unwrap();
        sim.add_object("WhatsApp_Media__c");
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: None,
        };
        let sf = Salesforce::new(
            "sf",
            SalesforceConfig::from_value(&jwt_config(&sim)).unwrap(),
            &context,
        )
        .await
        .unwrap();
        let plan = sf.provision_schema(false).await.unwrap();
        assert!(
            plan.actions.iter().any(|a| a.contains(
                "grant the integration user read/edit on WhatsApp_Media__c.Media_Url__c yourself"
            )),
            "{:?}",
            plan.actions
        );
        let text = sf.check_schema().await.unwrap().problems.join("\n");
        assert!(
            text.contains("Media_Url__c: missing, or invisible to the integration user"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_missing_custom_object_is_named_once() {
        let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
            .await
            .unwrap();
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: None,
        };
        let sf = Salesforce::new(
            "sf",
            SalesforceConfig::from_value(&jwt_config(&sim)).unwrap(),
            &context,
        )
        .await
        .unwrap();
        let problems = sf.check_schema().await.unwrap().problems;
        let about_object: Vec<&String> = problems
            .iter()
            .filter(|p| p.contains("does not exist"))
            .collect();
        assert_eq!(about_object.len(), 1, "{problems:?}");
        assert!(
            about_object[0].contains("WhatsApp_Media__c"),
            "{problems:?}"
        );
    }
}

mod erase {
    use super::writes_support::*;
    use wa2crm_core::{Connector, Phone};

    #[tokio::test]
    async fn erase_deletes_that_persons_media_records_and_is_harmless_twice() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        for r in sf
            .deliver_batch(&[
                record("wamid.1", "+491701234567", Some("Ana")),
                record("wamid.2", "+491701234567", Some("Ana")),
                record("wamid.3", "+14155550123", None),
            ])
            .await
        {
            r.unwrap();
        }
        let ana = Phone::parse("+491701234567").unwrap();
        let dry = sf.erase(&ana, true).await.unwrap();
        assert_eq!(
            sim.records("WhatsApp_Media__c").len(),
            3,
            "a dry run removes nothing"
        );
        let report = sf.erase(&ana, false).await.unwrap();
        assert_eq!(report.removed, dry.removed, "the dry run said what goes");
        assert_eq!(report.removed.len(), 1, "{:?}", report.removed);
        assert!(
            report.removed[0].starts_with("2 WhatsApp_Media__c record(s) of Contact 003"),
            "{:?}",
            report.removed
        );
        assert_eq!(
            sim.records("WhatsApp_Media__c").len(),
            1,
            "others keep theirs"
        );
        assert!(
            sim.find("Contact", "WhatsApp_Id__c", "+491701234567")
                .is_some(),
            "the Contact stays"
        );
        assert!(sf.erase(&ana, false).await.unwrap().removed.is_empty());
        assert!(
            sf.erase(&Phone::parse("+12025550100").unwrap(), false)
                .await
                .unwrap()
                .removed
                .is_empty()
        );
    }
}

mod expire {
    use super::writes_support::*;

    #[tokio::test]
    async fn expired_media_records_are_cleared_or_deleted() {
        let sim = org().await;
        let sf = connector(&config(&sim)).await;
        let (r1, r2) = (
            record("wamid.1", "+491701234567", Some("Ana")),
            record("wamid.2", "+491701234567", Some("Ana")),
        );
        for r in sf.deliver_batch(&[r1.clone(), r2.clone()]).await {
            r.unwrap();
        }
        let dry = sf
            .expire_media(std::slice::from_ref(&r1), false, true)
            .await
            .unwrap();
        assert_eq!(dry.removed, ["1 WhatsApp_Media__c record(s) cleared"]);
        let one = || {
            sim.find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.1")
                .unwrap()
        };
        assert!(
            one()["Media_Url__c"].is_string(),
            "a dry run changes nothing"
        );
        sf.expire_media(std::slice::from_ref(&r1), false, false)
            .await
            .unwrap();
        let cleared = one();
        assert!(
            cleared.get("Media_Url__c").is_none_or(|v| v.is_null()),
            "{cleared:?}"
        );
        assert!(cleared["Contact__c"].is_string(), "still on the Contact");
        let deleted = sf
            .expire_media(&[r1.clone(), r2], true, false)
            .await
            .unwrap();
        assert_eq!(deleted.removed, ["2 WhatsApp_Media__c record(s) deleted"]);
        assert!(sim.records("WhatsApp_Media__c").is_empty());
        assert!(
            sf.expire_media(&[r1], true, false)
                .await
                .unwrap()
                .removed
                .is_empty()
        );
    }
}

mod tasks {
    use super::writes_support::*;
    use serde_json::json;
    use wa2crm_core::{Connector, MediaKind, Phone};

    #[tokio::test]
    async fn a_task_per_new_voice_note_for_the_contacts_owner_never_twice() {
        let sim = org().await;
        let mut c = config(&sim);
        c["task"] = json!({"kinds": ["voice"], "due_hours": 48});
        c["permission_set"] = json!("0PSsim000000001AAA");
        let sf = connector(&c).await;
        let plan = sf.provision_schema(false).await.unwrap();
        assert!(
            plan.actions
                .iter()
                .any(|a| a.contains("Task.WA_Message_Id__c")),
            "{plan:?}"
        );
        let ana = record("wamid.1", "+491701234567", Some("Ana"));
        let mut photo = record("wamid.2", "+491701234567", Some("Ana"));
        photo.media_type = MediaKind::Image;
        for r in sf.deliver_batch(&[ana.clone(), photo.clone()]).await {
            r.unwrap();
        }
        let contact = sim
            .find("Contact", "WhatsApp_Id__c", "+491701234567")
            .unwrap();
        let contact_id = contact["Id"].as_str().unwrap().to_owned();
        // The account manager takes the Contact over; the next voice note's task is theirs.
        sim.set_field(
            "Contact",
            &contact_id,
            "OwnerId",
            json!("005sim000000000042AAA"),
        );
        let later = record("wamid.3", "+491701234567", Some("Ana"));
        for _ in 0..2 {
            for r in sf
                .deliver_batch(&[ana.clone(), photo.clone(), later.clone()])
                .await
            {
                r.unwrap();
            }
        }
        let tasks = sim.records("Task");
        assert_eq!(tasks.len(), 2, "voice notes only, once each: {tasks:?}");
        let first = sim.find("Task", "WA_Message_Id__c", "wamid.1").unwrap();
        assert_eq!(first["WhoId"], contact_id.as_str());
        assert_eq!(first["OwnerId"], "005sim000000000001AAA", "the owner then");
        assert_eq!(
            first["Subject"],
            "WhatsApp voice note from Ana (+491701234567)"
        );
        assert_eq!(
            first["ActivityDate"], "2026-11-24",
            "due 48 h after arrival"
        );
        assert_eq!(first["Status"], "Not Started");
        assert!(
            first["Description"]
                .as_str()
                .unwrap()
                .ends_with(&ana.file_url)
        );
        let second = sim.find("Task", "WA_Message_Id__c", "wamid.3").unwrap();
        assert_eq!(second["OwnerId"], "005sim000000000042AAA");

        let cleared = sf
            .expire_media(std::slice::from_ref(&ana), false, false)
            .await
            .unwrap();
        assert!(
            cleared
                .removed
                .contains(&"1 task(s) without the link".to_string()),
            "{cleared:?}"
        );
        let first = sim.find("Task", "WA_Message_Id__c", "wamid.1").unwrap();
        assert!(
            !first["Description"]
                .as_str()
                .unwrap()
                .contains(&ana.file_url)
        );
        let erased = sf
            .erase(&Phone::parse("+491701234567").unwrap(), false)
            .await
            .unwrap();
        assert!(
            erased
                .removed
                .iter()
                .any(|l| l.starts_with("2 task(s) of Contact")),
            "{erased:?}"
        );
        assert!(sim.records("Task").is_empty());
    }
}

mod consent {
    use super::writes_support::*;
    use serde_json::json;
    use wa2crm_core::Phone;

    #[tokio::test]
    async fn the_contacts_checkbox_says_whether_media_may_be_kept() {
        let sim = org().await;
        let mut c = config(&sim);
        c["consent_field"] = json!("WhatsApp_Consent__c");
        c["permission_set"] = json!("0PSsim000000001AAA");
        let sf = connector(&c).await;
        let problems = sf.check_schema().await.unwrap().problems.join("\n");
        assert!(problems.contains("WhatsApp_Consent__c"), "{problems}");
        let plan = sf.provision_schema(false).await.unwrap();
        assert!(
            plan.actions
                .iter()
                .any(|a| a.contains("Contact.WhatsApp_Consent__c")),
            "{plan:?}"
        );
        let ana = Phone::parse("+491701234567").unwrap();
        assert_eq!(
            sf.consent_of(&ana).await.unwrap(),
            Some(false),
            "no Contact: no consent"
        );
        for r in sf
            .deliver_batch(&[record("wamid.1", "+491701234567", Some("Ana"))])
            .await
        {
            r.unwrap();
        }
        assert_eq!(
            sf.consent_of(&ana).await.unwrap(),
            Some(false),
            "not ticked"
        );
        let contact = sim
            .find("Contact", "WhatsApp_Id__c", "+491701234567")
            .unwrap();
        let id = contact["Id"].as_str().unwrap();
        sim.set_field("Contact", id, "WhatsApp_Consent__c", json!(true));
        assert_eq!(sf.consent_of(&ana).await.unwrap(), Some(true));
        let without = connector(&config(&sim)).await;
        assert_eq!(without.consent_of(&ana).await.unwrap(), None);
    }
}

mod files {
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
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: Some(Arc::new(Stored)),
        };
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
        let context = ConnectorContext {
            state: Arc::new(MemoryStateStore::default()),
            media: Some(Arc::new(Stored)),
        };
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
}
