"""The client side of the MASQUE experiments: N inner QUIC connections through one proxy.

Each inner connection has its own CONNECT-UDP tunnel over one outer connection
(scheduled by `--outer-scheduler`; tunnel i gets outer priority `priority_of(i)`)
and echoes `--streams` streams of `--size` bytes with the QUIC echo target
(scheduled by `--inner-scheduler`). Two timings:

- all at once (default; `--open-gap` staggers the tunnels' opens, `--sequential-open`
  opens each after the previous one's answer, as a dial loop does): every tunnel,
  handshake and request starts at t0; a connection's latency is from its tunnel's
  stream open (the CONNECT-UDP request, `opened` after t0) to its last echoed byte, as
  the seed measured (the FCFS-vs-RR run);
- `--setup-first`: every tunnel and handshake first (with `--quic-forwarding`, and
  its mappings both ways), then all streams at t0; a stream's latency is from t0 to
  its last echoed byte (the nested-priority run, the bulk transfers).

Prints one JSON document (records and timings) on stdout. Run in the client's
namespace by the experiments in `experiments/masque_*.py`:

    python -m hostagent.masque.workload --proxy 10.252.0.2:4433 --target 10.252.1.2:4433 \
        --connections 100 --size 10240 --outer-scheduler rr
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from clikit import setup_logging
from clikit.args import parse_host_port
from hostagent import congestion
from hostagent.masque.client import InnerConnection, MasqueClient, MasqueError, UdpTunnel
from hostagent.masque.client_forwarding import TunnelForwardingClient
from hostagent.masque.proxy import MODES
from hostagent.schedulers import SCHEDULERS, StreamMeta


@dataclass
class Record:
    """One echoed stream."""

    conn: int
    stream: int
    priority: int  # the tunnel's (outer) priority
    stream_priority: int  # the stream's priority in its inner connection
    size: int
    latency: float | None = None  # seconds to the whole echo (see the module); None: not done
    opened: float | None = None  # seconds from t0 to the tunnel's stream open (all at once)
    error: str | None = None
    fastpath: bool = False  # the tunnel's packets went through the switch's fast path
    forwarding: bool = False  # the proxy agreed to forwarded mode (QUIC-aware proxying)


def priority_of(conn: int, priorities: int, seed: int = 1) -> int:
    """Outer priority of connection `conn` (0 with 0 levels): 1..priorities over the
    connections in a seeded shuffled order, so that opening order (what FCFS follows)
    is not priority order."""
    if priorities <= 0:
        return 0
    order = random.Random(seed).sample(range(1, priorities + 1), priorities)
    return order[conn % priorities]


def class_of(conn: int, classes: list[int]) -> int:
    """Outer priority of connection `conn` with fixed classes: they take turns."""
    return classes[conn % len(classes)]


def parse_classes(text: str) -> list[int]:
    """`--classes` ("0,10"): the priorities, each >= 0; ValueError on a bad list."""
    try:
        classes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--classes: {text!r} is not a comma-separated list of "
                         "integers") from None
    if not classes or any(c < 0 for c in classes):
        raise ValueError(f"--classes: {text!r}: give one or more priorities >= 0")
    return classes


def stream_priority_of(stream: int, streams: int, levels: int) -> int:
    """Inner priority of stream `stream`: evenly 1..levels over the streams, or 0."""
    return 0 if levels <= 0 else stream * levels // max(1, streams) + 1


#: how long `--setup-first` waits for a tunnel's forwarded-mode mappings (then goes on:
#: its packets stay in the tunnel until the mappings come)
MAPPING_WAIT_S = 5.0


async def forwarding_ready(forwarding: TunnelForwardingClient, inner: InnerConnection,
                           timeout: float) -> bool:
    """Wait until the inner handshake is confirmed (HANDSHAKE_DONE: no long-header packet,
    which the draft always tunnels, is due any more) and the CIDs in use are mapped both
    ways (or `timeout`); whether they are."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (inner.quic._handshake_confirmed and forwarding.ready(inner.quic)):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def run_workload(proxy: tuple[str, int], target: tuple[str, int], *, connections: int,
                       streams: int, size: int, outer_scheduler: str, inner_scheduler: str,
                       mode: str = "stream", priorities: int = 0, setup_first: bool = False,
                       timeout: float = 60.0, seed: int = 1, fastpath: bool = False,
                       open_gap: float = 0.0, sequential_open: bool = False,
                       quic_forwarding: bool = False,
                       classes: list[int] | None = None,
                       congestion_control: str = congestion.DEFAULT) -> dict[str, Any]:
    """Run the workload; the records, each tunnel's counters and the timings as a
    JSON-ready dict. `classes` (e.g. [0, 10]) gives the tunnels these outer priorities
    in turn instead of `priorities`' shuffled levels."""
    loop = asyncio.get_running_loop()
    records = [Record(c, s, class_of(c, classes) if classes
                      else priority_of(c, priorities, seed),
                      stream_priority_of(s, streams, priorities), size)
               for c in range(connections) for s in range(streams)]
    tunnels: list[UdpTunnel | None] = [None] * connections
    at_setup: list[dict[str, Any]] = []
    by_conn = [records[c * streams:(c + 1) * streams] for c in range(connections)]
    started = time.monotonic()
    cpu_started = time.process_time()
    async with MasqueClient(*proxy, scheduler=outer_scheduler,
                            congestion_control=congestion_control) as client:
        inners: list[InnerConnection | None] = [None] * connections
        go = asyncio.Event()
        t0 = loop.time()

        answered = [asyncio.Event() for _ in range(connections)]

        async def connection(c: int) -> None:
            mine = by_conn[c]
            if open_gap > 0:  # tunnel c opens c gaps after t0
                await asyncio.sleep(max(0.0, t0 + c * open_gap - loop.time()))
            if sequential_open and c > 0:  # a dial loop: after the previous one's answer
                await answered[c - 1].wait()
            opened = loop.time()  # open_udp opens the request stream before its first await
            if not setup_first:
                for record in mine:
                    record.opened = opened - t0
            try:
                try:
                    tunnel = await client.open_udp(*target, mode=mode,
                                                   meta=StreamMeta(priority=mine[0].priority),
                                                   fastpath=fastpath,
                                                   quic_forwarding=quic_forwarding,
                                                   timeout=timeout)
                finally:
                    answered[c].set()
                tunnels[c] = tunnel
                for record in mine:
                    record.fastpath = tunnel.on_fastpath
                    record.forwarding = tunnel.forwarding
                inner = await tunnel.quic(scheduler=inner_scheduler, timeout=timeout)
                if setup_first and tunnel.quic_proxy is not None:
                    # forwarded mode: the set-up ends once both directions are mapped
                    await forwarding_ready(tunnel.quic_proxy, inner, MAPPING_WAIT_S)
                inners[c] = inner
                if setup_first:
                    await go.wait()
                pending = [(r, inner.send(bytes([c % 256]) * size,
                                          StreamMeta(priority=r.stream_priority)))
                           for r in mine]
                for record, fut in pending:
                    answer = await fut
                    record.latency = loop.time() - (t0 if setup_first else opened)
                    if len(answer) != size:
                        record.error = f"echo of {len(answer)} bytes"
            except (MasqueError, TimeoutError, OSError) as exc:
                for record in mine:
                    if record.latency is None:
                        record.error = f"{type(exc).__name__}: {exc}"

        tasks = [asyncio.ensure_future(connection(c)) for c in range(connections)]
        setup_time = None
        if setup_first:
            deadline = loop.time() + timeout
            while sum(i is not None for i in inners) < connections and loop.time() < deadline:
                if all(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.01)
            setup_time = loop.time() - t0
            t0 = loop.time()
            # what each tunnel had carried by the end of the set-up (its handshake)
            at_setup = [{"conn": c, **t.counters()} for c, t in enumerate(tunnels)
                        if t is not None]
            go.set()
        done, pending_tasks = await asyncio.wait(tasks, timeout=timeout)
        for task in pending_tasks:
            task.cancel()
        for record in records:
            if record.latency is None and record.error is None:
                record.error = f"not done after {timeout:g} s"
        total = loop.time() - t0
        counters = [{"conn": c, **t.counters()} for c, t in enumerate(tunnels)
                    if t is not None]
        for inner in inners:
            if inner is not None:
                inner.close()
    # from t0 until the last echo (opened is None with --setup-first: t0 is the start)
    finished = [r.latency + (0.0 if setup_first else r.opened or 0.0)
                for r in records if r.latency is not None]
    return {"records": [asdict(r) for r in records], "tunnels": counters,
            "tunnels_at_setup": at_setup,
            # the event loop's clock is the host's monotonic clock: another process on
            # this host can place these (e.g. to read a daemon's CPU time between them)
            "t0_monotonic": t0, "end_monotonic": t0 + max(finished, default=0.0),
            "setup_time": setup_time,
            "total_time": max(finished) if len(finished) == len(records) else None,
            "elapsed": total, "wall": time.monotonic() - started,
            # this process's CPU seconds (every inner connection, the outer one, the
            # scheduler): near `wall`, the client itself was the bottleneck
            "client_cpu_s": time.process_time() - cpu_started,
            "congestion_control": congestion_control}


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run, print the JSON."""
    parser = argparse.ArgumentParser(prog="python -m hostagent.masque.workload",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", required=True, metavar="HOST:PORT")
    parser.add_argument("--target", required=True, metavar="HOST:PORT",
                        help="QUIC echo target (mp-target --quic)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--streams", type=int, default=1, help="streams per connection")
    parser.add_argument("--size", type=int, default=10240, help="bytes per stream")
    parser.add_argument("--outer-scheduler", default="rr", choices=list(SCHEDULERS))
    parser.add_argument("--inner-scheduler", default="rr", choices=list(SCHEDULERS))
    parser.add_argument("--mode", default="stream", choices=list(MODES))
    parser.add_argument("--priorities", type=int, default=0,
                        help="outer priority levels 1..N, shuffled over the connections "
                        "with --seed (0: every tunnel priority 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the priority shuffle")
    parser.add_argument("--classes", metavar="P,P,...",
                        help="outer priorities the tunnels take in turn (e.g. 0,10: even "
                        "tunnels 0, odd 10), instead of --priorities' shuffled levels")
    parser.add_argument("--setup-first", action="store_true",
                        help="open every tunnel and handshake before t0")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--open-gap", type=float, default=0.0, metavar="SECONDS",
                        help="open tunnel c at c x SECONDS after t0 instead of all at once "
                        "(not with --setup-first)")
    parser.add_argument("--sequential-open", action="store_true",
                        help="open each tunnel once the previous tunnel's CONNECT-UDP "
                        "request has its answer, as a client dialling in a loop does (not "
                        "with --setup-first)")
    parser.add_argument("--fastpath", action="store_true",
                        help="ask the proxy for the switch fast path for every tunnel")
    parser.add_argument("--quic-forwarding", action="store_true",
                        help="ask the proxy for forwarded mode (draft-ietf-masque-quic-proxy) "
                        "for every tunnel's inner QUIC connection")
    congestion.add_argument(parser)
    args = parser.parse_args(argv)
    if args.open_gap < 0 or (args.open_gap and args.setup_first):
        parser.error("--open-gap must be >= 0 and does not go with --setup-first")
    if args.sequential_open and args.setup_first:
        parser.error("--sequential-open does not go with --setup-first")
    try:
        proxy, target = parse_host_port(args.proxy), parse_host_port(args.target)
        classes = parse_classes(args.classes) if args.classes is not None else None
    except ValueError as exc:
        parser.error(str(exc))
    if classes and args.priorities:
        parser.error("--classes and --priorities exclude each other")
    setup_logging(logging.WARNING)
    result = asyncio.run(run_workload(
        proxy, target, connections=args.connections, streams=args.streams, size=args.size,
        outer_scheduler=args.outer_scheduler, inner_scheduler=args.inner_scheduler,
        mode=args.mode, priorities=args.priorities, setup_first=args.setup_first,
        timeout=args.timeout, seed=args.seed, fastpath=args.fastpath,
        open_gap=args.open_gap, sequential_open=args.sequential_open,
        quic_forwarding=args.quic_forwarding, classes=classes,
        congestion_control=args.congestion_control))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
