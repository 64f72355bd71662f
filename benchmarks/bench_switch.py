"""Packets per second through the fast-path decapsulation, built-in target vs BMv2.

One port pair: frames with a known flow's shim go in on port 1 and leave,
decapsulated, on port 3. The sender offers bursts as fast as Python can; the
rate is what leaves port 3 per second. Then the engine alone (no sockets) and a
profile of where its time goes. Floor for the built-in target: 10,000 packets/s.
Last, with a generator that is not the bottleneck (`masquego loadgen`, Go; where Go is
installed): round trips through one flow, decapsulated on the way in and encapsulated on
the way back, at the highest rate with under 1% loss (benchmarks/udp_load.py).
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import threading
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from benchmarks.results import Row
from bmv2 import launcher, toolchain
from clikit import no_options
from controller.entities import ip, mac
from controller.p4runtime import BlockingP4Runtime
from hostagent import shim
from netlab import capabilities
from p4src.pipeline import BMV2_JSON
from tests.dataplane import plan
from tests.dataplane.layers import MpShim
from tests.dataplane.ptf import PACKET_OUTGOING, VethPorts

FLOW, CPORT, PPORT, TPORT = 0x42, 50000, 40000, 443
SIZES = (64, 1200)
SECONDS = 3.0


def frame(size: int) -> bytes:
    head = (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=plan.CLIENT, dst=plan.FASTPATH_ADDR) /
            UDP(sport=CPORT, dport=shim.FASTPATH_PORT) / MpShim(flow_id=FLOW))
    return bytes(head / Raw(bytes(max(0, size - len(head)))))



def _measure(ports: VethPorts, data: bytes) -> float:
    """Offer `data` on port 1 for SECONDS; frames per second that leave port 3."""
    ports.drain()
    rx = ports.sockets[3]
    stamps: list[float] = []
    stop = threading.Event()

    def receive() -> None:
        rx.settimeout(0.2)
        while not stop.is_set():
            try:
                _, addr = rx.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] != PACKET_OUTGOING:
                stamps.append(time.monotonic())

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        for _ in range(16):
            ports.send(1, data)
        time.sleep(0.0005)
    time.sleep(0.5)
    stop.set()
    thread.join()
    rx.settimeout(None)
    if len(stamps) < 2:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def through_target(target: str) -> dict[int, float]:
    ports = VethPorts(4, prefix=f"mp{os.getpid() % 100000}x")
    ports.create()
    config = launcher.SwitchConfig(ports={p: ports.switch_if(p) for p in ports.ports},
                                   grpc_addr=launcher.free_grpc_addr(), log_level="error")
    results = {}
    try:
        with launcher.SwitchProcess(target, config), \
                BlockingP4Runtime(config.grpc_addr) as p4rt:
            p4rt.set_pipeline()
            p4rt.write(plan.routes() + plan.fastpath_base() +
                       plan.flow(FLOW, CPORT, PPORT, TPORT))
            for size in SIZES:
                results[size] = _measure(ports, frame(size))
    finally:
        ports.destroy()
    return results


def engine_alone(count: int = 20000) -> tuple[dict[int, float], str]:
    from bmv2.softswitch.engine import Engine, MatchKey

    engine = Engine(BMV2_JSON.read_bytes())
    prefix = "MpIngress."
    engine.add_entry(prefix + "fast_path.fastpath_local",
                     [MatchKey("exact", ip(plan.FASTPATH_ADDR))],
                     prefix + "fast_path.fastpath_here", [])
    engine.add_entry(prefix + "fast_path.fastpath_decap",
                     [MatchKey("exact", ip(plan.CLIENT)), MatchKey("exact", CPORT),
                      MatchKey("exact", FLOW)], prefix + "fast_path.decap",
                     [ip(plan.PROXY), PPORT, ip(plan.TARGET), TPORT])
    engine.add_entry(prefix + "forwarding.ipv4_lpm",
                     [MatchKey("lpm", ip("10.0.3.0"), 24)], prefix + "forwarding.route",
                     [3, mac(plan.SWITCH_MAC[3]), mac(plan.HOST_MAC[3])])
    rates = {}
    for size in SIZES:
        data = frame(size)
        assert engine.process(data, 1), "the decap path forwards"
        start = time.perf_counter()
        for _ in range(count):
            engine.process(data, 1)
        rates[size] = count / (time.perf_counter() - start)
    profiler = cProfile.Profile()
    profiler.enable()
    data = frame(64)
    for _ in range(5000):
        engine.process(data, 1)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
    return rates, out.getvalue()


def with_generator(targets: list[str]) -> dict[str, float]:
    """Round trips through one fast-path flow (decap on the way in, encap on the way back)
    offered by the Go load generator (`masquego loadgen`, not the bottleneck: it sends
    100,000 packets/s), from a client namespace on port 1 to a UDP echo on port 3: the
    highest rate with under 1% loss, in packets/s, per target. Empty without Go."""
    from benchmarks import udp_load
    from benchmarks.interop_net import InteropNet
    from tests.interop.masquego_build import build

    built = build()
    if built.binary is None:
        print(f"with the Go generator: skipped ({built.missing or built.error})")
        return {}
    rates = {}
    net = InteropNet()
    try:
        net.create()
        with contextlib.ExitStack() as stack:
            echo = udp_load.start(net, "target", [str(built.binary), "echo", "--listen",
                                                  f"0.0.0.0:{udp_load.ECHO_PORT}"],
                                  r"^ready ", "echo")
            stack.callback(echo.stop)
            for target in targets:
                with contextlib.ExitStack() as switch_stack:
                    way = udp_load.switch_way(net, target, switch_stack)
                    way.pids["echo"] = udp_load.pid(echo)
                    best = udp_load.max_rate(net, built.binary, way)
                    rates[target] = float(best.report["carried_pps"])
    finally:
        net.destroy()
    return rates


def main() -> list[Row]:
    """Print the tables; the headline rows for the README."""
    print(__doc__.strip().splitlines()[0])
    rates, profile = engine_alone()
    print("engine alone (no sockets): " + ", ".join(f"{s} B: {r:,.0f} pkt/s"
                                                   for s, r in rates.items()))
    rows = [Row("switch throughput", "engine alone (no sockets), 64 B decap",
                f"{rates[min(rates)]:,.0f} pkt/s", "-", "soft")]
    if not capabilities.netns().available:
        print(f"through the ports: skipped ({capabilities.netns().detail})")
        return rows
    table = {"soft": through_target("soft")}
    if toolchain.find("simple_switch_grpc"):
        table["bmv2"] = through_target("bmv2")
    print(f"{'frame':>6} " + " ".join(f"{t + ' pkt/s':>14}" for t in table) +
          (f" {'soft/bmv2':>10}" if "bmv2" in table else ""))
    for size in SIZES:
        row = f"{size:>5}B " + " ".join(f"{table[t][size]:>14,.0f}" for t in table)
        if "bmv2" in table:
            row += f" {table['soft'][size] / table['bmv2'][size]:>9.2f}x"
        print(row)
    floor = min(table["soft"].values())
    print(f"floor 10,000 pkt/s for the built-in target: "
          f"{'met' if floor >= 10_000 else 'NOT met'} ({floor:,.0f})")
    print("where the engine's time goes (64 B decap, top 8 by own time):")
    print("\n".join(line for line in profile.splitlines() if line.strip())[:3000])
    for size in SIZES:
        ours = " / ".join(f"{table[t][size]:,.0f}" for t in table)
        rows.append(Row("switch throughput", f"decap {size} B through the ports, pkt/s",
                        ours, "floor 10,000 (built-in)", " / ".join(table)))
    generated = with_generator(list(table))
    if generated:
        print("fast-path round trips (decap + encap) with the Go generator, 1200 B, at <1% "
              "loss: " + ", ".join(f"{t} {r:,.0f} pkt/s" for t, r in generated.items()))
        rows.append(Row("switch throughput", "fast-path round trip (decap + encap), 1200 B, "
                        "Go generator, pkt/s at <1% loss",
                        " / ".join(f"{r:,.0f}" for r in generated.values()), "-",
                        " / ".join(generated)))
    return rows


if __name__ == "__main__":
    no_options("python -m benchmarks.bench_switch", __doc__)
    main()
