//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the account's Auth Token, over the exact
//! URL Twilio called followed by every POST parameter sorted by name, each as name then value.
//!
//! Every parameter counts, including ones wa2crm does not know: Twilio adds parameters without
//! notice, so the check never works from a list of expected names.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Twilio-Signature header")]
    Missing,
    #[error("X-Twilio-Signature is not base64 of a 20-byte HMAC-SHA1")]
    Malformed,
    #[error(
        "X-Twilio-Signature does not match: Twilio signed {signed_url}, but sources.twilio.webhook_url is \
         {configured}. Behind a proxy the URL wa2crm sees is not the one Twilio calls: set webhook_url to \
         exactly the URL configured in Twilio"
    )]
    UrlMismatch {
        signed_url: String,
        configured: String,
    },
    #[error(
        "X-Twilio-Signature does not match the request (wrong auth_token, a secondary token, or \
         webhook_url differs from the URL configured in Twilio)"
    )]
    Mismatch,
}

fn mac(key: &[u8]) -> HmacSha1 {
    // HMAC is defined for keys of every length (long keys are hashed first), so this cannot fail.
    HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn digest(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, as Twilio does; a repeated name keeps its values in sorted order too.
    sorted.sort();
    let mut m = mac(auth_token.as_bytes());
    m.update(url.as_bytes());
    for (name, value) in sorted {
        m.update(name.as_bytes());
        m.update(value.as_bytes());
    }
    m
}

/// The header Twilio would send for these parameters posted to `url`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(digest(auth_token, url, params).finalize().into_bytes())
}

/// Checks the header in constant time. When it fails, the URL variants a proxy typically changes
/// (scheme, default port, trailing slash) are tried so the error can say which URL Twilio signed.
pub fn verify_signature(
    auth_token: &str,
    webhook_url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = STANDARD
        .decode(header.trim())
        .map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 20 {
        return Err(SignatureError::Malformed);
    }
    if digest(auth_token, webhook_url, params)
        .verify_slice(&expected)
        .is_ok()
    {
        return Ok(());
    }
    for variant in url_variants(webhook_url) {
        if digest(auth_token, &variant, params)
            .verify_slice(&expected)
            .is_ok()
        {
            return Err(SignatureError::UrlMismatch {
                signed_url: variant,
                configured: webhook_url.to_owned(),
            });
        }
    }
    Err(SignatureError::Mismatch)
}

/// What a TLS-terminating proxy or a load balancer makes of a URL: another scheme, the default
/// port written out or dropped, a trailing slash added or dropped.
fn url_variants(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let Some(host) = parsed.host_str() else {
        return Vec::new();
    };
    let path = parsed.path();
    let paths = [
        path.to_owned(),
        match path.strip_suffix('/') {
            Some(p) => p.to_owned(),
            None => format!("{path}/"),
        },
    ];
    let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut out = Vec::new();
    for (scheme, default) in [("https", 443), ("http", 80)] {
        let ports = [None, Some(default), parsed.port()];
        for port in ports.iter().collect::<std::collections::BTreeSet<_>>() {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            for path in &paths {
                out.push(format!("{scheme}://{host}{port}{path}{query}"));
            }
        }
    }
    out.retain(|v| v != url);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const URL: &str = "https://wa2crm.example.com/webhooks/twilio";

    #[test]
    fn twilios_published_example_verifies() {
        // TwilioDevEd/api-snippets, security/signature_validation: this URL, these parameters,
        // this token, this signature.
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &p), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert_eq!(
            verify_signature("12345", url, &p, Some("GvWf1cFY/Q7PnoempGyD5oXAezc=")),
            Ok(())
        );
    }

    #[test]
    fn order_does_not_matter_every_parameter_counts_and_the_token_does() {
        let p = params(&[("MessageSid", "MM1"), ("NumMedia", "1"), ("WaId", "4917")]);
        let header = sign("tok", URL, &p);
        let mut reordered = p.clone();
        reordered.reverse();
        assert_eq!(
            verify_signature("tok", URL, &reordered, Some(&header)),
            Ok(())
        );
        // A parameter wa2crm has never heard of is signed like any other.
        let mut extra = p.clone();
        extra.push(("ReferralCtwaClid".into(), "x".into()));
        let with_extra = sign("tok", URL, &extra);
        assert_eq!(
            verify_signature("tok", URL, &extra, Some(&with_extra)),
            Ok(())
        );
        assert_eq!(
            verify_signature("tok", URL, &p, Some(&with_extra)),
            Err(SignatureError::Mismatch),
            "dropping a parameter breaks it"
        );
        assert_eq!(
            verify_signature("other", URL, &p, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("tok", URL, &p, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature("tok", URL, &p, Some("not base64!")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_proxy_changing_the_url_is_named_in_the_error() {
        let p = params(&[("MessageSid", "MM1")]);
        let signed = sign("tok", "http://wa2crm.example.com/webhooks/twilio", &p);
        let e = verify_signature("tok", URL, &p, Some(&signed)).unwrap_err();
        assert_eq!(
            e,
            SignatureError::UrlMismatch {
                signed_url: "http://wa2crm.example.com/webhooks/twilio".into(),
                configured: URL.into()
            }
        );
        assert!(
            e.to_string()
                .contains("set webhook_url to exactly the URL configured in Twilio")
        );
        let with_port = sign("tok", "https://wa2crm.example.com:443/webhooks/twilio", &p);
        assert!(matches!(
            verify_signature("tok", URL, &p, Some(&with_port)),
            Err(SignatureError::UrlMismatch { signed_url, .. }) if signed_url.contains(":443/")
        ));
        let slash = sign("tok", "https://wa2crm.example.com/webhooks/twilio/", &p);
        assert!(matches!(
            verify_signature("tok", URL, &p, Some(&slash)),
            Err(SignatureError::UrlMismatch { .. })
        ));
    }
}
