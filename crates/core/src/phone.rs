//! E.164 phone numbers, the key that ties a WhatsApp sender to a CRM contact.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+` then 7 to 15 digits, the first not zero.
///
/// WhatsApp gives senders as bare digits (`wa_id`, `from`), Twilio as `whatsapp:+…`, admins type
/// `+1 (650) 555-1234`: all of these normalize to the same value, so one customer is one contact.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number {input:?} has a character that is not a digit: {found:?}")]
    BadCharacter { input: String, found: char },
    #[error("phone number {input:?} has {digits} digits; E.164 allows 7 to 15")]
    BadLength { input: String, digits: usize },
    #[error("phone number {input:?} starts with 0 after the country prefix")]
    LeadingZero { input: String },
}

impl Phone {
    /// Normalizes a sender or configured number to E.164.
    ///
    /// Accepted: an optional `whatsapp:` prefix, an optional `+` or international `00` prefix, and
    /// the separators people type (space, `-`, `.`, `(`, `)`). Everything else is an error: a
    /// number we cannot trust must not become a CRM contact key.
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix("whatsapp:").unwrap_or(trimmed).trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let rest = if let Some(r) = trimmed.strip_prefix('+') {
            r
        } else if let Some(r) = trimmed.strip_prefix("00") {
            r
        } else {
            trimmed
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => {
                    return Err(PhoneError::BadCharacter {
                        input: input.to_owned(),
                        found: other,
                    });
                }
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(PhoneError::BadLength {
                input: input.to_owned(),
                digits: digits.len(),
            });
        }
        if digits.starts_with('0') {
            return Err(PhoneError::LeadingZero {
                input: input.to_owned(),
            });
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// The E.164 form, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`, as WhatsApp's `wa_id`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl FromStr for Phone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phone::parse(s)
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_every_form_a_sender_arrives_in() {
        for input in [
            "16505551234",
            "+16505551234",
            "whatsapp:+16505551234",
            "+1 (650) 555-1234",
            "001 650.555.1234",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "+16505551234",
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert_eq!(Phone::parse("  "), Err(PhoneError::Empty));
        assert!(matches!(
            Phone::parse("+1650555123x"),
            Err(PhoneError::BadCharacter { found: 'x', .. })
        ));
        assert!(matches!(
            Phone::parse("+123456"),
            Err(PhoneError::BadLength { digits: 6, .. })
        ));
        assert!(matches!(
            Phone::parse("+1234567890123456"),
            Err(PhoneError::BadLength { digits: 16, .. })
        ));
        assert!(matches!(
            Phone::parse("+0123456789"),
            Err(PhoneError::LeadingZero { .. })
        ));
    }

    #[test]
    fn serde_round_trip_validates() {
        let p: Phone = serde_json::from_str("\"+49 151 2345678\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+491512345678\"");
        assert!(serde_json::from_str::<Phone>("\"hello\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_numbers_round_trip(digits in "[1-9][0-9]{6,14}") {
            let p = Phone::parse(&digits).unwrap();
            prop_assert_eq!(p.digits(), digits.as_str());
            prop_assert_eq!(Phone::parse(p.as_str()).unwrap(), p.clone());
            prop_assert_eq!(Phone::parse(&format!("whatsapp:{p}")).unwrap(), p);
        }

        #[test]
        fn never_panics_and_output_is_always_e164(input in "\\PC{0,24}") {
            if let Ok(p) = Phone::parse(&input) {
                let s = p.as_str();
                prop_assert!(s.starts_with('+'));
                prop_assert!(s[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((8..=16).contains(&s.len()));
                prop_assert!(!s[1..].starts_with('0'));
            }
        }
    }
}
