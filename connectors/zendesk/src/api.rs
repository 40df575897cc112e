//! Zendesk's API as the connector calls it: paths joined to the account's URL, sent through the
//! shared engine (`wa2crm_rest::engine`) under [`ZendeskRules`], within the account's per-minute
//! budget (shared by every instance on the same queue database).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use wa2crm_core::{ConnectorContext, Error, Result};
use wa2crm_rest::engine::{BodyBuilder, Call, Engine, Payload, Repeat};
use wa2crm_rest::limit::RequestBudget;
use wa2crm_rest::pause::PauseGate;

use crate::auth::{self, Auth};
use crate::config::{AuthConfig, ZendeskConfig};
use crate::rules::ZendeskRules;

pub use wa2crm_rest::engine::Answer;

pub struct Api {
    pub base: reqwest::Url,
    pub auth: Arc<Auth>,
    pub engine: Engine<ZendeskRules>,
}

impl Api {
    pub fn url(&self, path: &str) -> Result<reqwest::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::permanent(format!("Zendesk URL for {path}: {e}")))
    }

    /// A read, or a write that is safe to repeat (by external_id, or setting a field).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer> {
        self.engine
            .send(Call::new(method, self.url(path)?, repeat).json(body))
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None, Repeat::Safe).await
    }

    /// `POST /api/v2/uploads?filename=`: the raw file, built afresh for every send. Safe to
    /// repeat: an upload no comment names is deleted when its token expires.
    pub async fn upload<'a>(
        &self,
        file_name: &str,
        content_type: &'a str,
        make: &'a BodyBuilder<'a>,
    ) -> Result<Answer> {
        let mut url = self.url("/api/v2/uploads")?;
        url.query_pairs_mut().append_pair("filename", file_name);
        let mut call = Call::new(Method::POST, url, Repeat::Safe);
        call.payload = Payload::Raw { content_type, make };
        self.engine.send(call).await
    }
}

/// A ticket comment as read back (exactly-once checks, erasure, retention).
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub html_body: String,
    /// (attachment id, file name); redacted ones (`redacted.txt`) left out.
    pub attachments: Vec<(u64, String)>,
}

impl Api {
    /// A ticket's comments, newest first: the first page (the 100 newest, where a note just
    /// written is), or with `all` every page. `None`: no such ticket (deleted).
    pub async fn comments(&self, ticket: u64, all: bool) -> Result<Option<Vec<Comment>>> {
        let mut url = self.url(&format!("/api/v2/tickets/{ticket}/comments"))?;
        url.query_pairs_mut().append_pair("sort_order", "desc");
        let mut out = Vec::new();
        loop {
            let a = self
                .engine
                .send(Call::new(Method::GET, url.clone(), Repeat::Safe))
                .await?;
            if a.status.as_u16() == 404 {
                return Ok(None);
            }
            if !a.status.is_success() {
                return Err(Error::permanent(format!(
                    "Zendesk refused the comments of ticket {ticket}: {} ({})",
                    crate::rules::describe(&a.body),
                    a.status
                )));
            }
            out.extend(
                a.body["comments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(comment),
            );
            // Only pages of this account are followed.
            match a.body["next_page"].as_str().map(reqwest::Url::parse) {
                Some(Ok(next)) if all && next.origin() == self.base.origin() => url = next,
                _ => return Ok(Some(out)),
            }
        }
    }
}

fn comment(c: &Value) -> Option<Comment> {
    Some(Comment {
        id: c["id"].as_u64()?,
        body: c["body"].as_str()?.to_owned(),
        html_body: c["html_body"].as_str().unwrap_or_default().to_owned(),
        attachments: c["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["file_name"] != "redacted.txt")
            .filter_map(|a| Some((a["id"].as_u64()?, a["file_name"].as_str()?.to_owned())))
            .collect(),
    })
}

/// The API client a configuration describes.
pub async fn connect(
    name: &str,
    config: &ZendeskConfig,
    context: &ConnectorContext,
) -> Result<Api> {
    if let Some((key, problem)) = config.validate().first() {
        return Err(Error::permanent(format!(
            "connectors.{name}.{key}: {problem}"
        )));
    }
    let http = wa2crm_rest::client::http_client(config.timeout())?;
    let base_url = config
        .base_url()
        .ok_or_else(|| Error::permanent(format!("connectors.{name}.subdomain: is missing")))?;
    let base = reqwest::Url::parse(&format!("{base_url}/"))
        .map_err(|e| Error::permanent(format!("connectors.{name}.base_url: {e}")))?;
    let account = config.account();
    let auth = match config.auth() {
        Some(AuthConfig::ApiToken { email, token }) => Auth::api_token(email, token.clone()),
        Some(AuthConfig::OAuth {
            client_id,
            client_secret,
            refresh_token,
        }) => {
            let token_url = base
                .join("oauth/tokens")
                .map_err(|e| Error::permanent(format!("connectors.{name}.base_url: {e}")))?;
            Auth::OAuth(
                wa2crm_rest::oauth::refresh_cache(
                    wa2crm_rest::oauth::RefreshClient {
                        http: http.clone(),
                        token_url,
                        client_id,
                        client_secret,
                        refresh_token,
                    },
                    auth::REFRESH,
                    context.state.clone(),
                    name,
                    &account,
                    context.check_only,
                )
                .await?,
            )
        }
        None => {
            return Err(Error::permanent(format!(
                "connectors.{name}: no credentials"
            )));
        }
    };
    let auth = Arc::new(auth);
    Ok(Api {
        base,
        auth: auth.clone(),
        engine: Engine {
            name: name.to_owned(),
            rules: ZendeskRules {
                oauth: auth.is_oauth(),
            },
            http,
            credentials: auth,
            pause: PauseGate::load(name, context.state.clone(), &account, !context.check_only)
                .await?,
            budget: Some(
                RequestBudget::new(config.requests_per_minute, Duration::from_secs(60))
                    .shared(context.state.clone(), name),
            ),
            slots: None,
            meter: Default::default(),
        },
    })
}
