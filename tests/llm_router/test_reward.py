"""Reward accounting on a hand-computed case, and the windowed-quality metric."""

from __future__ import annotations

import pytest

from hostagent.llm.router.emulator import Arrival, Observation, simulate
from hostagent.llm.router.metrics import mean_reward, window_shares
from hostagent.llm.router.tasks import LARGE, MEDIUM, SMALL, TASKS, reward

HELLASWAG, COPA, PIQA, OBQA = range(4)


def test_table_1() -> None:
    assert [t.name for t in TASKS] == ["HellaSwag", "COPA", "PIQA", "OpenBookQA"]
    assert reward(HELLASWAG, SMALL, True) == 0.45
    assert reward(COPA, MEDIUM, True) == 0.95
    assert reward(PIQA, LARGE, True) == 1.00
    assert reward(OBQA, MEDIUM, True) == 0.94
    assert reward(OBQA, LARGE, False) == 0.0


def test_hand_computed_run() -> None:
    # Choices by index: 0-4 large (GPUs 0-3, then waiting behind 0), 5 small, 6 medium,
    # 7 large with 0.2 s of network time.
    arrivals = [Arrival(0, 0.0, OBQA), Arrival(1, 0.0, COPA), Arrival(2, 0.0, PIQA),
                Arrival(3, 0.0, HELLASWAG), Arrival(4, 0.0, HELLASWAG),
                Arrival(5, 0.1, HELLASWAG), Arrival(6, 0.2, COPA),
                Arrival(7, 5.0, PIQA, net_delay=0.2)]
    choice = [LARGE] * 5 + [SMALL, MEDIUM, LARGE]
    seen: list[Observation] = []

    def policy(obs: Observation) -> int:
        seen.append(obs)
        return choice[len(seen) - 1]

    run = simulate(arrivals, policy)
    # 0-3: alone on a large replica, 32 x 35.5 ms = 1.136 s <= 1.28 s: full reward.
    # 4: waits for GPU 0 until 1.136 s, cannot finish by 1.28 s: 0.
    # 5: small, alone: 32 x 2.625 ms = 0.084 s: 0.45.  6: medium alone 0.272 s: 0.95.
    # 7: large alone at an idle cluster but 0.2 s + 1.136 s > 1.28 s: 0.
    assert run.rewards == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0, 0.45, 0.95, 0.0])
    assert mean_reward(run.rewards) == pytest.approx(5.4 / 8)
    assert run.outcomes[5].service_s == pytest.approx(0.084)
    assert [o.gpu for o in run.outcomes[:5]] == [0, 1, 2, 3, 0]
    # what the router saw: loads per size (per GPU), the task, a positive rate estimate
    assert seen[4].batches[LARGE] == (1, 1, 1, 1)
    assert seen[5].batches[LARGE] == (2, 1, 1, 1)
    assert seen[5].task == HELLASWAG and seen[5].rate > 0
    assert seen[7].net_delay == 0.2


def test_window_shares() -> None:
    rewards = [1.0] * 20 + [1.0] * 19 + [0.8] + [0.95] * 20 + [1.0] * 5  # 5 left out
    shares = window_shares(rewards)
    assert shares[1.00] == pytest.approx(1 / 3)
    assert shares[0.99] == pytest.approx(2 / 3)  # 19.8 / 20 = 0.99
    assert shares[0.96] == pytest.approx(2 / 3)
    assert shares[0.94] == pytest.approx(1.0)
    assert window_shares([1.0] * 5)[1.00] == 0.0
