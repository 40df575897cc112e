//! Finding a WhatsApp sender among the numbers a CRM already holds, typed by people in any
//! format (`+49 151 1234 5678`, `0151 12345678`, `(415) 555-0134 ext. 12`): each is parsed the
//! way libphonenumber does (the `phonenumber` crate, a maintained port of it), a national number
//! in the configured default country; and the numbers WhatsApp itself writes differently from
//! the customer's own habit count as the same person:
//!
//! - Brazil: mobile numbers gained a ninth digit (a leading 9) in 2012–2016, and WhatsApp still
//!   reports many older accounts without it: wa_id `551187654321` is the customer stored as
//!   `+55 11 98765-4321`.
//! - Mexico: mobile numbers were dialled from abroad as `+52 1 …` until 2019; WhatsApp ids keep
//!   the `521` form for many accounts, while a CRM has `+52 …` (or the reverse).
//! - Argentina: mobiles are `+54 9 …` internationally and `+54 …` (with a `15` in the national
//!   form) in people's habits.
//!
//! Every candidate a CRM search returns is checked here before it is used: a search is only a
//! way to find candidates, never the judge.

use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id as CountryId;

use crate::Phone;

/// The country a national number (`0151 12345678`) is read in (`[connectors.NAME.match]
/// default_country`, ISO 3166 like `DE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultCountry(CountryId);

impl FromStr for DefaultCountry {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        CountryId::from_str(&s.trim().to_ascii_uppercase())
            .map(DefaultCountry)
            .map_err(|_| format!("{s:?} is not a country code like \"DE\" or \"US\""))
    }
}

/// `value` without an extension (`ext. 12`, `x12`, `#12`, `;ext=12`) or the words after it.
fn without_extension(value: &str) -> &str {
    let lower = value.to_ascii_lowercase();
    let mut end = value.len();
    for marker in ["ext", ";", "#", "x", "durchwahl", "dw"] {
        // A marker counts only once a number came before it: the "x" of "Fax:" is no extension.
        for (at, _) in lower.match_indices(marker) {
            if lower[..at].chars().filter(char::is_ascii_digit).count() >= 6 {
                end = end.min(at);
                break;
            }
        }
    }
    &value[..end]
}

/// What a CRM holds in a phone field, in E.164: the extension and any words dropped, a
/// national number read in `country`. `None` when it is no phone number, or a national one
/// with no country to read it in.
pub fn parse_stored(value: &str, country: Option<DefaultCountry>) -> Option<Phone> {
    // "+49 (0)151 …": the trunk prefix in brackets is not dialled after the country code.
    let value = without_extension(value).replace("(0)", "");
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 || digits.len() > 17 {
        return None;
    }
    let first_digit = value.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
    let plus = value[..first_digit].contains('+');
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    let parsed = match international {
        Some(rest) => phonenumber::parse(None, format!("+{rest}")),
        None => phonenumber::parse(Some(country?.0), &digits),
    }
    .ok()?;
    Phone::parse(&parsed.format().mode(Mode::E164).to_string()).ok()
}

/// A number a person typed to look someone up: international (`+49 151…`, `0049 151…`), national
/// in `country` (`0151 2345 6789`) when libphonenumber finds it a valid number there, else the
/// digits as WhatsApp writes its ids (`4915123456789`). `None` when it is none of these.
pub fn parse_typed(text: &str, country: Option<DefaultCountry>) -> Option<Phone> {
    let text = text.trim();
    if text.starts_with('+') || text.starts_with("00") {
        return parse_stored(text, None);
    }
    if let Some(country) = country {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if let Ok(parsed) = phonenumber::parse(Some(country.0), &digits)
            && phonenumber::is_valid(&parsed)
        {
            return Phone::parse(&parsed.format().mode(Mode::E164).to_string()).ok();
        }
    }
    Phone::parse(text).ok()
}

/// Every form WhatsApp's id for this person may take, the id's own first.
pub fn whatsapp_forms(sender: &Phone) -> Vec<Phone> {
    let d = sender.digits();
    let mut forms = vec![sender.clone()];
    let mut add = |digits: String| {
        if let Ok(p) = Phone::parse(&format!("+{digits}"))
            && !forms.contains(&p)
        {
            forms.push(p);
        }
    };
    let mobile_start = |c: Option<char>| c.is_some_and(|c| ('6'..='9').contains(&c));
    if let Some(rest) = d.strip_prefix("55") {
        // Brazil: area code (2 digits) and an 8-digit mobile, with or without the ninth digit.
        let (area, number) = rest.split_at(rest.len().min(2));
        match number.len() {
            8 if mobile_start(number.chars().next()) => add(format!("55{area}9{number}")),
            9 if number.starts_with('9') && mobile_start(number.chars().nth(1)) => {
                add(format!("55{area}{}", &number[1..]))
            }
            _ => {}
        }
    } else if let Some(rest) = d.strip_prefix("52") {
        // Mexico: `521` + 10 digits, or `52` + 10 digits.
        match rest.len() {
            11 if rest.starts_with('1') => add(format!("52{}", &rest[1..])),
            10 => add(format!("521{rest}")),
            _ => {}
        }
    } else if let Some(rest) = d.strip_prefix("54") {
        // Argentina: `549` + 10 digits for mobiles, `54` + 10 digits as people write them.
        match rest.len() {
            11 if rest.starts_with('9') => add(format!("54{}", &rest[1..])),
            10 => add(format!("549{rest}")),
            _ => {}
        }
    }
    forms
}

