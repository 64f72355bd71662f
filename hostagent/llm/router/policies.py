"""Routers that need no training: static model sizes and a load-aware heuristic."""

from __future__ import annotations

from hostagent.llm.router.emulator import DEFAULT_MODEL, LatencyModel, Observation, Policy
from hostagent.llm.router.tasks import SIZES, TASKS


def static(size: int) -> Policy:
    """Always the same model size (the seed's small-only, medium-only, large-only)."""
    if not 0 <= size < len(SIZES):
        raise ValueError(f"size index {size} out of range")

    def choose(obs: Observation) -> int:
        return size

    choose.__name__ = f"{SIZES[size]}-only"
    return choose


def heuristic(model: LatencyModel = DEFAULT_MODEL) -> Policy:
    """The most accurate size whose least-loaded replica would meet the deadline if no
    other request joined it (a greedy baseline; not in the seed)."""

    def choose(obs: Observation) -> int:
        rewards = TASKS[obs.task].rewards
        best, best_reward = 0, -1.0
        for size in range(len(SIZES)):
            batch = min(obs.batches[size]) + 1
            if obs.net_delay + model.service_s(size, batch) <= obs.budget \
                    and rewards[size] > best_reward:
                best, best_reward = size, rewards[size]
        return best

    choose.__name__ = "heuristic"
    return choose
