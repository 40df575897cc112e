//! Tag rules (`[[tags]]`): the admin's labels for media, decided from what arrived and what the
//! probe measured, so a CRM user can filter "product-issue" videos or "long" voice notes.
//!
//! A rule tags a media when every condition it names holds (a rule naming none tags every media);
//! rules are tried in order and each one that matches adds its tag once, so a media may get several.
//! Conditions on something the media lacks (a duration, a caption, a file name) do not hold.

use std::time::Duration;

use regex::Regex;

use crate::{MediaKind, Phone};

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct TagRule {
    pub name: String,
    /// Matched against the caption (anywhere in it; anchor with `^…$` for the whole caption).
    pub caption: Option<Regex>,
    /// The media is one of these kinds; empty means any kind.
    pub kinds: Vec<MediaKind>,
    /// The sender is one of these numbers; empty means anyone.
    pub senders: Vec<Phone>,
    /// At least this long (inclusive).
    pub min_duration: Option<Duration>,
    /// At most this long (inclusive).
    pub max_duration: Option<Duration>,
    /// Matched against the file name the customer's phone gave (documents carry one).
    pub file_name: Option<Regex>,
}

impl TagRule {
    /// A rule with a name and no conditions yet: it tags everything.
    pub fn named(name: impl Into<String>) -> TagRule {
        TagRule {
            name: name.into(),
            caption: None,
            kinds: Vec::new(),
            senders: Vec::new(),
            min_duration: None,
            max_duration: None,
            file_name: None,
        }
    }

    pub fn matches(&self, media: &TagInput<'_>) -> bool {
        let text = |re: &Option<Regex>, value: Option<&str>| match re {
            None => true,
            Some(re) => value.is_some_and(|v| re.is_match(v)),
        };
        let seconds = media.duration_seconds.filter(|s| s.is_finite());
        let at_least = |min: Duration| seconds.is_some_and(|s| s >= min.as_secs_f64());
        let at_most = |max: Duration| seconds.is_some_and(|s| s <= max.as_secs_f64());
        (self.kinds.is_empty() || self.kinds.contains(&media.kind))
            && (self.senders.is_empty() || self.senders.contains(media.sender))
            && self.min_duration.is_none_or(at_least)
            && self.max_duration.is_none_or(at_most)
            && text(&self.caption, media.caption)
            && text(&self.file_name, media.file_name)
    }
}

/// What rules look at.
#[derive(Debug, Clone, Copy)]
pub struct TagInput<'a> {
    pub kind: MediaKind,
    pub sender: &'a Phone,
    pub caption: Option<&'a str>,
    pub file_name: Option<&'a str>,
    pub duration_seconds: Option<f64>,
}

/// The configured rules, in order.
#[derive(Debug, Clone, Default)]
pub struct TagRules(pub Vec<TagRule>);

impl TagRules {
    /// The tags of every matching rule, in rule order, each name once.
    pub fn apply(&self, media: &TagInput<'_>) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for rule in &self.0 {
            if rule.matches(media) && !tags.contains(&rule.name) {
                tags.push(rule.name.clone());
            }
        }
        tags
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn phone(s: &str) -> Phone {
        Phone::parse(s).unwrap()
    }

    fn rule(name: &str) -> TagRule {
        TagRule::named(name)
    }

