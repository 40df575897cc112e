//! Pure checks of a loaded [`Config`]: no network, no files. Every problem names its key; each
//! section has its file, and resolves into the typed values `run` builds from.

use std::net::SocketAddr;

use reqwest::Url;
use secrecy::SecretString;
use wa2crm_core::TagRules;
use wa2crm_media::link::LinkSigner;

use super::Config;
use super::explain::ConfigErrors;
use crate::retention::RetentionPolicy;

/// A configuration that passed validation, resolved into the typed values `run` builds from:
/// nothing here is parsed or checked again.
#[derive(Debug)]
pub struct Validated {
    pub listen: SocketAddr,
    /// `server.public_url`: the base of the links written into CRM fields.
    pub public_url: Url,
    /// `storage.link_secret` (and the previous ones, and `link_lifetime`): signs media links.
    pub links: LinkSigner,
    /// `[retention]`; `None`: media is kept forever.
    pub retention: Option<RetentionPolicy>,
    /// `server.admin_listen`: where `/metrics` and `/readyz` go instead.
    pub admin_listen: Option<SocketAddr>,
    pub limits: crate::server::limits::Limits,
    /// `[[tags]]`, compiled.
    pub tags: TagRules,
    pub max_body_bytes: usize,
    pub meta: Option<MetaIntake>,
    pub d360: Option<D360Intake>,
    pub twilio: Option<TwilioIntake>,
    /// `[console]`; `None`: no console.
    pub console: Option<crate::console::Settings>,
    pub config: Config,
}

/// The secrets the Meta webhook routes check requests with.
#[derive(Debug, Clone)]
pub struct MetaIntake {
    pub app_secret: SecretString,
    pub verify_token: SecretString,
}

/// How `POST /webhooks/d360` knows a request comes from 360dialog.
#[derive(Debug, Clone)]
pub enum D360Intake {
    /// `x-360dialog-signature`: HMAC-SHA256 of the body with the partner secret.
    Signature(SecretString),
    /// A header the operator configured at 360dialog, compared in constant time.
    Header {
        name: axum::http::HeaderName,
        value: SecretString,
    },
}

/// What `POST /webhooks/twilio` checks requests with.
#[derive(Debug, Clone)]
pub struct TwilioIntake {
    pub auth_token: SecretString,
    pub webhook_url: String,
}

mod connectors;
mod console;
mod policy;
mod problems;
mod server;
mod sources;
mod storage;

use problems::Problems;

/// Checks everything `run` relies on and returns it resolved, or every problem found, each under
/// its dotted key. A section at a time; each resolves into the typed values `run` builds from.
pub fn validate(config: Config) -> Result<Validated, ConfigErrors> {
    let mut p = Problems(Vec::new());
    let server = server::server(&mut p, &config);
    server::queue(&mut p, &config);
    let links = storage::storage(&mut p, &config);
    server::media(&mut p, &config);
    let intakes = sources::sources(&mut p, &config);
    sources::routes(&mut p, &config);
    policy::notifications(&mut p, &config);
    let tags = policy::tag_rules(&mut p, &config.tags);
    policy::consent(&mut p, &config);
    let retention = policy::retention(&mut p, &config);
    let console = console::console(&mut p, &config, server.listen, server.admin_listen);
    for (name, table) in &config.connectors {
        connectors::validate_connector(&mut p, name, table);
    }
    let (Some(listen), Some(public_url), Some(links), true) =
        (server.listen, server.public_url, links, p.0.is_empty())
    else {
        return Err(ConfigErrors(p.0));
    };
    Ok(Validated {
        listen,
        public_url,
        links,
        retention,
        admin_listen: server.admin_listen,
        limits: server.limits,
        tags,
        max_body_bytes: server.max_body_bytes,
        meta: intakes.meta,
        d360: intakes.d360,
        twilio: intakes.twilio,
        console,
        config,
    })
}
