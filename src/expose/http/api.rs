//! The answer to a request for the list of metrics: `GET /api/metrics?…` as JSON.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, header};
use serde::Serialize;

use super::response::refuse_method;
use crate::error::Report;
use std::collections::BTreeMap;

use crate::metrics::selector::name_order;
use crate::metrics::{Metadata, Registry, Selector};

/// The `Content-Type` of the JSON answers.
const JSON: &str = "application/json";

/// The answer to a request for the list of metrics, for use in your own hyper service.
///
/// Routing is yours: call this for the path you serve the list on (the server uses
/// [`DEFAULT_API_PATH`](super::DEFAULT_API_PATH)). The request's query string is read by
/// [`Selector::from_query`] and the answer is
/// [`Registry::get_metrics`](crate::metrics::Registry::get_metrics):
///
/// - `GET` or `HEAD` with a valid query: `200`, `Content-Type: application/json`, a JSON
///   object of the selected names, in metricq's name order
///   ([`name_order`](crate::metrics::selector::name_order); a labeled metric once, under
///   its name),
///   each with its metadata (an object with
///   the keys `unit`, `description`, `rate`, `hidden`, `historic` and free-form fields,
///   each present only when set), or `{}` with `metadata=false`. For `HEAD`, hyper sends
///   the headers without the body;
/// - `GET` or `HEAD` with an invalid query (an invalid regular expression or one over the
///   [selector budget](crate::metrics::selector#the-budget-of-a-regular-expression), a
///   `limit` that is not a number, a flag other than `true`/`false`, an unknown or
///   repeated parameter, `selector` together with `name`, a combination metricq's manager
///   refuses — see [`Selector::check`](crate::metrics::Selector::check)): `400` with the
///   JSON body
///   `{"error": "<what is wrong>", "reason": "<code>"}`, the code being
///   [`SelectorError::reason`](crate::metrics::SelectorError::reason) (`INVALID_REGEX` or
///   `INVALID_ARGUMENT`);
/// - any other method: `405` with `Allow: GET, HEAD`.
///
/// # Examples
///
/// ```
/// use mvx::expose::http::get_metrics_response;
/// use mvx::metrics::{Metadata, Registry};
///
/// let registry = Registry::new();
/// registry.counter_with("jobs", Metadata::new().unit("jobs"))?;
/// registry.gauge("queue.depth")?;
///
/// let request = hyper::Request::get("/api/metrics?prefix=jobs").body(())?;
/// let response = get_metrics_response(&registry, &request);
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-type"], "application/json");
///
/// let request = hyper::Request::get("/api/metrics?limit=many").body(())?;
/// assert_eq!(get_metrics_response(&registry, &request).status(), 400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn get_metrics_response<B>(registry: &Registry, request: &Request<B>) -> Response<Full<Bytes>> {
    if let Some(refused) = refuse_method(request) {
        return refused;
    }
    let selected = Selector::from_query(request.uri().query().unwrap_or_default())
        .and_then(|selector| registry.get_metrics(&selector));
    match selected {
        Ok(selected) => json(StatusCode::OK, &InNameOrder(&selected)),
        Err(error) => {
            let body = ErrorBody {
                error: Report(&error).to_string(),
                reason: error.reason().as_str(),
            };
            json(StatusCode::BAD_REQUEST, &body)
        }
    }
}

/// The selected metrics as a JSON object whose keys come in metricq's name order
/// ([`name_order`]).
struct InNameOrder<'a>(&'a BTreeMap<String, Metadata>);

impl Serialize for InNameOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&String, &Metadata)> = self.0.iter().collect();
        entries.sort_by(|(a, _), (b, _)| name_order(a, b));
        serializer.collect_map(entries)
    }
}

/// The body of an error answer.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
    reason: &'static str,
}

/// A JSON response with `status`; `500` with an error body if `value` does not serialize.
fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        Err(error) => {
            let body = ErrorBody {
                error: format!("the answer could not be serialized: {error}"),
                reason: crate::ErrorReason::Unexpected.as_str(),
            };
            let body = serde_json::to_vec(&body).unwrap_or_default();
            (StatusCode::INTERNAL_SERVER_ERROR, body)
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metadata;
    use http_body_util::BodyExt;

    fn body(response: Response<Full<Bytes>>) -> serde_json::Value {
        let bytes = futures::executor::block_on(response.into_body().collect())
            .expect("a full body never fails")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn good_queries_answer_the_selection_and_bad_ones_a_reason() {
        let registry = Registry::new();
        registry
            .counter_with("jobs", Metadata::new().description("jobs run"))
            .expect("counter");
        registry.gauge("queue.depth").expect("gauge");
        let ask = |uri: &str| {
            let request = Request::get(uri).body(()).expect("request");
            get_metrics_response(&registry, &request)
        };

        let answer = ask("/api/metrics");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            body(answer),
            serde_json::json!({"jobs": {"description": "jobs run"}, "queue.depth": {}})
        );
        assert_eq!(
            body(ask("/api/metrics?selector=%5Cd&metadata=false")),
            serde_json::json!({})
        );

        let answer = ask("/api/metrics?selector=(");
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], JSON);
        let error = body(answer);
        assert_eq!(error["reason"], "INVALID_REGEX");
        assert!(
            error["error"]
                .as_str()
                .expect("a message")
                .starts_with("invalid regular expression \"(\": "),
            "{error}"
        );
        let error = body(ask("/api/metrics?hidden=maybe"));
        assert_eq!(
            error,
            serde_json::json!({
                "error": "invalid value \"maybe\" for hidden: want true or false",
                "reason": "INVALID_ARGUMENT",
            })
        );
    }
}
