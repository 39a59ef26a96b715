//! The official Prometheus tools that exposition tests hold mvx's text against: Python with
//! the official client (`prometheus_client`: its writers and both its parsers) and
//! `promtool check metrics`; and Python for the packages other tests run side by side with
//! mvx (`prometheus_async` with `aiohttp`). `.ci/test` installs them; a missing tool or
//! package fails the test with the command that installs it.
//!
//! Include it with `#[path = "support/prometheus_tools.rs"] mod prometheus_tools;`.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `python3 -c script args…` with `stdin` on its standard input.
pub fn run_python(script: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "python3 is required for this test and could not be run ({error}); \
                 install it and then `python3 -m pip install prometheus_client` (.ci/test does)"
            )
        });
    let mut input = child.stdin.take().expect("stdin");
    // Written from a thread of its own: a script that prints while it reads must not
    // deadlock on a full pipe.
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().expect("python3 ran");
    writer.join().expect("stdin writer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some((_, rest)) = stderr.split_once("No module named '") {
        let module = rest.split('\'').next().unwrap_or_default();
        panic!(
            "the Python package {module} is required for this test: \
             run `python3 -m pip install {module}` (.ci/test does)"
        );
    }
    output
}

/// [`run_python`], which must succeed; its standard output.
pub fn python(script: &str, args: &[&str], stdin: &str) -> String {
    let output = run_python(script, args, stdin);
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Parses the text on standard input with the parser named by `sys.argv[1]` (`openmetrics`
/// or `prometheus`) and prints one JSON list per family — `["family", name, type, unit,
/// help]` — followed by one per sample: `["sample", name, labels, value]`.
pub const PARSE_STDIN: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(json.dumps(["family", family.name, family.type, family.unit, family.documentation]))
    for sample in family.samples:
        print(json.dumps(["sample", sample.name, sample.labels, repr(sample.value)]))
"#;

/// One parsed family and its samples: `(name, type, unit, help)` and
/// `(sample name, labels, value as Python's repr)`.
pub type ParsedFamily = (
    (String, String, String, String),
    Vec<(String, std::collections::BTreeMap<String, String>, String)>,
);

/// Parses `text` with the official Python parser `parser` (`openmetrics` or `prometheus`):
/// the families, or the parser's error message.
pub fn parse(text: &str, parser: &str) -> Result<Vec<ParsedFamily>, String> {
    let output = run_python(PARSE_STDIN, &[parser], text);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let mut families: Vec<ParsedFamily> = Vec::new();
    for line in String::from_utf8(output.stdout).expect("UTF-8").lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON row");
        let text = |i: usize| row[i].as_str().expect("a string").to_owned();
        match row[0].as_str() {
            Some("family") => families.push(((text(1), text(2), text(3), text(4)), Vec::new())),
            Some("sample") => {
                let labels = serde_json::from_value(row[2].clone()).expect("labels");
                families
                    .last_mut()
                    .expect("a sample after its family")
                    .1
                    .push((text(1), labels, text(3)));
            }
            _ => panic!("unexpected row {line}"),
        }
    }
    Ok(families)
}

/// Runs `promtool check metrics` on `text`; whether it passed (exit status 0) and its
/// report.
pub fn promtool_check(text: &str) -> (bool, String) {
    let (status, report) = promtool_check_status(text);
    (status == Some(0), report)
}

/// Runs `promtool check metrics` on `text`: whether the text parses — promtool's exit
/// status is 0, or 3 for lints alone (promtool 2.42 lints naming style, such as `metric
/// names should not contain abbreviated units`, which judges the names a program chose and
/// cannot be turned off) — and promtool's report.
pub fn promtool_parses(text: &str) -> (bool, String) {
    let (status, report) = promtool_check_status(text);
    (matches!(status, Some(0 | 3)), report)
}

/// Runs `promtool check metrics` on `text`; its exit status and its report (standard output
/// then standard error).
fn promtool_check_status(text: &str) -> (Option<i32>, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "promtool is required for this test and could not be run ({error}); \
                 install Debian's `prometheus` package (`apt-get install -y prometheus`; .ci/test does)"
            )
        });
    let mut input = child.stdin.take().expect("stdin");
    let text = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let output = child.wait_with_output().expect("promtool ran");
    writer.join().expect("stdin writer");
    let mut report = String::from_utf8_lossy(&output.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), report)
}

/// Writes each of `values` as prometheus_client does (`prometheus_client.utils.floatToGoString`,
/// which its writers use for sample values and for `le` and `quantile` label values), in
/// one Python process.
pub fn float_to_go_strings(values: &[f64]) -> Vec<String> {
    const SCRIPT: &str = r#"
import struct, sys
from prometheus_client.utils import floatToGoString
out = []
for line in sys.stdin:
    value = struct.unpack("<d", struct.pack("<Q", int(line)))[0]
    out.append(floatToGoString(value))
sys.stdout.write("\n".join(out) + "\n")
"#;
    let input: String = values
        .iter()
        .map(|value| format!("{}\n", value.to_bits()))
        .collect();
    let output = python(SCRIPT, &[], &input);
    let strings: Vec<String> = output.lines().map(str::to_owned).collect();
    assert_eq!(strings.len(), values.len(), "one string per value");
    strings
}
