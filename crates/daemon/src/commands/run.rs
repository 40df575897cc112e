//! `wa2crm run`: the daemon.

use std::net::SocketAddr;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wa2crm_media::spool::{Kept, Spool};
use wa2crm_media::store::Storage;
use wa2crm_queue::{JobStore, SystemClock};
use wa2crm_whatsapp::media::GraphMedia;
use wa2crm_whatsapp::twilio::TwilioMedia;

use crate::config::{Config, Consent, ConsoleListener, Validated};
use crate::console::Console;
use crate::pipeline::{
    self, Allowlist, ConsentPolicy, Delivery, Jobs, MediaSources, MediaSteps, Notifier, Pipeline,
    RetryPolicy,
};
use crate::retention;
use crate::server::{self, AppState, MediaAccess};
use crate::systemd;

pub async fn main(location: &crate::config::ConfigLocation) -> anyhow::Result<ExitCode> {
    let validated = super::load_config(location)?;
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
    run_on(validated, None, stop, on_listening).await
}

/// [`run`] on a listener bound already (`None`: `server.listen` is bound here). The sandbox
/// binds first because its configuration must name the port: binding again later would race
/// any other process for that port.
pub async fn run_on(
    validated: Validated,
    bound: Option<std::net::TcpListener>,
    stop: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let store = super::open_queue(&validated.config.queue.url).await?;
    let metrics = crate::metrics::install();
    let wake = Arc::new(Notify::new());
    let config = &validated.config;
    let storage = Arc::new(Storage::open(&config.storage.url, &config.storage.options)?);
    let files = Arc::new(crate::media_source::StoredMedia(storage.clone()));
    let connectors = crate::connectors::build_all(config, store.clone(), Some(files)).await?;
    let delivery = Delivery::new(&connectors, &config.routes, store.clone());
    let console_connectors = connectors.clone();
    if let Some(policy) = validated.retention.clone() {
        retention::spawn_schedule(
            policy,
            store.clone(),
            storage.clone(),
            connectors.clone(),
            stop.clone(),
        );
    }
    let pipeline = build_pipeline(&validated, store.clone(), storage, delivery, wake.clone())?;
    let Validated {
        listen,
        admin_listen,
        limits,
        max_body_bytes,
        meta,
        d360,
        twilio,
        console,
        config,
        ..
    } = validated;
    let config = Arc::new(config);
    let pipeline = Arc::new(pipeline);
    let media = MediaAccess {
        storage: pipeline.media.storage.clone(),
        links: pipeline.media.links.clone(),
    };
    let listener = match bound {
        Some(l) => {
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)?
        }
        None => TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (server.listen)"))?,
    };
    let addr = listener.local_addr()?;
    let admin_listener = match admin_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (server.admin_listen)"))?,
        ),
        None => None,
    };
    let console = match console {
        None => None,
        Some(settings) => {
            let address = match (settings.on, &admin_listener) {
                (ConsoleListener::Admin, Some(a)) => a.local_addr()?,
                _ => addr,
            };
            let console = Console::new(
                settings,
                store.clone(),
                media.storage.clone(),
                media.links.clone(),
                console_connectors,
                config.clone(),
                wake.clone(),
                address,
            );
            console.spawn_refresh(stop.clone());
            tracing::info!(url = %format!("http://{address}/console"), "The console is served here.");
            Some(console)
        }
    };
    let state = AppState {
        store: store.clone(),
        meta,
        d360,
        twilio,
        metrics,
        wake,
        media: Some(media),
        readiness: Default::default(),
    };
    let mut router = server::router(
        state.clone(),
        max_body_bytes,
        &limits,
        admin_listen.is_none(),
    );
    let mut admin_console = None;
    if let Some(c) = console {
        // A budget of its own: a busy console never takes the webhooks' or the scrapes' share.
        let on = c.settings.on;
        let pages = server::limits::bounded(
            crate::console::router(c),
            server::limits::Budget::new(crate::console::MAX_REQUESTS),
            &limits,
        );
        if on == ConsoleListener::Main {
            router = router.merge(pages);
        } else {
            admin_console = Some(pages);
        }
    }
    let admin = match admin_listener {
        Some(admin) => {
            tracing::info!(addr = %admin.local_addr()?, "Metrics and readiness are served here.");
            let shutdown = stop.clone();
            let mut router = server::admin_router(state, &limits);
            if let Some(c) = admin_console {
                router = router.merge(c);
            }
            Some(tokio::spawn(async move {
                server::serve(
                    admin,
                    router,
                    limits,
                    async move { shutdown.cancelled().await },
                )
                .await
            }))
        }
        None => None,
    };
    let workers = pipeline::spawn_workers(pipeline.clone(), config.queue.workers, stop.clone());
    on_listening(addr);
    systemd::ready();
    systemd::spawn_queue_watch(
        store.clone(),
        Duration::from_secs(config.queue.backlog_warning_seconds.max(1)),
        stop.clone(),
    );
    // Its own token: the row goes last, so `status` says "running" while anything is being done.
    let gone = CancellationToken::new();
    let heartbeat = crate::heartbeat::spawn(store.clone(), gone.clone());
    systemd::spawn_watchdog(store, stop.clone());
    let shutdown = stop.clone();
    let result = server::serve(listener, router, limits, async move {
        shutdown.cancelled().await
    })
    .await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    systemd::stopping();
    stop.cancel();
    // Workers give their current job back to the queue on stop; wait for that to be written.
    for w in workers {
        let _ = w.await;
    }
    pipeline.tasks.close();
    pipeline.tasks.wait().await;
    gone.cancel();
    let _ = heartbeat.await;
    result.context("HTTP server failed")
}

