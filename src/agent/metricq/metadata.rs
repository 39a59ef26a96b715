//! Metadata on the wire: mvx [`Metadata`] as metricq's metadata objects and back, and
//! `get_metrics`: a [`Selector`] as the RPC's arguments, its answer as metadata by name.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::error::MetricqError;
use crate::agent::Selector;
use crate::metrics::Metadata;

/// The arguments of `get_metrics` for `selector`, and whether metadata is wanted; a
/// selector the manager refuses ([`Selector::check`]: `prefix` with `infix`, either with a
/// regular expression or names, an empty list of names) is refused here, as
/// [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) refuses it.
///
/// The selector's filters are read from its query string (`Display`), which holds each of
/// them: `selector` (a regular expression) or repeated `name`s, `prefix`, `infix`, `limit`,
/// `hidden`, `historic`, `metadata`.
pub(crate) fn get_metrics_arguments(selector: &Selector) -> Result<(Value, bool), MetricqError> {
    selector.check().map_err(MetricqError::InvalidSelector)?;
    let query = selector.to_string();
    let mut arguments = Map::new();
    let mut names = Vec::new();
    let mut with_metadata = true;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let flag = || Value::Bool(value == "true");
        match &*key {
            "selector" => {
                arguments.insert("selector".into(), Value::String(value.to_string()));
            }
            "name" => names.push(Value::String(value.to_string())),
            "prefix" | "infix" => {
                arguments.insert(key.to_string(), Value::String(value.to_string()));
            }
            "limit" => {
                if let Ok(limit) = value.parse::<u64>() {
                    arguments.insert("limit".into(), Value::from(limit));
                }
            }
            "hidden" | "historic" => {
                arguments.insert(key.to_string(), flag());
            }
            "metadata" => with_metadata = value == "true",
            _ => {}
        }
    }
    if selector.get_names().is_some() {
        arguments.insert("selector".into(), Value::Array(names));
    }
    arguments.insert(
        "format".into(),
        Value::String(if with_metadata { "object" } else { "array" }.into()),
    );
    Ok((Value::Object(arguments), with_metadata))
}

/// Reads the `metrics` of a `get_metrics` answer: an object of metadata by name
/// (`format: object`) or an array of names (`format: array`).
pub(crate) fn parse_get_metrics(
    mut answer: Map<String, Value>,
    with_metadata: bool,
) -> Result<BTreeMap<String, Metadata>, MetricqError> {
    let invalid = |detail: &str| MetricqError::invalid_response("get_metrics", detail);
    match answer.remove("metrics") {
        Some(Value::Object(metrics)) => metrics
            .into_iter()
            .map(|(name, metadata)| match metadata {
                Value::Object(fields) => Ok((
                    name,
                    if with_metadata {
                        metadata_from_json(fields)
                    } else {
                        Metadata::new()
                    },
                )),
                _ => Err(invalid("the metadata of a metric is not an object")),
            })
            .collect(),
        Some(Value::Array(names)) => names
            .into_iter()
            .map(|name| match name {
                Value::String(name) => Ok((name, Metadata::new())),
                _ => Err(invalid("a metric name is not a string")),
            })
            .collect(),
        _ => Err(invalid("no `metrics` object or array")),
    }
}

/// mvx [`Metadata`] from metricq's metadata object: `unit` and `description` (strings),
/// `rate` (a finite number above zero), `hidden` and `historic` (booleans) become the typed
/// fields; every other key becomes a free-form field with its JSON value as it is. Keys
/// starting with `_` (the database's `_id`, `_rev`) are left out, and so is a typed key
/// whose value has another type.
pub(crate) fn metadata_from_json(fields: Map<String, Value>) -> Metadata {
    let mut metadata = Metadata::new();
    for (key, value) in fields {
        if key.starts_with('_') {
            continue;
        }
        metadata = match (key.as_str(), value) {
            ("unit", Value::String(unit)) => metadata.unit(unit),
            ("description", Value::String(text)) => metadata.description(text),
            ("rate", Value::Number(rate)) => match rate.as_f64() {
                Some(rate) => metadata.clone().rate(rate).unwrap_or(metadata),
                None => metadata,
            },
            ("hidden", Value::Bool(flag)) => metadata.hidden(flag),
            ("historic", Value::Bool(flag)) => metadata.historic(flag),
            ("unit" | "description" | "rate" | "hidden" | "historic", _) => metadata,
            (_, value) => metadata.clone().field(key, value).unwrap_or(metadata),
        };
    }
    metadata
}

