//! A receiver for wa2crm's outgoing notification webhooks, as a chat tool's incoming webhook
//! would be: it keeps every POST (headers and body) and answers 200, or the statuses it is told to
//! answer first (a receiver that is down, one that refuses).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One POST received.
#[derive(Debug, Clone)]
pub struct Caught {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Inner {
    caught: Vec<Caught>,
    answers: VecDeque<StatusCode>,
}

pub struct WebhookCatcher {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookCatcher {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut i = lock(&inner);
    match i.answers.pop_front() {
        Some(s) if !s.is_success() => s,
        _ => {
            i.caught.push(Caught { headers, body });
            StatusCode::OK
        }
    }
}

impl WebhookCatcher {
    pub async fn start() -> std::io::Result<WebhookCatcher> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(WebhookCatcher {
            inner,
            addr,
            server,
        })
    }

    /// The URL to configure as `notifications.webhook.url`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next POSTs with these statuses (a non-2xx one is not kept).
    pub fn answer(&self, statuses: impl IntoIterator<Item = u16>) {
        lock(&self.inner).answers.extend(
            statuses
                .into_iter()
                .map(|s| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)),
        );
    }

    /// Every POST kept, in order.
    pub fn caught(&self) -> Vec<Caught> {
        lock(&self.inner).caught.clone()
    }
}
