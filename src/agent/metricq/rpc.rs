//! RPCs: the handlers a client answers with, and the requests it is answering.
//!
//! An RPC is a JSON object with a `function` field and the arguments beside it, published
//! with a `correlation_id`, a `reply_to` queue and the caller's token as `app_id`. The
//! answer is a JSON object published to the `reply_to` queue through the default exchange
//! with the same `correlation_id`; an answer with an `error` field is a failure (metricq's
//! `Agent._on_management_message` and `Agent.rpc`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use serde_json::{Map, Value};

use crate::error::{BoxError, Cause};

/// An RPC that a client received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RpcRequest {
    /// The function called, such as `discover` or `config`.
    pub function: String,
    /// The caller's token (the message's `app_id`), if it gave one.
    pub from_token: Option<String>,
    /// The arguments: every field of the request but `function`.
    pub arguments: Map<String, Value>,
}

type Handler =
    Arc<dyn Fn(RpcRequest) -> Pin<Box<dyn Future<Output = RpcResult> + Send>> + Send + Sync>;

/// What an RPC handler returns: the answer (a JSON object; `null` answers `{}`), or an
/// error whose message the caller receives as the answer's `error` field.
pub type RpcResult = Result<Value, BoxError>;

/// The RPCs a client answers, by function name: metricq's `@rpc_handler`.
///
/// Cheap to clone; clones share the handlers. A handler registered while the client runs
/// answers from the next request on. A function without a handler is answered
/// `{"error": "Missing rpc handler for <function>"}`, as the Python client answers; a
/// handler that fails or panics is answered `{"error": "<message>"}`.
///
/// # Examples
///
/// ```
/// use mvx::agent::metricq::RpcHandlers;
/// use serde_json::json;
///
/// let handlers = RpcHandlers::new();
/// handlers.register("example.echo", |request| async move {
///     Ok(json!({ "echo": request.arguments }))
/// });
/// assert_eq!(handlers.functions(), ["example.echo"]);
/// ```
#[derive(Clone, Default)]
pub struct RpcHandlers {
    handlers: Arc<Mutex<BTreeMap<String, Handler>>>,
}

impl fmt::Debug for RpcHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcHandlers")
            .field("functions", &self.functions())
            .finish()
    }
}

impl RpcHandlers {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `function` with `handler`, replacing any handler it had; whether one was
    /// replaced.
    pub fn register<F, Fut>(&self, function: impl Into<String>, handler: F) -> bool
    where
        F: Fn(RpcRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcResult> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        self.lock().insert(function.into(), handler).is_some()
    }

    /// Stops answering `function`; whether it had a handler.
    pub fn unregister(&self, function: &str) -> bool {
        self.lock().remove(function).is_some()
    }

    /// The functions answered, in name order.
    pub fn functions(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Whether `function` has a handler.
    pub fn contains(&self, function: &str) -> bool {
        self.lock().contains_key(function)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Handler>> {
        self.handlers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the handler of `request.function` and returns the answer to send: the
    /// handler's object, `{}` for `null`, or `{"error": ...}`.
    pub async fn dispatch(&self, request: RpcRequest) -> Value {
        let function = request.function.clone();
        let Some(handler) = self.lock().get(&function).cloned() else {
            return error_answer(format!("Missing rpc handler for {function}"));
        };
        match AssertUnwindSafe(handler(request)).catch_unwind().await {
            Ok(Ok(Value::Null)) => Value::Object(Map::new()),
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => error_answer(crate::error::Report(&*error).to_string()),
            Err(payload) => {
                let cause = Cause::from_panic(payload);
                error_answer(format!(
                    "the handler of {function} panicked: {}",
                    cause.panic_message().unwrap_or_default()
                ))
            }
        }
    }
}

fn error_answer(message: String) -> Value {
    let mut answer = Map::new();
    answer.insert("error".into(), Value::String(message));
    Value::Object(answer)
}

/// Splits a received management message into an RPC request (it has a string `function`)
/// or an answer; `None` if it is not a JSON object.
pub(crate) enum Incoming {
    Request(RpcRequest),
    Answer(Map<String, Value>),
}

pub(crate) fn classify(body: &[u8], from_token: Option<String>) -> Option<Incoming> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    match fields.remove("function") {
        Some(Value::String(function)) => Some(Incoming::Request(RpcRequest {
            function,
            from_token,
            arguments: fields,
        })),
        Some(other) => {
            // Not a function name: keep the field, and treat the message as an answer.
            fields.insert("function".into(), other);
            Some(Incoming::Answer(fields))
        }
        None => Some(Incoming::Answer(fields)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(function: &str) -> RpcRequest {
        RpcRequest {
            function: function.into(),
            from_token: Some("caller".into()),
            arguments: Map::new(),
        }
    }

    #[test]
    fn answers_errors_as_metricq_does() {
        let handlers = RpcHandlers::new();
        handlers.register("ok", |_| async { Ok(json!({"alive": true})) });
        handlers.register("none", |_| async { Ok(Value::Null) });
        handlers.register("fails", |_| async { Err("no such metric".into()) });
        handlers.register("panics", |_| async { panic!("boom") });
        let answer = |f: &str| futures::executor::block_on(handlers.dispatch(request(f)));
        assert_eq!(answer("ok"), json!({"alive": true}));
        assert_eq!(answer("none"), json!({}));
        assert_eq!(answer("fails"), json!({"error": "no such metric"}));
        assert_eq!(
            answer("panics"),
            json!({"error": "the handler of panics panicked: boom"})
        );
        assert_eq!(
            answer("missing"),
            json!({"error": "Missing rpc handler for missing"})
        );
        assert!(handlers.register("ok", |_| async { Ok(json!({})) }));
        assert!(handlers.unregister("ok"));
        assert!(!handlers.unregister("ok"));
    }

    #[test]
    fn classifies_requests_and_answers_without_panicking() {
        match classify(br#"{"function":"discover","x":1}"#, Some("t".into())) {
            Some(Incoming::Request(request)) => {
                assert_eq!(request.function, "discover");
                assert_eq!(request.from_token.as_deref(), Some("t"));
                assert_eq!(Value::Object(request.arguments), json!({"x": 1}));
            }
            _ => panic!("a request"),
        }
        assert!(matches!(
            classify(br#"{"metrics":[]}"#, None),
            Some(Incoming::Answer(_))
        ));
        assert!(matches!(
            classify(br#"{"function":3}"#, None),
            Some(Incoming::Answer(_))
        ));
        for garbage in [&b""[..], b"[]", b"null", b"{", b"\xff\xfe"] {
            assert!(classify(garbage, None).is_none());
        }
    }
}
