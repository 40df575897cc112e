//! Zoho's API as the connector calls it: paths under `/crm/v8` on the API domain the latest token
//! answer named, sent through the shared engine (`wa2crm_rest::engine`) under [`ZohoRules`] — at
//! most `max_concurrent` in flight, pausing when the org's credits reach the reserve.

use std::sync::{Arc, RwLock};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use wa2crm_core::{ConnectorContext, Error, Result};
use wa2crm_rest::engine::{Call, Engine, FormBuilder, Payload, Repeat};
use wa2crm_rest::pause::PauseGate;
use wa2crm_rest::token::TokenCache;

use crate::auth::{self, RefreshGrant, ZohoTokens};
use crate::config::ZohoConfig;
use crate::rules::{ZohoRules, describe};

pub use wa2crm_rest::engine::Answer;

/// "You can insert, update, upsert or delete up to 100 records per call."
pub const MAX_RECORDS: usize = 100;

pub struct Api {
    pub engine: Engine<ZohoRules>,
    pub tokens: Arc<TokenCache>,
    pub api_domain: Arc<RwLock<Option<reqwest::Url>>>,
}

/// The API client a configuration describes.
pub async fn connect(name: &str, config: &ZohoConfig, context: &ConnectorContext) -> Result<Api> {
    if let Some((key, problem)) = config.validate().first() {
        return Err(Error::permanent(format!(
            "connectors.{name}.{key}: {problem}"
        )));
    }
    let http = wa2crm_rest::client::http_client(config.timeout())?;
    let accounts = config.accounts_url().unwrap_or_default();
    let token_url = reqwest::Url::parse(&format!("{accounts}/oauth/v2/token"))
        .map_err(|e| Error::permanent(format!("connectors.{name}.accounts_url: {e}")))?;
    let api_domain = Arc::new(RwLock::new(None));
    let grant = RefreshGrant {
        http: http.clone(),
        token_url,
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        refresh_token: config.refresh_token.clone(),
        any_api_domain: config.accounts_url.is_some(),
        api_domain: api_domain.clone(),
    };
    let account = config.account();
    let tokens = Arc::new(auth::token_cache(
        grant,
        context.state.clone(),
        name,
        &account,
        context.check_only,
    ));
    let pause = PauseGate::load(name, context.state.clone(), &account, !context.check_only).await?;
    Ok(Api {
        engine: Engine {
            name: name.to_owned(),
            rules: ZohoRules::new(config.daily_reserve),
            http,
            credentials: Arc::new(ZohoTokens(tokens.clone())),
            pause,
            budget: None,
            slots: Some(Semaphore::new(config.max_concurrent)),
            meter: Default::default(),
        },
        tokens,
        api_domain,
    })
}

impl Api {
    /// `{api_domain}/crm/v8{path}`; a token is fetched first when none was yet (it names the
    /// domain).
    async fn url(&self, path: &str) -> Result<reqwest::Url> {
        self.engine.pause.check()?;
        if let Err(e) = self.tokens.get().await {
            return Err(self.engine.credentials_failed(e).await);
        }
        let base = self
            .api_domain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::transient("no Zoho API domain yet"))?;
        base.join(&format!("/crm/v8{path}"))
            .map_err(|e| Error::permanent(format!("Zoho URL for {path}: {e}")))
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer> {
        let url = self.url(path).await?;
        self.engine
            .send(Call::new(method, url, repeat).json(body))
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None, Repeat::Safe).await
    }

    /// A read whose answer is only a convenience: a scope it alone needs pauses nothing
    /// (`Call::optional`).
    pub async fn get_optional(&self, path: &str) -> Result<Answer> {
        let url = self.url(path).await?;
        self.engine
            .send(Call::new(Method::GET, url, Repeat::Safe).optional())
            .await
    }

    /// A multipart POST that creates something (an attachment): never repeated blindly.
    pub async fn post_multipart_once<'a>(
        &self,
        path: &str,
        form: &'a FormBuilder<'a>,
    ) -> Result<Answer> {
        let mut call = Call::new(Method::POST, self.url(path).await?, Repeat::Once);
        call.payload = Payload::Multipart(form);
        self.engine.send(call).await
    }

    /// A COQL query's rows (`None` of them: 204). One page: callers ask with a LIMIT they can read.
    pub async fn coql(&self, query: &str) -> Result<Vec<Value>> {
        let body = json!({ "select_query": query });
        let a = self
            .call(Method::POST, "/coql", Some(&body), Repeat::Safe)
            .await?;
        match a.status.as_u16() {
            204 => Ok(Vec::new()),
            200 => Ok(a.body["data"].as_array().cloned().unwrap_or_default()),
            status => Err(Error::permanent(format!(
                "Zoho refused a query ({status}: {}): {query}",
                describe(&a.body)
            ))),
        }
    }

    /// Every row of `select` (a query without LIMIT): a first page of 200 (one credit, where
    /// most answers fit), then pages of 2000 (three credits each, the cheapest per row).
    pub async fn coql_all(&self, select: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = 200;
        loop {
            let rows = self
                .coql(&format!("{select} limit {page} offset {}", out.len()))
                .await?;
            let last = rows.len() < page;
            out.extend(rows);
            if last {
                return Ok(out);
            }
            page = 2000;
        }
    }

    /// A record write's per-record results, in the order sent; a refusal of the whole call is
    /// `Err` (permanent: the admin's to fix).
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        repeat: Repeat,
    ) -> Result<Vec<Value>> {
        let a = self.call(method, path, Some(body), repeat).await?;
        match a.body.get("data").and_then(Value::as_array) {
            Some(results) if matches!(a.status.as_u16(), 200 | 201 | 202 | 207 | 400) => {
                Ok(results.clone())
            }
            _ => Err(Error::permanent(format!(
                "Zoho refused {path} ({}: {})",
                a.status,
                describe(&a.body)
            ))),
        }
    }
}

/// A COQL string literal: quotes and backslashes escaped.
pub fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `field in ('a', 'b')` criteria for `values`, at most 50 values each (COQL's limit), joined
/// with `or` and bracketed two at a time as COQL wants more than two criteria grouped.
pub fn any_of(fields: &[&str], values: &[String]) -> Option<String> {
    let mut criteria: Vec<String> = Vec::new();
    for field in fields {
        for chunk in values.chunks(50) {
            let list = chunk
                .iter()
                .map(|v| quoted(v))
                .collect::<Vec<_>>()
                .join(", ");
            criteria.push(format!("{field} in ({list})"));
        }
    }
    let mut all = criteria.into_iter();
    let first = all.next()?;
    Some(all.fold(first, |acc, c| format!("({acc} or {c})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_are_bracketed_two_at_a_time_and_quoted() {
        let v = |n: usize| (0..n).map(|i| format!("+1{i}")).collect::<Vec<_>>();
        assert_eq!(
            any_of(&["Phone"], &v(2)).as_deref(),
            Some("Phone in ('+10', '+11')")
        );
        assert_eq!(
            any_of(&["Phone", "Mobile"], &v(1)).as_deref(),
            Some("(Phone in ('+10') or Mobile in ('+10'))")
        );
        let three = any_of(&["Phone"], &v(120)).unwrap_or_default();
        assert!(three.starts_with("((Phone in ("), "{three}");
        assert_eq!(three.matches(" in (").count(), 3);
        assert_eq!(quoted("O'Brien\\"), "'O\\'Brien\\\\'");
        assert_eq!(any_of(&["Phone"], &[]), None);
    }
}
