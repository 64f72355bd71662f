"""LLM serving through the MASQUE proxy and the P4 switch in Mininet, fast path off and on.

    sudo .venv/bin/python experiments/llm_serving.py [--fastpath off|on|both] \\
        [--scheduler edf,ml] [--target soft|bmv2] [--link "rate=5mbit,delay=50ms,loss=0.5%"] \\
        [--bottleneck 2mbit] [--requests 30] [--seed 1] [--out results/llm] [--cli]
    sudo .venv/bin/python experiments/llm_serving.py --cleanup

    client 10.0.1.10 --port 1--+   P4 switch mps1       +--port 3-- t1 10.0.3.10
      LLM front-end            |   fast path 10.0.2.1   |   LLM back-end :4443 (one per
      --transport masque       |   SP-PIFO ranks        |   scheduler: :4443, :4444, ...)
      [mpe1: --link emulated]  |                        |   (and mp-target :4433/:4434)
    proxy 10.0.2.10 --port 2---+
      mp-proxy --controller    root namespace: mp-controller, this script

The topology is `masque_proxy.py`'s (MasqueTopology: the switch, mp-controller,
mp-proxy, one target host), with the LLM back-end started on `t1` and the front-end
(`python -m hostagent.llm.frontend --transport masque`) run on `client`: its QUIC
connection runs inside one CONNECT-UDP tunnel through mp-proxy. With the fast path
off the proxy relays every packet; with it on the switch carries them, each tagged
with the DSCP of its most urgent open class (real-time 46, free-tier 26, long 10),
which the proxy registers with the controller as one rank per class (plus the
tunnel's own), so that the switch's SP-PIFO queues rank the classes. With
`--bottleneck` the switch's port towards t1 is shaped (built-in target only), so
that those ranks decide who waits there.

Without --cli it runs every (scheduler, fast path) variant once on one topology
and prints per class the completion and on-time rates and latency p50/p99, and
the proxy's CPU seconds per MB exchanged (requests plus answers), from
`/proc/<mp-proxy>/stat` before and after each run; it writes
results/llm/llm_serving.{json,png}. With --cli it opens Mininet's CLI with the
back-end running. Cleanup, signals and the one-topology-at-a-time lock are
MasqueTopology's (`--cleanup` is masque_proxy.py's).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `python experiments/llm_serving.py`
    sys.path.insert(0, str(REPO))

from clikit import run_guarded  # noqa: E402
from netlab.linkemu import format_spec  # noqa: E402
from schedmodels.stats import percentile  # noqa: E402
from topologies.script_args import (  # noqa: E402
    add_link_arguments,
    parse_bottleneck,
    parse_links,
    preflight,
)

PROG = "llm_serving"
DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
BACKEND_HOST = "t1"
BACKEND_PORT = 4443  # mp-target has 4433 (QUIC) and 4434 (UDP) on t1; +i for scheduler i
FASTPATH = {"off": (False,), "on": (True,), "both": (False, True)}
SEED_RESULT = ("seed thesis (90 requests, direct, no proxy): EDF and ML best; ABS and ML "
               "100% on time for real-time")
_RANKS = re.compile(r"fast path granted: flow (\d+),.*?(?:, (\d+) stream ranks)?\s*$")


class _Outcome:
    """A request result read back from the front-end's JSON (for report.summarize)."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.traffic_class = row["traffic_class"]
        self.latency = row["latency"]
        self.on_time = row["on_time"]



