//! Twilio media that is not there yet: Twilio answers 404 for valid inbound WhatsApp media for a
//! few seconds while the asset propagates. Within `sources.twilio.media_wait_seconds` of the
//! webhook the real binary tries again, soon and then less often, with the credentials on every
//! try and only on Twilio's host; after it the job is dead-lettered with a reason an admin can act
//! on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::twilio::{TWILIO_ACCOUNT, TWILIO_TOKEN, post_twilio, twilio_source};
use wa2crm_e2e::{Daemon, NO_GRAPH, config_toml, free_port, hubspot_section};
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::samples;
use wa2crm_sandbox::twilio::{Inbound, TwilioSim, webhook_params};

const HS_TOKEN: &str = "pat-na1-twilio-media";

struct World {
    twilio: TwilioSim,
    hs: HubSpotSim,
    d: Daemon,
    _dir: tempfile::TempDir,
}

/// A daemon with Twilio (whose new media answers 404 for `propagation`) and HubSpot;
/// `twilio_extra` goes into `[sources.twilio]`.
async fn world(propagation: Duration, twilio_extra: &str) -> World {
    let twilio = TwilioSim::start(TWILIO_ACCOUNT, TWILIO_TOKEN)
        .await
        .unwrap();
    twilio.set_propagation_delay(propagation);
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "{}{}",
        twilio_source(port, &twilio, twilio_extra),
        hubspot_section(&hs.url(), &format!("token = \"{HS_TOKEN}\""))
    );
    let d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, NO_GRAPH, &extra),
        port,
    )
    .await;
    World {
        twilio,
        hs,
        d,
        _dir: dir,
    }
}

impl World {
    /// Posts one Twilio message carrying the voice sample; returns its job's message id.
    async fn send_voice_note(&self, sid: &str) -> String {
        let voice = samples::all()
            .into_iter()
            .find(|s| s.file == "voice.ogg")
            .unwrap();
        let inbound = Inbound {
            message_sid: sid,
            from: "+4917012345678",
            to: "+14155238886",
            profile_name: Some("Ana"),
            body: None,
            media: vec![(
                self.twilio.add_media(sid, voice.bytes, "audio/ogg"),
                "audio/ogg".into(),
            )],
        };
        let params = webhook_params(TWILIO_ACCOUNT, &inbound);
        let (status, _, text) =
            post_twilio(&self.d, &self.d.url("/webhooks/twilio"), &params).await;
        assert_eq!(status, 200, "{text}");
        format!("{sid}-0")
    }

    /// Polls `status` until `until` says yes of the queue counts, or fails after `limit`.
    async fn wait(
        &self,
        limit: Duration,
        until: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.d.status();
            if until(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{s}\n{}", self.d.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_answered_404_for_four_seconds_is_delivered_once_without_a_replay() {
    let w = world(Duration::from_secs(4), "").await;
    let message_id = w
        .send_voice_note("MM0000000000000000000000000000propag")
        .await;
    let s = w
        .wait(Duration::from_secs(60), |s| {
            let c = &s["queue"]["counts"];
            assert_eq!(c["dead"], 0, "a 404 within the window is not final: {s}");
            c["done"] == 1
        })
        .await;
    assert_eq!(s["queue"]["counts"]["done"], 1);
    let notes = w.hs.records("notes");
    assert_eq!(notes.len(), 1, "one note, not one per try");
    assert_eq!(notes[0].properties["wa_message_id"], message_id);
    let c = w.twilio.counts();
    assert!(
        w.twilio.not_yet_answered() >= 2,
        "tried again while Twilio still answered 404, soon after the first: {c:?}"
    );
    assert_eq!(
        c.unauthorized, 0,
        "every try carried the credentials: {c:?}"
    );
    assert_eq!(c.credentials_on_storage, 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_still_404_after_the_window_is_dead_lettered_with_its_reason() {
    let w = world(Duration::from_secs(3600), "media_wait_seconds = 2").await;
    w.send_voice_note("MM0000000000000000000000000000gone00")
        .await;
    let s = w
        .wait(Duration::from_secs(60), |s| {
            s["queue"]["counts"]["dead"] == 1
        })
        .await;
    let reason = s["dead_letters"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("still answers 404")
            && reason.contains("deleted at Twilio")
            && reason.contains("media_wait_seconds"),
        "{reason}"
    );
    assert!(w.hs.records("notes").is_empty());
    let c = w.twilio.counts();
    assert!(c.media_requests >= 2, "tried within the window: {c:?}");
    assert_eq!(
        (
            c.storage_downloads,
            c.credentials_on_storage,
            c.unauthorized
        ),
        (0, 0, 0),
        "a 404 sends the credentials nowhere but Twilio's API: {c:?}"
    );
}
