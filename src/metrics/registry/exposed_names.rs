//! Exposed names: the Prometheus and OpenMetrics names a metric takes once exposed, and the
//! registry's index of them, which refuses at registration an instrument whose exposed
//! names another one already takes.
//!
//! The rules are stated in [`crate::expose::text`]; the functions that apply them live here,
//! below the exposition, because the registry applies them too (exposition depends on the
//! metrics, never the other way round).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Entry, Registry, RegistryError};
use crate::metrics::MetricKind;
use crate::sync::lock;

/// `name` fitted to the Prometheus metric name grammar without `:` (the rule and its
/// examples are on the public [`sanitize_name`](crate::expose::sanitize_name)).
pub(crate) fn sanitize(name: &str) -> String {
    let mut sanitized = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        sanitized.push('_');
    }
    sanitized.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    sanitized
}

/// The OpenMetrics name of the family of `kind` whose name fitted to the grammar is
/// `sanitized`: a counter's without one trailing `_total` (unless nothing would be left),
/// any other's as it is.
pub(crate) fn family_name(sanitized: &str, kind: MetricKind) -> &str {
    match sanitized.strip_suffix("_total") {
        Some(stem) if kind == MetricKind::Counter && !stem.is_empty() => stem,
        _ => sanitized,
    }
}

/// The suffixes of the sample names of a family of `kind` (OpenMetrics, whose parsers
/// reserve each of them for the family whether it is written or not); the family's own
/// name is taken too. Info snapshots are exposed as gauges.
pub(crate) fn sample_suffixes(kind: MetricKind) -> &'static [&'static str] {
    match kind {
        MetricKind::Counter => &["_total", "_created"],
        MetricKind::Histogram => &["_bucket", "_sum", "_count", "_created"],
        MetricKind::Summary => &["_sum", "_count", "_created"],
        MetricKind::Gauge | MetricKind::Info => &[],
    }
}

/// Every name the family `family` (an OpenMetrics family name, see [`family_name`]) of
/// `kind` takes: its own, then its name with each of [`sample_suffixes`].
pub(crate) fn taken_names(family: &str, kind: MetricKind) -> impl Iterator<Item = String> + '_ {
    std::iter::once(family.to_owned()).chain(
        sample_suffixes(kind)
            .iter()
            .map(move |suffix| format!("{family}{suffix}")),
    )
}

/// The names the instrument `name` of `kind` takes once exposed.
fn instrument_names(name: &str, kind: MetricKind) -> Vec<String> {
    let sanitized = sanitize(name);
    taken_names(family_name(&sanitized, kind), kind).collect()
}

/// The registry's index of exposed names: each name taken by a registered instrument, with
/// the instrument's (mvx) name and kind. Sources are not in it: the names of their
/// snapshots are known only when they are read, and exposition checks those.
pub(super) type ExposedNames = BTreeMap<String, (String, MetricKind)>;

impl Registry {
    /// Takes the exposed names of the instrument `name` of `kind` in the index, or refuses
    /// with [`RegistryError::SampleNameCollision`] if another instrument takes one of them.
    /// Nothing changes when `name` already takes them (another series of the name).
    ///
    /// Called with the entries' lock held, which every change of the index holds: the
    /// check and the insertion of the entry are one step.
    pub(super) fn claim_exposed_names(
        &self,
        name: &str,
        kind: MetricKind,
    ) -> Result<(), RegistryError> {
        let mut index = lock(&self.inner.exposed_names);
        let names = instrument_names(name, kind);
        for exposed in &names {
            if let Some((existing, existing_kind)) = index.get(exposed) {
                if existing != name {
                    return Err(RegistryError::SampleNameCollision {
                        name: name.to_owned(),
                        requested: kind,
                        exposed: exposed.clone(),
                        existing: existing.clone(),
                        existing_kind: *existing_kind,
                    });
                }
            }
        }
        for exposed in names {
            index.insert(exposed, (name.to_owned(), kind));
        }
        Ok(())
    }

    /// Gives back the exposed names of the instrument of `removed` once no entry (series)
    /// of its name is left in `entries`.
    pub(super) fn release_exposed_names(&self, entries: &BTreeMap<String, Entry>, removed: &Entry) {
        let Some((name, kind)) = removed.instrument() else {
            return;
        };
        let series = format!("{name}{{");
        let left = entries.contains_key(name)
            || entries
                .range::<str, _>((Bound::Included(series.as_str()), Bound::Unbounded))
                .next()
                .is_some_and(|(key, _)| key.starts_with(&series));
        if left {
            return;
        }
        let mut index = lock(&self.inner.exposed_names);
        for exposed in instrument_names(name, kind) {
            if index.get(&exposed).is_some_and(|(owner, _)| owner == name) {
                index.remove(&exposed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_its_name_and_its_sample_names() {
        let cases: [(&str, MetricKind, &[&str]); 7] = [
            ("x", MetricKind::Gauge, &["x"]),
            ("x", MetricKind::Info, &["x"]),
            ("y", MetricKind::Counter, &["y", "y_total", "y_created"]),
            (
                "y_total",
                MetricKind::Counter,
                &["y", "y_total", "y_created"],
            ),
            (
                "y_total_total",
                MetricKind::Counter,
                &["y_total", "y_total_total", "y_total_created"],
            ),
            (
                "_total",
                MetricKind::Counter,
                &["_total", "_total_total", "_total_created"],
            ),
            (
                "http.seconds",
                MetricKind::Histogram,
                &[
                    "http_seconds",
                    "http_seconds_bucket",
                    "http_seconds_sum",
                    "http_seconds_count",
                    "http_seconds_created",
                ],
            ),
        ];
        for (name, kind, expected) in cases {
            assert_eq!(instrument_names(name, kind), expected, "{name} {kind}");
        }
        // A gauge keeps a `_total` suffix.
        assert_eq!(family_name("x_total", MetricKind::Gauge), "x_total");
    }
}
