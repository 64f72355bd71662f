"""Forwarded mode of QUIC-aware proxying against tunnelled mode, through the P4 switch.

The data the working group asks for (draft-ietf-masque-quic-proxy, issue #81,
"Congestion Control Loops"): the same inner QUIC traffic through a MASQUE proxy

- tunnelled, datagram mode (HTTP Datagrams, RFC 9298) and stream mode (capsules);
- forwarded, by the proxy host in software (`mp-proxy --quic-forwarding
  --no-switch-forwarding`);
- forwarded, by the P4 switch (`mp-proxy --quic-forwarding` with the controller);

for two workloads, the seed's 100 inner connections x 10 KB echo (all at once)
and a bulk transfer (2 connections x 1 MB echo, tunnels, handshakes and
forwarded-mode mappings first),
at 0%, 0.5% and 1.5% loss with 50 ms one way at 5 Mbit/s on the client's
access link. Tunnels take two classes in turn (outer priority 0 and 10; the
outer scheduler ABS ranks them in the tunnel, the switch gets them as the
mapping's rank). Per run: completion times, echo throughput, latency per class,
the CPU seconds per MB echoed of the proxy process, the switch process and the
controller separately, and how many inner packets the proxy host relayed
(short-header packets in the tunnel, packets it forwarded in software) against
those the switch forwarded. A table, a JSON file and a plot.

    sudo .venv/bin/python -m experiments.forwarded_mode [--losses 0,0.5,1.5] \
        [--workloads echo,bulk] [--variants tunnel-dgram,tunnel-stream,fwd-soft,fwd-switch] \
        [--connections 100] [--size 10240] [--bulk-size 1000000] [--out results/forwarded]

Runs on `topologies.masque_topology.MasqueTopology` (root and Mininet): one
topology per loss rate, a fresh mp-proxy per run (so its counters are the run's;
it removes its switch mappings when stopped, which each run checks). The forwarded
variants map only the connection IDs in use (`--max-connection-ids 2`): each
mapping is a switch entry and a controller call. docs/experiments.md has the
results and what they say.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import platform
import re
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clikit import exit_on_signals
from netlab.linkemu import LinkParams, parse_spec
from schedmodels.stats import percentile

DEFAULT_LINK = "rate=5mbit,delay=50ms"
DEFAULT_LOSSES = "0,0.5,1.5"
DEFAULT_CIDS = 2


@dataclass(frozen=True)
class Variant:
    """How the inner packets cross the proxy: the tunnel mode, whether the client asks for
    forwarded mode, and mp-proxy's extra flags."""

    key: str
    label: str
    mode: str
    forwarding: bool
    proxy_args: tuple[str, ...]


VARIANTS = {v.key: v for v in (
    Variant("tunnel-dgram", "tunnelled, datagram", "datagram", False, ()),
    Variant("tunnel-stream", "tunnelled, stream", "stream", False, ()),
    Variant("fwd-soft", "forwarded, proxy software", "datagram", True,
            ("--quic-forwarding", "--no-switch-forwarding")),
    Variant("fwd-switch", "forwarded, switch", "datagram", True, ("--quic-forwarding",)),
)}
#: echo: the seed's N x 10 KB, all at once; echo-setup: the same echoes once every tunnel,
#: inner handshake and mapping is up (so set-up and transfer are measured apart); bulk:
#: 2 x 1 MB, set-up first
WORKLOADS = ("echo", "echo-setup", "bulk")
SETUP_FIRST = ("echo-setup", "bulk")


