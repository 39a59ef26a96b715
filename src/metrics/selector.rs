//! Selecting metrics by name and metadata: what
//! [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) answers and the
//! exposition server serves as JSON at `/api/metrics`.
//!
//! A [`Selector`] picks metric names from a list of candidates, each with its [`Metadata`],
//! and returns the selected names in name order, with their metadata or without it.
//!
//! # The filters, precisely
//!
//! A name is selected when it passes every filter that is set:
//!
//! 1. **Names** — one of:
//!    - a regular expression ([`Selector::regex`], syntax of the [`regex`] crate): the name
//!      is selected if the expression matches *any part* of it (a search, not a full match:
//!      `cpu` selects `host.cpu.load`; anchor with `^` and `$` to match the whole name);
//!    - an explicit list ([`Selector::names`]): the name is in the list. Names in the list
//!      that are not candidates are left out of the answer, without an error;
//!    - neither (the default): every name.
//! 2. **`prefix`**: the name starts with it.
//! 3. **`infix`**: the name contains it.
//! 4. **`hidden`** (when set): the metric's [`Metadata::is_hidden`] equals it. Unset, hidden
//!    and visible metrics alike are selected.
//! 5. **`historic`** (when set): the metric's [`Metadata::is_historic`] equals it.
//! 6. **`limit`** (when set): of the names that passed 1–5, the first `limit` in name order
//!    (byte order of the UTF-8 names) are kept. `0` selects nothing.
//!
//! Matching is on the mvx name (`http.requests`, not the sanitized Prometheus name) and is
//! case-sensitive. With [`metadata(false)`](Selector::metadata) every selected name maps to
//! empty metadata, which serializes as `{}`; the filters still read the real metadata.
//!
//! # In a URL
//!
//! A selector's [`Display`](fmt::Display) form is the query string of
//! `GET /api/metrics?…` that selects the same metrics: the parameters `selector` (a regular
//! expression), `name` (repeated, one per name: the explicit list), `prefix`, `infix`,
//! `limit` (decimal digits), `hidden`, `historic` and `metadata` (`true` or `false`),
//! encoded as `application/x-www-form-urlencoded`. The exposition server (feature `http`)
//! reads it back with `Selector::from_query`, which says how each parameter is read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;

use crate::metrics::{Metadata, MetricsReason};

/// Which metrics to list: a regular expression or explicit names, narrowed by prefix,
/// infix and the `hidden` and `historic` flags, capped by a limit; with or without their
/// metadata.
///
/// The default selects everything, with metadata. See the [module docs](self) for what
/// each filter does and in which order.
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Metadata, Selector};
///
/// let candidates = [
///     ("host.cpu.load", Metadata::new().unit("%").historic(true)),
///     ("host.cpu.temperature", Metadata::new().unit("°C")),
///     ("host.disk.free", Metadata::new().unit("bytes").historic(true)),
///     ("debug.cpu.samples", Metadata::new().hidden(true)),
/// ];
/// let candidates = || candidates.iter().map(|(name, m)| (name.to_string(), m.clone()));
///
/// // "cpu" anywhere in the name, not hidden.
/// let selector = Selector::regex("cpu")?.hidden(false);
/// let selected = selector.select(candidates());
/// assert_eq!(selected.keys().collect::<Vec<_>>(), ["host.cpu.load", "host.cpu.temperature"]);
/// assert_eq!(selected["host.cpu.load"].get_unit(), Some("%"));
///
/// // Historic metrics under "host.", names only, at most one.
/// let selector = Selector::all().prefix("host.").historic(true).limit(1).metadata(false);
/// let selected = selector.select(candidates());
/// assert_eq!(selected.keys().collect::<Vec<_>>(), ["host.cpu.load"]);
/// assert_eq!(selected["host.cpu.load"], Metadata::new());
///
/// // The same selector as the query string of a URL.
/// assert_eq!(selector.to_string(), "prefix=host.&limit=1&historic=true&metadata=false");
/// # Ok::<(), mvx::metrics::SelectorError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Selector {
    names: Names,
    prefix: Option<String>,
    infix: Option<String>,
    limit: Option<usize>,
    hidden: Option<bool>,
    historic: Option<bool>,
    metadata: bool,
}

/// How names are matched.
#[derive(Clone, Debug)]
enum Names {
    Any,
    Regex(Regex),
    List(BTreeSet<String>),
}

impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, Self::Any) => true,
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            (Self::List(a), Self::List(b)) => a == b,
            _ => false,
        }
    }
}

