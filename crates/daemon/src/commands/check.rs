//! `wa2crm check`: everything that can be wrong before going live, one line per problem — the
//! configuration, the queue database, the storage, and each connector's mapping against the live
//! CRM (properties, types, unique keys, scopes, credentials). Exit 1 when anything is wrong.

use std::process::ExitCode;

use wa2crm_media::store::Storage;

pub async fn main(location: &crate::config::ConfigLocation) -> anyhow::Result<ExitCode> {
    let validated = match super::load_config(location) {
        Ok(v) => v,
        Err(e) => {
            println!("{e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let config = &validated.config;
    println!("ok   configuration {}", location.file.display());
    let mut problems = 0usize;
    let store = match super::open_queue(&config.queue.url).await {
        Ok(s) => {
            println!("ok   queue {}", super::redact_url(&config.queue.url));
            s
        }
        Err(e) => {
            println!("FAIL queue.url: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match Storage::open(&config.storage.url, &config.storage.options) {
        Ok(storage) => match storage.check().await {
            Ok(()) => println!("ok   storage {}", config.storage.url),
            Err(e) => {
                problems += 1;
                println!("FAIL storage.url: {e}");
            }
        },
        Err(e) => {
            problems += 1;
            println!("FAIL storage.url: {e:#}");
        }
    }
    if config.media.transcode {
        match wa2crm_media::transcode::ffmpeg_version().await {
            Ok(v) => println!("ok   media.transcode: {v}"),
            Err(e) => {
                problems += 1;
                println!(
                    "FAIL media.transcode: {e}; install ffmpeg (Debian: apt install ffmpeg) or set transcode = false"
                );
            }
        }
    }
    if config.policy.consent == crate::config::Consent::Allowlist {
        match super::run::consent_policy(config) {
            Ok(_) => println!("ok   policy.consent_allowlist readable"),
            Err(e) => {
                problems += 1;
                println!("FAIL {e:#}");
            }
        }
    }
    // What check finds is not the daemon's state: no pause of its is recorded for `status`.
    let context = crate::connectors::context(config, store, None).for_check();
    for (name, built) in crate::connectors::build_each(config, &context).await {
        let connector = match built {
            Ok(c) => c,
            Err(e) => {
                problems += 1;
                println!("FAIL {e:#}");
                continue;
            }
        };
        match connector.check().await {
            Ok(report) if report.problems.is_empty() => println!(
                "ok   connectors.{name}: {}mapping matches the CRM",
                report
                    .reached
                    .as_ref()
                    .map(|r| format!("{r}, "))
                    .unwrap_or_default()
            ),
            Ok(report) => {
                if let Some(r) = &report.reached {
                    println!("ok   connectors.{name}: reached {r}");
                }
                problems += report.problems.len();
                for p in report.problems {
                    println!("FAIL {p}");
                }
            }
            Err(e) => {
                problems += 1;
                println!("FAIL connectors.{name}: {e}");
            }
        }
    }
    if problems == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{problems} problem(s)");
        Ok(ExitCode::FAILURE)
    }
}