@dataclass(frozen=True)
class Run:
    """One cell of the matrix."""

    workload: str
    loss: float  # percent
    variant: Variant

    @property
    def label(self) -> str:
        return f"{self.workload}, loss {self.loss:g}%, {self.variant.label}"


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m experiments.forwarded_mode",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, of echo (the seed's N x 10 KB, all at "
                        "once), echo-setup (the same echoes after every tunnel's set-up: "
                        "set-up and transfer measured apart) and bulk (default all)")
    parser.add_argument("--losses", default=DEFAULT_LOSSES,
                        help="loss rates in %% on the client's link, comma-separated "
                        "(default %(default)s)")
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="the client's access link without loss, each way "
                        "(default %(default)r)")
    parser.add_argument("--connections", type=int, default=100,
                        help="inner connections of the echo workload (default 100)")
    parser.add_argument("--size", type=int, default=10240,
                        help="bytes each echo connection echoes (default 10240)")
    parser.add_argument("--bulk-size", type=int, default=1_000_000,
                        help="bytes each bulk connection echoes (default 1000000)")
    parser.add_argument("--bulk-connections", type=int, default=2,
                        help="bulk connections, one per class in turn (default 2)")
    parser.add_argument("--classes", default="0,10",
                        help="outer priorities the tunnels take in turn (default 0,10)")
    parser.add_argument("--outer-scheduler", default="abs",
                        help="stream scheduler of the outer connection, client and proxy "
                        "(default abs: the classes matter in the tunnel)")
    parser.add_argument("--inner-scheduler", default="rr",
                        help="scheduler of the inner connections and the echo target")
    parser.add_argument("--max-connection-ids", type=int, default=DEFAULT_CIDS, metavar="N",
                        help="mp-proxy --max-connection-ids for the forwarded variants: how "
                        "many registrations (each a mapping: a switch entry and a controller "
                        "call) a tunnel may hold at once (default %(default)s: the two CIDs "
                        "in use; mp-proxy's own default is 16, which an aioquic connection "
                        "fills with 8 CIDs each way, and the controller allows 256 mappings "
                        "per client address)")
    parser.add_argument("--target", choices=["soft", "bmv2"], default=None,
                        help="the switch target (default: BMv2 where installed, else the "
                        "built-in one; MP_TARGET overrides)")
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds one run may take (default 90)")
    parser.add_argument("--out", default="results/forwarded",
                        help="folder for JSON and PNG (default results/forwarded)")
    parser.add_argument("--from-json", metavar="PATH",
                        help="run nothing: print the tables and write JSON and PNG (to --out) "
                        "again from a saved forwarded_mode.json's raw records")
    return parser


@dataclass(frozen=True)
class Plan:
    """The checked command line: the runs and what they share."""

    runs: list[Run]
    link: LinkParams
    classes: list[int]


