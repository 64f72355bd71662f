"""The MASQUE experiments (topologies.masque_fcfs_rr, topologies.masque_nested) with their
defaults between namespaces, then FCFS vs RR through the P4 switch with the fast path off
and on (root and Mininet; else a skip line)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from topologies import capabilities, masque_fcfs_rr, masque_nested

OUT = Path("results/masque")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def main() -> list[Row]:
    """Run the experiments; completion, priority order and the proxy's CPU per MB."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    rows = []
    if masque_fcfs_rr.main(["--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_fcfs_rr.json").read_text())["summary"]
        rows.append(Row("MASQUE FCFS vs RR (100 x 10 KB, 5 Mbit/s, 1.5% loss)",
                        "done within 8 s: FCFS / RR", f"{_pct(s['fcfs']['on_time'])} / "
                        f"{_pct(s['rr']['on_time'])}", "17% / 68%", "namespaces"))
    if masque_nested.main(["--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_nested.json").read_text())["summary"]
        means = s["abs"]["mean_by_priority"]
        first, last = min(means, key=int), max(means, key=int)
        rows.append(Row("MASQUE nested priorities (10 x 30 x 1 KB)",
                        f"outer ABS mean latency, priority {first} / {last}",
                        f"{1000 * means[first]:.0f} / {1000 * means[last]:.0f} ms",
                        "falls with priority", "namespaces"))
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"through the switch: skipped ({cap.detail})")
            return rows
    if masque_fcfs_rr.main(["--via", "switch", "--out", str(OUT)]) == 0:
        s = json.loads((OUT / "masque_fcfs_rr_switch.json").read_text())["summary"]

        def cpu(label: str) -> str:
            value = s[label]["proxy_cpu_s_per_mb"]
            return "-" if value is None else f"{value:.3f}"

        rows.append(Row("MASQUE FCFS vs RR through the P4 switch",
                        "proxy CPU s per MB echoed, RR: fast path off / on",
                        f"{cpu('rr, fast path off')} / {cpu('rr, fast path on')}", "-", "soft"))
        rows.append(Row("MASQUE FCFS vs RR through the P4 switch",
                        "done within 8 s, fast path off: FCFS / RR; on: FCFS / RR",
                        " / ".join(_pct(s[f"{v}, fast path {fp}"]["on_time"])
                                   for fp in ("off", "on") for v in ("fcfs", "rr")),
                        "17% / 68% (no switch)", "soft"))
    return rows
