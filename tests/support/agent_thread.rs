//! An agent run by a `Runner` on a thread of its own: [`Running`], stopped and joined by
//! the test, or on drop.
//!
//! Include it with `#[path = "support/agent_thread.rs"] mod agent_thread;`.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::thread::JoinHandle;

use mvx::agent::{Agent, AgentConfig, AgentError, AgentHandle, Runner};

/// An agent running on a thread of its own.
pub struct Running {
    pub handle: AgentHandle,
    thread: Option<JoinHandle<Result<(), AgentError>>>,
}

impl Running {
    /// Runs `agent` without signals.
    pub fn start<A: Agent>(agent: A) -> Self {
        Self::start_with(agent, AgentConfig::default().catch_signals([]))
    }

    /// Runs `agent` with `config`.
    pub fn start_with<A: Agent>(agent: A, config: AgentConfig) -> Self {
        let runner = Runner::new(agent, config);
        let handle = runner.handle();
        let thread = std::thread::spawn(move || runner.run());
        Self {
            handle,
            thread: Some(thread),
        }
    }

    /// Stops the agent and returns what `run()` returned.
    pub fn stop(mut self) -> Result<(), AgentError> {
        self.handle.stop(None, false);
        self.join()
    }

    /// Waits for `run()` to return.
    pub fn join(&mut self) -> Result<(), AgentError> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("the runner thread does not panic")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.stop(None, true);
            let _ = thread.join();
        }
    }
}
