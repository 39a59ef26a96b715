//! What a client can send the exposition, from arbitrary bytes to well-formed but hostile
//! values: the query string of `/api/metrics` and the selector it describes
//! (`Selector::from_query`, and `get_metrics_response` around it), and the `Accept` header
//! (`Format::negotiate`, and `metrics_response` around it). Each input gets a typed error or
//! the right answer — never a panic — within a bound of CPU time per input far above what
//! any of them needs (100 ms, in a debug build): a regular expression that costs the
//! server's thread a noticeable time fails the test.
#![cfg(not(loom))]

#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use mvx::expose::http::{get_metrics_response, metrics_response};
use mvx::expose::{Format, TextEncoder};
use mvx::metrics::selector::name_order;
use mvx::metrics::{Metadata, MetricsReason, Registry, Selector, SelectorError};
use proptest::prelude::*;
use serde_json::Value;

/// The most CPU time any one input may take.
const BOUND: Duration = Duration::from_millis(100);

/// Runs `f`, failing the case if the thread spent more than [`BOUND`] of CPU time in it.
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    cpu_time::bounded(BOUND, what, f)
}

/// Names and metadata to select from: ordinary ones, and some a selector could trip on.
fn candidates() -> Vec<(String, Metadata)> {
    [
        ("http.requests", Metadata::new().unit("requests")),
        ("http.requests{code=\"200\"}", Metadata::new()),
        ("queue.depth", Metadata::new().hidden(true)),
        ("disk.free", Metadata::new().historic(true)),
        ("ünïcödé.✓", Metadata::new()),
        ("a", Metadata::new()),
        ("", Metadata::new()),
    ]
    .into_iter()
    .map(|(name, metadata)| (name.to_owned(), metadata))
    .chain(std::iter::once(("x".repeat(10_000), Metadata::new())))
    .collect()
}

/// An error of a query string is typed, with one of the two reasons a client is told.
fn check_error(error: &SelectorError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            error.reason(),
            MetricsReason::InvalidArgument | MetricsReason::InvalidRegex
        ),
        "{error:?}"
    );
    prop_assert!(!error.to_string().is_empty());
    Ok(())
}

/// A selector read from a query: its own query string reads back to it, and it selects
/// exactly the candidates it matches, in bounded time.
fn check_selector(selector: &Selector) -> Result<(), TestCaseError> {
    let query = selector.to_string();
    let again = bounded("reading a selector's own query", || {
        Selector::from_query(&query)
    })?;
    prop_assert_eq!(again.as_ref(), Ok(selector), "{}", query);
    let candidates = candidates();
    let selected = bounded("selecting", || selector.select(candidates.clone()))?
        .expect("a selector read from a query is one the manager answers");
    let mut expected: Vec<&String> = candidates
        .iter()
        .filter(|(name, metadata)| selector.matches(name, metadata))
        .map(|(name, _)| name)
        .collect();
    // The limit keeps the first names in metricq's order; the answer is a map by name.
    expected.sort_by(|a, b| name_order(a, b));
    expected.truncate(selector.get_limit().unwrap_or(usize::MAX));
    expected.sort();
    prop_assert_eq!(selected.keys().collect::<Vec<_>>(), expected);
    Ok(())
}

/// Regular expressions that are valid and costly to compile or to match, or that the
/// `regex` crate refuses only after some work: large repetitions of Unicode classes,
/// nested repetitions, long alternations, deep groups.
fn hostile_regex() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(r"\w".to_owned()),
        Just(r"[\s\S]".to_owned()),
        Just(r"\p{L}".to_owned()),
        Just(r"\d".to_owned()),
        Just(".".to_owned()),
        Just("a".to_owned()),
        Just("(a|aa)".to_owned()),
        Just(r"(?i)\w".to_owned()),
        Just("[^x]".to_owned()),
    ];
    let count = prop_oneof![
        0u32..10,
        100u32..2_000,
        Just(5_000),
        Just(100_000),
        Just(u32::MAX)
    ];
    prop_oneof![
        (atom.clone(), count.clone()).prop_map(|(atom, count)| format!("{atom}{{{count}}}")),
        (atom.clone(), count.clone(), count.clone())
            .prop_map(|(atom, inner, outer)| format!("(?:{atom}{{{inner}}}){{{outer}}}")),
        (atom.clone(), 1usize..400).prop_map(|(atom, times)| atom.repeat(times)),
        (1usize..2_000).prop_map(|alternatives| {
            (0..alternatives)
                .map(|n| format!("n{n}"))
                .collect::<Vec<_>>()
                .join("|")
        }),
        (1usize..300).prop_map(|depth| format!("{}a{}", "(".repeat(depth), ")".repeat(depth))),
        (1usize..300).prop_map(|depth| format!("{}a", "(".repeat(depth))),
        (atom, 1usize..100).prop_map(|(atom, times)| format!("{atom}*").repeat(times)),
        ".{0,200}",
    ]
}

