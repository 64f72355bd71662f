"""Paced UDP load through one way to an echo, and the highest rate it carries.

The pieces bench_interop and bench_switch share: a `Way` (how `masquego loadgen`
reaches the echo: directly, through a per-trial MASQUE client, or through a switch's fast
path), a `trial` at one rate with the CPU time of each process on the way, and
`max_rate`, the highest offered rate whose echoes come back with under 1% loss (doubling
from 1,000 packets/s, then bisections; a lossy trial is repeated once, since a machine
shared with other work loses packets to a moment's CPU contention).
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.interop_net import InteropNet, cpu_seconds
from netlab.nsprocess import NamespaceProcess

SIZE = 1200  # UDP payload bytes echoed (the shim comes on top on the fast path)
TRIAL_S, DRAIN_S = 2.0, 0.5
LOSS_LIMIT = 0.01
START_RATE, MAX_RATE, BISECTIONS = 1000, 256_000, 3
ECHO_PORT = 9000
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


def start(net: InteropNet, role: str | None, argv: list[str], ready: str,
           name: str) -> NamespaceProcess:
    proc = NamespaceProcess(net.ns[role] if role else None, argv, ready=ready,
                            ready_timeout=60, name=name)
    proc.start()
    return proc


def pid(proc: NamespaceProcess) -> int:
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
        forwarder = start(net, "client", way.forwarder, r"^ready ", "masque client")
        line = next(x for x in forwarder.output if x.startswith("ready "))
        target = ["--target", line.split()[1]]
        pids["client"] = pid(forwarder)
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


def line(way: Way, t: Trial) -> str:
    r = t.report
    return (f"  {way.name:<24} offered {t.offered:>8,.0f}  sent {r['sent_pps']:>8,.0f}  "
            f"carried {r['carried_pps']:>8,.0f} pkt/s  loss {100 * t.loss:5.2f}%  "
            f"rtt p50 {r['rtt_p50_us']:>8,.0f} us")


def checked_trial(net: InteropNet, binary: Path, way: Way, rate: float) -> Trial:
    """A TRIAL_S trial, repeated once if it lost too much (a machine shared with other
    work loses packets to a moment's CPU contention); the better of the two."""
    t = trial(net, binary, way, rate, TRIAL_S)
    print(line(way, t), flush=True)
    if t.loss >= LOSS_LIMIT:
        again = trial(net, binary, way, rate, TRIAL_S)
        print(line(way, again) + "  (again)", flush=True)
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
               pids={"switch": pid(switch.process)}, size=SIZE + shim.SHIM_SIZE)


