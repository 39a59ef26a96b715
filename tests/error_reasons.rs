//! Every reason code: the stable upper-case string of each `ErrorReason`, and the reason
//! each component's error reports. Reason strings are API: a change here is a breaking
//! change.
#![cfg(not(loom))]

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use mvx::agent::AgentError;
use mvx::error::{Cause, CreateError, LogError, Report, SinkError, TerminateError};
use mvx::stats::{StatsError, StoreError, StoreOperation};
use mvx::{ErrorReason, State};

/// A cause returned by user code.
fn cause() -> Cause {
    Cause::from_error(std::io::Error::other("boom"))
}

#[test]
fn error_reason_codes_are_the_documented_upper_case_strings() {
    let codes = [
        (ErrorReason::EventLoopUnavailable, "EVENT_LOOP_UNAVAILABLE"),
        (ErrorReason::InvalidState, "INVALID_STATE"),
        (ErrorReason::OnStartingHookFailed, "ON_STARTING_HOOK_FAILED"),
        (ErrorReason::OnStoppedHookFailed, "ON_STOPPED_HOOK_FAILED"),
        (ErrorReason::QueueOverflow, "QUEUE_OVERFLOW"),
        (ErrorReason::DispatchFailed, "DISPATCH_FAILED"),
        (ErrorReason::FlushFailed, "FLUSH_FAILED"),
        (ErrorReason::DispatcherPanicked, "DISPATCHER_PANICKED"),
        (ErrorReason::DispatcherCancelled, "DISPATCHER_CANCELLED"),
        (ErrorReason::StopTimedOut, "STOP_TIMED_OUT"),
        (ErrorReason::StartTimedOut, "START_TIMED_OUT"),
        (ErrorReason::DescriptorConflict, "DESCRIPTOR_CONFLICT"),
        (ErrorReason::ThreadSpawnFailed, "THREAD_SPAWN_FAILED"),
        (
            ErrorReason::CalledFromRuntimeThread,
            "CALLED_FROM_RUNTIME_THREAD",
        ),
        (ErrorReason::RuntimePanicked, "RUNTIME_PANICKED"),
        (ErrorReason::DuplicateName, "DUPLICATE_NAME"),
        (ErrorReason::NameConflict, "NAME_CONFLICT"),
        (ErrorReason::MetricPanicked, "METRIC_PANICKED"),
        (ErrorReason::InvalidArgument, "INVALID_ARGUMENT"),
        (ErrorReason::StoreFailed, "STORE_FAILED"),
        (ErrorReason::CorruptState, "CORRUPT_STATE"),
        (ErrorReason::ConnectFailed, "CONNECT_FAILED"),
        (ErrorReason::AgentStopped, "AGENT_STOPPED"),
        (ErrorReason::TaskFailed, "TASK_FAILED"),
        (ErrorReason::TeardownFailed, "TEARDOWN_FAILED"),
        (ErrorReason::TeardownTimedOut, "TEARDOWN_TIMED_OUT"),
        (ErrorReason::SignalSetupFailed, "SIGNAL_SETUP_FAILED"),
        (ErrorReason::SignalsUnavailable, "SIGNALS_UNAVAILABLE"),
        (ErrorReason::AgentCancelled, "AGENT_CANCELLED"),
        (ErrorReason::InvalidRegex, "INVALID_REGEX"),
        (ErrorReason::Unexpected, "UNEXPECTED"),
    ];
    for (reason, code) in codes {
        assert_eq!(reason.as_str(), code);
        assert_eq!(reason.to_string(), code);
    }
}

#[test]
fn sink_errors_map_to_their_reason_codes() {
    let sink_errors = [
        (
            SinkError::EventLoopUnavailable,
            ErrorReason::EventLoopUnavailable,
        ),
        (
            SinkError::InvalidState {
                actual: State::Virgin,
                expected: &[State::Running],
            },
            ErrorReason::InvalidState,
        ),
        (
            SinkError::OnStartingHookFailed(cause()),
            ErrorReason::OnStartingHookFailed,
        ),
        (
            SinkError::OnStoppedHookFailed(cause()),
            ErrorReason::OnStoppedHookFailed,
        ),
        (
            SinkError::DispatchFailed(cause()),
            ErrorReason::DispatchFailed,
        ),
        (SinkError::FlushFailed(cause()), ErrorReason::FlushFailed),
        (
            SinkError::DispatcherPanicked(cause()),
            ErrorReason::DispatcherPanicked,
        ),
        (
            SinkError::DispatcherCancelled,
            ErrorReason::DispatcherCancelled,
        ),
        (
            SinkError::StopTimedOut {
                timeout: Duration::from_millis(200),
                abandoned: 3,
            },
            ErrorReason::StopTimedOut,
        ),
        (
            SinkError::StartTimedOut {
                timeout: Duration::from_millis(200),
            },
            ErrorReason::StartTimedOut,
        ),
        (
            SinkError::DescriptorConflict {
                resource: vec!["r".into()],
                existing: vec!["a".into()],
                requested: vec!["b".into()],
            },
            ErrorReason::DescriptorConflict,
        ),
        (SinkError::Unexpected(cause()), ErrorReason::Unexpected),
    ];
    for (error, reason) in &sink_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
        assert_eq!(
            error.cause().is_some(),
            error.source().is_some(),
            "{error:?}"
        );
    }
    assert_eq!(
        SinkError::InvalidState {
            actual: State::Stopped,
            expected: &[State::Virgin],
        }
        .to_string(),
        "invalid state STOPPED: the operation needs VIRGIN"
    );

    assert_eq!(
        LogError::QueueOverflow(1u32).reason(),
        ErrorReason::QueueOverflow
    );
    assert_eq!(
        LogError::NotAccepting {
            event: 1u32,
            state: State::Stopped
        }
        .reason(),
        ErrorReason::InvalidState
    );
    assert_eq!(
        CreateError::RuntimeGone.reason(),
        ErrorReason::EventLoopUnavailable
    );
    assert_eq!(
        CreateError::from(SinkError::OnStartingHookFailed(cause())).reason(),
        ErrorReason::OnStartingHookFailed
    );
    assert_eq!(
        TerminateError::CalledFromRuntimeThread.reason(),
        ErrorReason::CalledFromRuntimeThread
    );
    assert_eq!(
        TerminateError::Stop(SinkError::DispatcherCancelled).reason(),
        ErrorReason::DispatcherCancelled
    );
    assert_eq!(
        TerminateError::RuntimePanicked(cause()).reason(),
        ErrorReason::RuntimePanicked
    );
}

