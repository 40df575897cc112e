//! Configuration problems in an admin's words, shared by the daemon's sections and every
//! connector's table: serde's messages turned into "what is wrong, what is allowed, what you
//! probably meant", and the secrets that cannot be real.

/// `; did you mean "x"?` for the candidate closest to `given`, if one is close enough.
pub fn did_you_mean(given: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(given, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

/// A serde message about the value at `path` (dotted, from serde_path_to_error; for a missing
/// field, the table it is missing from) as (the key it is about, the problem).
pub fn explain_serde(path: &str, message: &str) -> (String, String) {
    let join = |leaf: &str| {
        if path.is_empty() || path == "." {
            leaf.to_owned()
        } else if path == leaf || path.ends_with(&format!(".{leaf}")) {
            path.to_owned()
        } else {
            format!("{path}.{leaf}")
        }
    };
    let quoted = |after: &str| {
        let rest = &message[message.find(after)? + after.len()..];
        let start = rest.find('`')? + 1;
        let end = start + rest[start..].find('`')?;
        Some(&rest[start..end])
    };
    // "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`".
    let expected: Vec<&str> = message
        .split_once("expected ")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let known = |kind: &str| {
        if expected.is_empty() {
            String::new()
        } else {
            format!(" ({kind}: {})", expected.join(", "))
        }
    };
    if let Some(field) = quoted("missing field") {
        return (join(field), "is missing".to_owned());
    }
    if let Some(field) = quoted("unknown field") {
        return (
            join(field),
            format!(
                "is not a key wa2crm knows here{}{}",
                did_you_mean(field, &expected),
                known("known keys")
            ),
        );
    }
    if let Some(variant) = quoted("unknown variant") {
        return (
            path.to_owned(),
            format!(
                "{variant:?} is not allowed{}{}",
                did_you_mean(variant, &expected),
                known("allowed")
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (got, wanted) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        let wanted = match wanted {
            "a boolean" => "true or false",
            w => w,
        };
        return (path.to_owned(), format!("is {got}, but must be {wanted}"));
    }
    (path.to_owned(), message.to_owned())
}

/// Why a secret cannot be the real one: empty, or a placeholder copied from an example
/// (`"..."`, `"pat-..."`, `"<your token>"`, `"changeme"`). `None` when it may be real.
pub fn secret_problem(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        return Some("is empty");
    }
    let lower = v.to_ascii_lowercase();
    let placeholder = v.contains("...")
        || v.contains('…')
        || (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with("${") && v.ends_with('}'))
        || [
            "changeme",
            "change_me",
            "change-me",
            "todo",
            "secret",
            "xxx",
            "your_token",
            "token",
        ]
        .contains(&lower.as_str())
        || lower.chars().all(|c| c == 'x' || c == '*');
    placeholder.then_some(
        "is a placeholder from an example, not a real secret: put the real one here or in its \
         credential file",
    )
}

/// A table deserialized into `T`, or the problem with the key it is about.
pub fn from_table<T: serde::de::DeserializeOwned>(
    table: &serde_json::Value,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(table).map_err(|e| {
        let path = e.path().to_string();
        explain_serde(&path, &e.inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_key_and_what_fits() {
        assert_eq!(
            explain_serde("note", "invalid type: string \"yes\", expected a boolean"),
            (
                "note".into(),
                "is string \"yes\", but must be true or false".into()
            )
        );
        let (key, problem) = explain_serde(
            "notee",
            "unknown field `notee`, expected one of `type`, `note`, `note_key`",
        );
        assert_eq!(key, "notee");
        assert!(problem.contains("did you mean \"note\"?"), "{problem}");
        assert!(
            problem.contains("known keys: type, note, note_key"),
            "{problem}"
        );
        assert_eq!(
            explain_serde("task", "missing field `subject`").0,
            "task.subject"
        );
        assert_eq!(
            explain_serde("", "missing field `contact_key`").0,
            "contact_key"
        );
        let (_, problem) = explain_serde(
            "kinds[0]",
            "unknown variant `voicenote`, expected one of `audio`, `voice`, `video`",
        );
        assert!(problem.contains("did you mean \"voice\"?"), "{problem}");
        let (_, problem) = explain_serde("x", "unknown field `x`, expected `a` or `b`");
        assert!(problem.ends_with("(known keys: a, b)"), "{problem}");
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for v in [
            "",
            "  ",
            "...",
            "pat-...",
            "<your token>",
            "${TOKEN}",
            "changeme",
            "xxxx",
            "****",
        ] {
            assert!(secret_problem(v).is_some(), "{v:?}");
        }
        for v in ["pat-na1-3f0c1e2d", "s3cr3t-4f9a0b", "EAAGm0PX4ZCpsBA"] {
            assert_eq!(secret_problem(v), None, "{v:?}");
        }
    }
}
