"""`make demo` end to end: prioritized tunnels through the switch on the built-in target.

Needs root and Mininet (`mininet` marker). A short run (2 s per variant): every
tunnel of the fast-path variants gets the fast path, the high-priority tunnel's
median RTT under SP-PIFO is below its median under FIFO (where it waits behind
the bulk tunnels), and the proxy relays the slow-path variant's packets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mininet, pytest.mark.slow, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]


def test_demo_prioritizes_the_high_priority_tunnel(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "experiments.demo", "--seconds", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          timeout=220)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "demo done" in done.stdout
    assert (tmp_path / "masque_priority.png").stat().st_size > 0
    summary = json.loads((tmp_path / "masque_priority.json").read_text())["summary"]
    sppifo, fifo = summary["fast path, SP-PIFO"], summary["fast path, FIFO"]
    slow = summary["slow path (proxy)"]
    for variant in (sppifo, fifo):
        assert {f["path"] for f in variant["flows"]} == {"fast path"}
    assert {f["path"] for f in slow["flows"]} == {"slow path"}
    high = {name: next(f for f in s["flows"] if f["name"] == "high")
            for name, s in (("sppifo", sppifo), ("fifo", fifo), ("slow", slow))}
    assert high["sppifo"]["delivered"] > 0.95
    assert high["sppifo"]["rtt_p50_ms"] < high["fifo"]["rtt_p50_ms"]
    assert high["slow"]["received"] > 0, "the proxy relayed nothing on the slow path"
    # the proxy's CPU carries the slow path, not the fast path
    assert slow["proxy_cpu_s_per_mb"] > sppifo["proxy_cpu_s_per_mb"]
