//! Every reason code of every error, as the strings users match on, log and count: the
//! core's `ErrorReason` and each component's own reasons. The strings are API: a change
//! here is a breaking change.
#![cfg(not(loom))]

use std::collections::BTreeSet;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use mvx::agent::{AgentError, AgentReason};
use mvx::error::{Cause, CreateError, LogError, Report, SinkError, TerminateError, TerminateStage};
use mvx::expose::{ExposeError, ExposeReason};
use mvx::metrics::{MetricsReason, RecorderError};
use mvx::queue::AllocationFailure;
use mvx::stats::{StatsError, StatsReason, StoreError, StoreOperation};
use mvx::{ErrorReason, State};

#[test]
fn core_reasons() {
    let codes = [
        (ErrorReason::EventLoopUnavailable, "EVENT_LOOP_UNAVAILABLE"),
        (ErrorReason::InvalidState, "INVALID_LOG_SINK_STATE"),
        (ErrorReason::OnStartingHookFailed, "ON_STARTING_HOOK_FAILED"),
        (ErrorReason::OnStoppedHookFailed, "ON_STOPPED_HOOK_FAILED"),
        (ErrorReason::QueueOverflow, "QUEUE_OVERFLOW"),
        (
            ErrorReason::QueueAllocationFailed,
            "QUEUE_ALLOCATION_FAILED",
        ),
        (ErrorReason::DispatchFailed, "DISPATCH_FAILED"),
        (ErrorReason::FlushFailed, "FLUSH_FAILED"),
        (ErrorReason::DispatcherPanicked, "DISPATCHER_PANICKED"),
        (ErrorReason::DispatcherRestarted, "DISPATCHER_RESTARTED"),
        (ErrorReason::LossReportFailed, "LOSS_REPORT_FAILED"),
        (
            ErrorReason::DispatcherCancelled,
            "DISPATCHER_UNEXPECTEDLY_CANCELLED",
        ),
        (ErrorReason::StopTimedOut, "STOP_TIMED_OUT"),
        (ErrorReason::StartTimedOut, "START_TIMED_OUT"),
        (ErrorReason::DescriptorConflict, "DESCRIPTOR_CONFLICT"),
        (ErrorReason::ThreadSpawnFailed, "THREAD_SPAWN_FAILED"),
        (
            ErrorReason::CalledFromRuntimeThread,
            "CALLED_FROM_RUNTIME_THREAD",
        ),
        (ErrorReason::RuntimePanicked, "RUNTIME_PANICKED"),
        (ErrorReason::WaitTimedOut, "WAIT_TIMED_OUT"),
        (ErrorReason::TerminateTimedOut, "TERMINATE_TIMED_OUT"),
        (ErrorReason::WouldDeadlock, "WOULD_DEADLOCK"),
        (ErrorReason::Unexpected, "UNEXPECTED_ERROR"),
    ];
    for (reason, code) in codes {
        assert_eq!(reason.as_str(), code);
        assert_eq!(reason.to_string(), code);
    }
    let listed: Vec<ErrorReason> = codes.iter().map(|&(reason, _)| reason).collect();
    assert_eq!(
        listed,
        ErrorReason::ALL,
        "the table lists every core reason"
    );
}

