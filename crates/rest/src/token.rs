//! Access tokens that expire: one cache per vendor account, refreshed ahead of expiry, and one
//! refresh at a time however many workers need a token (the others wait for its result). That
//! matters twice: vendors rate-limit their token endpoints, and a refresh that rotates the refresh
//! token invalidates every concurrent refresh that used the old one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;
use wa2crm_core::Result;

/// A token as the vendor issued it.
#[derive(Clone)]
pub struct AccessToken {
    pub secret: SecretString,
    /// When it stops working; `None` when the vendor does not say (Salesforce).
    pub expires_at: Option<Instant>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// How a connector obtains a new token (refresh grant, JWT assertion, client credentials).
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn fetch(&self) -> Result<AccessToken>;
    /// What another instance needs besides the token to use it (Salesforce: the instance URL).
    fn shared_extra(&self) -> Option<String> {
        None
    }
    /// Takes on what the instance that fetched a shared token recorded with it.
    fn adopt_extra(&self, _extra: &str) {}
}

pub struct TokenCache {
    source: Box<dyn TokenSource>,
    /// The token and when to refresh it.
    current: Mutex<Option<(AccessToken, Option<Instant>)>>,
    /// Refresh this long before the vendor's expiry (at most a fifth of the token's lifetime),
    /// so no request is sent with a dying token.
    margin: Duration,
    /// Re-authenticate after this long even if the vendor gave no expiry (a session lifetime).
    max_age: Option<Duration>,
    refreshes: AtomicU64,
}

impl TokenCache {
    pub fn new(source: Box<dyn TokenSource>, margin: Duration, max_age: Option<Duration>) -> Self {
        TokenCache {
            source,
            current: Mutex::new(None),
            margin,
            max_age,
            refreshes: AtomicU64::new(0),
        }
    }

    /// A token good for at least `margin` more, refreshing first when needed.
    pub async fn get(&self) -> Result<SecretString> {
        // Holding the lock across the refresh is what makes it single-flight.
        let mut current = self.current.lock().await;
        if let Some((t, refresh_at)) = current.as_ref()
            && !due(*refresh_at)
        {
            return Ok(t.secret.clone());
        }
        self.refresh_locked(&mut current).await
    }

    /// After the vendor rejected `rejected` as expired: refresh, unless another worker already
    /// did since (then its new token is returned without a second refresh).
    pub async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        let mut current = self.current.lock().await;
        if let Some((t, refresh_at)) = current.as_ref()
            && t.secret.expose_secret() != rejected.expose_secret()
            && !due(*refresh_at)
        {
            return Ok(t.secret.clone());
        }
        self.refresh_locked(&mut current).await
    }

    /// How many refreshes have been made (for tests and metrics).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    async fn refresh_locked(
        &self,
        current: &mut Option<(AccessToken, Option<Instant>)>,
    ) -> Result<SecretString> {
        *current = None;
        let mut token = self.source.fetch().await?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if let Some(max_age) = self.max_age {
            let cap = now + max_age;
            token.expires_at = Some(token.expires_at.map_or(cap, |at| at.min(cap)));
        }
        let refresh_at = token.expires_at.map(|at| {
            let lifetime = at.saturating_duration_since(now);
            at - self.margin.min(lifetime / 5)
        });
        let secret = token.secret.clone();
        *current = Some((token, refresh_at));
        Ok(secret)
    }
}

/// POSTs a form to a token endpoint. `Ok` carries a refusal's status and JSON body for the
/// caller to word (each vendor says "dead token" its own way); a network failure, 429 or 5xx is
/// an `Err` worth retrying.
pub async fn post_form(
    http: &reqwest::Client,
    url: &reqwest::Url,
    form: &[(&str, &str)],
    what: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value)> {
    let r = http
        .post(url.clone())
        .form(form)
        .send()
        .await
        .map_err(|e| crate::classify::from_reqwest(what, e))?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if crate::classify::is_transient(status) || status.as_u16() == 429 {
        return Err(wa2crm_core::Error::transient(format!(
            "{what} answered {status}; will retry"
        )));
    }
    Ok((status, body))
}

