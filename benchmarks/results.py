"""The results table of the README that `make bench` refreshes.

Each benchmark module's `main()` returns its headline rows (`Row`: what was
measured, our figure, the seed's or paper's figure beside it). The runner keeps
every module's latest rows, with when, where and on which target they were
measured, in `results/bench_rows.json`, and rewrites the README between
`BEGIN` and `END` from them, so that a module run alone refreshes its own rows
and leaves the others' as they were.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
STORE = REPO / "results" / "bench_rows.json"
BEGIN = "<!-- make bench: results table, begin (generated; edits are overwritten) -->"
END = "<!-- make bench: results table, end -->"


@dataclass(frozen=True)
class Row:
    """One headline figure: experiment, what was measured, ours, the seed's, the target."""

    experiment: str
    measure: str
    ours: str
    seed: str = "-"
    target: str = "-"


def machine() -> str:
    """This machine in one line: host name, CPU model, cores, kernel."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {model}, {os.cpu_count()} cores, Linux {platform.release()}"


def record(module: str, rows: list[Row], store: Path = STORE) -> dict[str, Any]:
    """Store `module`'s rows (replacing its earlier ones) with the date and machine."""
    data: dict[str, Any] = {}
    if store.exists():
        try:
            data = json.loads(store.read_text())
        except json.JSONDecodeError:
            data = {}
    data[module] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                    "rows": [asdict(r) for r in rows]}
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(data, indent=1))
    return data


def render(data: dict[str, Any]) -> str:
    """The Markdown block (markers included) for the stored rows of every module."""
    machines = sorted({entry["machine"] for entry in data.values()})
    lines = [BEGIN, "",
             "Measured on " + "; ".join(machines) + " by `make bench` "
             "(`.venv/bin/python -m benchmarks NAME` refreshes one module's rows).", "",
             "| experiment | measure | ours | seed / paper | target | measured |",
             "|---|---|---|---|---|---|"]
    for module in sorted(data):
        entry = data[module]
        for r in entry["rows"]:
            lines.append(f"| {r['experiment']} | {r['measure']} | {r['ours']} | {r['seed']} "
                         f"| {r['target']} | {entry['date']} |")
    lines += ["", END]
    return "\n".join(lines)


def refresh_readme(data: dict[str, Any], readme: Path = README) -> bool:
    """Replace the block between the markers; False (nothing written) without markers."""
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start] + render(data) + text[end + len(END):])
    return True
