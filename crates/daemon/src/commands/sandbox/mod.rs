//! `wa2crm sandbox`: the real daemon on a throwaway directory, fed with signed sample webhooks
//! whose media is served by the bundled simulators: every sample through Meta's Cloud API, and
//! one each through 360dialog and Twilio.
//!
//! Everything that runs is the production code (`run`, the intake, the workers, the storage, the
//! HubSpot, Salesforce, Zendesk and Zoho connectors); only WhatsApp and the CRMs are simulated. The CRM mappings,
//! tag rules, consent policy and notifications are the admin's (`--config`) or the example
//! configuration's (deploy/wa2crm.example.toml); the mappings are provisioned into one simulator
//! per connector first ([`crms`]); the report shows, per mapped field, what landed.

mod config;
mod crms;
mod customers;
mod feed;
mod watch;
mod zoho;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wa2crm_sandbox::catcher::WebhookCatcher;
use wa2crm_sandbox::graph::GraphSim;
use wa2crm_sandbox::samples;
use wa2crm_sandbox::twilio::TwilioSim;

/// The app secret the sandbox signs with; printed, since it protects nothing.
pub const SANDBOX_APP_SECRET: &str = "sandbox-app-secret";
const SANDBOX_VERIFY_TOKEN: &str = "sandbox-verify-token";
const SANDBOX_ACCESS_TOKEN: &str = "sandbox-access-token";
const SANDBOX_D360_KEY: &str = "sandbox-d360-api-key";
const SANDBOX_D360_HEADER: &str = "X-Sandbox-Token";
const SANDBOX_D360_HEADER_VALUE: &str = "sandbox-d360-header-secret";
const SANDBOX_TWILIO_ACCOUNT: &str = "AC00000000000000000000000000sandbox";
const SANDBOX_TWILIO_TOKEN: &str = "sandbox-twilio-auth-token";

/// What the sandbox logs: warnings, but not a media library's chatter about the samples.
pub const LOG_FILTER: &str = "warn,lofty=error";

