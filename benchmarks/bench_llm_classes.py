"""The LLM traffic-class experiment (experiments.llm_classes) with its default settings."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from experiments import llm_classes
from netlab import capabilities

OUT = Path("results/llm")


def main() -> list[Row]:
    """Run the experiment; the real-time class's on-time share per variant, as one row."""
    if not capabilities.netns().available:
        print(f"skipped: {capabilities.netns().detail}")
        return []
    if llm_classes.main(["--out", str(OUT)]) != 0:
        return []
    summary = json.loads((OUT / "llm_classes.json").read_text())["summary"]

    def share(variant: str, cls: str) -> str:
        value = summary[variant][cls]["on_time"]
        return "-" if value is None else f"{100 * value:.0f}%"

    return [Row("LLM traffic classes (5 Mbit/s, 50 ms, 0.5% loss)",
                f"{cls} on time: " + " / ".join(summary), " / ".join(share(v, cls)
                                                              for v in summary),
                "EDF/ML best; ABS/ML 100% for real-time" if cls == "realtime" else "-",
                "end-hosts") for cls in ("realtime", "free", "long")]
