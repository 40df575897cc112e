//! Salesforce's API as the connector calls it: paths under `/services/data/vXX.X` on the
//! session's `instance_url`, sent through the shared engine (`wa2crm_rest::engine`) under
//! [`SalesforceRules`] — at most `max_concurrent` in flight, one re-authentication shared by every
//! worker, pausing before the org's daily allocation eats into the reserve. When a usage pause
//! ends, one `GET /limits` decides whether to go on before the queued work is let loose.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::{Error, Result};
use wa2crm_rest::engine::{Call, Engine, FormBuilder, Payload, Repeat};
use wa2crm_rest::token::TokenCache;

pub use crate::rules::{SalesforceRules, api_usage, daily_usage, describe};
pub use wa2crm_rest::engine::Answer;

pub struct Api {
    pub engine: Engine<SalesforceRules>,
    /// The engine's credentials, kept for the instance they open.
    pub sessions: Arc<TokenCache>,
    pub instance_url: Arc<RwLock<Option<reqwest::Url>>>,
    /// `/services/data/vXX.X`
    pub data_path: String,
    /// One `/limits` look at a time.
    pub limits_look: tokio::sync::Mutex<()>,
}

impl Api {
    /// A call under `/services/data/vXX.X`. `idempotent`: safe to send again after a network
    /// failure or a 5xx (upserts by external ID, reads); a create is never retried blindly.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Answer> {
        let repeat = if idempotent {
            Repeat::Safe
        } else {
            Repeat::Once
        };
        let url = self.prepare(path).await?;
        self.engine
            .send(Call::new(method, url, repeat).json(body))
            .await
    }

    /// A multipart POST that creates something (a ContentVersion): never retried after a failure
    /// that may have landed — the caller looks first whether an earlier attempt did.
    pub async fn post_multipart_once<'a>(
        &self,
        path: &str,
        form: &'a FormBuilder<'a>,
    ) -> Result<Answer> {
        let mut call = Call::new(Method::POST, self.prepare(path).await?, Repeat::Once);
        call.payload = Payload::Multipart(form);
        self.engine.send(call).await
    }

    /// What every call needs first: not paused (looking at `/limits` when a usage pause has just
    /// ended), and a session, whose instance the URL names.
    async fn prepare(&self, path: &str) -> Result<reqwest::Url> {
        self.engine.pause.check()?;
        if self.engine.rules.usage_pause.load(Ordering::Acquire) {
            self.look_at_limits().await?;
        }
        if let Err(e) = self.sessions.get().await {
            return Err(self.engine.credentials_failed(e).await);
        }
        self.url(path)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url> {
        let base = self
            .instance_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::transient("no Salesforce session yet"))?;
        base.join(&format!("{}{path}", self.data_path))
            .map_err(|e| Error::permanent(format!("Salesforce URL for {path}: {e}")))
    }

    /// A usage pause has run out: `GET /limits` (one caller; the others wait for its verdict)
    /// decides whether to go on or to pause again. An answer that says nothing (the user may lack
    /// View Setup) lets the calls go, and their own `Sforce-Limit-Info` decides.
    async fn look_at_limits(&self) -> Result<()> {
        let _one = self.limits_look.lock().await;
        let usage_pause = &self.engine.rules.usage_pause;
        if !usage_pause.load(Ordering::Acquire) {
            return self.engine.pause.check();
        }
        if let Err(e) = self.sessions.get().await {
            return Err(self.engine.credentials_failed(e).await);
        }
        // Cleared before the look: a pause the look itself orders marks it again.
        usage_pause.store(false, Ordering::Release);
        let looked = self
            .engine
            .send(Call::new(Method::GET, self.url("/limits")?, Repeat::Safe))
            .await;
        match looked {
            Ok(a) => match (a.status.as_u16(), daily_usage(&a.body)) {
                (200, Some((used, max))) => {
                    match self.engine.rules.usage_pause(used, max, SystemTime::now()) {
                        Some(order) => self.engine.order_pause(&order).await,
                        None => {
                            tracing::info!(connector = %self.engine.name, used, max, "The org's API allocation has room again; deliveries resume.")
                        }
                    }
                }
                (status, _) => {
                    tracing::warn!(connector = %self.engine.name, status, "GET /limits said nothing about the daily allocation; resuming and watching Sforce-Limit-Info.");
                }
            },
            Err(e) => {
                // Not known to have room: look again next time.
                usage_pause.store(true, Ordering::Release);
                self.engine.pause.check()?;
                return Err(e);
            }
        }
        self.engine.pause.check()
    }
}
