//! Who may use the console, and proof that a form came from it.
//!
//! - A login checks a user's password against the argon2 hash in `console.users` (in a blocking
//!   thread: argon2 is slow on purpose). An unknown user costs the same check, so answers do not
//!   tell which users exist; five failed logins of one user name lock it for a minute.
//! - A session is a random 256-bit token in a `__Host-` cookie (`Secure`, `HttpOnly`,
//!   `SameSite=Strict`, path `/`). The queue database keeps only its SHA-256 (so a copy of the
//!   database opens no session), which lets a session outlive a restart and be known to every
//!   instance sharing the queue. It ends after `console.session_minutes` without use, or at
//!   logout.
//! - Every POST carries the session's CSRF token in a hidden `csrf` field; [`require_session`]
//!   checks it before any handler runs, so no handler can forget to. The login form has its own
//!   token, in a short-lived cookie, checked the same way (a forged login is refused too).
//! - Failed logins are counted in the queue database too, by the user name's digest, so five
//!   failures lock the name for a minute on every instance: spreading guesses over the instances
//!   behind a load balancer gains nothing.
//! - Without users (allowed on a loopback listener only), every visitor gets a session as
//!   `local`, still with CSRF tokens; each page says the console is open.

use std::sync::Arc;
use std::time::Duration;

use wa2crm_core::StateStore;
use wa2crm_core::state::now_ms;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Console, page};

const SESSION_COOKIE: &str = "__Host-wa2crm-session";
const LOGIN_COOKIE: &str = "__Host-wa2crm-login";
/// A console form is a few fields; anything larger is not one.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Failed logins of one user name before it is locked, and for how long.
const MAX_FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);
/// Password checks at once (see [`Sessions::checking`]).
const MAX_CHECKS: usize = 2;
/// Sessions kept at most; the oldest go first beyond.
const MAX_SESSIONS: usize = 10_000;
/// The user of a console without logins.
pub const LOCAL_USER: &str = "local";

/// A logged-in user, as handlers see it, and as the queue database keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user: String,
    /// What every form of this session carries in its `csrf` field.
    pub csrf: String,
    /// When it ends unless used (ms since the epoch), and when that was last moved.
    expires_ms: i64,
    touched_ms: i64,
}

/// The state scope of the sessions (connector names hold no `:`).
const SCOPE: &str = "console:sessions";
/// A session's end is moved at most this often (a write to the database).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The state scope of the failed logins, by the user name's digest.
const FAILURES: &str = "console:failures";

/// A user name's failed logins in a row, and when the last was (ms since the epoch).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// The live sessions and the failed logins, in the queue database: a restart keeps them and
/// every instance sharing the queue knows them.
pub struct Sessions {
    ttl: Duration,
    state: Arc<dyn StateStore>,
    /// What an unknown user's password is checked against, so that costs as much as a known one.
    decoy: String,
    /// Password checks running at once: each takes argon2's 19 MiB and a core for a moment, so a
    /// flood of logins waits here instead of exhausting the daemon.
    checking: tokio::sync::Semaphore,
}

