//! `[connectors.NAME]`: each table is checked by the crate its `type` names.

use wa2crm_core::FieldMapping;

use super::problems::Problems;

/// The parts of a connector table every connector shares: its type and its field mapping. The
/// rest is the connector crate's to check.
pub(super) fn validate_connector(p: &mut Problems, name: &str, table: &serde_json::Value) {
    let key = format!("connectors.{name}");
    let Some(obj) = table.as_object() else {
        p.add(key, "must be a table");
        return;
    };
    let registry = crate::connectors::registry();
    let types = registry.types().collect::<Vec<_>>().join(", ");
    let kind = obj.get("type").and_then(|t| t.as_str());
    match kind {
        Some(t) if registry.get(t).is_some() => {}
        Some(t) => p.add(
            format!("{key}.type"),
            format!("unknown connector type {t:?}; expected one of {types}"),
        ),
        None => p.add(
            format!("{key}.type"),
            format!("is missing; expected one of {types}"),
        ),
    }
    // A connector crate checks its whole table; for a type without one, the shared parts.
    if let Some(factory) = kind.and_then(|k| registry.get(k)) {
        for (sub, problem) in factory.validate(name, table) {
            let at = if sub.is_empty() {
                key.clone()
            } else {
                format!("{key}.{sub}")
            };
            p.add(at, problem);
        }
        return;
    }
    match obj.get("fields") {
        None => p.add(
            format!("{key}.fields"),
            "is missing: map at least file_url to a CRM field",
        ),
        Some(fields) => match serde_json::from_value::<FieldMapping>(fields.clone()) {
            Err(e) => p.add(format!("{key}.fields"), e.to_string()),
            Ok(mapping) => {
                for problem in mapping.validate() {
                    p.add(
                        format!("{key}.fields.{}", problem.attribute),
                        problem.problem,
                    );
                }
            }
        },
    }
}
