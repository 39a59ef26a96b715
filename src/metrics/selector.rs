//! Selecting metrics by name and metadata: what
//! [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) answers and the
//! exposition server serves as JSON at `/api/metrics`, with the meaning metricq's manager
//! gives its `get_metrics` arguments.
//!
//! (For maintainers: one concept, the selector and its refusals; some 620 lines, a third of
//! them docs.)
//!
//! A [`Selector`] picks metric names from a list of candidates, each with its [`Metadata`],
//! and returns the selected names with their metadata or without it.
//!
//! # The filters, precisely
//!
//! A name is selected when it passes every filter that is set:
//!
//! 1. **Names** — one of:
//!    - a regular expression ([`Selector::regex`], syntax of the [`regex`] crate): the name
//!      is selected if the expression matches *any part* of it (a search, not a full match:
//!      `cpu` selects `host.cpu.load`; anchor with `^` and `$` to match the whole name), as
//!      the manager's `$regex` does;
//!    - an explicit list ([`Selector::names`]): the name is in the list. Names in the list
//!      that are not candidates are left out of the answer, without an error;
//!    - neither (the default): every name.
//! 2. **`prefix`**: the name starts with it.
//! 3. **`infix`**: a dot-separated component of the name starts with it, as the manager's
//!    component index matches: `infix=cpu` and `infix=cpu.lo` select `host.cpu.load`,
//!    `infix=pu` does not.
//! 4. **`hidden`** (when set): the metric's metadata *stores* `hidden` with that value
//!    ([`Metadata::get_hidden`]). As in the manager's database, `hidden=false` does not
//!    select a metric whose metadata says nothing about `hidden`.
//! 5. **`historic`** (when set): likewise, the metadata stores `historic` with that value.
//! 6. **`limit`** (when set): of the names that passed 1–5, the first `limit` in metricq's
//!    name order ([`name_order`]: letters compared without their case, lower case first
//!    between names that differ only in case) are kept. `0` selects nothing.
//!
//! The manager refuses some combinations, and so does a selector, with a typed error from
//! [`Selector::check`] (which [`select`](Selector::select) and `get_metrics` call):
//! `prefix` with `infix` ([`SelectorError::PrefixAndInfix`]), a regular expression or a
//! list of names with `prefix` or `infix` ([`SelectorError::SelectorAndFix`]), and an empty
//! list of names ([`SelectorError::EmptyNameList`]). mvx answers two combinations the
//! manager has not implemented (`infix` without `historic`, and `hidden=true` without a
//! regular expression or names) by the same rules.
//!
//! Matching is on the mvx name (`http.requests`, not the sanitized Prometheus name) and is
//! case-sensitive. With [`metadata(false)`](Selector::metadata) every selected name maps to
//! empty metadata, which serializes as `{}`; the filters still read the real metadata. The
//! answer is a map by name; `/api/metrics` writes it in metricq's name order.
//!
//! # In a URL
//!
//! A selector's [`Display`](fmt::Display) form is the query string of
//! `GET /api/metrics?…` that selects the same metrics: the parameters `selector` (a regular
//! expression), `name` (repeated, one per name: the explicit list), `prefix`, `infix`,
//! `limit` (decimal digits), `hidden`, `historic` and `metadata` (`true` or `false`),
//! encoded as `application/x-www-form-urlencoded`. The exposition server (feature `http`)
//! reads it back with `Selector::from_query`, which says how each parameter is read.
//!
//! # The budget of a regular expression
//!
//! A selector's regular expression may come from anyone who can reach `/api/metrics`, so it
//! has a budget: at most [`Selector::MAX_REGEX_LEN`] bytes of pattern, compiling to at most
//! [`Selector::REGEX_SIZE_LIMIT`] bytes of automaton (the `regex` crate's
//! [`size_limit`](regex::RegexBuilder::size_limit)), matching with a lazy DFA of at most
//! [`Selector::REGEX_DFA_SIZE_LIMIT`] bytes ([`dfa_size_limit`](regex::RegexBuilder::dfa_size_limit)).
//! The `regex` crate matches in time linear in the name's length, for a cost per byte
//! bounded by the automaton's size; within the budget, refusing or compiling any pattern
//! takes about a millisecond, and matching a name about a microsecond (measured on metric
//! names of 50 bytes; an optimised build). A pattern over the budget is
//! [`SelectorError::RegexTooLong`] or [`SelectorError::RegexTooLarge`]: ASCII classes
//! (`[a-z0-9_]`, `(?-u:\w)`) are far smaller than Unicode ones (`\w`, `\p{L}`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::{Regex, RegexBuilder};

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
///     ("host.cpu.load", Metadata::new().unit("%").historic(true).hidden(false)),
///     ("host.cpu.temperature", Metadata::new().unit("°C").hidden(false)),
///     ("host.disk.free", Metadata::new().unit("bytes").historic(true)),
///     ("debug.cpu.samples", Metadata::new().hidden(true)),
/// ];
/// let candidates = || candidates.iter().map(|(name, m)| (name.to_string(), m.clone()));
///
/// // "cpu" anywhere in the name, stored as not hidden.
/// let selector = Selector::regex("cpu")?.hidden(false);
/// let selected = selector.select(candidates())?;
/// assert_eq!(selected.keys().collect::<Vec<_>>(), ["host.cpu.load", "host.cpu.temperature"]);
/// assert_eq!(selected["host.cpu.load"].get_unit(), Some("%"));
///
/// // Historic metrics under "host.", names only, at most one.
/// let selector = Selector::all().prefix("host.").historic(true).limit(1).metadata(false);
/// let selected = selector.select(candidates())?;
/// assert_eq!(selected.keys().collect::<Vec<_>>(), ["host.cpu.load"]);
/// assert_eq!(selected["host.cpu.load"], Metadata::new());
///
/// // A component starting with "cpu": not "pu", which starts none.
/// assert_eq!(Selector::all().infix("cpu").select(candidates())?.len(), 3);
/// assert!(Selector::all().infix("pu").select(candidates())?.is_empty());
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
    /// The longest regular expression a selector takes, in bytes (see
    /// [the budget](self#the-budget-of-a-regular-expression)).
    pub const MAX_REGEX_LEN: usize = 4 * 1024;

    /// The most a selector's regular expression may compile to, in bytes: the `regex`
    /// crate's [`size_limit`](regex::RegexBuilder::size_limit), whose default is 10 MiB (see
    /// [the budget](self#the-budget-of-a-regular-expression)).
    pub const REGEX_SIZE_LIMIT: usize = 128 * 1024;

    /// The most memory, in bytes, the lazy DFA of a selector's regular expression may use
    /// while matching: the `regex` crate's
    /// [`dfa_size_limit`](regex::RegexBuilder::dfa_size_limit), whose default is 2 MiB.
    pub const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;

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
    /// - [`SelectorError::RegexTooLong`] if `pattern` is longer than
    ///   [`MAX_REGEX_LEN`](Self::MAX_REGEX_LEN) bytes;
    /// - [`SelectorError::InvalidRegex`] if it is not a valid expression;
    /// - [`SelectorError::RegexTooLarge`] if it compiles to more than
    ///   [`REGEX_SIZE_LIMIT`](Self::REGEX_SIZE_LIMIT) bytes.
    pub fn regex(pattern: &str) -> Result<Self, SelectorError> {
        if pattern.len() > Self::MAX_REGEX_LEN {
            return Err(SelectorError::RegexTooLong {
                length: pattern.len(),
                limit: Self::MAX_REGEX_LEN,
            });
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(Self::REGEX_SIZE_LIMIT)
            .dfa_size_limit(Self::REGEX_DFA_SIZE_LIMIT)
            .build()
            .map_err(|source| match source {
                regex::Error::CompiledTooBig(limit) => SelectorError::RegexTooLarge {
                    pattern: pattern.to_owned(),
                    limit,
                },
                source => SelectorError::InvalidRegex {
                    pattern: pattern.to_owned(),
                    source,
                },
            })?;
        Ok(Self {
            names: Names::Regex(regex),
            ..Self::all()
        })
    }

    /// The metrics named in `names` (those that exist; the others are left out). An empty
    /// list is refused by [`check`](Self::check), as the manager refuses it.
    pub fn names(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            names: Names::List(names.into_iter().map(Into::into).collect()),
            ..Self::all()
        }
    }

    /// Keeps only names that start with `prefix`. Refused with `infix`, a regular expression
    /// or names, by [`check`](Self::check).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Keeps only names with a dot-separated component that starts with `infix` (see
    /// [the filters](self#the-filters-precisely)). Refused with `prefix`, a regular
    /// expression or names, by [`check`](Self::check).
    pub fn infix(mut self, infix: impl Into<String>) -> Self {
        self.infix = Some(infix.into());
        self
    }

    /// Keeps at most `limit` names, the first in metricq's name order ([`name_order`])
    /// after the other filters; `None` keeps every one.
    pub fn limit(mut self, limit: impl Into<Option<usize>>) -> Self {
        self.limit = limit.into();
        self
    }

    /// Keeps only metrics whose metadata stores `hidden` with this value; `None` keeps
    /// every metric (see [the filters](self#the-filters-precisely)).
    pub fn hidden(mut self, hidden: impl Into<Option<bool>>) -> Self {
        self.hidden = hidden.into();
        self
    }

    /// Keeps only metrics whose metadata stores `historic` with this value; `None` keeps
    /// every metric.
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

    /// The prefix, if set.
    pub fn get_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The infix, if set.
    pub fn get_infix(&self) -> Option<&str> {
        self.infix.as_deref()
    }

    /// The limit, if set.
    pub fn get_limit(&self) -> Option<usize> {
        self.limit
    }

    /// Whether this selector is one metricq's manager answers: not `prefix` with `infix`,
    /// not a regular expression or names with either, not an empty list of names.
    ///
    /// # Errors
    ///
    /// [`SelectorError::PrefixAndInfix`], [`SelectorError::SelectorAndFix`] or
    /// [`SelectorError::EmptyNameList`].
    pub fn check(&self) -> Result<(), SelectorError> {
        if self.prefix.is_some() && self.infix.is_some() {
            return Err(SelectorError::PrefixAndInfix);
        }
        if !matches!(self.names, Names::Any) && (self.prefix.is_some() || self.infix.is_some()) {
            return Err(SelectorError::SelectorAndFix);
        }
        if matches!(&self.names, Names::List(names) if names.is_empty()) {
            return Err(SelectorError::EmptyNameList);
        }
        Ok(())
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
                .is_none_or(|infix| has_component_starting_with(name, infix))
            && self
                .hidden
                .is_none_or(|hidden| metadata.get_hidden() == Some(hidden))
            && self
                .historic
                .is_none_or(|historic| metadata.get_historic() == Some(historic))
    }

    /// The selected candidates, by name: those that pass every filter, the first `limit`
    /// of them in [`name_order`], with their metadata (or empty metadata without
    /// [`metadata`](Self::metadata)). A name given twice keeps its last metadata.
    ///
    /// # Errors
    ///
    /// What [`check`](Self::check) refuses.
    pub fn select(
        &self,
        candidates: impl IntoIterator<Item = (String, Metadata)>,
    ) -> Result<BTreeMap<String, Metadata>, SelectorError> {
        self.check()?;
        let mut selected: BTreeMap<String, Metadata> = candidates
            .into_iter()
            .filter(|(name, metadata)| self.matches(name, metadata))
            .collect();
        if let Some(limit) = self.limit {
            if limit < selected.len() {
                let mut names: Vec<&String> = selected.keys().collect();
                names.sort_by(|a, b| name_order(a, b));
                let dropped: Vec<String> =
                    names[limit..].iter().map(|&name| name.clone()).collect();
                for name in dropped {
                    selected.remove(&name);
                }
            }
        }
        if !self.metadata {
            selected
                .values_mut()
                .for_each(|metadata| *metadata = Metadata::default());
        }
        Ok(selected)
    }
}

