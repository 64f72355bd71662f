"""The switch-scheduling experiment: the pure-Python reference on hand-computed traces,
the SP-PIFO paper's qualitative anchor, the receiver-view inversion estimator, and a
short live run on the built-in target (root)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab.names import remains
from schedmodels.portsim import (
    DISCIPLINES,
    Packet,
    StrictRange,
    anchor,
    even_strict_ranges,
    simulate,
)
from tests.conftest import TaggedRun

RATE = 8000  # bit/s: a 1000-byte packet takes exactly 1 s


def trace(*arrivals: tuple[float, int]) -> list[Packet]:
    """1000-byte packets from (time, rank) pairs."""
    return [Packet(t, r, 1000) for t, r in arrivals]


# p0 goes out at once; p1..p3 wait; at t=1 the buffer holds ranks 3, 1, 4.
SMALL = trace((0.0, 5), (0.1, 3), (0.2, 1), (0.3, 4))
# The SP-PIFO walk-through of the tests below (2 queues).
WALK = trace((0.0, 5), (0.1, 3), (0.2, 6), (0.3, 1), (0.4, 2))


def test_fifo_small_trace() -> None:
    r = simulate(SMALL, RATE, "fifo")
    assert r.departures == [0, 1, 2, 3]
    assert r.inversions == 1  # p1 (rank 3) leaves while p2 (rank 1) waits
    assert r.drops == 0
    assert [round(d, 9) for rank in (5, 3, 1, 4) for d in r.per_rank[rank].delays] == \
        [0.0, 0.9, 1.8, 2.7]


def test_pifo_small_trace() -> None:
    r = simulate(SMALL, RATE, "pifo")
    assert r.departures == [0, 2, 1, 3]
    assert r.inversions == 0
    assert round(r.per_rank[1].delays[0], 9) == 0.8
    assert round(r.per_rank[3].delays[0], 9) == 1.9


def test_fifo_drop_tail() -> None:
    r = simulate(SMALL, RATE, "fifo", fifo_depth=2)
    assert r.drops == 1 and r.per_rank[4].dropped == 1  # p3 finds p1, p2 waiting
    assert r.departures == [0, 1, 2]
    assert r.inversions == 1
    assert r.summary()["per_rank"]["4"]["drop_rate"] == 1.0


def test_pifo_fifo_among_equal_ranks() -> None:
    r = simulate(trace((0.0, 9), (0.1, 2), (0.2, 2), (0.3, 1), (0.4, 2)), RATE, "pifo")
    assert r.departures == [0, 3, 1, 2, 4]
    assert r.inversions == 0


def test_sppifo_walk_through() -> None:
    # bounds [0,0] -> p0 r5: q1 [0,5] -> p1 r3: q0 [3,5] -> p2 r6: q1 [3,6]
    # -> p3 r1: push-down by 2, q0 [1,4] -> p4 r2: q0 [2,4].  q0 = p1 p3 p4, q1 = p2.
    r = simulate(WALK, RATE, "sppifo", queues=2)
    assert r.bounds == [2, 4]
    assert r.departures == [0, 1, 3, 4, 2]
    assert r.inversions == 2  # p1 (rank 3) leaves before p3 (1) and p4 (2)
    fifo = simulate(WALK, RATE, "fifo", queues=2)
    assert fifo.inversions == 4  # p1 over p3, p4; p2 (6) over p3, p4
    assert simulate(WALK, RATE, "pifo", queues=2).departures == [0, 3, 4, 1, 2]


def test_strict_ranges() -> None:
    low_first = [StrictRange(0, 2, 0), StrictRange(3, 9, 1)]
    r = simulate(WALK, RATE, "strict", queues=2, strict=low_first)
    assert r.departures == [0, 3, 4, 1, 2]
    assert r.inversions == 0
    wide = [StrictRange(0, 3, 0), StrictRange(4, 9, 1)]
    r = simulate(WALK, RATE, "strict", queues=2, strict=wide)
    assert r.departures == [0, 1, 3, 4, 2]
    assert r.inversions == 2
    # an unmatched rank goes to the last (lowest-priority) queue
    assert simulate(WALK, RATE, "strict", queues=2).departures == [0, 1, 2, 3, 4]


def test_sppifo_full_queue_changes_no_bound() -> None:
    # 2 queues of 1 packet. p0 r5 leaves at once, bounds [0,5]; p1 r7 waits in q1 [0,7];
    # p2 r8 maps to q1, which is full: dropped, bounds stay [0,7]; p3 r7: q1 again, dropped.
    t = trace((0.0, 5), (0.1, 7), (0.2, 8), (0.3, 7))
    paper = simulate(t, RATE, "sppifo", queues=2, depth=1)
    assert paper.drops == 2 and paper.bounds == [0, 7]
    # the v1model switch: p2 has raised q1's bound to 8, so p3 (7) takes q0 and is kept
    switch = simulate(t, RATE, "sppifo", queues=2, depth=1, full_queue_moves_bounds=True)
    assert switch.drops == 1 and switch.bounds == [7, 8]
    assert switch.departures == [0, 3, 1]


def test_even_strict_ranges() -> None:
    ranges = even_strict_ranges(0, 100)
    assert len(ranges) == 8 and ranges[0].low == 0 and ranges[-1].high == 100
    assert all(a.high + 1 == b.low for a, b in zip(ranges, ranges[1:], strict=False))
    assert [r.queue for r in ranges] == list(range(8))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown discipline"):
        simulate(SMALL, RATE, "lifo")
    with pytest.raises(ValueError, match="outside"):
        simulate(SMALL, RATE, "strict", queues=2, strict=[StrictRange(0, 9, 5)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 20), st.integers(64, 1500)),
                max_size=60),
       st.integers(1, 4))
def test_conservation_and_pifo_never_inverts(rows: list[tuple[float, int, int]],
                                             depth: int) -> None:
    t = [Packet(*row) for row in rows]
    for d in DISCIPLINES:
        r = simulate(t, 100_000, d, queues=4, depth=depth,
                     strict=even_strict_ranges(0, 20, 4))
        assert len(r.departures) + r.drops == len(t)
        assert sorted(set(r.departures)) == sorted(r.departures)
        if d == "pifo":
            assert r.inversions == 0


def test_paper_anchor_uniform_ranks() -> None:
    """SP-PIFO paper, uniform ranks 0-100, 8 queues: FIFO 864k vs SP-PIFO 262k (3.3x).
    Here (open-loop Poisson at load 1.2, 8 x 10 packets): SP-PIFO well below FIFO, PIFO 0."""
    results = anchor(packets=20_000, load=1.2, seed=7)
    fifo, sp = results["fifo"].inversions, results["sppifo"].inversions
    ratio = fifo / sp
    print(f"anchor: FIFO {fifo:,} vs SP-PIFO {sp:,} inversions = {ratio:.1f}x (paper 3.3x)")
    assert ratio > 3.0
    assert results["pifo"].inversions == 0
    assert results["fifo"].drops > 0  # the load is above 1


def test_receiver_view_estimator() -> None:
    from experiments.switch_scheduling import receiver_inversions

    # (seq, rank, send time, receive time), in receive order; base delay 0.01 s, so a
    # packet left the bottleneck 0.01 s before it was received.
    # a (rank 5) leaves at 0.99; b (rank 1, sent 0.5) leaves after it: one inversion.
    # c (rank 3) was sent at 1.5, after a left: it does not count against a.
    rows = [(0, 0, 0.0, 0.01), (1, 5, 0.2, 1.0), (2, 1, 0.5, 2.0), (3, 3, 1.5, 3.0)]
    assert receiver_inversions(rows) == 1
    # b first, then a, and c sent after a left: nothing inverted
    rows = [(0, 0, 0.0, 0.01), (2, 1, 0.5, 1.0), (1, 5, 0.2, 2.0), (3, 3, 2.5, 3.0)]
    assert receiver_inversions(rows) == 0
    # c sent before a left (1.5 < 1.99) and leaving after it, with a smaller rank: one
    rows = [(0, 0, 0.0, 0.01), (2, 1, 0.5, 1.0), (1, 5, 0.2, 2.0), (3, 3, 1.5, 3.0)]
    assert receiver_inversions(rows) == 1


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.root
@pytest.mark.slow
def test_live_short_run(tmp_path: Path, tagged_run: TaggedRun) -> None:
    from experiments.switch_scheduling import MODES, RANKS

    out = tmp_path / "switch"
    run = subprocess.run(
        [sys.executable, "-m", "experiments.switch_scheduling", "--seconds", "3",
         "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=240,
        env=tagged_run.env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    data = json.loads((out / "switch_scheduling.json").read_text())
    assert set(data["modes"]) == set(MODES)
    for mode in MODES:
        assert set(data["modes"][mode]["per_rank"]) == {str(r) for r in RANKS}
    top = str(min(RANKS))
    p50 = {m: data["modes"][m]["per_rank"][top]["latency_ms_p50"] for m in MODES}
    assert p50["sppifo"] < p50["fifo"]
    assert (out / "switch_scheduling.png").exists()
    assert remains(tagged_run.tag) == []
