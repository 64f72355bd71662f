"""CONNECT-UDP side by side: masque-go's proxy, mp-proxy (datagram, stream), switch fast path.

One load generator for quic-go/masque-go's proxy, mp-proxy in datagram and in stream mode,
and the P4 switch's fast path.

One generator (`masquego loadgen`, Go) offers 1200-byte UDP packets at a paced rate from
the client namespace; a UDP echo (`masquego echo`) in the target namespace sends them
back. Through a proxy, the packets enter a MASQUE client in the client namespace
(`masquego tunnel`: masque-go's client for datagram mode, DATAGRAM capsules for stream
mode; started afresh for each trial, so a trial never inherits the last one's backlog);
through the switch, the generator writes the fast-path shim itself and the switch
decapsulates and encapsulates (benchmarks/interop_net.py draws the namespaces).

Per path: the highest offered rate whose echoes come back with under 1% loss (doubling
from 1,000 packets/s, then three bisections; 2-s trials, 0.5 s to drain), the round-trip
time added to the direct (kernel-forwarded) path at half that rate, and the CPU seconds
per MB echoed of each process at half that rate; ratios to masque-go. Offered and sent
rates are printed beside what was carried, so a generator that falls behind shows.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.interop_net import PROXY_IN, TARGET, TARGET_NET, InteropNet
from benchmarks.results import Row
from benchmarks.udp_load import (
    ECHO_PORT,
    SIZE,
    Trial,
    Way,
    line,
    max_rate,
    pid,
    start,
    switch_way,
    trial,
)
from clikit import no_options
from netlab import capabilities
from netlab.nsprocess import python_module
from tests.interop.masquego_build import build

LATENCY_S = 3.0
PROXY_PORT = 4433


@dataclass
class Result:
    way: Way
    best: Trial
    half: Trial
    base: Trial

    def added(self, key: str) -> float:
        return float(self.half.report[key] - self.base.report[key])

    def cpu_per_mb(self, name: str) -> float | None:
        if name not in self.half.cpu or self.half.mb <= 0:
            return None
        return self.half.cpu[name] / self.half.mb


def measure(net: InteropNet, binary: Path, way: Way, direct: Way) -> Result:
    """Max rate, then half of it through `way` and directly."""
    print(f"{way.name}:", flush=True)
    way.pids.update({k: v for k, v in direct.pids.items() if k not in way.pids})
    best = max_rate(net, binary, way)
    half_rate = best.offered / 2
    half = trial(net, binary, way, half_rate, LATENCY_S)
    base = trial(net, binary, direct, half_rate, LATENCY_S)
    print(line(way, half) + "  (half load)")
    print(line(direct, base) + "  (direct, same load)", flush=True)
    return Result(way, best, half, base)


def proxy_results(net: InteropNet, binary: Path, direct: Way) -> list[Result]:
    """Rows 1-3: masque-go's proxy, then mp-proxy in datagram and in stream mode."""
    proxy_addr = f"{PROXY_IN}:{PROXY_PORT}"
    tunnel = [*net.exec("client"), str(binary), "tunnel", "--proxy", proxy_addr, "--target",
              f"{TARGET}:{ECHO_PORT}", "--listen", "127.0.0.1:0", "--mode"]
    results = []
    go = start(net, "proxy", [str(binary), "proxy", "--listen", proxy_addr, "--allow",
                               TARGET_NET], r"^ready ", "masque-go proxy")
    try:
        way = Way("masque-go proxy", [], tunnel + ["datagram"], {"proxy": pid(go)})
        results.append(measure(net, binary, way, direct))
    finally:
        go.stop()
    mp = start(net, "proxy", python_module("hostagent.masque.proxy_cli", "--listen",
                                            proxy_addr, "--allow", TARGET_NET),
                r"serving CONNECT-UDP", "mp-proxy")
    try:
        for mode in ("datagram", "stream"):
            way = Way(f"mp-proxy {mode}", [], tunnel + [mode], {"proxy": pid(mp)})
            results.append(measure(net, binary, way, direct))
    finally:
        mp.stop()
    return results


def _fmt_cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(value: float | None, ref: float | None) -> str:
    return f"{value / ref:.2f}" if value and ref else "-"