/// Every code of `AsyncioLogSinkErrorReason` in the MVX AsyncioLogSink document
/// (`shared/reference/mvx-asyncio-log-sink.txt`), with the sink error that carries it: the
/// strings are the document's.
#[test]
fn the_asyncio_log_sink_documents_codes_are_the_core_codes() {
    let documented = [
        (SinkError::EventLoopUnavailable, "EVENT_LOOP_UNAVAILABLE"),
        (
            SinkError::InvalidState {
                actual: State::Virgin,
                expected: &[State::Running],
            },
            "INVALID_LOG_SINK_STATE",
        ),
        (
            SinkError::OnStartingHookFailed(cause()),
            "ON_STARTING_HOOK_FAILED",
        ),
        (
            SinkError::OnStoppedHookFailed(cause()),
            "ON_STOPPED_HOOK_FAILED",
        ),
        (
            SinkError::DispatcherCancelled,
            "DISPATCHER_UNEXPECTEDLY_CANCELLED",
        ),
        (SinkError::Unexpected(cause()), "UNEXPECTED_ERROR"),
    ];
    for (error, code) in documented {
        assert_eq!(error.reason().as_str(), code, "{error:?}");
    }
    let overflow = LogError::QueueOverflow(1u32);
    assert_eq!(overflow.reason().as_str(), "QUEUE_OVERFLOW");
    // A log() refused by the lifecycle state is the document's invalid state too.
    let refused = LogError::NotAccepting {
        event: 1u32,
        state: State::Stopped,
    };
    assert_eq!(refused.reason().as_str(), "INVALID_LOG_SINK_STATE");
}

#[test]
fn metrics_reasons() {
    let codes = [
        (MetricsReason::DuplicateName, "DUPLICATE_NAME"),
        (MetricsReason::NameConflict, "NAME_CONFLICT"),
        (MetricsReason::MetricPanicked, "METRIC_PANICKED"),
        (MetricsReason::InvalidArgument, "INVALID_ARGUMENT"),
        (MetricsReason::InvalidRegex, "INVALID_REGEX"),
    ];
    check_own(&codes, MetricsReason::OWN);
    check_core(|reason| MetricsReason::from(reason).as_str());
    // A core reason carried by a component's reason equals it, both ways round.
    for &reason in ErrorReason::ALL {
        let component = MetricsReason::from(reason);
        assert_eq!(component, MetricsReason::Core(reason));
        assert_eq!(component, reason);
        assert_eq!(reason, component);
        assert_ne!(MetricsReason::DuplicateName, reason);
    }
}

#[test]
fn stats_reasons() {
    let codes = [
        (StatsReason::StoreFailed, "STORE_FAILED"),
        (StatsReason::CorruptState, "CORRUPT_STATE"),
        (StatsReason::InvalidArgument, "INVALID_ARGUMENT"),
    ];
    check_own(&codes, StatsReason::OWN);
    check_core(|reason| StatsReason::from(reason).as_str());
}

#[test]
fn agent_reasons() {
    let codes = [
        (AgentReason::ConnectFailed, "CONNECT_FAILED"),
        (AgentReason::AgentStopped, "AGENT_STOPPED"),
        (AgentReason::ReceivedSignal, "RECEIVED_SIGNAL"),
        (AgentReason::TaskFailed, "TASK_FAILED"),
        (AgentReason::TeardownFailed, "TEARDOWN_FAILED"),
        (AgentReason::TeardownTimedOut, "TEARDOWN_TIMED_OUT"),
        (AgentReason::SignalSetupFailed, "SIGNAL_SETUP_FAILED"),
        (AgentReason::SignalsUnavailable, "SIGNALS_UNAVAILABLE"),
        (AgentReason::AgentCancelled, "AGENT_CANCELLED"),
    ];
    check_own(&codes, AgentReason::OWN);
    check_core(|reason| AgentReason::from(reason).as_str());
}

#[test]
fn expose_reasons() {
    let codes = [
        (ExposeReason::InvalidArgument, "INVALID_ARGUMENT"),
        (ExposeReason::RegistrationRefused, "REGISTRATION_REFUSED"),
    ];
    check_own(&codes, ExposeReason::OWN);
    check_core(|reason| ExposeReason::from(reason).as_str());
}

#[cfg(feature = "redis")]
#[test]
fn redis_sink_reasons() {
    use mvx::sink::sinks::RedisSinkReason;

    let codes = [(RedisSinkReason::InvalidArgument, "INVALID_ARGUMENT")];
    check_own(&codes, RedisSinkReason::OWN);
    check_core(|reason| RedisSinkReason::from(reason).as_str());
}

