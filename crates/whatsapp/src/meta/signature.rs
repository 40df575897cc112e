//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret, as lowercase hex.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error(
        "X-Hub-Signature-256 does not match the body (wrong app secret, or the body was altered)"
    )]
    Mismatch,
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length (long keys are hashed first), so this cannot fail.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// The header value Meta would send for `body`: `sha256=<hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks the header against the exact bytes received, in constant time.
///
/// Meta documents that it signs "an escaped unicode version of the payload": when the raw check
/// fails and the body has non-ASCII bytes, the check is repeated over the body with every non-ASCII
/// character written as `\uXXXX` (lowercase hex, UTF-16 code units), as whatsapp-api-js does after
/// its issue #290.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut m = mac(secret);
    m.update(body);
    if m.verify_slice(&expected).is_ok() {
        return Ok(());
    }
    if !body.is_ascii()
        && let Ok(text) = std::str::from_utf8(body)
    {
        let mut m = mac(secret);
        m.update(escape_unicode(text).as_bytes());
        if m.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Writes every character outside `\0`..`~` as `\uXXXX` escapes of its UTF-16 code units.
fn escape_unicode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut units = [0u16; 2];
    for c in text.chars() {
        if (c as u32) <= 0x7e {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"app-secret";

    #[test]
    fn accepts_its_own_signature_and_rejects_tampering() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = sign(SECRET, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(verify_signature(SECRET, body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_signature(SECRET, b"{\"object\":\"x\"}", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC-style test vector.
        let sig = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        assert_eq!(
            verify_signature(
                b"key",
                b"The quick brown fox jumps over the lazy dog",
                Some(sig)
            ),
            Ok(())
        );
    }

    #[test]
    fn malformed_and_missing_headers() {
        assert_eq!(
            verify_signature(SECRET, b"x", None),
            Err(SignatureError::Missing)
        );
        for bad in ["", "sha1=abcd", "sha256=zz", "sha256=abcd", "f7bc83f4"] {
            assert_eq!(
                verify_signature(SECRET, b"x", Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let body = b"{}";
        let sig = sign(SECRET, body)
            .to_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(verify_signature(SECRET, body, Some(&sig)), Ok(()));
    }

    #[test]
    fn escaped_unicode_fallback() {
        // The body on the wire has raw UTF-8; Meta signed the \u-escaped form.
        let raw = "{\"caption\":\"J'ai mangé des pâtes 🍝\"}";
        let escaped = "{\"caption\":\"J'ai mang\\u00e9 des p\\u00e2tes \\ud83c\\udf5d\"}";
        assert_eq!(escape_unicode(raw), escaped);
        let sig = sign(SECRET, escaped.as_bytes());
        assert_eq!(verify_signature(SECRET, raw.as_bytes(), Some(&sig)), Ok(()));
        // And a raw signature over the raw body still works.
        let sig = sign(SECRET, raw.as_bytes());
        assert_eq!(verify_signature(SECRET, raw.as_bytes(), Some(&sig)), Ok(()));
        // The fallback does not accept a signature of something else.
        let sig = sign(SECRET, b"{\"caption\":\"other\"}");
        assert_eq!(
            verify_signature(SECRET, raw.as_bytes(), Some(&sig)),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), header in "\\PC{0,80}") {
            let _ = verify_signature(SECRET, &body, Some(&header));
        }

        #[test]
        fn every_body_verifies_with_its_signature(body in "\\PC{0,128}") {
            let sig = sign(SECRET, body.as_bytes());
            prop_assert_eq!(verify_signature(SECRET, body.as_bytes(), Some(&sig)), Ok(()));
        }
    }
}