/// The media pipeline a validated configuration describes, whole: its storage and its
/// connectors' delivery are built first, since the connectors read files from that storage.
pub fn build_pipeline(
    validated: &Validated,
    store: Arc<dyn JobStore>,
    storage: Arc<Storage>,
    delivery: Delivery,
    wake: Arc<Notify>,
) -> anyhow::Result<Pipeline> {
    let config = &validated.config;
    let kept = if storage.keeps_spool_files() {
        Kept::AsStored
    } else {
        Kept::UntilUploaded
    };
    let spool = Spool::open(&config.media.spool_dir, kept).with_context(|| {
        format!(
            "cannot use media.spool_dir {}",
            config.media.spool_dir.display()
        )
    })?;
    Ok(Pipeline {
        jobs: Jobs {
            store,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy {
                max_attempts: config.queue.max_attempts,
                max: Duration::from_secs(config.queue.retry_max_seconds),
                ..RetryPolicy::default()
            },
            lease: Duration::from_secs(config.queue.lease_seconds),
            wake,
            instance: pipeline::instance_name(),
        },
        media: MediaSteps {
            sources: media_sources(config)?,
            spool,
            storage,
            links: validated.links.clone(),
            public_url: validated.public_url.to_string(),
            max_bytes: config.media.max_bytes,
            transcode: config.media.transcode,
            tags: validated.tags.clone(),
            consent: consent_policy(config)?,
        },
        delivery,
        notifier: config
            .notifications
            .webhook
            .as_ref()
            .map(Notifier::new)
            .transpose()?,
        deliveries: Arc::new(Semaphore::new(pipeline::MAX_DELIVERIES)),
        tasks: TaskTracker::new(),
    })
}

/// The clients that fetch media from each configured source.
fn media_sources(config: &Config) -> anyhow::Result<MediaSources> {
    let s = &config.sources;
    let read_timeout = Duration::from_secs(config.media.read_timeout_seconds);
    Ok(MediaSources {
        meta: match s
            .meta
            .as_ref()
            .and_then(|m| Some((m, m.access_token.as_ref()?)))
        {
            Some((m, token)) => Some(
                GraphMedia::new(&m.graph_url, &m.api_version, token.clone())?
                    .with_read_timeout(read_timeout)?,
            ),
            None => None,
        },
        d360: match &s.d360 {
            Some(d) => Some(
                GraphMedia::d360(&d.base_url, d.api_key.clone())?
                    .with_read_timeout(read_timeout)?,
            ),
            None => None,
        },
        twilio: match &s.twilio {
            Some(t) => Some(
                TwilioMedia::new(&t.api_url, &t.account_sid, t.auth_token.clone())?
                    .with_read_timeout(read_timeout)?
                    .with_media_wait(Duration::from_secs(t.media_wait_seconds)),
            ),
            None => None,
        },
        twilio_delete_after_copy: s.twilio.as_ref().is_some_and(|t| t.delete_after_copy),
    })
}

/// `policy.consent` in working form; the allowlist is read now, so a bad path stops `run`.
pub fn consent_policy(config: &Config) -> anyhow::Result<ConsentPolicy> {
    Ok(match config.policy.consent {
        Consent::None => ConsentPolicy::Everyone,
        Consent::CrmField => ConsentPolicy::CrmField(Default::default()),
        Consent::Allowlist => {
            let path = config
                .policy
                .consent_allowlist
                .as_deref()
                .context("policy.consent_allowlist is missing")?;
            ConsentPolicy::Allowlist(Allowlist::open(path).map_err(anyhow::Error::msg)?)
        }
    })
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