def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per class: hostagent.llm.report.summarize of the front-end's rows, plus the
    completion rate and latency p50/p99."""
    from hostagent.llm.report import summarize

    summary = summarize(_Outcome(r) for r in rows)
    for row in summary.values():
        n, lat = row["requests"], row["latencies"]
        row["completed"] = row["finished"] / n if n else None
        row["p50"], row["p99"] = percentile(lat, 50), percentile(lat, 99)
    return summary


def exchanged_bytes(rows: list[dict[str, Any]]) -> int:
    """Application bytes through the tunnel: every request sent plus the answers received."""
    from hostagent.llm.wire import HEADER_SIZE
    from hostagent.llm.workload import CLASS_BY_NAME

    return sum(HEADER_SIZE + CLASS_BY_NAME[r["traffic_class"]].size + r["received"]
               for r in rows)


@dataclass
class VariantResult:
    """One front-end run: its rows, what the tunnel got, what the proxy spent."""

    scheduler: str
    fastpath: bool
    rows: list[dict[str, Any]]
    seconds: float
    proxy_cpu_s: float
    granted: bool = False
    flow: str = ""              # "flow N via ADDR:PORT" when granted
    slow_path_reason: str = ""  # why the proxy refused the fast path, when asked
    shims_sent: int = 0
    shims_received: int = 0
    via_proxy: int = 0          # packets the front-end received through the proxy
    stream_ranks: int | None = None  # ranks the proxy registered for the flow
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per run pooled into this one (`pool`): each class's on-time share
    per_run_on_time: list[dict[str, float | None]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.scheduler}, fast path {'on' if self.fastpath else 'off'}"

    @property
    def mb(self) -> float:
        return exchanged_bytes(self.rows) / 1e6

    @property
    def cpu_per_mb(self) -> float | None:
        return self.proxy_cpu_s / self.mb if self.mb else None

    @property
    def completed(self) -> int:
        return sum(r["latency"] is not None for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        summary = {c: {k: v for k, v in row.items() if k != "latencies"}
                   for c, row in self.summary.items()}
        return {"scheduler": self.scheduler, "fastpath": self.fastpath,
                "seconds": self.seconds, "granted": self.granted, "flow": self.flow,
                "slow_path_reason": self.slow_path_reason, "shims_sent": self.shims_sent,
                "shims_received": self.shims_received, "via_proxy": self.via_proxy,
                "stream_ranks": self.stream_ranks, "mb_exchanged": self.mb,
                "proxy_cpu_s": self.proxy_cpu_s, "proxy_cpu_s_per_mb": self.cpu_per_mb,
                "runs": max(1, len(self.per_run_on_time)),
                "per_run_on_time": self.per_run_on_time, "summary": summary,
                "requests": self.rows}


def pool(runs: list[VariantResult]) -> VariantResult:
    """Repeated runs of one variant as one result: the requests of every run together
    (each row tagged with its run), times, CPU and shim counts added up, and each run's
    on-time share per class kept, so that the tables can show the spread."""
    first = runs[0]
    rows = [{**row, "run": i} for i, r in enumerate(runs, start=1) for row in r.rows]
    pooled = VariantResult(
        first.scheduler, first.fastpath, rows, sum(r.seconds for r in runs),
        sum(r.proxy_cpu_s for r in runs), granted=all(r.granted for r in runs),
        flow=first.flow, slow_path_reason=next((r.slow_path_reason for r in runs
                                                if r.slow_path_reason), ""),
        shims_sent=sum(r.shims_sent for r in runs),
        shims_received=sum(r.shims_received for r in runs),
        via_proxy=sum(r.via_proxy for r in runs), stream_ranks=first.stream_ranks)
    pooled.summary = summarize_rows(rows)
    pooled.per_run_on_time = [{c: row["on_time"] for c, row in r.summary.items()}
                              for r in runs]
    return pooled


def start_backend(topo: Any, scheduler: str, port: int = BACKEND_PORT) -> str:
    """Start the LLM back-end (`scheduler`) on BACKEND_HOST of MasqueTopology `topo`, stopped
    with the topology; its HOST:PORT."""
    host = next(h for h in topo.hosts if h.name == BACKEND_HOST)
    topo.start_daemon(f"llm back-end {scheduler}", host.name, [
        sys.executable, "-m", "hostagent.llm.backend", "--listen", f"{host.ip}:{port}",
        "--scheduler", scheduler], r"serving QUIC")
    return f"{host.ip}:{port}"


def frontend_argv(topo: Any, backend: str, scheduler: str, fastpath: bool, requests: int,
                  seed: int, timeout: float) -> list[str]:
    """The front-end's command line on `client`, through the topology's proxy."""
    from topologies.masque_plan import QUIC_PORT

    return [sys.executable, "-m", "hostagent.llm.frontend", "--transport", "masque",
            "--proxy", f"{topo.proxy.ip}:{QUIC_PORT}", "--connect", backend, "--scheduler",
            scheduler, "--requests", str(requests), "--seed", str(seed), "--timeout",
            str(timeout), "--json", "-", *(["--fastpath"] if fastpath else [])]


def run_variant(topo: Any, backend: str, scheduler: str, fastpath: bool, requests: int,
                seed: int = 1, timeout: float = 60.0) -> VariantResult:
    """One front-end run on `client` through mp-proxy (and the switch's fast path if
    `fastpath`); the proxy's CPU seconds are read before and after it."""
    report = Path(topo.workdir) / f"tunnel-{scheduler}-{'on' if fastpath else 'off'}.json"
    report.unlink(missing_ok=True)
    cpu = topo.cpu_seconds("mp-proxy")
    t0 = time.monotonic()
    out = topo.run_on("client", [*frontend_argv(topo, backend, scheduler, fastpath, requests,
                                                seed, timeout), "--tunnel-json", str(report)],
                      timeout=timeout + 60, label="llm front-end")
    seconds = time.monotonic() - t0
    time.sleep(0.3)  # the proxy closes the tunnel (and its flow) once the front-end is gone
    result = VariantResult(scheduler, fastpath, json.loads(out), seconds,
                           topo.cpu_seconds("mp-proxy") - cpu)
    tunnel = json.loads(report.read_text())  # the hosts share the root's file system
    counters = tunnel.get("counters", {})
    result.granted, result.flow = bool(tunnel.get("granted")), tunnel.get("flow") or ""
    result.slow_path_reason = tunnel.get("reason", "") if fastpath else ""
    result.shims_sent = counters.get("fp_sent", 0)
    result.shims_received = counters.get("fp_received", 0)
    result.via_proxy = counters.get("via_proxy", 0)
    if result.granted:
        flow_id = result.flow.split()[1]
        for line in reversed(topo.processes["mp-proxy"].output):
            m = _RANKS.search(line)
            if m and m.group(1) == flow_id:
                result.stream_ranks = int(m.group(2) or 0)
                break
    result.summary = summarize_rows(result.rows)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _spread(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    low, high = min(known), max(known)
    return f"{100 * low:.0f}-{100 * high:.0f}%" if round(100 * low) != round(100 * high) \
        else f"{100 * low:.0f}%"


def format_tables(results: list[VariantResult]) -> str:
    """Per variant and class: completion, on time (with its range over repeated runs),
    p50/p99; then the proxy's cost."""
    repeated = any(len(r.per_run_on_time) > 1 for r in results)
    header = (f"{'variant':<22} {'class':<9} {'reqs':>4} {'done':>5} {'on time':>8} "
              + (f"{'per run':>9} " if repeated else "") + f"{'p50 s':>7} {'p99 s':>7}")
    lines = [header, "-" * len(header)]
    for r in results:
        for cls, row in r.summary.items():
            spread = _spread([run.get(cls) for run in r.per_run_on_time])
            lines.append(f"{r.label:<22} {cls:<9} {row['requests']:>4} "
                         f"{_pct(row['completed']):>5} {_pct(row['on_time']):>8} "
                         + (f"{spread:>9} " if repeated else "")
                         + f"{_sec(row['p50']):>7} {_sec(row['p99']):>7}")
    header = (f"{'variant':<22} {'tunnel':<28} {'MB':>6} {'proxy CPU s':>11} "
              f"{'CPU s/MB':>9}")
    lines += ["", header, "-" * len(header)]
    for r in results:
        if r.granted:
            how = f"switch, {r.stream_ranks} ranks" if r.stream_ranks is not None else "switch"
        else:
            how = "proxy" + (" (fast path refused)" if r.fastpath else "")
        lines.append(f"{r.label:<22} {how:<28} {r.mb:>6.2f} {r.proxy_cpu_s:>11.2f} "
                     f"{_sec(r.cpu_per_mb):>9}")
    return "\n".join(lines)


def write_results(results: list[VariantResult], out_dir: Path, meta: dict[str, Any]) -> Path:
    """JSON and a box plot (latency per class and variant) under `out_dir`; the PNG's path."""
    from hostagent.llm.report import box_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{PROG}.json").write_text(json.dumps(
        {"meta": meta, "variants": {r.label: r.to_dict() for r in results}}, indent=1))
    costs = "; ".join(f"{r.label}: {_sec(r.cpu_per_mb)} proxy CPU s/MB" for r in results)
    return box_plot({r.label: r.summary for r in results}, out_dir / f"{PROG}.png",
                    f"LLM classes through mp-proxy and the P4 switch ({meta['requests']} "
                    f"requests x {meta.get('repeat', 1)} runs, client link {meta['link']})"
                    f"\n{costs}")


