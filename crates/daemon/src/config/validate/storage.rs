//! `[storage]`: where files go, and the signer of the links that lead to them.

use std::time::Duration;

use secrecy::ExposeSecret;
use wa2crm_media::link::LinkSigner;

use super::problems::Problems;
use crate::config::Config;

/// The storage URL is one `media::store` opens; the link signer, when its secrets will do.
pub(super) fn storage(p: &mut Problems, config: &Config) -> Option<LinkSigner> {
    p.url(
        "storage.url",
        &config.storage.url,
        &wa2crm_media::store::SCHEMES,
    );
    link_signer(p, &config.storage)
}

/// The media links' signer: the secret, the previous ones still accepted, the lifetime.
fn link_signer(p: &mut Problems, storage: &crate::config::StorageConfig) -> Option<LinkSigner> {
    let secret = match &storage.link_secret {
        None => {
            p.add(
                "storage.link_secret",
                "is missing: it signs the media links. Generate one with: openssl rand -base64 32",
            );
            None
        }
        Some(secret) if secret.expose_secret().len() < 16 => {
            p.add(
                "storage.link_secret",
                "is shorter than 16 characters; anyone could forge media links. \
                 Generate one with: openssl rand -base64 32",
            );
            None
        }
        Some(secret) => Some(secret),
    };
    for (i, previous) in storage.previous_link_secrets.iter().enumerate() {
        if previous.expose_secret().len() < 16 {
            p.add(
                format!("storage.previous_link_secrets[{i}]"),
                "is shorter than 16 characters; links made with it could be forged",
            );
        }
    }
    let lifetime = p.duration("storage.link_lifetime", storage.link_lifetime.as_deref());
    if lifetime.is_some_and(|d| d < Duration::from_secs(3600)) {
        p.add(
            "storage.link_lifetime",
            "is shorter than an hour: links in the CRM would die before anyone opens them",
        );
    }
    Some(
        LinkSigner::new(secret?.expose_secret().as_bytes())
            .with_previous(
                storage
                    .previous_link_secrets
                    .iter()
                    .map(|s| s.expose_secret().as_bytes()),
            )
            .with_lifetime(lifetime),
    )
}
