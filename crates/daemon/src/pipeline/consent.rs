//! The consent policy (`policy.consent`), decided before anything of the media is fetched: media
//! of a person without consent is never downloaded, stored or written anywhere. The job ends as
//! done with a `consent` checkpoint saying why it was skipped, and is counted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use wa2crm_core::{Error, Phone};
use wa2crm_queue::Job;

use super::Pipeline;

/// What decides consent.
#[derive(Debug, Default)]
pub enum ConsentPolicy {
    /// `consent = "none"`: no consent needed.
    #[default]
    Everyone,
    /// `consent = "allowlist"`: the number is in the file.
    Allowlist(Allowlist),
    /// `consent = "crm_field"`: every connector routed for the event finds the person with its
    /// `consent_field` ticked.
    CrmField(AnswerCache),
}

/// Each CRM's "yes" about a person's consent, kept for a minute: a customer sending five photos
/// costs one lookup per CRM, not five, against the vendor's rate limit. A "no" is never kept, so
/// a box just ticked counts at once; a box unticked counts within the minute.
#[derive(Debug, Default)]
pub struct AnswerCache(Mutex<std::collections::HashMap<(String, String), std::time::Instant>>);

/// How long a CRM's answer about consent is reused.
const ANSWER_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl AnswerCache {
    fn get(&self, connector: &str, phone: &Phone) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(connector.to_owned(), phone.as_str().to_owned()))
            .filter(|at| at.elapsed() < ANSWER_TTL)
            .map(|_| true)
    }

    fn put(&self, connector: &str, phone: &Phone) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Old answers go when the map grows: it holds at most the last minute's senders.
        if map.len() > 10_000 {
            map.retain(|_, at| at.elapsed() < ANSWER_TTL);
        }
        map.insert(
            (connector.to_owned(), phone.as_str().to_owned()),
            std::time::Instant::now(),
        );
    }
}

/// The `consent` checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentCheckpoint {
    pub given: bool,
    /// Who said so: `allowlist`, or the connectors asked.
    pub by: String,
}

impl ConsentCheckpoint {
    /// What `status` and the journal say of a skipped job.
    pub fn reason(&self) -> String {
        format!("skipped: no consent ({})", self.by)
    }
}

/// The allowlist file: one +E164 number per line (any usual spelling), `#` starts a comment.
/// It is read again whenever it changes, so an admin's edit takes effect without a restart.
#[derive(Debug)]
pub struct Allowlist {
    path: PathBuf,
    loaded: Mutex<(Option<SystemTime>, HashSet<String>)>,
}

impl Allowlist {
    /// Reads the file now, so a missing or unreadable one stops `run` at startup.
    pub fn open(path: &Path) -> Result<Allowlist, String> {
        let list = Allowlist {
            path: path.to_owned(),
            loaded: Mutex::new((None, HashSet::new())),
        };
        list.refresh()?;
        Ok(list)
    }

    fn refresh(&self) -> Result<(), String> {
        let what =
            |e: std::io::Error| format!("policy.consent_allowlist {}: {e}", self.path.display());
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(what)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.0 == Some(modified) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(what)?;
        let (numbers, bad) = parse_allowlist(&text);
        for (line, problem) in bad {
            tracing::warn!(
                file = %self.path.display(),
                line,
                "Consent allowlist: {problem}; the line is ignored."
            );
        }
        tracing::info!(file = %self.path.display(), numbers = numbers.len(), "Consent allowlist loaded.");
        *loaded = (Some(modified), numbers);
        Ok(())
    }

    pub fn contains(&self, phone: &Phone) -> Result<bool, Error> {
        // An allowlist that cannot be read now is a reason to wait, not to skip someone.
        self.refresh().map_err(Error::transient)?;
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        Ok(loaded.1.contains(phone.as_str()))
    }
}