def cli_help(topo: Any, backends: dict[str, str]) -> str:
    """What to try at Mininet's CLI."""
    from topologies.masque_plan import QUIC_PORT

    proxy = f"{topo.proxy.ip}:{QUIC_PORT}"
    lines = [f"\n*** The LLM serving topology is up; back-ends on {BACKEND_HOST}: "
             + ", ".join(f"{s} {a}" for s, a in backends.items()) + ". Try:", "  pingall"]
    for scheduler, addr in backends.items():
        lines.append(f"  client python -m hostagent.llm.frontend --transport masque --proxy "
                     f"{proxy} --connect {addr} --scheduler {scheduler} --requests 30 "
                     "--fastpath")
    lines += ["     (without --fastpath the proxy relays the tunnel)",
              "  sh mp-ctl rank list      (while a front-end runs: one rank per class DSCP)",
              "  sh mp-ctl flow list / sh mp-ctl stats / sh mp-ctl sched set fifo",
              "  exit   (or Ctrl-D: everything is stopped and removed)"]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    from hostagent.schedulers import SCHEDULERS

    parser = argparse.ArgumentParser(
        prog=PROG, description="The LLM front-end and back-end through the MASQUE proxy "
        "and the P4 switch in Mininet, fast path off and on: per-class timeliness and the "
        "proxy's CPU per MB; or Mininet's CLI.", epilog=SEED_RESULT.replace("%", "%%"))
    parser.add_argument("--fastpath", choices=list(FASTPATH), default="both",
                        help="run each scheduler with the fast path off, on, or both (default)")
    parser.add_argument("--scheduler", default="edf", metavar="LIST",
                        help="stream scheduler(s) at both ends, comma-separated (default edf; "
                        f"from {', '.join(SCHEDULERS)})")
    parser.add_argument("--cli", action="store_true",
                        help="bring everything up and open Mininet's CLI instead of the runs")
    parser.add_argument("--target", choices=["soft", "bmv2"], default="soft",
                        help="P4 target: soft (the built-in target, default) or bmv2")
    add_link_arguments(parser, DEFAULT_LINK)
    parser.add_argument("--bottleneck", metavar="RATE",
                        help="shape the switch's port towards t1, e.g. 2mbit, so that the "
                        "per-class ranks decide who waits there (built-in target only)")
    parser.add_argument("--requests", type=int, default=30, help="requests per run (30)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every variant N times, interleaved, and pool the requests "
                        "(the table shows each class's on-time range over the runs; default 1)")
    parser.add_argument("--seed", type=int, default=1, help="request mix seed (1)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds the front-end waits for its answers (60)")
    parser.add_argument("--out", default="results/llm", help="folder for JSON and PNG")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove leftovers of a crashed run (masque_proxy.py --cleanup)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Mininet's info log")
    return parser


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str], dict[str, Any],
                                                int | None]:
    """The arguments, the schedulers, the impaired links by host and the bottleneck
    (bits/s); exit 2 with one line when one is wrong."""
    from hostagent.schedulers import SCHEDULERS

    parser = build_parser()
    args = parser.parse_args(argv)
    schedulers = [v.strip() for v in args.scheduler.split(",") if v.strip()]
    bad = [v for v in schedulers if v not in SCHEDULERS]
    if bad or not schedulers:
        parser.error(f"--scheduler: unknown {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(SCHEDULERS)}")
    if len(set(schedulers)) != len(schedulers):
        parser.error("--scheduler: a scheduler is named twice")
    if args.requests < 1:
        parser.error("--requests must be >= 1")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    links = parse_links(parser, args, ["client", "proxy", BACKEND_HOST])
    bottleneck = parse_bottleneck(parser, args.bottleneck, args.target)
    return args, schedulers, links, bottleneck


