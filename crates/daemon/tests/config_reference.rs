//! README's configuration reference stays in step with the configuration types: every key any
//! section accepts is documented, and every key the reference names exists.
//!
//! The keys come from the types themselves: every section denies unknown fields, and serde's
//! refusal of one lists the fields the section accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

const README: &str = include_str!("../../../README.md");
const PROBE: &str = "zz_probe";

/// The fields serde says it expected, from an "unknown field" message.
/// ("expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, `c`").
fn expected_fields(message: &str) -> BTreeSet<String> {
    // The loader's own wording: "… (known keys: a, b, c)".
    if let Some((_, list)) = message.split_once("known keys: ") {
        let list = list.split(')').next().unwrap_or(list);
        return list.split(", ").map(str::to_owned).collect();
    }
    let (_, list) = message
        .split_once("expected ")
        .unwrap_or_else(|| panic!("no field list in: {message}"));
    // The loader adds where: "… for key `server`".
    let list = list.split(" for key ").next().unwrap_or(list);
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The keys one section of the file accepts, probed with a TOML snippet.
fn section_keys(toml: &str) -> BTreeSet<String> {
    let e = wa2crm::config::load_str(toml, HashMap::new(), None)
        .expect_err("the probe key must be refused");
    let message = e.to_string();
    assert!(message.contains(PROBE), "{message}");
    expected_fields(&message)
}

/// The keys of a connector table (or of its sub-table `sub`), from the connector's own parser.
fn connector_keys(kind: &str, sub: Option<&str>) -> BTreeSet<String> {
    let probe = match sub {
        None => serde_json::json!({ PROBE: 1 }),
        Some(s) => serde_json::json!({ s: { PROBE: 1 } }),
    };
    let e = match kind {
        "hubspot" => wa2crm_hubspot::HubSpotConfig::from_value(&probe).err(),
        "zendesk" => wa2crm_zendesk::ZendeskConfig::from_value(&probe).err(),
        "zoho" => wa2crm_zoho::ZohoConfig::from_value(&probe).err(),
        _ => wa2crm_salesforce::SalesforceConfig::from_value(&probe).err(),
    }
    .expect("the probe key must be refused");
    assert!(e.contains(PROBE), "{e}");
    expected_fields(&e)
}

/// Every key the configuration accepts, by how README's reference names its section: a dotted
/// prefix (`server.`), or the connector type (`hubspot `).
fn accepted() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for section in [
        "server",
        "queue",
        "storage",
        "media",
        "policy",
        "retention",
        "notifications",
        "logging",
        "console",
        "notifications.webhook",
        "sources.meta",
        "sources.d360",
        "sources.twilio",
    ] {
        out.insert(
            format!("{section}."),
            section_keys(&format!("[{section}]\n{PROBE} = 1\n")),
        );
    }
    for array in ["routes", "tags"] {
        out.insert(
            format!("[[{array}]]"),
            section_keys(&format!("[[{array}]]\n{PROBE} = 1\n")),
        );
    }
    out.insert(
        "sources.".into(),
        section_keys(&format!("[sources]\n{PROBE} = 1\n")),
    );
    out.insert("top".into(), section_keys(&format!("{PROBE} = 1\n")));
    for (kind, subs) in [
        ("hubspot", &["task", "match"][..]),
        ("salesforce", &["task", "match"]),
        ("zendesk", &["match"]),
        ("zoho", &["match"]),
    ] {
        out.insert(format!("{kind} "), connector_keys(kind, None));
        for sub in subs {
            out.insert(format!("{kind} {sub}."), connector_keys(kind, Some(sub)));
        }
    }
    out
}

/// The rows of README's configuration reference table.
fn reference_rows() -> Vec<&'static str> {
    let start = README
        .find("## Configuration reference")
        .expect("README has a configuration reference");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| key |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect()
}

/// The first cell of a row: where the row's keys are named.
fn key_cell(row: &str) -> &str {
    row.split('|').nth(1).unwrap_or("").trim()
}

fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_accepted_key_is_in_the_reference() {
    let rows = reference_rows();
    assert!(
        rows.len() > 40,
        "the reference table was not found: {rows:?}"
    );
    let mut missing = Vec::new();
    for (section, keys) in accepted() {
        for key in keys {
            let documented = rows.iter().any(|row| {
                let cell = key_cell(row);
                let names = backticked(cell);
                match section.as_str() {
                    // Sections (tables) are documented by their keys.
                    "top" => names.iter().any(|n| {
                        n.starts_with(&format!("{key}."))
                            || n.starts_with(&format!("[[{key}]]"))
                            || *n == key
                    }),
                    "sources." => names
                        .iter()
                        .any(|n| n.starts_with(&format!("sources.{key}."))),
                    s if s.starts_with("[[") => {
                        names.contains(&s) && cell.contains(&format!("`{key}`"))
                            || row.contains(&format!("`{key}`"))
                    }
                    s if s.ends_with(' ') || s.ends_with("task.") || s.ends_with("match.") => {
                        let connector = s.split(' ').next().unwrap_or("");
                        let key = match s.split(' ').nth(1) {
                            Some(sub) if !sub.is_empty() => format!("{sub}{key}"),
                            _ => key.clone(),
                        };
                        let named = |n: &&str| *n == key || n.starts_with(&format!("{key}."));
                        cell.starts_with(connector) && names.iter().any(named)
                            || names.contains(&format!("connectors.NAME.{key}").as_str())
                    }
                    s => {
                        names.iter().any(|n| {
                            *n == format!("{s}{key}") || n.starts_with(&format!("{s}{key}."))
                        }) || (names.first().is_some_and(|n| n.starts_with(s))
                            && names.contains(&key.as_str()))
                    }
                }
            });
            if !documented {
                missing.push(format!("{section}{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys the configuration accepts but README's reference does not document: {missing:?}"
    );
}

#[test]
fn every_key_the_reference_names_exists() {
    let accepted = accepted();
    let mut stale = Vec::new();
    for row in reference_rows() {
        let cell = key_cell(row);
        if let Some(kind) = ["hubspot", "salesforce", "zendesk", "zoho"]
            .into_iter()
            .find(|k| cell.starts_with(k))
        {
            for name in backticked(cell) {
                let known = match name.split_once('.') {
                    Some((sub, key)) => accepted
                        .get(&format!("{kind} {sub}."))
                        .is_some_and(|keys| keys.contains(key)),
                    None => accepted[&format!("{kind} ")].contains(name),
                };
                if !known {
                    stale.push(format!("{kind} {name}"));
                }
            }
            continue;
        }
        for name in backticked(cell) {
            let Some((section, key)) = name.rsplit_once('.') else {
                continue;
            };
            let section = format!("{section}.");
            // Connector tables are documented per type; fields tables name attributes.
            if section.starts_with("connectors.") {
                continue;
            }
            if let Some(keys) = accepted.get(&section)
                && !keys.contains(key)
            {
                stale.push(name.to_owned());
            }
            if !accepted.contains_key(&section) {
                stale.push(format!("{name} (no such section)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "README's reference names keys the configuration does not accept: {stale:?}"
    );
}
