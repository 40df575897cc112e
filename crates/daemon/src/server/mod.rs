//! The HTTP side of the daemon: webhook intake, health and metrics.
//!
//! Where the data goes: a webhook body is checked and parsed in [`webhooks`], its media events are
//! committed to the [`JobStore`], and only then is the sender answered 200. Workers take it from
//! the queue.

mod health;
pub mod limits;
pub(crate) mod media;
mod providers;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wa2crm_media::link::LinkSigner;
use wa2crm_media::store::Storage;
use wa2crm_queue::JobStore;

use crate::config::{D360Intake, MetaIntake, TwilioIntake};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn JobStore>,
    pub meta: Option<MetaIntake>,
    pub d360: Option<D360Intake>,
    pub twilio: Option<TwilioIntake>,
    pub metrics: PrometheusHandle,
    /// Rung after every commit that added jobs, to wake idle workers.
    pub wake: Arc<Notify>,
    /// Storage and link keys, for `/media/{token}` and readiness; `None` serves no media.
    pub media: Option<MediaAccess>,
    /// The last readiness check, so a flood of `/readyz` costs one check a second.
    pub readiness: Arc<tokio::sync::Mutex<Option<health::Readiness>>>,
}

/// What the media links need.
#[derive(Clone)]
pub struct MediaAccess {
    pub storage: Arc<Storage>,
    pub links: LinkSigner,
}

/// The public routes: webhooks and media links (and `/healthz`); with `observability`, also
/// `/readyz` and `/metrics`, when no `server.admin_listen` takes them elsewhere.
pub fn router(
    state: AppState,
    max_body_bytes: usize,
    limits: &limits::Limits,
    observability: bool,
) -> Router {
    let public = Router::new()
        .route(
            "/webhooks/whatsapp",
            get(webhooks::meta_subscribe).post(webhooks::meta_post),
        )
        .route("/webhooks/d360", post(providers::d360_post))
        .route("/webhooks/twilio", post(providers::twilio_post))
        .route("/media/{token}", get(media::get_media))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state.clone());
    let public = limits::bounded(public, limits::Budget::new(limits.max_requests), limits);
    if observability {
        public.merge(admin_router(state, limits))
    } else {
        public.route("/healthz", get(health::healthz))
    }
}

/// The observability routes, with a budget of their own so a flood of scrapes cannot take the
/// webhooks' share: on `server.admin_listen`, or merged into the public router.
pub fn admin_router(state: AppState, limits: &limits::Limits) -> Router {
    let admin = Router::new()
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state);
    limits::bounded(
        admin,
        limits::Budget::new(limits::MAX_ADMIN_REQUESTS),
        limits,
    )
    .route("/healthz", get(health::healthz))
}

/// Serves until `shutdown` resolves, then lets requests in flight finish: a webhook whose commit
/// is under way is still answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: limits::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits::serve(listener, router, limits, shutdown).await
}
