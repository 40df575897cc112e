//! The real binary receiving media through the Business Solution Providers — 360dialog and
//! Twilio — and delivering it into both CRM simulators, as a customer on Meta's Cloud API gets it;
//! webhooks that fail their authentication are refused; routes send a number to some connectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use wa2crm_e2e::twilio::{TWILIO_ACCOUNT, TWILIO_TOKEN, post_twilio, twilio_source};
use wa2crm_e2e::{ACCESS_TOKEN, Daemon, config_toml, free_port, hubspot_section, salesforce_org};
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::hubspot::{HubSpotSim, HubSpotSimConfig};
use wa2crm_sandbox::salesforce::SalesforceSim;
use wa2crm_sandbox::samples::{self, SampleMedia};
use wa2crm_sandbox::twilio::{Inbound, TwilioSim, signed_form, webhook_params};
use wa2crm_sandbox::webhooks;

const HS_TOKEN: &str = "pat-na1-providers";
const D360_KEY: &str = "d360-e2e-key";
const D360_HEADER_VALUE: &str = "d360-e2e-header-secret";
const BUSINESS: &str = "+14155238886";

/// Both CRMs, provisioned, and a daemon whose extra sections are `sources`.
struct World {
    hs: HubSpotSim,
    sf: SalesforceSim,
    d: Daemon,
    _graph: GraphSim,
    _dir: tempfile::TempDir,
}

async fn world(sources: impl FnOnce(u16) -> String) -> World {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let hs = HubSpotSim::start(HubSpotSimConfig::private_app(HS_TOKEN))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (sf, salesforce) = salesforce_org(dir.path()).await;
    let port = free_port();
    let extra = format!(
        "{}{}{}",
        sources(port),
        hubspot_section(&hs.url(), &format!("token = \"{HS_TOKEN}\"")),
        salesforce
    );
    let d = Daemon::start_provisioned(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    )
    .await;
    World {
        hs,
        sf,
        d,
        _graph: graph,
        _dir: dir,
    }
}

