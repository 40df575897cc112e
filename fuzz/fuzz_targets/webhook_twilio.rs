//! A Twilio webhook as it arrives: any form body, any signature. Parameters are read, the
//! signature checked (including the proxy-URL variants tried on failure) and the media messages
//! parsed, without a panic; a form signed with the right token always passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use wa2crm_whatsapp::twilio;

const URL: &str = "https://wa2crm.example.com/webhooks/twilio";

fuzz_target!(|data: &[u8]| {
    let params = twilio::form_params(data);
    let header = params
        .iter()
        .find(|(k, _)| k == "X")
        .map(|(_, v)| v.clone());
    let _ = twilio::verify_signature("fuzz-token", URL, &params, header.as_deref());
    let signed = twilio::sign("fuzz-token", URL, &params);
    assert!(twilio::verify_signature("fuzz-token", URL, &params, Some(&signed)).is_ok());
    let parsed = twilio::parse_form(&params, OffsetDateTime::UNIX_EPOCH);
    assert!(
        parsed.events.len() <= 10,
        "never more files than WhatsApp allows"
    );
});
