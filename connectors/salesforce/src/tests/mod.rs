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
    let context = ConnectorContext::new(state);
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
async fn client_credentials_log_in_through_oauth2_and_a_wrong_secret_says_what_to_check() {
    let sim = SalesforceSim::start(SalesforceSimConfig::new(CLIENT_ID, USER))
        .await
        .unwrap();
    let config = |secret: &str| {
        json!({"type": "salesforce", "login_url": sim.url(), "client_id": CLIENT_ID,
            "client_secret": secret, "object": "M__c", "external_id": "E__c",
            "contact_lookup": "C__c", "contact_key": "K__c", "fields": {"file_url": "U__c"}})
    };
    let api = api_for(&config("sandbox-client-secret"), Arc::default()).await;
    assert_eq!(limits(&api).await.unwrap().status, 200);
    assert_eq!(sim.counts().logins, 1);

    let state = Arc::new(MemoryStateStore::default());
    let api = api_for(&config("wrong-secret"), state.clone()).await;
    let e = limits(&api).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::RateLimited { .. }),
        "jobs wait: {e}"
    );
    let reason = state
        .get_state("sf", keys::PAUSE_REASON)
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        reason
            .contains("Salesforce refused the login (invalid_client: invalid client credentials)")
            && reason.contains("client credentials flow is enabled"),
        "{reason}"
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
    api.engine.pause.resume().await;
    let e = api
        .call(Method::GET, "/sobjects/Contact/describe", None, true)
        .await
        .unwrap_err();
    assert!(e.message().contains("REQUEST_LIMIT_EXCEEDED"), "{e}");
    assert!(pause_reason().await.contains("REQUEST_LIMIT_EXCEEDED"));

    // Still paused, but the reserve is what holds it now.
    api.engine.pause.resume().await;
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
    api.engine.pause.resume().await;
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
            .engine
            .rules
            .usage_pause
            .load(std::sync::atomic::Ordering::Acquire)
    );
}

mod consent;
mod erase;
mod expire;
mod files;
mod matching;
mod schema;
mod tasks;
mod writes;
mod writes_support;
