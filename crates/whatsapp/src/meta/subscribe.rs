//! The GET handshake Meta sends when the callback URL or verify token is saved in the dashboard.

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// `?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SubscribeQuery {
    #[serde(rename = "hub.mode")]
    pub mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("hub.mode is not \"subscribe\"")]
    NotSubscribe,
    #[error("hub.verify_token does not match sources.meta.verify_token")]
    WrongToken,
    #[error("hub.challenge is missing")]
    NoChallenge,
}

/// The challenge to echo back, when the request is a subscription with our verify token.
pub fn verify_subscription<'q>(
    query: &'q SubscribeQuery,
    verify_token: &str,
) -> Result<&'q str, SubscribeError> {
    if query.mode.as_deref() != Some("subscribe") {
        return Err(SubscribeError::NotSubscribe);
    }
    let given = query.verify_token.as_deref().unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(verify_token.as_bytes())) {
        return Err(SubscribeError::WrongToken);
    }
    query
        .challenge
        .as_deref()
        .ok_or(SubscribeError::NoChallenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(mode: &str, token: &str, challenge: Option<&str>) -> SubscribeQuery {
        SubscribeQuery {
            mode: Some(mode.into()),
            verify_token: Some(token.into()),
            challenge: challenge.map(Into::into),
        }
    }

    #[test]
    fn echoes_the_challenge_only_for_our_token() {
        assert_eq!(
            verify_subscription(&q("subscribe", "tok", Some("1158201444")), "tok"),
            Ok("1158201444")
        );
        assert_eq!(
            verify_subscription(&q("subscribe", "nope", Some("1")), "tok"),
            Err(SubscribeError::WrongToken)
        );
        assert_eq!(
            verify_subscription(&q("unsubscribe", "tok", Some("1")), "tok"),
            Err(SubscribeError::NotSubscribe)
        );
        assert_eq!(
            verify_subscription(&q("subscribe", "tok", None), "tok"),
            Err(SubscribeError::NoChallenge)
        );
        assert_eq!(
            verify_subscription(&SubscribeQuery::default(), "tok"),
            Err(SubscribeError::NotSubscribe)
        );
    }
}
