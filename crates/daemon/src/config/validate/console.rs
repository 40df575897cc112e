//! `[console]`: where the operators' pages are served, and who may log in.

use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use secrecy::ExposeSecret;

use super::problems::Problems;
use crate::config::{Config, ConsoleListener};
use crate::console::Settings;

/// `None` when the console is off or a problem was recorded. `listen` and `admin` are the
/// resolved `server.listen` and `server.admin_listen`.
pub(super) fn console(
    p: &mut Problems,
    config: &Config,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
) -> Option<Settings> {
    let c = &config.console;
    if !c.enabled {
        return None;
    }
    let before = p.0.len();
    let at = match (c.on, admin) {
        (ConsoleListener::Main, _) => listen,
        (ConsoleListener::Admin, Some(a)) => Some(a),
        (ConsoleListener::Admin, None) => {
            p.add(
                "console.on",
                "is \"admin\" but server.admin_listen is not set: set server.admin_listen \
                 (e.g. \"127.0.0.1:9090\"), or console.on = \"main\" to serve it with the webhooks",
            );
            None
        }
    };
    for (user, hash) in &c.users {
        let key = format!("console.users.{user}");
        if user.is_empty() || user.len() > 64 || user.chars().any(|ch| ch.is_control()) {
            p.add(&key, "a user name is 1 to 64 printable characters");
        }
        match PasswordHash::new(hash.expose_secret()) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => {}
            _ => p.add(
                &key,
                "is not an argon2 hash (PHC string, $argon2id$…): make one with `wa2crm \
                 hash-password` and paste it here, never the password itself",
            ),
        }
    }
    if c.users.is_empty()
        && let Some(at) = at
        && !at.ip().is_loopback()
    {
        p.add(
            "console.users",
            format!(
                "is empty, and the console would be served on {at}, which is not loopback: \
                 anyone reaching it could replay and erase. Add a user (`wa2crm hash-password`) \
                 or serve the console on 127.0.0.1"
            ),
        );
    }
    if !(5..=7 * 24 * 60).contains(&c.session_minutes) {
        p.add(
            "console.session_minutes",
            format!("{} is outside 5 ..= 10080", c.session_minutes),
        );
    }
    let country = match c
        .default_country
        .as_deref()
        .or_else(|| first_country(config))
    {
        None => None,
        Some(text) => match text.parse() {
            Ok(country) => Some(country),
            Err(e) => {
                p.add("console.default_country", e);
                None
            }
        },
    };
    (p.0.len() == before).then(|| Settings {
        on: c.on,
        users: c.users.clone(),
        session: Duration::from_secs(c.session_minutes * 60),
        country,
    })
}

/// The first connector's `match.default_country`, if any names one.
fn first_country(config: &Config) -> Option<&str> {
    config
        .connectors
        .values()
        .find_map(|t| t.get("match")?.get("default_country")?.as_str())
}
