use super::*;

fn at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn parse(fixture: &str) -> ParsedWebhook {
    parse_webhook(Source::Meta, fixture.as_bytes(), at()).unwrap()
}

#[test]
fn voice_note_is_its_own_kind_with_every_field() {
    let p = parse(include_str!("../../../fixtures/meta/voice.json"));
    assert_eq!(p.skipped, SkipCounts::default());
    let [e] = p.events.as_slice() else {
        panic!("{:?}", p.events)
    };
    assert_eq!(e.source, Source::Meta);
    assert_eq!(
        e.message_id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(e.phone_number_id, "106540352242922");
    assert_eq!(e.sender.as_str(), "+16505551234");
    assert_eq!(e.sender_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(e.kind, MediaKind::Voice);
    assert_eq!(e.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(
        e.sha256.as_deref(),
        Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")
    );
    assert_eq!(e.timestamp.unix_timestamp(), 1_749_416_383);
    let MediaRef::GraphMedia { media_id, url } = &e.media else {
        panic!("{:?}", e.media)
    };
    assert_eq!(media_id, "1003383421387256");
    assert!(
        url.as_deref()
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/")
    );
}

#[test]
fn every_media_kind_and_non_media_skipped() {
    let p = parse(include_str!("../../../fixtures/meta/all_kinds.json"));
    let kinds: Vec<_> = p
        .events
        .iter()
        .map(|e| (e.message_id.as_str(), e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("wamid.audio1", MediaKind::Audio),
            ("wamid.video1", MediaKind::Video),
            ("wamid.image1", MediaKind::Image),
            ("wamid.doc1", MediaKind::Document),
            ("wamid.sticker1", MediaKind::Sticker),
        ]
    );
    // text, reaction, unsupported and an unknown future type: skipped, not errors.
    assert_eq!(p.skipped.non_media, 4);
    assert_eq!(p.skipped.invalid, 0);
    let video = &p.events[1];
    assert_eq!(video.caption.as_deref(), Some("Die Tür ist kaputt"));
    assert_eq!(video.sender_name.as_deref(), Some("Jürgen Weiß"));
    let doc = &p.events[3];
    assert_eq!(doc.file_name.as_deref(), Some("invoice-4711.pdf"));
    assert_eq!(doc.caption.as_deref(), Some("see attached"));
    assert_eq!(p.events[4].mime_type.as_deref(), Some("image/webp"));
    // No url in the webhook: resolved later through the media id.
    assert!(
        matches!(&p.events[0].media, MediaRef::GraphMedia { url: None, media_id } if media_id == "2001")
    );
}

#[test]
fn multi_entry_multi_change_batches_are_all_read() {
    let p = parse(include_str!("../../../fixtures/meta/batch.json"));
    let got: Vec<_> = p
        .events
        .iter()
        .map(|e| {
            (
                e.message_id.as_str(),
                e.phone_number_id.as_str(),
                e.sender.as_str(),
                e.sender_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("wamid.e1c1m1", "PN1", "+5511987654321", Some("Ana")),
            ("wamid.e1c1m2", "PN1", "+447700900123", Some("Bo")),
            ("wamid.e2c1m1", "PN2", "+8613800138000", Some("Chen")),
        ]
    );
    // A numeric timestamp is tolerated.
    assert_eq!(p.events[1].timestamp.unix_timestamp(), 1_749_416_401);
    assert_eq!(p.events[1].kind, MediaKind::Voice);
    assert_eq!(
        p.skipped,
        SkipCounts {
            statuses: 2,
            errors: 1,
            non_media: 0,
            invalid: 0,
            other_changes: 1
        }
    );
}

#[test]
fn broken_items_are_counted_and_the_rest_kept() {
    let p = parse(include_str!("../../../fixtures/meta/invalid_items.json"));
    assert_eq!(p.skipped.invalid, 4, "{:?}", p.problems);
    assert_eq!(p.problems.len(), 4);
    assert!(p.problems[0].contains("without an id"), "{}", p.problems[0]);
    assert!(p.problems[1].contains("no media id"), "{}", p.problems[1]);
    assert!(p.problems[2].contains("sender"), "{}", p.problems[2]);
    assert!(
        p.problems[3].contains("unreadable shape"),
        "{}",
        p.problems[3]
    );
    let [good] = p.events.as_slice() else {
        panic!("{:?}", p.events)
    };
    assert_eq!(good.message_id, "wamid.good");
    // An unreadable timestamp falls back to the time of receipt.
    assert_eq!(good.timestamp, at());
}

#[test]
fn whole_body_errors() {
    assert!(matches!(
        parse_webhook(Source::Meta, b"not json", at()),
        Err(ParseError::Json(_))
    ));
    assert!(matches!(
        parse_webhook(Source::Meta, b"[1,2]", at()),
        Err(ParseError::Json(_))
    ));
    assert!(matches!(
        parse_webhook(Source::Meta, br#"{"object":"page","entry":[]}"#, at()),
        Err(ParseError::UnexpectedObject(o)) if o == "page"
    ));
    // Unknown top-level fields and an empty entry list are fine.
    let p = parse_webhook(
        Source::D360,
        br#"{"object":"whatsapp_business_account","entry":[],"new_field":{"x":1}}"#,
        at(),
    )
    .unwrap();
    assert!(p.events.is_empty());
}

#[test]
fn sender_missing_from_message_falls_back_to_the_single_contact() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
        "metadata":{"phone_number_id":"PN"},
        "contacts":[{"wa_id":"16505550000","profile":{"name":"Solo"}}],
        "messages":[{"id":"wamid.nofrom","timestamp":"1","type":"sticker","sticker":{"id":"7"}}]}}]}]}"#;
    let p = parse_webhook(Source::D360, body.as_bytes(), at()).unwrap();
    assert_eq!(p.events[0].sender.as_str(), "+16505550000");
    assert_eq!(p.events[0].sender_name.as_deref(), Some("Solo"));
    assert_eq!(p.events[0].source, Source::D360);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = parse_webhook(Source::Meta, &body, at());
    }
}
