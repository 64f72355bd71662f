"""End-to-end serving: the LLM back-end consults the router per request (over QUIC streams
or TLS/TCP) and answers when the emulated model has produced the answer.

The front-end tags each request with its task in a 16-byte preamble at the start of the
payload (request index u32, task u8, 3 bytes zero, issue time f64 of the monotonic clock,
which network namespaces on one host share). The back-end reads the whole request, asks
the router for a model size, runs it on the emulated cluster (`emulator.Cluster`, driven
by the wall clock) and then echoes the request, as the plain back-end does, at the moment
the emulated model finishes (or gives up at the deadline). Classes for the network: the
high-priority task, OpenBookQA, is real-time (8 KB, priority 0); COPA and PIQA are
free-tier (8 KB, priority 1); HellaSwag, whose prompts are the longest, is long (102.4 KB,
priority 2). A request's end-to-end deadline is its class's network deadline plus the
service deadline (40 ms/token).

    python -m hostagent.llm.router.serving backend --listen 0.0.0.0:4433 --scheduler edf \\
        --log backend.json
    python -m hostagent.llm.router.serving frontend --connect 10.0.0.2:4433 --transport quic \\
        --scheduler edf --requests 90 --rate 4 --json -
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import ssl
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aioquic.asyncio import connect, serve
from aioquic.quic.events import StreamDataReceived

from clikit import run_until_signalled, setup_logging
from clikit.args import parse_host_port
from hostagent.certs import credential_files
from hostagent.llm.backend import (
    BackendProtocol,
    quic_configuration,
)
from hostagent.llm.frontend import FrontendProtocol, RequestResult
from hostagent.llm.router.emulator import (
    DEFAULT_MODEL,
    Cluster,
    LatencyModel,
    Observation,
    Policy,
    RateEstimator,
)
from hostagent.llm.router.tasks import SIZES, TASKS
from hostagent.llm.wire import HEADER_SIZE, MalformedRequest, RequestHeader
from hostagent.llm.workload import CLASS_BY_NAME, CLASSES, TrafficClass
from hostagent.schedulers import (
    SCHEDULERS,
    ScheduledQuicConnection,
    StreamMeta,
    make_scheduler,
    scheduled_protocol,
)

PREAMBLE = struct.Struct("!IB3xd")
#: Network class of each task (index as in tasks.TASKS).
TASK_CLASS: dict[str, TrafficClass] = {
    "HellaSwag": CLASS_BY_NAME["long"], "COPA": CLASS_BY_NAME["free"],
    "PIQA": CLASS_BY_NAME["free"], "OpenBookQA": CLASS_BY_NAME["realtime"]}
TRANSPORTS = ("quic", "tcp-n", "tcp-1")

log = logging.getLogger("mp-llm-router")


def task_class(task: int) -> TrafficClass:
    return TASK_CLASS[TASKS[task].name]


def deadline_s(task: int, model: LatencyModel = DEFAULT_MODEL) -> float:
    """End-to-end deadline: the class's network deadline plus the service deadline."""
    return task_class(task).deadline_s + model.budget_s


def routed_request_bytes(index: int, task: int, issued_at: float,
                         model: LatencyModel = DEFAULT_MODEL) -> bytes:
    """Header (class, priority, end-to-end deadline) and payload starting with the preamble."""
    cls = task_class(task)
    header = RequestHeader(CLASSES.index(cls), cls.priority,
                           round(deadline_s(task, model) * 1000), cls.size)
    payload = PREAMBLE.pack(index, task, issued_at)
    return header.encode() + payload + bytes(cls.size - len(payload))


@dataclass
class Served:
    """What the back-end did with one request."""

    index: int
    task: int
    size: int
    gpu: int
    arrived: float  # back-end clock (monotonic, shared with the front-end)
    issued: float
    answered: float | None = None
    completed: bool = False  # the emulated model finished in time (not given up)