#[test]
fn store_and_statistics_errors_map_to_their_reason_codes() {
    let io = || StoreError::io("reading", "/x", std::io::Error::other("disk"));
    let store_errors = [
        (
            StoreError::InvalidName {
                what: "key",
                name: String::new(),
                problem: "it is empty",
            },
            ErrorReason::InvalidArgument,
        ),
        (
            StoreError::InvalidJson(Arc::new(
                serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
            )),
            ErrorReason::CorruptState,
        ),
        (
            StoreError::KeyTaken { key: "k".into() },
            ErrorReason::StoreFailed,
        ),
        (io(), ErrorReason::StoreFailed),
        (
            StoreError::backend(std::io::Error::other("down")),
            ErrorReason::StoreFailed,
        ),
        (StoreError::Panicked(cause()), ErrorReason::StoreFailed),
    ];
    for (error, reason) in &store_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }

    let stats_errors = [
        (
            StatsError::NotRecording {
                state: State::Virgin,
            },
            ErrorReason::InvalidState,
        ),
        (StatsError::QueueOverflow, ErrorReason::QueueOverflow),
        (
            StatsError::Recorder(SinkError::DispatcherCancelled),
            ErrorReason::DispatcherCancelled,
        ),
        (
            StatsError::Store {
                operation: StoreOperation::Save,
                store: "default".into(),
                key: "statistics".into(),
                source: io(),
            },
            ErrorReason::StoreFailed,
        ),
        (
            StatsError::CorruptState {
                store: "default".into(),
                key: "statistics".into(),
                moved_to: "statistics.corrupt-1".into(),
                cause: cause(),
            },
            ErrorReason::CorruptState,
        ),
        (
            StatsError::InvalidConfig {
                field: "persist_interval",
                problem: "must not be zero",
            },
            ErrorReason::InvalidArgument,
        ),
        (
            StatsError::ReportRefused {
                reason: ErrorReason::QueueOverflow,
            },
            ErrorReason::QueueOverflow,
        ),
    ];
    for (error, reason) in &stats_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }
    assert_eq!(
        stats_errors[3].0.to_string(),
        "could not save the statistics state under key \"statistics\" of store \"default\""
    );
    assert_eq!(
        Report(&stats_errors[3].0).to_string(),
        "could not save the statistics state under key \"statistics\" of store \"default\": \
         reading \"/x\" failed: disk"
    );
}

#[test]
fn agent_errors_map_to_their_reason_codes() {
    let agent_errors = [
        (
            AgentError::ConnectFailed(cause()),
            ErrorReason::ConnectFailed,
        ),
        (AgentError::Stopped(cause()), ErrorReason::AgentStopped),
        (AgentError::TaskFailed(cause()), ErrorReason::TaskFailed),
        (
            AgentError::TeardownFailed(cause()),
            ErrorReason::TeardownFailed,
        ),
        (
            AgentError::TeardownTimedOut {
                timeout: Duration::from_millis(200),
            },
            ErrorReason::TeardownTimedOut,
        ),
        (
            AgentError::SignalSetup(cause()),
            ErrorReason::SignalSetupFailed,
        ),
        (
            AgentError::SignalsUnavailable {
                signals: vec![mvx::agent::SIGINT],
            },
            ErrorReason::SignalsUnavailable,
        ),
        (AgentError::Cancelled, ErrorReason::AgentCancelled),
    ];
    for (error, reason) in &agent_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }
    assert_eq!(
        agent_errors[6].0.to_string(),
        "catching signals [2] needs mvx's `signals` feature"
    );
}
