//! HubSpot's API as the connector calls it: paths joined to the portal's base URL, sent through
//! the shared engine (`wa2crm_rest::engine`) under [`HubSpotRules`] — within the ten-second request
//! budget (CRM search within its own per-second one), with a live token.

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::{Error, Result};
use wa2crm_rest::engine::{Call, Engine, Payload, Repeat};
use wa2crm_rest::limit::RequestBudget;

pub use crate::rules::{HubSpotRules, describe, missing_scopes};
pub use wa2crm_rest::engine::{Answer, FormBuilder};

/// HubSpot's words for an answer the caller refuses.
pub trait AnswerExt {
    /// HubSpot's `message` (and `category`), for errors an admin reads.
    fn message(&self) -> String;
}

impl AnswerExt for Answer {
    fn message(&self) -> String {
        describe(&self.body)
    }
}

pub struct Api {
    pub base: reqwest::Url,
    /// The engine's credentials, kept for what only HubSpot asks of them (token info, refreshes).
    pub auth: std::sync::Arc<crate::auth::Auth>,
    pub engine: Engine<HubSpotRules>,
    /// CRM search's own per-second limit (exempt from the ten-second window).
    pub search_budget: RequestBudget,
}

impl Api {
    pub fn url(&self, path: &str) -> Result<reqwest::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::permanent(format!("HubSpot URL for {path}: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        self.engine
            .send(Call::new(method, self.url(path)?, Repeat::Safe).json(body))
            .await
    }

    /// `POST /crm/v3/objects/{object}/search`, paced by search's own limit.
    pub async fn search(&self, object: &str, body: &Value) -> Result<Answer> {
        let url = self.url(&format!("/crm/v3/objects/{object}/search"))?;
        let mut call = Call::new(Method::POST, url, Repeat::Safe).json(Some(body));
        call.budget = Some(&self.search_budget);
        self.engine.send(call).await
    }

    /// A multipart POST; `form` builds the body afresh for every send (a stream is read once).
    /// Safe to repeat: files are named by their checksum and uploaded with RETURN_EXISTING.
    pub async fn post_multipart<'a>(
        &self,
        path: &str,
        form: &'a FormBuilder<'a>,
    ) -> Result<Answer> {
        let mut call = Call::new(Method::POST, self.url(path)?, Repeat::Safe);
        call.payload = Payload::Multipart(form);
        self.engine.send(call).await
    }
}
