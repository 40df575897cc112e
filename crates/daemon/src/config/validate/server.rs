//! `[server]`, `[queue]` and `[media]`: where wa2crm listens, what it hands out, where jobs and
//! files wait.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;

use super::problems::Problems;
use crate::config::Config;

/// `[server]`, resolved: `None` where a problem was recorded.
pub(super) struct Server {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub limits: crate::server::limits::Limits,
    pub public_url: Option<Url>,
    pub max_body_bytes: usize,
}

pub(super) fn server(p: &mut Problems, config: &Config) -> Server {
    let listen = match config.server.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.add(
                "server.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    config.server.listen
                ),
            );
            None
        }
    };
    let admin_listen = match config
        .server
        .admin_listen
        .as_deref()
        .map(str::parse::<SocketAddr>)
    {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            p.add(
                "server.admin_listen",
                "is not an address like 127.0.0.1:9090 (keep it on loopback or a private network)",
            );
            None
        }
    };
    for (key, value) in [
        (
            "server.header_timeout_seconds",
            config.server.header_timeout_seconds,
        ),
        (
            "server.body_timeout_seconds",
            config.server.body_timeout_seconds,
        ),
        (
            "server.max_connections",
            config.server.max_connections as u64,
        ),
        ("server.max_requests", config.server.max_requests as u64),
    ] {
        if value == 0 {
            p.add(key, "must be at least 1");
        }
    }
    let limits = crate::server::limits::Limits {
        header_timeout: Duration::from_secs(config.server.header_timeout_seconds),
        body_timeout: Duration::from_secs(config.server.body_timeout_seconds),
        max_connections: config.server.max_connections,
        max_requests: config.server.max_requests,
    };
    let public_url = match &config.server.public_url {
        None => {
            p.add(
                "server.public_url",
                "is missing: the links written into CRM fields start with it (e.g. https://wa2crm.example.com)",
            );
            None
        }
        Some(url) => match p.endpoint("server.public_url", url) {
            Some(u) if u.query().is_some() || u.fragment().is_some() => {
                p.add(
                    "server.public_url",
                    "must be a base URL without ?query or #fragment",
                );
                None
            }
            u => u,
        },
    };
    let max_body = config.server.max_body_bytes;
    if !(1024..=64 * 1024 * 1024).contains(&max_body) {
        p.add(
            "server.max_body_bytes",
            format!("{max_body} is outside 1024 ..= 67108864"),
        );
    }
    Server {
        listen,
        admin_listen,
        limits,
        public_url,
        max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
    }
}

pub(super) fn queue(p: &mut Problems, config: &Config) {
    let q = &config.queue.url;
    if let Some(path) = q.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        let path = path.split('?').next().unwrap_or(path);
        if !path.starts_with('/') {
            p.add(
                "queue.url",
                format!(
                    "{q:?} is a relative path: the database would be created wherever wa2crm \
                     happens to start. Write an absolute one with three slashes, like \
                     sqlite:///var/lib/wa2crm/queue.db"
                ),
            );
        }
    } else if !(q.starts_with("postgres:") || q.starts_with("postgresql:")) {
        p.add(
            "queue.url",
            format!("{q:?}: expected sqlite:///path/queue.db or postgres://user@host/db"),
        );
    }
    if !(1..=1000).contains(&config.queue.max_attempts) {
        p.add(
            "queue.max_attempts",
            format!("{} is outside 1 ..= 1000", config.queue.max_attempts),
        );
    }
    if !(5..=86_400).contains(&config.queue.retry_max_seconds) {
        p.add(
            "queue.retry_max_seconds",
            format!(
                "{} is outside 5 ..= 86400 (the first wait is 5 s)",
                config.queue.retry_max_seconds
            ),
        );
    }
    if !(2..=3600).contains(&config.queue.lease_seconds) {
        p.add(
            "queue.lease_seconds",
            format!("{} is outside 2 ..= 3600", config.queue.lease_seconds),
        );
    }
    if !(1..=256).contains(&config.queue.workers) {
        p.add(
            "queue.workers",
            format!("{} is outside 1 ..= 256", config.queue.workers),
        );
    }
}

pub(super) fn media(p: &mut Problems, config: &Config) {
    if config.media.max_bytes == 0 {
        p.add("media.max_bytes", "must be greater than 0");
    }
    if !config.media.spool_dir.is_absolute() {
        p.add(
            "media.spool_dir",
            format!(
                "{} is not an absolute path",
                config.media.spool_dir.display()
            ),
        );
    }
    if !(1..=600).contains(&config.media.read_timeout_seconds) {
        p.add(
            "media.read_timeout_seconds",
            format!("{} is outside 1–600", config.media.read_timeout_seconds),
        );
    }
}
