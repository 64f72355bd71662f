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
import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.interop_net import PROXY_IN, TARGET, TARGET_NET, InteropNet, cpu_seconds
from benchmarks.results import Row
from tests.interop.masquego_build import build
from topologies import capabilities
from topologies.nsprocess import NamespaceProcess, python_module

SIZE = 1200
TRIAL_S, DRAIN_S, LATENCY_S = 2.0, 0.5, 3.0
LOSS_LIMIT = 0.01
START_RATE, MAX_RATE, BISECTIONS = 1000, 256_000, 3
ECHO_PORT, PROXY_PORT = 9000, 4433
FLOW, CPORT, PPORT = 0x77, 50001, 40001


@dataclass
class Way:
    """One way through: how the generator reaches the echo, and the processes on it."""

    name: str
    loadgen_args: list[str]  # --target and extras of the generator
    forwarder: list[str] | None = None  # argv of the per-trial MASQUE client, or None
    pids: dict[str, int] = field(default_factory=dict)  # long-lived processes to account
    size: int = SIZE  # the generator's UDP payload (shim included)


@dataclass
class Trial:
    offered: float
    report: dict
    cpu: dict[str, float]

    @property
    def loss(self) -> float:
        return float(self.report["loss"])

    @property
    def mb(self) -> float:
        return self.report["received"] * SIZE / 1e6


def _start(net: InteropNet, role: str | None, argv: list[str], ready: str,
           name: str) -> NamespaceProcess:
    proc = NamespaceProcess(net.ns[role] if role else None, argv, ready=ready,
                            ready_timeout=60, name=name)
    proc.start()
    return proc


def _pid(proc: NamespaceProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


def settle(pids: dict[str, int], limit: float = 5.0) -> None:
    """Wait (up to `limit` s) until no process of the way uses more than 10% of a CPU: a
    trial after an overloaded one starts once the backlog is gone."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        time.sleep(0.2)
        if all(cpu_seconds(p) - before[k] < 0.02 for k, p in pids.items()):
            return


def trial(net: InteropNet, binary: Path, way: Way, rate: float, seconds: float) -> Trial:
    """Offer `rate` packets/s for `seconds`; the generator's report and CPU per process."""
    settle(way.pids)
    pids = dict(way.pids)
    target = list(way.loadgen_args)
    forwarder = None
    if way.forwarder is not None:
        forwarder = _start(net, "client", way.forwarder, r"^ready ", "masque client")
        line = next(x for x in forwarder.output if x.startswith("ready "))
        target = ["--target", line.split()[1]]
        pids["client"] = _pid(forwarder)
    try:
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [*net.exec("client"), str(binary), "loadgen", *target, "--rate", f"{rate:.0f}",
             "--duration", f"{seconds}s", "--drain", f"{DRAIN_S}s", "--size", str(way.size)],
            capture_output=True, text=True, timeout=seconds + DRAIN_S + 30)
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {k: cpu_seconds(p) - before[k] for k, p in pids.items()}
    finally:
        if forwarder is not None:
            forwarder.stop()
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    if report["loss"] > 0.5 and forwarder is not None:
        print("    (most lost; the MASQUE client said: "
              + " | ".join(list(forwarder.output)[-4:]) + ")")
    cpu["generator"] = ((after_children.ru_utime + after_children.ru_stime)
                        - (children.ru_utime + children.ru_stime))
    return Trial(rate, report, cpu)


def _line(way: Way, t: Trial) -> str:
    r = t.report
    return (f"  {way.name:<24} offered {t.offered:>8,.0f}  sent {r['sent_pps']:>8,.0f}  "
            f"carried {r['carried_pps']:>8,.0f} pkt/s  loss {100 * t.loss:5.2f}%  "
            f"rtt p50 {r['rtt_p50_us']:>8,.0f} us")


