"""The MASQUE priority experiment of `make demo` (experiments.masque_priority) with its
defaults: prioritized tunnels at a 5 Mbit/s switch port, fast path under SP-PIFO and
FIFO, and the slow path through the proxy. Needs root and Mininet."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from experiments import masque_priority
from netlab import capabilities

OUT = Path("results/demo")


def main() -> list[Row]:
    """Run the experiment; the high-priority tunnel's RTT and the proxy's CPU per MB."""
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"skipped: {cap.detail}")
            return []
    if masque_priority.main(["--out", str(OUT)]) != 0:
        return []
    summary = json.loads((OUT / f"{masque_priority.PROG}.json").read_text())["summary"]

    def high(variant: str) -> str:
        flow = next(f for f in summary[variant]["flows"] if f["priority"] == 0)
        p50 = flow["rtt_p50_ms"]
        return "-" if p50 is None else f"{p50:.1f} ms ({100 * flow['delivered']:.0f}%)"

    def cpu(variant: str) -> str:
        value = summary[variant]["proxy_cpu_s_per_mb"]
        return "-" if value is None else f"{value:.3f}"

    name = "MASQUE tunnels at a 5 Mbit/s switch port (make demo)"
    sppifo, fifo, slow = (label for label, _, _ in masque_priority.VARIANTS)
    return [Row(name, "high-priority tunnel RTT p50 (echoed): fast path SP-PIFO / FIFO / "
                "slow path", f"{high(sppifo)} / {high(fifo)} / {high(slow)}", "-", "soft"),
            Row(name, "proxy CPU s per MB carried: fast path / slow path",
                f"{cpu(sppifo)} / {cpu(slow)}", "-", "soft")]
