//! The signal thread of `Runner::run`.

use std::sync::Arc;

use super::{Agent, AgentError, AgentHandle};

#[cfg(feature = "signals")]
pub(super) struct Catcher {
    handle: Option<signal_hook::iterator::Handle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(feature = "signals")]
impl Catcher {
    pub(super) fn start<A: Agent>(
        set: &[i32],
        agent: Arc<A>,
        handle: AgentHandle,
    ) -> Result<Self, AgentError> {
        use std::panic::{AssertUnwindSafe, catch_unwind};

        use crate::error::Cause;

        if set.is_empty() {
            return Ok(Self {
                handle: None,
                thread: None,
            });
        }
        let mut signals = signal_hook::iterator::Signals::new(set)
            .map_err(|error| AgentError::SignalSetup(Cause::from_error(error)))?;
        let closer = signals.handle();
        let thread = std::thread::Builder::new()
            .name("mvx-agent-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    crate::sync::lock(&handle.shared.status)
                        .signals
                        .push(signal);
                    let called =
                        catch_unwind(AssertUnwindSafe(|| agent.on_signal(signal, &handle)));
                    if let Err(payload) = called {
                        let cause = Cause::from_panic(payload);
                        handle.shared.request_stop(super::handle::StopRequest {
                            error: Some(AgentError::Stopped(cause)),
                            silent: false,
                        });
                    }
                }
            })
            .map_err(|error| {
                closer.close();
                AgentError::SignalSetup(Cause::from_error(error))
            })?;
        Ok(Self {
            handle: Some(closer),
            thread: Some(thread),
        })
    }

    /// Unregisters the handlers and joins the thread.
    pub(super) fn finish(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            // The thread only runs `on_signal`, whose panics it catches.
            let _ = thread.join();
        }
    }
}

#[cfg(not(feature = "signals"))]
pub(super) struct Catcher;

#[cfg(not(feature = "signals"))]
impl Catcher {
    pub(super) fn start<A: Agent>(
        set: &[i32],
        _agent: Arc<A>,
        _handle: AgentHandle,
    ) -> Result<Self, AgentError> {
        if set.is_empty() {
            Ok(Self)
        } else {
            Err(AgentError::SignalsUnavailable {
                signals: set.to_vec(),
            })
        }
    }

    pub(super) fn finish(self) {}
}