/// A value a parameter could be given: arbitrary text, text near what is expected, or a
/// hostile regular expression.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        Just(String::new()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("TRUE".to_owned()),
        "[0-9]{1,25}",
        Just(usize::MAX.to_string()),
        Just("-1".to_owned()),
        hostile_regex(),
    ]
}

/// A parameter name: one of the selector's, or not.
fn parameter() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "selector", "name", "prefix", "infix", "limit", "hidden", "historic", "metadata",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["", "Name", "regex", "limit ", "%6Eame"]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// What `Selector::from_query` must answer for `parameters` (decoded): its documented rules,
/// applied in order.
fn expected(parameters: &[(String, String)]) -> Result<Selector, SelectorError> {
    let mut seen = BTreeSet::new();
    let mut pattern = None;
    let mut names: Option<BTreeSet<String>> = None;
    let (mut prefix, mut infix, mut limit) = (None, None, None);
    let (mut hidden, mut historic, mut metadata) = (None, None, true);
    let flag = |parameter: &'static str, value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SelectorError::InvalidBool {
            parameter,
            value: value.to_owned(),
        }),
    };
    for (key, value) in parameters {
        if key != "name" && !seen.insert(key.clone()) {
            return Err(SelectorError::RepeatedParameter {
                parameter: key.clone(),
            });
        }
        match key.as_str() {
            "selector" => pattern = Some(value.clone()),
            "name" if value.is_empty() => return Err(SelectorError::EmptyName),
            "name" => {
                names.get_or_insert_default().insert(value.clone());
            }
            "prefix" => prefix = Some(value.clone()),
            "infix" => infix = Some(value.clone()),
            "limit" => {
                let digits = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
                match value.parse::<usize>() {
                    Ok(parsed) if digits => limit = Some(parsed),
                    _ => {
                        return Err(SelectorError::InvalidLimit {
                            value: value.clone(),
                        });
                    }
                }
            }
            "hidden" => hidden = Some(flag("hidden", value)?),
            "historic" => historic = Some(flag("historic", value)?),
            "metadata" => metadata = flag("metadata", value)?,
            _ => {
                return Err(SelectorError::UnknownParameter {
                    parameter: key.clone(),
                });
            }
        }
    }
    let mut selector = match (pattern, names) {
        (Some(_), Some(_)) => return Err(SelectorError::RegexAndNames),
        (Some(pattern), None) => Selector::regex(&pattern)?,
        (None, Some(names)) => Selector::names(names),
        (None, None) => Selector::all(),
    };
    if let Some(prefix) = prefix {
        selector = selector.prefix(prefix);
    }
    if let Some(infix) = infix {
        selector = selector.infix(infix);
    }
    // What metricq's manager refuses, in the order `Selector::check` says it.
    if selector.get_prefix().is_some() && selector.get_infix().is_some() {
        return Err(SelectorError::PrefixAndInfix);
    }
    let by_name = selector.get_regex().is_some() || selector.get_names().is_some();
    if by_name && (selector.get_prefix().is_some() || selector.get_infix().is_some()) {
        return Err(SelectorError::SelectorAndFix);
    }
    Ok(selector
        .limit(limit)
        .hidden(hidden)
        .historic(historic)
        .metadata(metadata))
}

/// The registry `/api/metrics` lists in these tests.
fn registry() -> Registry {
    let registry = Registry::new();
    registry
        .counter_with("http.requests", Metadata::new().unit("requests"))
        .expect("counter");
    registry.gauge("queue.depth").expect("gauge");
    registry
        .counter_with_labels("http.errors", &[("code", "500")])
        .expect("series");
    registry
}