impl World {
    async fn wait_done(&self, done: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.d.status();
            let c = &s["queue"]["counts"];
            assert_eq!(c["dead"], 0, "{s}\n{}", self.d.log());
            if c["done"] == done {
                return;
            }
            assert!(Instant::now() < deadline, "{s}\n{}", self.d.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The media record in Salesforce and the note in HubSpot for one message id.
    fn assert_in_both_crms(&self, message_id: &str, kind: &str, sender: &str) {
        let record = self
            .sf
            .find("WhatsApp_Media__c", "WA_Message_Id__c", message_id)
            .unwrap_or_else(|| panic!("no Salesforce record for {message_id}"));
        let contact = self.sf.find("Contact", "WhatsApp_Id__c", sender).unwrap();
        assert_eq!(record["Contact__c"], contact["Id"]);
        assert_eq!(record["Media_Type__c"], kind);
        let note = self
            .hs
            .find("notes", "wa_message_id", message_id)
            .unwrap_or_else(|| panic!("no HubSpot note for {message_id}"));
        assert!(
            note.properties["hs_note_body"].contains(&format!("WhatsApp {}", kind_word(kind))),
            "{:?}",
            note.properties
        );
        assert!(self.hs.find("contacts", "whatsapp_id", sender).is_some());
    }
}

fn kind_word(kind: &str) -> &str {
    match kind {
        "voice" => "voice note",
        other => other,
    }
}

fn sample(file: &str) -> SampleMedia {
    samples::all()
        .into_iter()
        .find(|s| s.file == file)
        .unwrap_or_else(|| panic!("no sample {file}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_through_360dialog_lands_in_both_crms() {
    let d360 = GraphSim::start_d360(D360_KEY).await.unwrap();
    let w = world(|_| {
        format!(
            r#"
[sources.d360]
api_key = "{D360_KEY}"
base_url = "{}"
webhook_header = "X-Wa2crm-Token"
webhook_header_value = "{D360_HEADER_VALUE}"
"#,
            d360.url()
        )
    })
    .await;
    let voice = sample("voice.ogg");
    let digest = d360.add_media("d360-media-1", voice.bytes, &voice.mime_type);
    let s = webhooks::Sample {
        kind: voice.kind,
        mime_type: voice.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut m = webhooks::message_json(&s, "wamid.d360.1", "d360-media-1", 1_790_000_000);
    m["audio"]["sha256"] = digest.into();
    let body = webhooks::webhook_body(vec![m]);
    let client = reqwest::Client::new();
    let post = |header: Option<&'static str>| {
        let mut r = client
            .post(w.d.url("/webhooks/d360"))
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(v) = header {
            r = r.header("X-Wa2crm-Token", v);
        }
        r.send()
    };
    let refused = post(Some("guess")).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("webhook_header_value"),
        "the refusal says which setting to compare"
    );
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(
        w.d.total_jobs(),
        0,
        "nothing stored from unauthenticated requests"
    );
    assert_eq!(post(Some(D360_HEADER_VALUE)).await.unwrap().status(), 200);

    w.wait_done(1).await;
    w.assert_in_both_crms(
        "wamid.d360.1",
        "voice",
        &format!("+{}", webhooks::SENDER_WA_ID),
    );
    let c = d360.counts();
    assert_eq!((c.resolves, c.downloads, c.unauthorized), (1, 1, 0));
    let link =
        w.sf.find("WhatsApp_Media__c", "WA_Message_Id__c", "wamid.d360.1")
            .unwrap()["Media_Url__c"]
            .as_str()
            .unwrap()
            .to_owned();
    let played = reqwest::get(&link).await.unwrap();
    assert_eq!(played.status(), 200);
    assert_eq!(played.bytes().await.unwrap().len(), voice.bytes.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_media_lands_in_both_crms_and_the_credentials_never_reach_its_storage() {
    let twilio = TwilioSim::start(TWILIO_ACCOUNT, TWILIO_TOKEN)
        .await
        .unwrap();
    let w = world(|port| twilio_source(port, &twilio, "")).await;
    let webhook_url = w.d.url("/webhooks/twilio");
    let voice = sample("voice.ogg");
    let image = sample("image.jpg");
    let sid = "MM0123456789abcdef0123456789abcdef";
    let inbound = Inbound {
        message_sid: sid,
        from: "+4917012345678",
        to: BUSINESS,
        profile_name: Some("Ana López"),
        body: Some("the broken part"),
        media: vec![
            (
                twilio.add_media(sid, voice.bytes, "audio/ogg"),
                "audio/ogg".into(),
            ),
            (
                twilio.add_media(sid, image.bytes, "image/jpeg"),
                "image/jpeg".into(),
            ),
        ],
    };
    let params = webhook_params(TWILIO_ACCOUNT, &inbound);

    // Behind a proxy that terminates TLS, Twilio signed https://…: the error says what to fix.
    let proxied = webhook_url.replace("http://", "https://");
    let (status, _, text) = post_twilio(&w.d, &proxied, &params).await;
    assert_eq!(status, 403);
    assert!(
        text.contains(&format!("Twilio signed {proxied}")) && text.contains("webhook_url"),
        "{text}"
    );
    let mut tampered = params.clone();
    tampered.push(("Injected".into(), "1".into()));
    let (body, signature) = signed_form(TWILIO_TOKEN, &webhook_url, &params);
    let tampered_body = format!("{body}&Injected=1");
    let r = reqwest::Client::new()
        .post(&webhook_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature)
        .body(tampered_body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a parameter added on the way breaks the signature"
    );
    assert_eq!(w.d.total_jobs(), 0);

    let (status, content_type, text) = post_twilio(&w.d, &webhook_url, &params).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/xml");
    assert!(text.contains("<Response></Response>"), "{text}");
    // Twilio redelivers on a timeout: the same message maps onto the same jobs.
    assert_eq!(post_twilio(&w.d, &webhook_url, &params).await.0, 200);

    w.wait_done(2).await;
    assert_eq!(w.d.total_jobs(), 2);
    w.assert_in_both_crms(&format!("{sid}-0"), "voice", "+4917012345678");
    w.assert_in_both_crms(&format!("{sid}-1"), "image", "+4917012345678");
    let contact =
        w.hs.find("contacts", "whatsapp_id", "+4917012345678")
            .unwrap();
    assert_eq!(contact.properties["firstname"], "Ana");
    let c = twilio.counts();
    assert_eq!(c.credentials_on_storage, 0, "{c:?}");
    assert!(c.storage_downloads >= 2, "{c:?}");
    // delete_after_copy: once stored, Twilio no longer holds the files.
    assert_eq!((c.deleted, twilio.media_count()), (2, 0), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_number_reaches_only_its_connectors_and_a_catch_all_stops_the_rest() {
    let twilio = TwilioSim::start(TWILIO_ACCOUNT, TWILIO_TOKEN)
        .await
        .unwrap();
    let routes = format!(
        r#"
[[routes]]
source = "twilio"
number = "{BUSINESS}"
connectors = ["salesforce"]

[[routes]]
source = "twilio"
number = "*"
connectors = []
"#
    );
    let w = world(|port| twilio_source(port, &twilio, &routes)).await;
    let webhook_url = w.d.url("/webhooks/twilio");
    let image = sample("image.jpg");
    for (sid, to) in [("MMrouted", BUSINESS), ("MMother", "+14155230000")] {
        let params = webhook_params(
            TWILIO_ACCOUNT,
            &Inbound {
                message_sid: sid,
                from: "+4917012345678",
                to,
                profile_name: None,
                body: None,
                media: vec![(
                    twilio.add_media(sid, image.bytes, "image/jpeg"),
                    "image/jpeg".into(),
                )],
            },
        );
        assert_eq!(post_twilio(&w.d, &webhook_url, &params).await.0, 200);
    }
    w.wait_done(2).await;
    assert!(
        w.sf.find("WhatsApp_Media__c", "WA_Message_Id__c", "MMrouted-0")
            .is_some()
    );
    assert!(
        w.sf.find("WhatsApp_Media__c", "WA_Message_Id__c", "MMother-0")
            .is_none()
    );
    assert!(
        w.hs.records("notes").is_empty(),
        "HubSpot serves neither number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_360dialog_partner_signature_is_checked_over_the_body() {
    let d360 = GraphSim::start_d360(D360_KEY).await.unwrap();
    let w = world(|_| {
        format!(
            "\n[sources.d360]\napi_key = \"{D360_KEY}\"\nbase_url = \"{}\"\nwebhook_secret = \"partner-secret\"\n",
            d360.url()
        )
    })
    .await;
    let image = sample("image.jpg");
    let digest = d360.add_media("d360-signed", image.bytes, &image.mime_type);
    let s = webhooks::Sample {
        kind: image.kind,
        mime_type: image.mime_type.clone(),
        caption: None,
        file_name: None,
    };
    let mut m = webhooks::message_json(&s, "wamid.d360.signed", "d360-signed", 1_790_000_000);
    m["image"]["sha256"] = digest.into();
    let body = webhooks::webhook_body(vec![m]);
    let post = |signature: String| {
        reqwest::Client::new()
            .post(w.d.url("/webhooks/d360"))
            .header("Content-Type", "application/json")
            .header("x-360dialog-signature", signature)
            .body(body.clone())
            .send()
    };
    let wrong = wa2crm_whatsapp::d360::sign(b"not-the-secret", &body);
    assert_eq!(post(wrong).await.unwrap().status(), 401);
    let right = wa2crm_whatsapp::d360::sign(b"partner-secret", &body);
    assert_eq!(post(right).await.unwrap().status(), 200);
    w.wait_done(1).await;
    w.assert_in_both_crms(
        "wamid.d360.signed",
        "image",
        &format!("+{}", webhooks::SENDER_WA_ID),
    );
}
