//! Metadata: what a metric is, beside what it measures — unit, description, sampling rate,
//! flags for listings, and free-form fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::MetricsReason;

/// The keys of [`Metadata`]'s own fields, which free-form fields cannot use.
pub const RESERVED_KEYS: [&str; 5] = ["unit", "description", "rate", "hidden", "historic"];

/// What a metric is: its unit, a description, its sampling rate, whether listings hide it,
/// whether it is kept in a history, and free-form string fields.
///
/// Set on a [`Registry`](super::Registry) name with
/// [`describe`](super::Registry::describe) or when the instrument is created
/// ([`counter_with`](super::Registry::counter_with) and its siblings); a recorder's metric
/// gives its own from [`Metric::metadata`](super::Metric::metadata). Exposition uses the
/// description as the Prometheus `HELP` text, and
/// [`Registry::get_metrics`](super::Registry::get_metrics) lists it.
///
/// **JSON.** Serializes as one flat object with the keys `unit`, `description`, `rate`,
/// `hidden`, `historic` and one key per free-form field. A key is present only when set:
/// `unit`, `description` and `rate` when given, `hidden` and `historic` when `true` (an
/// absent flag reads as `false`). The default metadata is `{}`. Deserialization accepts
/// the same shape: unknown keys become free-form fields and must have string values.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Metadata;
///
/// let metadata = Metadata::new()
///     .unit("s")
///     .description("time to answer a request")
///     .rate(0.5)?
///     .historic(true)
///     .field("owner", "billing")?;
/// assert_eq!(metadata.get_unit(), Some("s"));
/// assert_eq!(
///     serde_json::to_string(&metadata).unwrap(),
///     r#"{"unit":"s","description":"time to answer a request","rate":0.5,"historic":true,"owner":"billing"}"#
/// );
/// assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");
///
/// // Free-form fields cannot take the keys of the typed ones.
/// assert!(Metadata::new().field("unit", "ms").is_err());
/// # Ok::<(), mvx::metrics::MetadataError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct Metadata {
    unit: Option<String>,
    description: Option<String>,
    rate: Option<f64>,
    hidden: bool,
    historic: bool,
    fields: BTreeMap<String, String>,
}

impl Metadata {
    /// No unit, no description, no rate, neither hidden nor historic, no fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the unit, such as `"s"`, `"bytes"` or `"requests"`.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Sets the description: one line saying what the metric measures. Exposition uses it
    /// as the `HELP` text.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the rate, in Hz: how often the metric is sampled or updated.
    ///
    /// # Errors
    ///
    /// [`MetadataError::InvalidRate`] if `rate` is not a finite number above zero.
    pub fn rate(mut self, rate: f64) -> Result<Self, MetadataError> {
        validate_rate(rate)?;
        self.rate = Some(rate);
        Ok(self)
    }

    /// Sets whether listings hide the metric (see the `hidden` filter of
    /// [`Selector`](crate::metrics::Selector)). A hidden metric is still exposed to
    /// Prometheus. Default `false`.
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// Sets whether the metric's values are kept in a history (a database that archives
    /// them); listings can filter on it. Default `false`.
    pub fn historic(mut self, historic: bool) -> Self {
        self.historic = historic;
        self
    }

    /// Adds (or replaces) the free-form field `key` with `value`.
    ///
    /// # Errors
    ///
    /// [`MetadataError::ReservedKey`] if `key` is empty or one of [`RESERVED_KEYS`].
    pub fn field(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MetadataError> {
        let key = key.into();
        validate_key(&key)?;
        self.fields.insert(key, value.into());
        Ok(self)
    }

    /// The unit, if set.
    pub fn get_unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    /// The description, if set.
    pub fn get_description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The rate in Hz, if set.
    pub fn get_rate(&self) -> Option<f64> {
        self.rate
    }

    /// Whether listings hide the metric.
    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    /// Whether the metric is kept in a history.
    pub fn is_historic(&self) -> bool {
        self.historic
    }

    /// The free-form field `key`, if set.
    pub fn get_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// Every free-form field, by key.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }
}

/// A [`Metadata`] value was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A rate must be a finite number of Hz above zero.
    #[error("invalid rate {rate}: a rate is a finite number of Hz above zero")]
    InvalidRate {
        /// The rate refused.
        rate: f64,
    },
    /// A free-form field's key is empty or is the key of a typed field.
    #[error(
        "invalid metadata key {key:?}: free-form keys are not empty and not one of unit, description, rate, hidden, historic"
    )]
    ReservedKey {
        /// The key refused.
        key: String,
    },
}