fn body(response: Response<Full<Bytes>>) -> Bytes {
    futures::executor::block_on(response.into_body().collect())
        .expect("a full body cannot fail")
        .to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any text as a query string: a selector that reads back to itself and selects what it
    /// matches, or a typed error.
    #[test]
    fn any_query_string_is_a_selector_or_a_typed_error(
        query in prop_oneof![
            any::<String>(),
            "[a-z=&%+0-9A-F.\\\\^$|()\\[\\]{}*?]{0,80}",
            prop::collection::vec((parameter(), value()), 0..6).prop_map(|parameters| {
                parameters
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join("&")
            }),
        ]
    ) {
        match bounded("Selector::from_query", || Selector::from_query(&query))? {
            Ok(selector) => check_selector(&selector)?,
            Err(error) => check_error(&error)?,
        }
    }

    /// Well-formed query strings of the selector's parameters with hostile values: exactly
    /// the answer the documented rules give.
    #[test]
    fn query_parameters_give_the_selector_or_the_error_their_rules_say(
        parameters in prop::collection::vec((parameter(), value()), 0..6)
    ) {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&parameters)
            .finish();
        let answer = bounded("Selector::from_query", || Selector::from_query(&query))?;
        let rules = bounded("the rules' answer", || expected(&parameters))?;
        prop_assert_eq!(&answer, &rules, "{}", query);
        match answer {
            Ok(selector) => check_selector(&selector)?,
            Err(error) => check_error(&error)?,
        }
    }

    /// A hostile regular expression as the `selector` parameter: compiled or refused within
    /// the bound, never a panic.
    #[test]
    fn a_hostile_regular_expression_is_answered_in_bounded_time(pattern in hostile_regex()) {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("selector", &pattern)
            .finish();
        match bounded("Selector::from_query", || Selector::from_query(&query))? {
            Ok(selector) => {
                prop_assert_eq!(selector.get_regex(), Some(pattern.as_str()));
                check_selector(&selector)?;
            }
            Err(error) => {
                prop_assert_eq!(error.reason(), MetricsReason::InvalidRegex, "{:?}", error);
            }
        }
    }

    /// Any bytes after `/api/metrics?` that make a request target: `200` with the JSON
    /// object of the selected metrics, or `400` with the typed error, never anything else.
    #[test]
    fn the_api_answers_any_request_target_with_a_list_or_a_typed_error(
        query in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            prop::collection::vec((parameter(), value()), 0..4).prop_map(|parameters| {
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&parameters)
                    .finish()
                    .into_bytes()
            }),
        ]
    ) {
        let mut target = b"/api/metrics?".to_vec();
        target.extend_from_slice(&query);
        // What hyper would not parse as a request target never reaches the handler.
        let Ok(uri) = hyper::Uri::try_from(target) else {
            return Ok(());
        };
        let registry = registry();
        let query = uri.query().unwrap_or_default().to_owned();
        let request = Request::get(uri).body(()).expect("a request");
        let response = bounded("get_metrics_response", || get_metrics_response(&registry, &request))?;
        let status = response.status();
        let json: Value = serde_json::from_slice(&body(response)).expect("a JSON body");
        match Selector::from_query(&query) {
            Ok(selector) => {
                prop_assert_eq!(status, 200);
                let listed = registry.get_metrics(&selector).expect("from_query checked it");
                let listed = serde_json::to_value(listed).expect("JSON");
                prop_assert_eq!(json, listed);
            }
            Err(error) => {
                prop_assert_eq!(status, 400);
                prop_assert_eq!(&json["reason"], error.reason().as_str());
                prop_assert!(json["error"].as_str().is_some_and(|text| !text.is_empty()));
            }
        }
    }

    /// Any text as an `Accept` header: a format, OpenMetrics only when the header names it.
    #[test]
    fn any_accept_header_gets_a_format(accept in prop_oneof![
        any::<String>(),
        "[a-zA-Z/*;,=.0-9 \"-]{0,120}",
    ]) {
        let format = bounded("Format::negotiate", || Format::negotiate(Some(&accept)))?;
        if format == Format::OpenMetrics {
            prop_assert!(accept.to_ascii_lowercase().contains("application/openmetrics-text"));
        }
    }

    /// Well-formed `Accept` headers of media ranges, versions and qualities, hostile ones
    /// among them: the format the negotiation rules give.
    #[test]
    fn accept_headers_get_the_format_their_qualities_say(
        ranges in prop::collection::vec(media_range(), 0..8)
    ) {
        let accept = ranges
            .iter()
            .map(|range| range.text.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let format = bounded("Format::negotiate", || Format::negotiate(Some(&accept)))?;
        let best = |kind: Kind| {
            ranges
                .iter()
                .filter(|range| range.kind == kind)
                .map(|range| range.quality)
                .fold(0.0_f64, f64::max)
        };
        let (openmetrics, prometheus) = (best(Kind::OpenMetrics), best(Kind::Prometheus));
        let expected = if openmetrics > 0.0 && openmetrics >= prometheus {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        };
        prop_assert_eq!(format, expected, "{}", accept);
    }

    /// Any bytes as `Accept` header values, one or several: `200` with the text of the
    /// negotiated format.
    #[test]
    fn the_metrics_endpoint_answers_any_accept_bytes(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..3)
    ) {
        let registry = registry();
        let encoder = TextEncoder::new();
        let mut request = Request::get("/metrics").body(()).expect("a request");
        for value in &values {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                request.headers_mut().append(ACCEPT, value);
            }
        }
        let response = bounded("metrics_response", || metrics_response(&registry, &encoder, &request))?;
        prop_assert_eq!(response.status(), 200);
        let content_type = response.headers()[CONTENT_TYPE].to_str().expect("ASCII").to_owned();
        prop_assert!(
            [Format::Prometheus.content_type(), Format::OpenMetrics.content_type()]
                .contains(&content_type.as_str()),
            "{}", content_type
        );
        let text = String::from_utf8(body(response).to_vec()).expect("UTF-8 text");
        prop_assert!(text.contains("http_requests"), "{}", text);
    }
}

