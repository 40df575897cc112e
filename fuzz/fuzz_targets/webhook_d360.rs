//! A 360dialog webhook as it arrives: any bytes, any `x-360dialog-signature` (hex, base64, with
//! or without `sha256=`), any shared-secret header. Both checks must answer — never panic — and
//! only the right secret or header value passes; the body parses as a Cloud API webhook or is
//! refused, never a panic, and every event it yields has an id and a sender.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use wa2crm_core::Source;
use wa2crm_whatsapp::{d360, meta};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (header, body) = data.split_at(split);
    let header_text = std::str::from_utf8(header).ok();
    let _ = d360::verify_signature(b"fuzz-partner-secret", body, header_text);
    let signed = d360::sign(b"fuzz-partner-secret", body);
    assert!(d360::verify_signature(b"fuzz-partner-secret", body, Some(&signed)).is_ok());
    assert!(d360::verify_signature(b"another-secret", body, Some(&signed)).is_err());
    let header_ok = d360::verify_header("x-wa2crm-token", b"fuzz-header-value", Some(header));
    assert_eq!(header_ok.is_ok(), header == b"fuzz-header-value");
    if let Ok(parsed) = meta::parse_webhook(Source::D360, body, OffsetDateTime::UNIX_EPOCH) {
        for e in &parsed.events {
            assert!(!e.message_id.is_empty());
            assert_eq!(e.source, Source::D360);
            assert!(e.sender.as_str().starts_with('+'));
        }
    }
});
