//! OAuth: refreshes one at a time, expiry on the way, a dead refresh token.

use super::*;

fn oauth_sim_config(ttl: Duration) -> HubSpotSimConfig {
    HubSpotSimConfig::oauth(OAuthApp {
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        refresh_token: "rt-0".into(),
        token_ttl: ttl,
        rotate_refresh_token: true,
    })
}

fn oauth_config(sim: &HubSpotSim) -> Value {
    let mut c = config(
        sim,
        json!({"client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-0"}),
    );
    c.as_object_mut().unwrap().remove("token");
    c
}

#[tokio::test]
async fn oauth_tokens_expiring_every_two_seconds_are_refreshed_one_at_a_time_under_load() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(2)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(7) {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let hs = s.hs.clone();
                let r = record(
                    &format!("wamid.{n}.{i}"),
                    &format!("+1415555{:04}", n * 8 + i),
                );
                tokio::spawn(async move { hs.deliver(&[r]).await })
            })
            .collect();
        for t in tasks {
            ok(t.await.unwrap());
        }
        n += 1;
    }
    let counts = s.sim.counts();
    assert!(counts.refreshes >= 3, "{counts:?}");
    assert_eq!(counts.max_concurrent_refreshes, 1, "{counts:?}");
    assert_eq!(counts.failed_refreshes, 0, "{counts:?}");
    // The rotated refresh token was stored before use and is the one HubSpot accepts now.
    let stored = s
        .state
        .get_state("hs", wa2crm_rest::refresh::REFRESH_TOKEN_KEY)
        .await
        .unwrap()
        .unwrap();
    let current = s.sim.current_refresh_token().unwrap();
    assert!(stored.contains(&current), "{stored} vs {current}");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_replayed_and_a_restart_uses_the_rotated_token()
 {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c.clone()).await;
    s.hs.provision(false).await.unwrap();
    s.sim.expire_access_tokens();
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    let counts = s.sim.counts();
    assert_eq!(counts.refreshes, 2, "{counts:?}");
    assert_eq!(counts.unauthorized, 1, "{counts:?}");
    // A new process with the same config (its refresh token long rotated away) and the stored one.
    let restarted = HubSpotFactory
        .build("hs", &c, &ConnectorContext::new(s.state.clone()))
        .await
        .unwrap();
    ok(restarted
        .deliver(&[record("wamid.2", "+14155550123")])
        .await);
    assert_eq!(s.sim.counts().failed_refreshes, 0);
}

#[tokio::test]
async fn a_token_expiring_on_its_way_again_and_again_is_refreshed_each_time_never_paused() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.hs.provision(false).await.unwrap();
    let before = s.sim.counts().refreshes;
    s.sim.inject([
        Fault::ExpiredToken,
        Fault::ExpiredToken,
        Fault::ExpiredToken,
    ]);
    ok(s.hs.deliver(&[record("wamid.1", "+14155550123")]).await);
    assert_eq!(s.sim.counts().refreshes - before, 3, "{:?}", s.sim.counts());
    assert!(
        s.state
            .get_state("hs", keys::PAUSE_REASON)
            .await
            .unwrap()
            .is_none(),
        "an expired token is no reason to pause"
    );
}

#[tokio::test]
async fn a_dead_refresh_token_pauses_the_connector_and_says_what_to_do() {
    let sim = HubSpotSim::start(oauth_sim_config(Duration::from_secs(1800)))
        .await
        .unwrap();
    let c = oauth_config(&sim);
    let s = build(sim, c).await;
    s.sim.revoke_refresh_token();
    let results = s.hs.deliver(&[record("wamid.1", "+14155550123")]).await;
    let e = results[0].as_ref().unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::RateLimited { .. }),
        "jobs wait, they are not dead-lettered: {e}"
    );
    assert!(e.message().contains("BAD_REFRESH_TOKEN"), "{e}");
    assert!(e.message().contains("Re-authorize the app"), "{e}");
    let reason = s
        .state
        .get_state("hs", keys::PAUSE_REASON)
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("Re-authorize"), "{reason}");
    // Paused: no more refresh attempts until the admin acts.
    s.hs.deliver(&[record("wamid.2", "+14155550123")]).await;
    assert_eq!(s.sim.counts().failed_refreshes, 1);
}