/// What a media range in an `Accept` header asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    OpenMetrics,
    Prometheus,
    Other,
}

/// One media range of an `Accept` header, with what it asks for and at which quality.
#[derive(Clone, Debug)]
struct Range {
    text: String,
    kind: Kind,
    quality: f64,
}

/// A media range: a type mvx serves or not, in any case, with or without a version, with a
/// quality that is valid, out of range, not a number, or absent, and stray parameters.
fn media_range() -> impl Strategy<Value = Range> {
    let media = prop::sample::select(vec![
        ("application/openmetrics-text", Kind::OpenMetrics),
        ("APPLICATION/OpenMetrics-Text", Kind::OpenMetrics),
        ("text/plain", Kind::Prometheus),
        ("Text/Plain", Kind::Prometheus),
        ("text/*", Kind::Prometheus),
        ("*/*", Kind::Prometheus),
        ("application/json", Kind::Other),
        ("", Kind::Other),
        ("openmetrics", Kind::Other),
    ]);
    let version = prop::sample::select(vec![
        None,
        Some("1.0.0"),
        Some("0.0.4"),
        Some("0.0.1"),
        Some("\"1.0.0\""),
        Some(""),
    ]);
    let quality = prop::sample::select(vec![
        None,
        Some(("1", 1.0)),
        Some(("0", 0.0)),
        Some(("0.5", 0.5)),
        Some(("0.001", 0.001)),
        Some(("1.0", 1.0)),
        Some(("2", 0.0)),
        Some(("-0.5", 0.0)),
        Some(("NaN", 0.0)),
        Some(("inf", 0.0)),
        Some(("1e-400", 0.0)),
        Some(("1e400", 0.0)),
        Some(("", 0.0)),
        Some(("high", 0.0)),
    ]);
    let stray = prop::sample::select(vec![
        "",
        ";charset=utf-8",
        "; ;",
        ";=",
        ";escaping=allow-utf-8",
    ]);
    (media, version, quality, stray).prop_map(|((media, kind), version, quality, stray)| {
        let mut text = media.to_owned();
        let version_ok = match version {
            None => true,
            Some(version) => {
                text.push_str(&format!("; version={version}"));
                let version = version.trim_matches('"');
                match kind {
                    Kind::OpenMetrics => version == "1.0.0",
                    Kind::Prometheus if media.eq_ignore_ascii_case("text/plain") => {
                        version == "0.0.4"
                    }
                    _ => true,
                }
            }
        };
        text.push_str(stray);
        let quality = match quality {
            None => 1.0,
            Some((written, value)) => {
                text.push_str(&format!(";q={written}"));
                value
            }
        };
        let kind = if version_ok { kind } else { Kind::Other };
        Range {
            text,
            kind,
            quality,
        }
    })
}

#[test]
fn a_selector_regex_bomb_is_answered_in_bounded_time() {
    // The 40-byte request of issue 14: a repetition that compiles to megabytes.
    for pattern in [
        r"[\s\S]{5000}",
        r"\w{1000}",
        r"\p{L}{200}\p{L}{200}",
        r"(?:\w{1000}){1000}",
    ] {
        let begin = cpu_time::thread_cpu_time();
        let answer = Selector::regex(pattern);
        let took = cpu_time::thread_cpu_time() - begin;
        assert!(took < BOUND, "{pattern}: {took:?} of CPU time");
        if let Err(error) = answer {
            assert_eq!(error.reason(), MetricsReason::InvalidRegex, "{error:?}");
        }
    }
}
