//! The operator console: web pages at `/console` where the people running wa2crm see that media
//! flows, which connector is paused and why, replay what failed, find one customer's media and
//! play it, and erase a person on request.
//!
//! Where a request goes: [`auth`] first (every page needs a login session, every POST its CSRF
//! token), then one page module: [`overview`] (figures from a snapshot refreshed in the
//! background, so a page never counts a large queue), [`dead`], [`media`], [`person`],
//! [`settings`]. Pages are rendered on the server ([`page`], maud: every value is escaped by
//! construction) and use no JavaScript at all; the only other file served is the stylesheet.
//! Replays and erasures are written to the queue's audit log.

mod auth;
mod dead;
mod media;
mod overview;
mod page;
mod person;
mod settings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wa2crm_core::Connector;
use wa2crm_core::phone_match::DefaultCountry;
use wa2crm_media::link::LinkSigner;
use wa2crm_media::store::Storage;
use wa2crm_queue::JobStore;

use crate::config::{Config, ConsoleListener};

pub use auth::{hash_password, one_time_password};

/// Console requests handled at once (a browser opens six connections; a media page loads up to
/// fifty players); beyond, 503 with Retry-After.
pub const MAX_REQUESTS: usize = 32;

/// `[console]`, checked.
#[derive(Debug)]
pub struct Settings {
    pub on: ConsoleListener,
    /// User name → argon2 PHC string. Empty: no login (allowed on loopback only; the pages say
    /// so).
    pub users: BTreeMap<String, SecretString>,
    pub session: Duration,
    pub country: Option<DefaultCountry>,
}

/// Everything the console's pages read and act on.
pub struct Console {
    pub settings: Settings,
    pub store: Arc<dyn JobStore>,
    pub storage: Arc<Storage>,
    pub links: LinkSigner,
    pub connectors: BTreeMap<String, Arc<dyn Connector>>,
    /// The running configuration: shown (secrets masked) and checked.
    pub config: Arc<Config>,
    /// Rung after a replay, so idle workers take the jobs at once.
    pub wake: Arc<Notify>,
    /// Where the console is served, for the notice on pages without a login.
    pub address: SocketAddr,
    sessions: auth::Sessions,
    overview: overview::Snapshots,
    last_check: std::sync::Mutex<Option<settings::Findings>>,
}

impl Console {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Settings,
        store: Arc<dyn JobStore>,
        storage: Arc<Storage>,
        links: LinkSigner,
        connectors: BTreeMap<String, Arc<dyn Connector>>,
        config: Arc<Config>,
        wake: Arc<Notify>,
        address: SocketAddr,
    ) -> Arc<Console> {
        Arc::new(Console {
            sessions: auth::Sessions::new(settings.session, store.clone()),
            settings,
            store,
            storage,
            links,
            connectors,
            config,
            wake,
            address,
            overview: overview::Snapshots::default(),
            last_check: Default::default(),
        })
    }

    /// No users configured: anyone who reaches the (loopback) listener is let in.
    pub fn is_open(&self) -> bool {
        self.settings.users.is_empty()
    }

    /// Keeps the overview's figures fresh until `stop`.
    pub fn spawn_refresh(self: &Arc<Self>, stop: CancellationToken) {
        overview::spawn_refresh(self.clone(), stop);
    }
}

/// The console's routes, all under `/console`.
pub fn router(console: Arc<Console>) -> Router {
    let pages = Router::new()
        .route("/console", get(overview::page))
        .route("/console/dead", get(dead::page))
        .route("/console/dead/replay", post(dead::replay))
        .route("/console/media", get(media::page))
        .route("/console/file/{id}", get(media::file))
        .route("/console/person/{phone}", get(person::page))
        .route("/console/person/{phone}/erase", post(person::erase))
        .route("/console/settings", get(settings::page))
        .route("/console/settings/check", post(settings::check))
        .route("/console/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            auth::require_session,
        ));
    Router::new()
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/style.css", get(page::stylesheet))
        .merge(pages)
        .layer(axum::middleware::from_fn(page::security_headers))
        .with_state(console)
}
