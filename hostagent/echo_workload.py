"""Many prioritized streams on one QUIC connection to the echo target: the seed thesis's
end-to-end PIFO run.

`--streams` streams of `--size` bytes each, all opened at once on one QUIC
connection to the QUIC echo target (`mp-target --quic`), with priorities 1 to
`--levels` spread evenly over the streams in a seeded shuffled order (so that
opening order is not priority order). The client's stream scheduler (`abs`: the
seed's sorted list with linear-scan insertion; `pifo-abs`: a binary heap)
decides which stream's data goes first. Per stream: latency from its opening to
the last echoed byte. Per run: the management time, i.e. the wall time spent in
the scheduler's PIFO operations (insert, extract, re-insert, removal) and in the
whole scheduling hook, measured in the run itself. Prints one JSON document.

    python -m hostagent.echo_workload --connect 10.251.3.2:4433 --scheduler pifo-abs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import ssl
import sys
import time
from collections.abc import Hashable, Iterator
from typing import Any

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived

from clikit.args import parse_host_port
from hostagent.masque.target import echo_configuration
from hostagent.schedulers import (
    SCHEDULERS,
    ScheduledQuicConnection,
    StreamMeta,
    StreamScheduler,
    make_scheduler,
)
from hostagent.schedulers.disciplines import RankedScheduler
from hostagent.schedulers.pifo import Pifo, Rank


class TimedPifo:
    """A PIFO that adds up the wall time of every operation on the PIFO it wraps."""

    def __init__(self, inner: Pifo) -> None:
        self.inner = inner
        self.seconds = {"push": 0.0, "pop": 0.0, "remove": 0.0}
        self.calls = {"push": 0, "pop": 0, "remove": 0}

    def _timed(self, op: str, start: float) -> None:
        self.seconds[op] += time.perf_counter() - start
        self.calls[op] += 1

    def push(self, item: Hashable, rank: Rank) -> None:
        start = time.perf_counter()
        self.inner.push(item, rank)
        self._timed("push", start)

    def pop(self) -> Hashable:
        start = time.perf_counter()
        item = self.inner.pop()
        self._timed("pop", start)
        return item

    def peek(self) -> Hashable:
        return self.inner.peek()

    def remove(self, item: Hashable) -> None:
        start = time.perf_counter()
        self.inner.remove(item)
        self._timed("remove", start)

    def __contains__(self, item: object) -> bool:
        return item in self.inner

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.inner)


def timed_scheduler(name: str) -> StreamScheduler:
    """Scheduler `name`; for a PIFO-based one, its PIFO wrapped in a `TimedPifo`."""
    scheduler = make_scheduler(name)
    if isinstance(scheduler, RankedScheduler):
        scheduler.pifo = TimedPifo(scheduler.pifo)
    return scheduler


class TimedHookConnection(ScheduledQuicConnection):
    """Adds up the wall time of the scheduling hook (the discipline and the queue
    re-arrangement around it) before each packet."""

    hook_seconds = 0.0  # class defaults: adopt() converts a connection without __init__
    hook_calls = 0

    def _arrange(self, queue: list[Any]) -> None:
        start = time.perf_counter()
        super()._arrange(queue)
        self.hook_seconds += time.perf_counter() - start
        self.hook_calls += 1


class EchoClient(QuicConnectionProtocol):
    """Opens the streams and records when each echo is complete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.received: dict[int, int] = {}
        self.all_done = asyncio.Event()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.received[event.stream_id] = self.received.get(event.stream_id, 0) + len(
                event.data)
            if event.end_stream:
                self.done[event.stream_id] = self._loop.time()
                if len(self.done) == len(self.opened):
                    self.all_done.set()
        elif isinstance(event, ConnectionTerminated):
            self.all_done.set()


def priorities(streams: int, levels: int, seed: int) -> list[int]:
    """Priority 1..levels for each stream: equal shares, in a seeded shuffled order."""
    values = [i % levels + 1 for i in range(streams)]
    random.Random(seed).shuffle(values)
    return values


async def run(host: str, port: int, *, streams: int, size: int, levels: int, scheduler: str,
              seed: int = 1, timeout: float = 120.0) -> dict[str, Any]:
    """Open the streams, wait for every echo (or the timeout); the JSON-ready result."""
    config = echo_configuration(is_client=True, idle_timeout=timeout + 30)
    config.verify_mode = ssl.CERT_NONE  # the target's certificate is throw-away
    sched = timed_scheduler(scheduler)

    def adopt(connection: QuicConnection, **kwargs: Any) -> EchoClient:
        return EchoClient(TimedHookConnection.adopt(connection, sched), **kwargs)

    prios = priorities(streams, levels, seed)
    async with connect(host, port, configuration=config, create_protocol=adopt) as client:
        proto: EchoClient = client  # type: ignore[assignment]
        conn: TimedHookConnection = proto._quic  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ids = []
        for priority in prios:
            sid = conn.open_stream(StreamMeta(priority=priority))
            proto.opened[sid] = loop.time()
            conn.send_stream_data(sid, bytes(size), end_stream=True)
            ids.append(sid)
        proto.transmit()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proto.all_done.wait(), timeout)
        elapsed = loop.time() - t0
        records = [{"stream": sid, "priority": p,
                    "latency": (proto.done[sid] - proto.opened[sid]) if sid in proto.done
                    else None, "received": proto.received.get(sid, 0)}
                   for sid, p in zip(ids, prios, strict=True)]
        pifo = sched.pifo if isinstance(sched, RankedScheduler) else None
        management = ({"pifo_s": sum(pifo.seconds.values()), "pifo_ops": dict(pifo.calls),
                       "pifo_op_s": dict(pifo.seconds)} if isinstance(pifo, TimedPifo) else {})
        return {"records": records, "elapsed": elapsed,
                "management": {**management, "hook_s": conn.hook_seconds,
                               "hook_calls": conn.hook_calls}}


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run, print the JSON."""
    parser = argparse.ArgumentParser(prog="python -m hostagent.echo_workload",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", required=True, metavar="HOST:PORT",
                        help="QUIC echo target (mp-target --quic)")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10240, help="bytes per stream")
    parser.add_argument("--levels", type=int, default=10, help="priority levels 1..N")
    parser.add_argument("--scheduler", default="pifo-abs", choices=list(SCHEDULERS))
    parser.add_argument("--seed", type=int, default=1, help="seed of the priority shuffle")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        host, port = parse_host_port(args.connect)
    except ValueError as exc:
        parser.error(str(exc))
    if args.streams < 1 or args.size < 1 or args.levels < 1:
        parser.error("--streams, --size and --levels must be >= 1")
    result = asyncio.run(run(host, port, streams=args.streams, size=args.size,
                             levels=args.levels, scheduler=args.scheduler, seed=args.seed,
                             timeout=args.timeout))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