/// A new random token, 256 bits, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A password for one run (the sandbox's console): 96 random bits, hex.
pub fn one_time_password() -> String {
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The key a session is kept under: the token's SHA-256, hex.
fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id hash of `password` (PHC string), for `console.users`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Sessions {
    pub fn new(ttl: Duration, state: Arc<dyn StateStore>) -> Self {
        Sessions {
            ttl,
            state,
            decoy: hash_password(&new_token()).unwrap_or_default(),
            checking: tokio::sync::Semaphore::new(MAX_CHECKS),
        }
    }

    /// A new session of `user`, and its token (never stored: the database keeps its digest).
    async fn create(&self, user: &str) -> anyhow::Result<(String, Session)> {
        let token = new_token();
        let now = now_ms();
        let session = Session {
            user: user.to_owned(),
            csrf: new_token(),
            expires_ms: now + self.ttl_ms(),
            touched_ms: now,
        };
        self.forget_ended(now).await?;
        self.state
            .put_state(SCOPE, &digest(&token), &serde_json::to_string(&session)?)
            .await?;
        Ok((token, session))
    }

    /// Drops ended sessions; beyond [`MAX_SESSIONS`], the ones closest to their end.
    async fn forget_ended(&self, now: i64) -> anyhow::Result<()> {
        let all = self.state.scan_state(SCOPE).await?;
        let mut live = Vec::new();
        for (key, value) in all {
            match serde_json::from_str::<Session>(&value) {
                Ok(s) if s.expires_ms > now => live.push((s.expires_ms, key)),
                _ => self.state.delete_state(SCOPE, &key).await?,
            }
        }
        live.sort();
        let over = (live.len() + 1).saturating_sub(MAX_SESSIONS);
        for (_, key) in live.into_iter().take(over) {
            self.state.delete_state(SCOPE, &key).await?;
        }
        Ok(())
    }

    /// The live session of `token`, its life extended by this use.
    async fn find(&self, token: &str) -> Option<Session> {
        let key = digest(token);
        let value = match self.state.get_state(SCOPE, &key).await {
            Ok(v) => v?,
            Err(e) => {
                tracing::warn!("Console sessions cannot be read: {e}");
                return None;
            }
        };
        let mut session: Session = serde_json::from_str(&value).ok()?;
        let now = now_ms();
        if session.expires_ms <= now {
            let _ = self.state.delete_state(SCOPE, &key).await;
            return None;
        }
        if now - session.touched_ms >= TOUCH_EVERY_MS {
            session.expires_ms = now + self.ttl_ms();
            session.touched_ms = now;
            if let Ok(v) = serde_json::to_string(&session) {
                let _ = self.state.put_state(SCOPE, &key, &v).await;
            }
        }
        Some(session)
    }

    async fn remove(&self, token: &str) {
        if let Err(e) = self.state.delete_state(SCOPE, &digest(token)).await {
            tracing::warn!("A console session could not be ended: {e}");
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// How long `user` is still locked out, if it is.
    async fn locked(&self, user: &str) -> Option<Duration> {
        let f = self.failures(&digest(user)).await;
        let left = lockout_ms() - (now_ms() - f.last_ms);
        (f.count >= MAX_FAILURES && left > 0).then(|| Duration::from_millis(left.unsigned_abs()))
    }

    async fn failures(&self, key: &str) -> Failures {
        match self.state.get_state(FAILURES, key).await {
            Ok(v) => v
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!("Console failed logins cannot be read: {e}");
                Failures::default()
            }
        }
    }

    /// Counts a failure of `user` (a failure a minute after the last starts a new count), and
    /// forgets the counts of names that failed longer ago, so guessed names leave no trace.
    /// Two instances counting at once may lose one count, never the lock.
    async fn failed(&self, user: &str) {
        let key = digest(user);
        let now = now_ms();
        let mut f = self.failures(&key).await;
        if now - f.last_ms > lockout_ms() {
            f.count = 0;
        }
        f.count += 1;
        f.last_ms = now;
        let written = async {
            for (other, value) in self.state.scan_state(FAILURES).await? {
                let old = serde_json::from_str::<Failures>(&value)
                    .map_or(true, |o| now - o.last_ms > lockout_ms());
                if old && other != key {
                    self.state.delete_state(FAILURES, &other).await?;
                }
            }
            let value = serde_json::to_string(&f)?;
            self.state.put_state(FAILURES, &key, &value).await?;
            anyhow::Ok(())
        };
        if let Err(e) = written.await {
            tracing::warn!("A failed console login could not be counted: {e:#}");
        }
    }

    async fn succeeded(&self, user: &str) {
        if let Err(e) = self.state.delete_state(FAILURES, &digest(user)).await {
            tracing::warn!("Console failed logins cannot be reset: {e}");
        }
    }
}

fn lockout_ms() -> i64 {
    i64::try_from(LOCKOUT.as_millis()).unwrap_or(i64::MAX)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Duration) {
    let v = format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The sessions' database did not answer: said plainly, the reason to the journal.
fn unavailable(e: &anyhow::Error) -> Response {
    tracing::warn!("Console sessions cannot be written: {e:#}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The queue database, which keeps the console's sessions, did not answer: try again.\n",
    )
        .into_response()
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
}

/// The session of the request, or the login page; for a POST, also its CSRF token.
pub async fn require_session(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let found = match cookie(request.headers(), SESSION_COOKIE) {
        Some(t) => console.sessions.find(t).await,
        None => None,
    };
    // What only reads: a HEAD is answered as its GET would be (without the body).
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let (session, new_token) = match found {
        Some(s) => (s, None),
        None if console.is_open() && reads => match console.sessions.create(LOCAL_USER).await {
            Ok((token, s)) => (s, Some(token)),
            Err(e) => return unavailable(&e),
        },
        None if reads => return Redirect::to("/console/login").into_response(),
        None => return forbidden("Log in first: this session ended or never began."),
    };
    if !reads {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response();
        };
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
        if !token.is_some_and(|t| same(t, &session.csrf)) {
            tracing::warn!(user = %session.user, path = %parts.uri.path(), "Console POST refused: CSRF token missing or wrong.");
            return forbidden(
                "Refused: this form did not come from this console session (its CSRF token is \
                 missing or wrong). Reload the page and try again.",
            );
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    if let Some(token) = new_token {
        set_cookie(
            &mut response,
            SESSION_COOKIE,
            &token,
            console.settings.session,
        );
    }
    response
}

pub async fn login_page(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let logged_in = match cookie(&headers, SESSION_COOKIE) {
        Some(t) => console.sessions.find(t).await.is_some(),
        None => false,
    };
    if console.is_open() || logged_in {
        return Redirect::to("/console").into_response();
    }
    login_form(None, StatusCode::OK)
}

fn login_form(error: Option<&str>, status: StatusCode) -> Response {
    let token = new_token();
    let body = html! {
        main class="login" {
            h1 { "wa2crm console" }
            @if let Some(e) = error { p class="error" role="alert" { (e) } }
            form method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(token);
                label for="user" { "User" }
                input id="user" name="user" type="text" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        }
    };
    let mut response = (status, page::bare("Log in", body)).into_response();
    set_cookie(
        &mut response,
        LOGIN_COOKIE,
        &token,
        Duration::from_secs(600),
    );
    response
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(c, &form.csrf)) {
        return forbidden(
            "Refused: this login form did not come from this console (CSRF token missing or \
             wrong). Open /console/login again.",
        );
    }
    let user = form.user.trim().to_owned();
    if let Some(left) = console.sessions.locked(&user).await {
        let text = format!(
            "Too many failed logins for this user: try again in {} s.",
            left.as_secs() + 1
        );
        return login_form(Some(&text), StatusCode::TOO_MANY_REQUESTS);
    }
    let hash = match console.settings.users.get(&user) {
        Some(h) => h.expose_secret().to_owned(),
        None => console.sessions.decoy.clone(),
    };
    let known = console.settings.users.contains_key(&user);
    let password = form.password;
    let Ok(_turn) = console.sessions.checking.acquire().await else {
        return login_form(
            Some("The console is shutting down."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    let matched = tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false);
    if !(matched && known) {
        console.sessions.failed(&user).await;
        tracing::warn!("Console login refused (wrong user or password).");
        return login_form(Some("Wrong user or password."), StatusCode::UNAUTHORIZED);
    }
    console.sessions.succeeded(&user).await;
    tracing::info!(user = %user, "Console login.");
    let (token, _) = match console.sessions.create(&user).await {
        Ok(created) => created,
        Err(e) => return unavailable(&e),
    };
    let mut response = Redirect::to("/console").into_response();
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        &token,
        console.settings.session,
    );
    set_cookie(&mut response, LOGIN_COOKIE, "", Duration::ZERO);
    response
}

pub async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        console.sessions.remove(t).await;
    }
    let mut response = Redirect::to("/console/login").into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", Duration::ZERO);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse").expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horse ", &h));
        assert!(!verify("correct horse", "not a hash"));
    }

    fn memory() -> Arc<dyn StateStore> {
        Arc::new(wa2crm_core::MemoryStateStore::default())
    }

    #[tokio::test]
    async fn sessions_are_found_by_their_token_by_any_instance_and_end() {
        let state = memory();
        let s = Sessions::new(Duration::from_secs(60), state.clone());
        let (token, session) = s.create("alice").await.unwrap();
        assert_eq!(s.find(&token).await.map(|f| f.user), Some("alice".into()));
        // Another instance on the same queue (or this one after a restart) knows it.
        let other = Sessions::new(Duration::from_secs(60), state.clone());
        assert_eq!(other.find(&token).await.map(|f| f.csrf), Some(session.csrf));
        // Only the token's digest is kept.
        let kept = state.scan_state(SCOPE).await.unwrap();
        assert!(!kept.keys().any(|k| k == &token) && !kept.values().any(|v| v.contains(&token)));
        assert!(s.find("0000").await.is_none());
        s.remove(&token).await;
        assert!(other.find(&token).await.is_none());
        let short = Sessions::new(Duration::ZERO, memory());
        let (token, _) = short.create("bob").await.unwrap();
        assert!(short.find(&token).await.is_none(), "expired");
    }

    #[tokio::test]
    async fn five_failures_lock_a_user_name_on_every_instance() {
        let state = memory();
        let s = Sessions::new(Duration::from_secs(60), state.clone());
        let other = Sessions::new(Duration::from_secs(60), state.clone());
        for n in 0..MAX_FAILURES - 1 {
            // Spread over two instances, as a load balancer would.
            match n % 2 {
                0 => s.failed("alice").await,
                _ => other.failed("alice").await,
            }
        }
        assert!(s.locked("alice").await.is_none());
        other.failed("alice").await;
        let left = s.locked("alice").await.expect("locked");
        assert!(left <= LOCKOUT && left > LOCKOUT / 2, "{left:?}");
        assert!(other.locked("alice").await.is_some());
        assert!(s.locked("bob").await.is_none());
        // Names are kept as digests only.
        let kept = state.scan_state(FAILURES).await.unwrap();
        assert!(!kept.keys().any(|k| k.contains("alice")));
        s.succeeded("alice").await;
        assert!(other.locked("alice").await.is_none());
        // A count whose last failure is a minute old starts again, and is forgotten by the next
        // failure of any name.
        let stale = serde_json::to_string(&Failures {
            count: MAX_FAILURES,
            last_ms: now_ms() - lockout_ms() - 1,
        })
        .unwrap();
        state
            .put_state(FAILURES, &digest("carol"), &stale)
            .await
            .unwrap();
        assert!(s.locked("carol").await.is_none());
        s.failed("dave").await;
        let kept = state.scan_state(FAILURES).await.unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), [&digest("dave")]);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x__Host-wa2crm-session=evil; __Host-wa2crm-session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