pub async fn main(
    admin_config: Option<&crate::config::ConfigLocation>,
    serve: bool,
    listen: SocketAddr,
) -> anyhow::Result<ExitCode> {
    // What the admin configured (or the example): mappings, tags, policy, notifications. Only
    // what touches the outside world is swapped for the sandbox's own.
    let (base, whose) = match admin_config {
        Some(location) => (
            location
                .load_mapping_view()
                .map_err(|e| anyhow::anyhow!(location.report(&e)))?,
            "your mapping",
        ),
        None => (crms::example()?, "the example mapping"),
    };
    let dir = tempfile::Builder::new()
        .prefix("wa2crm-sandbox-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let graph = GraphSim::start(SANDBOX_ACCESS_TOKEN).await?;
    let d360 = GraphSim::start_d360(SANDBOX_D360_KEY).await?;
    let twilio = TwilioSim::start(SANDBOX_TWILIO_ACCOUNT, SANDBOX_TWILIO_TOKEN).await?;
    // The port must be known before the config is written (public_url contains it); the
    // listener is kept and handed to the daemon, so no other process can take the port between.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // As an operator sets it at 360dialog, so that `check` finds it right.
    d360.set_webhook_url(&format!("http://{addr}/webhooks/d360"));
    // The console's login for this run only: printed by --serve, gone with the sandbox.
    let console_password = crate::console::one_time_password();
    let tag_names: Vec<String> = base.tags.iter().map(|t| t.name.clone()).collect();
    let crms = crms::Crms::start(&base.connectors, &tag_names, whose).await?;
    let catcher = match base.notifications {
        Some(_) => Some(WebhookCatcher::start().await?),
        None => None,
    };
    if base.policy.consent == crate::config::Consent::CrmField {
        println!(
            "policy.consent = \"crm_field\": taken as given in the sandbox, whose CRM contacts are \
             created by the samples themselves."
        );
    }
    if base.has_routes {
        println!("[[routes]] are left out: every sample goes to every connector.");
    }
    let text = config::compose(
        dir.path(),
        &config::Endpoints {
            daemon: addr,
            graph: graph.url(),
            d360: d360.url(),
            twilio: twilio.api_url(),
            notifications: catcher.as_ref().map(WebhookCatcher::url),
            console_hash: crate::console::hash_password(&console_password)?,
        },
        &base,
        crms.tables().map(|(n, t)| (n.clone(), t.clone())),
    )?;
    let config_path = config::write_private(&dir.path().join("wa2crm.toml"), &text)?;
    let loaded = crate::config::load_str(&text, Default::default(), None)
        .map_err(|e| anyhow::anyhow!("the sandbox's own configuration: {e}"))?;
    let validated = crate::config::validate(loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let queue_url = validated.config.queue.url.clone();
    let stop = CancellationToken::new();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(super::run::run_on(
        validated,
        Some(listener),
        stop.clone(),
        move |a| {
            let _ = bound_tx.send(a);
        },
    ));
    let bound = bound_rx.await.context("the sandbox daemon did not start")?;
    println!(
        "wa2crm sandbox: daemon on http://{bound}, Graph API simulator on {}, files under {}",
        graph.url(),
        dir.path().display()
    );
    println!("{}", crms.provisioned);

    // The refusals the sandbox provokes on purpose are labelled below, not logged as warnings.
    crate::telemetry::set_filter(&format!("{LOG_FILTER},wa2crm::server::webhooks=error"));
    let client = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let fed = feed::all(&client, bound, &graph, &d360, &twilio, now).await?;
    crate::telemetry::set_filter(LOG_FILTER);
    println!();
    let store = super::open_queue(&queue_url).await?;
    let jobs = watch::until_done(store.as_ref(), &fed.jobs, Duration::from_secs(60)).await?;
    print!("{}", crms.render(&jobs));
    println!();
    print!("{}", crms.customers(&jobs));
    if let Some(catcher) = &catcher {
        let caught = catcher.caught();
        println!(
            "\nnotifications.webhook (a receiver at {}): {} signed POST(s)",
            catcher.url(),
            caught.len()
        );
        for c in caught.iter().take(3) {
            let body: serde_json::Value = serde_json::from_slice(&c.body).unwrap_or_default();
            println!("  {}", body["text"].as_str().unwrap_or("-"));
        }
    }
    let stored = jobs
        .iter()
        .filter(|j| crate::pipeline::media_record(&j.event, &j.checkpoints).is_some())
        .count();
    println!(
        "\nSummary: {} webhook(s) became {} job(s): {stored} stored, {} failed; {} duplicate \
         ignored, {} item(s) without a file skipped, {} forged webhook refused.",
        fed.jobs.len() + fed.duplicates + fed.skipped + fed.refused,
        jobs.len(),
        jobs.len() - stored,
        fed.duplicates,
        fed.skipped,
        fed.refused
    );
    for line in crms.summary() {
        println!("  {line}");
    }

    if serve {
        let last_id = jobs.iter().map(|j| j.id).max().unwrap_or(0);
        serve_on(
            &graph,
            bound,
            &config_path,
            store,
            last_id,
            &console_password,
        )
        .await?;
    } else {
        println!(
            "\nNext: `wa2crm sandbox --serve` keeps this running with a ready configuration to \
             practise check, status, replay and erase on; `wa2crm sandbox --config \
             /etc/wa2crm/wa2crm.toml` runs your own mapping (README, \"Setting it up\", step 3)."
        );
    }
    stop.cancel();
    daemon.await??;
    Ok(ExitCode::SUCCESS)
}

/// `--serve`: the configuration and a payload to post, then a line per job and per skipped or
/// refused webhook until Ctrl-C or SIGTERM; the temporary directory goes either way.
async fn serve_on(
    graph: &GraphSim,
    bound: SocketAddr,
    config_path: &std::path::Path,
    store: std::sync::Arc<dyn wa2crm_queue::JobStore>,
    last_id: i64,
    console_password: &str,
) -> anyhow::Result<()> {
    let url = format!("http://{bound}/webhooks/whatsapp");
    let dir = config_path.parent().unwrap_or(std::path::Path::new("."));
    let voice = samples::all()
        .into_iter()
        .find(|s| s.kind == wa2crm_core::MediaKind::Voice)
        .context("no voice note sample")?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let payload = feed::meta_body(
        graph,
        &voice,
        "sandbox-serve-0",
        "wamid.sandbox.serve.1",
        now,
    );
    let payload_path = dir.join("sample-webhook.json");
    std::fs::write(&payload_path, &payload)
        .with_context(|| format!("cannot write {}", payload_path.display()))?;
    let c = config_path.display();
    let p = payload_path.display();
    println!(
        "\nThe sandbox keeps running (Ctrl-C stops it and removes {d}).\n\
         Its configuration: {c}\n  \
         wa2crm check --config {c}\n  \
         wa2crm status --config {c}\n\
         A voice note to post (its file is served by the Graph API simulator): {p}\n  \
         BODY=$(cat {p})\n  \
         SIG=$(printf %s \"$BODY\" | openssl dgst -sha256 -hmac {SANDBOX_APP_SECRET} | sed 's/^.* //')\n  \
         curl -sS -X POST '{url}' -H 'Content-Type: application/json' \\\n    \
         -H \"X-Hub-Signature-256: sha256=$SIG\" --data-binary \"$BODY\"\n\
         360dialog's format goes to http://{bound}/webhooks/d360 with the header \
         {SANDBOX_D360_HEADER}: {SANDBOX_D360_HEADER_VALUE}; Twilio's forms to \
         http://{bound}/webhooks/twilio, signed with the auth token {SANDBOX_TWILIO_TOKEN}.\n\
         The console: http://{bound}/console — user sandbox, one-time password \
         {console_password} (made for this run; it ends with the sandbox).\n",
        d = dir.display()
    );
    watch::serve(store, last_id, stopped()).await
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
