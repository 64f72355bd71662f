"""The LLM traffic-class experiment through the MASQUE proxy and the P4 switch
(topologies.llm_masque), EDF with the fast path off and on. Needs root and Mininet."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results import Row
from topologies import capabilities, llm_masque

OUT = Path("results/llm")


def main() -> list[Row]:
    """Run it; per-class on-time shares and the proxy's CPU per MB, off vs on."""
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"skipped: {cap.detail}")
            return []
    if llm_masque.main(["--out", str(OUT)]) != 0:
        return []
    data = json.loads((OUT / f"{llm_masque.PROG}.json").read_text())
    summary, proxy = data["summary"], data["proxy"]
    off, on = "edf, fast path off", "edf, fast path on"

    def on_time(label: str) -> str:
        return " / ".join("-" if summary[label][c]["on_time"] is None
                          else f"{100 * summary[label][c]['on_time']:.0f}%"
                          for c in ("realtime", "free", "long"))

    def cpu(label: str) -> str:
        value = proxy[label]["proxy_cpu_s_per_mb"]
        return "-" if value is None else f"{value:.3f}"

    name = "LLM classes through mp-proxy and the switch (EDF, 30 requests)"
    return [Row(name, "on time real-time / free / long: fast path off; on",
                f"{on_time(off)}; {on_time(on)}", "EDF/ML best (direct)", "soft"),
            Row(name, "proxy CPU s per MB answered: fast path off / on",
                f"{cpu(off)} / {cpu(on)}", "-", "soft")]