def parse_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    """The runs of --variants/--workloads/--losses, every other flag checked; a parser
    error (one line, exit 2) on a bad one."""
    from hostagent.masque.workload import parse_classes
    from hostagent.schedulers import SCHEDULERS

    variants = _csv(args.variants)
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        parser.error(f"unknown variant(s) {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(VARIANTS)}")
    workloads = _csv(args.workloads)
    bad = [w for w in workloads if w not in WORKLOADS]
    if bad or not workloads:
        parser.error(f"unknown workload(s) {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(WORKLOADS)}")
    try:
        losses = [float(v) for v in _csv(args.losses)]
    except ValueError:
        parser.error(f"--losses: {args.losses!r} is not a comma-separated list of numbers")
    if not losses or any(not 0 <= v < 100 for v in losses):
        parser.error(f"--losses: {args.losses!r}: give one or more rates in [0, 100)")
    bad = [s for s in (args.outer_scheduler, args.inner_scheduler) if s not in SCHEDULERS]
    if bad:
        parser.error(f"unknown scheduler(s) {', '.join(bad)}; choose from "
                     f"{', '.join(SCHEDULERS)}")
    try:
        link = parse_spec(args.link)
        classes = parse_classes(args.classes)
    except ValueError as exc:
        parser.error(str(exc) if str(exc).startswith("--") else f"--link: {exc}")
    if link.loss:
        parser.error("--link: give the loss with --losses, not in --link")
    for flag in ("connections", "size", "bulk_size", "bulk_connections"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.max_connection_ids < 2:
        parser.error("--max-connection-ids must be >= 2 (the draft's initial allowance)")
    runs = [Run(w, loss, VARIANTS[v]) for loss in losses for w in workloads for v in variants]
    return Plan(runs, link, classes)


def with_loss(link: LinkParams, loss: float) -> LinkParams:
    """`link` with `loss` percent loss."""
    return dataclasses.replace(link, loss=loss / 100)


# -- one run -----------------------------------------------------------------------------------

def workload_args(run: Run, args: argparse.Namespace) -> list[str]:
    """The client workload's flags for `run`."""
    common = ["--mode", run.variant.mode, "--outer-scheduler", args.outer_scheduler,
              "--inner-scheduler", args.inner_scheduler, "--classes", args.classes,
              "--streams", "1", "--timeout", str(args.timeout)]
    if run.variant.forwarding:
        common.append("--quic-forwarding")
    if run.workload == "bulk":
        sized = ["--connections", str(args.bulk_connections), "--size", str(args.bulk_size)]
    else:
        sized = ["--connections", str(args.connections), "--size", str(args.size)]
    return [*common, *sized, *(["--setup-first"] if run.workload in SETUP_FIRST else [])]


def proxy_args(variant: Variant, args: argparse.Namespace) -> list[str]:
    """mp-proxy's extra flags for `variant`."""
    extra = ["--scheduler", args.outer_scheduler, *variant.proxy_args]
    if variant.forwarding:
        extra += ["--max-connection-ids", str(args.max_connection_ids)]
    return extra


def proxy_counters(lines: Sequence[str]) -> dict[str, Any]:
    """mp-proxy's totals from its last "counters:" line (and its switch-forwarding stats);
    {} when it printed none."""
    for line in reversed(lines):
        found = re.search(r"counters: (\{.*?\})", line)
        if found:
            out: dict[str, Any] = ast.literal_eval(found.group(1))
            switch = re.search(r"switch forwarding: (\{.*?\})", line)
            if switch:
                out["switch_table"] = ast.literal_eval(switch.group(1))
            return out
    return {}


def switch_forwarded(stats: dict[str, Any]) -> int:
    """The switch's quic_forwarded total from `mp-ctl --json stats`."""
    total = 0
    for switch in stats.get("switches", []):
        for counter in switch.get("counters", []):
            if counter.get("name") == "quic_forwarded":
                total += int(counter.get("packets", 0))
    return total


def settled_cpu(topo: Any, label: str, quiet: float = 0.5, limit: float = 10.0) -> float:
    """CPU seconds of `label` once it stops using CPU (the tunnels' teardown after the
    client left is part of the run's cost): read until `quiet` s pass with < 10 ms used."""
    deadline = time.monotonic() + limit
    last = topo.cpu_seconds(label)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = topo.cpu_seconds(label)
        if now - last < 0.01:
            return now
        last = now
    return last


class CpuSampler:
    """Reads the CPU seconds of some of a topology's processes every `interval` s in a
    thread, with the monotonic time of each reading, so that the CPU used between two
    moments another process noted (the workload's start and end) can be told apart from
    set-up and teardown."""

    def __init__(self, topo: Any, labels: Sequence[str], interval: float = 0.1) -> None:
        self.topo, self.labels, self.interval = topo, list(labels), interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cpu-sampler")

    def _read(self) -> None:
        with contextlib.suppress(OSError, KeyError, RuntimeError):
            self.samples.append((time.monotonic(), {label: self.topo.cpu_seconds(label)
                                                    for label in self.labels}))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def __enter__(self) -> CpuSampler:
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._read()

    def at(self, moment: float) -> dict[str, float]:
        """Each process's CPU seconds at `moment`, interpolated between readings."""
        if not self.samples:
            return {}
        before = [s for s in self.samples if s[0] <= moment] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= moment] or self.samples[-1:]
        (t0, a), (t1, b) = before[-1], after[0]
        share = 0.0 if t1 <= t0 else (moment - t0) / (t1 - t0)
        return {k: a[k] + share * (b[k] - a[k]) for k in a if k in b}

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each process used from `start` to `end` (monotonic times)."""
        a, b = self.at(start), self.at(end)
        return {k: b[k] - a[k] for k in a if k in b}


def run_once(topo: Any, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """One run on a running topology with a fresh proxy of `run`'s flags: the workload's
    JSON plus CPU seconds, the proxy's counters and the switch's forwarded packets."""
    from netlab.nsprocess import python_module
    from topologies.masque_plan import QUIC_PORT

    if "mp-proxy" not in topo.processes:
        topo.start_proxy(proxy_args(run.variant, args))
    labels = ("mp-proxy", "switch", "mp-controller")
    forwarded_before = switch_forwarded(topo.ctl("stats"))
    before = {label: topo.cpu_seconds(label) for label in labels}
    with CpuSampler(topo, labels) as sampler:
        out = topo.run_on("client", python_module(
            "hostagent.masque.workload", "--proxy", f"{topo.proxy.ip}:{QUIC_PORT}",
            "--target", f"{topo.hosts[2].ip}:{QUIC_PORT}", *workload_args(run, args)),
            timeout=args.timeout * 2 + 60, label="workload")
        result: dict[str, Any] = json.loads(out)
        result["cpu_s"] = {label: settled_cpu(topo, label) - before[label] for label in labels}
    # from t0 (for bulk: after the tunnels and handshakes) to the last echoed byte
    result["transfer_cpu_s"] = sampler.between(result["t0_monotonic"], result["end_monotonic"])
    result["switch_forwarded"] = switch_forwarded(topo.ctl("stats")) - forwarded_before
    lines = topo.stop_proxy()
    result["proxy"] = proxy_counters(lines)
    result["proxy_warnings"] = [line for line in lines if "WARNING" in line][-10:]
    # what the stopped proxy left in the switch (it removes its mappings on the way out)
    result["mappings_left"] = len(topo.ctl("quic", "list").get("mappings", []))
    return result


# -- summaries ---------------------------------------------------------------------------------

def after_setup(end: list[dict[str, Any]], setup: list[dict[str, Any]]) -> dict[str, int | None]:
    """Inner packets the tunnels carried (so the proxy host relayed) after the set-up
    (tunnels and handshakes), as the client counted them: sent up, received down; None
    for a run without a set-up phase."""
    if not setup:
        return {"tunnel_after_setup_up": None, "tunnel_after_setup_down": None,
                "tunnel_short_after_setup_up": None}
    first = {t["conn"]: t for t in setup}
    up = down = short_up = 0
    for t in end:
        s = first.get(t["conn"])
        if s is None:
            continue
        up += (t["sent"] - t.get("fwd_sent", 0)) - (s["sent"] - s.get("fwd_sent", 0))
        down += t["via_proxy"] - s["via_proxy"]
        short_up += t.get("fwd_tunnelled_short", 0) - s.get("fwd_tunnelled_short", 0)
    return {"tunnel_after_setup_up": up, "tunnel_after_setup_down": down,
            "tunnel_short_after_setup_up": short_up}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Completion, throughput, latency per class, CPU per MB and relayed packets of a run."""
    records = result["records"]
    done = [r for r in records if r["latency"] is not None]
    latencies = sorted(r["latency"] for r in done)
    echoed = sum(r["size"] for r in done)
    mb = 2 * echoed / 1e6  # up and down
    total = result["total_time"]
    by_class: dict[str, dict[str, Any]] = {}
    for cls in sorted({r["priority"] for r in records}):
        mine = [r for r in records if r["priority"] == cls]
        lat = sorted(r["latency"] for r in mine if r["latency"] is not None)
        by_class[str(cls)] = {
            "connections": len(mine), "finished": len(lat),
            "mean_s": statistics.fmean(lat) if lat else None, "p50_s": percentile(lat, 50),
            "mbit_s": (statistics.fmean(r["size"] * 8 / r["latency"] / 1e6 for r in mine
                                        if r["latency"]) if lat else None)}
    cpu = result.get("cpu_s", {})
    proxy = result.get("proxy", {})
    tunnels = result.get("tunnels", [])
    relayed = {
        "tunnel_up": proxy.get("up_packets"), "tunnel_down": proxy.get("down_packets"),
        "tunnel_short_up": proxy.get("up_short_packets"),
        "tunnel_short_down": proxy.get("down_short_packets"),
        "software_up": proxy.get("forwarded_up_packets"),
        "software_down": proxy.get("forwarded_down_packets"),
        "switch": result.get("switch_forwarded")}
    short = [relayed[k] for k in ("tunnel_short_up", "tunnel_short_down", "software_up",
                                  "software_down")]
    relayed["proxy_host_inner"] = sum(short) if None not in short else None
    relayed.update(after_setup(tunnels, result.get("tunnels_at_setup", [])))
    return {
        "connections": len({r["conn"] for r in records}), "finished": len(done),
        "errors": sorted({r["error"] for r in records if r["error"]})[:5],
        "forwarding": sum(1 for t in tunnels if t.get("fwd_sent", 0) or t.get(
            "fwd_received", 0)),
        "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
        "all_done_s": total, "setup_s": result.get("setup_time"),
        "mbit_s": echoed * 8 / total / 1e6 if total else None,
        "latencies": latencies, "by_class": by_class, "mb_echoed": mb,
        "cpu_s": cpu, "cpu_s_per_mb": {k: (v / mb if mb else None) for k, v in cpu.items()},
        "transfer_cpu_s_per_mb": {k: (v / mb if mb else None)
                                  for k, v in result.get("transfer_cpu_s", {}).items()},
        "setup_cpu_ms_per_tunnel": (
            {k: 1000 * (v - result.get("transfer_cpu_s", {}).get(k, 0.0)) / len(tunnels)
             for k, v in cpu.items()} if result.get("setup_time") is not None and tunnels
            else {}),
        "relayed": relayed, "switch_table": proxy.get("switch_table"),
        "mappings_left": result.get("mappings_left"),
        "client_fwd_sent": sum(t.get("fwd_sent", 0) for t in tunnels),
        "client_fwd_received": sum(t.get("fwd_received", 0) for t in tunnels),
        "client_tunnelled_short": sum(t.get("fwd_tunnelled_short", 0) for t in tunnels)}


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(runs: dict[str, dict[str, Any]], plan: Sequence[Run]) -> str:
    """One row per run: completion, throughput, per-class latency, CPU, relayed packets."""
    header = (f"{'workload, loss, variant':<40} {'done':>7} {'p50 s':>6} {'all s':>6} "
              f"{'Mbit/s':>6} {'class mean s':>13} {'proxy s/MB':>10} {'(transfer)':>10} "
              f"{'switch s/MB':>11} {'ctl s':>6} {'host relayed':>12} {'switch fwd':>10}")
    lines = [header, "-" * len(header)]
    for run in plan:
        row = runs.get(run.label)
        if row is None:
            continue
        classes = " / ".join(_f(c["mean_s"], ".2f") for c in row["by_class"].values())
        per_mb, relayed = row["cpu_s_per_mb"], row["relayed"]
        host = relayed["proxy_host_inner"]
        lines.append(
            f"{run.label:<40} {row['finished']:>3}/{row['connections']:<3} "
            f"{_f(row['p50_s'], '.2f'):>6} {_f(row['all_done_s'], '.1f'):>6} "
            f"{_f(row['mbit_s'], '.2f'):>6} {classes:>13} "
            f"{_f(per_mb.get('mp-proxy'), '.3f'):>10} "
            f"{_f(row['transfer_cpu_s_per_mb'].get('mp-proxy'), '.3f'):>10} "
            f"{_f(per_mb.get('switch'), '.3f'):>11} "
            f"{_f(row['cpu_s'].get('mp-controller'), '.2f'):>6} "
            f"{'-' if host is None else host:>12} {_f(relayed['switch'], 'd'):>10}")
    return "\n".join(lines)