/// Two selectors are equal when they have the same filters (regular expressions compare by
/// their pattern text).
impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
            && self.prefix == other.prefix
            && self.infix == other.infix
            && self.limit == other.limit
            && self.hidden == other.hidden
            && self.historic == other.historic
            && self.metadata == other.metadata
    }
}

impl Default for Selector {
    fn default() -> Self {
        Self::all()
    }
}

impl Selector {
    /// Every metric, with its metadata.
    pub fn all() -> Self {
        Self {
            names: Names::Any,
            prefix: None,
            infix: None,
            limit: None,
            hidden: None,
            historic: None,
            metadata: true,
        }
    }

    /// The metrics whose name `pattern` matches anywhere (a search: anchor with `^` and
    /// `$` for a whole-name match), in the syntax of the [`regex`] crate.
    ///
    /// # Errors
    ///
    /// [`SelectorError::InvalidRegex`] if `pattern` is not a valid expression or compiles
    /// to more than the `regex` crate's default size limit.
    pub fn regex(pattern: &str) -> Result<Self, SelectorError> {
        let regex = Regex::new(pattern).map_err(|source| SelectorError::InvalidRegex {
            pattern: pattern.to_owned(),
            source,
        })?;
        Ok(Self {
            names: Names::Regex(regex),
            ..Self::all()
        })
    }

    /// The metrics named in `names` (those that exist; the others are left out).
    pub fn names(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            names: Names::List(names.into_iter().map(Into::into).collect()),
            ..Self::all()
        }
    }

    /// Keeps only names that start with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Keeps only names that contain `infix`.
    pub fn infix(mut self, infix: impl Into<String>) -> Self {
        self.infix = Some(infix.into());
        self
    }

    /// Keeps at most `limit` names, the first in name order after the other filters;
    /// `None` keeps every one.
    pub fn limit(mut self, limit: impl Into<Option<usize>>) -> Self {
        self.limit = limit.into();
        self
    }

    /// Keeps only metrics whose `hidden` flag is `hidden`; `None` keeps both.
    pub fn hidden(mut self, hidden: impl Into<Option<bool>>) -> Self {
        self.hidden = hidden.into();
        self
    }

    /// Keeps only metrics whose `historic` flag is `historic`; `None` keeps both.
    pub fn historic(mut self, historic: impl Into<Option<bool>>) -> Self {
        self.historic = historic.into();
        self
    }

    /// Whether the answer carries each metric's metadata (default `true`) or empty
    /// metadata.
    pub fn metadata(mut self, metadata: bool) -> Self {
        self.metadata = metadata;
        self
    }

    /// The regular expression, if this selector has one.
    pub fn get_regex(&self) -> Option<&str> {
        match &self.names {
            Names::Regex(regex) => Some(regex.as_str()),
            Names::Any | Names::List(_) => None,
        }
    }

    /// The explicit names, if this selector has a list.
    pub fn get_names(&self) -> Option<&BTreeSet<String>> {
        match &self.names {
            Names::List(names) => Some(names),
            Names::Any | Names::Regex(_) => None,
        }
    }

    /// The limit, if set.
    pub fn get_limit(&self) -> Option<usize> {
        self.limit
    }

    /// Whether `name`, with `metadata`, passes every filter but the limit.
    pub fn matches(&self, name: &str, metadata: &Metadata) -> bool {
        let by_name = match &self.names {
            Names::Any => true,
            Names::Regex(regex) => regex.is_match(name),
            Names::List(names) => names.contains(name),
        };
        by_name
            && self
                .prefix
                .as_deref()
                .is_none_or(|prefix| name.starts_with(prefix))
            && self
                .infix
                .as_deref()
                .is_none_or(|infix| name.contains(infix))
            && self
                .hidden
                .is_none_or(|hidden| metadata.is_hidden() == hidden)
            && self
                .historic
                .is_none_or(|historic| metadata.is_historic() == historic)
    }

    /// The selected candidates, by name in name order: those that pass every filter, the
    /// first `limit` of them, with their metadata (or empty metadata without
    /// [`metadata`](Self::metadata)). A name given twice keeps its last metadata.
    pub fn select(
        &self,
        candidates: impl IntoIterator<Item = (String, Metadata)>,
    ) -> BTreeMap<String, Metadata> {
        let mut selected: BTreeMap<String, Metadata> = candidates
            .into_iter()
            .filter(|(name, metadata)| self.matches(name, metadata))
            .collect();
        if let Some(limit) = self.limit {
            if limit < selected.len() {
                // The names in order after the first `limit` go.
                let first_dropped = selected.keys().nth(limit).cloned();
                if let Some(first_dropped) = first_dropped {
                    selected.split_off(&first_dropped);
                }
            }
        }
        if !self.metadata {
            selected
                .values_mut()
                .for_each(|metadata| *metadata = Metadata::default());
        }
        selected
    }
}

