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
//! [`Selector::from_query`] reads the query string of `GET /api/metrics?…`: the parameters
//! `selector` (a regular expression), `name` (repeated, one per name: the explicit list),
//! `prefix`, `infix`, `limit` (decimal digits), `hidden`, `historic` and `metadata`
//! (`true` or `false`). It is decoded as `application/x-www-form-urlencoded` by the
//! `form_urlencoded` crate: percent escapes are decoded and `+` is a space, so a regular
//! expression's `+` must be sent as `%2B`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;

use crate::ErrorReason;
use crate::metrics::Metadata;

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
/// use mvx::agent::Selector;
/// use mvx::metrics::Metadata;
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
/// // The same selector from a URL's query string.
/// let parsed = Selector::from_query("prefix=host.&historic=true&limit=1&metadata=false")?;
/// assert_eq!(parsed, selector);
/// # Ok::<(), mvx::agent::SelectorError>(())
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

    /// The selector described by the query string of a `GET /api/metrics` request (without
    /// the leading `?`); an empty query selects everything, with metadata.
    ///
    /// | parameter | value | default |
    /// |---|---|---|
    /// | `selector` | a regular expression, matched anywhere in the name | every name |
    /// | `name` | one name of the explicit list; repeat it for more | every name |
    /// | `prefix` | the start of the names | none |
    /// | `infix` | a part of the names | none |
    /// | `limit` | the most names to return: decimal digits | no limit |
    /// | `hidden` | `true` or `false` | both |
    /// | `historic` | `true` or `false` | both |
    /// | `metadata` | `true` or `false` | `true` |
    ///
    /// Every parameter but `name` may be given once. Values are percent-decoded, with `+`
    /// as a space (so a regular expression's `+` is sent as `%2B`); invalid UTF-8 becomes
    /// U+FFFD.
    ///
    /// # Errors
    ///
    /// - [`SelectorError::InvalidRegex`] for a `selector` that is not a valid expression;
    /// - [`SelectorError::InvalidLimit`] for a `limit` that is not a non-negative decimal
    ///   number that fits a `usize`;
    /// - [`SelectorError::InvalidBool`] for a flag other than `true` or `false`;
    /// - [`SelectorError::EmptyName`] for an empty `name`;
    /// - [`SelectorError::RegexAndNames`] for `selector` together with `name`;
    /// - [`SelectorError::RepeatedParameter`] for a parameter other than `name` given twice;
    /// - [`SelectorError::UnknownParameter`] for any other parameter.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::agent::{Selector, SelectorError};
    ///
    /// let selector = Selector::from_query("selector=%5Ehttp%5C.&hidden=false&limit=10")?;
    /// assert_eq!(selector, Selector::regex(r"^http\.")?.hidden(false).limit(10));
    ///
    /// let selector = Selector::from_query("name=http.requests&name=queue.depth")?;
    /// assert_eq!(selector, Selector::names(["http.requests", "queue.depth"]));
    ///
    /// let error = Selector::from_query("limit=ten").unwrap_err();
    /// assert_eq!(error, SelectorError::InvalidLimit { value: "ten".into() });
    /// # Ok::<(), SelectorError>(())
    /// ```
    pub fn from_query(query: &str) -> Result<Self, SelectorError> {
        let mut selector = Self::all();
        let mut pattern: Option<String> = None;
        let mut names: Option<BTreeSet<String>> = None;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key != "name" && !seen.insert(key.clone().into_owned()) {
                return Err(SelectorError::RepeatedParameter {
                    parameter: key.into_owned(),
                });
            }
            match &*key {
                "selector" => pattern = Some(value.into_owned()),
                "name" => {
                    if value.is_empty() {
                        return Err(SelectorError::EmptyName);
                    }
                    names.get_or_insert_default().insert(value.into_owned());
                }
                "prefix" => selector.prefix = Some(value.into_owned()),
                "infix" => selector.infix = Some(value.into_owned()),
                "limit" => selector.limit = Some(parse_limit(&value)?),
                "hidden" => selector.hidden = Some(parse_bool("hidden", &value)?),
                "historic" => selector.historic = Some(parse_bool("historic", &value)?),
                "metadata" => selector.metadata = parse_bool("metadata", &value)?,
                _ => {
                    return Err(SelectorError::UnknownParameter {
                        parameter: key.into_owned(),
                    });
                }
            }
        }
        selector.names = match (pattern, names) {
            (Some(_), Some(_)) => return Err(SelectorError::RegexAndNames),
            (Some(pattern), None) => Self::regex(&pattern)?.names,
            (None, Some(names)) => Names::List(names),
            (None, None) => Names::Any,
        };
        Ok(selector)
    }
}