/// Whether a number a CRM holds (`stored`) is this sender's, in any of its WhatsApp forms.
pub fn same_person(sender: &Phone, stored: &str, country: Option<DefaultCountry>) -> bool {
    parse_stored(stored, country).is_some_and(|p| whatsapp_forms(sender).contains(&p))
}

/// How a number may be written where a search compares digits: its E.164 digits, its national
/// significant number (no country code, no trunk prefix: `15112345678`), and its national
/// form's digits (`015112345678`). For every WhatsApp form of `sender`.
pub fn search_digits(sender: &Phone) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    for form in whatsapp_forms(sender) {
        add(form.digits().to_owned());
        if let Ok(n) = phonenumber::parse(None, form.as_str()) {
            add(national_significant(&n));
            let national: String = n
                .format()
                .mode(Mode::National)
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            add(national);
        }
    }
    out
}

/// How people write the sender's number, as text a CRM compares exactly (Zoho's COQL `in`):
/// for every WhatsApp form, E.164 (`+4915112345678`), its digits, the international and national
/// forms as libphonenumber groups them, the national digits, and the code split from the rest
/// the ways people type it. A number written otherwise (`0151 234 567 89`) is not among them.
pub fn written_forms(sender: &Phone) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    for form in whatsapp_forms(sender) {
        add(form.as_str().to_owned());
        add(form.digits().to_owned());
        if let Ok(n) = phonenumber::parse(None, form.as_str()) {
            add(n.format().mode(Mode::International).to_string());
            let national = n.format().mode(Mode::National).to_string();
            let national_digits: String = national.chars().filter(char::is_ascii_digit).collect();
            add(national);
            // People group a number their own way: the area or carrier code apart from the
            // rest, after 3, 4 or 5 digits (`0151 23456789`, `0151/23456789`, `+49 151 23456789`).
            let code = n.code().value().to_string();
            let significant = national_significant(&n);
            add(format!("+{code} {significant}"));
            for k in 2..=5 {
                if k < national_digits.len() {
                    let (a, b) = national_digits.split_at(k);
                    add(format!("{a} {b}"));
                    add(format!("{a}/{b}"));
                    add(format!("{a}-{b}"));
                }
                if k < significant.len() {
                    let (a, b) = significant.split_at(k);
                    add(format!("+{code} {a} {b}"));
                }
            }
            add(national_digits);
        }
    }
    out
}

