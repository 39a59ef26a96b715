//! mvx's future adapters side by side with prometheus_async's (`pip install
//! prometheus-async`, which `.ci/test` runs): the same calls, ending the same ways — a
//! value, an error, a panic (Python: an exception the filter did not name), a cancellation
//! (Python: `task.cancel()`; Rust: a drop after the first poll) and never run (Python: a
//! coroutine closed unawaited; Rust: a drop before the first poll) — through `time`,
//! `count_exceptions` with three filters and `track_inprogress`, and the same records
//! compared.
//!
//! Two differences are documented (`mvx::instrument`) and held here: a panic is counted
//! whatever the filter (a filter over error values cannot name it; Python does not count a
//! `RuntimeError` under `exc=KeyError`), and a future dropped unpolled gives its in-progress
//! gauge back (a Python coroutine never awaited leaves it raised).
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::noop_waker;
use mvx::instrument::InstrumentExt;
use mvx::metrics::{Counter, Gauge, Histogram};
use prometheus_tools::python;
use serde_json::{Value, json};

/// How a call ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Value,
    Error,
    Panic,
    Cancelled,
    NeverRun,
}

const ENDINGS: [(Ending, &str); 5] = [
    (Ending::Value, "value"),
    (Ending::Error, "error"),
    (Ending::Panic, "panic"),
    (Ending::Cancelled, "cancelled"),
    (Ending::NeverRun, "never_run"),
];

/// The same calls through prometheus_async; prints the records as one JSON object:
/// `{record: {ending: value}}`, and whether the clock started when the future was wrapped.
const PYTHON_CALLS: &str = r#"
import asyncio, json, sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_async.aio import count_exceptions, time, track_inprogress

delay = float(sys.argv[1])

async def call(ending):
    await asyncio.sleep(0)
    if ending == "value":
        return 1
    if ending == "error":
        raise ValueError("no")
    if ending == "panic":
        raise RuntimeError("bug")
    await asyncio.Event().wait()

async def end(ending, wrap):
    """Runs `call(ending)` wrapped by `wrap`, ending it as named; returns a probe of the
    metric taken right after wrapping."""
    inner = call(ending)
    wrapped = wrap(inner)
    if ending == "never_run":
        wrapped.close()
        inner.close()
        return
    task = asyncio.ensure_future(wrapped)
    if ending == "cancelled":
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
    try:
        await task
    except (ValueError, RuntimeError, asyncio.CancelledError):
        pass

async def main():
    records = {}
    for ending in ["value", "error", "panic", "cancelled", "never_run"]:
        registry = CollectorRegistry()
        latency = Histogram("latency", "", registry=registry)
        every = Counter("every", "", registry=registry)
        exceptions = Counter("exceptions", "", registry=registry)
        key_errors = Counter("key_errors", "", registry=registry)
        in_progress = Gauge("in_progress", "", registry=registry)
        await end(ending, lambda f: time(latency, f))
        await end(ending, lambda f: count_exceptions(every, f))
        await end(ending, lambda f: count_exceptions(exceptions, f, exc=Exception))
        await end(ending, lambda f: count_exceptions(key_errors, f, exc=KeyError))
        wrapped_probe = []
        def track(f):
            wrapped = track_inprogress(in_progress, f)
            wrapped_probe.append(registry.get_sample_value("in_progress"))
            return wrapped
        await end(ending, track)
        value = registry.get_sample_value
        for record, sample in [
            ("timed", value("latency_count")),
            ("count_default", value("every_total")),
            ("count_exception", value("exceptions_total")),
            ("count_key_error", value("key_errors_total")),
            ("in_progress_when_wrapped", wrapped_probe[0]),
            ("in_progress_after", value("in_progress")),
        ]:
            records.setdefault(record, {})[ending] = sample

    registry = CollectorRegistry()
    latency = Histogram("latency", "", registry=registry)
    wrapped = time(latency, call("value"))
    await asyncio.sleep(delay)
    await wrapped
    records["clock_from_wrap"] = registry.get_sample_value("latency_sum") >= delay
    print(json.dumps(records))

asyncio.run(main())
"#;

/// The error of a call: `Value` is Python's `ValueError`, `Key` its `KeyError`.
#[derive(Debug, PartialEq)]
enum CallError {
    Value,
    #[allow(dead_code)] // Named by the filter; never returned, as `KeyError` is never raised.
    Key,
}

/// Pending once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The call: yields once, then ends as `ending` says (a cancelled one waits for ever).
async fn call(ending: Ending) -> Result<u32, CallError> {
    YieldOnce(false).await;
    match ending {
        Ending::Value => Ok(1),
        Ending::Error => Err(CallError::Value),
        Ending::Panic => panic!("bug"),
        Ending::Cancelled | Ending::NeverRun => std::future::pending().await,
    }
}

