"""Prints the points of metricq metrics as they arrive: a Sink of the Python `metricq`
package (`pip install metricq`), the counterpart of examples/metricq_source.rs.

    python3 examples/metricq_sink.py [--count N] URL METRIC...

Each point is one line: the metric, the timestamp (nanoseconds since the epoch), the value.
With --count it exits after N points; without, on Ctrl-C.
"""

import argparse

from metricq import Sink


class PrintingSink(Sink):
    """Subscribes to `metrics`, prints each point (`show`), and stops after `count` points
    (`None`: never). tests/support/metricq_peer.py prints them as JSON instead."""

    def __init__(self, metrics, count, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.wanted = metrics
        self.count = count

    def show(self, line):
        print(line, flush=True)

    def show_point(self, metric, timestamp, value):
        self.show(f"{metric} {timestamp.posix_ns} {value}")

    async def connect(self):
        await super().connect()
        await self.subscribe(self.wanted)
        self.show("subscribed")

    async def on_data(self, metric, timestamp, value):
        self.show_point(metric, timestamp, value)
        if self.count is not None:
            self.count -= 1

    async def _on_data_message(self, message):
        await super()._on_data_message(message)
        if self.count is not None and self.count <= 0:
            # Stop once the message that brought the last point is acknowledged, from a task
            # of its own: a stop begun inside `on_data` may close the data channel before
            # the acknowledgement is sent, and the broker then hands the message to the
            # queue again.
            self.count = None
            self._schedule_stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("url")
    parser.add_argument("metrics", nargs="+")
    arguments = parser.parse_args()
    PrintingSink(arguments.metrics, arguments.count, "sink-example", arguments.url).run()
