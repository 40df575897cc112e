//! A `/media/{token}` link as anyone on the internet can send it: any token, valid or forged,
//! after a rotation or not. Verification must answer — never panic — and only tokens this
//! signer (or a listed previous secret) made may pass; the presentation of whatever key a token
//! could name is always one of the safe forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wa2crm_media::link::{LinkSigner, Linked};
use wa2crm_media::present::Presentation;

fuzz_target!(|data: &[u8]| {
    let signer = LinkSigner::new(b"fuzz-link-secret-0123")
        .with_previous([b"fuzz-old-secret-456789".as_slice()]);
    let stranger = LinkSigner::new(b"someone-elses-secret-00");
    if let Ok(token) = std::str::from_utf8(data) {
        // A token made by another secret never passes: a forgery would need the HMAC.
        if stranger.verify(token).is_some() {
            assert!(signer.verify(token).is_none());
        }
        if let Some(Linked::Object(key)) = signer.verify(token) {
            // Only possible for a key this signer signed: sign it again and compare.
            assert_eq!(signer.token(&key), token);
        }
        let shown = Presentation::of(token);
        assert!(shown.inline || shown.content_type == "application/octet-stream");
        assert!(shown
            .file_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    }
    // Every link the signer makes of a job passes, and names that job.
    if data.len() >= 9 {
        let mut n = [0u8; 8];
        n.copy_from_slice(&data[..8]);
        let job = i64::from_le_bytes(n);
        let rendition = data[8] & 1 == 1;
        let token = signer.media_token(job, rendition);
        assert_eq!(signer.verify(&token), Some(Linked::Media { job, rendition }));
        assert_eq!(stranger.verify(&token), None);
    }
});
