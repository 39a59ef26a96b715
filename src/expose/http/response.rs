//! The answer to a request for metrics.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, header};

use crate::expose::{Format, TextEncoder};
use crate::metrics::Registry;

/// The answer to a request for metrics, for use in your own hyper service.
///
/// Routing is yours: call this for the path you serve metrics on. It answers `GET` and
/// `HEAD` with `200` and the registry's text in the format negotiated from the request's
/// `Accept` header (see [`Format::negotiate`]), with `Content-Type` and `Vary: Accept`;
/// any other method with `405` and `Allow: GET, HEAD`. For `HEAD`, hyper sends the headers
/// without the body.
///
/// # Examples
///
/// ```
/// use mvx::expose::TextEncoder;
/// use mvx::expose::http::metrics_response;
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs")?.inc();
/// let encoder = TextEncoder::new();
///
/// // In a hyper `service_fn`: route `/metrics` here, everything else to your handlers.
/// let request = hyper::Request::get("/metrics").body(())?;
/// let response = metrics_response(&registry, &encoder, &request);
/// assert_eq!(response.status(), 200);
/// assert_eq!(
///     response.headers()["content-type"],
///     "text/plain; version=0.0.4; charset=utf-8"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn metrics_response<B>(
    registry: &Registry,
    encoder: &TextEncoder,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    if let Some(refused) = refuse_method(request) {
        return refused;
    }
    let accept = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let format = Format::negotiate((!accept.is_empty()).then_some(accept.as_str()));
    let encoded = encoder.encode_registry(registry, format);
    let mut response = Response::new(Full::new(Bytes::from(encoded.text)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

/// The page at `/`, as prometheus_async serves it: a link to the metrics at `path`, for
/// people and for cheap health checks. `405` for methods other than GET and HEAD.
pub(super) fn root_page<B>(path: &str, request: &Request<B>) -> Response<Full<Bytes>> {
    if let Some(refused) = refuse_method(request) {
        return refused;
    }
    let mut href = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '&' => href.push_str("&amp;"),
            '"' => href.push_str("&quot;"),
            '<' => href.push_str("&lt;"),
            '>' => href.push_str("&gt;"),
            c => href.push(c),
        }
    }
    let page = format!(r#"<html><body><a href="{href}">Metrics</a></body></html>"#);
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `405 Method Not Allowed` (with `Allow: GET, HEAD`) for any method but GET and HEAD.
pub(super) fn refuse_method<B>(request: &Request<B>) -> Option<Response<Full<Bytes>>> {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return None;
    }
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    Some(response)
}

/// A plain-text response.
pub(super) fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
