"""Prioritized MASQUE tunnels through the P4 switch (`make demo`): who waits at a bottleneck.

The Mininet topology of `masque_proxy.py` on the built-in target, with the
switch's egress port towards the target shaped to 5 Mbit/s. The client opens
one CONNECT-UDP tunnel per flow to the target's UDP echo: a small high-priority
flow (priority 0, 0.4 Mbit/s of 200-byte packets) and two bulk flows (priority
10 and 20, 4 Mbit/s each of 1200-byte packets) that together overload the
bottleneck. Three variants run on the same topology:

- fast path, SP-PIFO: the proxy has the switch carry each tunnel and registers
  the tunnel's priority as its rank; the switch schedules by rank;
- fast path, FIFO: the same flows, the switch in FIFO mode;
- slow path: no fast path; the proxy relays every packet (its CPU pays) and the
  switch sees only the proxy's own flows, all at the default rank.

Per flow: packets whose echo came back, round-trip time p50/p99 (client clock),
and per variant the proxy host's CPU seconds per MB carried. A table, a JSON
file and a PNG (RTT CDF per flow and variant).

    sudo .venv/bin/python -m experiments.masque_priority [--seconds 6] [--out results/demo]
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
from netlab import capabilities
from netlab.linkemu import parse_rate
from schedmodels.stats import percentile

PROG = "masque_priority"
DEFAULT_FLOWS = ("high,0,0.4mbit,200", "bulk-1,10,3mbit,1200", "bulk-2,20,3mbit,1200")
DEFAULT_BOTTLENECK = "5mbit"
#: (label, fast path asked, switch scheduling mode)
VARIANTS = (("fast path, SP-PIFO", True, "sppifo"), ("fast path, FIFO", True, "fifo"),
            ("slow path (proxy)", False, "sppifo"))
UDP_ECHO_PORT = 4434



def summarize(run: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    """Per flow: delivered share and RTT p50/p99; for the run: MB carried, CPU s per MB."""
    flows = []
    carried = 0
    for f in run["flows"]:
        carried += (f["sent"] + f["received"]) * f["size"]
        flows.append({"name": f["name"], "priority": f["priority"], "path": f["path"],
                      "offered_mbit": f["rate_bps"] / 1e6, "sent": f["sent"],
                      "received": f["received"], "error": f["error"],
                      "delivered": f["received"] / f["sent"] if f["sent"] else 0.0,
                      "rtt_p50_ms": percentile(f["rtts_ms"], 50),
                      "rtt_p99_ms": percentile(f["rtts_ms"], 99)})
    mb = carried / 1e6
    return {"flows": flows, "mb_carried": mb, "proxy_cpu_s": cpu_s,
            "proxy_cpu_s_per_mb": cpu_s / mb if mb else None}


def format_table(summaries: dict[str, dict[str, Any]]) -> str:
    """One row per variant and flow."""
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    header = (f"{'variant':<20} {'flow':<8} {'prio':>4} {'Mbit/s':>6} {'path':<9} "
              f"{'echoed':>7} {'RTT p50 ms':>10} {'p99 ms':>8} {'proxy CPU s/MB':>14}")
    lines = [header, "-" * len(header)]
    for variant, s in summaries.items():
        cpu = "-" if s["proxy_cpu_s_per_mb"] is None else f"{s['proxy_cpu_s_per_mb']:.3f}"
        for i, f in enumerate(s["flows"]):
            path = "error" if f["error"] else f["path"]
            lines.append(f"{variant if i == 0 else '':<20} {f['name']:<8} {f['priority']:>4} "
                         f"{f['offered_mbit']:>6.1f} {path:<9} {100 * f['delivered']:>6.0f}% "
                         f"{ms(f['rtt_p50_ms']):>10} {ms(f['rtt_p99_ms']):>8} "
                         f"{cpu if i == 0 else '':>14}")
    return "\n".join(lines)


def cdf_plot(raw: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """RTT CDF per flow, one panel per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(raw), figsize=(4.2 * len(raw), 3.8), sharey=True,
                             squeeze=False)
    for ax, (variant, run) in zip(axes[0], raw.items(), strict=True):
        for f in run["flows"]:
            rtts = sorted(f["rtts_ms"])
            if rtts:
                n = f["sent"] or len(rtts)
                ax.step(rtts, [(i + 1) / n for i in range(len(rtts))], where="post",
                        label=f"{f['name']} (prio {f['priority']})")
        ax.set_xscale("log")
        ax.set_xlabel("echo RTT (ms, log)")
        ax.set_title(variant, fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("share of packets sent echoed within")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{PROG}", description=__doc__.split("\n\n")[0],
        epilog="needs root and Mininet (sudo .venv/bin/python -m experiments.masque_priority)")
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="sending time per variant (default 6)")
    parser.add_argument("--flow", action="append", metavar="NAME,PRIORITY,RATE,SIZE",
                        help="a paced flow, one tunnel each (repeatable; default: "
                        + " ".join(DEFAULT_FLOWS) + ")")
    parser.add_argument("--bottleneck", default=DEFAULT_BOTTLENECK, metavar="RATE",
                        help=f"switch egress rate towards the target (default "
                        f"{DEFAULT_BOTTLENECK})")
    parser.add_argument("--variants", default="all", metavar="LIST",
                        help="comma-separated: sppifo, fifo, slow (default all three)")
    parser.add_argument("--out", default="results/demo", help="folder for JSON and PNG")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Bring the topology up, run the variants, print the table, write JSON and PNG."""
    from hostagent.masque.paced import parse_flow

    parser = build_parser()
    args = parser.parse_args(argv)
    flow_specs = args.flow or list(DEFAULT_FLOWS)
    try:
        flows = [parse_flow(f) for f in flow_specs]
        bottleneck = parse_rate(args.bottleneck)
    except ValueError as exc:
        parser.error(str(exc))
    if not bottleneck:
        parser.error("--bottleneck must be a rate, e.g. 5mbit")
    if not 0 < args.seconds <= 120:
        parser.error("--seconds must be in (0, 120]")
    keys = {"sppifo": VARIANTS[0], "fifo": VARIANTS[1], "slow": VARIANTS[2]}
    chosen = list(keys) if args.variants == "all" else [
        v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in keys]
    if unknown or not chosen:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none)'}; choose from "
                     f"{', '.join(keys)}")
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"{PROG}: {cap.detail}", file=sys.stderr)
            return 1
    from topologies.masque_plan import QUIC_PORT
    from topologies.masque_topology import MasqueTopology
    started = time.monotonic()
    offered = sum(f.rate_bps for f in flows) / 1e6
    print(f"*** bringing up masque_proxy's topology: built-in target, switch port to t1 "
          f"shaped to {bottleneck / 1e6:g} Mbit/s; {len(flows)} tunnels offer "
          f"{offered:g} Mbit/s", flush=True)
    raw: dict[str, dict[str, Any]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    with MasqueTopology(target="soft", targets=1, bottleneck_bps=bottleneck) as topo:
        print(f"*** up in {time.monotonic() - started:.1f} s", flush=True)
        t1 = topo.hosts[2].ip
        for n, key in enumerate(chosen, start=1):
            label, fastpath, mode = keys[key]
            topo.ctl("sched", "set", mode)
            print(f"[{n}/{len(chosen)}] {label}: {args.seconds:g} s of traffic ...", end=" ",
                  flush=True)
            cpu0 = topo.cpu_seconds("mp-proxy")
            out = topo.run_on("client", [
                sys.executable, "-m", "hostagent.masque.paced", "--proxy",
                f"{topo.proxy.ip}:{QUIC_PORT}", "--target", f"{t1}:{UDP_ECHO_PORT}",
                *[a for f in flow_specs for a in ("--flow", f)],
                "--seconds", str(args.seconds), *(["--fastpath"] if fastpath else [])],
                timeout=args.seconds + 60, label="paced flows")
            cpu = topo.cpu_seconds("mp-proxy") - cpu0
            raw[label] = json.loads(out)
            summaries[label] = summarize(raw[label], cpu)
            paths = {f["path"] for f in summaries[label]["flows"]}
            print(f"done ({', '.join(sorted(paths))})", flush=True)
            if fastpath and paths != {"fast path"}:
                why = ", ".join(f"{f['name']}: {f['error'] or f['path']}"
                                for f in summaries[label]["flows"])
                print(f"{PROG}: warning: not every tunnel got the fast path ({why})",
                      file=sys.stderr)
    print()
    print(format_table(summaries))
    print(f"\nBottleneck {bottleneck / 1e6:g} Mbit/s, {offered:g} Mbit/s offered. 'echoed': "
          "packets whose echo came back. On the fast path the switch ranks each tunnel by "
          "the priority its client declared, and SP-PIFO serves the high-priority tunnel "
          "first; in FIFO mode it waits behind the bulk. On the slow path the proxy "
          "relays every packet and the switch sees only the proxy's flows.")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": PROG, "target": "soft", "bottleneck_bps": bottleneck,
            "seconds": args.seconds, "flows": flow_specs, "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out_dir / f"{PROG}.json").write_text(json.dumps(
        {"meta": meta, "summary": summaries, "raw": raw}, indent=1))
    png = cdf_plot(raw, out_dir / f"{PROG}.png",
                   f"{len(flows)} tunnels, {offered:g} Mbit/s offered into "
                   f"{bottleneck / 1e6:g} Mbit/s (built-in target)")
    print(f"wrote {out_dir / (PROG + '.json')} and {png} "
          f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