fn due(refresh_at: Option<Instant>) -> bool {
    refresh_at.is_some_and(|at| Instant::now() >= at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    struct Counter {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
    }

    #[async_trait]
    impl TokenSource for Counter {
        async fn fetch(&self) -> Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            // A slow token endpoint, so concurrent callers really overlap.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(AccessToken {
                secret: SecretString::from(format!("token-{n}")),
                expires_at: Some(Instant::now() + self.lifetime),
            })
        }
    }

    fn cache(lifetime: Duration) -> (Arc<TokenCache>, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let source = Counter {
            calls: calls.clone(),
            lifetime,
        };
        let cache = TokenCache::new(Box::new(source), Duration::from_secs(60), None);
        (Arc::new(cache), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_refresh() {
        let (cache, calls) = cache(Duration::from_secs(1800));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.get().await.unwrap().expose_secret().to_owned() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "token-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_of_expiry() {
        let (cache, calls) = cache(Duration::from_secs(1800));
        assert_eq!(cache.get().await.unwrap().expose_secret(), "token-1");
        tokio::time::advance(Duration::from_secs(1800 - 61)).await;
        assert_eq!(cache.get().await.unwrap().expose_secret(), "token-1");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get().await.unwrap().expose_secret(), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn many_rejections_of_one_token_refresh_once() {
        let (cache, calls) = cache(Duration::from_secs(1800));
        let old = cache.get().await.unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let c = cache.clone();
                let old = old.clone();
                tokio::spawn(async move {
                    c.refresh_after_rejection(&old)
                        .await
                        .unwrap()
                        .expose_secret()
                        .to_owned()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "token-2");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.refreshes(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn max_age_caps_a_token_without_expiry() {
        struct NoExpiry;
        #[async_trait]
        impl TokenSource for NoExpiry {
            async fn fetch(&self) -> Result<AccessToken> {
                Ok(AccessToken {
                    secret: SecretString::from("s"),
                    expires_at: None,
                })
            }
        }
        let cache = TokenCache::new(
            Box::new(NoExpiry),
            Duration::from_secs(60),
            Some(Duration::from_secs(3600)),
        );
        cache.get().await.unwrap();
        tokio::time::advance(Duration::from_secs(3000)).await;
        cache.get().await.unwrap();
        assert_eq!(cache.refreshes(), 1);
        tokio::time::advance(Duration::from_secs(600)).await;
        cache.get().await.unwrap();
        assert_eq!(cache.refreshes(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_lived_token_is_refreshed_at_four_fifths_of_its_life() {
        let (cache, calls) = cache(Duration::from_secs(10));
        cache.get().await.unwrap();
        tokio::time::advance(Duration::from_millis(7900)).await;
        cache.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        cache.get().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

/// The state key of the access token instances share.
pub const ACCESS_TOKEN_KEY: &str = "oauth_access_token";

#[derive(serde::Serialize, serde::Deserialize)]
struct SharedToken {
    token: String,
    /// When it expires (ms since the epoch), if the vendor said.
    expires_ms: Option<i64>,
    #[serde(default)]
    extra: Option<String>,
    /// The account it was issued for ([`account_fingerprint`]): a token of another account (the
    /// admin moved the connector from a sandbox org to production) is never taken.
    #[serde(default)]
    account: Option<String>,
}

/// A fingerprint of what decides which account a token belongs to — the endpoints, the client,
/// the user, a hash of the credential — so state kept for one account is never used for another.
pub fn account_fingerprint(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..12])
}

/// One token for every instance of a connector: a refresh happens under a lock all instances
/// share, and an instance that finds a token another one fetched meanwhile takes it instead of
/// refreshing again. That keeps a rotating refresh token from being spent twice (the vendor
/// would retire the first new one), and the token endpoint from seeing one refresh per instance.
///
/// The access token is kept in the state store (the queue database) for that; so is the refresh
/// token already.
pub struct SharedTokenSource {
    inner: Box<dyn TokenSource>,
    state: std::sync::Arc<dyn wa2crm_core::StateStore>,
    scope: String,
    /// The account this connector's configuration names ([`account_fingerprint`]).
    account: String,
    /// Whether a token another instance fetched may be taken; not for `check`, which proves
    /// the credentials by authenticating itself.
    adopt: bool,
    /// The token this process last handed out: when its cache asks again, that one is spent.
    last: std::sync::Mutex<Option<String>>,
}

impl SharedTokenSource {
    pub fn new(
        inner: Box<dyn TokenSource>,
        state: std::sync::Arc<dyn wa2crm_core::StateStore>,
        scope: &str,
        account: &str,
    ) -> Self {
        SharedTokenSource {
            inner,
            state,
            scope: scope.to_owned(),
            account: account.to_owned(),
            adopt: true,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Never takes a stored token: the first call authenticates (`check`).
    pub fn fresh(mut self) -> Self {
        self.adopt = false;
        self
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Replaced whole, never torn.
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A token another instance stored that this one has not used yet and that is not about to
    /// expire.
    async fn adoptable(&self) -> Option<AccessToken> {
        let stored = self
            .state
            .get_state(&self.scope, ACCESS_TOKEN_KEY)
            .await
            .ok()??;
        let stored: SharedToken = serde_json::from_str(&stored).ok()?;
        if !self.adopt || stored.account.as_deref() != Some(self.account.as_str()) {
            return None;
        }
        if self.last().as_deref() == Some(stored.token.as_str()) {
            return None;
        }
        if let Some(extra) = &stored.extra {
            self.inner.adopt_extra(extra);
        }
        let now_ms = wa2crm_core::state::now_ms();
        let expires_at = match stored.expires_ms {
            Some(ms) if ms <= now_ms + 5_000 => return None,
            Some(ms) => Some(Instant::now() + Duration::from_millis((ms - now_ms) as u64)),
            None => None,
        };
        Some(AccessToken {
            secret: SecretString::from(stored.token),
            expires_at,
        })
    }
}

#[async_trait]
impl TokenSource for SharedTokenSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let _one_at_a_time = self.state.lock(&self.scope, "token_refresh").await?;
        if let Some(token) = self.adoptable().await {
            *self.last() = Some(token.secret.expose_secret().to_owned());
            return Ok(token);
        }
        let token = self.inner.fetch().await?;
        let now = Instant::now();
        let shared = SharedToken {
            token: token.secret.expose_secret().to_owned(),
            expires_ms: token.expires_at.map(|at| {
                wa2crm_core::state::now_ms() + at.saturating_duration_since(now).as_millis() as i64
            }),
            extra: self.inner.shared_extra(),
            account: Some(self.account.clone()),
        };
        if let Ok(v) = serde_json::to_string(&shared) {
            // Not sharing it only costs the other instances a refresh of their own.
            let _ = self
                .state
                .put_state(&self.scope, ACCESS_TOKEN_KEY, &v)
                .await;
        }
        *self.last() = Some(shared.token);
        Ok(token)
    }
}

#[cfg(test)]
mod shared_tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// A vendor token endpoint that counts its calls and overlapping calls.
    struct Endpoint {
        calls: Arc<AtomicU64>,
        in_flight: Arc<AtomicU64>,
        overlapped: Arc<AtomicU64>,
    }

    #[async_trait]
    impl TokenSource for Endpoint {
        async fn fetch(&self) -> Result<AccessToken> {
            if self.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
                self.overlapped.fetch_add(1, Ordering::SeqCst);
            }
            tokio::task::yield_now().await;
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(AccessToken {
                secret: SecretString::from(format!("token-{n}")),
                expires_at: Some(Instant::now() + Duration::from_secs(1800)),
            })
        }
    }

    #[tokio::test]
    async fn instances_refresh_one_at_a_time_and_take_each_others_tokens() {
        let state: Arc<dyn wa2crm_core::StateStore> =
            Arc::new(wa2crm_core::MemoryStateStore::default());
        let (calls, in_flight, overlapped) = (Arc::default(), Arc::default(), Arc::default());
        let instance = || {
            TokenCache::new(
                Box::new(SharedTokenSource::new(
                    Box::new(Endpoint {
                        calls: Arc::clone(&calls),
                        in_flight: Arc::clone(&in_flight),
                        overlapped: Arc::clone(&overlapped),
                    }),
                    state.clone(),
                    "hubspot",
                    "portal-1",
                )),
                Duration::from_secs(60),
                None,
            )
        };
        let caches: Vec<Arc<TokenCache>> = (0..3).map(|_| Arc::new(instance())).collect();
        let tasks: Vec<_> = caches
            .iter()
            .map(|c| {
                let c = c.clone();
                tokio::spawn(async move { c.get().await.unwrap().expose_secret().to_owned() })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one refresh for three instances"
        );
        assert!(got.iter().all(|t| t == "token-1"), "{got:?}");
        // The vendor rejects token-1 at one instance: one refresh, which the others then take.
        let fresh = caches[0]
            .refresh_after_rejection(&SecretString::from("token-1"))
            .await
            .unwrap();
        assert_eq!(fresh.expose_secret(), "token-2");
        let other = caches[1]
            .refresh_after_rejection(&SecretString::from("token-1"))
            .await
            .unwrap();
        assert_eq!(
            other.expose_secret(),
            "token-2",
            "taken, not refreshed again"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(overlapped.load(Ordering::SeqCst), 0);
    }

    /// After the admin points the connector at another account (a sandbox org, then
    /// production), the token stored for the first is never used: the next call authenticates.
    #[tokio::test]
    async fn a_token_of_another_account_is_never_taken() {
        let state: Arc<dyn wa2crm_core::StateStore> =
            Arc::new(wa2crm_core::MemoryStateStore::default());
        let calls = Arc::new(AtomicU64::new(0));
        let for_account = |account: &str| {
            TokenCache::new(
                Box::new(SharedTokenSource::new(
                    Box::new(Endpoint {
                        calls: calls.clone(),
                        in_flight: Arc::default(),
                        overlapped: Arc::default(),
                    }),
                    state.clone(),
                    "salesforce",
                    account,
                )),
                Duration::from_secs(60),
                None,
            )
        };
        let sandbox = for_account(&account_fingerprint(&[
            "https://test.salesforce.com",
            "app",
            "a@x",
        ]));
        assert_eq!(sandbox.get().await.unwrap().expose_secret(), "token-1");
        let production = for_account(&account_fingerprint(&[
            "https://login.salesforce.com",
            "app",
            "a@x",
        ]));
        assert_eq!(
            production.get().await.unwrap().expose_secret(),
            "token-2",
            "production authenticates itself"
        );
        let same = for_account(&account_fingerprint(&[
            "https://login.salesforce.com",
            "app",
            "a@x",
        ]));
        assert_eq!(same.get().await.unwrap().expose_secret(), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