/// The numbers of an allowlist, and its bad lines (1-based) with what is wrong.
pub fn parse_allowlist(text: &str) -> (HashSet<String>, Vec<(usize, String)>) {
    let mut numbers = HashSet::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match Phone::parse(line) {
            Ok(p) => {
                numbers.insert(p.as_str().to_owned());
            }
            Err(e) => bad.push((i + 1, e.to_string())),
        }
    }
    (numbers, bad)
}

/// Decides (or reads back) consent for the job's sender.
pub(super) async fn decide(p: &Pipeline, job: &Job) -> Result<ConsentCheckpoint, Error> {
    let sender = &job.event.sender;
    match &p.media.consent {
        ConsentPolicy::Everyone => Ok(ConsentCheckpoint {
            given: true,
            by: "policy.consent = none".into(),
        }),
        ConsentPolicy::Allowlist(list) => Ok(ConsentCheckpoint {
            given: list.contains(sender)?,
            by: "allowlist".into(),
        }),
        ConsentPolicy::CrmField(cache) => {
            let targets = p.delivery.routes.for_event(&job.event);
            if targets.is_empty() {
                return Ok(ConsentCheckpoint {
                    given: false,
                    by: "no connector is routed for this number to ask".into(),
                });
            }
            let mut refused = Vec::new();
            for name in targets {
                let connector = p.delivery.connectors.get(name).ok_or_else(|| {
                    Error::permanent(format!(
                        "routes name connector {name:?}, which is not configured"
                    ))
                })?;
                let given = match cache.get(name, sender) {
                    Some(given) => given,
                    None => match connector.consent(sender).await? {
                        Some(given) => {
                            if given {
                                cache.put(name, sender);
                            }
                            given
                        }
                        None => {
                            return Err(Error::permanent(format!(
                                "policy.consent = \"crm_field\" but connectors.{name} has no consent_field"
                            )));
                        }
                    },
                };
                if !given {
                    refused.push(name.clone());
                }
            }
            Ok(ConsentCheckpoint {
                given: refused.is_empty(),
                by: if refused.is_empty() {
                    targets.join(", ")
                } else {
                    format!("consent field not ticked in {}", refused.join(", "))
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_lines_are_numbers_comments_and_blanks_and_bad_ones_are_named() {
        let (numbers, bad) = parse_allowlist(
            "# customers who agreed\n+49 151 2345 6789\n\n+1 (415) 555-0100  # Bob\nnobody\n",
        );
        assert_eq!(
            numbers,
            HashSet::from(["+4915123456789".to_owned(), "+14155550100".to_owned()])
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 5);
    }

    #[test]
    fn a_crms_yes_is_kept_per_connector_and_person() {
        let cache = AnswerCache::default();
        let ana = Phone::parse("+4915123456789").unwrap();
        let bob = Phone::parse("+14155550100").unwrap();
        assert_eq!(
            cache.get("hubspot", &ana),
            None,
            "nothing asked yet: ask the CRM"
        );
        cache.put("hubspot", &ana);
        assert_eq!(cache.get("hubspot", &ana), Some(true));
        assert_eq!(
            cache.get("salesforce", &ana),
            None,
            "each CRM answers for itself"
        );
        assert_eq!(cache.get("hubspot", &bob), None);
    }

    #[test]
    fn an_edited_allowlist_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.txt");
        std::fs::write(&path, "+4915123456789\n").unwrap();
        let list = Allowlist::open(&path).unwrap();
        let bob = Phone::parse("+14155550100").unwrap();
        assert!(!list.contains(&bob).unwrap());
        // A later modification time, whatever the file system's time resolution.
        std::fs::write(&path, "+4915123456789\n+14155550100\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(list.contains(&bob).unwrap());
        std::fs::remove_file(&path).unwrap();
        let e = list.contains(&bob).unwrap_err();
        assert_eq!(e.kind(), wa2crm_core::ErrorKind::Transient, "{e}");
        assert!(Allowlist::open(&path).is_err());
    }
}
