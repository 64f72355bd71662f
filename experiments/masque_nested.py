"""The seed thesis's nested-priority experiment: outer ABS vs RR vs FCFS over MASQUE tunnels.

10 inner QUIC connections, each through its own CONNECT-UDP tunnel (stream mode)
over one outer HTTP/3 connection; the connections get outer priorities 1..10
(1 is served first) in a seeded shuffled order, so that opening order (which
FCFS follows) is not priority order; declared as the tunnel's StreamMeta at the client and sent
to the proxy (``masque-rank``), which ranks the return direction the same way.
Inside each connection 30 streams of 1 KB, inner priorities 1..10 (three streams
each) under the inner ABS scheduler. All tunnels and handshakes are set up
first; then every stream is issued at once. The outer scheduler (client and
proxy) is ABS, RR or FCFS; the client-proxy link has 5 Mbit/s, 50 ms one way and
0.5% loss each way. Per variant and outer priority: mean latency from issue to
the whole echo; a table, a JSON file and a plot.

    python -m experiments.masque_nested [--connections 10 --streams 30] [--out results/masque]

Seed thesis: under ABS the mean latency falls with priority (priority 1 fastest).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from clikit import exit_on_signals
from experiments.masque_common import (
    ExperimentSite,
    add_via_arguments,
    check_host,
    parse_plan,
    print_report,
    run_plan,
    save_results,
)

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
VARIANTS = ("abs", "rr", "fcfs")
SEED_RESULT = "seed thesis: under outer ABS the mean latency falls with priority"


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Mean latency (s) per outer priority group, and overall counts."""
    groups: dict[int, list[float]] = {}
    missing = 0
    for r in result["records"]:
        if r["latency"] is None:
            missing += 1
            continue
        groups.setdefault(r["priority"], []).append(r["latency"])
    return {"streams": len(result["records"]), "unfinished": missing,
            "setup_time": result["setup_time"], "total_time": result["total_time"],
            "mean_by_priority": {p: statistics.fmean(v) for p, v in sorted(groups.items())},
            "done_by_priority": {p: len(v) for p, v in sorted(groups.items())}}


def format_table(runs: dict[str, dict[str, Any]]) -> str:
    """Rows: outer priority; columns: mean latency (ms) per variant."""
    variants = list(runs)
    priorities = sorted({p for row in runs.values() for p in row["mean_by_priority"]})
    width = max(10, *(len(v) + 3 for v in variants))
    header = f"{'priority':>8} " + " ".join(f"{v + ' ms':>{width}}" for v in variants)
    lines = [header, "-" * len(header)]
    for p in priorities:
        cells = []
        for v in variants:
            mean = runs[v]["mean_by_priority"].get(p)
            cells.append(f"{'-' if mean is None else f'{1000 * mean:.0f}':>{width}}")
        lines.append(f"{p:>8} " + " ".join(cells))
    totals = []
    for v in variants:
        total = runs[v]["total_time"]
        totals.append(f"{'-' if total is None else f'{1000 * total:.0f}':>{width}}")
    lines.append(f"{'all done':>8} " + " ".join(totals))
    lines.append(f"{'missing':>8} " + " ".join(f"{runs[v]['unfinished']:>{width}}"
                                                for v in variants))
    return "\n".join(lines)


def bar_plot(runs: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Mean latency per outer priority, one line of markers per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for variant, row in runs.items():
        means = row["mean_by_priority"]
        ax.plot(list(means), [1000 * v for v in means.values()], marker="o", label=variant)
    ax.set_xlabel("outer priority of the tunnel (1 = served first)")
    ax.set_ylabel("mean stream latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(title="outer scheduler")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run ABS, RR and FCFS over the emulated topology; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m experiments.masque_nested",
                                     description=__doc__.split("\n\n")[0], epilog=SEED_RESULT)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--streams", type=int, default=30, help="streams per connection")
    parser.add_argument("--size", type=int, default=1024, help="bytes per stream")
    parser.add_argument("--priorities", type=int, default=10, help="outer priority levels")
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="client-proxy impairment, each way (default %(default)r)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated outer schedulers (default abs,rr,fcfs)")
    parser.add_argument("--inner-scheduler", default="abs")
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", default="results/masque", help="folder for JSON and PNG")
    add_via_arguments(parser)
    args = parser.parse_args(argv)
    plan, link = parse_plan(parser, args)
    if min(args.connections, args.streams, args.size, args.priorities) < 1:
        parser.error("--connections, --streams, --size and --priorities must be >= 1")
    if not check_host(args.via, "masque_nested"):
        return 1
    started = time.monotonic()
    with ExperimentSite(args.via, link, args.emulation) as site:
        print(f"client-proxy link {args.link} each way, via {args.via}; {args.connections} "
              f"inner connections x {args.streams} streams x {args.size} B, priorities "
              f"1..{args.priorities}", flush=True)
        runs, raw = run_plan(site, plan, args.inner_scheduler, [
            "--connections", str(args.connections), "--streams", str(args.streams),
            "--size", str(args.size), "--priorities", str(args.priorities),
            "--setup-first"], args.timeout, summarize)
    print_report(format_table(runs), runs, "streams", SEED_RESULT)
    path = save_results(Path(args.out), "masque_nested", args, link, site, SEED_RESULT, {
        "connections": args.connections, "streams": args.streams, "size": args.size,
        "priorities": args.priorities, "inner_scheduler": args.inner_scheduler}, runs, raw)
    png = bar_plot(runs, path.with_suffix(".png"),
                   f"{args.connections} tunnels x {args.streams} streams x {args.size} B over "
                   f"{args.link} ({site.mode})")
    print(f"wrote {path} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
