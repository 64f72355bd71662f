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
