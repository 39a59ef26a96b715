"""Python metricq peers for the metricq client's tests (tests/agent_metricq_network.rs,
tests/agent_metricq_faults.rs, tests/examples.rs; started by metricq_peer.rs beside it), on
the packaged `metricq` client (PyPI).

    python3 metricq_peer.py manager URL
                                       the test manager (below); prints `ready`
    python3 metricq_peer.py sink URL N METRIC...
                                       the Sink of examples/metricq_sink.py: prints each
                                       point as a JSON line, exits after N points
    python3 metricq_peer.py source URL TOKEN POINTS_JSON
                                       a metricq Source: declares the metrics, sends
                                       [[metric, ns, value], ...] one by one, prints `sent`
    python3 metricq_peer.py rpc URL TOKEN
                                       a metricq Client calling RPCs on the agent TOKEN:
                                       `discover` to its RPC queue and by broadcast, and
                                       `test.echo`; prints the answers as JSON lines
    python3 metricq_peer.py durable URL QUEUE METRIC...
                                       declares a durable queue bound to the metrics on
                                       the data exchange (as a database's); prints `declared`
    python3 metricq_peer.py drain URL QUEUE
                                       reads every message of QUEUE, prints each point as
                                       a JSON line, then `drained`

Every peer exits when its standard input closes (the test that started it is gone) and
gives up after 60 seconds.
"""

import asyncio
import json
import os
import re
import sys
import uuid

import aio_pika
from metricq import Agent, Client, Sink, Source, Timestamp, rpc_handler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from metricq_sink import PrintingSink  # noqa: E402


def out(value):
    print(json.dumps(value), flush=True)


async def until_stdin_closes():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