#: issue 14's bar: after the set-up, forwarded mode in the switch relays no inner packet on
#: the proxy host and costs it at most this share of tunnelled mode's CPU per MB
BAR_CPU_SHARE = 1 / 20


def bar_check(runs: dict[str, dict[str, Any]], plan: Sequence[Run]) -> list[dict[str, Any]]:
    """Per set-up-first workload and loss: the switch's transfer-phase proxy CPU per MB
    against the cheaper tunnelled mode's, the inner packets the proxy host relayed after
    the set-up, and whether both meet the bar."""
    out = []
    for workload, loss in dict.fromkeys((r.workload, r.loss) for r in plan
                                        if r.workload in SETUP_FIRST):
        row = {key: runs.get(Run(workload, loss, variant).label)
               for key, variant in VARIANTS.items()}
        switch = row["fwd-switch"]
        tunnelled_cpu = [cpu for r in (row["tunnel-dgram"], row["tunnel-stream"])
                         if r is not None
                         and (cpu := r["transfer_cpu_s_per_mb"].get("mp-proxy")) is not None]
        if switch is None or not tunnelled_cpu:
            continue
        cheapest = min(tunnelled_cpu)
        r = switch["relayed"]
        # short-header packets: the ones forwarded mode is for (the draft tunnels every
        # long-header packet); down, the proxy's count over the whole run bounds it
        relayed = sum(r.get(k) or 0 for k in ("tunnel_short_after_setup_up",
                                              "tunnel_short_down", "software_up",
                                              "software_down"))
        long_after = ((r["tunnel_after_setup_up"] or 0) + (r["tunnel_after_setup_down"] or 0)
                      - (r.get("tunnel_short_after_setup_up") or 0))
        cpu = switch["transfer_cpu_s_per_mb"].get("mp-proxy") or 0.0
        share = cpu / cheapest if cheapest else None
        out.append({"workload": workload, "loss": loss, "switch_cpu_s_per_mb": cpu,
                    "tunnelled_cpu_s_per_mb": cheapest, "share": share,
                    "relayed_after_setup": relayed, "long_header_after_setup": long_after,
                    "switch_forwarded": r["switch"],
                    "setup_cpu_ms_per_tunnel": switch["setup_cpu_ms_per_tunnel"].get(
                        "mp-proxy"),
                    "met": relayed == 0 and share is not None and share <= BAR_CPU_SHARE})
    return out