/// A `limit`: decimal digits only (no sign, no spaces), fitting a `usize`.
fn parse_limit(value: &str) -> Result<usize, SelectorError> {
    let invalid = || SelectorError::InvalidLimit {
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    value.parse().map_err(|_| invalid())
}

/// A flag: `true` or `false`, nothing else.
fn parse_bool(parameter: &'static str, value: &str) -> Result<bool, SelectorError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SelectorError::InvalidBool {
            parameter,
            value: value.to_owned(),
        }),
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
    /// The stable reason code: [`ErrorReason::InvalidRegex`] for an invalid regular
    /// expression, [`ErrorReason::InvalidArgument`] for every other refusal.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::InvalidRegex { .. } => ErrorReason::InvalidRegex,
            Self::InvalidLimit { .. }
            | Self::InvalidBool { .. }
            | Self::EmptyName
            | Self::RegexAndNames
            | Self::RepeatedParameter { .. }
            | Self::UnknownParameter { .. } => ErrorReason::InvalidArgument,
        }
    }
}

impl fmt::Display for Selector {
    /// The selector as a query string that [`Selector::from_query`] reads back, except for
    /// an empty list of names, which a query cannot express (it prints no `name` and reads
    /// back as every name).
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
    fn queries_that_describe_a_selector() {
        let max_limit = format!("limit={}", usize::MAX);
        let cases: Vec<(&str, Selector)> = vec![
            ("", Selector::all()),
            ("&&", Selector::all()),
            ("selector=cpu", Selector::regex("cpu").unwrap()),
            ("selector=", Selector::regex("").unwrap()),
            // Percent escapes are decoded, `+` is a space, `%2B` a plus.
            (
                "selector=%5Ehost%5C.cpu%2B%24",
                Selector::regex(r"^host\.cpu+$").unwrap(),
            ),
            ("selector=a+b", Selector::regex("a b").unwrap()),
            ("name=a.b", Selector::names(["a.b"])),
            ("name=b&name=a&name=b", Selector::names(["a", "b"])),
            ("name=%C3%BCml%20aut", Selector::names(["üml aut"])),
            ("prefix=host.", Selector::all().prefix("host.")),
            ("prefix=", Selector::all().prefix("")),
            ("infix=.cpu.", Selector::all().infix(".cpu.")),
            ("limit=0", Selector::all().limit(0)),
            ("limit=0042", Selector::all().limit(42)),
            (&max_limit, Selector::all().limit(usize::MAX)),
            ("hidden=true", Selector::all().hidden(true)),
            ("hidden=false", Selector::all().hidden(false)),
            ("historic=true", Selector::all().historic(true)),
            ("historic=false", Selector::all().historic(false)),
            ("metadata=false", Selector::all().metadata(false)),
            ("metadata=true", Selector::all()),
            (
                "selector=x&prefix=p&infix=i&limit=3&hidden=false&historic=true&metadata=false",
                Selector::regex("x")
                    .unwrap()
                    .prefix("p")
                    .infix("i")
                    .limit(3)
                    .hidden(false)
                    .historic(true)
                    .metadata(false),
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(Selector::from_query(query), Ok(expected), "{query:?}");
        }
    }

    #[test]
    fn queries_that_do_not_describe_a_selector() {
        let cases: Vec<(&str, SelectorError)> = vec![
            (
                "limit=ten",
                SelectorError::InvalidLimit {
                    value: "ten".into(),
                },
            ),
            ("limit=", SelectorError::InvalidLimit { value: "".into() }),
            ("limit", SelectorError::InvalidLimit { value: "".into() }),
            (
                "limit=-1",
                SelectorError::InvalidLimit { value: "-1".into() },
            ),
            (
                "limit=%2B1",
                SelectorError::InvalidLimit { value: "+1".into() },
            ),
            (
                "limit=+1",
                SelectorError::InvalidLimit { value: " 1".into() },
            ),
            (
                "limit=1.5",
                SelectorError::InvalidLimit {
                    value: "1.5".into(),
                },
            ),
            (
                "limit=99999999999999999999999",
                SelectorError::InvalidLimit {
                    value: "99999999999999999999999".into(),
                },
            ),
            (
                "hidden=yes",
                SelectorError::InvalidBool {
                    parameter: "hidden",
                    value: "yes".into(),
                },
            ),
            (
                "historic=True",
                SelectorError::InvalidBool {
                    parameter: "historic",
                    value: "True".into(),
                },
            ),
            (
                "metadata=1",
                SelectorError::InvalidBool {
                    parameter: "metadata",
                    value: "1".into(),
                },
            ),
            (
                "hidden",
                SelectorError::InvalidBool {
                    parameter: "hidden",
                    value: "".into(),
                },
            ),
            ("name=", SelectorError::EmptyName),
            ("name=a&selector=b", SelectorError::RegexAndNames),
            (
                "prefix=a&prefix=b",
                SelectorError::RepeatedParameter {
                    parameter: "prefix".into(),
                },
            ),
            (
                "selector=a&selector=a",
                SelectorError::RepeatedParameter {
                    parameter: "selector".into(),
                },
            ),
            (
                "regex=a",
                SelectorError::UnknownParameter {
                    parameter: "regex".into(),
                },
            ),
            (
                "Limit=1",
                SelectorError::UnknownParameter {
                    parameter: "Limit".into(),
                },
            ),
        ];
        for (query, expected) in cases {
            let error = Selector::from_query(query).unwrap_err();
            assert_eq!(error.reason(), ErrorReason::InvalidArgument, "{query:?}");
            assert_eq!(error, expected, "{query:?}");
        }
    }

    #[test]
    fn an_invalid_regex_is_a_typed_error_not_a_panic() {
        for (query, pattern) in [
            ("selector=(", "("),
            ("selector=%5B", "["),
            ("selector=a%7B2%2C1%7D", "a{2,1}"),
            ("selector=%5Cp%7BNope%7D", r"\p{Nope}"),
            // Compiles to more than the regex crate's size limit.
            (
                "selector=%28%3F%3A%5Cw%7B1000%7D%29%7B1000%7D",
                r"(?:\w{1000}){1000}",
            ),
        ] {
            let error = Selector::from_query(query).unwrap_err();
            assert_eq!(error.reason(), ErrorReason::InvalidRegex, "{query:?}");
            let SelectorError::InvalidRegex {
                pattern: refused, ..
            } = &error
            else {
                panic!("{query:?}: {error:?}");
            };
            assert_eq!(refused, pattern);
            assert!(
                std::error::Error::source(&error).is_some(),
                "the regex crate's reason is the source"
            );
            assert_eq!(Selector::regex(pattern).unwrap_err(), error);
        }
    }

    #[test]
    fn display_is_a_query_that_reads_back() {
        let selectors = [
            Selector::all(),
            Selector::regex(r"^a+b\.c$ d&e=f").unwrap().limit(0),
            Selector::names(["x y", "ü+&="])
                .prefix("x")
                .infix(" ")
                .hidden(true)
                .historic(false)
                .metadata(false),
        ];
        for selector in selectors {
            let query = selector.to_string();
            assert_eq!(Selector::from_query(&query), Ok(selector), "{query}");
        }
        assert_eq!(Selector::all().to_string(), "");
        assert_eq!(
            Selector::regex("a+b").unwrap().limit(2).to_string(),
            "selector=a%2Bb&limit=2"
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
