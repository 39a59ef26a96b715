//! Every example in `examples/` runs here.
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart_delivers_every_event_and_stops_clean() {
    let summary = quickstart::run(4, 5_000).unwrap();
    assert_eq!(summary.lines, 20_000);
    let stats = summary.stats;
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.failed,
            stats.dropped,
            stats.pending
        ),
        (20_000, 20_000, 0, 0, 0)
    );
}

#[test]
fn quickstart_main_runs() {
    quickstart::main().unwrap();
}

#[path = "../examples/manual_recorder_lifecycle.rs"]
mod manual_recorder_lifecycle;

/// What `cargo run --example manual_recorder_lifecycle` prints, all of it: the refused
/// construction, then the snapshots in the shape of the MVX document's example,
/// `{name, dimensions}` under the metric's name (the dimensions in name order, as the
/// document's Python program prints them with `pprint`).
const MANUAL_RECORDER_OUTPUT: &str = r#"recorder creation failed: no running executor (EVENT_LOOP_UNAVAILABLE: the executor refused to run the driver: it has shut down)
{
  "document_storage.save.attempts": {
    "name": "document_storage.save.attempts",
    "dimensions": {
      "failure_total": 1,
      "success_total": 2,
      "total": 3
    }
  }
}
"#;

#[test]
fn manual_recorder_lifecycle_prints_the_documented_output() {
    assert_eq!(
        manual_recorder_lifecycle::output().unwrap(),
        MANUAL_RECORDER_OUTPUT
    );
    manual_recorder_lifecycle::main().unwrap();
}