impl MetadataError {
    /// The stable reason code: [`MetricsReason::InvalidArgument`].
    pub fn reason(&self) -> MetricsReason {
        MetricsReason::InvalidArgument
    }
}

fn validate_rate(rate: f64) -> Result<(), MetadataError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(MetadataError::InvalidRate { rate })
    }
}

fn validate_key(key: &str) -> Result<(), MetadataError> {
    if key.is_empty() || RESERVED_KEYS.contains(&key) {
        return Err(MetadataError::ReservedKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// The JSON shape of [`Metadata`]; converting from it validates.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(default, skip_serializing_if = "is_false")]
    hidden: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    historic: bool,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

impl TryFrom<Wire> for Metadata {
    type Error = MetadataError;

    fn try_from(wire: Wire) -> Result<Self, MetadataError> {
        if let Some(rate) = wire.rate {
            validate_rate(rate)?;
        }
        for key in wire.fields.keys() {
            validate_key(key)?;
        }
        Ok(Self {
            unit: wire.unit,
            description: wire.description,
            rate: wire.rate,
            hidden: wire.hidden,
            historic: wire.historic,
            fields: wire.fields,
        })
    }
}

impl From<Metadata> for Wire {
    fn from(metadata: Metadata) -> Self {
        Self {
            unit: metadata.unit,
            description: metadata.description,
            rate: metadata.rate,
            hidden: metadata.hidden,
            historic: metadata.historic,
            fields: metadata.fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_finite_and_positive() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let refused = Metadata::new().rate(rate).unwrap_err();
            assert!(
                matches!(refused, MetadataError::InvalidRate { rate: r } if r.to_bits() == rate.to_bits()),
                "{rate}"
            );
            assert_eq!(refused.reason(), MetricsReason::InvalidArgument);
        }
        for rate in [f64::MIN_POSITIVE, 0.001, 1.0, 1e9] {
            assert_eq!(Metadata::new().rate(rate).unwrap().get_rate(), Some(rate));
        }
    }

    #[test]
    fn free_form_keys_are_not_empty_nor_reserved() {
        for key in ["", "unit", "description", "rate", "hidden", "historic"] {
            assert_eq!(
                Metadata::new().field(key, "x").unwrap_err(),
                MetadataError::ReservedKey {
                    key: key.to_owned()
                }
            );
        }
        let metadata = Metadata::new()
            .field("Unit", "case matters")
            .unwrap()
            .field("scope", "a")
            .unwrap()
            .field("scope", "b")
            .unwrap();
        assert_eq!(metadata.get_field("Unit"), Some("case matters"));
        assert_eq!(metadata.get_field("scope"), Some("b"));
        assert_eq!(metadata.fields().len(), 2);
    }

    #[test]
    fn json_round_trips_and_deserialization_validates() {
        let metadata = Metadata::new()
            .unit("bytes")
            .description("a \"quoted\"\ndescription")
            .rate(10.0)
            .unwrap()
            .hidden(true)
            .historic(true)
            .field("source", "disk")
            .unwrap();
        let json = serde_json::to_value(&metadata).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "unit": "bytes",
                "description": "a \"quoted\"\ndescription",
                "rate": 10.0,
                "hidden": true,
                "historic": true,
                "source": "disk",
            })
        );
        let back: Metadata = serde_json::from_value(json).unwrap();
        assert_eq!(back, metadata);

        let flags_off: Metadata =
            serde_json::from_str(r#"{"hidden":false,"historic":false}"#).unwrap();
        assert_eq!(flags_off, Metadata::new());
        assert_eq!(serde_json::to_string(&flags_off).unwrap(), "{}");

        for bad in [
            r#"{"rate":-1}"#,
            r#"{"rate":0}"#,
            r#"{"extra":1}"#,
            r#"{"hidden":"yes"}"#,
            r#"{"":"empty key"}"#,
        ] {
            assert!(serde_json::from_str::<Metadata>(bad).is_err(), "{bad}");
        }
    }
}