def main(argv: list[str] | None = None) -> int:
    """Parse, check the host, run the variants or open the CLI; clean up whatever happens."""
    args, schedulers, links, bottleneck = parse_args(argv)
    from topologies import masque_topology as mq

    code = preflight(PROG, args, bool(links), "experiments/llm_serving.py")
    if code is not None:
        return code
    topo = mq.MasqueTopology(target=args.target, targets=1, host_links=links,
                             link_mode=args.link_mode, bottleneck_bps=bottleneck)
    return run_guarded(PROG, lambda: _body(topo, args, schedulers), topo.stop)


def _body(topo: Any, args: argparse.Namespace, schedulers: list[str]) -> int:
    started = time.monotonic()
    topo.start()
    backends = {s: start_backend(topo, s, BACKEND_PORT + i) for i, s in enumerate(schedulers)}
    print(f"*** topology up in {time.monotonic() - started:.1f} s: {args.target} target; "
          f"{topo.describe_links()}"
          + (f"; port to t1 shaped to {args.bottleneck}" if args.bottleneck else "")
          + "; back-ends on t1: " + ", ".join(f"{s} {a}" for s, a in backends.items()),
          flush=True)
    if args.cli:
        from mininet.cli import CLI

        print(cli_help(topo, backends), flush=True)
        CLI(topo.net)
        return 0
    lost = topo.ping_all()
    plan = [(s, fp) for s in schedulers for fp in FASTPATH[args.fastpath]]
    runs: dict[tuple[str, bool], list[VariantResult]] = {v: [] for v in plan}
    print(f"*** {args.requests} requests (seed {args.seed}) per run, in one burst, through "
          "mp-proxy and the switch" + (f"; every variant {args.repeat} times, interleaved"
                                       if args.repeat > 1 else ""), flush=True)
    total = len(plan) * args.repeat
    for n, (scheduler, fastpath) in enumerate(plan * args.repeat, start=1):
        print(f"[{n}/{total}] {scheduler}, fast path {'on' if fastpath else 'off'} ...",
              end=" ", flush=True)
        r = run_variant(topo, backends[scheduler], scheduler, fastpath, args.requests,
                        args.seed, args.timeout)
        runs[(scheduler, fastpath)].append(r)
        tunnel = ("switch" if r.granted else
                  f"proxy (fast path refused: {r.slow_path_reason})" if fastpath else "proxy")
        print(f"{r.seconds:.1f} s, {r.completed}/{args.requests} answered, via {tunnel}",
              flush=True)
    results = [pool(runs[v]) for v in plan]
    print()
    print(format_tables(results))
    print(f"\n{SEED_RESULT}")
    meta = {"experiment": PROG, "target": args.target, "link": args.link,
            "emulation": topo.link_how, "bottleneck": args.bottleneck,
            "requests": args.requests, "repeat": args.repeat, "seed": args.seed,
            "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seed_result": SEED_RESULT}
    if topo.link is not None:
        meta["link"] = format_spec(topo.link)
    png = write_results(results, Path(args.out), meta)
    print(f"wrote {Path(args.out) / (PROG + '.json')} and {png}")
    answered = sum(r.completed for r in results)
    granted = all(r.granted for r in results if r.fastpath)
    ok = lost == 0 and granted and answered > 0
    print(f"\n*** runs {'OK' if ok else 'FAILED'}: ping loss {lost:g}%, {answered}/"
          f"{len(results) * args.requests * args.repeat} requests answered (a late one may "
          f"be dropped by its scheduler), fast path {'granted' if granted else 'NOT granted'} "
          f"where asked ({time.monotonic() - started:.0f} s)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
