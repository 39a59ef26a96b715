//! The query string of `GET /api/metrics`: the [`Selector`] it describes, read by
//! [`Selector::from_query`] (whose docs are the rules) and written by a selector's
//! `Display` (see [`metrics::selector`](crate::metrics::selector)).

use std::collections::BTreeSet;

use crate::metrics::{Selector, SelectorError};

impl Selector {
    /// The selector described by the query string of a `GET /api/metrics` request (without
    /// the leading `?`); an empty query selects everything, with metadata. Feature `http`:
    /// it is the endpoint's, and lives beside it in `expose::http`.
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
    /// An explicit list is repeated `name=` parameters, not a JSON array: the query string
    /// is then one format, decoded once as `application/x-www-form-urlencoded` (by the
    /// `form_urlencoded` crate), and each name is escaped on its own. Values are
    /// percent-decoded, with `+` as a space (so a regular expression's `+` is sent as
    /// `%2B`); invalid UTF-8 becomes U+FFFD.
    ///
    /// Every parameter but `name` may be given once. A typo never widens a selection
    /// silently: an unknown or repeated parameter, a flag other than `true` or `false`, and
    /// `selector` together with `name` are errors, never ignored.
    ///
    /// # Errors
    ///
    /// - [`SelectorError::InvalidRegex`] for a `selector` that is not a valid expression,
    ///   [`SelectorError::RegexTooLong`] and [`SelectorError::RegexTooLarge`] for one over
    ///   the [budget](crate::metrics::selector#the-budget-of-a-regular-expression);
    /// - [`SelectorError::InvalidLimit`] for a `limit` that is not a non-negative decimal
    ///   number that fits a `usize`;
    /// - [`SelectorError::InvalidBool`] for a flag other than `true` or `false`;
    /// - [`SelectorError::EmptyName`] for an empty `name`;
    /// - [`SelectorError::RegexAndNames`] for `selector` together with `name`;
    /// - what [`Selector::check`] refuses, as metricq's manager does: `prefix` with `infix`,
    ///   `selector` or `name` with either, an empty list of names;
    /// - [`SelectorError::RepeatedParameter`] for a parameter other than `name` given twice;
    /// - [`SelectorError::UnknownParameter`] for any other parameter.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Selector, SelectorError};
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
        let mut pattern: Option<String> = None;
        let mut names: Option<BTreeSet<String>> = None;
        let mut prefix: Option<String> = None;
        let mut infix: Option<String> = None;
        let mut limit: Option<usize> = None;
        let mut hidden: Option<bool> = None;
        let mut historic: Option<bool> = None;
        let mut metadata = true;
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
                "prefix" => prefix = Some(value.into_owned()),
                "infix" => infix = Some(value.into_owned()),
                "limit" => limit = Some(parse_limit(&value)?),
                "hidden" => hidden = Some(parse_bool("hidden", &value)?),
                "historic" => historic = Some(parse_bool("historic", &value)?),
                "metadata" => metadata = parse_bool("metadata", &value)?,
                _ => {
                    return Err(SelectorError::UnknownParameter {
                        parameter: key.into_owned(),
                    });
                }
            }
        }
        let mut selector = match (pattern, names) {
            (Some(_), Some(_)) => return Err(SelectorError::RegexAndNames),
            (Some(pattern), None) => Self::regex(&pattern)?,
            (None, Some(names)) => Self::names(names),
            (None, None) => Self::all(),
        };
        if let Some(prefix) = prefix {
            selector = selector.prefix(prefix);
        }
        if let Some(infix) = infix {
            selector = selector.infix(infix);
        }
        let selector = selector
            .limit(limit)
            .hidden(hidden)
            .historic(historic)
            .metadata(metadata);
        selector.check()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsReason;

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
                "selector=x&limit=3&hidden=false&historic=true&metadata=false",
                Selector::regex("x")
                    .unwrap()
                    .limit(3)
                    .hidden(false)
                    .historic(true)
                    .metadata(false),
            ),
            (
                "infix=i&limit=3&hidden=true",
                Selector::all().infix("i").limit(3).hidden(true),
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
            ("prefix=a&infix=b", SelectorError::PrefixAndInfix),
            ("selector=a&prefix=b", SelectorError::SelectorAndFix),
            ("name=a&infix=b", SelectorError::SelectorAndFix),
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
            assert_eq!(error.reason(), MetricsReason::InvalidArgument, "{query:?}");
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
        ] {
            let error = Selector::from_query(query).unwrap_err();
            assert_eq!(error.reason(), MetricsReason::InvalidRegex, "{query:?}");
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
    fn a_regex_over_the_budget_is_a_typed_error() {
        // 40 bytes of query that compile, without a budget, to megabytes.
        let error = Selector::from_query("selector=%5B%5Cs%5CS%5D%7B5000%7D").unwrap_err();
        assert_eq!(
            error,
            SelectorError::RegexTooLarge {
                pattern: r"[\s\S]{5000}".into(),
                limit: Selector::REGEX_SIZE_LIMIT,
            }
        );
        assert_eq!(error.reason(), MetricsReason::InvalidRegex);
        for pattern in [r"(?:\w{1000}){1000}", r"\w{3}", r"(?:.?){200}x"] {
            assert_eq!(
                Selector::regex(pattern).unwrap_err(),
                SelectorError::RegexTooLarge {
                    pattern: pattern.into(),
                    limit: Selector::REGEX_SIZE_LIMIT,
                },
                "{pattern}"
            );
        }
        // Within the budget: Unicode classes without large repetitions, ASCII classes.
        for pattern in [r"\w+", r"\p{L}+\.\w+", r"(?-u:\w){100}", r"[\s\S]{50}"] {
            let selector = Selector::regex(pattern).expect(pattern);
            assert_eq!(selector.get_regex(), Some(pattern));
        }

        // The longest pattern taken (spaces that the `x` flag ignores, then `y`), and one
        // byte more.
        let longest = format!("(?x){}y", " ".repeat(Selector::MAX_REGEX_LEN - 5));
        assert_eq!(longest.len(), Selector::MAX_REGEX_LEN);
        assert_eq!(
            Selector::regex(&longest).unwrap().get_regex(),
            Some(&*longest)
        );
        let query = format!("selector={}y", longest.replace(' ', "%20"));
        let error = Selector::from_query(&query).unwrap_err();
        assert_eq!(
            error,
            SelectorError::RegexTooLong {
                length: Selector::MAX_REGEX_LEN + 1,
                limit: Selector::MAX_REGEX_LEN,
            }
        );
        assert_eq!(error.reason(), MetricsReason::InvalidRegex);
        assert_eq!(
            error.to_string(),
            "regular expression of 4097 bytes is longer than the selector budget of 4096 bytes: select by name, prefix or infix"
        );
    }

    #[test]
    fn display_is_a_query_that_reads_back() {
        let selectors = [
            Selector::all(),
            Selector::regex(r"^a+b\.c$ d&e=f").unwrap().limit(0),
            Selector::names(["x y", "ü+&="])
                .hidden(true)
                .historic(false)
                .metadata(false),
            Selector::all().prefix("x y&").limit(2),
            Selector::all().infix(" +").historic(true),
        ];
        for selector in selectors {
            let query = selector.to_string();
            assert_eq!(Selector::from_query(&query), Ok(selector), "{query}");
        }
    }
}
