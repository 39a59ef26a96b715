//! From snapshots to metric families: names, HELP, kinds, series and their labels, and the
//! collisions left out (the rules are in the [module docs](super)).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::write::escape_label_value;
use super::{Format, TextEncoder};
use crate::expose::sanitize::{exposed_label_name, sanitize_name};
use crate::metrics::{Metadata, MetricKind, Snapshots, Value};

/// One metric family, ready to write: one or more series.
pub(super) struct Family<'a> {
    /// The mvx name (and dimension) it comes from.
    origin: String,
    /// The HELP text: the description, or the origin.
    pub(super) help: String,
    pub(super) kind: MetricKind,
    pub(super) series: Vec<Series<'a>>,
}

/// The samples of one series of a family, with its labels.
pub(super) struct Series<'a> {
    /// The series' labels, ready to write (empty for an unlabeled series).
    pub(super) labels: String,
    pub(super) samples: Samples<'a>,
}

impl<'a> Family<'a> {
    fn new(
        origin: String,
        help: String,
        kind: MetricKind,
        labels: String,
        samples: Samples<'a>,
    ) -> Self {
        Self {
            origin,
            help,
            kind,
            series: vec![Series { labels, samples }],
        }
    }
}

/// The samples of a series.
pub(super) enum Samples<'a> {
    /// One sample.
    Single(Value),
    /// Cumulative buckets by bound (`+Inf` last), then sum and count.
    Histogram {
        buckets: Vec<(f64, &'a Value)>,
        sum: Value,
        count: Value,
    },
}

impl TextEncoder {
    /// The families of `snapshots` by exposed name, and the families left out because
    /// another snapshot gave the same exposed name first, as
    /// `(exposed name, the mvx name and dimension it came from)`.
    pub(super) fn families<'a>(
        &self,
        snapshots: &'a Snapshots,
        metadata: &BTreeMap<String, Metadata>,
        format: Format,
    ) -> (BTreeMap<String, Family<'a>>, Vec<(String, String)>) {
        let mut families: BTreeMap<String, Family<'a>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (key, snapshot) in snapshots {
            // A labeled snapshot is kept under its series key: its name is the metric's.
            let name = if snapshot.labels.is_empty() {
                key
            } else {
                &snapshot.name
            };
            let base = sanitize_name(name);
            let description = metadata.get(name).and_then(Metadata::get_description);
            let histogram = snapshot.kind == MetricKind::Histogram;
            let labels = self.series_labels(&snapshot.labels, histogram);
            let candidates: Vec<(String, Family<'a>)> = match snapshot.kind {
                MetricKind::Histogram => histogram_family(name, &snapshot.dimensions)
                    .map(|(origin, samples)| {
                        let help = description.unwrap_or(name).to_owned();
                        let family = Family::new(
                            origin,
                            help,
                            MetricKind::Histogram,
                            labels.clone(),
                            samples,
                        );
                        (base.clone(), family)
                    })
                    .into_iter()
                    .collect(),
                kind => {
                    let single =
                        snapshot.dimensions.len() == 1 && snapshot.dimensions.contains_key("value");
                    snapshot
                        .dimensions
                        .iter()
                        .map(|(dimension, value)| {
                            let (exposed, origin, help) = if single {
                                let help = description.unwrap_or(name).to_owned();
                                (base.clone(), name.clone(), help)
                            } else {
                                let help = match description {
                                    Some(description) => format!("{description} ({dimension})"),
                                    None => format!("{name} {dimension}"),
                                };
                                (
                                    format!("{base}_{}", sanitize_name(dimension)),
                                    format!("{name} {dimension}"),
                                    help,
                                )
                            };
                            let kind = if kind == MetricKind::Info {
                                MetricKind::Gauge
                            } else {
                                kind
                            };
                            let family = Family::new(
                                origin,
                                help,
                                kind,
                                labels.clone(),
                                Samples::Single(*value),
                            );
                            (family_name(&exposed, kind, format), family)
                        })
                        .collect()
                }
            };
            for (exposed, mut family) in candidates {
                match families.entry(exposed) {
                    // Another series of the same metric: one more sample set in its family.
                    Entry::Occupied(mut taken)
                        if taken.get().origin == family.origin
                            && taken.get().kind == family.kind =>
                    {
                        taken.get_mut().series.append(&mut family.series);
                    }
                    Entry::Occupied(taken) => skipped.push((taken.key().clone(), family.origin)),
                    Entry::Vacant(free) => {
                        free.insert(family);
                    }
                }
            }
        }
        (families, skipped)
    }

    /// The labels of a series, ready to write: names fitted to the label grammar, values
    /// escaped; a name already added to the encoder, or seen before in the series, is left
    /// out.
    fn series_labels(&self, labels: &BTreeMap<String, String>, histogram: bool) -> String {
        let mut rendered = String::new();
        let mut written: Vec<String> = Vec::new();
        for (label, value) in labels {
            let exposed = exposed_label_name(label, histogram);
            if self.label_names.contains(&exposed) || written.contains(&exposed) {
                continue;
            }
            if !rendered.is_empty() {
                rendered.push(',');
            }
            rendered.push_str(&exposed);
            rendered.push_str("=\"");
            escape_label_value(value, &mut rendered);
            rendered.push('"');
            written.push(exposed);
        }
        rendered
    }
}

/// The help and samples of a histogram snapshot, or `None` if it has neither buckets nor a
/// count.
fn histogram_family<'a>(
    name: &str,
    dimensions: &'a BTreeMap<String, Value>,
) -> Option<(String, Samples<'a>)> {
    let mut buckets: Vec<(f64, &'a Value)> = dimensions
        .iter()
        .filter_map(|(dimension, value)| {
            let bound = dimension.strip_prefix("le:")?;
            let bound = match bound {
                "+Inf" | "inf" | "+inf" => f64::INFINITY,
                other => other.parse::<f64>().ok().filter(|bound| !bound.is_nan())?,
            };
            Some((bound, value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = dimensions.get("count").copied();
    let last = buckets.last().map(|&(bound, value)| (bound, *value));
    let count = match (count, last) {
        (Some(count), _) => count,
        (None, Some((bound, value))) if bound == f64::INFINITY => value,
        _ => return None,
    };
    if buckets
        .last()
        .is_none_or(|&(bound, _)| bound != f64::INFINITY)
    {
        buckets.push((f64::INFINITY, dimensions.get("count")?));
    }
    Some((
        name.to_owned(),
        Samples::Histogram {
            buckets,
            sum: dimensions.get("sum").copied().unwrap_or(Value::U64(0)),
            count,
        },
    ))
}

/// The exposed family name of `name` for `kind` in `format` (counters' `_total` suffix).
fn family_name(name: &str, kind: MetricKind, format: Format) -> String {
    if kind != MetricKind::Counter {
        return name.to_owned();
    }
    match format {
        Format::Prometheus if name.ends_with("_total") => name.to_owned(),
        Format::Prometheus => format!("{name}_total"),
        Format::OpenMetrics => match name.strip_suffix("_total") {
            Some(stem) if !stem.is_empty() => stem.to_owned(),
            _ => name.to_owned(),
        },
    }
}
