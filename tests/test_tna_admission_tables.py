"""The Tofino program's AIFO and PACKS admission, done with the (mode, free range, count)
entries that p4src/tofino.py computes and the program's lookup-and-choose steps, decides
exactly as the reference model (schedmodels.aifo) and the v1model program's integer rules
do with the Tofino program's window (TNA_RANK_WINDOW ranks), for every window count and
every number of free cells."""

from __future__ import annotations

import random

import pytest

from p4src import tofino
from p4src.pipeline import NUM_QUEUES
from schedmodels.aifo import aifo_admits, packs_queue

W = tofino.TNA_RANK_WINDOW


def _v1model_aifo(count: int, held: int, depth: int, burst_pct: int) -> tuple[str, int | None]:
    if held >= depth:
        return "full", None
    if aifo_admits(count, W, held, depth, burst_pct):
        return "queue", 0
    return "admission", None


def _v1model_packs(count: int, held_by_qid: list[int], depth: int,
                   burst_pct: int) -> tuple[str, int | None]:
    """The v1model program's PACKS: model queue p (0 = highest) is BMv2 priority 7 - p."""
    by_priority = list(reversed(held_by_qid))
    choice = packs_queue(count, W, by_priority, depth, burst_pct)
    if choice is not None:
        return "queue", NUM_QUEUES - 1 - choice
    if sum(held_by_qid) >= NUM_QUEUES * depth:
        return "full", None
    return "admission", None


@pytest.mark.parametrize("depth", [1, 7, 20, 64, 101])
@pytest.mark.parametrize("burst_pct", [0, 10, 50, 99])
def test_aifo_entries_decide_as_the_model(depth: int, burst_pct: int) -> None:
    entries = tofino.aifo_threshold_entries(depth, burst_pct)
    for held in range(depth + 3):
        for count in range(W + 1):
            assert tofino.aifo_decision(count, held, depth, entries) == \
                _v1model_aifo(count, held, depth, burst_pct), (held, count)


def _held_vectors(depth: int, rng: random.Random) -> list[list[int]]:
    """Every total from empty to over-full, spread over the queues in several ways, and
    random vectors (some queues full, some over)."""
    vectors = []
    for total in range(NUM_QUEUES * depth + 2):
        for order in (range(NUM_QUEUES), reversed(range(NUM_QUEUES))):
            held, left = [0] * NUM_QUEUES, total
            for qid in order:
                held[qid] = min(depth + (1 if qid == 3 else 0), left)
                left -= held[qid]
            held[0] += left
            vectors.append(held)
    for _ in range(200):
        vectors.append([rng.randint(0, depth + 1) for _ in range(NUM_QUEUES)])
    return vectors


@pytest.mark.parametrize("depth", [1, 3, 8, 25])
@pytest.mark.parametrize("burst_pct", [0, 10, 60])
def test_packs_entries_decide_as_the_model(depth: int, burst_pct: int) -> None:
    entries = tofino.packs_threshold_entries(depth, burst_pct)
    rng = random.Random(depth * 100 + burst_pct)
    for held in _held_vectors(depth, rng):
        for count in range(W + 1):
            assert tofino.packs_decision(count, held, depth, entries) == \
                _v1model_packs(count, held, depth, burst_pct), (held, count)


@pytest.mark.parametrize("make, depth", [(tofino.aifo_threshold_entries, 0xFFFF),
                                         (tofino.packs_threshold_entries,
                                          tofino.MAX_QUEUE_DEPTH_CELLS)])
def test_entries_are_disjoint_ranges_and_fit_the_table(make, depth) -> None:  # type: ignore[no-untyped-def]
    entries = make(depth, 10)
    capacity = depth if make is tofino.aifo_threshold_entries else NUM_QUEUES * depth
    for below in range(W + 1):
        ranges = sorted((e.free_lo, e.free_hi) for e in entries if e.below == below)
        assert all(0 <= lo <= hi <= capacity for lo, hi in ranges)
        assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(0 < e.admit < 1 << NUM_QUEUES for e in entries)  # admitting nothing: default
    assert all(e.below <= W for e in entries)
    for k in (0, 10, 50, 99):
        both = (len(tofino.aifo_threshold_entries(0xFFFF, k))
                + len(tofino.packs_threshold_entries(tofino.MAX_QUEUE_DEPTH_CELLS, k)))
        assert both <= tofino.ADMISSION_TABLE_SIZE
    assert list(entries[0].action_params()) == ["admit_mask"]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="queue depth"):
        tofino.packs_threshold_entries(tofino.MAX_QUEUE_DEPTH_CELLS + 1, 10)
    with pytest.raises(ValueError, match="burst_pct"):
        tofino.aifo_threshold_entries(64, 100)
    with pytest.raises(ValueError, match="queue depth"):
        tofino.aifo_threshold_entries(0, 10)
    with pytest.raises(ValueError, match="window"):
        tofino.aifo_threshold_entries(64, 10, window=W + 1)