/// Runs `future` to the ending named.
fn end<F: Future>(ending: Ending, future: F) {
    match ending {
        Ending::Value | Ending::Error => {
            futures::executor::block_on(future);
        }
        Ending::Panic => {
            let unwound = catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(future)));
            assert!(unwound.is_err(), "the call panicked");
        }
        Ending::Cancelled => {
            let mut future = Box::pin(future);
            let waker = noop_waker();
            assert!(
                future
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            drop(future);
        }
        Ending::NeverRun => drop(future),
    }
}

/// The same records from mvx's adapters.
fn mvx_records(delay: Duration) -> BTreeMap<String, Value> {
    let mut records: BTreeMap<String, BTreeMap<&str, f64>> = BTreeMap::new();
    for (ending, name) in ENDINGS {
        let latency = Histogram::new("latency", [0.1]).expect("valid bounds");
        let every = Counter::new("every");
        let exceptions = Counter::new("exceptions");
        let key_errors = Counter::new("key_errors");
        let in_progress = Gauge::new("in_progress");
        end(ending, call(ending).timed(&latency));
        end(ending, call(ending).count_errors(&every));
        end(
            ending,
            call(ending).count_errors_if(&exceptions, |_: &CallError| true),
        );
        end(
            ending,
            call(ending).count_errors_if(&key_errors, |error: &CallError| *error == CallError::Key),
        );
        let tracked = call(ending).track_in_progress(&in_progress);
        let when_wrapped = in_progress.get();
        end(ending, tracked);
        for (record, value) in [
            ("timed", latency.count() as f64),
            ("count_default", every.get() as f64),
            ("count_exception", exceptions.get() as f64),
            ("count_key_error", key_errors.get() as f64),
            ("in_progress_when_wrapped", when_wrapped),
            ("in_progress_after", in_progress.get()),
        ] {
            records
                .entry(record.to_owned())
                .or_default()
                .insert(name, value);
        }
    }
    let mut records: BTreeMap<String, Value> = records
        .into_iter()
        .map(|(record, values)| (record, json!(values)))
        .collect();

    let latency = Histogram::new("latency", [0.1]).expect("valid bounds");
    let wrapped = call(Ending::Value).timed(&latency);
    let before = Instant::now();
    std::thread::sleep(delay);
    assert!(before.elapsed() >= delay);
    futures::executor::block_on(wrapped).expect("a value");
    records.insert(
        "clock_from_wrap".to_owned(),
        json!(latency.sum() >= delay.as_secs_f64()),
    );
    records
}

#[test]
fn the_adapters_record_what_prometheus_async_records() {
    let delay = Duration::from_millis(50);
    let python: BTreeMap<String, Value> = serde_json::from_str(&python(
        PYTHON_CALLS,
        &[&delay.as_secs_f64().to_string()],
        "",
    ))
    .expect("JSON from the Python side");
    let mut mvx = mvx_records(delay);

    // What both record, written out: every ending is timed but a call never run; every
    // ending but a value is counted by the default filter (`BaseException`, `AnyError`);
    // `exc=Exception` and a filter over error values leave the cancellation out.
    assert_eq!(
        python["timed"],
        json!({"value": 1.0, "error": 1.0, "panic": 1.0, "cancelled": 1.0, "never_run": 0.0})
    );
    assert_eq!(
        python["count_default"],
        json!({"value": 0.0, "error": 1.0, "panic": 1.0, "cancelled": 1.0, "never_run": 0.0})
    );
    assert_eq!(
        python["count_exception"],
        json!({"value": 0.0, "error": 1.0, "panic": 1.0, "cancelled": 0.0, "never_run": 0.0})
    );
    assert_eq!(python["clock_from_wrap"], json!(true));

    // The documented differences.
    assert_eq!(python["count_key_error"]["panic"], json!(0.0));
    assert_eq!(
        mvx["count_key_error"]["panic"],
        json!(1.0),
        "a panic is always counted"
    );
    assert_eq!(python["in_progress_after"]["never_run"], json!(1.0));
    assert_eq!(
        mvx["in_progress_after"]["never_run"],
        json!(0.0),
        "an unpolled future gives its gauge back"
    );
    mvx.get_mut("count_key_error").expect("record")["panic"] = json!(0.0);
    mvx.get_mut("in_progress_after").expect("record")["never_run"] = json!(1.0);

    // Everything else, record for record.
    assert_eq!(mvx, python);
}
