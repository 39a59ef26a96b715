//! Names fitted to the Prometheus grammar: metric names, series label names, and the check
//! of label names given to the encoder.

use crate::metrics::{MetricKind, exposed_names};

/// Whether `name` is a label name the encoder accepts: `[a-zA-Z_][a-zA-Z0-9_]*`, not
/// starting with `__` (reserved), and neither `le` (the histogram bucket label) nor
/// `quantile` (the summary quantile label).
pub(super) fn is_label_name(name: &str) -> bool {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    !name.is_empty() && valid && !name.starts_with("__") && name != "le" && name != "quantile"
}

/// `name` fitted to the Prometheus metric name grammar without `:`: every character outside
/// `[a-zA-Z0-9_]` becomes `_`, and a name that is empty or starts with a digit gets a `_`
/// in front.
///
/// # Examples
///
/// ```
/// use mvx::expose::sanitize_name;
///
/// assert_eq!(sanitize_name("http.requests"), "http_requests");
/// assert_eq!(sanitize_name("5xx-rate"), "_5xx_rate");
/// assert_eq!(sanitize_name("naïve:name"), "na_ve_name");
/// ```
pub fn sanitize_name(name: &str) -> String {
    exposed_names::sanitize(name)
}

/// A series label's name fitted to the label grammar `[a-zA-Z_][a-zA-Z0-9_]*`, as
/// [`sanitize_name`] fits metric names; a reserved name (starting with `__`, `le` in a
/// histogram, `quantile` in a summary) gets the prefix `label_`.
pub(super) fn exposed_label_name(name: &str, kind: MetricKind) -> String {
    let sanitized = sanitize_name(name);
    let reserved = match kind {
        MetricKind::Histogram => sanitized == "le",
        MetricKind::Summary => sanitized == "quantile",
        _ => false,
    };
    if sanitized.starts_with("__") || reserved {
        format!("label_{sanitized}")
    } else {
        sanitized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_to_the_prometheus_grammar() {
        let cases = [
            ("http_requests", "http_requests"),
            ("http.requests", "http_requests"),
            ("a-b c/d", "a_b_c_d"),
            ("ns:sub", "ns_sub"),
            ("9lives", "_9lives"),
            ("", "_"),
            ("ünï", "_n_"),
            ("CamelCase42", "CamelCase42"),
        ];
        for (name, expected) in cases {
            assert_eq!(sanitize_name(name), expected, "{name:?}");
        }
    }
}
