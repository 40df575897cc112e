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

/// Whether logs show phone numbers in full (`[logging] show_phone_numbers`); masked otherwise.
static SHOW_IN_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets, once at start, whether logs show phone numbers in full.
pub fn show_in_logs(show: bool) {
    SHOW_IN_LOGS.store(show, std::sync::atomic::Ordering::Relaxed);
}

/// `+49151…789`: the country and area part and the last three digits, enough to tell people
/// apart in a log, not enough to call them.
fn masked(e164: &str) -> String {
    let digits = &e164[1..];
    if digits.len() < 9 {
        return format!("+{}…", &digits[..digits.len().min(3)]);
    }
    format!("+{}…{}", &digits[..5], &digits[digits.len() - 3..])
}

/// `text` (an error from a vendor, which may echo a number back) with every `+` number of 7 to
/// 15 digits masked, unless logs show numbers.
pub fn mask_in_text(text: &str) -> std::borrow::Cow<'_, str> {
    if SHOW_IN_LOGS.load(std::sync::atomic::Ordering::Relaxed) || !text.contains('+') {
        return std::borrow::Cow::Borrowed(text);
    }
    static NUMBER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = NUMBER.get_or_init(|| {
        regex::Regex::new(r"\+[1-9][0-9]{6,14}").expect("the pattern is a valid regex")
    });
    re.replace_all(text, |c: &regex::Captures<'_>| masked(&c[0]))
}

/// A number as logs show it: masked unless `[logging] show_phone_numbers`.
pub struct Logged<'a>(&'a Phone);

impl fmt::Display for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if SHOW_IN_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
            f.write_str(&self.0.0)
        } else {
            f.write_str(&masked(&self.0.0))
        }
    }
}

impl Phone {
    /// For logs: masked unless `[logging] show_phone_numbers` (see [`show_in_logs`]).
    pub fn logged(&self) -> Logged<'_> {
        Logged(self)
    }

    /// Always masked (`+49151…789`), whatever logs show: for records that outlive the person's
    /// data, such as the audit log of an erasure.
    pub fn masked(&self) -> String {
        masked(&self.0)
    }

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

    /// Logs show a number masked, in fields and inside a vendor's error text, unless asked to
    /// show them. (One test for both states: the setting is process-wide.)
    #[test]
    fn logs_mask_numbers_unless_told_to_show_them() {
        let p = Phone::parse("+4915123456789").unwrap();
        assert_eq!(p.logged().to_string(), "+49151…789");
        assert_eq!(
            mask_in_text("A record with the value +4915123456789 already exists (id 1001)"),
            "A record with the value +49151…789 already exists (id 1001)"
        );
        assert_eq!(
            mask_in_text("job 17, 6542 bytes, at 1790000000"),
            "job 17, 6542 bytes, at 1790000000"
        );
        assert_eq!(
            Phone::parse("+1234567").unwrap().logged().to_string(),
            "+123…"
        );
        show_in_logs(true);
        assert_eq!(p.logged().to_string(), "+4915123456789");
        assert_eq!(mask_in_text("to +4915123456789"), "to +4915123456789");
        show_in_logs(false);
    }
}
