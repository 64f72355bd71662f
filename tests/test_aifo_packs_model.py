"""AIFO's and PACKS's reference model (schedmodels.aifo): hand-computed decisions, the
integer rules against the papers' fractions, and the port simulator with both."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedmodels.aifo import Packs, RankWindow, aifo_admits, packs_queue
from schedmodels.portsim import simulate, uniform_trace


def test_window_counts_the_ranks_before_the_packet() -> None:
    w = RankWindow(3)  # starts as [0, 0, 0], like the switch's registers
    assert [w.observe(r) for r in (5, 1, 9, 5, 0)] == [3, 2, 3, 1, 0]
    assert list(w.ranks) == [9, 5, 0]  # the oldest are forgotten


def test_aifo_by_hand() -> None:
    # C = 10, k = 10%: nearly empty (held <= 1) admits every rank
    assert aifo_admits(20, 20, 1, 10)
    # held 5: count . 90 . 10 < 100 . 20 . 5  <=>  count <= 11
    assert aifo_admits(11, 20, 5, 10) and not aifo_admits(12, 20, 5, 10)
    assert not aifo_admits(0, 20, 10, 10)  # full


def test_packs_by_hand() -> None:
    # 2 queues of 5, empty: queue 0 takes count <= 11 (of 20), queue 1 the rest
    assert packs_queue(11, 20, [0, 0], 5) == 0
    assert packs_queue(12, 20, [0, 0], 5) == 1
    assert packs_queue(20, 20, [0, 0], 5) == 1
    assert packs_queue(0, 20, [5, 0], 5) == 1  # queue 0 full: the next with room
    assert packs_queue(0, 20, [5, 5], 5) is None
    # 8 held of 10: queue 1's share is 2/2 . 2/10 / 0.9: count . 90 . 2 . 10 < 100 . 20 . 2 . 2
    assert packs_queue(4, 20, [4, 4], 5) == 1 and packs_queue(5, 20, [4, 4], 5) is None


@given(count=st.integers(0, 20), held=st.integers(0, 40), burst=st.integers(0, 99))
def test_aifo_integer_rule_is_the_papers_fraction(count: int, held: int, burst: int) -> None:
    capacity, window = 40, 20
    k = Fraction(burst, 100)
    expected = held < capacity and (
        held <= k * capacity
        or Fraction(count, window) < Fraction(1) / (1 - k) * Fraction(capacity - held, capacity))
    assert aifo_admits(count, window, held, capacity, burst) == expected


@given(count=st.integers(0, 20), held=st.lists(st.integers(0, 6), min_size=1, max_size=8),
       burst=st.integers(0, 99))
def test_packs_integer_rule_is_the_papers_fraction(count: int, held: list[int],
                                                   burst: int) -> None:
    depth, window, n = 6, 20, len(held)
    capacity, k = n * depth, Fraction(burst, 100)
    share = Fraction(capacity - sum(held), capacity) / (1 - k)
    expected = next((q for q in range(n) if held[q] < depth
                     and Fraction(count, window) < Fraction(q + 1, n) * share), None)
    assert packs_queue(count, window, held, depth, burst) == expected


def test_packs_sends_small_ranks_to_high_priority_queues() -> None:
    packs = Packs(RankWindow(20))
    for r in range(20):
        packs.decide(r * 5, [0] * 8, 10)  # ranks 0..95 seen
    assert packs.decide(0, [0] * 8, 10) == 0
    assert packs.decide(99, [0] * 8, 10) == 7


@pytest.mark.parametrize("discipline", ["aifo", "packs"])
def test_simulation_conserves_packets(discipline: str) -> None:
    trace = uniform_trace(3000, 1.3, 1e9, seed=3)
    result = simulate(trace, 1e9, discipline, depth=10)
    assert len(result.departures) + result.drops == len(trace)
    assert 0 < result.admission_drops <= result.drops


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 1000))
def test_packs_has_fewer_inversions_than_aifo_on_uniform_ranks(seed: int) -> None:
    trace = uniform_trace(4000, 1.2, 1e9, seed=seed)
    packs = simulate(trace, 1e9, "packs", depth=10)
    aifo = simulate(trace, 1e9, "aifo", depth=10)
    assert packs.inversions < aifo.inversions