def format_bar(checks: list[dict[str, Any]]) -> str:
    """The bar's table: one line per set-up-first workload and loss."""
    header = (f"{'workload, loss':<20} {'proxy s/MB tunnelled':>20} {'switch':>8} "
              f"{'share':>7} {'relayed':>8} {'long hdr':>8} {'switch fwd':>10} "
              f"{'set-up ms/tunnel':>16} {'bar':>4}")
    lines = [header, "-" * len(header)]
    for c in checks:
        share = "-" if c["share"] is None else f"1/{1 / c['share']:.0f}" if c["share"] else "0"
        lines.append(f"{c['workload'] + ', ' + format(c['loss'], 'g') + '%':<20} "
                     f"{c['tunnelled_cpu_s_per_mb']:>20.3f} {c['switch_cpu_s_per_mb']:>8.4f} "
                     f"{share:>7} {c['relayed_after_setup']:>8} "
                     f"{c.get('long_header_after_setup', 0):>8} "
                     f"{_f(c['switch_forwarded'], 'd'):>10} "
                     f"{_f(c['setup_cpu_ms_per_tunnel'], '.1f'):>16} "
                     f"{'met' if c['met'] else 'NOT':>4}")
    return "\n".join(lines)


def format_relayed(runs: dict[str, dict[str, Any]], plan: Sequence[Run]) -> str:
    """Where the inner short-header packets went, per forwarded run."""
    header = (f"{'workload, loss, variant':<40} {'tunnel 1-RTT up/down':>20} "
              f"{'after set-up':>13} {'software fwd up/down':>20} {'switch fwd':>10} "
              f"{'switch rules (install ms mean/max)':>34}")
    lines = [header, "-" * len(header)]
    for run in plan:
        row = runs.get(run.label)
        if row is None:
            continue
        r = row["relayed"]
        table = row.get("switch_table") or {}
        rules = "-"
        if table:
            n = table.get("installed", 0)
            mean = table.get("install_ms_total", 0) / n if n else 0.0
            rules = f"{n} ({mean:.0f} / {table.get('install_ms_max', 0)})"
        tunnel = f"{r['tunnel_short_up']} / {r['tunnel_short_down']}"
        software = f"{r['software_up']} / {r['software_down']}"
        later = ("-" if r["tunnel_after_setup_up"] is None
                 else f"{r['tunnel_after_setup_up']} / {r['tunnel_after_setup_down']}")
        lines.append(f"{run.label:<40} {tunnel:>20} {later:>13} {software:>20} "
                     f"{_f(r['switch'], 'd'):>10} {rules:>34}")
    return "\n".join(lines)


