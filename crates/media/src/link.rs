//! The links written into CRM fields: `{public_url}/media/{token}`. Nobody can make a link
//! without `storage.link_secret`.
//!
//! A link names one media of one message, not the stored object: `1.{key id}.{job}.{o|r}.{expiry}.{mac}`
//! (the original or its rendition, `expiry` 0 for none), resolved through the queue at each
//! request. So a link dies with its media — erasure and retention revoke it even when the same
//! file is kept for someone else who sent it too — and, with `storage.link_lifetime`, when it
//! expires. The key id names the secret it was made with: after `link_secret` is rotated, links
//! made with a secret still listed in `storage.previous_link_secrets` keep working.
//!
//! Links made before this form, `{base64url(object key)}.{mac}`, name the object itself; they
//! keep working as long as the object exists, with any listed secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// One media: the job's stored original, or its rendition.
    Media { job: i64, rendition: bool },
    /// An object by its key (links made before per-media links).
    Object(String),
}

struct Key {
    /// The first 8 hex digits of the secret's SHA-256: which secret made a token.
    id: String,
    secret: Vec<u8>,
}

impl Key {
    fn new(secret: &[u8]) -> Key {
        Key {
            id: hex::encode(&Sha256::digest(secret)[..4]),
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC is defined for keys of every length, so this cannot fail.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }
}

/// Makes and checks link tokens.
pub struct LinkSigner {
    /// The current secret first, then the previous ones (accepted, never used to make links).
    keys: Vec<Key>,
    /// How long a new link works; `None`: as long as its media exists.
    lifetime: Option<std::time::Duration>,
}

impl Clone for LinkSigner {
    fn clone(&self) -> Self {
        LinkSigner {
            keys: self
                .keys
                .iter()
                .map(|k| Key {
                    id: k.id.clone(),
                    secret: k.secret.clone(),
                })
                .collect(),
            lifetime: self.lifetime,
        }
    }
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner([REDACTED])")
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LinkSigner {
    pub fn new(secret: &[u8]) -> Self {
        LinkSigner {
            keys: vec![Key::new(secret)],
            lifetime: None,
        }
    }

    /// Secrets rotated out, whose links are still accepted.
    pub fn with_previous<'a>(mut self, secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        self.keys.extend(secrets.into_iter().map(Key::new));
        self
    }

    /// New links stop working this long after they were made.
    pub fn with_lifetime(mut self, lifetime: Option<std::time::Duration>) -> Self {
        self.lifetime = lifetime;
        self
    }

    fn media_mac(key: &Key, job: i64, part: &str, expiry: u64) -> HmacSha256 {
        let mut m = key.mac();
        m.update(format!("1|{job}|{part}|{expiry}").as_bytes());
        m
    }

    /// The token of one media, made now.
    pub fn media_token(&self, job: i64, rendition: bool) -> String {
        self.media_token_at(job, rendition, now_s())
    }

