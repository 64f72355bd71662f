"""The pure-Python SP-PIFO reference on hand-worked cases."""

from __future__ import annotations

import pytest

from p4src.pipeline import RANK_MAX
from schedmodels.sppifo import SpPifoBounds


def test_push_up_fills_from_the_lowest_priority_queue() -> None:
    s = SpPifoBounds(queues=4)
    assert s.enqueue(5) == 3 and s.bounds == [0, 0, 0, 5]
    assert s.enqueue(3) == 2 and s.bounds == [0, 0, 3, 5]
    assert s.enqueue(7) == 3 and s.bounds == [0, 0, 3, 7]
    assert s.enqueue(4) == 2 and s.bounds == [0, 0, 4, 7]


def test_push_down_lowers_every_bound_by_the_cost_and_saturates() -> None:
    s = SpPifoBounds(queues=4, bounds=[10, 12, 30, 40])
    assert s.enqueue(4) == 0  # below every bound: highest-priority queue
    assert s.bounds == [4, 6, 24, 34]
    s = SpPifoBounds(queues=3, bounds=[100, 20, 500])  # non-monotonic bounds: no wrap
    assert s.enqueue(10) == 0
    assert s.bounds == [10, 0, 410]


def test_maximum_rank_and_range_checks() -> None:
    s = SpPifoBounds()
    assert s.enqueue(RANK_MAX) == 7 and s.bounds[7] == RANK_MAX
    assert s.bmv2_priority(0) == 7 and s.bmv2_priority(7) == 0
    with pytest.raises(ValueError):
        s.enqueue(RANK_MAX + 1)
    with pytest.raises(ValueError):
        SpPifoBounds(queues=2, bounds=[1, 2, 3])