def checked_trial(net: InteropNet, binary: Path, way: Way, rate: float) -> Trial:
    """A TRIAL_S trial, repeated once if it lost too much (a machine shared with other
    work loses packets to a moment's CPU contention); the better of the two."""
    t = trial(net, binary, way, rate, TRIAL_S)
    print(_line(way, t), flush=True)
    if t.loss >= LOSS_LIMIT:
        again = trial(net, binary, way, rate, TRIAL_S)
        print(_line(way, again) + "  (again)", flush=True)
        t = min(t, again, key=lambda x: x.loss)
    return t


def max_rate(net: InteropNet, binary: Path, way: Way) -> Trial:
    """The highest offered rate with under LOSS_LIMIT loss: doubling, then bisections."""
    good: Trial | None = None
    bad: float | None = None
    rate = float(START_RATE)
    while rate >= 125:
        t = checked_trial(net, binary, way, rate)
        if t.loss < LOSS_LIMIT:
            good = t
            if bad is not None or rate >= MAX_RATE:
                break
            rate *= 2
        else:
            bad = rate
            if good is not None:
                break
            rate /= 2
    if good is None:
        raise RuntimeError(f"{way.name}: loss above {LOSS_LIMIT:.0%} even at 125 pkt/s")
    if bad is not None and bad > good.offered:
        low, high = good.offered, bad
        for _ in range(BISECTIONS):
            mid = (low + high) / 2
            t = checked_trial(net, binary, way, mid)
            if t.loss < LOSS_LIMIT:
                good, low = t, mid
            else:
                high = mid
    return good


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
    print(_line(way, half) + "  (half load)")
    print(_line(direct, base) + "  (direct, same load)", flush=True)
    return Result(way, best, half, base)


def proxy_results(net: InteropNet, binary: Path, direct: Way) -> list[Result]:
    """Rows 1-3: masque-go's proxy, then mp-proxy in datagram and in stream mode."""
    proxy_addr = f"{PROXY_IN}:{PROXY_PORT}"
    tunnel = [*net.exec("client"), str(binary), "tunnel", "--proxy", proxy_addr, "--target",
              f"{TARGET}:{ECHO_PORT}", "--listen", "127.0.0.1:0", "--mode"]
    results = []
    go = _start(net, "proxy", [str(binary), "proxy", "--listen", proxy_addr, "--allow",
                               TARGET_NET], r"^ready ", "masque-go proxy")
    try:
        way = Way("masque-go proxy", [], tunnel + ["datagram"], {"proxy": _pid(go)})
        results.append(measure(net, binary, way, direct))
    finally:
        go.stop()
    mp = _start(net, "proxy", python_module("hostagent.masque.proxy_cli", "--listen",
                                            proxy_addr, "--allow", TARGET_NET),
                r"serving CONNECT-UDP", "mp-proxy")
    try:
        for mode in ("datagram", "stream"):
            way = Way(f"mp-proxy {mode}", [], tunnel + [mode], {"proxy": _pid(mp)})
            results.append(measure(net, binary, way, direct))
    finally:
        mp.stop()
    return results


def switch_way(net: InteropNet, target: str, stack: contextlib.ExitStack) -> Way:
    """The fast path of one flow on a switch of `target` (soft or bmv2)."""
    from bmv2 import launcher
    from controller.p4runtime import BlockingP4Runtime
    from tests.dataplane import plan

    ports = net.add_switch_ports() if not net.switched else {
        p: s for p, (s, _) in net.switch_if.items()}
    config = launcher.SwitchConfig(ports=ports, grpc_addr=launcher.free_grpc_addr(),
                                   log_level="error")
    switch = launcher.SwitchProcess(target, config)
    stack.enter_context(switch)
    with BlockingP4Runtime(config.grpc_addr) as p4rt:
        p4rt.set_pipeline()
        p4rt.write(plan.routes() + plan.fastpath_base() +
                   plan.flow(FLOW, CPORT, PPORT, ECHO_PORT))
    from hostagent import shim

    return Way(f"switch fast path ({target})",
               ["--target", f"{plan.FASTPATH_ADDR}:{shim.FASTPATH_PORT}", "--bind",
                f"{plan.CLIENT}:{CPORT}", "--shim-flow", str(FLOW)],
               pids={"switch": _pid(switch.process)}, size=SIZE + shim.SHIM_SIZE)