/// The example's binary prints that and nothing else.
#[test]
fn manual_recorder_lifecycle_binary_prints_the_documented_output() {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let binary = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps")
        .join("examples")
        .join("manual_recorder_lifecycle");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds it; alone, run \
         `cargo build --example manual_recorder_lifecycle` first",
        binary.display()
    );
    let output = std::process::Command::new(&binary)
        .output()
        .expect("the example runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).expect("UTF-8"),
        MANUAL_RECORDER_OUTPUT
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[path = "../examples/metrics_runtime.rs"]
mod metrics_runtime;

#[test]
fn metrics_runtime_aggregates_every_event_from_every_thread() {
    let (http, cache) = metrics_runtime::run(4, 2_000).unwrap();
    let requests = &http["http.requests"];
    assert_eq!(requests.get("total"), Some(8_000u64.into()));
    assert_eq!(requests.get("errors_total"), Some(800u64.into()));
    let lookups = &cache["cache.lookups"];
    assert_eq!(lookups.get("hits_total"), Some(6_000u64.into()));
    assert_eq!(lookups.get("misses_total"), Some(2_000u64.into()));
    metrics_runtime::main().unwrap();
}

#[path = "../examples/soak.rs"]
#[allow(dead_code)] // `main`: the test calls `run_with_args`, which is all of it but `env::args`.
mod soak;

/// The soak, for two seconds: about 20 start/stop cycles under overflow with every policy,
/// the accounting checked after each (`run` fails at the first mismatch). The 10-minute run
/// is recorded in BENCHMARKS.md.
#[test]
fn soak_checks_the_accounting_of_every_cycle() {
    let summary = soak::run_with_args(&["2".into(), "1".into()]).unwrap();
    assert!(summary.cycles >= 3, "{summary:?}");
    let totals = summary.totals;
    assert!(totals.accepted > 0, "{summary:?}");
    assert_eq!(totals.accepted, totals.delivered + totals.failed);
    assert!(
        totals.failed > 0,
        "the backend fails some events: {summary:?}"
    );
    assert!(!summary.samples.is_empty());
    assert!(
        soak::run_with_args(&["two".into()]).is_err(),
        "a bad duration is an error"
    );
    if cfg!(target_os = "linux") {
        let (rss_kib, threads) = soak::resident_memory_and_threads();
        assert!(rss_kib > 0 && threads > 0);
    }
}

#[path = "../examples/terminate_deadline.rs"]
#[allow(dead_code)] // `main`: the tests call `run` with writers of their own; the child
// process of tests/sink_terminate_deadline.rs runs `main` into a pipe nobody reads.
mod terminate_deadline;

/// A `Write` that blocks every write until the gate opens: a pipe nobody reads.
struct Stuck(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl std::io::Write for Stuck {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (open, changed) = &*self.0;
        let open = open.lock().unwrap();
        let _open = changed.wait_while(open, |open| !*open).unwrap();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stuck writer: the terminate ends at its deadline, every event counted, most of them
/// failed. A writer that keeps up: every event delivered, no timeout.
#[test]
fn terminate_deadline_ends_on_time_and_counts_what_it_lost() {
    use mvx::ErrorReason;
    use mvx::error::{TerminateError, TerminateStage};
    use mvx::sink::sinks::WriterSink;

    let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let writer = WriterSink::writer("stuck", Stuck(gate.clone()));
    let summary = terminate_deadline::run(writer, 1_000, terminate_deadline::DEADLINE).unwrap();
    match &summary.outcome {
        Err(TerminateError::TimedOut {
            stage, abandoned, ..
        }) => {
            assert_eq!(*stage, TerminateStage::Dispatch);
            // The first batch is stuck in its write, the rest queued behind it.
            assert_eq!(*abandoned, 1_000);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let error = summary.outcome.as_ref().unwrap_err();
    assert_eq!(error.reason(), ErrorReason::TerminateTimedOut);
    let stats = error.stats().unwrap();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.failed, stats.pending),
        (1_000, 0, 1_000, 0)
    );
    let report = summary.report();
    assert!(
        report.starts_with("terminate_deadline: TERMINATE_TIMED_OUT after "),
        "{report}"
    );
    assert!(
        report.ends_with("(dispatching, 1000 abandoned); accepted=1000 delivered=0 failed=1000 dropped=0 refused=0 pending=0 capacity=1000 high_watermark=1000 restarts=0"),
        "{report}"
    );
    let (open, changed) = &*gate;
    *open.lock().unwrap() = true;
    changed.notify_all();

    let summary = terminate_deadline::run(
        WriterSink::writer("sink", std::io::sink()),
        1_000,
        // A deadline a writer that keeps up never reaches.
        watchdog::GUARD,
    )
    .unwrap();
    let stats = summary.outcome.unwrap();
    assert_eq!(
        (stats.accepted, stats.delivered, stats.failed, stats.pending),
        (1_000, 1_000, 0, 0)
    );
}

#[cfg(feature = "persist")]
#[path = "../examples/request_statistics.rs"]
mod request_statistics;

/// Two runs on one store: every request of each is counted, periodic reports were
/// printed, and the second run resumed the counts of the first.
#[cfg(feature = "persist")]
#[test]
fn request_statistics_counts_every_request_and_resumes_them() {
    let storage = tempfile::tempdir().unwrap();
    let expected = request_statistics::expected(300);
    assert!(
        expected.failed > 0 && expected.retry_attempts > expected.requests_retries,
        "the simulation fails and retries some, some more than once"
    );
    let counts = |figures: &mvx::stats::FinalStatistics| request_statistics::Expected {
        finished: figures.requests_finished,
        failed: figures.requests_failed,
        requests_retries: figures.requests_retries,
        retry_attempts: figures.retry_attempts,
    };

    let first = request_statistics::run(storage.path(), 300, 4).unwrap();
    assert_eq!(first.resumed_from, 0);
    let figures = &first.figures;
    assert_eq!(counts(figures), expected);
    assert_eq!(figures.requests_in_progress, 0);
    assert_eq!(figures.retry_histogram.iter().sum::<u64>(), 300);
    assert!(first.reports >= 1);
    // In Crawlee's layout, under the key of a Python crawler's first statistics.
    assert!(
        storage
            .path()
            .join("key_value_stores/default")
            .join(request_statistics::KEY)
            .is_file()
    );

    let second = request_statistics::run(storage.path(), 300, 4).unwrap();
    assert_eq!(second.resumed_from, 300);
    assert_eq!(
        counts(&second.figures),
        request_statistics::Expected {
            finished: 2 * expected.finished,
            failed: 2 * expected.failed,
            requests_retries: 2 * expected.requests_retries,
            retry_attempts: 2 * expected.retry_attempts,
        }
    );
    assert!(second.figures.crawler_runtime > first.figures.crawler_runtime);

    request_statistics::main().unwrap();
}

#[cfg(feature = "http")]
#[path = "../examples/bench_harness.rs"]
#[allow(dead_code)] // `main`: the test gives its options to `Options::parse` itself.
mod bench_harness;

#[cfg(feature = "http")]
#[path = "support/http_client.rs"]
mod http_client;

/// The bench harness for two seconds: live figures on `/metrics` while the load runs, a
/// line each second, the report, and both `.hgrm` tables in HdrHistogram's format, each
/// consistent with what was recorded.
#[cfg(feature = "http")]
#[test]
fn bench_harness_reports_serves_and_writes_hdrhistogram_tables() {
    watchdog::within_guard(|| {
        let directory = tempfile::tempdir().unwrap();
        let hgrm = directory.path().join("run.hgrm");
        let arguments = ["--seconds", "2", "--clients", "3", "--hgrm"]
            .map(String::from)
            .into_iter()
            .chain([hgrm.display().to_string()])
            .collect::<Vec<_>>();
        let options = bench_harness::Options::parse(&arguments).unwrap();
        assert!(bench_harness::Options::parse(&["--seconds".into()]).is_err());
        assert!(bench_harness::Options::parse(&["--rate".into(), "1".into()]).is_err());
        let harness = bench_harness::Harness::start(options).unwrap();

        // Live: the summaries are served, and their counts grow while the load runs.
        let url = harness.metrics_url().to_owned();
        assert!(url.ends_with("/metrics"), "{url}");
        let served_count = || {
            let answer = http_client::get(harness.local_addr(), "/metrics").unwrap();
            assert_eq!(answer.status, 200);
            let body = answer.body;
            assert!(
                body.contains("# TYPE harness_request_seconds summary\n"),
                "{body}"
            );
            assert!(
                body.contains("# TYPE harness_request_corrected_seconds summary\n"),
                "{body}"
            );
            sample(&body, "harness_request_seconds_count")
        };
        watchdog::wait_until(|| served_count() > 0);
        let first = served_count();
        watchdog::wait_until(|| served_count() > first);
        let answer = http_client::get(harness.local_addr(), "/metrics").unwrap();
        let quantile = sample_f64(&answer.body, "harness_request_seconds{quantile=\"0.99\"}");
        assert!(quantile > 0.0, "{}", answer.body);

        let mut out = Vec::new();
        let summary = harness.run(&mut out).unwrap();
        let output = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        let (latency, corrected) = (&summary.latency, &summary.corrected);
        let count = latency.count();
        assert!(count > 0);
        // The correction only adds records.
        assert!(corrected.count() >= count);

        assert!(
            lines[0].starts_with(
                "bench_harness: 3 clients, one request every 1000 µs each, for 2 s; \
                 live figures on http://127.0.0.1:"
            ),
            "{output}"
        );
        assert!(lines[0].ends_with(&url), "{output}");
        // A line each second, with running totals.
        assert!(
            lines[1].starts_with("[##########..........]   1/2 s "),
            "{output}"
        );
        assert!(
            lines[2].starts_with("[####################]   2/2 s "),
            "{output}"
        );
        let totals: Vec<u64> = lines[1..3]
            .iter()
            .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(totals[0] <= totals[1] && totals[1] <= count, "{output}");
        // The report: both histograms, as the distributions read them.
        assert!(
            lines[3].starts_with(&format!("{count} requests in ")),
            "{output}"
        );
        assert!(lines[3].ends_with("; latency within 0.78 %"), "{output}");
        let millis = |value: Option<std::time::Duration>| {
            format!("{:.3} ms", value.unwrap().as_secs_f64() * 1e3)
        };
        let rows = [
            ("min", latency.min(), corrected.min()),
            ("p50", latency.quantile(0.5), corrected.quantile(0.5)),
            ("p90", latency.quantile(0.9), corrected.quantile(0.9)),
            ("p99", latency.quantile(0.99), corrected.quantile(0.99)),
            ("p99.9", latency.quantile(0.999), corrected.quantile(0.999)),
            (
                "p99.99",
                latency.quantile(0.9999),
                corrected.quantile(0.9999),
            ),
            ("max", latency.max(), corrected.max()),
            ("mean", latency.mean(), corrected.mean()),
        ];
        assert_eq!(
            lines[4].split_whitespace().collect::<Vec<_>>(),
            ["as", "measured", "corrected"]
        );
        for (line, (name, measured, with_correction)) in lines[5..13].iter().zip(rows) {
            let expected = format!(
                "{name:>8} {:>14} {:>14}",
                millis(measured),
                millis(with_correction)
            );
            assert_eq!(*line, expected, "{output}");
        }
        assert_eq!(
            lines[13].split_whitespace().collect::<Vec<_>>(),
            ["count", &count.to_string(), &corrected.count().to_string()],
            "{output}"
        );
        let corrected_hgrm = directory.path().join("run.corrected.hgrm");
        assert_eq!(summary.hgrm, [hgrm.clone(), corrected_hgrm.clone()]);
        assert_eq!(
            lines[14],
            format!(
                "percentile tables (µs): {} and {}; plot them with HdrHistogram's plotter, \
                 https://hdrhistogram.github.io/HdrHistogram/plotFiles.html",
                hgrm.display(),
                corrected_hgrm.display()
            )
        );
        assert_eq!(lines.len(), 15, "{output}");

        for (path, distribution) in [(&hgrm, latency), (&corrected_hgrm, corrected)] {
            let text = std::fs::read_to_string(path).unwrap();
            let table = Hgrm::parse(&text).unwrap_or_else(|error| panic!("{error}:\n{text}"));
            assert_eq!(table.total_count, distribution.count(), "{text}");
            assert_eq!(table.rows.last().unwrap().total_count, distribution.count());
            assert_eq!(
                table.rows.len(),
                distribution.percentiles(5).count(),
                "{text}"
            );
            let micros = |value: std::time::Duration| value.as_nanos() as f64 / 1e3;
            assert_eq!(
                format!("{:.2}", table.max),
                format!("{:.2}", micros(distribution.max().unwrap()))
            );
            assert_eq!(table.max, table.rows.last().unwrap().value);
            let mean = distribution.sum_nanos() as f64 / distribution.count() as f64 / 1e3;
            assert_eq!(format!("{:.2}", table.mean), format!("{mean:.2}"));
            assert!(table.std_deviation >= 0.0);
            assert_eq!((table.buckets, table.sub_buckets), (35, 256));
            // Each row is a step of the distribution's percentile report, and holds at least
            // its percentile of the records.
            for (row, step) in table.rows.iter().zip(distribution.percentiles(5)) {
                assert_eq!(
                    (
                        format!("{:.2}", row.value),
                        format!("{:.12}", row.percentile),
                        row.total_count
                    ),
                    (
                        format!("{:.2}", micros(step.value)),
                        format!("{:.12}", step.quantile),
                        step.count
                    )
                );
                let fraction = row.total_count as f64 / distribution.count() as f64;
                assert!(fraction >= row.percentile - 1e-9, "{row:?}");
            }
        }
    });
}

/// The value of the sample `name` (with its labels, if any) in `text`.
#[cfg(feature = "http")]
fn sample_f64(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// [`sample_f64`] for a count.
#[cfg(feature = "http")]
fn sample(text: &str, name: &str) -> u64 {
    sample_f64(text, name) as u64
}

/// An HdrHistogram percentile distribution (`.hgrm`), as its plotting tools read it.
#[cfg(feature = "http")]
#[derive(Debug)]
struct Hgrm {
    rows: Vec<HgrmRow>,
    mean: f64,
    std_deviation: f64,
    max: f64,
    total_count: u64,
    buckets: u64,
    sub_buckets: u64,
}

/// A row of the table: `Value Percentile TotalCount 1/(1-Percentile)`.
#[cfg(feature = "http")]
#[derive(Debug)]
struct HgrmRow {
    value: f64,
    percentile: f64,
    total_count: u64,
}

#[cfg(feature = "http")]
impl Hgrm {
    /// Reads the header, the rows (non-decreasing, from percentile 0 to 1, the last without
    /// `1/(1-Percentile)`) and the footer; says what is wrong otherwise.
    fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().ok_or("empty")?.split_whitespace().collect();
        if header != ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
            return Err(format!("header {header:?}"));
        }
        if lines.next() != Some("") {
            return Err("no empty line after the header".into());
        }
        let number = |field: &str| {
            field
                .parse::<f64>()
                .map_err(|error| format!("{field}: {error}"))
        };
        let mut rows: Vec<HgrmRow> = Vec::new();
        let mut footer = Vec::new();
        for line in lines {
            if line.starts_with("#[") {
                footer.push(line);
                continue;
            }
            if !footer.is_empty() {
                return Err(format!("a row after the footer: {line}"));
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let row = HgrmRow {
                value: number(fields[0])?,
                percentile: number(fields[1])?,
                total_count: fields[2]
                    .parse()
                    .map_err(|error| format!("{line}: {error}"))?,
            };
            match fields.len() {
                4 => {
                    let inverse = number(fields[3])?;
                    let expected = 1.0 / (1.0 - row.percentile);
                    if (inverse - expected).abs() > 0.005 + 1e-9 * expected {
                        return Err(format!("{line}: 1/(1-Percentile) is {expected}"));
                    }
                }
                3 if row.percentile == 1.0 => {}
                _ => return Err(format!("row {line:?}")),
            }
            if let Some(previous) = rows.last() {
                if row.value < previous.value
                    || row.percentile < previous.percentile
                    || row.total_count < previous.total_count
                {
                    return Err(format!("{line}: decreases"));
                }
            }
            rows.push(row);
        }
        if rows.first().map(|row| row.percentile) != Some(0.0)
            || rows.last().map(|row| row.percentile) != Some(1.0)
        {
            return Err("the rows do not go from percentile 0 to 1".into());
        }
        // `#[Mean    = 25.68, StdDeviation   = 154.38]`: the numbers after each `=`.
        let pairs = |line: &str, names: [&str; 2]| -> Result<[f64; 2], String> {
            let inner = line
                .strip_prefix("#[")
                .and_then(|line| line.strip_suffix(']'))
                .ok_or_else(|| format!("footer {line}"))?;
            let mut values = [0.0; 2];
            for (i, (part, expected)) in inner.split(',').zip(names).enumerate() {
                let (name, value) = part
                    .split_once('=')
                    .ok_or_else(|| format!("footer {line}"))?;
                if name.trim() != expected {
                    return Err(format!("footer {line}: {expected} expected"));
                }
                values[i] = number(value.trim())?;
            }
            Ok(values)
        };
        let [mean, std_deviation] =
            pairs(footer.first().ok_or("no footer")?, ["Mean", "StdDeviation"])?;
        let [max, total_count] =
            pairs(footer.get(1).ok_or("no Max line")?, ["Max", "Total count"])?;
        let [buckets, sub_buckets] = pairs(
            footer.get(2).ok_or("no Buckets line")?,
            ["Buckets", "SubBuckets"],
        )?;
        if footer.len() != 3 {
            return Err(format!("{} footer lines", footer.len()));
        }
        Ok(Self {
            rows,
            mean,
            std_deviation,
            max,
            total_count: total_count as u64,
            buckets: buckets as u64,
            sub_buckets: sub_buckets as u64,
        })
    }
}

#[cfg(feature = "http")]
#[path = "../examples/expose_http.rs"]
mod expose_http;

#[cfg(feature = "http")]
#[test]
fn expose_http_scrapes_instruments_and_the_recorder() {
    let scrape = expose_http::run(8, 9).unwrap();
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        scrape.url.starts_with("http://127.0.0.1:"),
        "{}",
        scrape.url
    );
    let body = &scrape.body;
    // Requests 3 and 7 failed; every request was timed; none is in progress any more.
    assert!(body.contains("\nhttp_request_errors_total 2\n"), "{body}");
    assert!(body.contains("\nhttp_request_seconds_count 8\n"), "{body}");
    assert!(
        body.contains("\nhttp_request_seconds_bucket{le=\"+Inf\"} 8\n"),
        "{body}"
    );
    assert!(body.contains("\nhttp_requests_in_progress 0.0\n"), "{body}");
    // The recorder: lookups 0, 3 and 6 missed.
    assert!(body.contains("\ncache_lookups_hits_total 6\n"), "{body}");
    assert!(body.contains("\ncache_lookups_misses_total 3\n"), "{body}");
    assert!(
        body.contains("# TYPE http_request_seconds histogram\n"),
        "{body}"
    );
    expose_http::main().unwrap();
}

#[cfg(all(feature = "metrics", feature = "http"))]
#[path = "../examples/metrics_facade.rs"]
mod metrics_facade;

/// The `metrics` macros of four threads land in the registry and are served with their
/// labels; the example installs its recorder once per process, so `main` adds to the counts.
#[cfg(all(feature = "metrics", feature = "http"))]
#[test]
fn metrics_facade_serves_the_macros_counts_with_their_labels() {
    let scrape = metrics_facade::run(4, 1_000).unwrap();
    assert_eq!(scrape.status, 200);
    let body = &scrape.body;
    // The example's application: every 4th request a POST, every 10th (the 9th of ten) a
    // 500; the counts per label set follow, for each of the 4 workers.
    let count = |code: &str, method: &str| -> u64 {
        (0..1_000u64)
            .filter(|request| {
                let m = if request % 4 == 0 { "POST" } else { "GET" };
                let c = if request % 10 == 9 { "500" } else { "200" };
                m == method && c == code
            })
            .count() as u64
            * 4
    };
    for (code, method) in [("200", "GET"), ("500", "GET"), ("200", "POST")] {
        let line = format!(
            "\nhttp_requests_total{{code=\"{code}\",method=\"{method}\"}} {}\n",
            count(code, method)
        );
        assert!(body.contains(&line), "{line:?} not in:\n{body}");
    }
    assert!(
        !body.contains("code=\"500\",method=\"POST\""),
        "no POST fails: {body}"
    );
    assert!(
        body.contains("\nhttp_request_seconds_count{method=\"GET\"} 3000\n"),
        "{body}"
    );
    assert!(
        body.contains("\nhttp_request_seconds_bucket{method=\"POST\",le=\"0.25\"} "),
        "the recorder's buckets for this histogram: {body}"
    );
    assert!(body.contains("\nhttp_requests_in_flight 0.0\n"), "{body}");
    metrics_facade::main().unwrap();
}

#[cfg(all(feature = "tracing", feature = "redis"))]
#[path = "../examples/tracing_to_redis.rs"]
#[allow(dead_code)]
// `main`: it only reads the URL from MVX_REDIS_URL; the test calls `run_and_print` with its server's.
mod tracing_to_redis;

#[cfg(all(feature = "tracing", feature = "redis"))]
#[path = "support/redis_server.rs"]
mod redis_server;

/// Every `INFO` and `WARN` event of the simulated requests is an entry of the stream, in
/// order, with its span's fields; `DEBUG` ones are filtered out by the layer.
#[cfg(all(feature = "tracing", feature = "redis"))]
#[test]
fn tracing_to_redis_puts_every_event_in_the_stream() {
    let (url, _server) = redis_server::shared();
    let stream = format!("mvx-test:example:{}", std::process::id());
    let summary = tracing_to_redis::run(&url, &stream, 50).unwrap();
    let stats = summary.stats;
    // 50 `order stored` and 10 `payment provider slow`.
    assert_eq!(
        (stats.accepted, stats.delivered, stats.failed, stats.dropped),
        (60, 60, 0, 0)
    );
    assert_eq!(summary.refused, 0);
    assert_eq!(summary.entries.len(), 60);
    let events: Vec<serde_json::Value> = summary
        .entries
        .iter()
        .map(|(_, fields)| serde_json::from_str(&fields["event"]).unwrap())
        .collect();
    let warning = &events[4]; // requests 0 to 3 stored, then request 4 warns
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["message"], "payment provider slow");
    assert_eq!(warning["fields"]["id"], 4);
    assert_eq!(warning["fields"]["span"], "request");
    let stored = &events[5];
    assert_eq!(
        (
            stored["message"].as_str(),
            stored["fields"]["id"].as_u64(),
            stored["fields"]["items"].as_i64()
        ),
        (Some("order stored"), Some(4), Some(2))
    );
    assert_eq!(stored["fields"]["path"], "/orders");
    assert!(events.iter().all(|event| event["level"] != "DEBUG"));
    tracing_to_redis::remove(&url, &stream).unwrap();
    let left: u64 = redis::cmd("EXISTS")
        .arg(&stream)
        .query(&mut redis_server::connect(&url))
        .unwrap();
    assert_eq!(left, 0);
    tracing_to_redis::run_and_print(&url).unwrap();
}

#[cfg(any(all(feature = "tracing", feature = "redis"), feature = "metricq"))]
#[path = "support/free_port.rs"]
mod free_port;
#[cfg(feature = "metricq")]
#[path = "support/metricq_peer.rs"]
mod metricq_peer;
#[cfg(feature = "metricq")]
#[path = "support/rabbitmq.rs"]
mod rabbitmq;

#[cfg(feature = "metricq")]
#[path = "../examples/metricq_source.rs"]
#[allow(dead_code)]
// `main`: it only reads the URL from MVX_AMQP_URL; the test calls `run` with the broker's.
mod metricq_source;

/// The example publishes to the broker at `MVX_AMQP_URL` (`.ci/test` starts one, with the
/// test manager on it) and examples/metricq_sink.py, the Python package's sink, prints its
/// points; every point the example logged is delivered.
#[cfg(feature = "metricq")]
#[test]
fn metricq_source_reaches_the_python_sink() {
    watchdog::within_guard(|| {
        let url = metricq_peer::shared_manager().to_owned();
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/metricq_sink.py"
        ));
        let args = ["--count", "4", &url, "example.requests", "example.load"];
        let sink = metricq_peer::Peer::script(script, &args, "examples/metricq_sink.py");
        assert_eq!(sink.next_line(), "subscribed");
        let summary = metricq_source::run(&url, "source-mvx-example-test", 5).unwrap();
        let stats = summary.stats;
        assert_eq!(
            (stats.delivered, stats.failed, stats.pending),
            (stats.accepted, 0, 0)
        );
        // 9 points a tick: the counter, the gauge, the histogram's count, sum, nan and 4 buckets.
        assert_eq!(stats.accepted % 9, 0, "{stats}");
        let printed: Vec<String> = (0..4).map(|_| sink.next_line()).collect();
        assert!(sink.finish());
        for line in &printed {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert!(
                ["example.requests", "example.load"].contains(&fields[0]),
                "{line}"
            );
            assert!(
                fields[1].parse::<i64>().unwrap() > 1_600_000_000_000_000_000,
                "{line}"
            );
            let value: f64 = fields[2].parse().unwrap();
            assert!((0.0..=500.0).contains(&value), "{line}");
        }
    });
}