    fn media_token_at(&self, job: i64, rendition: bool, now: u64) -> String {
        let key = &self.keys[0];
        let part = if rendition { "r" } else { "o" };
        let expiry = self
            .lifetime
            .map_or(0, |l| now.saturating_add(l.as_secs()).max(1));
        let mac = Self::media_mac(key, job, part, expiry)
            .finalize()
            .into_bytes();
        format!(
            "1.{}.{job}.{part}.{expiry}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The link of one media.
    pub fn media_url(&self, public_url: &str, job: i64, rendition: bool) -> String {
        format!(
            "{}/media/{}",
            public_url.trim_end_matches('/'),
            self.media_token(job, rendition)
        )
    }

    /// What a token names, if it is ours, made with a listed secret and not expired (the MAC is
    /// checked in constant time).
    pub fn verify(&self, token: &str) -> Option<Linked> {
        self.verify_at(token, now_s())
    }

    fn verify_at(&self, token: &str, now: u64) -> Option<Linked> {
        let parts: Vec<&str> = token.split('.').collect();
        match parts[..] {
            ["1", kid, job, part, expiry, mac] => {
                let key = self.keys.iter().find(|k| k.id == kid)?;
                let job: i64 = job.parse().ok()?;
                let expiry: u64 = expiry.parse().ok()?;
                let rendition = match part {
                    "o" => false,
                    "r" => true,
                    _ => return None,
                };
                let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
                Self::media_mac(key, job, part, expiry)
                    .verify_slice(&mac)
                    .ok()?;
                if expiry != 0 && now >= expiry {
                    return None;
                }
                Some(Linked::Media { job, rendition })
            }
            [key_b64, mac_b64] => {
                let key = URL_SAFE_NO_PAD.decode(key_b64).ok()?;
                let mac = URL_SAFE_NO_PAD.decode(mac_b64).ok()?;
                self.keys.iter().find(|k| {
                    let mut m = k.mac();
                    m.update(&key);
                    m.verify_slice(&mac).is_ok()
                })?;
                String::from_utf8(key).ok().map(Linked::Object)
            }
            _ => None,
        }
    }

    /// A link of the form made before per-media links, naming the object: for tests and tools
    /// that reach an object directly. The daemon writes [`LinkSigner::media_url`]s.
    pub fn token(&self, key: &str) -> String {
        let mut m = self.keys[0].mac();
        m.update(key.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(key),
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_790_000_000;

    #[test]
    fn a_media_link_names_its_job_and_part_and_resists_tampering() {
        let s = LinkSigner::new(b"0123456789abcdef0123");
        let t = s.media_token_at(42, false, T0);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{t}"
        );
        assert_eq!(
            s.verify_at(&t, T0),
            Some(Linked::Media {
                job: 42,
                rendition: false
            })
        );
        let r = s.media_token_at(42, true, T0);
        assert_eq!(
            s.verify_at(&r, T0),
            Some(Linked::Media {
                job: 42,
                rendition: true
            })
        );
        // Another job, the other part, a cut MAC, another secret: all refused.
        for forged in [
            t.replace(".42.", ".43."),
            t.replace(".o.", ".r."),
            t[..t.len() - 2].to_owned(),
        ] {
            assert_eq!(s.verify_at(&forged, T0), None, "{forged}");
        }
        assert_eq!(
            LinkSigner::new(b"other-secret-000000").verify_at(&t, T0),
            None
        );
        assert_eq!(s.verify_at("nonsense", T0), None);
        assert_eq!(s.verify_at("", T0), None);
        assert_eq!(format!("{s:?}"), "LinkSigner([REDACTED])");
    }

    #[test]
    fn after_rotation_old_links_work_while_their_secret_is_listed() {
        let old = LinkSigner::new(b"the-old-secret-0000000");
        let t = old.media_token_at(7, false, T0);
        let legacy = old.token("2026/11/22/ab.ogg");
        let rotated = LinkSigner::new(b"the-new-secret-1111111");
        assert_eq!(rotated.verify_at(&t, T0), None);
        let grace = LinkSigner::new(b"the-new-secret-1111111")
            .with_previous([b"the-old-secret-0000000".as_slice()]);
        assert!(grace.verify_at(&t, T0).is_some());
        assert_eq!(
            grace.verify_at(&legacy, T0),
            Some(Linked::Object("2026/11/22/ab.ogg".into()))
        );
        // New links are made with the new secret only.
        let fresh = grace.media_token_at(7, false, T0);
        assert!(rotated.verify_at(&fresh, T0).is_some());
        assert_eq!(old.verify_at(&fresh, T0), None);
    }

    #[test]
    fn a_link_with_a_lifetime_expires() {
        let s =
            LinkSigner::new(b"k3y-k3y-k3y-k3y-k3y").with_lifetime(Some(Duration::from_secs(3600)));
        let t = s.media_token_at(1, false, T0);
        assert!(s.verify_at(&t, T0 + 3599).is_some());
        assert_eq!(s.verify_at(&t, T0 + 3600), None);
        // Lengthening its life is tampering.
        let stretched = t.replace(&format!(".{}.", T0 + 3600), &format!(".{}.", T0 + 7200));
        assert_eq!(s.verify_at(&stretched, T0 + 3600), None);
        let forever = LinkSigner::new(b"k3y-k3y-k3y-k3y-k3y").media_token_at(1, false, T0);
        assert!(s.verify_at(&forever, u64::MAX).is_some());
    }

    proptest! {
        #[test]
        fn any_key_round_trips_as_an_object_link(key in "\\PC{1,120}") {
            let s = LinkSigner::new(b"k3y-k3y-k3y-k3y-k3y");
            prop_assert_eq!(s.verify_at(&s.token(&key), T0), Some(Linked::Object(key)));
        }

        #[test]
        fn any_job_round_trips(job in any::<i64>(), rendition in any::<bool>()) {
            let s = LinkSigner::new(b"k3y-k3y-k3y-k3y-k3y");
            prop_assert_eq!(
                s.verify_at(&s.media_token_at(job, rendition, T0), T0),
                Some(Linked::Media { job, rendition })
            );
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in "\\PC{0,200}") {
            let _ = LinkSigner::new(b"k").verify_at(&token, T0);
        }
    }
}