#[cfg(feature = "metricq")]
#[test]
fn metricq_reasons() {
    use mvx::agent::metricq::{MetricqError, MetricqReason};
    use mvx::metrics::SelectorError;

    let codes = [
        (MetricqReason::InvalidConfig, "INVALID_CONFIG"),
        (MetricqReason::InvalidArgument, "INVALID_ARGUMENT"),
        (MetricqReason::ConnectFailed, "CONNECT_FAILED"),
        (MetricqReason::ConnectTimedOut, "CONNECT_TIMED_OUT"),
        (MetricqReason::ReconnectTimedOut, "RECONNECT_TIMED_OUT"),
        (MetricqReason::NotConnected, "NOT_CONNECTED"),
        (MetricqReason::Stopped, "STOPPED"),
        (MetricqReason::Amqp, "AMQP"),
        (MetricqReason::PublishFailed, "PUBLISH_FAILED"),
        (MetricqReason::RpcError, "RPC_ERROR"),
        (MetricqReason::RpcTimedOut, "RPC_TIMED_OUT"),
        (MetricqReason::InvalidResponse, "INVALID_RESPONSE"),
    ];
    check_own(&codes, MetricqReason::OWN);
    check_core(|reason| MetricqReason::from(reason).as_str());

    let errors = [
        (
            MetricqError::InvalidConfig { detail: "x".into() },
            MetricqReason::InvalidConfig,
        ),
        (
            MetricqError::InvalidArgument { detail: "x".into() },
            MetricqReason::InvalidArgument,
        ),
        (
            MetricqError::InvalidSelector(SelectorError::EmptyNameList),
            MetricqReason::InvalidArgument,
        ),
        (
            MetricqError::ConnectTimedOut {
                connection: "management",
                url: "amqp://127.0.0.1/".into(),
                timeout: Duration::from_secs(1),
            },
            MetricqReason::ConnectTimedOut,
        ),
        (
            MetricqError::ReconnectTimedOut {
                connection: "data",
                timeout: Duration::from_secs(1),
            },
            MetricqReason::ReconnectTimedOut,
        ),
        (
            MetricqError::NotConnected {
                connection: "management",
            },
            MetricqReason::NotConnected,
        ),
        (MetricqError::Stopped, MetricqReason::Stopped),
        (
            MetricqError::PublishFailed {
                what: "a data chunk of x".into(),
                detail: "nack".into(),
                source: None,
            },
            MetricqReason::PublishFailed,
        ),
        (
            MetricqError::Rpc {
                function: "f".into(),
                message: "m".into(),
            },
            MetricqReason::RpcError,
        ),
        (
            MetricqError::RpcTimedOut {
                function: "f".into(),
                timeout: Duration::from_secs(1),
            },
            MetricqReason::RpcTimedOut,
        ),
        (
            MetricqError::InvalidResponse {
                function: "f".into(),
                detail: "d".into(),
            },
            MetricqReason::InvalidResponse,
        ),
    ];
    for (error, reason) in &errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }
    let refused = MetricqError::InvalidSelector(SelectorError::PrefixAndInfix);
    assert_eq!(refused.to_string(), "the selector is refused");
    assert_eq!(
        refused.source().map(ToString::to_string),
        Some("cannot select by both prefix and infix".into())
    );
}

/// A component error that carries a core error reports the core error's reason.
#[test]
fn component_errors_pass_the_core_reason_on() {
    let recorder = RecorderError::Sink(SinkError::StopTimedOut {
        timeout: Duration::from_secs(1),
        abandoned: 2,
    });
    assert_eq!(
        recorder.reason(),
        MetricsReason::Core(ErrorReason::StopTimedOut)
    );
    assert_eq!(recorder.reason().as_str(), "STOP_TIMED_OUT");

    let stats = StatsError::Recorder(SinkError::DispatcherCancelled);
    assert_eq!(stats.reason(), ErrorReason::DispatcherCancelled);
    assert_eq!(
        stats.reason().to_string(),
        "DISPATCHER_UNEXPECTEDLY_CANCELLED"
    );

    let expose = ExposeError::Runtime(TerminateError::RuntimePanicked(Cause::from_error(
        "thread panicked",
    )));
    assert_eq!(expose.reason(), ErrorReason::RuntimePanicked);
    assert_eq!(
        ExposeError::InvalidLabelName { name: "__x".into() }.reason(),
        ExposeReason::InvalidArgument
    );
}

