"""The LLM traffic-class experiment end to end between two namespaces (small run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.names import remains
from tests.conftest import TaggedRun

REPO = Path(__file__).resolve().parent.parent


def test_bad_variant_is_a_one_line_error() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.llm_classes", "--variants", "wfq"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert "unknown variant(s) wfq" in out.stderr


@pytest.mark.root
@pytest.mark.slow
def test_small_run_writes_results_and_cleans_up(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.llm_classes", "--requests", "9",
         "--variants", "ml,tcp-1", "--timeout", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=240, env=tagged_run.env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[2/2] tcp-1" in out.stdout
    data = json.loads((tmp_path / "llm_classes.json").read_text())
    assert set(data["summary"]) == {"ml", "tcp-1"}
    for variant, rows in data["requests"].items():
        assert len(rows) == 9, variant
        assert all(r["received"] > 0 for r in rows), variant
    assert (tmp_path / "llm_classes.png").stat().st_size > 10_000
    assert remains(tagged_run.tag) == []


def test_router_tables_in_the_seeds_shape() -> None:
    """experiments.llm_router's Table 3/4: the seed's rows and columns, ours / seed per cell,
    n/a where the seed has no figure."""
    from experiments.llm_router import format_seed_table

    summaries = {r: {"edf": {"reward": x}, "tcp-1": {"reward": x / 2}, "pifo-abs": {
        "reward": 0.5}} for r, x in (("large-only", 0.1), ("medium-only", 0.3), ("dqn", 0.5))}
    text = format_seed_table(summaries, "stable").splitlines()
    assert text[0].startswith("Table 3 (stable workload)")
    assert "OPT-2.7B only (large-only)" in text[1] and "policy (dqn)" in text[1]
    edf = next(line for line in text if line.startswith("QUIC-EDF"))
    assert edf.split()[1:] == ["0.10", "/", "0.21", "0.30", "/", "0.37", "0.50", "/", "0.52"]
    tcp1 = next(line for line in text if line.startswith("TLS/TCP 1 conn"))
    assert "0.25 / 0.31" in tcp1
    assert "0.50 / n/a" in next(line for line in text if line.startswith("pifo-abs"))
    assert format_seed_table(summaries, "unpredictable").splitlines()[0].startswith("Table 4")


def test_router_experiment_rejects_an_unknown_router() -> None:
    out = subprocess.run([sys.executable, "-m", "experiments.llm_router", "--routers",
                          "dqn,oracle"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert out.returncode == 2 and "unknown router(s) oracle" in out.stderr
