"""The seed thesis's FCFS-vs-RR experiment: outer stream scheduling of MASQUE tunnels.

100 inner QUIC connections, each through its own CONNECT-UDP tunnel (stream
mode: DATAGRAM capsules on the request streams) over one outer HTTP/3
connection, each echoing 10 KB with the QUIC echo target. Everything starts at
once. The outer connection's stream scheduler (at the client and at the proxy)
is FCFS in quic-go's activation order (`fcfs-activation`, what the seed ran),
RR, or FCFS in creation order (`fcfs`). The client-proxy link has 5 Mbit/s,
50 ms and 1.5% loss on the client's egress only (`--impair client-egress`, the
default: one netem qdisc on the client's interface), on the proxy's egress, or
both. Each variant runs `--runs` times (variants alternate). Per variant: the
share of tunnels whose echo completed within the 8 s deadline in each run
(latency from the tunnel's stream open to its last echoed byte, as the seed
measured), its spread over the runs, latency quartiles and the time until all
were done, beside the seed's figures; a table, a JSON file and a CDF plot.

    python -m experiments.masque_fcfs_rr [--runs 5] [--impair client-egress|proxy-egress|both]
    sudo .venv/bin/python -m experiments.masque_fcfs_rr --via switch [--fastpath off|on|both]

Seed thesis: FCFS 17% vs RR 68% within 8 s; all done after about 24 s vs 15 s.
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
    PLACEMENTS,
    ExperimentSite,
    add_via_arguments,
    check_host,
    parse_plan,
    print_report,
    run_plan,
    save_results,
)
from hostagent import congestion
from schedmodels.stats import quartiles

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=1.5%"
VARIANTS = ("fcfs-activation", "rr")
#: the seed thesis's figures per outer scheduler: share within 8 s, time until all done
SEED = {"fcfs": (0.17, 24.0), "rr": (0.68, 15.0)}
SEED_RESULT = "seed thesis: within 8 s FCFS 17%, RR 68%; all done after ~24 s (FCFS), ~15 s (RR)"


def seed_of(variant: str) -> tuple[float, float] | None:
    """The seed's (share within 8 s, all done s) for a variant label, if it ran that one."""
    outer = variant.split(",")[0]
    return SEED.get("fcfs" if outer.startswith("fcfs") else outer)


