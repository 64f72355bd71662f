"""The seed thesis's FCFS-vs-RR experiment: outer stream scheduling of MASQUE tunnels.

100 inner QUIC connections, each through its own CONNECT-UDP tunnel (stream
mode: DATAGRAM capsules on the request streams) over one outer HTTP/3
connection, each echoing 10 KB with the QUIC echo target. Everything starts at
once. The outer connection's stream scheduler (at the client and at the proxy)
is FCFS or RR; the client-proxy link has 5 Mbit/s, 50 ms one way and 1.5% loss
each way. Per variant: the share of connections whose echo completed within the
8 s deadline, latency quartiles (t0 to the last echoed byte) and the time until
all were done; a table, a JSON file and a CDF plot.

    python -m experiments.masque_fcfs_rr [--connections 100] [--out results/masque]
    sudo .venv/bin/python -m experiments.masque_fcfs_rr --via switch [--fastpath off|on|both]

Seed thesis: FCFS 17% vs RR 68% within 8 s; all done after about 24 s vs 15 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from experiments.masque_common import (
    ExperimentSite,
    add_via_arguments,
    check_host,
    parse_plan,
    print_report,
    quartiles,
    run_plan,
    save_results,
)

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=1.5%"
VARIANTS = ("fcfs", "rr")
SEED_RESULT = "seed thesis: within 8 s FCFS 17%, RR 68%; all done after ~24 s (FCFS), ~15 s (RR)"


def summarize(result: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Completion within the deadline, latency quartiles and total time of one variant."""
    records = result["records"]
    latencies = sorted(r["latency"] for r in records if r["latency"] is not None)
    return {"connections": len(records), "finished": len(latencies),
            "on_time": sum(1 for v in latencies if v <= deadline) / len(records)
            if records else None,
            "latency_quartiles": quartiles(latencies), "total_time": result["total_time"],
            "latencies": latencies,
            "errors": sorted({r["error"] for r in records if r["error"]})[:5]}


def format_table(runs: dict[str, dict[str, Any]], deadline: float) -> str:
    """One row per variant."""
    header = (f"{'outer':<22} {'conns':>5} {'done':>5} {f'<= {deadline:g} s':>8} "
              f"{'p25 s':>7} {'p50 s':>7} {'p75 s':>7} {'all done s':>10}")
    lines = [header, "-" * len(header)]
    for variant, row in runs.items():
        q = row["latency_quartiles"]
        qs = ("-", "-", "-") if q is None else tuple(f"{v:.2f}" for v in q)
        total = "-" if row["total_time"] is None else f"{row['total_time']:.1f}"
        on_time = "-" if row["on_time"] is None else f"{100 * row['on_time']:.0f}%"
        lines.append(f"{variant:<22} {row['connections']:>5} {row['finished']:>5} "
                     f"{on_time:>8} {qs[0]:>7} {qs[1]:>7} {qs[2]:>7} {total:>10}")
    return "\n".join(lines)


def cdf_plot(runs: dict[str, dict[str, Any]], path: Path, deadline: float, title: str) -> Path:
    """Completion-time CDF per variant, with the deadline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for variant, row in runs.items():
        lat = row["latencies"]
        n = row["connections"] or 1
        ax.step([0.0, *lat], [0.0, *[(i + 1) / n for i in range(len(lat))]], where="post",
                label=f"{variant} ({100 * (row['on_time'] or 0):.0f}% by {deadline:g} s)")
    ax.axvline(deadline, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("time from start to whole echo (s)")
    ax.set_ylabel("share of inner connections done")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run FCFS and RR over the emulated topology; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m experiments.masque_fcfs_rr",
                                     description=__doc__.split("\n\n")[0], epilog=SEED_RESULT)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=10240, help="echo bytes per connection")
    parser.add_argument("--deadline", type=float, default=8.0)
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="client-proxy impairment, each way (default %(default)r)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated outer schedulers (default fcfs,rr)")
    parser.add_argument("--inner-scheduler", default="rr",
                        help="scheduler of the inner connections and the echo target")
    parser.add_argument("--mode", default="stream", choices=["stream", "datagram"])
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds a variant may take (default 90)")
    parser.add_argument("--out", default="results/masque", help="folder for JSON and PNG")
    add_via_arguments(parser)
    args = parser.parse_args(argv)
    plan, link = parse_plan(parser, args)
    if args.connections < 1 or args.size < 1:
        parser.error("--connections and --size must be >= 1")
    if not check_host(args.via, "masque_fcfs_rr"):
        return 1
    started = time.monotonic()
    with ExperimentSite(args.via, link, args.emulation) as site:
        print(f"client-proxy link {args.link} each way, via {args.via}; {args.connections} "
              f"inner connections x {args.size} B echo, {args.mode} mode", flush=True)
        runs, raw = run_plan(site, plan, args.inner_scheduler, [
            "--connections", str(args.connections), "--streams", "1",
            "--size", str(args.size), "--mode", args.mode], args.timeout,
            lambda result: summarize(result, args.deadline))
    print_report(format_table(runs, args.deadline), runs, "conns", SEED_RESULT)
    path = save_results(Path(args.out), "masque_fcfs_rr", args, link, site, SEED_RESULT, {
        "connections": args.connections, "size": args.size, "deadline": args.deadline,
        "mode": args.mode, "inner_scheduler": args.inner_scheduler}, runs, raw)
    png = cdf_plot(runs, path.with_suffix(".png"), args.deadline,
                   f"{args.connections} tunnels x {args.size} B echo over {args.link} "
                   f"({site.mode})")
    print(f"wrote {path} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
