//! Reason codes: the core's [`ErrorReason`], and the macro that declares a component's
//! reason enum around it.

use std::fmt;

/// A stable code naming why an operation of the core failed: a sink's queue, lifecycle,
/// dispatcher or registry, or a runtime adapter.
///
/// The codes do not change between releases; new ones may be added. The seven codes of the
/// MVX `AsyncioLogSinkErrorReason` are its strings, letter for letter, whatever the
/// variant is called: `EVENT_LOOP_UNAVAILABLE`, `INVALID_LOG_SINK_STATE`
/// ([`InvalidState`](Self::InvalidState)), `ON_STARTING_HOOK_FAILED`,
/// `ON_STOPPED_HOOK_FAILED`, `QUEUE_OVERFLOW`, `DISPATCHER_UNEXPECTEDLY_CANCELLED`
/// ([`DispatcherCancelled`](Self::DispatcherCancelled)) and `UNEXPECTED_ERROR`
/// ([`Unexpected`](Self::Unexpected)); the others are mvx's own. Every component reports
/// these (a recorder's or a runtime's invalid state is `INVALID_LOG_SINK_STATE` too: each
/// runs on a sink). The components have
/// reasons of their own — [`MetricsReason`](crate::metrics::MetricsReason),
/// [`StatsReason`](crate::stats::StatsReason), [`AgentReason`](crate::agent::AgentReason),
/// [`ExposeReason`](crate::expose::ExposeReason), and the Redis sink's `RedisSinkReason` —
/// each of which carries this one as `Core(ErrorReason)` for the core failures its errors
/// pass on (a recorder's error that is its sink's error reports the sink's reason), and
/// compares equal to it:
///
/// ```
/// use mvx::ErrorReason;
/// use mvx::error::SinkError;
/// use mvx::metrics::{MetricsReason, RecorderError};
///
/// let error = RecorderError::Sink(SinkError::EventLoopUnavailable);
/// assert_eq!(error.reason(), MetricsReason::Core(ErrorReason::EventLoopUnavailable));
/// assert_eq!(error.reason(), ErrorReason::EventLoopUnavailable);
/// assert_eq!(error.reason().as_str(), "EVENT_LOOP_UNAVAILABLE");
///
/// let error = RecorderError::DuplicateMetric { name: "jobs".into() };
/// assert_eq!(error.reason(), MetricsReason::DuplicateName);
/// assert_eq!(error.reason().to_string(), "DUPLICATE_NAME");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorReason {
    /// The executor refused to run a driver (it has shut down).
    EventLoopUnavailable,
    /// The operation is not valid in the component's current lifecycle state.
    InvalidState,
    /// The `on_starting` hook returned an error or panicked.
    OnStartingHookFailed,
    /// The `on_stopped` hook returned an error or panicked.
    OnStoppedHookFailed,
    /// The pending-event limit was reached.
    QueueOverflow,
    /// The ring of a sink's queue could not be allocated (a capacity above the maximum, or
    /// memory the allocator refused); the sink was created in `Failure`.
    QueueAllocationFailed,
    /// A dispatch returned an error (the event is counted as failed; delivery goes on).
    DispatchFailed,
    /// Flushing the dispatcher's buffered output failed.
    FlushFailed,
    /// User code in the dispatcher panicked; the component is in `Failure`.
    DispatcherPanicked,
    /// User code in the dispatcher panicked, and the restart policy restarted it; delivery
    /// goes on.
    DispatcherRestarted,
    /// The dispatcher failed to take a loss report; delivery goes on.
    LossReportFailed,
    /// The driver was dropped while the component was live.
    DispatcherCancelled,
    /// A stop did not finish within its timeout; the remaining events were abandoned.
    StopTimedOut,
    /// The start hook did not finish within its timeout.
    StartTimedOut,
    /// A sink with the same resource but a different configuration is already registered
    /// (the metrics registry reports its name conflicts with this code too).
    DescriptorConflict,
    /// The runtime thread could not be spawned.
    ThreadSpawnFailed,
    /// A blocking runtime operation was called from the runtime's own thread.
    CalledFromRuntimeThread,
    /// The runtime thread panicked.
    RuntimePanicked,
    /// A blocking wait reached its deadline before the operation finished; the operation
    /// goes on (an event waiting for room comes back to the caller).
    WaitTimedOut,
    /// A terminator's deadline passed before the component stopped and its runtime thread
    /// ended: what was left was abandoned (events counted as failed, the thread detached).
    TerminateTimedOut,
    /// A blocking call would have waited for a driver that only the calling thread can run
    /// (it is inside that sink's own code, or on the single-threaded executor thread that
    /// runs its driver): it returned at once instead of waiting forever. The operation, if
    /// any was requested, goes on.
    WouldDeadlock,
    /// Anything else.
    Unexpected,
}

