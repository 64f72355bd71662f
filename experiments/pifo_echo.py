"""The seed thesis's end-to-end PIFO run: ABS on a sorted list against PIFO-ABS on a heap.

A client namespace and a server namespace joined by an emulated link (5 Mbit/s,
50 ms one way, 0.5% loss, each way). The client opens 1,000 streams of 10 KB
at once on one QUIC connection to the QUIC echo target, priorities 1 to 10
evenly in a seeded shuffled order, its stream scheduler `abs` (the seed's base:
a sorted list with insertion by linear scan) or `pifo-abs` (a binary heap); the
echo server answers in arrival order (FCFS) and admits all streams at once.
Per variant: round-trip time per priority group (stream open to the last echoed
byte: median, 90th percentile, max), and the management time measured in the
run (the PIFO's operations, and the whole scheduling hook). A table, a JSON
file and a box plot per priority group.

    python -m experiments.pifo_echo [--streams 1000] [--runs 1] [--out results/pifo]

Seed: management time 9.87 ms (PIFO) vs 35.2 ms (sorted list); RTT per priority
group lower at the tails with PIFO (Figure 2.10; its numbers are not in the text).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from clikit import exit_on_signals
from netlab import capabilities, names
from netlab.linkemu import format_spec, parse_spec
from netlab.netns_link import EmulatedLink
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module
from schedmodels.stats import percentile

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
VARIANTS = ("abs", "pifo-abs")
CLIENT_NS, SERVER_NS = names.netns("pcl"), names.netns("psv")
CLIENT_ADDR, SERVER_ADDR = "10.251.3.1/30", "10.251.3.2/30"
PORT = 4433
SEED_RESULT = ("seed thesis: management time 9.87 ms (PIFO) vs 35.2 ms (sorted list); "
               "RTT per priority group lower at the tails with PIFO (Figure 2.10, no numbers "
               "in the text)")


def run_variant(scheduler: str, streams: int, size: int, levels: int, seed: int,
                timeout: float) -> dict[str, Any]:
    """The echo target in the server namespace, the workload in the client's; its JSON."""
    ip = SERVER_ADDR.split("/")[0]
    with NamespaceProcess(SERVER_NS, python_module(
            "hostagent.masque.target_cli", "--quic", f"{ip}:{PORT}", "--scheduler", "fcfs",
            "--max-streams", str(streams)), ready=r"\bready\b", name="mp-target"):
        client = NamespaceProcess(CLIENT_NS, python_module(
            "hostagent.echo_workload", "--connect", f"{ip}:{PORT}", "--streams", str(streams),
            "--size", str(size), "--levels", str(levels), "--scheduler", scheduler,
            "--seed", str(seed), "--timeout", str(timeout)),
            capture_stdout=True, name="echo workload")
        client.start()
        out = client.communicate(timeout=timeout + 60)
        if client.poll() != 0:
            raise ProcessFailed(f"echo workload failed ({client.poll()}): "
                                f"{' | '.join(list(client.output)[-5:])}")
    result: dict[str, Any] = json.loads(out)
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per priority group RTT median / p90 / max over all runs; management times per run."""
    by_priority: dict[int, list[float]] = {}
    unfinished = 0
    for run in runs:
        for r in run["records"]:
            if r["latency"] is None:
                unfinished += 1
            else:
                by_priority.setdefault(r["priority"], []).append(r["latency"])
    groups = {p: {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90),
                  "max": max(v), "rtts": sorted(v)} for p, v in sorted(by_priority.items())}
    return {"groups": groups, "unfinished": unfinished,
            "pifo_ms": [1e3 * r["management"].get("pifo_s", 0.0) for r in runs],
            "pifo_ops": [r["management"].get("pifo_ops", {}) for r in runs],
            "hook_ms": [1e3 * r["management"]["hook_s"] for r in runs],
            "elapsed_s": [r["elapsed"] for r in runs]}


def _ms(values: list[float]) -> str:
    return " / ".join(f"{v:.0f}" for v in values)


def format_table(summary: dict[str, dict[str, Any]]) -> str:
    """RTT per priority group side by side, then the management times."""
    variants = list(summary)
    head = f"{'priority':>8} " + " ".join(f"{v + ' p50/p90/max s':>24}" for v in variants)
    lines = [head, "-" * len(head)]
    priorities = sorted({p for s in summary.values() for p in s["groups"]})
    for p in priorities:
        cells = []
        for v in variants:
            g = summary[v]["groups"].get(p)
            cells.append("-" if g is None else f"{g['p50']:.1f} / {g['p90']:.1f} / "
                         f"{g['max']:.1f}")
        lines.append(f"{p:>8} " + " ".join(f"{c:>24}" for c in cells))
    lines.append("")
    lines.append(f"{'variant':<10} {'PIFO ops ms':>14} {'scheduling hook ms':>19} "
                 f"{'all echoed s':>13} {'unfinished':>10}")
    for v in variants:
        s = summary[v]
        lines.append(f"{v:<10} {_ms(s['pifo_ms']):>14} {_ms(s['hook_ms']):>19} "
                     f"{' / '.join(f'{e:.1f}' for e in s['elapsed_s']):>13} "
                     f"{s['unfinished']:>10}")
    return "\n".join(lines)


def box_plot(summary: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """RTT per priority group, the variants side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    variants = list(summary)
    priorities = sorted({p for s in summary.values() for p in s["groups"]})
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        data = [summary[v]["groups"].get(p, {"rtts": []})["rtts"] for p in priorities]
        pos = [n + (i - (len(variants) - 1) / 2) * width for n in range(len(priorities))]
        box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                         showfliers=True, flierprops={"markersize": 2})
        for patch in box["boxes"]:
            patch.set_facecolor(f"C{i}")
            patch.set_alpha(0.6)
        ax.plot([], [], color=f"C{i}", linewidth=6, alpha=0.6, label=v)
    ax.set_xticks(range(len(priorities)), [str(p) for p in priorities])
    ax.set_xlabel("priority group (1 is served first)")
    ax.set_ylabel("RTT, stream open to last echoed byte (s)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run both variants over the emulated link; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m experiments.pifo_echo",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=SEED_RESULT)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10240, help="bytes per stream")
    parser.add_argument("--levels", type=int, default=10, help="priority levels 1..N")
    parser.add_argument("--runs", type=int, default=1, help="runs per variant")
    parser.add_argument("--seed", type=int, default=1, help="seed of the priority shuffle")
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="impairment of each direction (default %(default)r)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated client schedulers (default abs,pifo-abs)")
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds a run may take (default 180)")
    parser.add_argument("--out", default="results/pifo", help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    from hostagent.schedulers import SCHEDULERS

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in SCHEDULERS]
    if bad or not variants:
        parser.error(f"unknown scheduler(s) {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(SCHEDULERS)}")
    if min(args.streams, args.size, args.levels, args.runs) < 1:
        parser.error("--streams, --size, --levels and --runs must be >= 1")
    try:
        link = parse_spec(args.link)
    except ValueError as exc:
        parser.error(f"--link: {exc}")
    if not capabilities.netns().available:
        print(f"pifo_echo: {capabilities.netns().detail}", file=sys.stderr)
        return 1
    started = time.monotonic()
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with EmulatedLink(CLIENT_NS, CLIENT_ADDR, SERVER_NS, SERVER_ADDR, link, link,
                      prefer=args.emulation, static_arp=True) as em:
        print(f"link {args.link} each way ({em.mode}); {args.streams} streams x {args.size} B, "
              f"priorities 1..{args.levels}, {args.runs} run(s) per variant", flush=True)
        for run in range(args.runs):  # variants alternate, so drift hits both alike
            for variant in variants:
                t0 = time.monotonic()
                print(f"[run {run + 1}/{args.runs}] {variant} ...", end=" ", flush=True)
                raw[variant].append(run_variant(variant, args.streams, args.size, args.levels,
                                                args.seed, args.timeout))
                print(f"{time.monotonic() - t0:.1f} s", flush=True)
    summary = {v: summarize(raw[v]) for v in variants}
    print()
    print(format_table(summary))
    print(f"\n{SEED_RESULT}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": "pifo_echo", "link": format_spec(link), "emulation": em.mode,
            "streams": args.streams, "size": args.size, "levels": args.levels,
            "runs": args.runs, "seed": args.seed, "server_scheduler": "fcfs",
            "machine": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seed_result": SEED_RESULT}
    path = out / "pifo_echo.json"
    path.write_text(json.dumps({"meta": meta, "summary": summary, "raw": raw}, indent=1))
    png = box_plot(summary, path.with_suffix(".png"),
                   f"{args.streams} streams x {args.size} B echo over {args.link} ({em.mode})")
    print(f"wrote {path} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
