"""Controller performance: table entries installed per second (batched), the latency from
a stream registration (northbound RPC) to its entry being active in the switch (the RPC
answers once the switch acknowledged the write): p50 and p99; and a burst of 100 QUIC
mappings asked for at once, as a proxy opening 100 forwarded tunnels does: until the
last is in the switch, and how many WriteRequests carried them (concurrent northbound
calls share WriteRequests: controller/write_batcher.py). Built-in target and, where
installed, BMv2. Goals (built-in target): 5,000 entries/s, p99 under 20 ms."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import finsy as fy

from benchmarks.results import Row
from bmv2 import launcher, toolchain
from clikit import no_options
from clikit.args import parse_host_port
from controller.p4runtime import P4RuntimeSession
from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from netlab import capabilities
from tests.controller.test_controller import controller, write_config
from tests.dataplane import plan
from tests.dataplane.ptf import VethPorts

ENTRIES = 5000
BATCH = 1000
REGISTRATIONS = 300
BURST = 100
#: one-way delay the DelayRelay adds between the controller and the switch
SWITCH_DELAY_S = 0.002
OPS = (("authorization", "Bearer ops-token"),)



async def entries_per_second(address: str) -> float:
    session = P4RuntimeSession(address)
    await session.open()
    try:
        await session.set_pipeline()
        entries = [+fy.P4TableEntry("fastpath_flow_ids", match=fy.Match(flow_id=i),
                                    action=fy.Action("flow_known")) for i in range(ENTRIES)]
        start = time.perf_counter()
        for first in range(0, ENTRIES, BATCH):
            await session.write(entries[first:first + BATCH])
        return ENTRIES / (time.perf_counter() - start)
    finally:
        await session.close()


def write_requests(stub: nb_grpc.ControllerStub) -> int:
    """WriteRequests the controller sent its (one) switch so far."""
    stats = stub.GetStats(nb.Empty(), metadata=OPS, timeout=10)
    return stats.switches[0].write_requests


def quic_mapping(i: int) -> nb.QuicMapping:
    """Mapping number i: its own client port and connection IDs."""
    return nb.QuicMapping(
        direction="to_target", src_addr=plan.CLIENT, src_port=20000 + i, dst_addr=plan.PROXY,
        dst_port=4433, dcid=i.to_bytes(8, "big"), out_src_addr=plan.PROXY,
        out_src_port=40000, out_dst_addr=plan.TARGET, out_dst_port=4433,
        new_dcid=(i + 1 << 32).to_bytes(8, "big"), rank=100, tunnel=f"bench {i}")


def mapping_burst(stub: nb_grpc.ControllerStub, first: int,
                  at_once: bool) -> tuple[float, float, int]:
    """BURST InstallQuicMapping calls, all at once (as a proxy opening BURST forwarded
    tunnels together does) or one after another: seconds until the last answered, the
    median call's seconds, and the WriteRequests that carried them."""
    before = write_requests(stub)
    each: list[float] = []
    start = time.perf_counter()
    if at_once:
        def record(started: float) -> Callable[[Any], None]:
            return lambda _: each.append(time.perf_counter() - started)

        calls = []
        for i in range(first, first + BURST):
            call = stub.InstallQuicMapping.future(quic_mapping(i), metadata=OPS, timeout=60)
            call.add_done_callback(record(time.perf_counter()))
            calls.append(call)
        for call in calls:
            call.result()
    else:
        for i in range(first, first + BURST):
            called = time.perf_counter()
            stub.InstallQuicMapping(quic_mapping(i), metadata=OPS, timeout=60)
            each.append(time.perf_counter() - called)
    total = time.perf_counter() - start
    return total, statistics.median(each), write_requests(stub) - before