/// metricq's order of metric names, as its manager lists them from its database's views:
/// letters compared without their case (`a` < `B` < `c`), and between names that differ
/// only in case, lower case first (`cpu` < `Cpu` < `CPU`). Other characters compare by
/// code point.
///
/// # Examples
///
/// ```
/// use mvx::metrics::selector::name_order;
///
/// let mut names = ["b.load", "CPU", "a.load", "cpu", "B.idle"];
/// names.sort_by(|a, b| name_order(a, b));
/// assert_eq!(names, ["a.load", "B.idle", "b.load", "cpu", "CPU"]);
/// ```
pub fn name_order(a: &str, b: &str) -> Ordering {
    let fold = |name: &str| {
        name.chars()
            .flat_map(char::to_lowercase)
            .collect::<Vec<_>>()
    };
    fold(a).cmp(&fold(b)).then_with(|| b.cmp(a))
}

/// Whether a dot-separated component of `name` starts with `infix` (the text from that
/// component on, as the manager's component index keys it).
fn has_component_starting_with(name: &str, infix: &str) -> bool {
    name.starts_with(infix)
        || name
            .match_indices('.')
            .any(|(dot, _)| name[dot + 1..].starts_with(infix))
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
    /// The regular expression is longer than the budget of a selector,
    /// [`Selector::MAX_REGEX_LEN`] bytes (see
    /// [the budget](self#the-budget-of-a-regular-expression)).
    #[error(
        "regular expression of {length} bytes is longer than the selector budget of {limit} bytes: select by name, prefix or infix"
    )]
    RegexTooLong {
        /// The length of the expression refused, in bytes.
        length: usize,
        /// The most a selector takes, in bytes.
        limit: usize,
    },
    /// The regular expression compiles to more than the budget of a selector,
    /// [`Selector::REGEX_SIZE_LIMIT`] bytes (see
    /// [the budget](self#the-budget-of-a-regular-expression)).
    #[error(
        "regular expression {pattern:?} compiles to more than the selector budget of {limit} bytes: narrow its repetitions and Unicode classes (ASCII classes such as [a-z0-9_] or (?-u:\\w) are small), or select by name, prefix or infix"
    )]
    RegexTooLarge {
        /// The expression refused.
        pattern: String,
        /// The most a selector's expression may compile to, in bytes.
        limit: usize,
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
    /// Both `prefix` and `infix` were given: metricq's manager refuses the pair.
    #[error("cannot select by both prefix and infix")]
    PrefixAndInfix,
    /// A regular expression or a list of names was given with `prefix` or `infix`:
    /// metricq's manager refuses the combination.
    #[error("cannot combine a regular expression or names with prefix or infix")]
    SelectorAndFix,
    /// An explicit list of names is empty: metricq's manager refuses it.
    #[error("empty list of names")]
    EmptyNameList,
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
    /// The stable reason code: [`MetricsReason::InvalidRegex`] for a regular expression
    /// that is invalid or over the budget, [`MetricsReason::InvalidArgument`] for every
    /// other refusal.
    pub fn reason(&self) -> MetricsReason {
        match self {
            Self::InvalidRegex { .. } | Self::RegexTooLong { .. } | Self::RegexTooLarge { .. } => {
                MetricsReason::InvalidRegex
            }
            Self::InvalidLimit { .. }
            | Self::InvalidBool { .. }
            | Self::EmptyName
            | Self::RegexAndNames
            | Self::PrefixAndInfix
            | Self::SelectorAndFix
            | Self::EmptyNameList
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
                .hidden(true)
                .historic(false)
                .metadata(false)
                .to_string(),
            "name=x+y&name=%C3%BC%2B%26%3D&hidden=true&historic=false&metadata=false"
        );
        assert_eq!(
            Selector::all().prefix("x").limit(1).to_string(),
            "prefix=x&limit=1"
        );
        assert_eq!(Selector::all().infix(" ").to_string(), "infix=+");
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
