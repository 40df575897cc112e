//! A Cloud API webhook (Meta's or 360dialog's) as it arrives: any bytes, any signature header.
//! The check and the parser must answer — never panic, never hang — and a body signed with the
//! right secret must always pass the check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use wa2crm_core::Source;
use wa2crm_whatsapp::{d360, meta};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (header, body) = data.split_at(split);
    let header = std::str::from_utf8(header).ok();
    let _ = meta::verify_signature(b"fuzz-secret", body, header);
    let _ = d360::verify_signature(b"fuzz-secret", body, header);
    let signed = meta::sign(b"fuzz-secret", body);
    assert!(meta::verify_signature(b"fuzz-secret", body, Some(&signed)).is_ok());
    let now = OffsetDateTime::UNIX_EPOCH;
    if let Ok(parsed) = meta::parse_webhook(Source::Meta, body, now) {
        for e in &parsed.events {
            assert!(!e.message_id.is_empty());
        }
    }
    let _ = meta::parse_webhook(Source::D360, body, now);
});
