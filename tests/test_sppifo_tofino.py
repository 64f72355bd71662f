"""The model of the Tofino program's SP-PIFO (push-down in a resubmitted second pass) is
exact SP-PIFO when the second pass follows at once, and lets the packets in between see
the highest bound moved but the others not yet pushed down."""

from __future__ import annotations

import random

import pytest

from schedmodels import portsim
from schedmodels.sppifo import SpPifoBounds
from schedmodels.sppifo_tofino import SpPifoResubmit, lag_table, resubmission_lag


@pytest.mark.parametrize("queues", [1, 2, 8])
def test_lag_zero_is_exact_sppifo(queues: int) -> None:
    rng = random.Random(queues)
    exact, tofino = SpPifoBounds(queues), SpPifoResubmit(queues, lag=0)
    for _ in range(5000):
        rank = rng.randint(0, 100)
        assert tofino.enqueue(rank) == exact.enqueue(rank)
        assert tofino.bounds == exact.bounds


def test_push_down_lands_lag_packets_late() -> None:
    sp = SpPifoResubmit(2, lag=1)  # queue 0 is served first
    assert sp.enqueue(10) == 1 and sp.bounds == [0, 10]
    assert sp.enqueue(5) == 0 and sp.bounds == [5, 10]  # rank >= top bound: no cost
    assert sp.enqueue(3) == 0 and sp.bounds == [3, 10]  # cost 2, second pass pending
    # exact SP-PIFO would have pushed queue 1 down to 8 and put rank 9 there
    assert sp.enqueue(9) == 0 and sp.bounds == [9, 10]
    assert sp.enqueue(1) == 0 and sp.bounds == [1, 8]   # the push-down landed first
    exact = SpPifoBounds(2)
    assert [exact.enqueue(r) for r in (10, 5, 3, 9)] == [1, 0, 0, 1]


def test_lag_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="lag"):
        SpPifoResubmit(8, lag=-1)


def test_resubmission_lag_restores_portsim() -> None:
    with resubmission_lag(3):
        assert isinstance(portsim.SpPifoBounds(8), SpPifoResubmit)
    assert portsim.SpPifoBounds is SpPifoBounds


def test_lag_table_runs_the_anchor_trace() -> None:
    rows = lag_table(lags=(0, 8), packets=3000)
    assert [lag for lag, _, _ in rows] == [0, 8]
    assert all(inversions > 0 for _, inversions, _ in rows)