def _class_bars(ax: Any, runs: dict[str, dict[str, Any]], workload: str, losses: list[float],
                variants: list[Variant], width: float) -> None:
    """Mean latency per class: per variant a bar for each class side by side (the first
    class solid, the others hatched)."""
    for vi, variant in enumerate(variants):
        rows = [runs.get(Run(workload, loss, variant).label) for loss in losses]
        classes = sorted({c for r in rows if r for c in r["by_class"]}, key=int)
        step = width / max(1, len(classes))
        for ci, cls in enumerate(classes):
            ys = [((r["by_class"].get(cls) or {}).get("mean_s") or 0.0) if r else 0.0
                  for r in rows]
            ax.bar([i + vi * width + ci * step - width / 2 + step / 2
                    for i in range(len(losses))], ys, step, color=f"C{vi}",
                   hatch=None if ci == 0 else "//", alpha=1.0 if ci == 0 else 0.55,
                   label=f"class {cls}" if vi == 0 else None)
    ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(losses))])
    ax.set_xticklabels([f"{loss:g}% loss" for loss in losses])
    ax.set_ylabel("mean latency per class (s)")
    ax.legend(fontsize=7, title="solid / hatched", title_fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def plot(runs: dict[str, dict[str, Any]], plan: Sequence[Run], path: Path, title: str) -> Path:
    """Per workload (columns): proxy CPU s/MB, switch CPU s/MB and completion (echo: all
    done; bulk: throughput) per loss rate, a bar per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in plan))
    losses = list(dict.fromkeys(r.loss for r in plan))
    variants = list(dict.fromkeys(r.variant for r in plan))
    panels = [("proxy CPU s per MB", lambda s: s["cpu_s_per_mb"].get("mp-proxy")),
              ("switch CPU s per MB", lambda s: s["cpu_s_per_mb"].get("switch")),
              ("completion", None), ("per class", None)]
    fig, axes = plt.subplots(len(panels), len(workloads), figsize=(5.5 * len(workloads), 12),
                             squeeze=False)
    width = 0.8 / max(1, len(variants))
    for col, workload in enumerate(workloads):
        for row_i, (name, value) in enumerate(panels):
            ax = axes[row_i][col]
            if name == "per class":
                _class_bars(ax, runs, workload, losses, variants, width)
                continue
            for vi, variant in enumerate(variants):
                ys = []
                for loss in losses:
                    s = runs.get(Run(workload, loss, variant).label)
                    if s is None:
                        ys.append(0.0)
                    elif value is not None:
                        ys.append(value(s) or 0.0)
                    else:
                        ys.append((s["mbit_s"] if workload == "bulk" else s["all_done_s"])
                                  or 0.0)
                ax.bar([i + vi * width for i in range(len(losses))], ys, width,
                       label=variant.label)
            ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(losses))])
            ax.set_xticklabels([f"{loss:g}% loss" for loss in losses])
            if value is None:
                name = ("echo throughput (Mbit/s)" if workload == "bulk" else "all done (s)")
            ax.set_ylabel(name)
            if row_i == 0:
                ax.set_title(workload, fontsize=10)
                ax.set_yscale("log")
            ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- main --------------------------------------------------------------------------------------

TOFINO_NOTE = ("on Tofino the switch's share is zero host CPU: the rewrite is one exact "
               "match and a header rewrite in the pipeline, at line rate; what stays on a "
               "CPU is the controller's install per mapping")


def main(argv: list[str] | None = None) -> int:
    """Run the matrix; print the tables, write JSON and PNG."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_json:
        return resummarize(parser, args)
    plan = parse_plan(parser, args)
    from bmv2 import launcher
    from experiments.masque_common import check_host

    target = args.target or launcher.selected_target()
    if not check_host("switch", "forwarded_mode"):
        return 1
    from topologies.masque_topology import MasqueTopology

    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    emulation = "plain"
    print(f"client link {args.link} + loss {args.losses}% each way; target {target}; "
          f"{len(plan.runs)} runs", flush=True)
    n = 0
    for loss in dict.fromkeys(r.loss for r in plan.runs):
        mine = [r for r in plan.runs if r.loss == loss]
        with MasqueTopology(target=target, link=with_loss(plan.link, loss),
                            link_mode=args.emulation,
                            proxy_args=proxy_args(mine[0].variant, args),
                            target_args=["--scheduler", args.inner_scheduler]) as topo:
            emulation = topo.link_how
            for run in mine:
                n += 1
                t0 = time.monotonic()
                print(f"[{n}/{len(plan.runs)}] {run.label} ...", end=" ", flush=True)
                try:
                    raw[run.label] = run_once(topo, run, args)
                except Exception as exc:  # noqa: BLE001 - the other runs go on
                    topo.stop_proxy()
                    print(f"failed: {exc}", flush=True)
                    raw[run.label] = {"error": str(exc)}
                    continue
                runs[run.label] = summarize(raw[run.label])
                s = runs[run.label]
                left = (f"; {s['mappings_left']} mappings left in the switch"
                        if s["mappings_left"] else "")
                print(f"{time.monotonic() - t0:.1f} s ({s['finished']}/{s['connections']} "
                      f"done, proxy {s['cpu_s'].get('mp-proxy', 0):.2f} CPU s{left})",
                      flush=True)
    meta = {"experiment": "forwarded_mode", "link": args.link, "losses": args.losses,
            "emulation": emulation, "target": target, "connections": args.connections,
            "size": args.size, "bulk_size": args.bulk_size,
            "bulk_connections": args.bulk_connections, "classes": plan.classes,
            "outer_scheduler": args.outer_scheduler, "inner_scheduler": args.inner_scheduler,
            "max_connection_ids": args.max_connection_ids,
            "variants": {v.key: asdict(v) for v in dict.fromkeys(r.variant
                                                                  for r in plan.runs)},
            "machine": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "tofino": TOFINO_NOTE}
    report(runs, raw, plan, meta, Path(args.out))
    print(f"({time.monotonic() - started:.0f} s)")
    failed = [r.label for r in plan.runs if r.label not in runs]
    if failed:
        print(f"forwarded_mode: {len(failed)} run(s) failed: {'; '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def resummarize(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """--from-json: the tables, JSON and plot again from a saved run's raw records (after
    a change to the read-out), without running anything."""
    try:
        data = json.loads(Path(args.from_json).read_text())
        meta, raw = data["meta"], data["raw"]
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"--from-json: {args.from_json}: not a forwarded_mode result ({exc})")
    args.losses = meta.get("losses", args.losses)
    plan = parse_plan(parser, args)
    runs = {label: summarize(result) for label, result in raw.items()
            if "error" not in result}
    plan = dataclasses.replace(plan, runs=[r for r in plan.runs if r.label in raw])
    meta["resummarized"] = time.strftime("%Y-%m-%d %H:%M:%S")
    report(runs, raw, plan, meta, Path(args.out))
    return 0


def report(runs: dict[str, dict[str, Any]], raw: dict[str, Any], plan: Plan,
           meta: dict[str, Any], out_dir: Path) -> None:
    """Print the tables; write the JSON (meta, summaries, the bar, raw records) and PNG."""
    print()
    print(format_table(runs, plan.runs))
    print("\nInner short-header packets: relayed by the proxy host (in the tunnel; forwarded "
          "in software) and forwarded by the switch")
    print(format_relayed(runs, plan.runs))
    checks = bar_check(runs, plan.runs)
    if checks:
        print("\nAfter the set-up (tunnels, inner handshakes confirmed, mappings installed): "
              "proxy CPU per MB of forwarded mode in the switch against the cheaper tunnelled "
              f"mode's (bar: at most 1/{1 / BAR_CPU_SHARE:.0f}, and no inner short-header "
              "packet relayed by the proxy host; 'long hdr': late handshake packets, which "
              "the draft always tunnels)")
        print(format_bar(checks))
    print(f"\n({TOFINO_NOTE})")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "forwarded_mode.json"
    path.write_text(json.dumps({"meta": meta, "summary": runs, "bar": checks, "raw": raw},
                               indent=1))
    png = plot(runs, plan.runs, path.with_suffix(".png"),
               f"client link {meta['link']} ({meta['emulation']}), switch target "
               f"{meta['target']}\necho {meta['connections']} x {meta['size']} B (at once; "
               f"echo-setup: after set-up); bulk {meta['bulk_connections']} x "
               f"{meta['bulk_size']} B after set-up; classes {meta['classes']}, outer "
               f"{meta['outer_scheduler']}")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
