//! A vendor that takes a request and never answers — the fault only the caller's timeout ends.
//!
//! Handlers decide their answer under a lock, synchronously; one that should hang marks its
//! response instead, and [`hold_marked`] (a layer on every simulator's router) never lets a marked
//! response leave. The request's work may already be done by then, as when a real vendor commits
//! a write and the answer is lost.

use axum::response::Response;

#[derive(Debug, Clone, Copy)]
struct Hang;

/// Marks `response` so that it is never sent.
pub(crate) fn hang(mut response: Response) -> Response {
    response.extensions_mut().insert(Hang);
    response
}

/// The layer: a marked response waits forever (until the client gives up and the connection,
/// with this future, is dropped).
pub(crate) async fn hold_marked(response: Response) -> Response {
    if response.extensions().get::<Hang>().is_some() {
        std::future::pending::<()>().await;
    }
    response
}