def report(results: list[Result]) -> list[Row]:
    """Print the side-by-side table; the README rows (with ratios to masque-go)."""
    ref = results[0]
    names = ["generator", "client", "proxy", "switch", "echo"]

    def pps(r: Result) -> float:
        return float(r.best.report["carried_pps"])

    def proxy_cpu(r: Result) -> float | None:
        return r.cpu_per_mb("proxy") or r.cpu_per_mb("switch")

    print(f"\n{'way':<26}{'max pkt/s':>10}{'Mbit/s':>8}{'x masque-go':>12}"
          f"{'added p50 us':>13}{'x':>6}{'added p99 us':>13}  CPU s/MB: "
          + " ".join(f"{n:>9}" for n in names) + f"{'proxy x':>9}")
    for r in results:
        print(f"{r.way.name:<26}{pps(r):>10,.0f}{pps(r) * SIZE * 8 / 1e6:>8,.0f}"
              f"{_ratio(pps(r), pps(ref)):>12}{r.added('rtt_p50_us'):>13,.0f}"
              f"{_ratio(r.added('rtt_p50_us'), ref.added('rtt_p50_us')):>6}"
              f"{r.added('rtt_p99_us'):>13,.0f}  CPU s/MB: "
              + " ".join(f"{_fmt_cpu(r.cpu_per_mb(n)):>9}" for n in names)
              + f"{_ratio(proxy_cpu(r), proxy_cpu(ref)):>9}")
    print("(max: carried pkt/s at the highest offered rate with <1% loss; added: RTT minus "
          "the direct path's at half that rate; CPU at half that rate; proxy x: the proxy's, "
          "or the switch's, CPU per MB over masque-go's proxy's; echo is `masquego echo`)")
    ways = ", ".join(r.way.name for r in results)
    title = f"CONNECT-UDP side by side, {SIZE} B UDP echo ({ways})"

    def cells(values: list[str], ratios: list[str]) -> str:
        return " / ".join(values) + " (x masque-go: " + " / ".join(ratios) + ")"

    return [
        Row(title, "max pkt/s at <1% loss",
            cells([f"{pps(r):,.0f}" for r in results],
                  [_ratio(pps(r), pps(ref)) for r in results]), "-", "namespaces"),
        Row(title, "added RTT at half that load, us: p50 (p99)",
            cells([f"{r.added('rtt_p50_us'):,.0f} ({r.added('rtt_p99_us'):,.0f})"
                   for r in results],
                  [_ratio(r.added("rtt_p50_us"), ref.added("rtt_p50_us")) for r in results]),
            "-", "namespaces"),
        Row(title, "proxy (switch) CPU s per MB echoed at half load",
            cells([_fmt_cpu(proxy_cpu(r)) for r in results],
                  [_ratio(proxy_cpu(r), proxy_cpu(ref)) for r in results]), "-", "namespaces"),
        Row(title, "MASQUE client CPU s per MB echoed at half load",
            " / ".join(_fmt_cpu(r.cpu_per_mb("client")) for r in results), "-", "namespaces"),
    ]


def main() -> list[Row]:
    """Run every way; print the table; the README rows."""
    print(__doc__.strip().splitlines()[0])
    for cap in (capabilities.root(), capabilities.netns()):
        if not cap.available:
            print(f"skipped: {cap.detail}")
            return []
    built = build()
    if built.binary is None:
        print(f"skipped: {built.missing or built.error}")
        return []
    binary = built.binary
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the start: {load} on {os.cpu_count()} CPUs (other work on the "
          "machine takes CPU from every process measured here)")
    net = InteropNet()
    results: list[Result] = []
    try:
        net.create()
        with contextlib.ExitStack() as stack:
            echo = start(net, "target", [str(binary), "echo", "--listen",
                                          f"0.0.0.0:{ECHO_PORT}"], r"^ready ", "echo")
            stack.callback(echo.stop)
            direct = Way("direct (kernel)", ["--target", f"{TARGET}:{ECHO_PORT}"],
                         pids={"echo": pid(echo)})
            results += proxy_results(net, binary, direct)
            from bmv2 import toolchain

            for target in ["soft"] + (["bmv2"] if toolchain.find("simple_switch_grpc") else []):
                with contextlib.ExitStack() as switch_stack:
                    way = switch_way(net, target, switch_stack)
                    results.append(measure(net, binary, way, direct))
    finally:
        net.destroy()
    print("load average at the end: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    return report(results)


if __name__ == "__main__":
    no_options("python -m benchmarks.bench_interop", __doc__)
    main()
