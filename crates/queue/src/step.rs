//! The steps a job goes through, by name: their results are the job's checkpoints.

use std::collections::BTreeMap;

use serde_json::Value;

/// A pipeline step whose result is checkpointed on the job, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Whether the sender consented (the policy's verdict).
    Consent,
    /// The media's short-lived URL, MIME type and digest from the source's API.
    Resolve,
    /// The bytes in the spool: digest and size.
    Fetch,
    /// Downloads whose digest did not match the source's, retried once.
    FetchMismatch,
    /// Sniffed type and duration.
    Inspect,
    /// The tags the rules gave it.
    Tags,
    /// A rendition made for CRM users' browsers.
    Transcode,
    /// The object in the company's storage.
    Store,
    /// What each connector has been given.
    Deliver,
    /// Whether the owner was notified.
    Notify,
    /// The media was removed (retention or erasure).
    Removed,
}

impl Step {
    pub const ALL: [Step; 11] = [
        Step::Consent,
        Step::Resolve,
        Step::Fetch,
        Step::FetchMismatch,
        Step::Inspect,
        Step::Tags,
        Step::Transcode,
        Step::Store,
        Step::Deliver,
        Step::Notify,
        Step::Removed,
    ];

    /// The key its checkpoint has in the job's checkpoints (stored; never renamed).
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Consent => "consent",
            Step::Resolve => "resolve",
            Step::Fetch => "fetch",
            Step::FetchMismatch => "fetch_mismatch",
            Step::Inspect => "inspect",
            Step::Tags => "tags",
            Step::Transcode => "transcode",
            Step::Store => "store",
            Step::Deliver => "deliver",
            Step::Notify => "notify",
            Step::Removed => "removed",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// This step's checkpoint among a job's.
    pub fn of(self, checkpoints: &BTreeMap<String, Value>) -> Option<&Value> {
        checkpoints.get(self.as_str())
    }

    /// This step's checkpoint as the type the step wrote; `None` when absent or of another shape
    /// (written by an older version).
    pub fn read<T: serde::de::DeserializeOwned>(
        self,
        checkpoints: &BTreeMap<String, Value>,
    ) -> Option<T> {
        T::deserialize(self.of(checkpoints)?).ok()
    }
}

/// One step's result as the queue records it: the checkpoint, and the facts the queue itself
/// indexes and counts by, in columns of their own (the queue never reads into a checkpoint).
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    pub step: Step,
    pub data: &'a Value,
    /// The stored object's key ([`Step::Store`]): erasure and retention find every job holding
    /// one object by it.
    pub media_key: Option<&'a str>,
    /// The sender's consent was refused ([`Step::Consent`]): such jobs end without their media.
    pub consent_refused: Option<bool>,
}

impl<'a> Checkpoint<'a> {
    pub fn new(step: Step, data: &'a Value) -> Self {
        Checkpoint {
            step,
            data,
            media_key: None,
            consent_refused: None,
        }
    }

    pub fn media_key(mut self, key: &'a str) -> Self {
        self.media_key = Some(key);
        self
    }

    pub fn consent(mut self, given: bool) -> Self {
        self.consent_refused = Some(!given);
        self
    }

    /// The tags a [`Step::Tags`] checkpoint gives the job (its list, each once), which the queue
    /// indexes for the console's tag filter; `None` for any other step.
    pub fn tags(&self) -> Option<std::collections::BTreeSet<&'a str>> {
        if self.step != Step::Tags {
            return None;
        }
        let list = self.data.as_array().map(Vec::as_slice).unwrap_or_default();
        Some(list.iter().filter_map(Value::as_str).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_one_name_and_reads_back() {
        let names: std::collections::BTreeSet<&str> =
            Step::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), Step::ALL.len());
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
        assert_eq!(Step::parse("bad.step"), None);
    }
}