/// A selector could not be built: an invalid regular expression, or a query string that
/// does not describe a selector.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?}")]
    InvalidRegex {
        /// The expression refused.
        pattern: String,
        /// Why the `regex` crate refused it.
        #[source]
        source: regex::Error,
    },
    /// `limit` is not a non-negative decimal number that fits a `usize`.
    #[error("invalid limit {value:?}: want a non-negative decimal number")]
    InvalidLimit {
        /// The value refused.
        value: String,
    },
    /// A flag is neither `true` nor `false`.
    #[error("invalid value {value:?} for {parameter}: want true or false")]
    InvalidBool {
        /// The parameter.
        parameter: &'static str,
        /// The value refused.
        value: String,
    },
    /// A `name` parameter is empty: no metric has an empty name.
    #[error("empty name: a name parameter needs a metric name")]
    EmptyName,
    /// Both a regular expression (`selector`) and explicit names (`name`) were given.
    #[error("selector and name cannot be combined: give a regular expression or names")]
    RegexAndNames,
    /// A parameter that may be given once was given more than once.
    #[error("parameter {parameter:?} is given more than once")]
    RepeatedParameter {
        /// The parameter.
        parameter: String,
    },
    /// A parameter that is not one of the selector's.
    #[error(
        "unknown parameter {parameter:?}: want selector, name, prefix, infix, limit, hidden, historic or metadata"
    )]
    UnknownParameter {
        /// The parameter.
        parameter: String,
    },
}

impl SelectorError {
    /// The stable reason code: [`MetricsReason::InvalidRegex`] for an invalid regular
    /// expression, [`MetricsReason::InvalidArgument`] for every other refusal.
    pub fn reason(&self) -> MetricsReason {
        match self {
            Self::InvalidRegex { .. } => MetricsReason::InvalidRegex,
            Self::InvalidLimit { .. }
            | Self::InvalidBool { .. }
            | Self::EmptyName
            | Self::RegexAndNames
            | Self::RepeatedParameter { .. }
            | Self::UnknownParameter { .. } => MetricsReason::InvalidArgument,
        }
    }
}

impl fmt::Display for Selector {
    /// The selector as the query string of `GET /api/metrics` (see the
    /// [module docs](self)), which the server's `Selector::from_query` reads back, except
    /// for an empty list of names, which a query cannot express (it prints no `name` and
    /// reads back as every name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut query = form_urlencoded::Serializer::new(String::new());
        match &self.names {
            Names::Any => {}
            Names::Regex(regex) => {
                query.append_pair("selector", regex.as_str());
            }
            Names::List(names) => {
                for name in names {
                    query.append_pair("name", name);
                }
            }
        }
        if let Some(prefix) = &self.prefix {
            query.append_pair("prefix", prefix);
        }
        if let Some(infix) = &self.infix {
            query.append_pair("infix", infix);
        }
        if let Some(limit) = self.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(hidden) = self.hidden {
            query.append_pair("hidden", if hidden { "true" } else { "false" });
        }
        if let Some(historic) = self.historic {
            query.append_pair("historic", if historic { "true" } else { "false" });
        }
        if !self.metadata {
            query.append_pair("metadata", "false");
        }
        f.write_str(&query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_query_string() {
        assert_eq!(Selector::all().to_string(), "");
        assert_eq!(
            Selector::regex("a+b").unwrap().limit(2).to_string(),
            "selector=a%2Bb&limit=2"
        );
        assert_eq!(
            Selector::names(["x y", "ü+&="])
                .prefix("x")
                .infix(" ")
                .hidden(true)
                .historic(false)
                .metadata(false)
                .to_string(),
            "name=x+y&name=%C3%BC%2B%26%3D&prefix=x&infix=+&hidden=true&historic=false&metadata=false"
        );
    }

    #[test]
    fn regexes_search_rather_than_match_the_whole_name() {
        let selector = Selector::regex("cpu").unwrap();
        let none = Metadata::new();
        for (name, selected) in [
            ("cpu", true),
            ("host.cpu.load", true),
            ("cpus", true),
            ("CPU", false),
            ("c.p.u", false),
        ] {
            assert_eq!(selector.matches(name, &none), selected, "{name}");
        }
        let anchored = Selector::regex("^cpu$").unwrap();
        assert!(anchored.matches("cpu", &none));
        assert!(!anchored.matches("host.cpu", &none));
    }
}
