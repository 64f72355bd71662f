"""The MASQUE experiments (experiments.masque_fcfs_rr, experiments.masque_nested) with their
defaults between namespaces, then both through the P4 switch with the fast path off and on
(root and Mininet; else a skip line)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from experiments import masque_fcfs_rr, masque_nested
from netlab import capabilities

OUT = Path("results/masque")


def _spread(row: dict) -> str:
    """The share on time over the runs: min-median-max."""
    on = row["on_time_spread"]
    if on is None:
        return "-"
    return f"{100 * on['min']:.0f}-{100 * on['median']:.0f}-{100 * on['max']:.0f}%"


def _cpu(summary: dict, label: str) -> str:
    value = summary[label]["proxy_cpu_s_per_mb"]
    return "-" if value is None else f"{value:.3f}"


def _abs_means(summary: dict, label: str) -> tuple[str, str, str]:
    """The first and last outer priority and their mean latencies (ms) under `label`."""
    means = summary[label]["mean_by_priority"]
    if not means:
        return "-", "-", "-"
    first, last = min(means, key=int), max(means, key=int)
    return first, last, f"{1000 * means[first]:.0f} / {1000 * means[last]:.0f} ms"


def main() -> list[Row]:
    """Run the experiments; completion, priority order and the proxy's CPU per MB."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    rows = []
    if masque_fcfs_rr.main(["--out", str(OUT)]) == 0:
        data = json.loads((OUT / "masque_fcfs_rr.json").read_text())
        s, runs = data["summary"], data["meta"]["runs"]
        rows.append(Row("MASQUE FCFS vs RR (100 x 10 KB, 5 Mbit/s, 1.5% loss on the client's "
                        "egress)", f"done within 8 s, min-median-max of {runs} runs: FCFS "
                        "(activation order) / RR", f"{_spread(s['fcfs-activation'])} / "
                        f"{_spread(s['rr'])}", "17% / 68%", "namespaces"))
        verdict = masque_fcfs_rr.rr_against_fcfs_figures(s)
        if verdict:
            cpu = [v for k in ("fcfs-activation", "rr")
                   for v in s[k].get("client_cpu_share", [])]
            busy = f"; client CPU up to {100 * max(cpu):.0f}%" if cpu else ""
            rows.append(Row("MASQUE FCFS vs RR (the same runs)",
                            "RR's on-time share above FCFS's (median and mean of the runs)",
                            verdict + busy,
                            "68% vs 17%", "namespaces"))
    if masque_nested.main(["--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_nested.json").read_text())["summary"]
        first, last, ms = _abs_means(s, "abs")
        rows.append(Row("MASQUE nested priorities (10 x 30 x 1 KB)",
                        f"outer ABS mean latency, priority {first} / {last}", ms,
                        "falls with priority", "namespaces"))
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"through the switch: skipped ({cap.detail})")
            return rows
    from bmv2 import launcher

    target = launcher.selected_target()  # the switch MasqueTopology starts
    if masque_fcfs_rr.main(["--via", "switch", "--runs", "1", "--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_fcfs_rr_switch.json").read_text())["summary"]
        rows.append(Row("MASQUE FCFS vs RR through the P4 switch",
                        "proxy CPU s per MB echoed, RR: fast path off / on",
                        f"{_cpu(s, 'rr, fast path off')} / {_cpu(s, 'rr, fast path on')}", "-",
                        target))
        rows.append(Row("MASQUE FCFS vs RR through the P4 switch",
                        "done within 8 s (1 run, both directions impaired), fast path off: "
                        "FCFS / RR; on: FCFS / RR",
                        " / ".join(_spread(s[f"{v}, fast path {fp}"])
                                   for fp in ("off", "on") for v in ("fcfs-activation", "rr")),
                        "17% / 68% (no switch)", target))
    if masque_nested.main(["--via", "switch", "--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_nested_switch.json").read_text())["summary"]
        cells = []
        for fp in ("off", "on"):
            first, last, ms = _abs_means(s, f"abs, fast path {fp}")
            cells.append(f"{fp}: {ms}")
        rows.append(Row("MASQUE nested priorities through the P4 switch",
                        f"outer ABS mean latency, priority {first} / {last}, fast path off; on",
                        "; ".join(cells), "falls with priority (no switch)", target))
        rows.append(Row("MASQUE nested priorities through the P4 switch",
                        "proxy CPU s per MB echoed, ABS: fast path off / on",
                        f"{_cpu(s, 'abs, fast path off')} / {_cpu(s, 'abs, fast path on')}",
                        "-", target))
    return rows