    fn input<'a>(sender: &'a Phone, kind: MediaKind) -> TagInput<'a> {
        TagInput {
            kind,
            sender,
            caption: None,
            file_name: None,
            duration_seconds: None,
        }
    }

    #[test]
    fn each_condition_must_hold_and_absent_values_do_not_match() {
        let anna = phone("+4915123456789");
        let bob = phone("+14155550100");
        let mut r = rule("broken-video");
        r.caption = Some(Regex::new("(?i)broken|kaputt").unwrap());
        r.kinds = vec![MediaKind::Video, MediaKind::Image];
        let mut m = input(&anna, MediaKind::Video);
        assert!(
            !r.matches(&m),
            "no caption: the caption condition cannot hold"
        );
        m.caption = Some("Die Tür ist KAPUTT");
        assert!(r.matches(&m));
        m.kind = MediaKind::Voice;
        assert!(!r.matches(&m), "a voice note is not one of the kinds");

        let mut vip = rule("vip");
        vip.senders = vec![bob.clone()];
        assert!(!vip.matches(&input(&anna, MediaKind::Image)));
        assert!(vip.matches(&input(&bob, MediaKind::Image)));

        let mut long = rule("long");
        long.min_duration = Some(Duration::from_secs(60));
        let mut v = input(&anna, MediaKind::Voice);
        assert!(!long.matches(&v), "no duration measured: not long");
        v.duration_seconds = Some(60.0);
        assert!(long.matches(&v), "the threshold is inclusive");
        v.duration_seconds = Some(59.99);
        assert!(!long.matches(&v));
        v.duration_seconds = Some(f64::NAN);
        assert!(!long.matches(&v));

        let mut invoice = rule("invoice");
        invoice.file_name = Some(Regex::new(r"(?i)^(invoice|rechnung).*\.pdf$").unwrap());
        let mut d = input(&anna, MediaKind::Document);
        assert!(!invoice.matches(&d));
        d.file_name = Some("Rechnung-2026-11.PDF");
        assert!(invoice.matches(&d));
    }

    #[test]
    fn rules_apply_in_order_and_a_tag_comes_once() {
        let anna = phone("+4915123456789");
        let mut short = rule("short");
        short.max_duration = Some(Duration::from_secs(5));
        let mut voice = rule("voice");
        voice.kinds = vec![MediaKind::Voice];
        let rules = TagRules(vec![rule("whatsapp"), voice.clone(), short, voice]);
        let mut m = input(&anna, MediaKind::Voice);
        m.duration_seconds = Some(3.2);
        assert_eq!(rules.apply(&m), ["whatsapp", "voice", "short"]);
        m.kind = MediaKind::Image;
        m.duration_seconds = None;
        assert_eq!(rules.apply(&m), ["whatsapp"]);
        assert!(TagRules::default().apply(&m).is_empty());
    }

    fn kinds() -> impl Strategy<Value = MediaKind> {
        prop::sample::select(MediaKind::ALL.to_vec())
    }

    fn any_rule() -> impl Strategy<Value = TagRule> {
        (
            "[a-z]{1,3}",
            prop::option::of(prop::sample::select(vec!["a", "(?i)b", "^x", "c$", "."])),
            prop::collection::vec(kinds(), 0..3),
            prop::option::of(0u64..200),
            prop::option::of(0u64..200),
            prop::option::of(prop::sample::select(vec![r"\.pdf$", "^a", "."])),
            any::<bool>(),
        )
            .prop_map(|(name, caption, kinds, min, max, file, only_bob)| TagRule {
                name,
                caption: caption.map(|c| Regex::new(c).unwrap()),
                kinds,
                senders: if only_bob {
                    vec![phone("+14155550100")]
                } else {
                    vec![]
                },
                min_duration: min.map(Duration::from_secs),
                max_duration: max.map(Duration::from_secs),
                file_name: file.map(|f| Regex::new(f).unwrap()),
            })
    }

    fn any_media()
    -> impl Strategy<Value = (MediaKind, bool, Option<String>, Option<String>, Option<f64>)> {
        (
            kinds(),
            any::<bool>(),
            prop::option::of(".{0,12}"),
            prop::option::of("[a-zA-Z.]{0,10}"),
            prop::option::of(prop_oneof![
                (0.0f64..300.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-1.0)
            ]),
        )
    }

    proptest! {
        /// The tags are exactly the names of the matching rules, first occurrence first, no
        /// repeats — whatever the rules and the media; and a rule's verdict is the conjunction of
        /// its conditions, each checked on its own.
        #[test]
        fn tags_are_the_matching_rules_names_in_order_once(
            rules in prop::collection::vec(any_rule(), 0..8),
            (kind, from_bob, caption, file_name, duration) in any_media(),
        ) {
            let anna = phone("+4915123456789");
            let bob = phone("+14155550100");
            let sender = if from_bob { &bob } else { &anna };
            let media = TagInput {
                kind,
                sender,
                caption: caption.as_deref(),
                file_name: file_name.as_deref(),
                duration_seconds: duration,
            };
            let tags = TagRules(rules.clone()).apply(&media);
            let mut expected: Vec<String> = Vec::new();
            for r in &rules {
                if r.matches(&media) && !expected.contains(&r.name) {
                    expected.push(r.name.clone());
                }
            }
            prop_assert_eq!(&tags, &expected);
            for r in &rules {
                let one_by_one = [
                    { let mut c = TagRule::named("x"); c.caption = r.caption.clone(); c },
                    { let mut c = TagRule::named("x"); c.kinds = r.kinds.clone(); c },
                    { let mut c = TagRule::named("x"); c.senders = r.senders.clone(); c },
                    { let mut c = TagRule::named("x"); c.min_duration = r.min_duration; c },
                    { let mut c = TagRule::named("x"); c.max_duration = r.max_duration; c },
                    { let mut c = TagRule::named("x"); c.file_name = r.file_name.clone(); c },
                ];
                prop_assert_eq!(r.matches(&media), one_by_one.iter().all(|c| c.matches(&media)));
            }
            let good_duration = duration.is_some_and(|d| d.is_finite());
            for r in &rules {
                if (r.min_duration.is_some() || r.max_duration.is_some()) && !good_duration {
                    prop_assert!(!r.matches(&media), "a duration rule never holds without a duration");
                }
            }
        }
    }
}
