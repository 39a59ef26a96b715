//! Metadata: what a metric is, beside what it measures — unit, description, sampling rate,
//! flags for listings, and free-form fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MetricsReason;

/// The keys of [`Metadata`]'s own fields, which free-form fields cannot use.
pub const RESERVED_KEYS: [&str; 5] = ["unit", "description", "rate", "hidden", "historic"];

/// What a metric is: its unit, a description, its sampling rate, whether listings hide it,
/// whether it is kept in a history, and free-form fields of any JSON value, as metricq's
/// metadata documents are.
///
/// Set on a [`Registry`](super::Registry) name with
/// [`describe`](super::Registry::describe) or when the instrument is created
/// ([`counter_with`](super::Registry::counter_with) and its siblings); a recorder's metric
/// gives its own from [`Metric::metadata`](super::Metric::metadata). Exposition uses the
/// description as the Prometheus `HELP` text, and
/// [`Registry::get_metrics`](super::Registry::get_metrics) lists it.
///
/// **JSON.** Serializes as one flat object with the keys `unit`, `description`, `rate`,
/// `hidden`, `historic` and one key per free-form field. A key is present only when set,
/// `hidden` and `historic` included: a flag set to `false` is stored as `false`, and an
/// unset flag is absent (it reads as `false` through [`is_hidden`](Self::is_hidden), and
/// as `None` through [`get_hidden`](Self::get_hidden), which is what a
/// [`Selector`](crate::metrics::Selector) filters on, as metricq's manager does). The
/// default metadata is `{}`. Deserialization accepts the same shape: unknown keys become
/// free-form fields, with any JSON value (`"bounds": [0, 300]`, numbers, booleans).
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
///     .field("owner", "billing")?
///     .field("bounds", serde_json::json!([0, 300]))?;
/// assert_eq!(metadata.get_unit(), Some("s"));
/// assert_eq!(metadata.get_field("bounds"), Some(&serde_json::json!([0, 300])));
/// assert_eq!(
///     serde_json::to_string(&metadata).unwrap(),
///     r#"{"unit":"s","description":"time to answer a request","rate":0.5,"historic":true,"bounds":[0,300],"owner":"billing"}"#
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
    hidden: Option<bool>,
    historic: Option<bool>,
    fields: BTreeMap<String, Value>,
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
    /// Prometheus. Unset by default (which reads as `false`, but is not selected by a
    /// selector's `hidden=false`).
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = Some(hidden);
        self
    }

    /// Sets whether the metric's values are kept in a history (a database that archives
    /// them); listings can filter on it. Unset by default.
    pub fn historic(mut self, historic: bool) -> Self {
        self.historic = Some(historic);
        self
    }

    /// Adds (or replaces) the free-form field `key` with `value`: any JSON value (a
    /// string, a number, a boolean, `json!([0, 300])`).
    ///
    /// # Errors
    ///
    /// [`MetadataError::ReservedKey`] if `key` is empty or one of [`RESERVED_KEYS`].
    pub fn field(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
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

    /// Whether listings hide the metric (`false` when unset).
    pub fn is_hidden(&self) -> bool {
        self.hidden.unwrap_or(false)
    }

    /// Whether the metric is kept in a history (`false` when unset).
    pub fn is_historic(&self) -> bool {
        self.historic.unwrap_or(false)
    }

    /// The `hidden` flag as stored: `None` when it was never set.
    pub fn get_hidden(&self) -> Option<bool> {
        self.hidden
    }

    /// The `historic` flag as stored: `None` when it was never set.
    pub fn get_historic(&self) -> Option<bool> {
        self.historic
    }

    /// The free-form field `key`, if set.
    pub fn get_field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// Every free-form field, by key.
    pub fn fields(&self) -> &BTreeMap<String, Value> {
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hidden: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    historic: Option<bool>,
    #[serde(flatten)]
    fields: BTreeMap<String, Value>,
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
        assert_eq!(
            metadata.get_field("Unit"),
            Some(&Value::from("case matters"))
        );
        assert_eq!(metadata.get_field("scope"), Some(&Value::from("b")));
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

        // A flag set to false is stored, and round-trips; an unset one is absent.
        let flags_off: Metadata =
            serde_json::from_str(r#"{"hidden":false,"historic":false}"#).unwrap();
        assert_eq!(flags_off, Metadata::new().hidden(false).historic(false));
        assert_eq!(
            (flags_off.get_hidden(), flags_off.is_hidden()),
            (Some(false), false)
        );
        assert_eq!(
            (Metadata::new().get_hidden(), Metadata::new().is_hidden()),
            (None, false)
        );
        assert_eq!(
            serde_json::to_string(&flags_off).unwrap(),
            r#"{"hidden":false,"historic":false}"#
        );
        assert_eq!(serde_json::to_string(&Metadata::new()).unwrap(), "{}");

        // Free-form values are any JSON, as metricq's metadata is.
        let any: Metadata = serde_json::from_str(
            r#"{"bounds":[0,300],"scale":2.5,"enabled":true,"none":null,"nested":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(any.get_field("bounds"), Some(&serde_json::json!([0, 300])));
        assert_eq!(any.get_field("enabled"), Some(&Value::Bool(true)));
        assert_eq!(any.get_field("none"), Some(&Value::Null));
        assert_eq!(
            serde_json::from_value::<Metadata>(serde_json::to_value(&any).unwrap()).unwrap(),
            any
        );

        for bad in [
            r#"{"rate":-1}"#,
            r#"{"rate":0}"#,
            r#"{"rate":"fast"}"#,
            r#"{"hidden":"yes"}"#,
            r#"{"":"empty key"}"#,
        ] {
            assert!(serde_json::from_str::<Metadata>(bad).is_err(), "{bad}");
        }
    }
}