class TestManager(Agent):
    """A minimal stand-in for metricq-manager, which cannot be installed here (it is not
    packaged, and needs CouchDB): a metricq `Agent`, as the real manager is, that declares
    the same exchanges and queue and answers the RPCs these tests need the way
    metricq-manager's `manager.py` does — `source.register`, `source.declare_metrics`,
    `sink.subscribe`, `sink.unsubscribe`, `sink.release`, `get_metrics` — with metadata and
    configurations kept in memory. An RPC `test.silent` is received and never answered (a
    manager that does not answer)."""

    def __init__(self, url):
        super().__init__("manager", url)
        self.metadata = {}
        self.data_server_address = re.sub(r"//[^@/]*@", "//", url)

    async def make_connection(self, url, connection_name):
        # The real manager reconnects every 5 s; the fault tests want it back sooner.
        url = str(url) + ("&" if "?" in str(url) else "?") + "reconnect_interval=0.2&fail_fast=1"
        return await aio_pika.connect_robust(url)

    async def connect(self):
        await super().connect()
        channel = self._management_channel
        self._management_exchange = await channel.declare_exchange(
            "metricq.management", type=aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._management_broadcast_exchange = await channel.declare_exchange(
            "metricq.broadcast", type=aio_pika.ExchangeType.FANOUT, durable=True
        )
        self.management_queue = await channel.declare_queue("management", durable=True)
        await self.management_queue.bind(self._management_exchange, routing_key="#")
        await channel.declare_exchange(
            "metricq.data", type=aio_pika.ExchangeType.TOPIC, durable=True
        )
        await self.rpc_consume([self.management_queue])
        out("ready")

    async def _on_management_message(self, message):
        try:
            if json.loads(message.body).get("function") == "test.silent":
                await message.ack()
                return
        except Exception:
            pass
        await super()._on_management_message(message)

    @rpc_handler("source.register")
    async def source_register(self, from_token, **_):
        return {
            "dataServerAddress": self.data_server_address,
            "dataExchange": "metricq.data",
            "config": {"rate": 10, "token": from_token},
        }

    @rpc_handler("source.declare_metrics")
    async def declare_metrics(self, from_token, metrics=None, **_):
        if isinstance(metrics, list):
            metrics = {metric: {} for metric in metrics}
        for metric, metadata in (metrics or {}).items():
            metadata = {k: v for k, v in metadata.items() if k not in ("historic", "source")}
            metadata["source"] = from_token
            self.metadata[metric] = metadata

    @rpc_handler("sink.subscribe")
    async def subscribe(self, from_token, metrics=(), dataQueue=None, expires=None, **_):
        name = dataQueue or f"{from_token}-{uuid.uuid4().hex}-data"
        channel = await self._management_connection.channel()
        try:
            queue = await channel.declare_queue(
                name,
                auto_delete=True,
                arguments={"x-expires": int(1000 * (expires or 600))},
            )
            for metric in metrics:
                await queue.bind("metricq.data", routing_key=metric)
        finally:
            await channel.close()
        return {
            "dataServerAddress": self.data_server_address,
            "dataQueue": name,
            "metrics": list(metrics),
        }

    @rpc_handler("sink.unsubscribe")
    async def unsubscribe(self, from_token, dataQueue, metrics, **_):
        channel = await self._management_connection.channel()
        try:
            queue = await channel.get_queue(dataQueue)
            for metric in metrics:
                await queue.unbind("metricq.data", routing_key=metric)
        finally:
            await channel.close()
        return {"dataServerAddress": self.data_server_address, "dataQueue": dataQueue}

    @rpc_handler("sink.release")
    async def release(self, **_):
        return {}

    @rpc_handler("get_metrics")
    async def get_metrics(self, format="array", selector=None, prefix=None, infix=None,
                          limit=None, hidden=None, historic=None, **_):
        if format not in ("array", "object"):
            raise AttributeError(f"unknown format requested: {format}")
        if prefix is not None and infix is not None:
            raise AttributeError('cannot get_metrics with both "prefix" and "infix"')
        if selector is not None and (prefix is not None or infix is not None):
            raise AttributeError('cannot get_metrics with both "selector" and "prefix" or "infix".')
        if isinstance(selector, list) and not selector:
            raise ValueError("Empty selector list")
        found = {}
        for name in sorted(self.metadata):
            metadata = self.metadata[name]
            if isinstance(selector, str) and not re.search(selector, name):
                continue
            if isinstance(selector, list) and name not in selector:
                continue
            if prefix is not None and not name.startswith(prefix):
                continue
            if infix is not None and infix not in name:
                continue
            if hidden is not None and bool(metadata.get("hidden", False)) != hidden:
                continue
            if historic is not None and bool(metadata.get("historic", False)) != historic:
                continue
            found[name] = dict(metadata, _id=name)
            if limit is not None and len(found) >= limit:
                break
        return {"metrics": found if format == "object" else list(found)}


class JsonSink(PrintingSink):
    """The example's sink (examples/metricq_sink.py), each line as JSON."""

    def show(self, line):
        out(line)

    def show_point(self, metric, timestamp, value):
        out({"metric": metric, "timestamp": timestamp.posix_ns, "value": value})


class ListSource(Source):
    def __init__(self, points, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.points = points

    @rpc_handler("config")
    async def on_config(self, **config):
        out({"config": config})

    async def task(self):
        metrics = sorted({metric for metric, _, _ in self.points})
        await self.declare_metrics({m: {"unit": "test", "description": "from python"} for m in metrics})
        for metric, ns, value in self.points:
            await self.send(metric, Timestamp(ns), value)
        await self.flush()
        out("sent")
        await self.task_stop_future


class Caller(Client):
    async def call(self, token):
        channel = self._management_channel
        answer = await Agent.rpc(
            self, exchange=channel.default_exchange, routing_key=f"{token}-rpc",
            function="discover", timeout=20,
        )
        out({"direct": answer})
        answer = await Agent.rpc(
            self, exchange=channel.default_exchange, routing_key=f"{token}-rpc",
            function="test.echo", timeout=20, text="hello", n=3,
        )
        out({"echo": answer})
        try:
            await Agent.rpc(
                self, exchange=channel.default_exchange, routing_key=f"{token}-rpc",
                function="test.missing", timeout=20,
            )
        except Exception as error:
            out({"missing": type(error).__name__, "message": str(error)})
        # A broadcast reaches every client; keep the answer of the agent asked about.
        done = asyncio.get_running_loop().create_future()

        def on_answer(**answer):
            if answer.get("from_token") == token and not done.done():
                done.set_result(answer)

        await Agent.rpc(
            self, exchange=self._management_broadcast_exchange, routing_key="discover",
            function="discover", response_callback=on_answer, timeout=20,
            cleanup_on_response=False,
        )
        out({"broadcast": await asyncio.wait_for(done, 20)})


async def durable(url, queue, metrics):
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True)
        for metric in metrics:
            await declared.bind("metricq.data", routing_key=metric)
    out("declared")


async def drain(url, queue):
    from metricq.datachunk_pb2 import DataChunk

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while True:
            message = await declared.get(fail=False, timeout=20)
            if message is None:
                break
            chunk = DataChunk()
            chunk.ParseFromString(message.body)
            timestamp = 0
            for delta, value in zip(chunk.time_delta, chunk.value):
                timestamp += delta
                out({"metric": message.routing_key, "timestamp": timestamp, "value": value})
            await message.ack()
    out("drained")


async def main():
    role, url = sys.argv[1], sys.argv[2]
    if role == "durable":
        return await asyncio.wait_for(durable(url, sys.argv[3], sys.argv[4:]), 60)
    if role == "drain":
        return await asyncio.wait_for(drain(url, sys.argv[3]), 60)
    stdin = asyncio.create_task(until_stdin_closes())
    if role == "manager":
        agent = TestManager(url)
    elif role == "sink":
        agent = JsonSink(sys.argv[4:], int(sys.argv[3]), "sink-python", url)
    elif role == "source":
        agent = ListSource(json.loads(sys.argv[4]), sys.argv[3], url)
    elif role == "rpc":
        agent = Caller("client-python-rpc", url, add_uuid=True)
    else:
        raise SystemExit(f"unknown role {role}")
    await agent.connect()
    if role == "rpc":
        await asyncio.wait_for(agent.call(sys.argv[3]), 60)
        await agent.stop()
        return
    stopped = asyncio.create_task(agent.stopped())
    done, _ = await asyncio.wait({stdin, stopped}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if stopped not in done:
        # Returns at once when a stop is already under way (the sink's, after its last
        # point): wait for that stop to end. Returning from main() would let asyncio.run()
        # cancel the stop while it closes its connections, and aiormq's close, cancelled
        # there, never ends (the process then hangs until it is killed).
        await agent.stop()
        await asyncio.wait({stopped}, timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
