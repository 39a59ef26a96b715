//! From snapshots to metric families: names, HELP, units, kinds, series and their labels,
//! and the families left out because a name of theirs is taken (the rules are in the
//! [module docs](super)).

use std::collections::{BTreeMap, HashMap};

use super::TextEncoder;
use super::write::escape_label_value;
use crate::expose::sanitize::exposed_label_name;
use crate::metrics::exposed_names::{family_name, sanitize, taken_names};
use crate::metrics::{Metadata, MetricKind, Snapshots, Value};

/// One metric family, ready to write: one or more series.
pub(super) struct Family<'a> {
    /// The mvx name (and dimension) it comes from.
    pub(super) origin: String,
    /// The HELP text: the description, or the origin.
    pub(super) help: String,
    /// The unit, when the family's name ends with it (OpenMetrics `UNIT`).
    pub(super) unit: Option<&'a str>,
    pub(super) kind: MetricKind,
    pub(super) series: Vec<Series<'a>>,
}

/// The samples of one series of a family, with its labels.
pub(super) struct Series<'a> {
    /// The series' labels, ready to write (empty for an unlabeled series).
    pub(super) labels: String,
    pub(super) samples: Samples<'a>,
    /// When the series was created, in seconds since the Unix epoch (OpenMetrics
    /// `_created`), if its snapshot says.
    pub(super) created: Option<f64>,
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
    /// Values by quantile (increasing), then sum and count.
    Summary {
        quantiles: Vec<(f64, Value)>,
        sum: Value,
        count: Value,
    },
}

/// A family left out, by OpenMetrics names: see [`Skipped`](super::Skipped).
pub(super) struct Left {
    pub(super) family: String,
    pub(super) origin: String,
    pub(super) kind: MetricKind,
    pub(super) name: String,
    pub(super) taken_by: String,
    pub(super) taken_by_kind: MetricKind,
}

/// The families of some snapshots: those exposed, by OpenMetrics name, and those left out.
pub(super) struct Families<'a> {
    /// The families to write, in order of their OpenMetrics names.
    pub(super) exposed: Vec<(String, Family<'a>)>,
    /// The families left out, in the order they were met.
    pub(super) left_out: Vec<Left>,
    /// Every name the exposed families take.
    pub(super) taken: HashMap<String, (String, MetricKind)>,
}

