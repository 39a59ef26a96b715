//! Content negotiation: the exposition [`Format`] to answer an HTTP `Accept` header with.

use crate::expose::Format;

impl Format {
    /// The format to answer a request with the given `Accept` header. Feature `http`: it
    /// is HTTP's, and lives in `expose::http`.
    ///
    /// OpenMetrics is chosen when the header accepts `application/openmetrics-text` (with
    /// no `version`, or `version=1.0.0`) with a quality (`q`) above zero and at least as
    /// high as that of the Prometheus text format (`text/plain`, with no version or
    /// `version=0.0.4`, `text/*` or `*/*`). Everything else — no header, a malformed one,
    /// only types mvx cannot produce — gets the Prometheus text format, which every scraper
    /// understands: there is no `406 Not Acceptable`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::expose::Format;
    ///
    /// // What Prometheus sends.
    /// let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,\
    ///                   application/openmetrics-text;version=0.0.1;q=0.4,\
    ///                   text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::negotiate(None), Format::Prometheus);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let mut openmetrics = 0.0_f64;
        let mut prometheus = 0.0_f64;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut quality = 1.0_f64;
            let mut version = None;
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.parse().unwrap_or(0.0),
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            if !(0.0..=1.0).contains(&quality) {
                quality = 0.0;
            }
            let version = version.as_deref();
            match media_type.as_str() {
                "application/openmetrics-text" if matches!(version, None | Some("1.0.0")) => {
                    openmetrics = openmetrics.max(quality);
                }
                "text/plain" if matches!(version, None | Some("0.0.4")) => {
                    prometheus = prometheus.max(quality);
                }
                "text/*" | "*/*" => prometheus = prometheus.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= prometheus {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_accept_header() {
        let cases = [
            (None, Format::Prometheus),
            (Some(""), Format::Prometheus),
            (Some("garbage;;;,,"), Format::Prometheus),
            (Some("application/json"), Format::Prometheus),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;version=0.0.1"),
                Format::Prometheus,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Prometheus),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                Format::Prometheus,
            ),
            (
                Some(
                    "text/plain;version=0.0.4;q=0.3,application/openmetrics-text;version=1.0.0;q=0.5",
                ),
                Format::OpenMetrics,
            ),
            (Some("*/*"), Format::Prometheus),
            (
                Some("*/*, application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            (
                Some("APPLICATION/OpenMetrics-Text; Q=0.8, text/plain; q=0.8"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=2"), Format::Prometheus),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::negotiate(accept), expected, "{accept:?}");
        }
    }
}