/// metricq's metadata object for `metadata`, as `source.declare_metrics` sends it: the
/// typed fields and the free-form ones; `historic` is left out (the manager sets it from
/// the databases and ignores a source's).
pub(crate) fn metadata_to_json(metadata: &Metadata) -> Value {
    let mut value = serde_json::to_value(metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut value {
        fields.remove("historic");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SelectorError;

    #[test]
    fn selectors_become_get_metrics_arguments() {
        let (arguments, metadata) =
            get_metrics_arguments(&Selector::regex("^cpu").unwrap().hidden(false).limit(3))
                .unwrap();
        assert!(metadata);
        assert_eq!(
            arguments,
            json!({"selector": "^cpu", "hidden": false, "limit": 3, "format": "object"})
        );
        let (arguments, metadata) =
            get_metrics_arguments(&Selector::names(["b", "a"]).metadata(false).historic(true))
                .unwrap();
        assert!(!metadata);
        assert_eq!(
            arguments,
            json!({"selector": ["a", "b"], "historic": true, "format": "array"})
        );
        assert_eq!(
            get_metrics_arguments(&Selector::all().infix("load"))
                .unwrap()
                .0,
            json!({"infix": "load", "format": "object"})
        );
        assert_eq!(
            get_metrics_arguments(&Selector::all()).unwrap().0,
            json!({"format": "object"})
        );
    }

    /// What the manager refuses is refused before it is sent, with the selector's error.
    #[test]
    fn selectors_the_manager_refuses_are_refused() {
        let refused = [
            (
                Selector::names(Vec::<String>::new()),
                SelectorError::EmptyNameList,
            ),
            (
                Selector::names(["a"]).prefix("x"),
                SelectorError::SelectorAndFix,
            ),
            (
                Selector::all().prefix("x").infix("y"),
                SelectorError::PrefixAndInfix,
            ),
        ];
        for (selector, expected) in refused {
            let error = get_metrics_arguments(&selector).unwrap_err();
            assert!(
                matches!(&error, MetricqError::InvalidSelector(refusal) if *refusal == expected),
                "{selector}: {error:?}"
            );
            assert_eq!(error.reason(), super::super::MetricqReason::InvalidArgument);
        }
    }

    #[test]
    fn metricq_metadata_becomes_mvx_metadata() {
        let Value::Object(fields) = json!({
            "_id": "cpu.load", "_rev": "1-x", "unit": "%", "description": "load",
            "rate": 10, "hidden": true, "historic": true, "source": "source-x",
            "chunkSize": 1, "scope": {"a": 1}, "bad_rate": "x",
        }) else {
            unreachable!()
        };
        let metadata = metadata_from_json(fields);
        let expected = Metadata::new()
            .unit("%")
            .description("load")
            .rate(10.0)
            .unwrap()
            .hidden(true)
            .historic(true)
            .field("source", "source-x")
            .unwrap()
            .field("chunkSize", 1)
            .unwrap()
            .field("scope", json!({"a": 1}))
            .unwrap()
            .field("bad_rate", "x")
            .unwrap();
        assert_eq!(metadata, expected);
        let Value::Object(odd) = json!({"rate": -1, "unit": 3}) else {
            unreachable!()
        };
        assert_eq!(metadata_from_json(odd), Metadata::new());
        assert_eq!(
            metadata_to_json(&Metadata::new().unit("s").historic(true)),
            json!({"unit": "s"})
        );
    }

    #[test]
    fn answers_parse_or_are_refused() {
        let object = json!({"metrics": {"a": {"unit": "s"}, "b": {}}});
        let Value::Object(object) = object else {
            unreachable!()
        };
        let parsed = parse_get_metrics(object, true).unwrap();
        assert_eq!(parsed["a"], Metadata::new().unit("s"));
        assert_eq!(parsed["b"], Metadata::new());
        let Value::Object(array) = json!({"metrics": ["x", "y"]}) else {
            unreachable!()
        };
        assert_eq!(
            parse_get_metrics(array, false)
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
        for bad in [json!({}), json!({"metrics": 3}), json!({"metrics": [1]})] {
            let Value::Object(bad) = bad else {
                unreachable!()
            };
            assert_eq!(
                parse_get_metrics(bad, true).unwrap_err().reason(),
                super::super::MetricqReason::InvalidResponse
            );
        }
    }
}