impl ErrorReason {
    /// Every core reason, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::EventLoopUnavailable,
        Self::InvalidState,
        Self::OnStartingHookFailed,
        Self::OnStoppedHookFailed,
        Self::QueueOverflow,
        Self::QueueAllocationFailed,
        Self::DispatchFailed,
        Self::FlushFailed,
        Self::DispatcherPanicked,
        Self::DispatcherRestarted,
        Self::LossReportFailed,
        Self::DispatcherCancelled,
        Self::StopTimedOut,
        Self::StartTimedOut,
        Self::DescriptorConflict,
        Self::ThreadSpawnFailed,
        Self::CalledFromRuntimeThread,
        Self::RuntimePanicked,
        Self::WaitTimedOut,
        Self::TerminateTimedOut,
        Self::WouldDeadlock,
        Self::Unexpected,
    ];

    /// The code as an upper-case string, such as `"QUEUE_OVERFLOW"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EventLoopUnavailable => "EVENT_LOOP_UNAVAILABLE",
            Self::InvalidState => "INVALID_LOG_SINK_STATE",
            Self::OnStartingHookFailed => "ON_STARTING_HOOK_FAILED",
            Self::OnStoppedHookFailed => "ON_STOPPED_HOOK_FAILED",
            Self::QueueOverflow => "QUEUE_OVERFLOW",
            Self::QueueAllocationFailed => "QUEUE_ALLOCATION_FAILED",
            Self::DispatchFailed => "DISPATCH_FAILED",
            Self::FlushFailed => "FLUSH_FAILED",
            Self::DispatcherPanicked => "DISPATCHER_PANICKED",
            Self::DispatcherRestarted => "DISPATCHER_RESTARTED",
            Self::LossReportFailed => "LOSS_REPORT_FAILED",
            Self::DispatcherCancelled => "DISPATCHER_UNEXPECTEDLY_CANCELLED",
            Self::StopTimedOut => "STOP_TIMED_OUT",
            Self::StartTimedOut => "START_TIMED_OUT",
            Self::DescriptorConflict => "DESCRIPTOR_CONFLICT",
            Self::ThreadSpawnFailed => "THREAD_SPAWN_FAILED",
            Self::CalledFromRuntimeThread => "CALLED_FROM_RUNTIME_THREAD",
            Self::RuntimePanicked => "RUNTIME_PANICKED",
            Self::WaitTimedOut => "WAIT_TIMED_OUT",
            Self::TerminateTimedOut => "TERMINATE_TIMED_OUT",
            Self::WouldDeadlock => "WOULD_DEADLOCK",
            Self::Unexpected => "UNEXPECTED_ERROR",
        }
    }
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a component's reason enum: its own reasons, each with its stable string, and
/// `Core(ErrorReason)` for the core's. Generates `OWN` (the own reasons), `as_str`,
/// `Display`, `From<ErrorReason>`, and equality with [`ErrorReason`] both ways (a
/// component reason equals a core reason when it is that core reason).
///
/// ```text
/// component_reason! {
///     /// Why an operation of the component failed.
///     pub enum ComponentReason {
///         /// What this reason means.
///         SomethingFailed = "SOMETHING_FAILED",
///     }
/// }
/// ```
///
/// A component's own strings never repeat a core one: a core failure is `Core(..)` only.
macro_rules! component_reason {
    (
        $(#[$attribute:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_attribute:meta])*
                $variant:ident = $code:literal,
            )+
        }
    ) => {
        $(#[$attribute])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$variant_attribute])*
                $variant,
            )+
            /// A reason of the core: passed on from a core error that this component's
            /// error carries (a sink's, a runtime's), or one the core names (`UNEXPECTED_ERROR`).
            Core($crate::error::ErrorReason),
        }

        impl $name {
            /// This component's own reasons (every one but `Core`), in declaration order.
            pub const OWN: &'static [Self] = &[$(Self::$variant),+];

            /// The code as an upper-case string; a core reason's is
            /// [`ErrorReason::as_str`]($crate::error::ErrorReason::as_str).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                    Self::Core(reason) => reason.as_str(),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$crate::error::ErrorReason> for $name {
            fn from(reason: $crate::error::ErrorReason) -> Self {
                Self::Core(reason)
            }
        }

        impl PartialEq<$crate::error::ErrorReason> for $name {
            fn eq(&self, other: &$crate::error::ErrorReason) -> bool {
                *self == Self::Core(*other)
            }
        }

        impl PartialEq<$name> for $crate::error::ErrorReason {
            fn eq(&self, other: &$name) -> bool {
                *other == *self
            }
        }
    };
}

pub(crate) use component_reason;