class LiveCluster:
    """The emulated cluster driven by the event loop's clock, with a router in front."""

    def __init__(self, router: Policy, model: LatencyModel = DEFAULT_MODEL,
                 gpus: int = 4) -> None:
        self.router, self.model = router, model
        self.cluster = Cluster(model, gpus)
        self.rates = RateEstimator()
        self.served: list[Served] = []
        self._callbacks: dict[int, Callable[[bool], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_event_loop()

    def _fire(self, now: float) -> None:
        for _, key, completed in self.cluster.advance(now):
            index = cast(int, key)  # keys are indices into `served`
            record = self.served[index]
            record.answered, record.completed = now, completed
            self._callbacks.pop(index)(completed)

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self.cluster.next_event()
        if t != float("inf"):
            self._timer = self._loop.call_at(t, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._fire(self._loop.time())
        self._reschedule()

    def submit(self, index: int, task: int, issued: float,
               on_done: Callable[[bool], None]) -> Served:
        """Route a request that arrived now; `on_done(completed)` when it leaves the model."""
        now = self._loop.time()
        self._fire(now)
        obs = Observation(self.cluster.batches(), task, self.rates.observe(now),
                          max(0.0, now - issued), self.model.budget_s)
        size = self.router(obs)
        deadline = issued + deadline_s(task, self.model)
        key = len(self.served)
        self._callbacks[key] = on_done
        replica = self.cluster.admit(key, size, now, deadline)
        record = Served(index, task, size, replica.gpu, now, issued)
        self.served.append(record)
        self._reschedule()
        return record


class RouterBackendProtocol(BackendProtocol):
    """The plain back-end's QUIC side, but each answer waits for the emulated model."""

    cluster: LiveCluster  # set by serve_router_backend

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._requests: dict[int, bytearray] = {}

    def _on_data(self, event: StreamDataReceived) -> None:
        sid = event.stream_id
        buf = self._requests.setdefault(sid, bytearray())
        first = not buf
        buf += event.data
        if first or (len(buf) - len(event.data) < HEADER_SIZE <= len(buf)):
            if len(buf) < HEADER_SIZE and not event.end_stream:
                return
            if self._declare(sid, buf) is None:
                self._requests.pop(sid)
                return
        if not event.end_stream:
            return
        data = bytes(self._requests.pop(sid))
        index, task, issued = PREAMBLE.unpack_from(data, HEADER_SIZE)

        def answer(completed: bool) -> None:
            with contextlib.suppress(ValueError, AssertionError):  # stream reset meanwhile
                self._quic.send_stream_data(sid, data, end_stream=True)
            self.transmit()

        self.cluster.submit(index, task, issued, answer)


def tcp_handler(cluster: LiveCluster) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                  Any]:
    """TLS/TCP: read requests one after the other; answer each when its model is done,
    in request order on the connection (as a byte stream must)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers: asyncio.Queue[asyncio.Future[bytes] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def write_in_order() -> None:
            while (fut := await answers.get()) is not None:
                writer.write(await fut)
                await writer.drain()

        writer_task = asyncio.create_task(write_in_order())
        try:
            while True:
                try:
                    head = await reader.readexactly(HEADER_SIZE)
                except asyncio.IncompleteReadError:
                    break
                header = RequestHeader.decode(head)
                payload = await reader.readexactly(header.payload_len)
                index, task, issued = PREAMBLE.unpack_from(payload)
                fut: asyncio.Future[bytes] = loop.create_future()
                data = head + payload

                def answer(_completed: bool, fut: asyncio.Future[bytes] = fut,
                           data: bytes = data) -> None:
                    if not fut.done():
                        fut.set_result(data)

                cluster.submit(index, task, issued, answer)
                answers.put_nowait(fut)
            answers.put_nowait(None)
            await writer_task
        except (MalformedRequest, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("tcp request dropped: %s", exc)
        finally:
            writer_task.cancel()
            writer.close()

    return handle


def load_policy(name: str) -> Policy:
    """A router by name: dqn, dqn+delay, heuristic, or small/medium/large-only."""
    if name in ("dqn", "dqn+delay"):
        from hostagent.llm.router.dqn import (
            DEFAULT_CHECKPOINT,
            DELAY_AWARE_CHECKPOINT,
            load_router,
        )
        return load_router(DELAY_AWARE_CHECKPOINT if name == "dqn+delay" else DEFAULT_CHECKPOINT)
    from hostagent.llm.router.policies import heuristic, static
    if name == "heuristic":
        return heuristic()
    for i, size in enumerate(SIZES):
        if name == f"{size}-only":
            return static(i)
    raise ValueError(f"unknown router {name!r}")


ROUTERS = ("dqn", "dqn+delay", "heuristic", "small-only", "medium-only", "large-only")


async def serve_router_backend(host: str, port: int, scheduler: str, router: Policy,
                               stop: asyncio.Event,
                               ready: asyncio.Event | None = None) -> LiveCluster:
    """Serve QUIC and TLS/TCP on host:port with `router` until `stop`; the cluster's log."""
    make_scheduler(scheduler)
    cluster = LiveCluster(router)
    config = quic_configuration(is_client=False)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with credential_files() as (cert, key):
        config.load_cert_chain(cert, key)
        tls.load_cert_chain(cert, key)
    protocol = type("BoundRouterBackend", (RouterBackendProtocol,), {"cluster": cluster})
    quic_server = await serve(host, port, configuration=config, create_protocol=scheduled_protocol(
        protocol, lambda: make_scheduler(scheduler)))
    tcp_server = await asyncio.start_server(tcp_handler(cluster), host, port, ssl=tls)
    log.info("serving QUIC and TLS/TCP on %s:%d, scheduler %s, router %s", host, port,
             scheduler, getattr(router, "__name__", router))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        quic_server.close()
        tcp_server.close()
    return cluster


# --- front-end -----------------------------------------------------------------------

@dataclass(frozen=True)
class RoutedRequest:
    index: int
    task: int
    at: float  # seconds after the start


def routed_mix(count: int, rate: float, seed: int = 1) -> list[RoutedRequest]:
    """`count` requests, tasks uniform, Poisson at `rate`/s (all at once when rate is 0)."""
    rng = random.Random(f"routed-{seed}")
    t, out = 0.0, []
    for i in range(count):
        out.append(RoutedRequest(i, rng.randrange(len(TASKS)), t))
        if rate > 0:
            t += rng.expovariate(rate)
    return out


def unpredictable_mix(duration: float, seed: int = 1,
                      phase_s: tuple[float, float] = (2.0, 10.0)) -> list[RoutedRequest]:
    """The router's unpredictable workload (`workloads.unpredictable`: Poisson phases whose
    rate is log-uniform in 0.25-48/s) over `duration` s, phases `phase_s` long."""
    from hostagent.llm.router.workloads import unpredictable

    arrivals, _ = unpredictable(seed=seed, duration=duration, phase_s=phase_s)
    return [RoutedRequest(a.index, a.task, a.time) for a in arrivals]


def _result(req: RoutedRequest, issued: float) -> RequestResult:
    cls = task_class(req.task)
    return RequestResult(req.index, cls.name, deadline_s(req.task), issued)


class RoutedFrontendProtocol(FrontendProtocol):
    def issue_routed(self, req: RoutedRequest, now: float) -> None:
        conn: ScheduledQuicConnection = self._quic  # type: ignore[assignment]
        cls = task_class(req.task)
        sid = conn.open_stream(StreamMeta(priority=cls.priority, deadline=now + deadline_s(
            req.task), traffic_class=cls.name))
        self.results[sid] = _result(req, now)
        self.outstanding += 1
        conn.send_stream_data(sid, routed_request_bytes(req.index, req.task, now),
                              end_stream=True)


async def _paced(requests: list[RoutedRequest], issue: Callable[[RoutedRequest], Any]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for req in requests:
        delay = start + req.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        issue(req)


async def run_frontend(transport: str, host: str, port: int, requests: list[RoutedRequest],
                       scheduler: str = "fcfs", timeout: float = 60.0) -> list[RequestResult]:
    """Issue `requests` over `transport`; per request, when its answer arrived."""
    loop = asyncio.get_running_loop()
    if transport == "quic":
        config = quic_configuration(is_client=True)
        config.verify_mode = ssl.CERT_NONE
        async with connect(host, port, configuration=config, create_protocol=scheduled_protocol(
                RoutedFrontendProtocol, lambda: make_scheduler(scheduler))) as client:
            proto: RoutedFrontendProtocol = client  # type: ignore[assignment]

            def issue(req: RoutedRequest) -> None:
                proto.issue_routed(req, loop.time())
                proto.transmit()

            await _paced(requests, issue)
            if requests:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proto.all_done.wait(), timeout)
            return sorted(proto.results.values(), key=lambda r: r.index)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    results = {r.index: _result(r, 0.0) for r in requests}

    async def read_answer(reader: asyncio.StreamReader, req: RoutedRequest) -> None:
        result = results[req.index]
        size = HEADER_SIZE + task_class(req.task).size
        while result.received < size:
            chunk = await reader.read(min(65536, size - result.received))
            if not chunk:
                return
            result.received += len(chunk)
        result.done_at = loop.time()

    if transport == "tcp-n":
        tasks: list[asyncio.Task[None]] = []

        async def one(req: RoutedRequest) -> None:
            results[req.index].issued_at = issued = loop.time()
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            try:
                writer.write(routed_request_bytes(req.index, req.task, issued))
                await writer.drain()
                await read_answer(reader, req)
            finally:
                writer.close()

        await _paced(requests, lambda req: tasks.append(asyncio.create_task(one(req))))
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()
    elif transport == "tcp-1":
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)

        def send(req: RoutedRequest) -> None:
            results[req.index].issued_at = issued = loop.time()
            writer.write(routed_request_bytes(req.index, req.task, issued))

        async def read_all() -> None:
            for req in requests:
                await read_answer(reader, req)

        reading = asyncio.create_task(read_all())
        await _paced(requests, send)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reading, timeout)
        writer.close()
    else:
        raise ValueError(f"unknown transport {transport!r}")
    return [results[r.index] for r in requests]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hostagent.llm.router.serving",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    be = sub.add_parser("backend", help="serve, routing each request with the router")
    be.add_argument("--listen", default="0.0.0.0:4433", metavar="HOST:PORT")
    be.add_argument("--scheduler", default="fcfs", choices=list(SCHEDULERS))
    be.add_argument("--router", default="dqn", choices=ROUTERS)
    be.add_argument("--log", type=Path, help="write what was served (JSON) here on exit")
    fe = sub.add_parser("frontend", help="issue task-tagged requests")
    fe.add_argument("--connect", required=True, metavar="HOST:PORT")
    fe.add_argument("--transport", default="quic", choices=TRANSPORTS)
    fe.add_argument("--scheduler", default="fcfs", choices=list(SCHEDULERS))
    fe.add_argument("--requests", type=int, default=90)
    fe.add_argument("--rate", type=float, default=4.0, help="requests/s (0: one burst)")
    fe.add_argument("--unpredictable", type=float, default=0.0, metavar="SECONDS",
                    help="the unpredictable workload for this long instead (Poisson phases "
                    "of 2-10 s, rates 0.25-48/s; --requests and --rate are then unused)")
    fe.add_argument("--seed", type=int, default=1)
    fe.add_argument("--timeout", type=float, default=60.0)
    fe.add_argument("--json", default="-", help="per-request results ('-': stdout)")
    args = parser.parse_args(argv)
    setup_logging(logging.INFO)
    if args.role == "backend":
        host, port = parse_host_port(args.listen)
        router = load_policy(args.router)

        cluster = run_until_signalled(lambda stop: serve_router_backend(
            host, port, args.scheduler, router, stop))
        if args.log:
            args.log.write_text(json.dumps([r.__dict__ for r in cluster.served]))
        return 0
    host, port = parse_host_port(args.connect)
    mix = (unpredictable_mix(args.unpredictable, args.seed) if args.unpredictable > 0
           else routed_mix(args.requests, args.rate, args.seed))
    results = asyncio.run(run_frontend(args.transport, host, port, mix, args.scheduler,
                                       args.timeout))
    text = json.dumps([r.to_dict() for r in results])
    if args.json == "-":
        print(text)
    else:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
