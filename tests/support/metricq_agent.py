"""metricq's Agent lifecycle on scripted scenarios, for tests/agent_metricq_parity.rs.

Each scenario runs a `metricq.Agent` (metricq 5.4 from PyPI) whose `connect` talks to no
broker: it logs, then does what the scenario says (stops the agent from a task, with or
without an error, silently or not; calls `on_signal`; stops it while `connect` still runs).
`run()`'s result and the log are printed as JSON, one object keyed by scenario.

Usage: python3 metricq_agent.py SCENARIO...
"""

import asyncio
import json
import sys

import metricq
from metricq.exceptions import AgentStopped, ReceivedSignal


class Scripted(metricq.Agent):
    def __init__(self, scenario):
        super().__init__("mvx-side-by-side", "amqp://127.0.0.1:1/")
        self.scenario = scenario
        self.log = []

    async def connect(self):
        self.log.append("connect")
        scenario = self.scenario
        loop = asyncio.get_running_loop()
        if scenario == "stop_during_connect":
            loop.call_soon(lambda: loop.create_task(self.stop_and_log(None, False)))
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.log.append("connect cancelled")
                raise
        elif scenario in ("stop_clean", "stop_error", "stop_silent_error"):
            error = None if scenario == "stop_clean" else ValueError("quietly")
            silent = scenario == "stop_silent_error"
            loop.call_soon(lambda: loop.create_task(self.stop_and_log(error, silent)))
        elif scenario in ("SIGINT", "SIGTERM", "SIGUSR1"):
            loop.call_soon(lambda: self.on_signal(scenario))
        elif scenario == "teardown_error":
            loop.call_soon(lambda: loop.create_task(self.stop_and_log(None, False)))
        self.log.append("connected")

    async def stop_and_log(self, error, silent):
        try:
            await self.stop(error, silent)
            self.log.append("stop returned")
        except AgentStopped as stopped:
            self.log.append(f"stop raised from {stopped.__cause__}")

    async def teardown(self):
        self.log.append("teardown")
        if self.scenario == "teardown_error":
            raise RuntimeError("teardown broke")


def run(scenario):
    agent = Scripted(scenario)
    try:
        agent.run(catch_signals=(), use_uvloop=False)
        result = {"run": "ok"}
    except ReceivedSignal as received:
        result = {"run": "ReceivedSignal", "signal": received.signal}
    except Exception as error:  # what run() raises: the stop's error or teardown's
        result = {"run": "error", "message": str(error)}
    result["log"] = agent.log
    result["close_timeout"] = agent._close_timeout
    return result


if __name__ == "__main__":
    print(json.dumps({scenario: run(scenario) for scenario in sys.argv[1:]}))
