//! 360dialog's webhooks: Cloud API bodies (read with [`crate::meta::parse_webhook`]),
//! authenticated by 360dialog's optional `x-360dialog-signature` — an HMAC-SHA256 of the body
//! with the partner secret, whose encoding its docs leave open, so hex and base64 are both
//! accepted — or by a header the operator set along with the webhook URL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-360dialog-signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no {0} header")]
    Missing(String),
    #[error("x-360dialog-signature is neither hex nor base64")]
    Malformed,
    #[error("x-360dialog-signature does not match the body (wrong sources.d360.webhook_secret?)")]
    Mismatch,
    #[error("{0} does not hold sources.d360.webhook_header_value")]
    WrongHeader(String),
}

/// Checks `x-360dialog-signature` over the raw body, in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), AuthError> {
    let given = header
        .map(str::trim)
        .ok_or_else(|| AuthError::Missing(SIGNATURE_HEADER.into()))?;
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let bytes = hex::decode(given)
        .ok()
        .or_else(|| STANDARD.decode(given).ok())
        .ok_or(AuthError::Malformed)?;
    // HMAC is defined for keys of every length (long keys are hashed first), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&bytes).map_err(|_| AuthError::Mismatch)
}

/// Compares a shared-secret header in constant time.
pub fn verify_header(name: &str, expected: &[u8], given: Option<&[u8]>) -> Result<(), AuthError> {
    let given = given.ok_or_else(|| AuthError::Missing(name.into()))?;
    if bool::from(given.ct_eq(expected)) {
        Ok(())
    } else {
        Err(AuthError::WrongHeader(name.into()))
    }
}

/// The signature header for `body`, hex-encoded (for the sandbox and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_signatures_verify_and_tampering_does_not() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let hex_sig = sign(b"partner", body);
        assert_eq!(verify_signature(b"partner", body, Some(&hex_sig)), Ok(()));
        let b64 = STANDARD.encode(hex::decode(&hex_sig).unwrap());
        assert_eq!(verify_signature(b"partner", body, Some(&b64)), Ok(()));
        assert_eq!(
            verify_signature(b"partner", body, Some(&format!("sha256={hex_sig}"))),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"partner", b"{}", Some(&hex_sig)),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", body, Some(&hex_sig)),
            Err(AuthError::Mismatch)
        );
        assert!(matches!(
            verify_signature(b"partner", body, None),
            Err(AuthError::Missing(_))
        ));
        assert_eq!(
            verify_signature(b"partner", body, Some("%%%")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn a_shared_header_must_match_exactly() {
        assert_eq!(verify_header("x-token", b"s3cret", Some(b"s3cret")), Ok(()));
        assert!(verify_header("x-token", b"s3cret", Some(b"s3cre")).is_err());
        assert!(verify_header("x-token", b"s3cret", None).is_err());
    }
}