/// Checks a component's table of own reasons: each string, and that the table lists them
/// all, each once, none of them a core string (a core reason is `Core(..)` only).
fn check_own<R>(codes: &[(R, &str)], own: &[R])
where
    R: Copy + PartialEq + std::fmt::Debug + std::fmt::Display,
    R: PartialEq<ErrorReason>,
{
    for &(reason, code) in codes {
        assert_eq!(reason.to_string(), code);
        assert!(
            ErrorReason::ALL.iter().all(|core| reason != *core),
            "{reason:?} is not a core reason"
        );
        assert!(
            ErrorReason::ALL.iter().all(|core| core.as_str() != code),
            "{code} is not a core string"
        );
    }
    let listed: Vec<R> = codes.iter().map(|&(reason, _)| reason).collect();
    assert_eq!(listed, own, "the table lists every own reason");
    let distinct: BTreeSet<&str> = codes.iter().map(|&(_, code)| code).collect();
    assert_eq!(distinct.len(), codes.len(), "each string once");
}

/// Checks that every core reason, carried by a component's reason, keeps its string.
fn check_core(as_str: impl Fn(ErrorReason) -> &'static str) {
    for &reason in ErrorReason::ALL {
        assert_eq!(as_str(reason), reason.as_str());
    }
}

/// A cause returned by user code.
fn cause() -> Cause {
    Cause::from_error(std::io::Error::other("boom"))
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
            SinkError::DispatcherRestarted {
                restarts: 1,
                cause: cause(),
            },
            ErrorReason::DispatcherRestarted,
        ),
        (
            SinkError::LossReportFailed(cause()),
            ErrorReason::LossReportFailed,
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
            SinkError::TerminateTimedOut {
                timeout: Duration::from_millis(200),
                abandoned: 3,
            },
            ErrorReason::TerminateTimedOut,
        ),
        (
            SinkError::DescriptorConflict {
                resource: vec!["r".into()],
                existing: vec!["a".into()],
                requested: vec!["b".into()],
            },
            ErrorReason::DescriptorConflict,
        ),
        (
            SinkError::QueueAllocationFailed {
                capacity: 1 << 40,
                failure: AllocationFailure::AboveMaximum,
            },
            ErrorReason::QueueAllocationFailed,
        ),
        (SinkError::WaitTimedOut, ErrorReason::WaitTimedOut),
        (SinkError::WouldDeadlock, ErrorReason::WouldDeadlock),
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
        SinkError::QueueAllocationFailed {
            capacity: 1 << 40,
            failure: AllocationFailure::AboveMaximum,
        }
        .to_string(),
        "could not allocate a queue for 1099511627776 events: the capacity is above the \
         maximum of 16777216 events"
    );
    assert_eq!(
        SinkError::QueueAllocationFailed {
            capacity: 1 << 20,
            failure: AllocationFailure::OutOfMemory { bytes: 1 << 32 },
        }
        .to_string(),
        "could not allocate a queue for 1048576 events: the allocator refused the ring's \
         4294967296 bytes"
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
        LogError::WouldDeadlock(1u32).reason(),
        ErrorReason::WouldDeadlock
    );
    assert_eq!(LogError::WouldDeadlock(1u32).into_inner(), 1);
    assert_eq!(
        mvx::error::SendTimeoutError::WouldDeadlock(1u32).reason(),
        ErrorReason::WouldDeadlock
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
        TerminateError::Stop {
            error: SinkError::DispatcherCancelled,
            stats: Box::default(),
        }
        .reason(),
        ErrorReason::DispatcherCancelled
    );
    assert_eq!(
        TerminateError::RuntimePanicked(cause()).reason(),
        ErrorReason::RuntimePanicked
    );
    let timed_out = TerminateError::TimedOut {
        timeout: Duration::from_millis(200),
        stage: TerminateStage::Dispatch,
        abandoned: 5,
        stats: Box::default(),
    };
    assert_eq!(timed_out.reason(), ErrorReason::TerminateTimedOut);
    assert_eq!(timed_out.stats(), Some(mvx::queue::QueueStats::default()));
    assert_eq!(
        timed_out.to_string(),
        "terminate timed out after 200ms while dispatching: 5 accepted events were abandoned"
    );
    let stages = [
        (TerminateStage::Start, "starting"),
        (TerminateStage::Stop, "stopping"),
        (TerminateStage::Dispatch, "dispatching"),
        (TerminateStage::Join, "joining the runtime thread"),
    ];
    for (stage, text) in stages {
        assert_eq!((stage.as_str(), stage.to_string()), (text, text.to_owned()));
    }
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
            StatsReason::InvalidArgument,
        ),
        (
            StoreError::InvalidJson(Arc::new(
                serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
            )),
            StatsReason::CorruptState,
        ),
        (
            StoreError::KeyTaken { key: "k".into() },
            StatsReason::StoreFailed,
        ),
        (io(), StatsReason::StoreFailed),
        (
            StoreError::backend(std::io::Error::other("down")),
            StatsReason::StoreFailed,
        ),
        (StoreError::Panicked(cause()), StatsReason::StoreFailed),
    ];
    for (error, reason) in &store_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }

    let stats_errors = [
        (
            StatsError::NotRecording {
                state: State::Virgin,
            },
            StatsReason::Core(ErrorReason::InvalidState),
        ),
        (
            StatsError::QueueOverflow,
            StatsReason::Core(ErrorReason::QueueOverflow),
        ),
        (
            StatsError::Recorder(SinkError::DispatcherCancelled),
            StatsReason::Core(ErrorReason::DispatcherCancelled),
        ),
        (
            StatsError::Store {
                operation: StoreOperation::Save,
                store: "default".into(),
                key: "statistics".into(),
                source: io(),
            },
            StatsReason::StoreFailed,
        ),
        (
            StatsError::CorruptState {
                store: "default".into(),
                key: "statistics".into(),
                moved_to: "statistics.corrupt-1".into(),
                cause: cause(),
            },
            StatsReason::CorruptState,
        ),
        (
            StatsError::InvalidConfig {
                field: "persist_interval",
                problem: "must not be zero",
            },
            StatsReason::InvalidArgument,
        ),
        (
            StatsError::ReportRefused {
                reason: ErrorReason::QueueOverflow,
            },
            StatsReason::Core(ErrorReason::QueueOverflow),
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
            AgentReason::ConnectFailed,
        ),
        (AgentError::Stopped(cause()), AgentReason::AgentStopped),
        (AgentError::TaskFailed(cause()), AgentReason::TaskFailed),
        (
            AgentError::TeardownFailed(cause()),
            AgentReason::TeardownFailed,
        ),
        (
            AgentError::TeardownTimedOut {
                timeout: Duration::from_millis(200),
            },
            AgentReason::TeardownTimedOut,
        ),
        (
            AgentError::SignalSetup(cause()),
            AgentReason::SignalSetupFailed,
        ),
        (
            AgentError::SignalsUnavailable {
                signals: vec![mvx::agent::SIGINT],
            },
            AgentReason::SignalsUnavailable,
        ),
        (AgentError::Cancelled, AgentReason::AgentCancelled),
        (
            AgentError::ReceivedSignal {
                signal: mvx::agent::SIGTERM,
            },
            AgentReason::ReceivedSignal,
        ),
    ];
    for (error, reason) in &agent_errors {
        assert_eq!(error.reason(), *reason, "{error:?}");
    }
    assert_eq!(
        agent_errors[6].0.to_string(),
        "catching signals [2] needs mvx's `signals` feature"
    );
}
