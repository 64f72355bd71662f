"""The switch-scheduling experiment (experiments.switch_scheduling) with its default settings,
on both workloads: FIFO, STRICT, SP-PIFO, AIFO and PACKS at a 5 Mbit/s bottleneck on the
built-in target, beside the pure-Python reference and the published ratios; prints a skip
line where network namespaces are missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.results import Row
from experiments import switch_scheduling
from netlab import capabilities

OUT = Path("results/switch")


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _agreement(data: dict[str, Any]) -> str:
    """The worst |measured - reference| / reference over the modes, and the verdict."""
    diffs = {m: v["inversions_diff"] for m, v in data["agreement"]["modes"].items()
             if v["inversions_diff"] is not None}
    worst = max(diffs, key=lambda m: abs(diffs[m]))
    verdict = "all within" if data["agreement"]["all_within"] else "NOT all within"
    return (f"worst {100 * diffs[worst]:+.1f}% ({worst}); {verdict} "
            f"{100 * data['agreement']['bound']:.0f}%")


def _ratio(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next((r for r in data["ratios"] if r["name"].startswith(name)),
                {"measured": None, "reference": None, "published": None})


def main() -> list[Row]:
    """Run both workloads with defaults, or say why it is skipped; the headline rows."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    rows = []
    for workload in switch_scheduling.WORKLOADS:
        if switch_scheduling.main(["--workload", workload, "--out", str(OUT)]) != 0:
            continue
        data = json.loads((OUT / f"switch_scheduling_{workload}.json").read_text())
        load = data["meta"]["load"]
        exp = f"switch scheduling, {workload} (5 Mbit/s, load {load:g}, 5 modes)"
        inv = {m: r["inversions_measured"] for m, r in data["modes"].items()}
        rows.append(Row(exp, "rank inversions FIFO / SP-PIFO / AIFO / PACKS, measured",
                        " / ".join(f"{inv[m]:,}" for m in ("fifo", "sppifo", "aifo", "packs")),
                        "-", "soft"))
        for name, label in (("fifo / sppifo inversions", "FIFO / SP-PIFO inversions"),
                            ("sppifo / packs inversions", "SP-PIFO / PACKS inversions"),
                            ("packs / sppifo drops", "PACKS / SP-PIFO drops")):
            r = _ratio(data, name)
            rows.append(Row(exp, f"{label}, measured (reference)",
                            f"{_times(r['measured'])} ({_times(r['reference'])})",
                            _times(r["published"]) + (" (up to)" if "packs" in name
                                                      and "drops" not in name else ""),
                            "soft"))
        rows.append(Row(exp, "measured vs reference inversions, per mode", _agreement(data),
                        "within 10%", "soft + reference"))
        if workload == "pfabric":
            fct = {m: r["fct"]["measured"] for m, r in data["modes"].items()}
            pifo = data["modes"]["fifo"]["fct"]["pifo"]
            cells = " / ".join(f"{fct[m]['small_mean_ms']:.1f}" if fct[m]["small_mean_ms"]
                               else "-" for m in ("fifo", "sppifo", "packs"))
            rows.append(Row(exp, "small-flow mean FCT ms, FIFO / SP-PIFO / PACKS "
                                 "(PIFO reference)",
                            f"{cells} ({pifo['small_mean_ms']:.1f})",
                            "SP-PIFO 0.706 / PIFO 0.530 ms (10 Gbit/s)", "soft"))
    return rows
