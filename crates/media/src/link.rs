//! The links written into CRM fields: `{public_url}/media/{token}`, where the token carries the
//! object's key and an HMAC of it with `storage.link_secret`. Nobody can make a link to an object
//! without the secret, and a link stays valid as long as the object exists.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Makes and checks link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner([REDACTED])")
    }
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> Self {
        LinkSigner {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC is defined for keys of every length, so this cannot fail.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    /// `{base64url(key)}.{base64url(hmac(key))}`: URL-safe, no padding.
    pub fn token(&self, key: &str) -> String {
        let mut m = self.mac();
        m.update(key.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(key),
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }

    /// The object key a token names, if its HMAC is right (checked in constant time).
    pub fn verify(&self, token: &str) -> Option<String> {
        let (key_b64, mac_b64) = token.split_once('.')?;
        let key = URL_SAFE_NO_PAD.decode(key_b64).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac_b64).ok()?;
        let mut m = self.mac();
        m.update(&key);
        m.verify_slice(&mac).ok()?;
        String::from_utf8(key).ok()
    }

    /// The full link for a key.
    pub fn url(&self, public_url: &str, key: &str) -> String {
        format!(
            "{}/media/{}",
            public_url.trim_end_matches('/'),
            self.token(key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_tampering() {
        let s = LinkSigner::new(b"0123456789abcdef0123");
        let key = "2026/11/22/ab12.ogg";
        let t = s.token(key);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{t}"
        );
        assert_eq!(s.verify(&t).as_deref(), Some(key));
        // Another secret, another key under the same MAC, a cut MAC, garbage: all refused.
        assert_eq!(LinkSigner::new(b"other-secret-000000").verify(&t), None);
        let (_, mac) = t.split_once('.').unwrap();
        let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode("2026/11/22/other.ogg"));
        assert_eq!(s.verify(&forged), None);
        assert_eq!(s.verify(&t[..t.len() - 2]), None);
        assert_eq!(s.verify("nonsense"), None);
        assert_eq!(s.verify(""), None);
        assert_eq!(
            s.url("https://wa2crm.example.com/", key),
            format!("https://wa2crm.example.com/media/{t}")
        );
        assert_eq!(format!("{s:?}"), "LinkSigner([REDACTED])");
    }

    proptest! {
        #[test]
        fn any_key_round_trips(key in "\\PC{1,120}") {
            let s = LinkSigner::new(b"k3y-k3y-k3y-k3y-k3y");
            prop_assert_eq!(s.verify(&s.token(&key)), Some(key));
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in "\\PC{0,200}") {
            let _ = LinkSigner::new(b"k").verify(&token);
        }
    }
}
