//! Telemetry off the hot path.
//!
//! mvx takes events off an application's hot path — `log(event)` from any thread or task,
//! millions of times a second — and delivers them to slow backends without allocating,
//! without blocking the caller (unless it chose [`OverflowPolicy::Block`] and the queue is
//! full), and without losing track of a single event, under whatever executor the
//! application already uses: tokio, smol, `futures`, or a plain thread.
//!
//! [`OverflowPolicy::Block`]: queue::OverflowPolicy::Block
//!
//! ```
//! use mvx::BoxError;
//! use mvx::sink::{Dispatch, SinkConfig};
//!
//! // The user writes delivery; mvx owns the queue, the lifecycle and the executor.
//! struct Collector;
//!
//! impl Dispatch<String> for Collector {
//!     async fn dispatch(&mut self, line: String) -> Result<(), BoxError> {
//!         // send `line` to the backend
//!         # let _ = line;
//!         Ok(())
//!     }
//! }
//!
//! let (sink, terminator) = mvx::rt::thread::create(Collector, SinkConfig::default())?;
//! // Thread-safe, never allocates; returns at once under the default overflow policy
//! // (`RaiseError`: a full queue hands the event back), blocks only under `Block`.
//! sink.log("started".to_string()).unwrap();
//! let stats = terminator.terminate()?; // flushes, stops, joins; idempotent
//! assert_eq!(stats.delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Metrics work the same way: user-defined events, user-defined aggregation, snapshots on
//! demand, on a runtime thread mvx owns.
//!
//! ```
//! use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
//!
//! enum Save { Ok, Failed }
//! impl MetricEvent for Save {
//!     fn event_type(&self) -> &str { "save" }
//! }
//!
//! #[derive(Default)]
//! struct Saves { ok: u64, failed: u64 }
//! impl Metric<Save> for Saves {
//!     fn name(&self) -> &str { "saves" }
//!     fn handle_event(&mut self, event: &Save) -> bool {
//!         match event { Save::Ok => self.ok += 1, Save::Failed => self.failed += 1 }
//!         true
//!     }
//!     fn snapshot(&self) -> Snapshot {
//!         Snapshot::new("saves", MetricKind::Counter)
//!             .with("ok_total", self.ok)
//!             .with("failed_total", self.failed)
//!     }
//! }
//!
//! let runtime = MetricsRuntime::new()?;                      // owns one thread
//! let recorder = runtime.create_recorder::<Save>("storage")?;
//! recorder.register_metric(Saves::default())?;
//! recorder.register_event(Save::Ok).unwrap();                // no allocation
//! let snapshots = futures::executor::block_on(recorder.snapshot_now())?; // a barrier
//! assert_eq!(snapshots["saves"].get("ok_total"), Some(1u64.into()));
//! runtime.shutdown()?;                                       // idempotent
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Request statistics count what crawler-style applications need — requests started,
//! finished, failed and retried, their durations, status codes and error kinds — off the
//! hot path too, persisted so that a restarted process resumes its counts: Crawlee's
//! statistics, with its names and its persisted document.
//!
//! ```
//! use mvx::stats::{MemoryStore, ReportTo, Statistics, StatsConfig};
//!
//! let store = MemoryStore::new(); // or FileStore (feature `persist`), RedisStore (`redis`)
//! let config = StatsConfig::default()
//!     .persist_to(store.clone())
//!     .persist_state_key("crawler") // else a key per instance, `__CRAWLER_STATISTICS_<id>`
//!     .report_to(ReportTo::Off);     // else reported at the start and every minute
//! let (stats, driver) = Statistics::new(config.clone())?;
//! let driver = std::thread::spawn(move || futures::executor::block_on(driver));
//! stats.start().wait()?;                          // loads the persisted state, if any
//! stats.record_request_processing_start(1u64)?;   // no allocation for numeric ids
//! stats.register_status_code(200)?;
//! stats.record_request_processing_finish(1u64)?;
//! stats.stop().wait()?;                           // saves the final state
//! driver.join().unwrap();
//!
//! // A new process on the same store resumes the counts.
//! let (stats, driver) = Statistics::new(config)?;
//! let driver = std::thread::spawn(move || futures::executor::block_on(driver));
//! stats.start().wait()?;
//! assert_eq!(stats.calculate_blocking()?.requests_finished, 1); // a barrier
//! stats.stop().wait()?;
//! driver.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Futures are instrumented in place, and everything in a registry is served to Prometheus
//! over HTTP, on a thread mvx owns or on the application's executor:
//!
//! ```
//! # #[cfg(feature = "http")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
//! use mvx::instrument::InstrumentExt;
//! use mvx::metrics::{Metadata, Registry};
//!
//! let registry = Registry::new();
//! let seconds = Metadata::new().unit("s").description("time to look a key up");
//! let latency = registry.histogram_with("lookup.seconds", [0.01, 0.1, 1.0], seconds)?;
//! let failures = registry.counter("lookup.failures")?;
//! let found = futures::executor::block_on(
//!     async { Ok::<_, std::io::Error>(42) }.count_errors(&failures).timed(&latency),
//! )?;
//! assert_eq!((found, latency.count(), failures.get()), (42, 1, 0));
//!
//! // `http` feature: Prometheus scrapes http://127.0.0.1:<port>/metrics; the list of metrics
//! // with their metadata is JSON at /api/metrics (`?selector=^lookup&hidden=false`, ...).
//! let server = ThreadedMetricsServer::start(registry, ServerConfig::new("127.0.0.1:0".parse()?))?;
//! println!("metrics at {}, listed at {:?}", server.metrics_url(), server.api_url());
//! server.close()?; // stops, joins its thread; idempotent
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "http"))]
//! # fn main() {}
//! ```
//!
//! Applications that already log through `log` or `tracing` and count through `metrics` keep
//! their code: the facades (features `log`, `tracing`, `metrics`) put mvx behind those
//! crates, and a Redis streams sink (feature `redis`) delivers to a real backend.
//!
//! ```
//! # #[cfg(all(feature = "tracing", feature = "metrics"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mvx::facade::{metrics::RegistryRecorder, tracing::SinkLayer};
//! use mvx::sink::{JsonLines, SinkConfig, sinks::WriterSink};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // `tracing` events as JSON lines on stderr, written by mvx's thread, not the caller's.
//! let (sink, terminator) = mvx::rt::thread::create(WriterSink::stderr().format(JsonLines), SinkConfig::default())?;
//! let subscriber = tracing_subscriber::Registry::default().with(SinkLayer::new(sink));
//! tracing::subscriber::with_default(subscriber, || tracing::info!(port = 8080, "ready"));
//! terminator.terminate()?;
//!
//! // `metrics` macros into mvx instruments, served by `expose` like any other.
//! let registry = mvx::metrics::Registry::new();
//! let recorder = RegistryRecorder::new(registry.clone()); // or `.install()` for the process
//! metrics::with_local_recorder(&recorder, || metrics::counter!("jobs", "queue" => "mail").increment(1));
//! assert_eq!(registry.counter_with_labels("jobs", &[("queue", "mail")])?.get(), 1);
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "tracing", feature = "metrics")))]
//! # fn main() {}
//! ```
//!
//! # Map
//!
//! | layer | modules | imports |
//! |---|---|---|
//! | core | `sync` (private), [`lifecycle`], [`queue`], [`error`]: no executor, no thread, no I/O; [`sink`] on them, and the adapters [`rt`] that run a sink's driver | only the core |
//! | components | [`metrics`], [`stats`], [`instrument`], [`expose`], [`agent`] | the core, and one another one way: `instrument`, `expose` and `agent` import `metrics`, which imports none of them |
//! | facades | [`facade`] | the core and `metrics` |
//!
//! Each rule is stated once, in the docs of the module that owns it. What is lost, and
//! when: [below](#what-is-lost-when), by way of ending and by failure; [`queue`] has the
//! outcome of every event, and each component its own "What is lost" section ([`sink`],
//! [`metrics`], [`stats`], [`facade`]). Which calls block, and what allocates: [`sink`].
//! Panics in user code: [`error`].
//!
//! # What is lost, when
//!
//! An event given to a sink is refused and handed back, or counted in `dropped`, or
//! accepted — and then counted `delivered` or `failed`, exactly once, however the sink ends
//! ([`queue`] has the outcome of every event and the counter it lands in; its invariant is
//! `accepted == delivered + failed + pending`). What a program loses is what is still
//! pending when it stops running mvx's code: the way it ends decides that.
//!
//! | the program ends by | delivered | lost, and where it shows | the tool |
//! |---|---|---|---|
//! | returning from `main`, the terminator a local of `main` | every accepted event: the drop of the last [`rt::Terminator`] stops the sink, flushes it, joins its thread | past the terminate deadline, what was left, counted `failed` ([`sink::AsyncSink::last_error`] says `TERMINATE_TIMED_OUT`) | the terminator as a guard ([`rt`](rt#the-guard)); [`rt::Terminator::terminate`] last in `main`, to read the outcome |
//! | a panic in `main` (`panic = "unwind"`, the default) | as returning: unwinding drops the terminator | as returning | the guard; [`rt::Terminator::terminate_on_panic`] to flush before the panic message |
//! | a panic under `panic = "abort"`, or one on another thread that ends the program | what the driver finished before | everything pending; no counter survives the process | [`rt::Terminator::terminate_on_panic`] |
//! | [`std::process::exit`] | what the driver finished before | everything pending, and what a target buffered: `exit` runs no destructor | [`rt::Terminator::terminate`] (or `terminate_within`) before `exit` |
//! | a terminator in a `static`, or leaked | as `exit`: statics are never dropped | as `exit` | [`rt::Terminator::terminate`] at the end of `main`; [`rt::Terminator::terminate_on_panic`] |
//! | a terminator bound to `_` (forgotten at once) | — | nothing accepted: the sink stops at once, and every later `log()` is refused, the event handed back (`NotAccepting`) | bind it to a name (`let (sink, _terminator) = ...`) |
//! | `fork` without `exec` | in the parent: as if nothing happened | in the child, which has no runtime thread: events it logs are accepted and never dispatched, and its `terminate()` can only end at its deadline, counting them `failed`; a lock another thread held at the fork stays held in the child | create sinks in the process that uses them, after forking; a child that calls `exec` at once loses nothing |
//! | a signal's default action (SIGTERM, SIGINT), SIGKILL, `abort()` | what the driver finished before | everything pending, and what a target buffered | handle the signal and terminate ([`agent::Runner`] with the `signals` feature); a short [`sink::sinks::WriterSink::flush_interval`] for a target that buffers |
//!
//! And while it runs, every failure lands in a counter, and its reason in an error; what
//! was dropped, refused or failed is also handed to the dispatcher as a periodic
//! [`sink::LossReport`], which the writer sink writes as a line among the events:
//!
//! | failure | counter | the rule |
//! |---|---|---|
//! | queue full (the pending-event limit) | `dropped` under `Drop`; `refused` under `RaiseError`, the event handed back; `Block` waits (`refused` when a `send(..).wait_timeout(..)` gives up) | [`queue::OverflowPolicy`] |
//! | refused: the sink is not `Starting` or `Running` | `refused`: the event handed back | [`error::LogError`] |
//! | a blocking call that could only wait for itself (on the driver's own thread, inside the sink's own code) | `refused` for an event handed back (`WouldDeadlock`); nothing for a flush or a lifecycle wait, which goes on | [which calls block](sink#which-calls-block) |
//! | telemetry emitted through the facades inside a sink's dispatcher or hooks | the facade's `suppressed` ([`facade::Refused`]) | [`facade`] |
//! | a dispatch returns an error; the writer sink's write error (the lines it did not write whole) | `failed` | [`sink::Dispatch`], [`sink::sinks::WriterSink`] |
//! | a dispatcher panics | `failed`: its batch; with [`sink::RestartPolicy::Never`] (the default) also every event behind it, the sink in `Failure`; restarted, `restarts` | [`sink::Dispatch`], [`sink::RestartPolicy`] |
//! | the start hook fails or times out | `failed`: the events accepted while starting | [`sink::SinkConfig::start_timeout`] |
//! | the stop timeout passes | `failed`: the events not dispatched yet | [`sink::SinkConfig::stop_timeout`] |
//! | a terminator's deadline passes (also while the dispatcher blocks its thread) | `failed`: the events queued or in dispatch; the thread is left behind | [`rt::Terminator`], [`sink::SinkConfig::terminate_timeout`] |
//! | the driver is dropped (its executor went away): `Cancelled` | `failed`: the events queued or in dispatch | [`sink`] |
//! | a loss report the dispatcher fails to take (`on_loss` returns an error) | none: the losses it reports are counted already; the error is in `last_error()` (`LOSS_REPORT_FAILED`) | [`sink::LossReport`] |
//! | a target's flush fails (writer sink) | none more: its lines were counted `delivered` when written to the target | [`sink::sinks::WriterSink`] |
//! | a new label set past a name's series limit (metrics registry) | none lost: recorded in the name's overflow series (`mvx_overflow="true"`), the request counted in `series_refused` | [`metrics::Registry`](metrics::Registry#series-limit) |
//! | a data chunk of the metricq bridge the broker does not confirm within the delivery timeout (its connection down that long, or refused), or whose confirmation is lost with its connection (feature `metricq`) | `failed` in the bridge's sink: its points (at most once: a chunk whose confirmation was lost may have been routed) | `agent::metricq` (data chunks are confirmed) |
//! | a data chunk a metricq `Sink`'s handler fails on | none lost: returned to the queue once and handed over again (`chunks_requeued`); failed again, dropped (`chunks_rejected`) | `agent::metricq::DataHandler` |
//! | a metric family would be exposed under a name another family takes (a source's histogram `x` beside its gauge `x_count`) | the family is left out of the scrape, which says so: the gauge `mvx_exposition_skipped_families`, `Encoded::skipped`; a registry refuses such instruments when they are registered | [`expose::text`](expose::text#collisions-no-sample-is-lost-silently) |
//!
//! # Features
//!
//! | feature | default | pulls in | enables |
//! |---|---|---|---|
//! | `thread` | yes | nothing | [`rt::thread`]: a dedicated thread with mvx's own executor |
//! | `smol` | yes | `smol` | [`rt::smol`]: run on your smol executor or on one on a thread |
//! | `persist` | no | nothing (its file I/O runs on `blocking`, which every build has: the writer sink's I/O does too) | `stats::FileStore`: the statistics' state in files, written atomically |
//! | `redis` | no | `redis` (its smol runtime; no tokio runtime), and `persist` | `stats::RedisStore`: the state on a Redis server; `sink::sinks::RedisStreamSink`: log events appended to a Redis stream |
//! | `log` | no | `log` (with `kv`) | `facade::log`: an `AsyncSink<LogEvent>` as the `log` crate's logger |
//! | `tracing` | no | `tracing-core`, `tracing-subscriber` (`registry`) | `facade::tracing`: `SinkLayer`, a `tracing_subscriber::Layer` feeding an `AsyncSink<LogEvent>` |
//! | `metrics` | no | `metrics` | `facade::metrics`: `RegistryRecorder`, a `metrics::Recorder` on mvx instruments in a `Registry` |
//! | `http` | no | `hyper` (HTTP/1.1 server and client), `http-body-util`, `bytes`, `smol-hyper` (hyper's I/O traits over async-io), and `thread` | `expose::http`: `MetricsServer`, `ThreadedMetricsServer`, `metrics_response`, `get_metrics_response` (the list of metrics as JSON at `/api/metrics`), `Format::negotiate`, `Selector::from_query`; `expose::discovery`: `ServiceDiscovery`, `ConsulAgent` |
//! | `tls` | no | `futures-rustls` and `rustls` with the `ring` provider, and `http` | HTTPS for the metrics server (`ServerConfig::tls`), `expose::rustls` |
//! | `signals` | no | `signal-hook` | SIGINT / SIGTERM for [`agent::Runner::run`] |
//! | `tokio` | no | `tokio` (`rt` only; mvx starts no runtime) | a blocking call on a tokio current-thread runtime that runs the driver it waits for returns `WouldDeadlock` instead of hanging ([which calls block](sink#which-calls-block)) |
//! | `metricq` | no | `lapin` 3 (AMQP 0-9-1; its default runtime: `async-io`'s reactor, `async-global-executor`, which starts threads of its own, and one I/O thread per connection; `amqps://` by rustls with the `ring` provider and the system's roots), `prost` (the data chunks), `url`; no tokio runtime | `agent::metricq`: MetricQ `Client`, `Source`, `Sink` agents, `RegistryBridge` |
//!
//! The text encoders ([`expose::text`]) need no feature: they are pure functions. Neither do
//! metric metadata and selectors ([`metrics::Metadata`], [`metrics::selector`]), which always
//! pull in `regex` (the selectors' regular expressions) and `form_urlencoded` (a selector
//! written as the query string of `/api/metrics`).
//!
//! # Coming from Crawlee, metricq, prometheus_async
//!
//! mvx brings these systems to Rust with their names and meanings first; what it adds is an
//! addition, under a name of its own. Each row's rules are in the module named.
//!
//! ## Crawlee
//!
//! Crawlee for Python 1.11's `crawlee.statistics` → [`stats`] (the rules: [Coming from
//! Crawlee](stats#coming-from-crawlee); checked side by side with the PyPI package).
//!
//! | Crawlee | mvx |
//! |---|---|
//! | `Statistics(persistence_enabled=True, persist_state_kvs_name=..., persist_state_key=...)` | [`stats::Statistics::new`] with [`stats::StatsConfig`]`::persist_to(store)`, `.store_name(..)`, `.persist_state_key(..)` |
//! | `async with statistics:` / its exit | [`stats::Statistics::start`] / [`stats::Statistics::stop`] |
//! | `record_request_processing_start(request_id_or_key=id)`, again for a retry | `record_request_processing_start(id)`, again for a retry; or `record_request_retry(id)` |
//! | `record_request_processing_finish` / `_failure` | `record_request_processing_finish` / `_failure` (and `_at(id, instant)` forms) |
//! | `register_status_code(code=...)` | `register_status_code(code)` |
//! | — (errors go to an error tracker, not persisted) | `register_error(kind)`, `register_retry_error(kind)`: counted in `errors`, `retry_errors` |
//! | `record_request_processing_deferral` | not provided |
//! | `calculate()` → `FinalStatistics` | [`stats::Statistics::calculate`] (a barrier) → [`stats::FinalStatistics`], same field names |
//! | `requests_finished_per_minute` (`round`), `requests_failed_per_minute` (`floor`) | the same, whole numbers (`u64`) |
//! | `crawler_runtime`, `retry_histogram` (`[0]` when empty) | the same |
//! | `state.requests_retries`: requests retried at least once, counted when they end | `requests_retries`, the same; every retry is `retry_attempts` (mvx's) |
//! | `state.request_min_duration` / `request_max_duration` (finished requests) | the same; failed requests' are `request_min_failed_duration` / `request_max_failed_duration` (mvx's) |
//! | `state.stats_id`, `crawler_started_at`, `crawler_last_started_at`, `crawler_finished_at`, `stats_persisted_at` | the same names in [`stats::StatisticsState`] |
//! | the persisted `StatisticsState` JSON (camelCase, `...Millis`, ISO 8601 times) | the same document; mvx's additions under the key `mvx` |
//! | key `__CRAWLER_STATISTICS_{id}`, `id` counting instances in the process | the same ([`stats::Statistics::id`], [`stats::Statistics::persist_state_key`]) |
//! | `FileSystemStorageClient`: `{CRAWLEE_STORAGE_DIR}/key_value_stores/{store}/{key}` | `stats::FileStore::crawlee(storage_dir)` (feature `persist`); `FileStore::new(root)` is mvx's own layout |
//! | `reset()` | [`stats::Statistics::reset`] |
//! | `log_interval`, `log_message`, `periodic_message_logger` (logs at the start, then every interval) | `log_interval`, `log_message`, [`stats::ReportTo`] (the `log` crate with the feature `log`, stderr without it; a sink; off), at the start, then every interval |
//! | `statistics_log_format='table'` | one line, `name=value` pairs |
//!
//! ## metricq
//!
//! metricq 5.4's `Agent` → [`agent`] (checked side by side with the PyPI package), the
//! manager's `get_metrics` → [`metrics::Selector`] (the rules:
//! [the filters](metrics::selector#the-filters-precisely)), and its clients on a network,
//! `Client`, `Source` and `Sink` → `agent::metricq` (feature `metricq`; the protocol's facts
//! and where each comes from are in its module docs; interoperating with the PyPI package's
//! clients over a real RabbitMQ is tested).
//!
//! | metricq | mvx |
//! |---|---|
//! | `Agent(token, url, connection_timeout=600)`; `run(catch_signals=("SIGINT", "SIGTERM"), cancel_on_exception=False)` | `Runner::new(agent, AgentConfig::default())` (`close_timeout` 600 s, `catch_signals`, `cancel_on_error`); `run()` |
//! | `connect()`, `teardown()`, `on_signal(signal)` overridden in a subclass | `impl Agent`: `connect(&handle)`, `teardown()`, `on_signal(signal, &handle)` |
//! | `run()` raises `ConnectFailed` from a failed `connect()` | `AgentError::ConnectFailed` (`CONNECT_FAILED`), teardown not run, in both |
//! | `await stop(exception, silent)`: the first call wins; waits for teardown; raises `AgentStopped` from the exception or from teardown's error unless `silent` | `stop_and_wait(error, silent).await`, the same; `stop(error, silent)` asks without waiting (callable from any thread) |
//! | `run()` / `stopped()` raise the stop's exception, silent or not; else teardown's error | `run()` / `stopped().await` return it: `AgentError::Stopped`, `TeardownFailed`, `TeardownTimedOut` |
//! | a `stop()` while `connect()` runs: teardown at once, `connect()` cancelled | the same; mvx drops the connect future before teardown starts (metricq cancels it when its loop closes) |
//! | default `on_signal`: SIGINT stops cleanly, any other signal raises `ReceivedSignal` from `run()` | `AgentHandle::stop_on_signal`: the same, `AgentError::ReceivedSignal { signal }` (`RECEIVED_SIGNAL`) |
//! | `get_metrics(selector=regex or [names], prefix=, infix=, historic=, hidden=, limit=, format=)` on the manager | `Registry::get_metrics(&Selector)`, `GET /api/metrics?...`: `Selector::regex` / `names`, `.prefix`, `.infix`, `.historic`, `.hidden`, `.limit`; `.metadata(false)` is the `array` format's names |
//! | the manager refuses `prefix` with `infix`, either with `selector`, an empty name list | `SelectorError::PrefixAndInfix`, `SelectorAndFix`, `EmptyNameList` (`INVALID_ARGUMENT`; HTTP 400) |
//! | `infix` matches from the start of a dot-separated component | the same (`infix=pu` does not select `host.cpu.load`) |
//! | `hidden=false` / `historic=false`: only documents storing the field | the same: `Metadata::get_hidden()` / `get_historic()` is `None` when not stored |
//! | names listed in CouchDB's collation (case-insensitive) | `selector::name_order`: the `limit` and `/api/metrics` follow it |
//! | metadata documents: any JSON values (`bounds: [0, 300]`) | `Metadata::field(key, value)` takes any `serde_json::Value` |
//! | `Client(token, url)`, `connect()`: the management connection and the `<token>-rpc` queue | `agent::metricq::Client`, run by a [`agent::Runner`]; `ClientHandle::connected().await` |
//! | `await rpc(function, **arguments)` (60 s timeout); `RPCError` | `ClientHandle::rpc(function, json!({..}))`, `rpc_with_timeout`, `rpc_agent`; `MetricqError::Rpc` (`RPC_ERROR`), `RpcTimedOut` (`RPC_TIMED_OUT`) |
//! | `@rpc_handler("config")`; `discover` answered by every client | `ClientHandle::handlers().register("config", ..)`; `discover` answered built in |
//! | `await client.get_metrics(selector, ...)` | `ClientHandle::get_metrics(&Selector)`: `Registry::get_metrics`' types; a selector the manager refuses is refused before it is sent |
//! | `Source`: `source.register`, `declare_metrics(...)`, `await send(metric, time, value)` | `agent::metricq::Source`; `SourceHandle::declare_metrics`, `send`, `send_chunk`; addition: `RegistryBridge` publishes a [`metrics::Registry`] at an interval through an mvx sink |
//! | data chunks published without confirmation | confirmed: a point is `delivered` once the broker confirmed its chunk (addition) |
//! | `Sink` (`add_uuid` to its token), `subscribe(metrics)`, `on_data(metric, timestamp, value)`, each message acknowledged after its points | `agent::metricq::Sink::new(config, metrics, handler)` with `MetricqConfig::add_uuid()`, `SinkHandle::subscribe`, `DataHandler::on_data`; the same acknowledgement |
//! | `HistoryClient` | not provided; the history messages are in `agent::metricq::proto` |
//!
//! ## prometheus_async
//!
//! | prometheus_async (`aio`) | mvx |
//! |---|---|
//! | `time(metric, future)` | [`timed`](instrument::InstrumentExt::timed): from when wrapped; observed on completion, panic and cancellation, as the `finally` does ([`instrument`]) |
//! | `count_exceptions(metric, future)`, `exc=BaseException` | [`count_errors`](instrument::InstrumentExt::count_errors): `Err`, panic, cancellation |
//! | `count_exceptions(..., exc=Exception)` or narrower | [`count_errors_if`](instrument::InstrumentExt::count_errors_if) with a closure (no cancellation), or with [`WithCancellation`](instrument::WithCancellation) |
//! | `track_inprogress(metric, future)` | [`track_in_progress`](instrument::InstrumentExt::track_in_progress): +1 when wrapped |
//! | `web.start_http_server`, `start_http_server_in_thread` | `expose::http::MetricsServer::start` (or `bind`), `ThreadedMetricsServer::start` |
//! | `GET /`, the page linking to `/metrics`; `server.url`, the root | the same page; `url()`, the root; addition: `metrics_url()` (`expose::http`) |
//! | `server.socket`, `https`, `is_registered`, `close()` | `local_addr()`, `is_https()`, `is_registered()`, `close()` |
//! | `web.server_stats` | `expose::http::metrics_response` |
//! | `sd.ConsulAgent(name, service_id, tags, token, deregister)` | `expose::discovery::ConsulAgent` with the same settings; a refused registration leaves the server running unregistered; addition: `registration_error()` |
//! | `ServiceDiscovery.register` → deregisterer or `None` | `ServiceDiscovery::register` → `Registration::Registered` or `Refused` |
//!
//! ## MVX (Python): AsyncioLogSink and the metrics recorder
//!
//! | MVX | mvx |
//! |---|---|
//! | `AsyncioLogSink`: `_dispatch_core`, `_on_starting`, `_on_stopped` | [`sink::AsyncSink`] over [`sink::Dispatch`]: `dispatch`, `on_starting`, `on_stopped` |
//! | `build_descriptor`, `configure_log_sink` | [`sink::Describe`], [`sink::SinkDescriptor`], [`sink::SinkRegistry::configure`] |
//! | `AsyncioLogSink.create()` → sink, terminator | [`rt::thread::create`] → sink, [`rt::Terminator`] |
//! | `queue_max_size`, `queue_overflow_policy` (`DROP`, `RAISE_ERROR`) | [`sink::SinkConfig::queue_capacity`], [`overflow`](sink::SinkConfig::overflow) ([`OverflowPolicy`](queue::OverflowPolicy) `Drop`, `RaiseError`; addition: `Block`) |
//! | `get_status()`, `AsyncioLogSinkState` | `state()`, [`State`] (the same strings) |
//! | wait handle → `AsyncioLogSinkOpResult(op_name, success, error)` | [`WaitHandle`] → [`OpResult`] `{ op, success, error }` |
//! | `AsyncioLogSinkErrorReason` | [`ErrorReason`]: the document's strings (`INVALID_LOG_SINK_STATE`, `DISPATCHER_UNEXPECTEDLY_CANCELLED`, `UNEXPECTED_ERROR`, …) |
//! | `AsyncioMetricsRecorder`, `get_metric_snapshots()` | [`metrics::MetricsRecorder`], [`snapshots()`](metrics::MetricsRecorder::snapshots) |
//! | `Metric.metric_name`, `handle_event`, `snapshot` | [`metrics::Metric`]: `name`, `handle_event`, `snapshot` |
//! | a snapshot, `{name, dimensions}` | [`metrics::Snapshot`], serialized so; addition: [`metrics::Detailed`] adds `kind` and `created` |
//!
//! # Layout
//!
//! One concept per module, and per file where a module is a folder (`mod.rs` holds the
//! module's main type; the other files are named for their part). Files stay under about
//! 500 lines; the few that do not say why in their module docs.
//!
//! | module | its concept | files |
//! |---|---|---|
//! | `sync` (private) | the primitives the core is built from, loom's under `--cfg loom`, and the one way mvx waits (`Wait`, `Signal`, `block_on`) | `driver_seat.rs` which thread polls a driver (a blocking wait that could only wait for itself is refused); `suppression.rs` the telemetry-suppression scope, public as [`facade::suppress`] |
//! | `calendar` (private) | day numbers to Gregorian dates and back, for the timestamps the core and the components write and read | |
//! | [`lifecycle`] | the states of a component, their transitions, the [`WaitHandle`] of an operation | |
//! | [`queue`] | the lanes (a ring per producer thread), the pending-event limit, overflow policies, the counters | |
//! | [`error`] | the core's errors, their reason codes, the shared [`error::Cause`] | `reason.rs`: [`ErrorReason`] and the macro that declares a component's reason enum |
//! | [`sink`] | `log(event)` in front of a dispatcher: [`sink::AsyncSink`] | `dispatch.rs` the trait users write; `driver.rs` the driver future; `shared.rs` what handles share with it; `wait.rs` the named waits; `config.rs`; `budget.rs` the poll budget (how long a busy driver keeps its executor); `loss.rs` loss reports; `restart.rs` the restart policy for dispatcher panics; `event.rs` [`sink::LogEvent`]; `format.rs` line formats; `registry.rs` one sink per backend resource; `sinks/` the built-in sinks: `writer.rs`, `memory.rs`, `redis/` (`entries.rs`, `delivery.rs`, `error.rs`) |
//! | [`rt`] | running a driver: on smol, on a thread of its own; the [`rt::Terminator`] | `thread.rs`, `smol.rs`; `tokio.rs` (feature `tokio`): whether a thread runs a tokio current-thread runtime |
//! | [`metrics`] | user-defined events aggregated by recorders; lock-free instruments; the registry that gathers them | `recorder.rs`, `runtime.rs`, `snapshot.rs`, `metadata.rs`, `selector.rs`; `instruments/`: `counter.rs`, `gauge.rs`, `histogram.rs`, `stripes.rs` (a histogram's per-thread state), `latency/` (the latency histogram: `mod.rs` its stripes and records, `layout.rs` the buckets and their error bound, `config.rs`, `distribution.rs` what is read, `hgrm.rs` HdrHistogram's text, `metric.rs` the recorder metric); `registry/`: the map (`mod.rs`), `series.rs` (labels and the series limit), `latency.rs` (latency histograms), `descriptions.rs` (metadata set on names), `listing.rs` (`get_metrics`), `exposed_names.rs` (the names a metric takes once exposed, and the index that refuses collisions), `error.rs` |
//! | [`stats`] | request statistics that survive restarts, as Crawlee's | `statistics.rs` the handle, its driver and the aggregating dispatcher; `state.rs`, `final_statistics.rs`, `event.rs`, `config.rs`, `error.rs`, `wait.rs`; `rounding.rs` Crawlee's arithmetic; `document/`: the persisted document (`mod.rs`), `iso8601.rs` its times and durations, `v1.rs` the shape earlier versions wrote; `persist.rs` load and save, `periodic.rs` timed saves and reports, `report.rs`; `store/`: [`stats::KeyValueStore`] (`mod.rs`), `memory.rs`, `file.rs` (mvx's layout and Crawlee's), `redis.rs` |
//! | [`instrument`] | adapters that time a future, count its errors, track it in progress | |
//! | [`expose`] | a registry as Prometheus or OpenMetrics text, served over HTTP | `sanitize.rs` names fitted to Prometheus; `text/`: the encoder (`mod.rs`), `families.rs` (snapshots to families, collisions left out), `skipped.rs` (their report), `write.rs` (families to text), `number.rs` (floats as the official clients write them); `http/`: `server.rs` (handle and driver), `connection.rs`, `config.rs`, `threaded.rs`, `response.rs` (`/metrics`), `negotiation.rs` (`Accept`), `api.rs` and `query.rs` (`/api/metrics`); `discovery.rs` |
//! | [`agent`] | the lifecycle of a long-running client: run until stopped, stop once, teardown reported; and (feature `metricq`) agents on a MetricQ network | `handle.rs`, `runner.rs`, `signals.rs`, `error.rs`; `metricq/`: `mod.rs` the protocol's facts, `config.rs`, `connection.rs` (an AMQP connection re-established when lost), `management.rs` (the management connection: RPCs out and in), `rpc.rs` (handlers and requests), `client.rs` (`Client`, `ClientHandle`), `metadata.rs` (metadata on the wire, `get_metrics`), `source.rs`, `publisher.rs` (`DataPoint`, `ChunkPublisher`), `bridge.rs` (`RegistryBridge`), `sink.rs`, `proto.rs` (data chunks), `time.rs`, `error.rs` |
//! | [`facade`] | mvx behind `log`, `tracing` and `metrics` | `log.rs`, `tracing.rs`, `metrics/` (`mod.rs` the recorder, `handles.rs` its handles) |
//!
//! Tests: one file per subject in `tests/`, shared helpers in `tests/support/` (README
//! says which is which).
//!
//! ## Departures from DESIGN.md
//!
//! DESIGN.md is the contract mvx started from; the code departs from it here, each time
//! for the reason given:
//!
//! - **The ring** is not a bounded `async-channel` but one single-producer ring (`rtrb`, a
//!   core dependency DESIGN.md does not list) per producer thread and sink (a *lane*), so
//!   that producers share no write and an event costs three plain stores and no locked
//!   instruction ([`queue`] explains); the driver's side of the barrier that makes this
//!   exact is Linux's `membarrier(2)`, through `rustix` (a core dependency on Linux only,
//!   which DESIGN.md does not list either). **The pending-event limit is therefore per producer thread**, not
//!   global as DESIGN.md has it: a sink with `N` producer threads holds at most
//!   `N × queue_capacity` pending events ([`queue`] has the bound and the memory).
//! - **`log()` waits for room under [`OverflowPolicy::Block`]**, where DESIGN.md has it
//!   never block and leaves waiting to `log_blocking` and `send`: a producer that chose
//!   `Block` asked to wait rather than lose an event or get it back. Under the other
//!   policies `log()` returns at once.
//! - **Reason codes are per component** ([`metrics::MetricsReason`], [`stats::StatsReason`],
//!   [`agent::AgentReason`], [`expose::ExposeReason`], the Redis sink's `RedisSinkReason`,
//!   the metricq client's `MetricqReason`),
//!   each carrying the core's [`ErrorReason`] when the failure is the core's, rather than
//!   one `ErrorReason` naming every component's failures: the core imports no component.
//!   The strings are unchanged.
//! - **Metadata and [`metrics::Selector`] are in `metrics`**, not `agent`: a selector is a
//!   query over a registry's names and metadata, and in `agent` it made `metrics` and
//!   `agent` import each other. `agent::Selector` stays as a re-export. Reading a selector
//!   from a query string is `expose::http`'s (`Selector::from_query`), beside
//!   `/api/metrics`, its only reader.
//! - **[`sink::Dispatch`] needs either method**, `dispatch` or `dispatch_batch`, not
//!   `dispatch` always: a backend that takes batches writes only the batch form.
//! - **[`rt::Terminator::terminate`] returns the final [`queue::QueueStats`]** (inside its
//!   error too), not only the first error: after the stop a caller has no other way to
//!   report them.
//! - **[`rt::Terminator::terminate`] has a deadline**, and past it detaches the runtime
//!   thread rather than joining it: a join waits for user code, which may block for ever
//!   (a write to a pipe nobody reads), and an exit that never comes loses everything.
//! - **The writer sink buffers within a batch, not across batches**: an event counts as
//!   delivered once its line is written, so each batch is written before it returns
//!   (one write per batch, on the blocking pool); a target that buffers is flushed every
//!   `flush_interval` under load.
//! - **[`sink::SinkConfig::start_timeout`]** is added, for the reason its docs give; so
//!   are [`poll_budget`](sink::SinkConfig::poll_budget),
//!   [`loss_report_interval`](sink::SinkConfig::loss_report_interval) and
//!   [`restart`](sink::SinkConfig::restart), and [`queue::QueueStats`] counts `refused`
//!   events and `restarts`.
//! - **`Stopping → Failure`** is a transition, and `Running → Failure` is a panic, not an
//!   error (dispatch errors are counted, not fatal): a dispatcher may panic while a stop
//!   drains.
//! - **[`agent::AgentHandle::stop`] takes `(error, silent)`**, as metricq's does, with its
//!   meaning: `run()` returns the error either way; `silent` keeps only the awaited form,
//!   [`agent::AgentHandle::stop_and_wait`], from returning it.
//! - **Statistics report by default** ([`stats::ReportTo::Default`]: the `log` crate, or
//!   standard error without the `log` feature), where DESIGN.md reports through a log sink:
//!   Crawlee logs its statistics by default, and a log sink is one destination among
//!   others.
//! - **Statistics persist only to a store they are given**
//!   ([`stats::StatsConfig::persist_to`]), not to a file store by default: `FileStore` is
//!   behind the `persist` feature (its file I/O needs the `blocking` crate), so a default
//!   build has no file store to default to.
//! - **[`track_in_progress`](instrument::InstrumentExt::track_in_progress) counts from
//!   when the future is wrapped**, not from its first poll, as prometheus_async's
//!   `track_inprogress(metric, future)` does (see [`instrument`]).
//! - **`ServiceDiscovery::register` answers with a `Registration`**, registered or
//!   refused, not only a deregistration: a refused registration leaves the server running
//!   unregistered, as prometheus_async's does (see `expose::discovery`).
//! - **Files**: `stats/store/` rather than `stores/`, named for the concept it holds
//!   ([`stats::KeyValueStore`]); and folders where a concept has parts that would make one
//!   file too long to read in a sitting: `error/`, `metrics/instruments/`,
//!   `metrics/registry/`, `expose/text/`, `sink/sinks/redis/`, `facade/metrics/`.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

