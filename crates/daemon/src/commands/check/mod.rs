//! `wa2crm check`: everything that can be wrong before going live, one line per finding — the
//! configuration, the queue database, the storage, each WhatsApp source's credentials against
//! its provider, and each connector's mapping against the live CRM (properties, types, unique
//! keys, scopes, credentials, the account reached). A host that does not answer is named within
//! five seconds with the key that set it. Exit 1 when anything is wrong.

mod sources;

use std::process::ExitCode;
use std::time::Duration;

use wa2crm_media::store::Storage;

/// How long one connector's whole check may take once its host answered.
const CONNECTOR_DEADLINE: Duration = Duration::from_secs(60);

/// The findings so far, in order, each `true` when fine; printed as they come with `echo`.
#[derive(Default)]
pub struct Report {
    pub problems: usize,
    pub lines: Vec<(bool, String)>,
    echo: bool,
}

impl Report {
    fn ok(&mut self, line: String) {
        if self.echo {
            println!("ok   {line}");
        }
        self.lines.push((true, line));
    }

    fn fail(&mut self, line: String) {
        self.problems += 1;
        if self.echo {
            println!("FAIL {line}");
        }
        self.lines.push((false, line));
    }
}

pub async fn main(location: &crate::config::ConfigLocation) -> anyhow::Result<ExitCode> {
    let validated = match super::load_config(location) {
        Ok(v) => v,
        Err(e) => {
            println!("{e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = run(
        &validated.config,
        &location.file.display().to_string(),
        true,
    )
    .await?;
    if report.problems == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s)", report.problems);
        Ok(ExitCode::FAILURE)
    }
}

/// Every check of `config` (which the file or daemon `described_as` holds), in order: what
/// `wa2crm check` prints and the console's Configuration page shows.
pub async fn run(
    config: &crate::config::Config,
    described_as: &str,
    echo: bool,
) -> anyhow::Result<Report> {
    let mut report = Report {
        echo,
        ..Report::default()
    };
    report.ok(format!("configuration {described_as}"));
    let store = match super::open_queue(&config.queue.url).await {
        Ok(s) => {
            report.ok(format!("queue {}", super::redact_url(&config.queue.url)));
            s
        }
        Err(e) => {
            report.fail(format!("queue.url: {e:#}"));
            return Ok(report);
        }
    };
    match Storage::open(&config.storage.url, &config.storage.options) {
        Ok(storage) => match storage.check().await {
            Ok(()) => report.ok(format!("storage {}", config.storage.url)),
            Err(e) => report.fail(format!("storage.url: {e}")),
        },
        Err(e) => report.fail(format!("storage.url: {e:#}")),
    }
    if config.media.transcode {
        match wa2crm_media::transcode::ffmpeg_version().await {
            Ok(v) => report.ok(format!("media.transcode: {v}")),
            Err(e) => report.fail(format!(
                "media.transcode: {e}; install ffmpeg (Debian: apt install ffmpeg) or set \
                 transcode = false"
            )),
        }
    }
    if config.policy.consent == crate::config::Consent::Allowlist {
        match super::run::consent_policy(config) {
            Ok(_) => report.ok("policy.consent_allowlist readable".into()),
            Err(e) => report.fail(format!("{e:#}")),
        }
    }
    sources::check(config, &mut report).await?;
    connectors(config, store, &mut report).await?;
    Ok(report)
}

/// Each connector: its host first (named within five seconds if it does not answer), then its
/// own check. One that cannot be built or reached does not stop the others.
async fn connectors(
    config: &crate::config::Config,
    store: std::sync::Arc<dyn wa2crm_queue::JobStore>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let http = sources::client()?;
    let registry = crate::connectors::registry();
    let mut reachable = std::collections::BTreeSet::new();
    for (name, table) in &config.connectors {
        let endpoint =
            crate::connectors::factory_of(&registry, table).and_then(|f| f.endpoint(table));
        match endpoint {
            // Any answer at all means the host is there; what it says is the connector's check.
            Some((key, url)) => match http.get(&url).send().await {
                Ok(_) => {
                    reachable.insert(name.clone());
                }
                Err(e) => report.fail(sources::unreachable(
                    &format!("connectors.{name}.{key}"),
                    &url,
                    &e,
                )),
            },
            None => {
                reachable.insert(name.clone());
            }
        }
    }
    // What check finds is not the daemon's state: no pause of its is recorded for `status`.
    let context = crate::connectors::context(config, store, None).for_check();
    for (name, built) in crate::connectors::build_each(config, &context).await {
        if !reachable.contains(&name) {
            continue;
        }
        let connector = match built {
            Ok(c) => c,
            Err(e) => {
                report.fail(format!("{e:#}"));
                continue;
            }
        };
        match tokio::time::timeout(CONNECTOR_DEADLINE, connector.check()).await {
            Err(_) => report.fail(format!(
                "connectors.{name}: the CRM answered, but its check did not finish within {} s",
                CONNECTOR_DEADLINE.as_secs()
            )),
            Ok(Ok(found)) if found.problems.is_empty() => {
                for n in &found.notes {
                    report.ok(n.clone());
                }
                report.ok(format!(
                    "connectors.{name}: {}mapping matches the CRM",
                    found
                        .reached
                        .as_ref()
                        .map(|r| format!("{r}, "))
                        .unwrap_or_default()
                ))
            }
            Ok(Ok(found)) => {
                if let Some(r) = &found.reached {
                    report.ok(format!("connectors.{name}: reached {r}"));
                }
                for p in found.problems {
                    report.fail(p.to_string());
                }
            }
            Ok(Err(e)) => report.fail(format!("connectors.{name}: {e}")),
        }
    }
    Ok(())
}
