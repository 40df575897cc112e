//! `wa2crm run`: the daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Validated;
use crate::server::{self, AppState};
use crate::systemd;

pub async fn main(config_path: &Path) -> anyhow::Result<ExitCode> {
    let validated = super::load_config(config_path)?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutting down: finishing requests in flight.");
        on_signal.cancel();
    });
    run(validated, stop, |addr| {
        tracing::info!(%addr, "wa2crm is listening.");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs until `stop` is cancelled. `on_listening` is told the bound address (tests and the
/// sandbox bind port 0).
pub async fn run(
    validated: Validated,
    stop: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let Validated {
        listen,
        max_body_bytes,
        meta,
        config,
    } = validated;
    let store = super::open_queue(&config.queue.url).await?;
    let metrics = crate::metrics::install();
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    let addr = listener.local_addr()?;
    let router = server::router(
        AppState {
            store: store.clone(),
            meta,
            metrics,
        },
        max_body_bytes,
    );
    on_listening(addr);
    systemd::ready();
    systemd::spawn_watchdog(store, stop.clone());
    let shutdown = stop.clone();
    let result = server::serve(listener, router, async move { shutdown.cancelled().await }).await;
    systemd::stopping();
    stop.cancel();
    result.context("HTTP server failed")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
