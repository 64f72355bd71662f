"""The end-to-end PIFO run: its workload's parts, and a small run between namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hostagent.echo_workload import TimedPifo, priorities, timed_scheduler
from hostagent.schedulers import HeapPifo, LinearScanPifo, StreamMeta
from netlab.names import remains
from tests.conftest import TaggedRun

REPO = Path(__file__).resolve().parents[1]


def test_priorities_are_equal_shares_in_a_seeded_order() -> None:
    values = priorities(1000, 10, seed=1)
    assert Counter(values) == dict.fromkeys(range(1, 11), 100)
    assert values == priorities(1000, 10, seed=1) != priorities(1000, 10, seed=2)
    assert values[:10] != sorted(values[:10])


@pytest.mark.parametrize("cls", [LinearScanPifo, HeapPifo])
def test_timed_pifo_counts_and_keeps_the_order(cls: type) -> None:
    q = TimedPifo(cls())
    for item, rank in [("a", 3), ("b", 1), ("c", 2)]:
        q.push(item, rank)
    q.remove("c")
    assert [q.pop(), q.pop()] == ["b", "a"] and len(q) == 0
    assert q.calls == {"push": 3, "pop": 2, "remove": 1}
    assert all(v >= 0 for v in q.seconds.values())


def test_timed_scheduler_wraps_the_pifo_of_ranked_disciplines() -> None:
    sched = timed_scheduler("abs")
    assert isinstance(sched.pifo, TimedPifo)  # type: ignore[attr-defined]
    assert isinstance(sched.pifo.inner, LinearScanPifo)  # type: ignore[attr-defined]
    sched.register(0, StreamMeta(priority=1))
    sched.activate(0)
    assert sched.pifo.calls["push"] == 1  # type: ignore[attr-defined]
    assert not hasattr(timed_scheduler("rr"), "pifo")


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_small_pifo_echo_run(tmp_path: Path, tagged_run: TaggedRun) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.pifo_echo", "--streams", "30", "--size", "2000",
         "--levels", "3", "--timeout", "60", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=240, env=tagged_run.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads((tmp_path / "pifo_echo.json").read_text())
    for variant in ("abs", "pifo-abs"):
        s = data["summary"][variant]
        assert s["unfinished"] == 0 and sorted(s["groups"]) == ["1", "2", "3"]
        assert sum(g["n"] for g in s["groups"].values()) == 30
        assert s["pifo_ms"][0] > 0 and s["hook_ms"][0] >= s["pifo_ms"][0]
    assert (tmp_path / "pifo_echo.png").stat().st_size > 10_000
    assert remains(tagged_run.tag) == []
