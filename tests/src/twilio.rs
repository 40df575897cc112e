//! The Twilio side of end-to-end tests: the `[sources.twilio]` section for a simulator, and
//! signed webhooks posted to the daemon.

use wa2crm_sandbox::twilio::{TwilioSim, signed_form};

use crate::Daemon;

pub const TWILIO_ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-e2e-auth-token";

/// `[sources.twilio]` for `twilio`, the daemon on `port`; `extra` goes at its end (more keys,
/// then routes).
pub fn twilio_source(port: u16, twilio: &TwilioSim, extra: &str) -> String {
    format!(
        r#"
[sources.twilio]
account_sid = "{TWILIO_ACCOUNT}"
auth_token = "{TWILIO_TOKEN}"
webhook_url = "http://127.0.0.1:{port}/webhooks/twilio"
api_url = "{}"
delete_after_copy = true
{extra}
"#,
        twilio.api_url()
    )
}

/// Posts `params` signed for `signed_for`; the answer's status, content type and text.
pub async fn post_twilio(
    d: &Daemon,
    signed_for: &str,
    params: &[(String, String)],
) -> (u16, String, String) {
    let (body, signature) = signed_form(TWILIO_TOKEN, signed_for, params);
    let r = d
        .client()
        .post(d.url("/webhooks/twilio"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}
