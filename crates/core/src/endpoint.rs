//! The one rule for every URL wa2crm sends credentials or customers' data to, or hands out:
//! https, except a loopback address (127.0.0.0/8, ::1, localhost), which the sandbox and tests
//! use. A plain-http vendor or public URL would carry tokens and media in the clear.

use url::{Host, Url};

/// Whether `url` is on this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(a)) => a.is_loopback(),
        Some(Host::Ipv6(a)) => a.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `value` as an https URL (or http on loopback), or what is wrong with it in an admin's words.
pub fn check(value: &str) -> Result<Url, String> {
    // `host:8443` parses as scheme `host`; without `://` it is a host, not a URL.
    if !value.contains("://") {
        return Err(format!(
            "{value:?} has no scheme: write it in full, like https://{}",
            value.trim()
        ));
    }
    let url = Url::parse(value.trim()).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("{value:?} has no scheme: write it in full, like https://{value}")
        }
        e => format!("{value:?} is not a URL: {e}"),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{value:?} is plain http: use https (plain http is only for a loopback address such \
             as 127.0.0.1, as in the sandbox)"
        )),
        other => Err(format!("{value:?} has scheme {other:?}; expected https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_everywhere_http_only_on_loopback() {
        for ok in [
            "https://api.hubapi.com",
            "https://wa2crm.example.com/",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:9000/x",
            "http://localhost:3000",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("http://api.hubapi.com", "plain http"),
            ("http://10.0.0.5", "plain http"),
            ("http://169.254.169.254/latest", "plain http"),
            ("ftp://example.com", "expected https"),
            (
                "wa2crm.example.com",
                "write it in full, like https://wa2crm.example.com",
            ),
            ("https://", "not a URL"),
            (
                "wa2crm.example.com:8443",
                "like https://wa2crm.example.com:8443",
            ),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
