//! Who may use the console, and proof that a form came from it.
//!
//! - A login checks a user's password against the argon2 hash in `console.users` (in a blocking
//!   thread: argon2 is slow on purpose). An unknown user costs the same check, so answers do not
//!   tell which users exist; five failed logins of one user name lock it for a minute.
//! - A session is a random 256-bit token in a `__Host-` cookie (`Secure`, `HttpOnly`,
//!   `SameSite=Strict`, path `/`); the server keeps only its SHA-256, so a memory dump of
//!   sessions opens none. It ends after `console.session_minutes` without use, or at logout.
//! - Every POST carries the session's CSRF token in a hidden `csrf` field; [`require_session`]
//!   checks it before any handler runs, so no handler can forget to. The login form has its own
//!   token, in a short-lived cookie, checked the same way (a forged login is refused too).
//! - Without users (allowed on a loopback listener only), every visitor gets a session as
//!   `local`, still with CSRF tokens; each page says the console is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A logged-in user, as handlers see it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// What every form of this session carries in its `csrf` field.
    pub csrf: String,
    expires: Instant,
}

/// The live sessions and the failed logins.
pub struct Sessions {
    ttl: Duration,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
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

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            by_digest: Mutex::default(),
            failures: Mutex::default(),
            decoy: hash_password(&new_token()).unwrap_or_default(),
            checking: tokio::sync::Semaphore::new(MAX_CHECKS),
        }
    }

    fn create(&self, user: &str) -> (String, Session) {
        let token = new_token();
        let session = Session {
            user: user.to_owned(),
            csrf: new_token(),
            expires: Instant::now() + self.ttl,
        };
        let mut map = lock(&self.by_digest);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&token), session.clone());
        (token, session)
    }

    /// The live session of `token`, its life extended by this use.
    fn find(&self, token: &str) -> Option<Session> {
        let mut map = lock(&self.by_digest);
        let key = digest(token);
        let now = Instant::now();
        match map.get_mut(&key) {
            Some(s) if s.expires > now => {
                s.expires = now + self.ttl;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    fn remove(&self, token: &str) {
        lock(&self.by_digest).remove(&digest(token));
    }

    /// Until when `user` is locked out, if it is.
    fn locked(&self, user: &str) -> Option<Duration> {
        let map = lock(&self.failures);
        let (count, last) = map.get(user)?;
        let left = LOCKOUT.checked_sub(last.elapsed())?;
        (*count >= MAX_FAILURES).then_some(left)
    }

    fn failed(&self, user: &str) {
        let mut map = lock(&self.failures);
        if map.len() > 10_000 {
            map.clear();
        }
        let entry = map.entry(user.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() > LOCKOUT {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    fn succeeded(&self, user: &str) {
        lock(&self.failures).remove(user);
    }
}

/// A poisoned lock still holds consistent maps: every critical section above is a few plain
/// inserts and removes that cannot panic half-way.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
}

/// The session of the request, or the login page; for a POST, also its CSRF token.
pub async fn require_session(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let found = cookie(request.headers(), SESSION_COOKIE).and_then(|t| console.sessions.find(t));
    let (session, new_token) = match found {
        Some(s) => (s, None),
        None if console.is_open() && request.method() == Method::GET => {
            let (token, s) = console.sessions.create(LOCAL_USER);
            (s, Some(token))
        }
        None if request.method() == Method::GET => {
            return Redirect::to("/console/login").into_response();
        }
        None => return forbidden("Log in first: this session ended or never began."),
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
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
    if console.is_open()
        || cookie(&headers, SESSION_COOKIE).is_some_and(|t| console.sessions.find(t).is_some())
    {
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
    if let Some(left) = console.sessions.locked(&user) {
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
        console.sessions.failed(&user);
        tracing::warn!("Console login refused (wrong user or password).");
        return login_form(Some("Wrong user or password."), StatusCode::UNAUTHORIZED);
    }
    console.sessions.succeeded(&user);
    tracing::info!(user = %user, "Console login.");
    let (token, _) = console.sessions.create(&user);
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
        console.sessions.remove(t);
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

    #[test]
    fn sessions_are_found_by_their_token_and_end() {
        let s = Sessions::new(Duration::from_secs(60));
        let (token, session) = s.create("alice");
        assert_eq!(s.find(&token).map(|f| f.user), Some("alice".into()));
        assert_eq!(s.find(&token).map(|f| f.csrf), Some(session.csrf));
        assert!(s.find("0000").is_none());
        s.remove(&token);
        assert!(s.find(&token).is_none());
        let short = Sessions::new(Duration::ZERO);
        let (token, _) = short.create("bob");
        assert!(short.find(&token).is_none(), "expired");
    }

    #[test]
    fn five_failures_lock_a_user_name() {
        let s = Sessions::new(Duration::from_secs(60));
        for _ in 0..MAX_FAILURES - 1 {
            s.failed("alice");
        }
        assert!(s.locked("alice").is_none());
        s.failed("alice");
        assert!(s.locked("alice").is_some());
        assert!(s.locked("bob").is_none());
        s.succeeded("alice");
        assert!(s.locked("alice").is_none());
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