/// The national significant number of `sender`'s WhatsApp forms: what HubSpot's calculated
/// searchable phone properties hold.
pub fn national_numbers(sender: &Phone) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for form in whatsapp_forms(sender) {
        if let Ok(n) = phonenumber::parse(None, form.as_str()) {
            let s = national_significant(&n);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn national_significant(n: &phonenumber::PhoneNumber) -> String {
    let zeros = "0".repeat(usize::from(n.national().zeros()));
    format!("{zeros}{}", n.national().value())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn p(s: &str) -> Phone {
        Phone::parse(s).unwrap()
    }

    fn de() -> Option<DefaultCountry> {
        Some("DE".parse().unwrap())
    }

    #[test]
    fn a_typed_number_is_read_nationally_internationally_or_as_whatsapp_writes_it() {
        let us = Some("US".parse().unwrap());
        for (typed, country, want) in [
            ("0151 23456789", de(), Some("+4915123456789")),
            ("+49 151 2345 6789", None, Some("+4915123456789")),
            ("0049 151 2345 6789", us, Some("+4915123456789")),
            // WhatsApp's own form: not a valid German national number, so international.
            ("4915123456789", de(), Some("+4915123456789")),
            ("(415) 555-0199", us, Some("+14155550199")),
            ("4155550199", us, Some("+14155550199")),
            ("0151 23456789", None, None),
            ("not a number", de(), None),
        ] {
            assert_eq!(
                parse_typed(typed, country).map(|p| p.as_str().to_owned()),
                want.map(str::to_owned),
                "{typed}"
            );
        }
    }

    #[test]
    fn written_forms_are_how_people_write_the_number() {
        let forms = written_forms(&p("+4915112345678"));
        for f in [
            "+4915112345678",
            "4915112345678",
            "+49 1511 2345678",
            "01511 2345678",
            "015112345678",
            "0151 12345678",
            "0151/12345678",
            "+49 151 12345678",
            "+49 15112345678",
        ] {
            assert!(forms.iter().any(|x| x == f), "{f} not in {forms:?}");
        }
        assert!(
            forms
                .iter()
                .all(|f| same_person(&p("+4915112345678"), f, de()))
        );
    }

    #[test]
    fn numbers_as_people_type_them_are_read_in_the_default_country() {
        let cases = [
            ("+49 151 1234 5678", "+4915112345678", None),
            ("0151 12345678", "+4915112345678", de()),
            ("0049 (0)151-1234 5678", "+4915112345678", None),
            (
                "(415) 555-0134",
                "+14155550134",
                Some("us".parse().unwrap()),
            ),
            (
                "(415) 555-0134 ext. 12",
                "+14155550134",
                Some("US".parse().unwrap()),
            ),
            ("+1 415 555 0134 x99", "+14155550134", None),
            ("Fax: +1 415 555 0134 x12", "+14155550134", None),
            ("+55 11 98765-4321", "+5511987654321", None),
            ("Mobil: +49 151 12345678 (privat)", "+4915112345678", None),
            ("+39 06 1234 5678", "+390612345678", None),
        ];
        for (stored, e164, country) in cases {
            assert_eq!(
                parse_stored(stored, country),
                Some(p(e164)),
                "{stored} in {country:?}"
            );
        }
        assert_eq!(
            parse_stored("0151 12345678", None),
            None,
            "national, no country"
        );
        assert_eq!(parse_stored("n/a", de()), None);
        assert_eq!(parse_stored("12", de()), None);
    }

    #[test]
    fn whatsapp_quirks_are_the_same_person() {
        // Brazil's ninth digit, both ways.
        assert!(same_person(&p("+551187654321"), "+55 11 98765-4321", None));
        assert!(same_person(&p("+5511987654321"), "+55 11 8765-4321", None));
        // Mexico's 521 and 52.
        assert!(same_person(&p("+5215512345678"), "+52 55 1234 5678", None));
        assert!(same_person(&p("+525512345678"), "+52 1 55 1234 5678", None));
        // Argentina's 549 and 54, and the national form with 15.
        assert!(same_person(&p("+5491123456789"), "+54 11 2345-6789", None));
        assert!(same_person(
            &p("+5491123456789"),
            "011 15-2345-6789",
            Some("AR".parse().unwrap())
        ));
        // A landline in Brazil has no ninth digit to gain; another number is another person.
        assert!(!same_person(&p("+551133334444"), "+55 11 93333-4444", None));
        assert!(!same_person(&p("+4915112345678"), "+49 151 12345679", None));
    }

    #[test]
    fn search_digits_cover_every_form() {
        let digits = search_digits(&p("+4915112345678"));
        for d in ["4915112345678", "15112345678", "015112345678"] {
            assert!(digits.contains(&d.to_string()), "{d} in {digits:?}");
        }
        let br = national_numbers(&p("+551187654321"));
        assert!(br.contains(&"1187654321".to_string()), "{br:?}");
        assert!(br.contains(&"11987654321".to_string()), "{br:?}");
    }

    /// A German mobile number, as E.164.
    fn german_mobile() -> impl Strategy<Value = String> {
        ("15[0-9]", "[1-9][0-9]{6,7}").prop_map(|(a, b)| format!("+49{a}{b}"))
    }

    proptest! {
        /// However a number is written — grouped, dashed, bracketed, national, with 00 — it is
        /// the same number.
        #[test]
        fn every_way_of_writing_a_number_reads_the_same(
            e164 in german_mobile(),
            sep in prop::sample::select(vec![" ", "-", ".", "", " / "]),
        ) {
            let digits = &e164[3..];
            let (a, b) = digits.split_at(3);
            let written = [
                format!("+49{sep}{a}{sep}{b}"),
                format!("0{a}{sep}{b}"),
                format!("0049 {a} {b}"),
                format!("+49 (0){a}{sep}{b}"),
            ];
            for w in written {
                prop_assert_eq!(parse_stored(&w, de()), Some(p(&e164)), "{}", w);
            }
        }

        /// The quirks are symmetric: each form finds the others.
        #[test]
        fn quirk_forms_find_each_other(
            cc in prop::sample::select(vec!["55", "52", "54"]),
            rest in "[1-9][0-9]{9}",
        ) {
            let base = p(&format!("+{cc}{rest}"));
            for form in whatsapp_forms(&base) {
                prop_assert!(
                    whatsapp_forms(&form).contains(&base),
                    "{} does not find {}", form.as_str(), base.as_str()
                );
            }
        }
    }
}