def summarize_run(result: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Completion within the deadline, latency quartiles and total time of one run."""
    records = result["records"]
    latencies = sorted(r["latency"] for r in records if r["latency"] is not None)
    return {"connections": len(records), "finished": len(latencies),
            "on_time": sum(1 for v in latencies if v <= deadline) / len(records)
            if records else None,
            "latency_quartiles": quartiles(latencies), "total_time": result["total_time"],
            "client_cpu_share": (result["client_cpu_s"] / result["wall"]
                                 if result.get("client_cpu_s") is not None
                                 and result.get("wall") else None),
            "latencies": latencies,
            "errors": sorted({r["error"] for r in records if r["error"]})[:5]}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant over its runs: each run's summary, and the spread of the headline figures."""
    on_time = [r["on_time"] for r in runs if r["on_time"] is not None]
    medians = [r["latency_quartiles"][1] for r in runs if r["latency_quartiles"]]
    totals = [r["total_time"] for r in runs if r["total_time"] is not None]
    cpu = [r["client_cpu_share"] for r in runs if r.get("client_cpu_share") is not None]
    return {"client_cpu_share": cpu, "client_cpu_share_spread": _spread(cpu),
            "runs": runs, "connections": runs[0]["connections"] if runs else 0,
            "on_time": on_time, "on_time_spread": _spread(on_time),
            "median_latency": medians, "median_latency_spread": _spread(medians),
            "total_time": totals, "total_time_spread": _spread(totals),
            "all_finished_runs": sum(1 for r in runs if r["finished"] == r["connections"]),
            "latencies": sorted(v for r in runs for v in r["latencies"]),
            **({"proxy_cpu_s_per_mb": runs[-1].get("proxy_cpu_s_per_mb"),
                "proxy_cpu_s": runs[-1].get("proxy_cpu_s"),
                "fastpath_streams": runs[-1].get("fastpath_streams"),
                "mb_echoed": runs[-1].get("mb_echoed")} if runs else {})}


def _pcts(values: list[float]) -> str:
    return " ".join(f"{100 * v:.0f}" for v in values) or "-"


def format_table(summary: dict[str, dict[str, Any]], deadline: float) -> str:
    """One row per variant: the share on time in every run and its spread, the median
    latency and the time until all were done (min-max over runs), the seed's beside."""
    header = (f"{'outer':<24} {'runs':>4} {f'% done <= {deadline:g} s, per run':<26} "
              f"{'min-med-max':>12} {'p50 s':>11} {'all done s':>11} {'seed':>5} "
              f"{'seed all':>8} {'client CPU':>10}")
    lines = [header, "-" * len(header)]
    for variant, row in summary.items():
        on, p50, total = (row["on_time_spread"], row["median_latency_spread"],
                          row["total_time_spread"])
        spread = "-" if on is None else (f"{100 * on['min']:.0f}-{100 * on['median']:.0f}-"
                                         f"{100 * on['max']:.0f}%")
        p50s = "-" if p50 is None else f"{p50['min']:.1f}-{p50['max']:.1f}"
        totals = "-" if total is None else f"{total['min']:.1f}-{total['max']:.1f}"
        if row["all_finished_runs"] < len(row["runs"]):
            totals += f" ({len(row['runs']) - row['all_finished_runs']} unfinished)"
        seed = seed_of(variant)
        seed_on, seed_all = ("n/a", "n/a") if seed is None else (f"{100 * seed[0]:.0f}%",
                                                                 f"~{seed[1]:.0f}")
        cpu = row.get("client_cpu_share_spread")
        cpus = "-" if cpu is None else f"{100 * cpu['median']:.0f}%"
        lines.append(f"{variant:<24} {len(row['runs']):>4} {_pcts(row['on_time']):<26} "
                     f"{spread:>12} {p50s:>11} {totals:>11} {seed_on:>5} {seed_all:>8} "
                     f"{cpus:>10}")
    verdict = rr_against_fcfs(summary)
    if verdict:
        lines.append(verdict)
    if any((row.get("client_cpu_share_spread") or {}).get("max", 0) >= CPU_BOUND
           for row in summary.values()):
        lines.append(f"note: in some runs the client process used >= {100 * CPU_BOUND:.0f}% "
                     "of a CPU: it, not the link, set the pace (a busy machine moves RR's "
                     "step past the deadline; run on a quiet host)")
    return "\n".join(lines)


#: a client process busy this share of the wall time was CPU-bound
CPU_BOUND = 0.85


def rr_against_fcfs(summary: dict[str, dict[str, Any]]) -> str | None:
    """The seed's claim checked over the runs, as a line for the table; None without
    both schedulers."""
    figures = rr_against_fcfs_figures(summary)
    return None if figures is None else f"RR above FCFS on time (seed 68% vs 17%), ours: {figures}"


def rr_against_fcfs_figures(summary: dict[str, dict[str, Any]]) -> str | None:
    """RR's on-time share against FCFS's, median and mean over the runs, and whether RR is
    above in both ("holds"); FCFS is fcfs-activation (what the seed ran), else creation
    order; None without both."""
    rr = summary.get("rr")
    fcfs = summary.get("fcfs-activation") or summary.get("fcfs")
    if not rr or not fcfs or not rr["on_time"] or not fcfs["on_time"]:
        return None
    med = (statistics.median(rr["on_time"]), statistics.median(fcfs["on_time"]))
    mean = (statistics.fmean(rr["on_time"]), statistics.fmean(fcfs["on_time"]))
    holds = med[0] > med[1] and mean[0] > mean[1]
    return (f"median {100 * med[0]:.0f}% vs {100 * med[1]:.0f}%, mean {100 * mean[0]:.0f}% "
            f"vs {100 * mean[1]:.0f}% over {len(rr['on_time'])} / {len(fcfs['on_time'])} "
            "runs: " + ("holds" if holds else "does not hold"))


def cdf_plot(runs: dict[str, dict[str, Any]], path: Path, deadline: float, title: str) -> Path:
    """Completion-time CDF per variant, with the deadline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for variant, row in runs.items():
        lat = row["latencies"]  # every run's, pooled
        n = (row["connections"] * len(row["runs"])) or 1
        on = row["on_time_spread"] or {"min": 0.0, "median": 0.0, "max": 0.0}
        ax.step([0.0, *lat], [0.0, *[(i + 1) / n for i in range(len(lat))]], where="post",
                label=f"{variant} ({100 * on['min']:.0f}-{100 * on['max']:.0f}% by "
                f"{deadline:g} s, {len(row['runs'])} runs)")
    ax.axvline(deadline, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("time from the tunnel's stream open to its whole echo (s)")
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
    """Run the variants `--runs` times over the emulated topology; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m experiments.masque_fcfs_rr",
                                     description=__doc__.split("\n\n")[0], epilog=SEED_RESULT)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=10240, help="echo bytes per connection")
    parser.add_argument("--deadline", type=float, default=8.0)
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="client-proxy impairment (default %(default)r)")
    parser.add_argument("--impair", choices=PLACEMENTS, default=None,
                        help="where the impairment is: the client's egress only (default "
                        "between namespaces), the proxy's egress only, or both (the only "
                        "choice with --via switch)")
    parser.add_argument("--runs", type=int, default=5, help="runs per variant (default 5)")
    parser.add_argument("--open-gap", type=float, default=0.0, metavar="SECONDS",
                        help="open tunnel c at c x SECONDS instead of all at once (default 0)")
    parser.add_argument("--sequential-open", action="store_true",
                        help="open each tunnel once the previous one's CONNECT-UDP request "
                        "has its answer (a client dialling in a loop) instead of all at once")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated outer schedulers (default fcfs-activation,rr; "
                        "fcfs is FCFS in creation order)")
    parser.add_argument("--inner-scheduler", default="rr",
                        help="scheduler of the inner connections and the echo target")
    parser.add_argument("--mode", default="stream", choices=["stream", "datagram"])
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    congestion.add_argument(parser, "the outer connection (client and proxy)")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds a run may take (default 90)")
    parser.add_argument("--out", default="results/masque", help="folder for JSON and PNG")
    add_via_arguments(parser)
    args = parser.parse_args(argv)
    plan, link = parse_plan(parser, args)
    if args.connections < 1 or args.size < 1 or args.runs < 1:
        parser.error("--connections, --size and --runs must be >= 1")
    if args.open_gap < 0:
        parser.error("--open-gap must be >= 0")
    if args.via == "switch" and args.impair not in (None, "both"):
        parser.error("--via switch impairs the client's access link both ways: --impair both")
    placement = args.impair or ("both" if args.via == "switch" else "client-egress")
    if not check_host(args.via, "masque_fcfs_rr"):
        return 1
    started = time.monotonic()
    per_run: dict[str, list[dict[str, Any]]] = {v.label: [] for v in plan}
    raw: dict[str, list[Any]] = {v.label: [] for v in plan}
    with ExperimentSite(args.via, link, args.emulation, placement,
                        args.congestion_control) as site:
        print(f"client-proxy link {args.link} on {placement}, via {args.via}; "
              f"{args.connections} inner connections x {args.size} B echo, {args.mode} mode; "
              f"outer congestion control {args.congestion_control}; "
              f"{args.runs} run(s) per variant; tunnels open "
              + ("one after another's answer" if args.sequential_open else
                 f"{args.open_gap:g} s apart" if args.open_gap else "all at once"), flush=True)
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", flush=True)
            summaries, results = run_plan(site, plan, args.inner_scheduler, [
                "--connections", str(args.connections), "--streams", "1",
                "--size", str(args.size), "--mode", args.mode, "--open-gap",
                str(args.open_gap), *(["--sequential-open"] if args.sequential_open else [])],
                args.timeout,
                lambda result: summarize_run(result, args.deadline))
            for label, row in summaries.items():
                per_run[label].append(row)
                raw[label].append(results[label])
                on = row["on_time"]
                print(f"  {label}: {'-' if on is None else f'{100 * on:.0f}%'} within "
                      f"{args.deadline:g} s", flush=True)
    summary = {label: summarize(rows) for label, rows in per_run.items()}
    print_report(format_table(summary, args.deadline), summary, "conns", SEED_RESULT)
    path = save_results(Path(args.out), "masque_fcfs_rr", args, link, site, SEED_RESULT, {
        "connections": args.connections, "size": args.size, "deadline": args.deadline,
        "mode": args.mode, "inner_scheduler": args.inner_scheduler, "impair": placement,
        "runs": args.runs, "open_gap": args.open_gap, "sequential_open": args.sequential_open,
        "congestion_control": args.congestion_control,
        "seed": {k: {"on_time": v[0], "all_done_s": v[1]} for k, v in SEED.items()}},
        summary, raw)
    png = cdf_plot(summary, path.with_suffix(".png"), args.deadline,
                   f"{args.connections} tunnels x {args.size} B echo, {args.link} on "
                   f"{placement} ({site.mode}), outer {args.congestion_control}, "
                   f"{args.runs} runs")
    print(f"wrote {path} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