def _fmt_cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(results: list[Result]) -> list[Row]:
    """Print the side-by-side table; the README rows."""
    ref = results[0]
    names = ["generator", "client", "proxy", "switch", "echo"]
    print(f"\n{'way':<26}{'max pkt/s':>10}{'Mbit/s':>8}{'x masque-go':>12}"
          f"{'added p50 us':>13}{'added p99 us':>13}  CPU s/MB: "
          + " ".join(f"{n:>9}" for n in names) + f"{'proxy x':>9}")
    for r in results:
        best = r.best.report
        proxy_cpu = r.cpu_per_mb("proxy") or r.cpu_per_mb("switch")
        ref_cpu = ref.cpu_per_mb("proxy")
        ratio = f"{proxy_cpu / ref_cpu:.2f}" if proxy_cpu and ref_cpu else "-"
        print(f"{r.way.name:<26}{best['carried_pps']:>10,.0f}"
              f"{best['carried_pps'] * SIZE * 8 / 1e6:>8,.0f}"
              f"{best['carried_pps'] / ref.best.report['carried_pps']:>12.2f}"
              f"{r.added('rtt_p50_us'):>13,.0f}{r.added('rtt_p99_us'):>13,.0f}  CPU s/MB: "
              + " ".join(f"{_fmt_cpu(r.cpu_per_mb(n)):>9}" for n in names) + f"{ratio:>9}")
    print("(max: carried pkt/s at the highest offered rate with <1% loss; added: RTT minus "
          "the direct path's at half that rate; CPU at half that rate; echo is "
          "`masquego echo`, not counted in the ratio)")
    ways = ", ".join(r.way.name for r in results)
    title = f"CONNECT-UDP side by side, {SIZE} B UDP echo ({ways})"
    pps = " / ".join(f"{r.best.report['carried_pps']:,.0f}" for r in results)
    ratios = " / ".join(f"{r.best.report['carried_pps'] / ref.best.report['carried_pps']:.2f}"
                        for r in results)
    lat = " / ".join(f"{r.added('rtt_p50_us'):,.0f}/{r.added('rtt_p99_us'):,.0f}"
                     for r in results)
    cpu = " / ".join(_fmt_cpu(r.cpu_per_mb("proxy") or r.cpu_per_mb("switch"))
                     for r in results)
    client_cpu = " / ".join(_fmt_cpu(r.cpu_per_mb("client")) for r in results)
    return [Row(title, "max pkt/s at <1% loss (ratio to masque-go)", f"{pps} ({ratios})", "-",
                "namespaces"),
            Row(title, "added RTT p50/p99 at half that load, us", lat, "-", "namespaces"),
            Row(title, "proxy (switch) CPU s per MB echoed at half load", cpu, "-",
                "namespaces"),
            Row(title, "MASQUE client CPU s per MB echoed at half load", client_cpu, "-",
                "namespaces")]


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
    print("load average at the start: {:.1f} {:.1f} {:.1f} on {} CPUs (other work on the "
          "machine takes CPU from every process measured here)".format(*os.getloadavg(),
                                                                       os.cpu_count()))
    net = InteropNet()
    results: list[Result] = []
    try:
        net.create()
        with contextlib.ExitStack() as stack:
            echo = _start(net, "target", [str(binary), "echo", "--listen",
                                          f"0.0.0.0:{ECHO_PORT}"], r"^ready ", "echo")
            stack.callback(echo.stop)
            direct = Way("direct (kernel)", ["--target", f"{TARGET}:{ECHO_PORT}"],
                         pids={"echo": _pid(echo)})
            results += proxy_results(net, binary, direct)
            from bmv2 import toolchain

            for target in ["soft"] + (["bmv2"] if toolchain.find("simple_switch_grpc") else []):
                with contextlib.ExitStack() as switch_stack:
                    way = switch_way(net, target, switch_stack)
                    results.append(measure(net, binary, way, direct))
    finally:
        net.destroy()
    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    return report(results)


if __name__ == "__main__":
    main()