class DelayRelay:
    """A TCP relay on this host that holds every chunk `delay` seconds in each direction:
    the controller's P4Runtime connection through it sees a switch farther away than
    loopback (this machine has no netem; gRPC runs over the relay unchanged)."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = parse_host_port(upstream)
        self.delay = delay
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                if not chunk:
                    writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        while chunk := await reader.read(65536):
            queue.put_nowait((self._loop.time() + self.delay, chunk))
        queue.put_nowait((self._loop.time() + self.delay, b""))
        await sender

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        with contextlib.suppress(OSError):
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop).result(10)
        self.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def northbound_figures(switch: str, registrations: int) -> dict[str, Any]:
    """With a controller whose switch is at `switch`: `registrations` stream registrations
    one at a time (each's seconds), then the mapping bursts one after another and at once."""
    import grpc

    with tempfile.TemporaryDirectory() as tmp:
        nb_port = launcher.free_tcp_port()
        proc = controller(write_config(Path(tmp), switch, nb_port))
        proc.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{nb_port}") as channel:
                stub = nb_grpc.ControllerStub(channel)
                meta = (("authorization", "Bearer alice-token"),)
                latencies = []
                for i in range(registrations):
                    request = nb.Stream(key=nb.StreamKey(src_addr=plan.CLIENT,
                                                         dst_addr=plan.TARGET,
                                                         dst_port=1 + i, dscp=-1),
                                        priority=1 + i % 8)
                    start = time.perf_counter()
                    stub.RegisterStream(request, metadata=meta, timeout=10)
                    latencies.append(time.perf_counter() - start)
                stub.InstallQuicMapping(quic_mapping(2 * BURST), metadata=OPS, timeout=60)
                return {"latencies": latencies,
                        "sequential": mapping_burst(stub, 0, at_once=False),
                        "at_once": mapping_burst(stub, BURST, at_once=True)}
        finally:
            proc.stop()


def run_target(target: str) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Entries/s, the figures with the switch on loopback, and through a DelayRelay."""
    ports = VethPorts(4, prefix=f"mp{os.getpid() % 100000}k")
    ports.create()
    config = launcher.SwitchConfig(ports={p: ports.switch_if(p) for p in ports.ports},
                                   grpc_addr=launcher.free_grpc_addr(), log_level="error")
    try:
        with launcher.SwitchProcess(target, config):
            rate = asyncio.run(entries_per_second(config.grpc_addr))
            direct = northbound_figures(config.grpc_addr, REGISTRATIONS)
            with DelayRelay(config.grpc_addr, SWITCH_DELAY_S) as relay:
                far = northbound_figures(relay.address, 0)
        return rate, direct, far
    finally:
        ports.destroy()


def _burst_text(figures: dict[str, Any]) -> str:
    (seq, _, seq_req), (once, call, once_req) = figures["sequential"], figures["at_once"]
    return (f"{1e3 * seq:,.0f} ms ({seq_req} requests) / {1e3 * once:,.0f} ms "
            f"({once_req} requests, call p50 {1e3 * call:,.0f} ms)")


def main() -> list[Row]:
    """Print the table; the headline rows for the README."""
    print(__doc__.strip().splitlines()[0])
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    rows = []
    targets = ["soft"] + (["bmv2"] if toolchain.find("simple_switch_grpc") else [])
    print(f"{'target':<7} {'entries/s':>10} {'register p50 ms':>16} {'register p99 ms':>16}")
    bursts = []
    for target in targets:
        rate, direct, far = run_target(target)
        q = statistics.quantiles(direct["latencies"], n=100)
        print(f"{target:<7} {rate:>10,.0f} {1e3 * q[49]:>16.2f} {1e3 * q[98]:>16.2f}")
        if target == "soft":
            ok = rate >= 5000 and q[98] < 0.020
            print(f"        goal 5,000 entries/s and p99 < 20 ms: {'met' if ok else 'NOT met'}")
        rows.append(Row("controller", "entries/s batched; registration to active entry p50 / "
                        "p99", f"{rate:,.0f}/s; {1e3 * q[49]:.1f} / {1e3 * q[98]:.1f} ms",
                        "goal 5,000/s, p99 < 20 ms", target))
        rows.append(Row("controller", f"{BURST} QUIC mappings one after another / at once, "
                        "until the last is in the switch: switch on loopback; "
                        f"{1e3 * SWITCH_DELAY_S:g} ms away each way",
                        f"{_burst_text(direct)}; {_burst_text(far)}", "-", target))
        bursts += [(target, "loopback", direct),
                   (target, f"+{1e3 * SWITCH_DELAY_S:g} ms each way", far)]
    print(f"\n{BURST} QUIC mappings through the northbound API, until the last is in the "
          "switch (concurrent calls share WriteRequests):")
    print(f"{'target':<7} {'switch':<16} {'one after another':>24} {'at once':>24} "
          f"{'call p50':>9}")
    for target, where, figures in bursts:
        (seq, _, seq_req), (once, call, once_req) = figures["sequential"], figures["at_once"]
        print(f"{target:<7} {where:<16} {f'{1e3 * seq:,.0f} ms, {seq_req} requests':>24} "
              f"{f'{1e3 * once:,.0f} ms, {once_req} requests':>24} {1e3 * call:>6.0f} ms")
    return rows


if __name__ == "__main__":
    no_options("python -m benchmarks.bench_controller", __doc__)
    main()
