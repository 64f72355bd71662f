"""The LLM traffic-class experiment through the MASQUE proxy and the P4 switch
(experiments/llm_serving.py): 90 requests, EDF, ABS and ML, fast path off and on, each
variant three times (single runs differ by tens of points at 0.5% random loss), pooled
(about 6 minutes here). Needs root and Mininet; skipped with the reason otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from experiments import llm_serving
from netlab import capabilities

OUT = Path("results/llm")
SCHEDULERS = ("edf", "abs", "ml")
REPEAT = 3
ARGS = ["--requests", "90", "--scheduler", ",".join(SCHEDULERS), "--fastpath", "both",
        "--repeat", str(REPEAT), "--out", str(OUT)]


def main() -> list[Row]:
    """Run it; per scheduler the per-class on-time shares and the proxy's CPU per MB."""
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"skipped: {cap.detail}")
            return []
    if llm_serving.main(ARGS) != 0:
        return []
    variants = json.loads((OUT / f"{llm_serving.PROG}.json").read_text())["variants"]

    def on_time(label: str) -> str:
        """Pooled on-time shares per class; the real-time one with its range over runs."""
        summary, per_run = variants[label]["summary"], variants[label]["per_run_on_time"]
        cells = []
        for c in ("realtime", "free", "long"):
            value = summary[c]["on_time"]
            cell = "-" if value is None else f"{100 * value:.0f}%"
            if c == "realtime":
                known = [run[c] for run in per_run if run.get(c) is not None]
                if len(known) > 1:
                    cell += f" ({100 * min(known):.0f}-{100 * max(known):.0f}%)"
            cells.append(cell)
        return " / ".join(cells)

    def cpu(label: str) -> str:
        value = variants[label]["proxy_cpu_s_per_mb"]
        return "-" if value is None else f"{value:.3f}"

    name = f"LLM classes through mp-proxy and the switch (90 requests x {REPEAT} runs)"
    rows = [Row(name, f"{s}: on time real-time (range over runs) / free / long, fast path "
                "off; on",
                f"{on_time(f'{s}, fast path off')}; {on_time(f'{s}, fast path on')}",
                "EDF/ML best; ABS/ML 100% real-time (direct)", "soft") for s in SCHEDULERS]
    rows.append(Row(name, "proxy CPU s per MB exchanged, fast path off / on ("
                    + ", ".join(SCHEDULERS) + ")",
                    ", ".join(f"{cpu(f'{s}, fast path off')} / {cpu(f'{s}, fast path on')}"
                              for s in SCHEDULERS), "-", "soft"))
    return rows
