"""The switch-scheduling experiment (experiments.switch_scheduling) with its default settings:
FIFO, STRICT and SP-PIFO at a 5 Mbit/s bottleneck on the built-in target, beside the
pure-Python reference; prints a skip line where network namespaces are missing."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from experiments import switch_scheduling
from netlab import capabilities

OUT = Path("results/switch")


def main() -> list[Row]:
    """Run the experiment with defaults, or say why it is skipped; the headline rows."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    if switch_scheduling.main(["--out", str(OUT)]) != 0:
        return []
    ratios = json.loads((OUT / "switch_scheduling.json").read_text())["ratios"]

    def times(key: str) -> str:
        value = ratios.get(key)
        return "-" if value is None else f"{value:.1f}x"

    return [Row("switch scheduling (5 Mbit/s, 16 ranks, load 1.3)",
                "rank inversions FIFO / SP-PIFO, measured", times("measured"),
                "3.3x (SP-PIFO paper, 8 queues)", "soft"),
            Row("switch scheduling (5 Mbit/s, 16 ranks, load 1.3)",
                "the same, pure-Python reference on our trace", times("reference_same_trace"),
                "3.3x", "reference")]
