//! What an unauthenticated client can make the server spend, bounded: connections (a slot is
//! taken before a connection is accepted), the time to send a request's headers and its body
//! (slow-loris and slow bodies are cut off), and requests handled at once — in two budgets, so a
//! flood of `/metrics` or `/readyz` cannot take the webhooks' share; a request over its budget is
//! answered 503 at once with `Retry-After`, and WhatsApp sends a webhook again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The server's limits (`[server]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this.
    pub header_timeout: Duration,
    /// And its body within this.
    pub body_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests handled at once (webhooks and media links).
    pub max_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_requests: 256,
        }
    }
}

/// Requests to the observability routes handled at once: a scraper needs one or two.
pub const MAX_ADMIN_REQUESTS: usize = 16;

/// How long requests in flight may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// A budget of requests handled at once; over it, 503 at once.
#[derive(Clone)]
pub struct Budget(Arc<Semaphore>);

impl Budget {
    pub fn new(n: usize) -> Self {
        Budget(Arc::new(Semaphore::new(n.max(1))))
    }
}

/// The middleware that spends a [`Budget`]: the permit is held until the response's headers
/// are ready (a media link's body then streams on without it).
pub async fn within_budget(State(budget): State<Budget>, request: Request, next: Next) -> Response {
    let Ok(permit) = budget.0.clone().try_acquire_owned() else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "busy, try again\n").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// `router` behind `budget` and the body timeout.
pub fn bounded(router: Router, budget: Budget, limits: &Limits) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(budget, within_budget))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (a webhook whose commit is under way is still answered), for at most [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        // A free slot first: with every slot taken, connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset before accept: wait a moment, go on.
                    tracing::warn!(error = %e, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Requests still in flight after {DRAIN:?}; stopping anyway.");
    }
    Ok(())
}