impl TextEncoder {
    /// The families of `snapshots`: grouped (the series of one metric are one family),
    /// then taken in order of their OpenMetrics names, each kept only if none of the names
    /// it takes (its name, and every sample name of its type) is taken by one before it.
    pub(super) fn families<'a>(
        &self,
        snapshots: &'a Snapshots,
        metadata: &'a BTreeMap<String, Metadata>,
    ) -> Families<'a> {
        // By (OpenMetrics name, origin): one family per kind met, in the order met.
        let mut grouped: BTreeMap<(String, String), Vec<Family<'a>>> = BTreeMap::new();
        for (key, snapshot) in snapshots {
            // A labeled snapshot is kept under its series key: its name is the metric's.
            let name = if snapshot.labels.is_empty() {
                key
            } else {
                &snapshot.name
            };
            let base = sanitize(name);
            let described = metadata.get(name.as_str());
            let description = described.and_then(Metadata::get_description);
            let unit = described.and_then(Metadata::get_unit);
            let labels = self.series_labels(&snapshot.labels, snapshot.kind);
            let candidates: Vec<(String, String, String, MetricKind, Samples<'a>)> =
                match snapshot.kind {
                    MetricKind::Histogram => histogram_samples(&snapshot.dimensions)
                        .map(|samples| {
                            let help = description.unwrap_or(name).to_owned();
                            (
                                base.clone(),
                                name.clone(),
                                help,
                                MetricKind::Histogram,
                                samples,
                            )
                        })
                        .into_iter()
                        .collect(),
                    MetricKind::Summary => summary_samples(&snapshot.dimensions)
                        .map(|samples| {
                            let help = description.unwrap_or(name).to_owned();
                            (
                                base.clone(),
                                name.clone(),
                                help,
                                MetricKind::Summary,
                                samples,
                            )
                        })
                        .into_iter()
                        .collect(),
                    kind => {
                        // Info snapshots are gauges: their dimensions are numbers.
                        let kind = if kind == MetricKind::Info {
                            MetricKind::Gauge
                        } else {
                            kind
                        };
                        let single = snapshot.dimensions.len() == 1
                            && snapshot.dimensions.contains_key("value");
                        snapshot
                            .dimensions
                            .iter()
                            .map(|(dimension, value)| {
                                let samples = Samples::Single(*value);
                                if single {
                                    let help = description.unwrap_or(name).to_owned();
                                    return (base.clone(), name.clone(), help, kind, samples);
                                }
                                let help = match description {
                                    Some(description) => format!("{description} ({dimension})"),
                                    None => format!("{name} {dimension}"),
                                };
                                let exposed = format!("{base}_{}", sanitize(dimension));
                                (exposed, format!("{name} {dimension}"), help, kind, samples)
                            })
                            .collect()
                    }
                };
            for (exposed, origin, help, kind, samples) in candidates {
                let family = family_name(&exposed, kind).to_owned();
                let series = Series {
                    labels: labels.clone(),
                    samples,
                    created: snapshot.created,
                };
                let kinds = grouped.entry((family.clone(), origin.clone())).or_default();
                match kinds.iter_mut().find(|met| met.kind == kind) {
                    // Another series of the same metric: one more sample set in its family.
                    Some(met) => met.series.push(series),
                    None => kinds.push(Family {
                        origin,
                        help,
                        // OpenMetrics: a family's name ends with `_<unit>`.
                        unit: unit.filter(|unit| {
                            !unit.is_empty()
                                && family
                                    .strip_suffix(unit)
                                    .is_some_and(|stem| stem.ends_with('_'))
                        }),
                        kind,
                        series: vec![series],
                    }),
                }
            }
        }

        let mut families = Families {
            exposed: Vec::new(),
            left_out: Vec::new(),
            taken: HashMap::new(),
        };
        for ((name, _), kinds) in grouped {
            for family in kinds {
                let names: Vec<String> = taken_names(&name, family.kind).collect();
                let collision = names
                    .iter()
                    .find_map(|taken| Some((taken, families.taken.get(taken)?)));
                if let Some((taken, (taken_by, taken_by_kind))) = collision {
                    families.left_out.push(Left {
                        family: name.clone(),
                        origin: family.origin,
                        kind: family.kind,
                        name: taken.clone(),
                        taken_by: taken_by.clone(),
                        taken_by_kind: *taken_by_kind,
                    });
                    continue;
                }
                for taken in names {
                    families.taken.insert(taken, (name.clone(), family.kind));
                }
                families.exposed.push((name.clone(), family));
            }
        }
        families
    }

    /// The labels of a series of a metric of `kind`, ready to write: names fitted to the
    /// label grammar, values escaped; a name already added to the encoder, or seen before in
    /// the series, is left out.
    fn series_labels(&self, labels: &BTreeMap<String, String>, kind: MetricKind) -> String {
        let mut rendered = String::new();
        let mut written: Vec<String> = Vec::new();
        for (label, value) in labels {
            let exposed = exposed_label_name(label, kind);
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

/// The samples of a histogram snapshot, or `None` if it has neither buckets nor a count.
fn histogram_samples(dimensions: &BTreeMap<String, Value>) -> Option<Samples<'_>> {
    let mut buckets: Vec<(f64, &Value)> = dimensions
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
    Some(Samples::Histogram {
        buckets,
        sum: dimensions.get("sum").copied().unwrap_or(Value::U64(0)),
        count,
    })
}

/// The samples of a summary snapshot (`quantile:<q>` dimensions, `sum`, `count`), or `None`
/// if it has no count. Quantiles that do not parse as a number from 0 to 1 are left out.
fn summary_samples(dimensions: &BTreeMap<String, Value>) -> Option<Samples<'_>> {
    let count = dimensions.get("count").copied()?;
    let mut quantiles: Vec<(f64, Value)> = dimensions
        .iter()
        .filter_map(|(dimension, value)| {
            let quantile = dimension.strip_prefix("quantile:")?.parse::<f64>().ok()?;
            (0.0..=1.0)
                .contains(&quantile)
                .then_some((quantile, *value))
        })
        .collect();
    quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(Samples::Summary {
        quantiles,
        sum: dimensions.get("sum").copied().unwrap_or(Value::U64(0)),
        count,
    })
}
