"""The LLM experiment through mp-proxy and the P4 switch (topologies/llm_masque.py), short.

Needs root and Mininet (`mininet` marker). With the fast path off and on every request
is answered, and the proxy spends less CPU per MB when the switch carries the tunnel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mininet, pytest.mark.slow, pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]


def test_llm_requests_through_the_proxy_and_the_fast_path(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "topologies.llm_masque", "--requests", "9",
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          timeout=220)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "slow path" not in done.stderr  # the fast-path run got the fast path
    data = json.loads((tmp_path / "llm_masque.json").read_text())
    for label in ("edf, fast path off", "edf, fast path on"):
        rows = data["requests"][label]
        assert len(rows) == 9 and all(r["latency"] is not None for r in rows), label
    proxy = data["proxy"]
    assert (proxy["edf, fast path on"]["proxy_cpu_s_per_mb"]
            < proxy["edf, fast path off"]["proxy_cpu_s_per_mb"])
    assert (tmp_path / "llm_masque.png").stat().st_size > 0