// The components above the core that the loom models do not reach (their timers and I/O
// come from async-io, which has no loom counterpart) are left out of `--cfg loom` builds.
#[cfg(not(loom))]
pub mod agent;
mod calendar;
pub mod error;
#[cfg(not(loom))]
pub mod expose;
#[cfg(not(loom))]
pub mod facade;
#[cfg(not(loom))]
pub mod instrument;
pub mod lifecycle;
pub mod metrics;
pub mod queue;
pub mod rt;
pub mod sink;
#[cfg(not(loom))]
pub mod stats;
mod sync;

/// What the loom models (`tests/loom_*.rs`) drive besides the public API: the core's own
/// wake-up primitive, a terminator whose runtime thread is a loom thread, the end of a
/// sink from outside its driver that a terminator makes past its deadline (called directly:
/// loom has no clock), and a latency record into a given stripe. Exists only under
/// `--cfg loom`.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::sync::{Signal, Waiting};

    use crate::error::TerminateError;
    use crate::queue::QueueStats;
    use crate::rt::{RuntimeThread, Terminator};
    use crate::sink::{AsyncSink, Driver};

    /// A terminator for `sink` whose runtime thread is a loom thread polling `driver` to
    /// completion: what `rt::thread::create` returns, without its executor, which loom
    /// cannot run. The driver returns once the sink has ended, so there is nothing to shut
    /// down; terminating stops the sink and joins the thread, as it does there.
    pub fn terminator<E: Send + 'static>(sink: &AsyncSink<E>, driver: Driver) -> Terminator {
        let runtime = RuntimeThread::spawn(
            "mvx-loom".into(),
            move || loom::future::block_on(driver),
            || {},
        )
        .expect("loom spawns threads");
        Terminator::new(sink.clone(), runtime)
    }

    /// Terminates as a terminator does when its deadline passes at once: requests the
    /// stop, ends the sink from outside its driver (unless the driver ended it first),
    /// then joins the runtime thread — which the driver must leave on its own.
    pub fn terminate_past_deadline(terminator: &Terminator) -> Result<QueueStats, TerminateError> {
        terminator.terminate_past_deadline()
    }

    /// Records `nanos` into stripe `stripe` of `histogram` as a thread that owns it does (or,
    /// for stripe 0, as threads share it): loom runs its threads on one OS thread, so they
    /// would share one thread-local stripe number, which real threads never do.
    pub fn record_latency_in_stripe(
        histogram: &crate::metrics::LatencyHistogram,
        stripe: usize,
        nanos: u64,
    ) {
        histogram.record_nanos_in_stripe(stripe, nanos);
    }

    /// Ends `sink` from outside its driver, as a terminator past its deadline does; returns
    /// how many events were abandoned, or `None` when the sink had ended already.
    pub fn end_from_outside<E: Send + 'static>(sink: &AsyncSink<E>) -> Option<u64> {
        sink.end_from_outside(std::time::Duration::ZERO)
            .map(|ended| ended.abandoned)
    }
}

pub use crate::error::{BoxError, ErrorReason};
pub use crate::lifecycle::{Op, OpResult, State, WaitHandle};
