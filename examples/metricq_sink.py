"""Prints the points of metricq metrics as they arrive: a Sink of the Python `metricq`
package (`pip install metricq`), the counterpart of examples/metricq_source.rs.

    python3 examples/metricq_sink.py [--count N] URL METRIC...

Each point is one line: the metric, the timestamp (nanoseconds since the epoch), the value.
With --count it exits after N points; without, on Ctrl-C.
"""

import argparse

from metricq import Sink


class PrintingSink(Sink):
    def __init__(self, metrics, count, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.wanted = metrics
        self.count = count

    async def connect(self):
        await super().connect()
        await self.subscribe(self.wanted)
        print("subscribed", flush=True)

    async def on_data(self, metric, timestamp, value):
        print(metric, timestamp.posix_ns, value, flush=True)
        if self.count is not None:
            self.count -= 1
            if self.count == 0:
                # Stop from a task of its own, not from inside the message being handled.
                self._schedule_stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("url")
    parser.add_argument("metrics", nargs="+")
    arguments = parser.parse_args()
    PrintingSink(arguments.metrics, arguments.count, "sink-example", arguments.url).run()
